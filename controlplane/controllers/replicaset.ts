// The ReplicaSet controller: keeps spec.replicas active pods that match the
// selector and are controlled by the ReplicaSet. It adopts matching orphans,
// releases pods it no longer selects, creates pods from the template
// (`<rs>-<5 chars>`), deletes surplus pods in the ActivePods order (least
// useful first), deletes Failed pods so they are replaced, and writes status
// (PUT /status) only when it changed. Expectations keep a burst of events
// from creating twice: a key is not acted on until its last creates and
// deletes have been seen in the informer.
//
// Pure parts: planReplicaSetPods and computeReplicaSetStatus.

import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import {
  applyClaims,
  availableAt,
  buildPodFromTemplate,
  canonicalJson,
  claimObjects,
  compareForDeletion,
  controllerRefOf,
  isoSeconds,
  isPodActive,
  isPodReady,
  resolveControllerRef,
  selectorOf,
  selects,
  type Pod,
} from './pod-template.ts'
import { Expectations, SyncLoop, createOwnedPod, deleteOwnedPod, slowStartBatch } from './workload-loop.ts'
import type { Controller, ControllerContext } from './types.ts'

export const replicaSetsInfo = lookupResource('apps', 'v1', 'replicasets')!
export const podsInfo = lookupResource('', 'v1', 'pods')!

/** At most this many creates or deletes per sync (Kubernetes' burstReplicas). */
const burstReplicas = 500

export interface ReplicaSetPodPlan {
  create: number
  delete: Pod[]
}

/** What to create and delete so `replicas` active pods remain; Failed pods are always deleted (and so replaced). */
export function planReplicaSetPods(o: { replicas: number; pods: Pod[] }): ReplicaSetPodPlan {
  const failed = o.pods.filter((p) => p.status?.phase === 'Failed' && !p.metadata.deletionTimestamp)
  const active = o.pods.filter(isPodActive)
  const diff = active.length - o.replicas
  if (diff < 0) return { create: Math.min(-diff, burstReplicas), delete: failed }
  const surplus = [...active].sort(compareForDeletion).slice(0, Math.min(diff, burstReplicas))
  return { create: 0, delete: [...surplus, ...failed] }
}

function templateLabelsMatch(rs: KubeObject, pod: Pod): boolean {
  const want: Record<string, string> = rs.spec?.template?.metadata?.labels ?? {}
  return Object.entries(want).every(([k, v]) => pod.metadata.labels?.[k] === v)
}

/**
 * The status for these owned pods: counts over active pods, availability
 * after minReadySeconds, the ReplicaFailure condition while creates or
 * deletes fail. recheckAfterMs: when the next ready pod becomes available.
 */
export function computeReplicaSetStatus(o: { rs: KubeObject; pods: Pod[]; now: number; failure?: { reason: string; message: string } }): {
  status: Record<string, any>
  recheckAfterMs?: number
} {
  const minReady = Number(o.rs.spec?.minReadySeconds) || 0
  const active = o.pods.filter(isPodActive)
  let available = 0
  let recheck: number | undefined
  for (const p of active) {
    const at = availableAt(p, minReady)
    if (at === undefined) continue
    if (at <= o.now) available++
    else recheck = Math.min(recheck ?? Infinity, at - o.now)
  }
  const status: Record<string, any> = {
    replicas: active.length,
    fullyLabeledReplicas: active.filter((p) => templateLabelsMatch(o.rs, p)).length,
    readyReplicas: active.filter(isPodReady).length,
    availableReplicas: available,
    observedGeneration: o.rs.metadata.generation ?? 0,
  }
  const others = (o.rs.status?.conditions ?? []).filter((c: any) => c?.type !== 'ReplicaFailure')
  const current = (o.rs.status?.conditions ?? []).find((c: any) => c?.type === 'ReplicaFailure')
  const conditions = o.failure
    ? [...others, current ?? { type: 'ReplicaFailure', status: 'True', lastTransitionTime: isoSeconds(o.now), ...o.failure }]
    : others
  if (conditions.length) status.conditions = conditions
  return { status, recheckAfterMs: recheck === undefined ? undefined : recheck + 50 }
}

export class ReplicaSetController implements Controller {
  readonly name = 'replicaset'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #exp = new Expectations()
  #rsInf?: Informer
  #podInf?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#exp = new Expectations()
    const rsInf = (this.#rsInf = ctx.informers.for(replicaSetsInfo))
    const podInf = (this.#podInf = ctx.informers.for(podsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [rsInf, podInf], sync: (k) => this.#sync(k), workers: 4 }))
    const exp = this.#exp
    rsInf.addHandlers({
      onAdd: (rs) => loop.enqueue(keyFor(rs)),
      onUpdate: (_, rs) => loop.enqueue(keyFor(rs)),
      onDelete: (rs) => {
        exp.forget(keyFor(rs))
        loop.enqueue(keyFor(rs))
      },
    })
    const owner = (pod: Pod) => resolveControllerRef(rsInf, pod, 'ReplicaSet')
    const podGone = (pod: Pod) => {
      const rs = owner(pod)
      if (!rs) return
      exp.deletionObserved(keyFor(rs), keyFor(pod))
      loop.enqueue(keyFor(rs))
    }
    const orphan = (pod: Pod) => {
      for (const rs of rsInf.list((r) => r.metadata.namespace === pod.metadata.namespace && selects(selectorOf(r), pod.metadata.labels))) loop.enqueue(keyFor(rs))
    }
    podInf.addHandlers({
      onAdd: (pod) => {
        if (pod.metadata.deletionTimestamp) return podGone(pod)
        const rs = owner(pod)
        if (rs) {
          exp.creationObserved(keyFor(rs))
          loop.enqueue(keyFor(rs))
        } else if (!controllerRefOf(pod)) orphan(pod)
      },
      onUpdate: (old, pod) => {
        if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return
        const relabelled = canonicalJson(old.metadata.labels ?? {}) !== canonicalJson(pod.metadata.labels ?? {})
        if (pod.metadata.deletionTimestamp) {
          podGone(pod)
          if (relabelled) podGone(old)
          return
        }
        const refChanged = canonicalJson(controllerRefOf(old) ?? null) !== canonicalJson(controllerRefOf(pod) ?? null)
        const was = refChanged ? owner(old) : undefined
        if (was) loop.enqueue(keyFor(was))
        const rs = owner(pod)
        if (rs) loop.enqueue(keyFor(rs))
        else if (!controllerRefOf(pod) && (relabelled || refChanged)) orphan(pod)
      },
      onDelete: podGone,
    })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const ctx = this.#ctx!
    const rs = this.#rsInf!.get(key)
    if (!rs) {
      this.#exp.forget(key)
      return undefined
    }
    // Validation requires a selector; without one nothing could ever match and creation would never end.
    if (!selectorOf(rs)) return undefined
    const ns = rs.metadata.namespace
    const claims = claimObjects(rs, selectorOf(rs), this.#podInf!.list((p) => p.metadata.namespace === ns))
    const adopted = await applyClaims({ client: ctx.client, info: podsInfo, ownerInfo: replicaSetsInfo, owner: rs, claims })
    const pods = [...claims.owned, ...adopted]
    let failure: { reason: string; message: string } | undefined
    if (this.#exp.satisfied(key) && !rs.metadata.deletionTimestamp) failure = await this.#manage(key, rs, pods)
    const { status, recheckAfterMs } = computeReplicaSetStatus({ rs, pods, now: Date.now(), failure })
    if (canonicalJson(status) !== canonicalJson(rs.status ?? {})) {
      try {
        await ctx.client.update(replicaSetsInfo, { ...clone(rs), status }, 'status')
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      }
    }
    // Failed creates or deletes: retry the whole sync with the queue's backoff.
    if (failure) throw new Error(failure.message)
    return recheckAfterMs
  }

  /** Create or delete pods; returns the failure to report in status, if any. */
  async #manage(key: string, rs: KubeObject, pods: Pod[]): Promise<{ reason: string; message: string } | undefined> {
    const plan = planReplicaSetPods({ replicas: Number(rs.spec?.replicas ?? 1), pods })
    let failure: { reason: string; message: string } | undefined
    if (plan.delete.length) {
      this.#exp.expectDeletions(key, plan.delete.map(keyFor))
      const errors = (await Promise.all(plan.delete.map((p) => this.#deletePod(key, rs, p)))).filter((e) => e)
      if (errors.length) failure = { reason: 'FailedDelete', message: errors[0]! }
    }
    if (plan.create > 0) {
      this.#exp.expectCreations(key, plan.create)
      const r = await slowStartBatch(plan.create, () => this.#createPod(key, rs))
      for (let i = 0; i < r.skipped; i++) this.#exp.creationObserved(key)
      if (r.error) failure = { reason: 'FailedCreate', message: r.error.message }
    }
    return failure
  }

  async #createPod(key: string, rs: KubeObject): Promise<void> {
    const ctx = this.#ctx!
    const pod = buildPodFromTemplate({ template: rs.spec?.template, owner: rs, ownerInfo: replicaSetsInfo })
    await createOwnedPod(ctx, this.#exp, key, rs, pod)
  }

  /** Delete one pod (guarded by its uid); returns an error message, or undefined. */
  async #deletePod(key: string, rs: KubeObject, pod: Pod): Promise<string | undefined> {
    return await deleteOwnedPod(this.#ctx!, this.#exp, key, rs, pod)
  }
}

export const replicaSetController = (): Controller => new ReplicaSetController()
