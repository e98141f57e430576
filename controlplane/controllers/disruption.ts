// The disruption controller (kube-controller-manager's): keeps the status of
// every PodDisruptionBudget (expectedPods, currentHealthy, desiredHealthy,
// disruptionsAllowed, disruptedPods, observedGeneration and the
// DisruptionAllowed condition) as planDisruptionStatus (disruption-plan.ts)
// computes it. Pod, ReplicaSet and Deployment events enqueue the budgets of
// their namespace; the worker writes the status with a resourceVersion
// precondition, so a concurrent eviction (which decrements
// disruptionsAllowed) is never overwritten: the 409 is retried from a
// fresher cache.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject, OwnerReference } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { planDisruptionStatus, type ScaleLookup } from './disruption-plan.ts'
import type { Controller, ControllerContext } from './types.ts'

const pdbsInfo = lookupResource('policy', 'v1', 'poddisruptionbudgets')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const rsInfo = lookupResource('apps', 'v1', 'replicasets')!
const deployInfo = lookupResource('apps', 'v1', 'deployments')!

export class DisruptionController implements Controller {
  readonly name = 'disruption'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #pdbs?: Informer
  #pods?: Informer
  #rs?: Informer
  #deploys?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#pdbs = ctx.informers.for(pdbsInfo)
    this.#pods = ctx.informers.for(podsInfo)
    this.#rs = ctx.informers.for(rsInfo)
    this.#deploys = ctx.informers.for(deployInfo)
    this.#pdbs.addHandlers({ onAdd: (p) => this.#queue!.add(keyFor(p)), onUpdate: (_o, p) => this.#queue!.add(keyFor(p)) })
    const byNamespace = (o: KubeObject) => this.#enqueueNamespace(o.metadata.namespace)
    for (const inf of [this.#pods, this.#rs, this.#deploys]) inf.addHandlers({ onAdd: byNamespace, onUpdate: (_o, n) => byNamespace(n), onDelete: byNamespace })
    await ctx.informers.start()
    this.#queue.start((key) => this.#sync(key))
    for (const p of this.#pdbs.list()) this.#queue.add(keyFor(p))
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
  }

  #enqueueNamespace(ns: string | undefined): void {
    for (const p of this.#pdbs!.list((b) => b.metadata.namespace === ns)) this.#queue!.add(keyFor(p))
  }

  /** A controller's scale: a ReplicaSet owned by a Deployment counts as the Deployment (Kubernetes' finders). */
  #scaleOf: ScaleLookup = (ns: string, ref: OwnerReference) => {
    if (ref.kind !== 'ReplicaSet' || !ref.apiVersion.startsWith('apps/')) return undefined
    const rs = this.#rs!.get(`${ns}/${ref.name}`)
    if (!rs || rs.metadata.uid !== ref.uid) return undefined
    const owner = (rs.metadata.ownerReferences ?? []).find((r) => r.controller)
    if (owner?.kind === 'Deployment') {
      const d = this.#deploys!.get(`${ns}/${owner.name}`)
      if (!d || d.metadata.uid !== owner.uid) return undefined
      return { uid: d.metadata.uid!, replicas: d.spec?.replicas ?? 1 }
    }
    return { uid: rs.metadata.uid!, replicas: rs.spec?.replicas ?? 1 }
  }

  async #sync(key: string): Promise<void> {
    const ctx = this.#ctx!
    const pdb = this.#pdbs!.get(key)
    if (!pdb || pdb.metadata.deletionTimestamp) return
    const pods = this.#pods!.list((p) => p.metadata.namespace === pdb.metadata.namespace)
    const plan = planDisruptionStatus({ pdb, pods, scaleOf: this.#scaleOf, now: Date.now() })
    if (plan.recheckAfterMs !== undefined) this.#queue!.addAfter(key, plan.recheckAfterMs + 1_000)
    if (!plan.status) return
    try {
      await ctx.client.update(pdbsInfo, { ...pdb, status: plan.status }, 'status')
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return
      throw e // 409: an eviction or another writer got there first; retried from a fresher cache
    }
    for (const ev of plan.events) ctx.events.event(pdb, ev.type, ev.reason, ev.message)
  }
}
