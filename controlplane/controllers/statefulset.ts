// The StatefulSet controller: the effectful shell around statefulset-plan.ts
// (what to create and delete) and controller-revision.ts (the history).
//
// One sync of `namespace/name`: claim the pods (adopt orphans the selector
// matches whose name is <set>-<n>, release ours it no longer matches) and the
// ControllerRevisions; make sure the revision of the current template exists
// (the update revision; the current revision is status.currentRevision while
// it exists); create the planned claims, then the pods (names are fixed, so a
// stale cache can at worst make a create answer 409 AlreadyExists); delete
// the planned pods (uid precondition); drop history beyond
// revisionHistoryLimit; write the status. Like Kubernetes' controller it needs
// no creation expectations: an ordinal's name is its identity.
//
// Claims are created and never deleted here (persistentVolumeClaimRetentionPolicy
// Retain/Retain, the default): they outlive scale-down and pod replacement.
// whenDeleted: Delete gives the claims an owner reference to the set, so the
// garbage collector deletes them with it; whenScaled: Delete deletes the
// claims of ordinals scaled away once their pod is gone.

import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { controllerRevisionsInfo, deleteRevisions, ensureRevision, planHistoryCleanup, planRevision, revisionHash, revisionHashKey, templateOfRevision } from './controller-revision.ts'
import { applyClaims, canonicalJson, claimObjects, controllerRefOf, resolveControllerRef, selectorOf, selects, type Pod } from './pod-template.ts'
import { podsInfo } from './replicaset.ts'
import { buildStatefulSetPod, claimsToDeleteOnScaleDown, parseOrdinal, planStatefulSet, podRevision } from './statefulset-plan.ts'
import { SyncLoop } from './workload-loop.ts'
import type { Controller, ControllerContext } from './types.ts'

export const statefulSetsInfo = lookupResource('apps', 'v1', 'statefulsets')!
export const claimsInfo = lookupResource('', 'v1', 'persistentvolumeclaims')!

/** ControllerRevisionName: <set>-<hash>, the prefix cut to 223 characters. */
export function statefulSetRevisionNaming(set: KubeObject) {
  return (data: unknown, collisionCount: number) => {
    const hash = revisionHash(data, collisionCount)
    return { name: `${set.metadata.name!.slice(0, 223)}-${hash}`, labels: { ...(set.spec?.template?.metadata?.labels ?? {}), [revisionHashKey]: hash } }
  }
}

export class StatefulSetController implements Controller {
  readonly name = 'statefulset'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #setInf?: Informer
  #podInf?: Informer
  #crInf?: Informer
  #claimInf?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const setInf = (this.#setInf = ctx.informers.for(statefulSetsInfo))
    const podInf = (this.#podInf = ctx.informers.for(podsInfo))
    const crInf = (this.#crInf = ctx.informers.for(controllerRevisionsInfo))
    const claimInf = (this.#claimInf = ctx.informers.for(claimsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [setInf, podInf, crInf, claimInf], sync: (k) => this.#sync(k) }))
    const enqueue = (o: KubeObject) => loop.enqueue(keyFor(o))
    setInf.addHandlers({ onAdd: enqueue, onUpdate: (_, s) => enqueue(s), onDelete: enqueue })
    // Pods and revisions: their controller, or (orphans) every set in the namespace that selects them.
    const owned = (o: KubeObject) => {
      const set = resolveControllerRef(setInf, o, 'StatefulSet')
      if (set) return enqueue(set)
      if (controllerRefOf(o)) return
      for (const s of setInf.list((x) => x.metadata.namespace === o.metadata.namespace && selects(selectorOf(x), o.metadata.labels))) enqueue(s)
    }
    const changed = (old: KubeObject, o: KubeObject) => {
      if (old.metadata.resourceVersion === o.metadata.resourceVersion) return
      if (canonicalJson(controllerRefOf(old) ?? null) !== canonicalJson(controllerRefOf(o) ?? null)) owned(old)
      owned(o)
    }
    podInf.addHandlers({ onAdd: owned, onUpdate: changed, onDelete: owned })
    crInf.addHandlers({ onAdd: owned, onUpdate: changed, onDelete: owned })
    // A deleted claim is made again for its pod.
    claimInf.addHandlers({ onDelete: (c) => setInf.list((x) => x.metadata.namespace === c.metadata.namespace).forEach(enqueue) })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const ctx = this.#ctx!
    const set = this.#setInf!.get(key)
    if (!set) return undefined
    const selector = selectorOf(set)
    // A set being deleted is left to the garbage collector (Kubernetes only updates its status then).
    if (!selector || set.metadata.deletionTimestamp) return undefined
    const ns = set.metadata.namespace
    const name = set.metadata.name!
    // Pods: members only (isMemberOf: <set>-<ordinal>).
    const candidates = this.#podInf!.list((p) => p.metadata.namespace === ns && parseOrdinal(name, p.metadata.name) !== undefined)
    const podClaims = claimObjects(set, selector, candidates)
    const adopted = await applyClaims({ client: ctx.client, info: podsInfo, ownerInfo: statefulSetsInfo, owner: set, claims: podClaims })
    const pods = [...podClaims.owned, ...adopted]
    // Revisions.
    const nsRevisions = this.#crInf!.list((r) => r.metadata.namespace === ns)
    const revClaims = claimObjects(set, selector, nsRevisions)
    const adoptedRevs = await applyClaims({ client: ctx.client, info: controllerRevisionsInfo, ownerInfo: statefulSetsInfo, owner: set, claims: revClaims })
    const revisions = [...revClaims.owned, ...adoptedRevs]
    const plan = planRevision({
      owner: set,
      ownerInfo: statefulSetsInfo,
      template: set.spec?.template,
      revisions,
      taken: new Map(nsRevisions.map((r) => [r.metadata.name!, r])),
      collisionCount: Number(set.status?.collisionCount) || 0,
      naming: statefulSetRevisionNaming(set),
    })
    let update: KubeObject
    try {
      update = await ensureRevision(ctx, plan)
    } catch (e) {
      // The cache was behind (the revision exists, or was renumbered): sync again once it catches up.
      if (e instanceof ApiClientError && e.status === 409) return 200
      throw e
    }
    const byName = new Map(revisions.map((r) => [r.metadata.name!, r]))
    byName.set(update.metadata.name!, update)
    const current = byName.get(set.status?.currentRevision ?? '') ?? update
    const currentTemplate = templateOfRevision(current) ?? set.spec?.template
    const claimNames = new Set(this.#claimInf!.list((c) => c.metadata.namespace === ns).map((c) => c.metadata.name!))
    const result = planStatefulSet({
      set,
      pods,
      currentRevision: current.metadata.name!,
      updateRevision: update.metadata.name!,
      claims: claimNames,
      now: Date.now(),
      manage: true,
      collisionCount: plan.collisionCount,
    })
    const errors: string[] = []
    for (const c of result.claims) {
      const podName = c.metadata.name!.slice(c.metadata.name!.lastIndexOf(`-${name}-`) + 1)
      try {
        await ctx.client.create(claimsInfo, ns, c)
        ctx.events.event(set, 'Normal', 'SuccessfulCreate', `create Claim ${c.metadata.name} Pod ${podName} in StatefulSet ${name} success`)
      } catch (e) {
        if (e instanceof ApiClientError && e.status === 409) continue
        ctx.events.event(set, 'Warning', 'FailedCreate', `create Claim ${c.metadata.name} for Pod ${podName} in StatefulSet ${name} failed error: ${(e as Error).message}`)
        errors.push((e as Error).message)
      }
    }
    if (!errors.length) {
      for (const c of result.create) {
        const atCurrent = c.revision === 'current'
        const pod = buildStatefulSetPod({ set, setInfo: statefulSetsInfo, template: atCurrent ? currentTemplate : set.spec?.template, ordinal: c.ordinal, revision: (atCurrent ? current : update).metadata.name! })
        try {
          await ctx.client.create(podsInfo, ns, pod)
          ctx.events.event(set, 'Normal', 'SuccessfulCreate', `create Pod ${pod.metadata.name} in StatefulSet ${name} successful`)
        } catch (e) {
          if (e instanceof ApiClientError && e.status === 409) continue
          ctx.events.event(set, 'Warning', 'FailedCreate', `create Pod ${pod.metadata.name} in StatefulSet ${name} failed error: ${(e as Error).message}`)
          errors.push((e as Error).message)
        }
      }
    }
    for (const p of result.delete) {
      const err = await this.#deletePod(set, p)
      if (err) errors.push(err)
    }
    for (const c of claimsToDeleteOnScaleDown(set, pods, claimNames)) {
      try {
        await ctx.client.delete(claimsInfo, ns, c)
        ctx.events.event(set, 'Normal', 'SuccessfulDelete', `delete Claim ${c} in StatefulSet ${name} success`)
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) errors.push((e as Error).message)
      }
    }
    // History: keep the current and update revisions and those live pods run.
    const keep = new Set([current.metadata.name!, update.metadata.name!, ...pods.map((p) => podRevision(p) ?? '')])
    const limit = typeof set.spec?.revisionHistoryLimit === 'number' ? set.spec.revisionHistoryLimit : 10
    await deleteRevisions(ctx, planHistoryCleanup([...byName.values()], keep, limit))
    let again = result.recheckAfterMs
    if (canonicalJson(result.status) !== canonicalJson(set.status ?? {})) {
      try {
        await ctx.client.update(statefulSetsInfo, { ...clone(set), status: result.status }, 'status')
      } catch (e) {
        if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e
        // A newer set is on its way to the cache: write its status then.
        if (e.status === 409) again = Math.min(again ?? Infinity, 200)
      }
    }
    if (errors.length) throw new Error(errors[0])
    return again
  }

  async #deletePod(set: KubeObject, pod: Pod): Promise<string | undefined> {
    const ctx = this.#ctx!
    const path = resourcePath(podsInfo, pod.metadata.namespace, pod.metadata.name)
    try {
      await ctx.client.call('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: pod.metadata.uid } } })
      ctx.events.event(set, 'Normal', 'SuccessfulDelete', `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`)
      return undefined
    } catch (e) {
      if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return undefined
      ctx.events.event(set, 'Warning', 'FailedDelete', `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${(e as Error).message}`)
      return (e as Error).message
    }
  }
}

export const statefulSetController = (): Controller => new StatefulSetController()
