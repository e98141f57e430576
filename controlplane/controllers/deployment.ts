// The Deployment controller: the thin effectful layer around planDeployment
// (deployment-rollout.ts). A sync reads the Deployment, the ReplicaSets it
// controls (adopting matching orphans, releasing ones it no longer selects)
// and their pods from the informer caches, plans, then writes in order: the
// new ReplicaSet, resized or re-annotated ReplicaSets, the Deployment's
// revision annotation, its status (only when changed), and old ReplicaSets
// beyond revisionHistoryLimit. Every write carries the resourceVersion it was
// planned from, so a stale cache costs a retry, never a wrong write.
//
// Any change to a Deployment, to one of its ReplicaSets or to one of their
// pods enqueues the Deployment (pods count towards its status directly).

import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { applyClaims, canonicalJson, claimObjects, controllerRefOf, resolveControllerRef, selectorOf, selects, templatesEqual, type Pod } from './pod-template.ts'
import { planDeployment, type DeploymentPlan } from './deployment-rollout.ts'
import { deploymentsInfo } from './deployment-replicasets.ts'
import { podsInfo, replicaSetsInfo } from './replicaset.ts'
import { SyncLoop } from './workload-loop.ts'
import type { Controller, ControllerContext } from './types.ts'

export { deploymentsInfo }

export class DeploymentController implements Controller {
  readonly name = 'deployment'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #dInf?: Informer
  #rsInf?: Informer
  #podInf?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const dInf = (this.#dInf = ctx.informers.for(deploymentsInfo))
    const rsInf = (this.#rsInf = ctx.informers.for(replicaSetsInfo))
    const podInf = (this.#podInf = ctx.informers.for(podsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [dInf, rsInf, podInf], sync: (k) => this.#sync(k) }))
    const enqueue = (d: KubeObject | undefined) => d && loop.enqueue(keyFor(d))
    dInf.addHandlers({ onAdd: enqueue, onUpdate: (_, d) => enqueue(d), onDelete: enqueue })

    const ownerOf = (rs: KubeObject) => resolveControllerRef(dInf, rs, 'Deployment')
    const rsChanged = (rs: KubeObject, old?: KubeObject) => {
      if (old && controllerRefOf(old)?.uid !== controllerRefOf(rs)?.uid) enqueue(ownerOf(old))
      const d = ownerOf(rs)
      if (d) return enqueue(d)
      if (controllerRefOf(rs)) return
      // An orphan: every Deployment that would adopt it looks.
      for (const x of dInf.list((x) => x.metadata.namespace === rs.metadata.namespace && selects(selectorOf(x), rs.metadata.labels))) enqueue(x)
    }
    rsInf.addHandlers({
      onAdd: (rs) => rsChanged(rs),
      onUpdate: (old, rs) => old.metadata.resourceVersion !== rs.metadata.resourceVersion && rsChanged(rs, old),
      onDelete: (rs) => enqueue(ownerOf(rs)),
    })

    const podChanged = (pod: Pod) => {
      const rs = resolveControllerRef(rsInf, pod, 'ReplicaSet')
      if (rs) enqueue(ownerOf(rs))
    }
    podInf.addHandlers({
      onAdd: podChanged,
      onUpdate: (old, pod) => old.metadata.resourceVersion !== pod.metadata.resourceVersion && podChanged(pod),
      onDelete: podChanged,
    })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const ctx = this.#ctx!
    const d = this.#dInf!.get(key)
    if (!d || !selectorOf(d)) return undefined
    const ns = d.metadata.namespace
    const claims = claimObjects(d, selectorOf(d), this.#rsInf!.list((rs) => rs.metadata.namespace === ns))
    const adopted = await applyClaims({ client: ctx.client, info: replicaSetsInfo, ownerInfo: deploymentsInfo, owner: d, claims })
    const replicaSets = [...claims.owned, ...adopted]
    const uids = new Set(replicaSets.map((rs) => rs.metadata.uid))
    const podsByRs = new Map<string, Pod[]>()
    for (const pod of this.#podInf!.list((p) => p.metadata.namespace === ns)) {
      const uid = controllerRefOf(pod)?.uid
      if (!uid || !uids.has(uid)) continue
      const list = podsByRs.get(uid) ?? []
      list.push(pod)
      podsByRs.set(uid, list)
    }
    const plan = planDeployment({ deployment: d, replicaSets, podsByRs, now: Date.now() })
    if (!(await this.#apply(d, plan))) return undefined
    return plan.requeueAfterMs
  }

  /** Write the plan; false when it was cut short and the next event will sync again. */
  async #apply(d: KubeObject, plan: DeploymentPlan): Promise<boolean> {
    const ctx = this.#ctx!
    if (plan.create && !(await this.#createReplicaSet(d, plan.create))) return false
    for (const rs of plan.update) await ctx.client.update(replicaSetsInfo, rs)
    for (const e of plan.events) ctx.events.event(d, e.type, e.reason, e.message)
    let current = d
    const changed = Object.fromEntries(Object.entries(plan.annotations ?? {}).filter(([k, v]) => d.metadata.annotations?.[k] !== v))
    if (Object.keys(changed).length) {
      const patch = { metadata: { resourceVersion: d.metadata.resourceVersion, annotations: changed } }
      current = await ctx.client.patch(deploymentsInfo, d.metadata.namespace, d.metadata.name!, patch, 'application/merge-patch+json')
    }
    if (canonicalJson(plan.status) !== canonicalJson(d.status ?? {})) {
      await ctx.client.update(deploymentsInfo, { ...clone(current), status: plan.status }, 'status')
    }
    for (const rs of plan.delete) {
      const path = resourcePath(replicaSetsInfo, rs.metadata.namespace, rs.metadata.name)
      await ctx.client.call('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: rs.metadata.uid, resourceVersion: rs.metadata.resourceVersion } } }).catch((e) => {
        if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e
      })
    }
    return true
  }

  /**
   * Create the new ReplicaSet. A name already taken by this Deployment's own
   * ReplicaSet for the same template means the cache is behind (false: wait
   * for it); taken by anything else is a hash collision: collisionCount goes
   * up, so the next sync hashes to a different name.
   */
  async #createReplicaSet(d: KubeObject, rs: KubeObject): Promise<boolean> {
    const ctx = this.#ctx!
    try {
      await ctx.client.create(replicaSetsInfo, d.metadata.namespace, rs)
      return true
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 409)) throw e
      const existing = await ctx.client.get(replicaSetsInfo, d.metadata.namespace, rs.metadata.name!)
      if (controllerRefOf(existing)?.uid === d.metadata.uid && templatesEqual(existing.spec?.template, d.spec?.template)) return false
      const status = { ...(d.status ?? {}), collisionCount: Number(d.status?.collisionCount ?? 0) + 1 }
      await ctx.client.update(deploymentsInfo, { ...clone(d), status }, 'status')
      throw e
    }
  }
}

export const deploymentController = (): Controller => new DeploymentController()
