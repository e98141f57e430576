// One pod sync, start to end (the effectful half of the pod sync): fetch the
// ConfigMaps and Secrets the pod uses, set up volumes, then plan -> apply ->
// read Docker again, a bounded number of rounds, then hand running
// containers to the probe manager and write the status if it changed. A
// pod with a deletionTimestamp is terminated instead, and its deletion
// finished with gracePeriodSeconds=0.

import type Dockerode from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { podReferences } from '../../controlplane/apiserver/authz-graph.ts'
import { ProjectedTokens } from './projected.ts'
import { monotonicMs } from '../../controlplane/client/lease-observer.ts'
import { ApiClientError, resourcePath, type ApiClient } from '../../controlplane/client/client.ts'
import type { Logger } from '../../lib/log.ts'
import type { NodeMetrics } from '../metrics.ts'
import { runHandler, type ProbeManager } from '../probes.ts'
import { buildBinds, buildContainerCreate, buildSandboxCreate, pauseImage, type VolumePath, type ContainerLogRotation } from './container-config.ts'
import { buildPodDns, type ClusterDns } from './dns.ts'
import { ContainerConfigError, expandCommand, resolveEnv } from './env.ts'
import { graceSeconds } from './facts.ts'
import { planPodActions } from './plan.ts'
import type { DockerRuntime } from './runtime.ts'
import { computePodStatus, statusPatch } from './status.ts'
import { stopContainer, terminateContainers } from './terminate.ts'
import type { WithdrawalResult } from '../endpoint-withdrawal.ts'
import type { ActualContainer, BackoffConfig, PodAction, PullFailure, Waiting } from './types.ts'
import { VolumeManager } from './volumes.ts'
import { containerRef, killingMessage, waitEvent } from './events.ts'
import { bridgeName, enableHairpin } from '../network.ts'

const pods = lookupResource('', 'v1', 'pods')!
const configmaps = lookupResource('', 'v1', 'configmaps')!
const secrets = lookupResource('', 'v1', 'secrets')!
const services = lookupResource('', 'v1', 'services')!
const maxRounds = 8
/** How long a sync waits for the first probe results of containers it just started before writing the status. */
const firstProbeWaitMs = 250

export interface EventSink {
  /** `ref.fieldPath`: the container the event is about (`spec.containers{NAME}`). */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, ref?: { fieldPath?: string }): void
}

export interface PodWorkerOptions {
  nodeName: string
  client: ApiClient
  runtime: DockerRuntime
  volumes: VolumeManager
  probes: ProbeManager
  events: EventSink
  logger: Logger
  metrics: NodeMetrics
  network: string
  hostIP: string
  backoff: BackoffConfig
  /** Container log rotation (default: the kubelet's 10Mi × 5). */
  containerLogs?: ContainerLogRotation
  allocatable: { cpu: number; memory: number }
  clusterDns?: ClusterDns
  pauseImage?: string
  /** Re-run the pod's sync after a delay (back-off ends, config errors). */
  requeue(key: string, delayMs: number): void
  /**
   * The Services of a namespace from a synced informer (the node's service
   * proxy), undefined when there is none: container variables then list the API.
   */
  services?: (namespace: string) => KubeObject[] | undefined
  /** Waits, before SIGTERM, until no serving node routes to a terminating pod (../endpoint-withdrawal.ts). */
  withdrawal?: { waitFor(pod: KubeObject, budgetMs: number): Promise<WithdrawalResult> }
}

interface Sources {
  configMaps: Map<string, KubeObject | null>
  secrets: Map<string, KubeObject | null>
}

interface SyncState {
  pod: KubeObject
  actual: ActualContainer[]
  sources: Sources
  volumes?: Map<string, VolumePath>
  waiting: Map<string, Waiting>
}

export class PodWorker {
  #o: PodWorkerOptions
  /** Image pull failures by pod UID, then container name. */
  #pulls = new Map<string, Map<string, PullFailure>>()
  /** The last Services read for container variables, by namespace and enableServiceLinks. */
  #servicesSeen = new Map<string, KubeObject[]>()
  /**
   * When each exited container was first seen exited, by pod UID then
   * container ID, on the monotonic clock the planner runs on: CrashLoopBackOff
   * is timed from there, so a wall-clock step neither cuts it short nor
   * stretches it by the step.
   */
  #exits = new Map<string, Map<string, number>>()
  /** The back-off period each held-back container last had a BackOff Event for, by pod UID then container name. */
  #backoffs = new Map<string, Map<string, number>>()
  /** The newest status this agent wrote, by pod UID (the informer may lag behind). */
  #written = new Map<string, KubeObject>()
  /** Last phase by pod UID, for the running-pods gauge. */
  readonly phases = new Map<string, string>()
  /** The labels of each pod synced here, by UID: the pod log archive stores them with a removed container's log. */
  #labels = new Map<string, Record<string, string>>()

  /** Bound ServiceAccount tokens of projected volumes (TokenRequest, rotated). */
  #tokens: ProjectedTokens
  #refreshQueued = new Map<string, number>()

  constructor(opts: PodWorkerOptions) {
    this.#o = opts
    this.#tokens = new ProjectedTokens({
      request: async (pod, audiences, expirationSeconds) => {
        const sa = pod.spec?.serviceAccountName || 'default'
        const path = `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace!)}/serviceaccounts/${encodeURIComponent(sa)}/token`
        const res = await this.#o.client.call('POST', path, {
          body: {
            apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
            spec: { ...(audiences ? { audiences } : {}), expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid } },
          },
        })
        const expires = Date.parse(res?.status?.expirationTimestamp ?? '')
        const seconds = Number.isFinite(expires) ? Math.max(60, Math.min(expirationSeconds, Math.round((expires - Date.now()) / 1000))) : expirationSeconds
        if (typeof res?.status?.token !== 'string') throw new Error(`TokenRequest for serviceaccount ${sa} answered no token`)
        return { token: res.status.token, expirationSeconds: seconds }
      },
    })
  }

  forget(uid: string): void {
    this.#tokens.forget(uid)
    this.#refreshQueued.delete(uid)
    this.#pulls.delete(uid)
    this.#exits.delete(uid)
    this.#backoffs.delete(uid)
    this.#written.delete(uid)
    this.phases.delete(uid)
    this.#labels.delete(uid)
  }

  /** The labels of pod `uid` as last synced here, until it is forgotten. */
  podLabels(uid: string): Record<string, string> | undefined {
    return this.#labels.get(uid)
  }

  /** The cached pod, with the newer status if this agent wrote one since. */
  #freshest(pod: KubeObject): KubeObject {
    const w = this.#written.get(pod.metadata.uid!)
    if (w && Number(w.metadata.resourceVersion) > Number(pod.metadata.resourceVersion)) return { ...pod, status: w.status }
    return pod
  }

  async sync(key: string, cached: KubeObject, actual: ActualContainer[]): Promise<void> {
    const end = this.#o.metrics.syncDuration.startTimer()
    this.#labels.set(cached.metadata.uid!, { ...(cached.metadata.labels ?? {}) })
    try {
      const pod = this.#freshest(cached)
      const st: SyncState = { pod, actual, sources: { configMaps: new Map(), secrets: new Map() }, waiting: new Map() }
      await this.#prepare(st)
      const waits = await this.#converge(key, st)
      for (const w of waits) {
        if (w.type !== 'wait') continue
        st.waiting.set(w.name, { reason: w.reason, message: w.message })
        // One BackOff per back-off period (its end identifies it), not one per sync: a pod's own status writes sync it again.
        const held = this.#backoffs.get(pod.metadata.uid!) ?? new Map<string, number>()
        if (held.get(w.name) === w.untilMs) continue
        this.#backoffs.set(pod.metadata.uid!, held.set(w.name, w.untilMs))
        const e = waitEvent(pod, w)
        if (e) this.#o.events.event(pod, e.type, e.reason, e.message, containerRef(pod, w.name))
      }
      const next = waits.reduce((m, w) => (w.type === 'wait' ? Math.min(m, w.untilMs) : m), Infinity)
      if (Number.isFinite(next)) this.#o.requeue(key, Math.max(100, next - performance.now() + 50))
      const sandbox = st.actual.find((c) => c.role === 'sandbox' && c.state === 'running')
      const podIP = pod.spec?.hostNetwork ? this.#o.hostIP : sandbox?.ip
      const running = st.actual.filter((c) => c.role !== 'sandbox' && c.state === 'running')
      this.#o.probes.sync(key, pod, running, podIP)
      // A container just started is probed at once: its first result goes into this status write (bounded wait).
      await this.#o.probes.firstResults(key, firstProbeWaitMs)
      await this.#writeStatus(pod, st)
    } finally {
      end()
    }
  }

  async #prepare(st: SyncState): Promise<void> {
    const { pod } = st
    try {
      const refs = podReferences(pod)
      const ns = pod.metadata.namespace!
      for (const name of refs.configmaps) st.sources.configMaps.set(name, await this.#getOptional(configmaps, ns, name))
      for (const name of refs.secrets) st.sources.secrets.set(name, await this.#getOptional(secrets, ns, name))
      st.volumes = await this.#o.volumes.setUp(pod, { ...st.sources, tokens: this.#tokens, allocatable: this.#o.allocatable })
      // One wake-up per token rotation (not one timer per sync).
      const refresh = this.#o.volumes.refreshAt(pod.metadata.uid!)
      if (refresh !== undefined && this.#refreshQueued.get(pod.metadata.uid!) !== refresh) {
        this.#refreshQueued.set(pod.metadata.uid!, refresh)
        this.#o.requeue(`${pod.metadata.namespace}/${pod.metadata.name}`, Math.max(1_000, refresh - monotonicMs()))
      }
    } catch (e) {
      const message = (e as Error).message
      this.#o.events.event(pod, 'Warning', 'FailedMount', message)
      for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) st.waiting.set(c.name, { reason: 'ContainerCreating', message })
      this.#o.requeue(`${pod.metadata.namespace}/${pod.metadata.name}`, 5_000)
    }
  }

  /** The Services whose variables a container of this pod gets: its namespace's (enableServiceLinks) and default/kubernetes. */
  /**
   * Without the API (a control-plane outage) the last list read is used, so
   * a container restarts with the variables it had, as the kubelet's cache.
   */
  async #servicesForEnv(pod: KubeObject): Promise<KubeObject[]> {
    const ns = pod.metadata.namespace ?? 'default'
    const links = pod.spec?.enableServiceLinks !== false
    const key = `${ns}/${links}`
    const cached = this.#o.services?.(ns)
    if (cached) {
      const out = links ? [...cached] : []
      if (!links || ns !== 'default') {
        const api = this.#o.services?.('default')?.find((s) => s.metadata.name === 'kubernetes')
        if (api) out.push(api)
      }
      return out
    }
    try {
      const out: KubeObject[] = links ? (await this.#o.client.list(services, ns)).items : []
      if (!links || ns !== 'default') {
        const api = await this.#getOptional(services, 'default', 'kubernetes')
        if (api) out.push(api)
      }
      this.#servicesSeen.set(key, out)
      return out
    } catch (e) {
      if (e instanceof ApiClientError && e.status < 500) throw e
      return this.#servicesSeen.get(key) ?? []
    }
  }

  async #getOptional(info: typeof configmaps, ns: string, name: string): Promise<KubeObject | null> {
    try {
      return await this.#o.client.get(info, ns, name)
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return null
      throw e
    }
  }

  /**
   * The pod's exited containers, dated on the monotonic clock when first seen
   * exited; a container already exited then is dated back by its age from
   * Docker's finishedAt (this machine's wall clock), never forward.
   */
  #exitedAt(uid: string, actual: readonly ActualContainer[]): (c: ActualContainer) => number {
    const before = this.#exits.get(uid)
    const mono = performance.now()
    const wall = Date.now()
    const seen = new Map<string, number>()
    for (const c of actual) {
      if (c.state !== 'exited') continue
      const finished = Date.parse(c.finishedAt ?? c.createdAt)
      seen.set(c.id, before?.get(c.id) ?? mono - Math.max(0, Number.isFinite(finished) ? wall - finished : 0))
    }
    this.#exits.set(uid, seen)
    return (c) => seen.get(c.id) ?? mono
  }

  /** Plan and apply until only waits are left (bounded); returns the waits. */
  async #converge(key: string, st: SyncState): Promise<PodAction[]> {
    const uid = st.pod.metadata.uid!
    for (let round = 0; round < maxRounds; round++) {
      const actions = planPodActions(st.pod, st.actual, performance.now(), {
        exitedAt: this.#exitedAt(uid, st.actual),
        backoff: this.#o.backoff,
        volumesReady: !!st.volumes,
        probes: (id) => this.#o.probes.view(id),
        pulls: this.#pulls.get(uid) ?? new Map(),
      })
      const steps = actions.filter((a) => a.type !== 'wait')
      if (steps.length === 0) return actions
      for (const a of steps) await this.#apply(st, a)
      st.actual = (await this.#o.runtime.listPod(st.pod.metadata.namespace!, st.pod.metadata.name!)).filter((c) => c.podUid === uid)
    }
    this.#o.requeue(key, 1_000)
    return []
  }

  async #apply(st: SyncState, a: PodAction): Promise<void> {
    const { pod } = st
    if (a.type === 'removeContainer') return await this.#o.runtime.remove(a.id)
    if (a.type === 'killContainer') {
      const c = st.actual.find((x) => x.id === a.id)
      if (!c) return
      if (c.role !== 'sandbox') this.#o.events.event(pod, 'Normal', 'Killing', killingMessage(a.name, a.reason), containerRef(pod, a.name))
      const sandbox = st.actual.find((x) => x.role === 'sandbox' && x.state === 'running')
      return await stopContainer(pod, c, a.graceSeconds, { runtime: this.#o.runtime, logger: this.#o.logger, podIP: sandbox?.ip })
    }
    if (a.type === 'createSandbox') return await this.#createSandbox(pod, a.attempt)
    if (a.type === 'startContainer') return await this.#startContainer(st, a)
  }

  async #resolvConf(pod: KubeObject): Promise<{ path?: string; dns: ReturnType<typeof buildPodDns> }> {
    const dns = buildPodDns(pod, this.#o.clusterDns)
    const path = dns.resolvConf ? await this.#o.volumes.writeResolvConf(pod.metadata.uid!, dns.resolvConf) : undefined
    return { path, dns }
  }

  async #createSandbox(pod: KubeObject, attempt: number): Promise<void> {
    const image = this.#o.pauseImage ?? pauseImage
    if (!(await this.#o.runtime.imagePresent(image))) throw new Error(`the sandbox image ${image} is missing on this node: build it with \`skiff images build\``)
    const { path, dns } = await this.#resolvConf(pod)
    const opts = buildSandboxCreate({ pod, nodeName: this.#o.nodeName, attempt, network: this.#o.network, dns, resolvConfPath: path, image })
    const r = await this.#o.runtime.run(opts)
    if (r.startError) throw new Error(`sandbox of pod ${pod.metadata.namespace}/${pod.metadata.name} failed to start: ${r.startError}`)
    await enableHairpin(bridgeName(this.#o.nodeName))
  }

  /** The image is there, or one pull attempt was made; false when it is still missing. */
  async #ensureImage(st: SyncState, spec: any): Promise<boolean> {
    const uid = st.pod.metadata.uid!
    if (await this.#o.runtime.imagePresent(spec.image)) {
      this.#pulls.get(uid)?.delete(spec.name)
      return true
    }
    if (spec.imagePullPolicy === 'Never') {
      st.waiting.set(spec.name, { reason: 'ErrImageNeverPull', message: `Container image "${spec.image}" is not present with pull policy of Never` })
      return false
    }
    try {
      this.#o.events.event(st.pod, 'Normal', 'Pulling', `Pulling image "${spec.image}"`, containerRef(st.pod, spec.name))
      await this.#o.runtime.pull(spec.image)
      this.#pulls.get(uid)?.delete(spec.name)
      return true
    } catch (e) {
      const message = (e as Error).message
      let m = this.#pulls.get(uid)
      if (!m) this.#pulls.set(uid, (m = new Map()))
      m.set(spec.name, { failures: (m.get(spec.name)?.failures ?? 0) + 1, lastFailureMs: performance.now(), message })
      st.waiting.set(spec.name, { reason: 'ErrImagePull', message })
      this.#o.events.event(st.pod, 'Warning', 'Failed', message, containerRef(st.pod, spec.name))
      return false
    }
  }

  async #startContainer(st: SyncState, a: Extract<PodAction, { type: 'startContainer' }>): Promise<void> {
    const { pod } = st
    const spec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === a.name)
    if (!spec || !st.volumes) return
    if (!(await this.#ensureImage(st, spec))) return
    const sandbox = st.actual.find((c) => c.id === a.sandboxId)
    let env: Map<string, string>
    try {
      const serviceList = await this.#servicesForEnv(pod)
      env = resolveEnv(pod, spec, { ...st.sources, services: serviceList, podIP: pod.spec?.hostNetwork ? this.#o.hostIP : sandbox?.ip, hostIP: this.#o.hostIP, allocatable: this.#o.allocatable })
    } catch (e) {
      if (!(e instanceof ContainerConfigError)) throw e
      st.waiting.set(spec.name, { reason: 'CreateContainerConfigError', message: e.message })
      this.#o.events.event(pod, 'Warning', 'Failed', `Error: ${e.message}`, containerRef(pod, spec.name))
      this.#o.requeue(`${pod.metadata.namespace}/${pod.metadata.name}`, 10_000)
      return
    }
    const { path } = await this.#resolvConf(pod)
    const opts: Dockerode.ContainerCreateOptions = buildContainerCreate({
      pod, spec, nodeName: this.#o.nodeName, role: a.role, attempt: a.attempt, backoffStep: a.backoffStep, sandboxId: a.sandboxId,
      env, ...expandCommand(spec, env), binds: buildBinds(spec, st.volumes, path), logs: this.#o.containerLogs,
    })
    const r = await this.#o.runtime.run(opts)
    if (a.attempt > 0) this.#o.metrics.containerRestarts.inc()
    if (r.startError) return this.#o.events.event(pod, 'Warning', 'Failed', `Error: ${r.startError}`, containerRef(pod, spec.name))
    this.#o.events.event(pod, 'Normal', 'Started', `Started container ${spec.name}`, containerRef(pod, spec.name))
    if (spec.lifecycle?.postStart) await this.#postStart(pod, spec, r.id, sandbox?.ip)
  }

  /** Like the kubelet: a postStart hook that fails kills the container (it is then restarted per restartPolicy). */
  async #postStart(pod: KubeObject, spec: any, id: string, podIP: string | undefined): Promise<void> {
    const target = { podIP: pod.spec?.hostNetwork ? this.#o.hostIP : (podIP ?? '127.0.0.1'), containerId: id, ports: spec.ports ?? [] }
    const r = await runHandler(spec.lifecycle.postStart, target, this.#o.runtime, graceSeconds(pod) * 1000 || 30_000)
    if (r.ok) return
    this.#o.events.event(pod, 'Warning', 'FailedPostStartHook', r.message, containerRef(pod, spec.name))
    await this.#o.runtime.stop(id, 0)
  }

  async #writeStatus(pod: KubeObject, st: SyncState): Promise<void> {
    const status = computePodStatus(pod, st.actual, { now: Date.now(), hostIP: this.#o.hostIP, probes: (id) => this.#o.probes.view(id), waiting: st.waiting })
    this.phases.set(pod.metadata.uid!, status.phase)
    const patch = statusPatch(pod, status)
    if (!patch) return
    try {
      const ns = pod.metadata.namespace!
      const written = await this.#o.client.patch(pods, ns, pod.metadata.name!, { metadata: { uid: pod.metadata.uid }, status: patch }, 'application/merge-patch+json', 'status')
      this.#written.set(pod.metadata.uid!, written)
    } catch (e) {
      // Gone or being deleted meanwhile: the next sync sees it.
      if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return
      throw e
    }
  }

  /** Graceful termination, then the final delete (gracePeriodSeconds=0, only this UID). */
  async terminate(pod: KubeObject, actual: ActualContainer[]): Promise<void> {
    const uid = pod.metadata.uid!
    this.#labels.set(uid, { ...(pod.metadata.labels ?? {}) })
    const sandbox = actual.find((c) => c.role === 'sandbox' && c.state === 'running')
    let grace = graceSeconds(pod)
    if (grace > 0 && this.#o.withdrawal && actual.some((c) => c.state === 'running' && c.role !== 'sandbox')) {
      const w = await this.#o.withdrawal.waitFor(pod, grace * 1000)
      // The wait is part of the grace period, as a preStop hook would be.
      grace = Math.max(0, grace - Math.floor(w.waitedMs / 1000))
      if (w.outcome === 'timeout') {
        const why = w.stillListed
          ? 'it is still listed as a ready endpoint'
          : `not yet applied by ${w.behind!.map((a) => `${a.component} on ${a.node} (at ${a.revision})`).join(', ')}`
        this.#o.events.event(pod, 'Warning', 'EndpointWithdrawalTimeout', `stopping the pod after waiting ${(w.waitedMs / 1000).toFixed(1)}s for its endpoints to be withdrawn (revision ${w.revision ?? '?'}): ${why}`)
      } else if (w.outcome === 'withdrawn') {
        this.#o.logger.debug({ pod: pod.metadata.name, waitedMs: w.waitedMs, revision: w.revision }, 'endpoints withdrawn on every serving node; stopping the pod')
      }
    }
    await terminateContainers(pod, actual, grace, { runtime: this.#o.runtime, logger: this.#o.logger, podIP: sandbox?.ip })
    this.#o.probes.forget(`${pod.metadata.namespace}/${pod.metadata.name}`)
    await this.#o.volumes.tearDown(uid)
    this.forget(uid)
    try {
      const path = resourcePath(pods, pod.metadata.namespace, pod.metadata.name)
      await this.#o.client.call('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } } })
    } catch (e) {
      if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return
      throw e
    }
  }
}
