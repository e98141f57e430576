// Node lifecycle: a Node whose agent stops renewing its Lease in
// kube-node-lease goes Ready=Unknown with the `unreachable` taints, and its
// pods are evicted after a delay so their controllers replace them elsewhere.
//
// Silence is the signal, so the controller polls every nodeMonitorPeriod
// instead of waiting for events. Every duration is measured on this
// process's monotonic clock from what it observed, never from a timestamp
// written by another machine compared with our wall clock (as Kubernetes'
// node controller and taint manager do), so a wall-clock step on any
// machine marks no node NotReady and evicts nothing:
//  - a heartbeat is the moment the node's Lease was seen to change
//    (../client/lease-observer.ts); at first sight (a new leader, a new
//    node) the Lease counts as just renewed, so a control plane coming back
//    after an outage gives every node a full grace period to renew, instead
//    of declaring all of them dead at once;
//  - eviction counts from when this controller first saw the node needing
//    its taint, and a force delete from when it first saw the pod
//    terminating; a new leader starts both again (the Kubernetes taint
//    manager does the same).
//
// planNodeLifecycle is pure: node, its pods, those durations, now -> the
// conditions, taints, pod writes and events to make. The controller applies
// them, every write guarded by resourceVersion.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { LeaseObserver, leaseRecordKey } from '../client/lease-observer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { isPodReady } from './endpoints.ts'
import { evictForTaint } from './taint-eviction.ts'
import type { Controller, ControllerContext } from './types.ts'
import { podTolerations, toleratesTaint } from '../scheduler/plugins/tolerations.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!

export const unreachableTaint = 'node.kubernetes.io/unreachable'
export const notReadyTaint = 'node.kubernetes.io/not-ready'
/** Kubernetes' TaintNodesByCondition: a cordoned node (spec.unschedulable) carries this NoSchedule taint. */
export const unschedulableTaint = 'node.kubernetes.io/unschedulable'
const managedTaints = new Set([unreachableTaint, notReadyTaint, unschedulableTaint])

export interface NodeLifecycleInput {
  node: KubeObject
  /** Pods bound to the node. */
  pods: KubeObject[]
  /** How long the node's Lease has not been seen to change. */
  silentForMs: number
  /** How long the node has been seen needing the taint it needs now (neededTaint); unused when it needs none. */
  taintedForMs: number
  /** Per terminating pod (uid): how long it has been seen terminating. */
  terminatingForMs: ReadonlyMap<string, number>
  /** Wall-clock time, only for the times written (lastTransitionTime, timeAdded). */
  now: number
  gracePeriodMs: number
  podEvictionTimeoutMs: number
}

export interface NodeLifecyclePlan {
  /** Replacement status.conditions, when they must change. */
  conditions?: any[]
  /** Replacement spec.taints, when they must change. */
  taints?: any[]
  nodeEvent?: { type: 'Normal' | 'Warning'; reason: string; message: string }
  markNotReady: KubeObject[]
  evict: KubeObject[]
  forceDelete: KubeObject[]
}

const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')

/** Every condition Unknown, as Kubernetes does when the kubelet goes silent; undefined when already so. */
function unknownConditions(node: KubeObject, now: number): any[] | undefined {
  const conds: any[] = Array.isArray(node.status?.conditions) ? node.status.conditions : []
  const ready = conds.find((c) => c?.type === 'Ready')
  if (ready?.status === 'Unknown') return undefined
  const at = time(now)
  const out = conds.map((c) => (c?.status === 'Unknown' ? c : { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: at }))
  if (!ready) out.push({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastHeartbeatTime: node.metadata.creationTimestamp, lastTransitionTime: at })
  return out
}

function desiredTaints(node: KubeObject, key: string | undefined, now: number): any[] | undefined {
  const current: any[] = Array.isArray(node.spec?.taints) ? node.spec.taints : []
  const want = key ? ['NoSchedule', 'NoExecute'].map((effect) => current.find((t) => t?.key === key && t.effect === effect) ?? { key, effect, ...(effect === 'NoExecute' ? { timeAdded: time(now) } : {}) }) : []
  if (node.spec?.unschedulable === true) want.push(current.find((t) => t?.key === unschedulableTaint && t.effect === 'NoSchedule') ?? { key: unschedulableTaint, effect: 'NoSchedule' })
  const next = [...current.filter((t) => !managedTaints.has(t?.key)), ...want]
  const same = next.length === current.length && next.every((t) => current.includes(t))
  return same ? undefined : next
}

/**
 * How long `pod` stays on a node with the NoExecute taint `key`: the shortest
 * tolerationSeconds of a matching toleration, never (undefined) for a matching
 * toleration without seconds (DaemonSet pods), else the configured default.
 * Kubernetes gets its 300 s default by adding such tolerations to every pod.
 */
export function evictionDelayMs(pod: KubeObject, key: string, defaultMs: number): number | undefined {
  const matching: any[] = podTolerations(pod).filter((t) => toleratesTaint(t, { key, effect: 'NoExecute' }))
  if (matching.length === 0) return defaultMs
  if (matching.some((t: any) => t.tolerationSeconds === undefined || t.tolerationSeconds === null)) return undefined
  return Math.max(0, Math.min(...matching.map((t: any) => Number(t.tolerationSeconds)))) * 1000
}

/**
 * The NoExecute taint a node needs: `unreachable` while its Lease is silent;
 * while it is fresh the condition is the agent's, and only its own
 * Ready=False keeps the `not-ready` taints.
 */
export function neededTaint(node: KubeObject, silent: boolean): string | undefined {
  if (silent) return unreachableTaint
  const conds: any[] = Array.isArray(node.status?.conditions) ? node.status.conditions : []
  return conds.find((c) => c?.type === 'Ready')?.status === 'False' ? notReadyTaint : undefined
}

export function planNodeLifecycle(input: NodeLifecycleInput): NodeLifecyclePlan {
  const { node, now } = input
  const plan: NodeLifecyclePlan = { markNotReady: [], evict: [], forceDelete: [] }
  const silent = input.silentForMs > input.gracePeriodMs
  plan.conditions = silent ? unknownConditions(node, now) : undefined
  if (plan.conditions) plan.nodeEvent = { type: 'Normal', reason: 'NodeNotReady', message: `Node ${node.metadata.name} status is now: NodeNotReady` }
  const taintKey = neededTaint(node, silent)
  plan.taints = desiredTaints(node, taintKey, now)
  if (!taintKey) return plan
  for (const pod of input.pods) {
    const phase = pod.status?.phase
    if (phase === 'Succeeded' || phase === 'Failed') continue
    if (pod.metadata.deletionTimestamp) {
      // Nobody on an unreachable node will finish the deletion: force it after the grace period.
      const graceMs = Number(pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000
      if (silent && (input.terminatingForMs.get(pod.metadata.uid!) ?? 0) >= graceMs) plan.forceDelete.push(pod)
      continue
    }
    const delay = evictionDelayMs(pod, taintKey, input.podEvictionTimeoutMs)
    if (delay !== undefined && input.taintedForMs >= delay) plan.evict.push(pod)
    else if (silent && isPodReady(pod)) plan.markNotReady.push(pod)
  }
  return plan
}

// ---------------------------------------------------------------------------
// The controller

export class NodeLifecycleController implements Controller {
  readonly name = 'node-lifecycle'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #nodes?: Informer
  #leases?: Informer
  #pods?: Informer
  #podsByNode = new Map<string, Map<string, KubeObject>>()
  /** Since when (monotonic) each node's Lease record, needed taint, and each pod's deletion have been seen. */
  #seen = new LeaseObserver()
  #timer?: NodeJS.Timeout

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger, workers: 2 })
    this.#nodes = ctx.informers.for(nodesInfo)
    this.#leases = ctx.informers.for(leasesInfo)
    this.#pods = ctx.informers.for(podsInfo)
    this.#nodes.addHandlers({
      onAdd: (n) => this.#queue!.add(n.metadata.name!),
      onUpdate: (o, n) => (o.spec?.unschedulable === true) !== (n.spec?.unschedulable === true) && this.#queue!.add(n.metadata.name!),
      onDelete: (n) => this.#forgetNode(n.metadata.name!),
    })
    // A renewal is dated when it arrives, and clears the taints at once rather than on the next tick.
    this.#leases.addHandlers({
      onUpdate: (_o, l) => {
        if (l.metadata.namespace !== 'kube-node-lease') return
        this.#seen.observe(`lease/${l.metadata.name}`, leaseRecordKey(l))
        this.#queue!.add(l.metadata.name!)
      },
    })
    this.#pods.addHandlers({ onAdd: (p) => this.#index(undefined, p), onUpdate: (o, p) => this.#index(o, p), onDelete: (p) => this.#index(p, undefined) })
    await ctx.informers.start()
    this.#queue.start((name) => this.#sync(name))
    const period = ctx.config.nodeMonitorPeriodMs ?? 5_000
    this.#timer = setInterval(() => {
      for (const n of this.#nodes!.list()) this.#queue!.add(n.metadata.name!)
    }, period)
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#queue?.stop()
    this.#seen = new LeaseObserver()
    this.#podsByNode.clear()
  }

  #forgetNode(name: string): void {
    this.#seen.forget(`lease/${name}`)
    this.#seen.forget(`taint/${name}`)
  }

  #index(old: KubeObject | undefined, pod: KubeObject | undefined): void {
    const oldNode = old?.spec?.nodeName
    if (oldNode && old) this.#podsByNode.get(oldNode)?.delete(keyFor(old))
    if (old && !pod) this.#seen.forget(`deleting/${old.metadata.uid}`)
    const node = pod?.spec?.nodeName
    if (!node || !pod) return
    let m = this.#podsByNode.get(node)
    if (!m) this.#podsByNode.set(node, (m = new Map()))
    m.set(keyFor(pod), pod)
  }

  async #sync(name: string): Promise<void> {
    const ctx = this.#ctx!
    const node = this.#nodes!.get(name)
    if (!node) return
    const mono = this.#seen.now()
    const since = (key: string, state: string) => mono - this.#seen.observe(key, state, mono)
    const pods = [...(this.#podsByNode.get(name)?.values() ?? [])]
    const silentForMs = since(`lease/${name}`, leaseRecordKey(this.#leases!.get(`kube-node-lease/${name}`)))
    const terminatingForMs = new Map<string, number>()
    for (const p of pods) if (p.metadata.deletionTimestamp) terminatingForMs.set(p.metadata.uid!, since(`deleting/${p.metadata.uid}`, p.metadata.deletionTimestamp))
    const plan = planNodeLifecycle({
      node,
      pods,
      silentForMs,
      taintedForMs: since(`taint/${name}`, neededTaint(node, silentForMs > ctx.config.nodeMonitorGracePeriodMs) ?? ''),
      terminatingForMs,
      now: Date.now(),
      gracePeriodMs: ctx.config.nodeMonitorGracePeriodMs,
      podEvictionTimeoutMs: ctx.config.podEvictionTimeoutMs,
    })
    await this.#applyNode(node, plan)
    await this.#applyPods(plan)
  }

  async #applyNode(node: KubeObject, plan: NodeLifecyclePlan): Promise<void> {
    const ctx = this.#ctx!
    let current = node
    if (plan.taints) {
      current = await ctx.client.update(nodesInfo, { ...current, spec: { ...current.spec, taints: plan.taints } })
      ctx.logger.info({ node: node.metadata.name, taints: plan.taints.map((t) => `${t.key}:${t.effect}`) }, 'node taints changed')
    }
    if (plan.conditions) {
      await ctx.client.update(nodesInfo, { ...current, status: { ...current.status, conditions: plan.conditions } }, 'status')
      ctx.logger.warn({ node: node.metadata.name }, 'node stopped renewing its lease: Ready=Unknown')
    }
    if (plan.nodeEvent) ctx.events.event(node, plan.nodeEvent.type, plan.nodeEvent.reason, plan.nodeEvent.message)
  }

  async #applyPods(plan: NodeLifecyclePlan): Promise<void> {
    const { client, events } = this.#ctx!
    for (const pod of plan.markNotReady) {
      const at = time(Date.now())
      const conditions = (pod.status?.conditions ?? []).map((c: any) => (c?.type === 'Ready' ? { ...c, status: 'False', lastTransitionTime: at } : c))
      await ignoreGone(client.update(podsInfo, { ...pod, status: { ...pod.status, conditions } }, 'status'))
    }
    for (const pod of plan.evict) await evictForTaint({ client, events }, pod)
    for (const pod of plan.forceDelete) await ignoreGone(this.#delete(pod, { gracePeriodSeconds: 0 }))
  }

  #delete(pod: KubeObject, opts: { gracePeriodSeconds?: number }): Promise<unknown> {
    // The uid precondition makes sure a replacement pod of the same name is never hit.
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: pod.metadata.uid }, ...opts }
    return this.#ctx!.client.call('DELETE', resourcePath(podsInfo, pod.metadata.namespace, pod.metadata.name), { body })
  }
}

async function ignoreGone(p: Promise<unknown>): Promise<void> {
  try {
    await p
  } catch (e) {
    if (!(e instanceof ApiClientError && e.status === 404)) throw e
  }
}
