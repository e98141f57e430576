// The LoadBalancer speaker (MetalLB layer 2): on every node that runs one,
// it answers on the LAN for the LoadBalancer IPs this node is elected for.
// Contract:
//  - informers on Nodes, Services, EndpointSlices and the node Leases
//    (kube-node-lease); nothing happens before all four have listed;
//  - every change, and a tick every tickMs (a dead node sends no events),
//    re-runs one sync: liveness (liveness.ts) -> election (election.ts) ->
//    the IPs elected to this node -> LanAddresses.reconcile (addresses.ts);
//  - an IP that becomes this node's gets a gratuitous ARP burst and a
//    `nodeAssigned` Event on its Service ("announcing from node X", as
//    MetalLB); a failed apply is retried at the next tick;
//  - the speaker labels its own Node skiff.dev/lb-speaker=<interface>, which
//    is what makes the node a candidate on every speaker;
//  - stop() leaves the addresses; they expire after their kernel lifetime
//    (about deadlineMs) unless a restarted speaker renews or cleans them up;
//    stop({ withdraw: true }) removes the label first, so the others take
//    over at once, then every address it added.
// Observation times use the monotonic clock (performance.now()), so a step
// of the wall clock never kills or revives a node.

import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { ApiEventRecorder } from '../../controlplane/controllers/informers.ts'
import { leaseNamespace } from '../../node/heartbeat.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, createRegistry, type Registry } from '../../lib/metrics.ts'
import { internalIP } from '../ingress/status.ts'
import { LanAddresses, interfaceHolding } from './addresses.ts'
import { electAnnouncers, speakerLabel, type Assignment } from './election.ts'
import { SpeakerError } from './errors.ts'
import { leaseViews, stepLiveness, type LivenessState } from './liveness.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const servicesInfo = lookupResource('', 'v1', 'services')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!

export interface SpeakerOptions {
  /** A client with the node's identity (user system:node:<name>). */
  client: ApiClient
  nodeName: string
  /** The LAN interface; default: the one holding the Node's InternalIP. */
  interface?: string
  /** Run every command in this network namespace (/run/netns/NAME); default: the current one. */
  netns?: string
  logger: Logger
  registry?: Registry
  /** A node is dead when its Lease was not seen to change for this long (default 10 s). */
  deadlineMs?: number
  /** How long gratuitous ARP is repeated after a takeover (default 5 s). */
  garpBurstMs?: number
  /** Re-evaluation period without events (default 1 s). */
  tickMs?: number
  /** Where the record of added addresses lives (default /run/skiff/lb-speaker). */
  stateDir?: string
  /** Set arp_ignore=1/arp_announce=2 on the interface (default true; see addresses.ts). */
  strictArp?: boolean
}

export interface SpeakerMetrics {
  registry: Registry
  announced: Gauge
  liveNodes: Gauge
  silent: Gauge
  takeovers: Counter
  releases: Counter
  failures: Counter
}

function createSpeakerMetrics(registry: Registry): SpeakerMetrics {
  const registers = [registry]
  return {
    registry,
    announced: new Gauge({ name: 'skiff_lb_speaker_announced', help: 'LoadBalancer IPs this node announces on the LAN (1 per IP)', labelNames: ['ip', 'service', 'node'], registers }),
    liveNodes: new Gauge({ name: 'skiff_lb_speaker_live_nodes', help: 'Nodes whose Lease this speaker saw renewed within the deadline', registers }),
    silent: new Gauge({ name: 'skiff_lb_speaker_control_plane_silent', help: '1 while no node Lease changed within the deadline (the verdict is frozen)', registers }),
    takeovers: new Counter({ name: 'skiff_lb_speaker_takeovers_total', help: 'LoadBalancer IPs this node started announcing', registers }),
    releases: new Counter({ name: 'skiff_lb_speaker_releases_total', help: 'LoadBalancer IPs this node stopped announcing', registers }),
    failures: new Counter({ name: 'skiff_lb_speaker_sync_failures_total', help: 'Syncs whose address changes failed (retried at the next tick)', registers }),
  }
}

/** A label value for the interface name (label syntax), else "true". */
export function speakerLabelValue(iface: string): string {
  return /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/.test(iface) ? iface : 'true'
}

export class LoadBalancerSpeaker {
  readonly metrics: SpeakerMetrics
  #o: SpeakerOptions & { deadlineMs: number; tickMs: number }
  #log: Logger
  #nodes: Informer
  #services: Informer
  #slices: Informer
  #leases: Informer
  #events: ApiEventRecorder
  #lan?: LanAddresses
  #iface?: string
  #stopped = true
  #syncing = false
  #dirty = false
  #timer?: NodeJS.Timeout
  #tick?: NodeJS.Timeout
  #liveness?: LivenessState
  #assignments: Assignment[] = []
  /** IPs on the interface after the last sync, by IP: the Services they belong to. */
  #mine = new Map<string, string>()
  #hashes = new Map<string, string>()
  /** The IP set last applied without error (undefined: none yet, or the last apply failed) and when. */
  #applied: { key?: string; at: number } = { at: 0 }
  /** The uid of the Node we labelled (a re-created Node must be labelled again). */
  #labelledUid?: string
  #lastError?: string

  constructor(o: SpeakerOptions) {
    const deadlineMs = o.deadlineMs ?? 10_000
    const tickMs = o.tickMs ?? 1_000
    if (!(deadlineMs > 0) || !(tickMs > 0) || (o.garpBurstMs !== undefined && !(o.garpBurstMs >= 0))) {
      throw new SpeakerError('Options', `deadlineMs (${deadlineMs}) and tickMs (${tickMs}) must be positive, garpBurstMs (${o.garpBurstMs}) not negative`)
    }
    if (!o.nodeName) throw new SpeakerError('Options', 'nodeName is required')
    this.#o = { ...o, deadlineMs, tickMs }
    this.#log = o.logger.child({ component: 'lb-speaker', node: o.nodeName })
    this.metrics = createSpeakerMetrics(o.registry ?? createRegistry())
    this.#events = new ApiEventRecorder({ client: o.client, logger: this.#log, component: 'skiff-lb-speaker' })
    const make = (info: typeof nodesInfo, namespace?: string) => new Informer({ client: o.client, info, logger: this.#log, namespace })
    this.#nodes = make(nodesInfo)
    this.#services = make(servicesInfo)
    this.#slices = make(slicesInfo)
    this.#leases = make(leasesInfo, leaseNamespace)
    const mark = () => this.#markDirty()
    for (const inf of [this.#nodes, this.#services, this.#slices, this.#leases]) inf.addHandlers({ onAdd: mark, onUpdate: (a, b) => a !== b && mark(), onDelete: mark })
  }

  /** Resolves once the informers have listed, the interface is known and the first sync ran. */
  async start(): Promise<void> {
    this.#stopped = false
    try {
      await this.#startSpeaking()
    } catch (e) {
      await this.stop()
      throw e
    }
    this.#log.info({ interface: this.#iface, netns: this.#o.netns, deadlineMs: this.#o.deadlineMs }, 'lb speaker started')
  }

  async #startSpeaking(): Promise<void> {
    await Promise.all([this.#nodes.start(), this.#services.start(), this.#slices.start(), this.#leases.start()])
    this.#iface = this.#o.interface ?? (await this.#detectInterface())
    this.#lan = new LanAddresses({ nodeName: this.#o.nodeName, iface: this.#iface, netns: this.#o.netns, logger: this.#log, stateDir: this.#o.stateDir, garpBurstMs: this.#o.garpBurstMs,
      // Outlives a few missed ticks, and ends about when peers take over from a dead speaker.
      lifetimeS: Math.max(this.#o.deadlineMs, 3 * this.#o.tickMs) / 1000,
    })
    await this.#lan.load()
    if (this.#o.strictArp !== false) {
      await this.#lan.strictArp().catch((e) => this.#log.warn({ err: (e as Error).message }, 'cannot set arp_ignore/arp_announce on the LAN interface; other local addresses may be answered on the LAN too'))
    }
    await this.#label(true)
    this.#tick = setInterval(() => this.#markDirty(), this.#o.tickMs)
    this.#tick.unref()
    this.#dirty = true
    await this.#sync()
  }

  /** Stop. The addresses stay unless withdraw: then the Node label goes first (peers take over), then every address added. */
  async stop(o: { withdraw?: boolean } = {}): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearInterval(this.#tick)
    for (const inf of [this.#nodes, this.#services, this.#slices, this.#leases]) inf.stop()
    for (let i = 0; this.#syncing && i < 500; i++) await new Promise((r) => setTimeout(r, 20))
    this.#lan?.stopGarps()
    if (!o.withdraw) return
    await this.#label(false).catch((e) => this.#log.warn({ err: (e as Error).message }, 'cannot remove the lb-speaker label from the Node; peers take over once it is seen dead'))
    const removed = (await this.#lan?.withdrawAll()) ?? []
    for (const ip of removed) this.#released(ip)
    if (removed.length) this.#log.info({ addresses: removed }, 'withdrew LoadBalancer addresses')
  }

  /** The IPs this node announces (after the last sync), sorted. */
  get announcing(): string[] {
    return [...this.#mine.keys()].sort()
  }

  /** The last election: who announces each IP, from this speaker's view. */
  get assignments(): readonly Assignment[] {
    return this.#assignments
  }

  /** The last liveness verdict (alive nodes, frozen or not). */
  get liveness(): LivenessState | undefined {
    return this.#liveness
  }

  debugText(): string {
    const now = performance.now()
    const l = this.#liveness
    const state = !l ? 'not started' : l.frozen ? `SILENT for ${fmt(now - (l.frozenSinceMs ?? now))}: no Lease changed within the deadline, verdict frozen` : 'ok'
    const lines = [`# skiff lb-speaker node=${this.#o.nodeName} interface=${this.#iface ?? '?'}${this.#o.netns ? ` netns=${this.#o.netns}` : ''} deadline=${fmt(this.#o.deadlineMs)} control-plane=${state}`]
    if (this.#lastError) lines.push(`# last sync failed: ${this.#lastError}`)
    for (const n of [...this.#nodes.list()].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))) {
      const name = n.metadata.name!
      const seen = l?.seen.get(name)
      const speaker = n.metadata.labels?.[speakerLabel]
      lines.push(`node ${name} ${speaker ? `speaker(${speaker})` : 'no-speaker'} ${l?.alive.has(name) ? 'alive' : 'dead'} ${seen ? `lease changed ${fmt(now - seen.observedAtMs)} ago` : 'no lease seen'}`)
    }
    for (const a of this.#assignments) {
      const who = a.node ? `${a.node}${a.node === this.#o.nodeName ? ' (this node)' : ''}` : `nobody: ${a.reason}`
      lines.push(`ip ${a.ip} ${a.services.join(',')} -> ${who} [${a.candidates} candidate${a.candidates === 1 ? '' : 's'}]`)
    }
    return lines.join('\n') + '\n'
  }

  async #detectInterface(): Promise<string> {
    const node = this.#nodes.get(this.#o.nodeName)
    const ip = node ? internalIP(node) : undefined
    if (!ip) throw new SpeakerError('Interface', `Node ${this.#o.nodeName} has no InternalIP yet; pass the LAN interface explicitly`)
    return await interfaceHolding(this.#o.netns, ip)
  }

  /** Put (on) or remove (off) the speaker label on our Node. */
  async #label(on: boolean): Promise<void> {
    const value = on ? speakerLabelValue(this.#iface!) : null
    const node = await this.#o.client.patch(nodesInfo, undefined, this.#o.nodeName, { metadata: { labels: { [speakerLabel]: value } } }, 'application/merge-patch+json')
    this.#labelledUid = on ? node.metadata.uid : undefined
  }

  #markDirty(): void {
    this.#dirty = true
    if (this.#stopped || this.#timer || this.#syncing) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#sync()
    }, 0)
  }

  async #sync(): Promise<void> {
    if (this.#stopped || this.#syncing || !this.#dirty || !this.#lan) return
    this.#syncing = true
    this.#dirty = false
    try {
      const prev = this.#liveness
      const l = stepLiveness(prev, { leases: leaseViews(this.#leases.list()), nowMs: performance.now(), deadlineMs: this.#o.deadlineMs })
      this.#liveness = l
      this.#noteLiveness(prev, l)
      const assignments = electAnnouncers({ services: this.#services.list(), slices: this.#slices.list(), nodes: this.#nodes.list(), alive: l.alive, hashes: this.#hashes })
      this.#noteAssignments(assignments)
      this.#assignments = assignments
      const desired = new Map(assignments.filter((a) => a.node === this.#o.nodeName).map((a) => [a.ip, a.services.join(',')]))
      await this.#apply(desired)
      await this.#relabelIfRecreated()
      this.#lastError = undefined
    } catch (e) {
      this.metrics.failures.inc()
      this.#lastError = (e as Error).message
      this.#log.warn({ err: this.#lastError }, 'lb speaker sync failed; retrying at the next tick')
    } finally {
      this.#syncing = false
    }
    if (this.#dirty) this.#markDirty()
  }

  async #apply(desired: Map<string, string>): Promise<void> {
    // The kernel is touched when the set changes, after a failure, and often enough to renew the lifetimes;
    // an empty set applied without error has no lifetime to renew (no `ip` run on every tick of an idle node).
    const key = [...desired.keys()].sort().join(',')
    if (key === this.#applied.key && (key === '' || performance.now() - this.#applied.at < this.#lan!.refreshMs)) return
    this.#applied = { at: 0 }
    const r = await this.#lan!.reconcile(new Set(desired.keys()))
    for (const ip of r.conflicts) this.#log.warn({ ip }, 'the LoadBalancer IP is already a host address on the LAN interface; not adding it')
    for (const ip of r.held) if (!this.#mine.has(ip)) this.#tookOver(ip, desired.get(ip)!)
    const held = new Set([...r.held, ...r.notRemoved])
    for (const ip of [...this.#mine.keys()]) if (!held.has(ip)) this.#released(ip)
    if (r.error) throw new Error(r.error)
    this.#applied = { key, at: performance.now() }
  }

  #tookOver(ip: string, services: string): void {
    this.#mine.set(ip, services)
    this.#lan!.garp(ip)
    this.metrics.takeovers.inc()
    this.metrics.announced.set({ ip, service: services, node: this.#o.nodeName }, 1)
    this.#log.info({ ip, services }, 'announcing LoadBalancer IP from this node')
    for (const key of services.split(',')) {
      const svc = this.#services.get(key)
      if (svc) this.#events.event({ ...svc, apiVersion: 'v1', kind: 'Service' }, 'Normal', 'nodeAssigned', `announcing from node "${this.#o.nodeName}" with protocol "layer2"`)
    }
  }

  #released(ip: string): void {
    const services = this.#mine.get(ip)
    this.#mine.delete(ip)
    if (services === undefined) return
    this.metrics.releases.inc()
    this.metrics.announced.remove({ ip, service: services, node: this.#o.nodeName })
    this.#log.info({ ip, services }, 'no longer announcing LoadBalancer IP from this node')
  }

  #noteLiveness(prev: LivenessState | undefined, l: LivenessState): void {
    this.metrics.liveNodes.set(l.alive.size)
    this.metrics.silent.set(l.frozen ? 1 : 0)
    if (l.frozen && !prev?.frozen) this.#log.warn({ deadlineMs: this.#o.deadlineMs }, 'no node Lease changed within the deadline: taking the control plane as down and keeping every announcement as it is')
    if (!l.frozen && prev?.frozen) this.#log.info('node Leases change again: judging liveness again')
    if (!prev) return
    for (const n of l.alive) if (!prev.alive.has(n)) this.#log.info({ peer: n }, 'node alive')
    for (const n of prev.alive) if (!l.alive.has(n)) this.#log.warn({ peer: n, deadlineMs: this.#o.deadlineMs }, 'node dead: its Lease did not change within the deadline')
  }

  #noteAssignments(next: Assignment[]): void {
    const before = new Map(this.#assignments.map((a) => [a.ip, a.node]))
    for (const a of next) {
      const was = before.get(a.ip)
      if (before.has(a.ip) && was === a.node) continue
      const level = a.node === this.#o.nodeName || was === this.#o.nodeName ? 'info' : 'debug'
      this.#log[level]({ ip: a.ip, services: a.services, from: was, to: a.node, reason: a.reason }, 'LoadBalancer IP assignment')
    }
  }

  /** A Node deleted and registered again has lost the label that makes it a candidate: put it back. */
  async #relabelIfRecreated(): Promise<void> {
    const node = this.#nodes.get(this.#o.nodeName)
    if (!node || !this.#labelledUid || node.metadata.uid === this.#labelledUid || node.metadata.labels?.[speakerLabel] !== undefined) return
    this.#log.info('our Node was created again; labelling it as a speaker node')
    await this.#label(true)
  }
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`
}
