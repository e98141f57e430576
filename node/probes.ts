// Liveness, readiness and startup probes, and the lifecycle handlers they
// share with preStop hooks (httpGet to the pod IP, tcpSocket, exec through
// docker exec, sleep). One timer per probe per running container, from the
// container's start + initialDelaySeconds, every periodSeconds. The
// thresholds are pure (observeProbe). A startup probe gates the other two;
// a liveness or startup probe that fails for good marks the container for a
// restart (ProbeView.kill), which the pod sync carries out under the pod's
// restartPolicy. Any change of a container's view re-queues its pod.

import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { Logger } from '../lib/log.ts'
import type { ProbeView } from './pods/types.ts'
import { containerRef, unhealthyEvent } from './pods/events.ts'

interface EventSink {
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, ref?: { fieldPath?: string }): void
}

export interface HandlerTarget {
  podIP: string
  containerId: string
  /** The container's spec.ports, to resolve named ports. */
  ports: any[]
}

export interface Exec {
  exec(id: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>
}

export interface HandlerResult {
  ok: boolean
  message: string
}

export function resolvePort(port: unknown, ports: any[]): number {
  if (typeof port === 'number') return port
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port)
  const p = ports.find((x) => x.name === port)
  if (!p) throw new Error(`port ${String(port)} is not a named port of the container`)
  return p.containerPort
}

function httpGet(h: any, target: HandlerTarget, timeoutMs: number): Promise<HandlerResult> {
  const port = resolvePort(h.port, target.ports)
  const host = h.host || target.podIP
  const headers: Record<string, string> = { 'user-agent': 'skiff-probe/1.0', accept: '*/*' }
  for (const x of h.httpHeaders ?? []) headers[String(x.name).toLowerCase()] = String(x.value)
  const https = String(h.scheme ?? 'HTTP').toUpperCase() === 'HTTPS'
  const path = h.path || '/'
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)({ host, port, path, method: 'GET', headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume()
      const code = res.statusCode ?? 0
      // The kubelet's wording for a failure (it is the Unhealthy Event's message).
      resolve({ ok: code >= 200 && code < 400, message: code >= 200 && code < 400 ? `HTTP probe ${host}:${port}${path}: status ${code}` : `HTTP probe failed with statuscode: ${code}` })
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', (e) => resolve({ ok: false, message: `Get "http://${host}:${port}${path}": ${e.message}` }))
    req.end()
  })
}

function tcpSocket(h: any, target: HandlerTarget, timeoutMs: number): Promise<HandlerResult> {
  const port = resolvePort(h.port, target.ports)
  const host = h.host || target.podIP
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: timeoutMs })
    sock.on('connect', () => {
      sock.destroy()
      resolve({ ok: true, message: `tcp ${host}:${port} open` })
    })
    sock.on('timeout', () => sock.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    sock.on('error', (e) => resolve({ ok: false, message: `dial tcp ${host}:${port}: ${e.message}` }))
  })
}

/** Run an httpGet, tcpSocket, exec or sleep handler once. */
export async function runHandler(h: any, target: HandlerTarget, runtime: Exec, timeoutMs: number): Promise<HandlerResult> {
  try {
    if (h.exec) {
      const r = await runtime.exec(target.containerId, h.exec.command ?? [], timeoutMs)
      return { ok: r.exitCode === 0, message: r.exitCode === 0 ? 'exec succeeded' : `command exited ${r.exitCode}: ${r.output.trim()}` }
    }
    if (h.httpGet) return await httpGet(h.httpGet, target, timeoutMs)
    if (h.tcpSocket) return await tcpSocket(h.tcpSocket, target, timeoutMs)
    if (h.sleep) {
      await new Promise((r) => setTimeout(r, Math.min(timeoutMs, (h.sleep.seconds ?? 0) * 1000)))
      return { ok: true, message: 'slept' }
    }
    return { ok: false, message: 'unsupported handler (grpc is not supported)' }
  } catch (e) {
    return { ok: false, message: (e as Error).message }
  }
}

export interface ProbeCounter {
  /** undefined until a threshold was reached once. */
  result?: boolean
  successes: number
  failures: number
}

/** Kubernetes' thresholds: successThreshold in a row to pass, failureThreshold in a row to fail. */
export function observeProbe(c: ProbeCounter, ok: boolean, probe: { successThreshold?: number; failureThreshold?: number }): ProbeCounter {
  if (ok) {
    const successes = c.successes + 1
    return { result: successes >= (probe.successThreshold ?? 1) ? true : c.result, successes, failures: 0 }
  }
  const failures = c.failures + 1
  return { result: failures >= (probe.failureThreshold ?? 3) ? false : c.result, successes: 0, failures }
}

type Kind = 'startup' | 'liveness' | 'readiness'
const probeField: Record<Kind, string> = { startup: 'startupProbe', liveness: 'livenessProbe', readiness: 'readinessProbe' }

interface Tracked {
  podKey: string
  pod: KubeObject
  spec: any
  target: HandlerTarget
  counters: Record<Kind, ProbeCounter>
  messages: Partial<Record<Kind, string>>
  timers: NodeJS.Timeout[]
  stopped: boolean
  /** The probe whose first run, due at once, decides the container's first Ready (see firstResults); cleared when it ran. */
  first?: Kind
}

/** The view of a container from its probe counters (pure). */
export function probeView(spec: any, counters: Record<Kind, ProbeCounter>, messages: Partial<Record<Kind, string>> = {}): ProbeView {
  const started = !spec.startupProbe || counters.startup.result === true
  const ready = started && (!spec.readinessProbe || counters.readiness.result === true)
  const kill = spec.livenessProbe && counters.liveness.result === false
    ? `Liveness probe failed: ${messages.liveness ?? ''}`.trim()
    : spec.startupProbe && counters.startup.result === false ? `Startup probe failed: ${messages.startup ?? ''}`.trim() : undefined
  return { started, ready, ...(kill ? { kill } : {}) }
}

export class ProbeManager {
  #tracked = new Map<string, Tracked>()
  #runtime: Exec
  #log: Logger
  #onChange: (podKey: string) => void
  #events: EventSink | undefined
  /** Pods whose sync waits in firstResults: their results are read there, so no onChange for them meanwhile. */
  #awaiting = new Map<string, () => void>()

  constructor(opts: { runtime: Exec; logger: Logger; onChange: (podKey: string) => void; events?: EventSink }) {
    this.#runtime = opts.runtime
    this.#log = opts.logger
    this.#onChange = opts.onChange
    this.#events = opts.events
  }

  view(containerId: string): ProbeView | undefined {
    const t = this.#tracked.get(containerId)
    return t ? probeView(t.spec, t.counters, t.messages) : undefined
  }

  /** Probe exactly these running containers of the pod (others of the pod stop being probed). */
  sync(podKey: string, pod: KubeObject, running: Array<{ id: string; name: string; startedAt?: string }>, podIP: string | undefined): void {
    const ids = new Set(running.map((r) => r.id))
    for (const [id, t] of this.#tracked) if (t.podKey === podKey && !ids.has(id)) this.#untrack(id)
    if (!podIP) return
    const specs = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]
    for (const r of running) {
      if (this.#tracked.has(r.id)) continue
      const spec = specs.find((s) => s.name === r.name)
      if (!spec || !(spec.startupProbe || spec.livenessProbe || spec.readinessProbe)) continue
      const t: Tracked = {
        podKey, pod, spec, target: { podIP, containerId: r.id, ports: spec.ports ?? [] },
        counters: { startup: { successes: 0, failures: 0 }, liveness: { successes: 0, failures: 0 }, readiness: { successes: 0, failures: 0 } },
        messages: {}, timers: [], stopped: false,
      }
      this.#tracked.set(r.id, t)
      // Docker's StartedAt against this machine's clock: how long the container has run already (an agent restart).
      // Never negative: after a wall-clock step back it would hold the first probe off by the step.
      const ranMs = Math.max(0, r.startedAt ? Date.now() - Date.parse(r.startedAt) : 0) || 0
      const delay = (kind: Kind) => Math.max(0, (spec[probeField[kind]].initialDelaySeconds ?? 0) * 1000 - ranMs)
      // Readiness is decided first by the startup probe if there is one (it gates the others), else by the readiness probe.
      const gate: Kind | undefined = spec.startupProbe ? 'startup' : spec.readinessProbe ? 'readiness' : undefined
      if (gate && delay(gate) === 0) t.first = gate
      for (const kind of ['startup', 'liveness', 'readiness'] as const) {
        if (spec[probeField[kind]]) this.#schedule(t, kind, delay(kind))
      }
    }
  }

  /**
   * Wait (at most maxMs) until every container of the pod whose first
   * startup or readiness probe was due at once has run it, so that the status
   * written next carries its result: a container that answers at once goes
   * Running and Ready in one status write, not two syncs and two writes.
   * Results that come in meanwhile do not trigger onChange (the caller reads
   * them); one that comes later does, as always.
   */
  async firstResults(podKey: string, maxMs: number): Promise<void> {
    const pending = () => [...this.#tracked.values()].some((t) => t.podKey === podKey && t.first && !t.stopped)
    if (!pending() || this.#awaiting.has(podKey)) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#awaiting.delete(podKey)
        resolve()
      }
      const timer = setTimeout(done, maxMs)
      this.#awaiting.set(podKey, () => !pending() && done())
    })
  }

  forget(podKey: string): void {
    for (const [id, t] of this.#tracked) if (t.podKey === podKey) this.#untrack(id)
  }

  stop(): void {
    for (const id of [...this.#tracked.keys()]) this.#untrack(id)
  }

  #untrack(id: string): void {
    const t = this.#tracked.get(id)
    if (!t) return
    t.stopped = true
    for (const timer of t.timers) clearTimeout(timer)
    this.#tracked.delete(id)
  }

  #schedule(t: Tracked, kind: Kind, delayMs: number): void {
    const timer = setTimeout(() => {
      t.timers = t.timers.filter((x) => x !== timer)
      void this.#tick(t, kind)
    }, delayMs)
    timer.unref()
    t.timers.push(timer)
  }

  async #tick(t: Tracked, kind: Kind): Promise<void> {
    if (t.stopped) return
    const probe = t.spec[probeField[kind]]
    const period = (probe.periodSeconds ?? 10) * 1000
    const before = probeView(t.spec, t.counters, t.messages)
    // The startup probe gates the others; it stops once it passed.
    if (kind !== 'startup' && !before.started) return this.#schedule(t, kind, period)
    const r = await runHandler(probe, t.target, this.#runtime, (probe.timeoutSeconds ?? 1) * 1000)
    if (t.stopped) return
    t.counters[kind] = observeProbe(t.counters[kind], r.ok, probe)
    const wasFirst = t.first === kind
    if (wasFirst) t.first = undefined
    if (!r.ok) {
      t.messages[kind] = r.message
      const e = unhealthyEvent(kind, r.message)
      this.#events?.event(t.pod, e.type, e.reason, e.message, containerRef(t.pod, t.spec.name))
    }
    const after = probeView(t.spec, t.counters, t.messages)
    const waiter = this.#awaiting.get(t.podKey)
    if (before.started !== after.started || before.ready !== after.ready || before.kill !== after.kill) {
      this.#log.debug({ pod: t.podKey, container: t.spec.name, probe: kind, ok: r.ok, message: r.message }, 'probe result changed')
      // A waiting sync reads started and ready itself; a kill needs a sync of its own.
      if (!waiter || before.kill !== after.kill) this.#onChange(t.podKey)
    }
    if (wasFirst) waiter?.()
    if (after.kill) return // the container is restarted; a new one gets new probes
    if (kind === 'startup' && after.started) return
    this.#schedule(t, kind, period)
  }
}
