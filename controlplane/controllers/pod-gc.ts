// Pod garbage collection (Kubernetes' PodGC controller), the two parts that
// matter for node maintenance:
//  - orphans: a pod bound to a Node that no longer exists is deleted at
//    once (grace 0: no agent is left to finish a graceful deletion), after
//    the node has been seen missing for a quarantine (podGCQuarantineMs,
//    Kubernetes' 40 s, so a node being re-registered is not mistaken) and a
//    GET confirms it is gone. Its status is written first, as Kubernetes
//    does: phase Failed (unless already finished) and DisruptionTarget
//    (DeletionByPodGC). Its ReplicaSet then replaces it elsewhere;
//  - unscheduled terminating pods: a pod being deleted that never got a
//    node is deleted at once.
// Polled every podGCPeriodMs (Kubernetes' 20 s). planPodGC is pure.

import { withDisruptionTarget } from '../api/disruption.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { LeaseObserver } from '../client/lease-observer.ts'
import type { Controller, ControllerContext } from './types.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const podsInfo = lookupResource('', 'v1', 'pods')!

export interface PodGCInput {
  pods: readonly KubeObject[]
  nodes: ReadonlySet<string>
  /** How long (the caller's clock) a node name has been seen missing. */
  missingForMs(node: string): number
  quarantineMs: number
}

export interface PodGCPlan {
  /** Pods on nodes gone for the quarantine: mark Failed, then force delete. */
  orphans: KubeObject[]
  /** Terminating pods that never had a node: force delete. */
  unscheduledTerminating: KubeObject[]
  /** Node names referenced by pods but missing (the caller confirms them with a GET). */
  missingNodes: Set<string>
}

export function planPodGC(input: PodGCInput): PodGCPlan {
  const plan: PodGCPlan = { orphans: [], unscheduledTerminating: [], missingNodes: new Set() }
  for (const pod of input.pods) {
    const node = pod.spec?.nodeName
    if (!node) {
      if (pod.metadata.deletionTimestamp) plan.unscheduledTerminating.push(pod)
      continue
    }
    if (input.nodes.has(node)) continue
    plan.missingNodes.add(node)
    if (input.missingForMs(node) >= input.quarantineMs) plan.orphans.push(pod)
  }
  return plan
}

/** The status PodGC writes before deleting an orphan: Failed, with DisruptionTarget (DeletionByPodGC). */
export function orphanStatus(pod: KubeObject, now: number): Record<string, any> {
  const conditions = withDisruptionTarget(pod, 'DeletionByPodGC', 'PodGC: node no longer exists', now)
  const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
  return { ...pod.status, ...(finished ? {} : { phase: 'Failed' }), conditions }
}

export class PodGCController implements Controller {
  readonly name = 'pod-garbage-collector'
  #ctx?: ControllerContext
  #nodes?: Informer
  #pods?: Informer
  #seen = new LeaseObserver()
  #timer?: NodeJS.Timeout
  #running = false

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#nodes = ctx.informers.for(nodesInfo)
    this.#pods = ctx.informers.for(podsInfo)
    await ctx.informers.start()
    this.#timer = setInterval(() => void this.#tick(), ctx.config.podGCPeriodMs ?? 20_000)
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#seen = new LeaseObserver()
  }

  async #tick(): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      await this.#gc()
    } catch (e) {
      this.#ctx!.logger.warn({ controller: this.name, err: (e as Error).message }, 'pod garbage collection failed; the next period retries')
    } finally {
      this.#running = false
    }
  }

  async #gc(): Promise<void> {
    const ctx = this.#ctx!
    const nodes = new Set(this.#nodes!.list().map((n) => n.metadata.name!))
    const mono = this.#seen.now()
    const plan = planPodGC({
      pods: this.#pods!.list(),
      nodes,
      missingForMs: (n) => mono - this.#seen.observe(`missing/${n}`, 'missing', mono),
      quarantineMs: ctx.config.podGCQuarantineMs ?? 40_000,
    })
    for (const n of nodes) this.#seen.forget(`missing/${n}`)
    const confirmed = new Map<string, boolean>()
    for (const pod of plan.orphans) {
      const node = pod.spec.nodeName as string
      if (!confirmed.has(node)) confirmed.set(node, await this.#nodeGone(node))
      if (!confirmed.get(node)) continue
      ctx.logger.info({ controller: this.name, pod: `${pod.metadata.namespace}/${pod.metadata.name}`, node }, 'deleting a pod whose node no longer exists')
      await ignore(ctx.client.update(podsInfo, { ...pod, status: orphanStatus(pod, Date.now()) }, 'status'), [404, 409])
      await this.#forceDelete(pod)
    }
    for (const pod of plan.unscheduledTerminating) await this.#forceDelete(pod)
  }

  async #nodeGone(name: string): Promise<boolean> {
    try {
      await this.#ctx!.client.get(nodesInfo, undefined, name)
      return false
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return true
      throw e
    }
  }

  #forceDelete(pod: KubeObject): Promise<void> {
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } }
    return ignore(this.#ctx!.client.call('DELETE', resourcePath(podsInfo, pod.metadata.namespace, pod.metadata.name), { body }), [404, 409])
  }
}

async function ignore(p: Promise<unknown>, statuses: number[]): Promise<void> {
  try {
    await p
  } catch (e) {
    if (!(e instanceof ApiClientError && statuses.includes(e.status))) throw e
  }
}
