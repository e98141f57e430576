// The Job controller: runs a Job's pods to completion. Handlers only enqueue;
// one sync per Job key reads the caches and follows Kubernetes' order:
//   1. finished pods holding the job-tracking finalizer go into
//      status.uncountedTerminatedPods (one status write, resourceVersion-guarded);
//   2. their finalizers are removed;
//   3. planJob (job-plan.ts, pure) gives counts, conditions, pods to create
//      and delete, and when to look again; pods are created and deleted, and
//      the status written once more if it changed.
// Pods of a deleted or finished Job lose their finalizer (so garbage
// collection can remove them); a pod whose Job is gone is handled under its
// own key (`pod:<ns>/<name>`).

import { batchLabels, jobTrackingFinalizer } from '../api/batch-defaults.ts'
import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { hasFinalizer, planFinishedPods, planJob, isJobFinished, jobMessages, type JobCondition, type JobPlan } from './job-plan.ts'
import { applyClaims, buildPodFromTemplate, canonicalJson, claimObjects, controllerRefOf, resolveControllerRef, selectorOf, type Pod } from './pod-template.ts'
import type { Controller, ControllerContext } from './types.ts'
import { Expectations, SyncLoop, createOwnedPod, deleteOwnedPod, slowStartBatch } from './workload-loop.ts'

export const jobsInfo = lookupResource('batch', 'v1', 'jobs')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const orphanPrefix = 'pod:'

/** A pod for `job` (at completion `index` for an Indexed Job), holding the job-tracking finalizer. */
export function buildJobPod(job: KubeObject, index?: number): Pod {
  const pod = buildPodFromTemplate({ template: job.spec?.template, owner: job, ownerInfo: jobsInfo })
  pod.metadata.finalizers = [...(pod.metadata.finalizers ?? []), jobTrackingFinalizer]
  if (index === undefined) return pod
  const ix = String(index)
  pod.metadata.generateName = `${job.metadata.name}-${ix}-`
  pod.metadata.annotations = { ...pod.metadata.annotations, [batchLabels.completionIndex]: ix }
  pod.metadata.labels = { ...pod.metadata.labels, [batchLabels.completionIndex]: ix }
  pod.spec.hostname = `${job.metadata.name}-${ix}`
  const env = { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${batchLabels.completionIndex}']` } } }
  for (const c of [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])]) {
    if (!(c.env ?? []).some((e: any) => e?.name === env.name)) c.env = [...(c.env ?? []), env]
  }
  return pod
}

/** Delete a Job and, in the background, its pods (guarded by its uid); false when it was already gone or replaced. */
export async function deleteJobInBackground(client: ControllerContext['client'], job: KubeObject): Promise<boolean> {
  const path = resourcePath(jobsInfo, job.metadata.namespace, job.metadata.name)
  try {
    await client.call('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', preconditions: { uid: job.metadata.uid } } })
    return true
  } catch (e) {
    if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return false
    throw e
  }
}

const conditionEvents: Record<string, (c: JobCondition) => { type: 'Normal' | 'Warning'; reason: string; message: string }> = {
  Complete: () => ({ type: 'Normal', reason: 'Completed', message: 'Job completed' }),
  Failed: (c) => ({ type: 'Warning', reason: c.reason ?? 'Failed', message: c.message ?? '' }),
  Suspended: () => ({ type: 'Normal', reason: 'Suspended', message: 'Job suspended' }),
}

export class JobController implements Controller {
  readonly name = 'job'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #exp = new Expectations()
  #jobs?: Informer
  #pods?: Informer
  /** uids whose finalizer we removed, until the cache shows it gone: a stale cache must not count a pod twice. */
  #finalizerGone = new Map<string, number>()

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#exp = new Expectations()
    this.#finalizerGone.clear()
    const jobs = (this.#jobs = ctx.informers.for(jobsInfo))
    const pods = (this.#pods = ctx.informers.for(podsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [jobs, pods], sync: (k) => this.#sync(k), workers: 4 }))
    const exp = this.#exp
    jobs.addHandlers({
      onAdd: (j) => loop.enqueue(keyFor(j)),
      onUpdate: (_, j) => loop.enqueue(keyFor(j)),
      onDelete: (j) => {
        exp.forget(keyFor(j))
        for (const p of pods.list((p) => controllerRefOf(p)?.uid === j.metadata.uid && hasFinalizer(p))) loop.enqueue(orphanPrefix + keyFor(p))
      },
    })
    const onPod = (pod: Pod, gone: boolean) => {
      if (gone || !hasFinalizer(pod)) this.#finalizerGone.delete(pod.metadata.uid!)
      const job = resolveControllerRef(jobs, pod, 'Job')
      if (!job) {
        if (hasFinalizer(pod) && controllerRefOf(pod)?.kind === 'Job') loop.enqueue(orphanPrefix + keyFor(pod))
        return
      }
      if (gone || pod.metadata.deletionTimestamp) exp.deletionObserved(keyFor(job), keyFor(pod))
      loop.enqueue(keyFor(job))
    }
    pods.addHandlers({
      onAdd: (pod) => {
        const job = resolveControllerRef(jobs, pod, 'Job')
        if (job && !pod.metadata.deletionTimestamp) exp.creationObserved(keyFor(job))
        onPod(pod, false)
      },
      onUpdate: (old, pod) => {
        if (old.metadata.resourceVersion !== pod.metadata.resourceVersion) onPod(pod, false)
      },
      onDelete: (pod) => onPod(pod, true),
    })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  #gone(): Set<string> {
    const now = performance.now()
    for (const [uid, at] of this.#finalizerGone) if (now - at > 5 * 60_000) this.#finalizerGone.delete(uid)
    return new Set(this.#finalizerGone.keys())
  }

  async #sync(key: string): Promise<number | undefined> {
    if (key.startsWith(orphanPrefix)) return await this.#syncOrphan(key.slice(orphanPrefix.length))
    const ctx = this.#ctx!
    const job = this.#jobs!.get(key)
    if (!job) {
      this.#exp.forget(key)
      return undefined
    }
    const ns = job.metadata.namespace
    const claims = claimObjects(job, selectorOf(job), this.#pods!.list((p) => p.metadata.namespace === ns))
    const adopted = job.metadata.deletionTimestamp || isJobFinished(job) ? [] : await applyClaims({ client: ctx.client, info: podsInfo, ownerInfo: jobsInfo, owner: job, claims })
    const pods = [...claims.owned, ...adopted]
    if (job.metadata.deletionTimestamp) {
      await Promise.all(pods.filter(hasFinalizer).map((p) => this.#removeFinalizer(p)))
      return undefined
    }
    // 1. finished pods into uncounted, written before any finalizer goes.
    const finished = planFinishedPods({ job, pods, finalizerGone: this.#gone() })
    let cur = job
    if (finished.changed) {
      const status = { ...job.status, uncountedTerminatedPods: finished.uncounted, ...(finished.completedIndexes !== undefined ? { completedIndexes: finished.completedIndexes } : {}) }
      cur = await ctx.client.update(jobsInfo, { ...clone(job), status }, 'status')
    }
    // 2. their finalizers.
    await Promise.all(finished.removeFinalizer.map((p) => this.#removeFinalizer(p)))
    // 3. the rest.
    const cfg = ctx.config
    const plan = planJob({
      job: cur, pods, uncounted: finished.uncounted, completedIndexes: finished.completedIndexes, finalizerGone: this.#gone(), now: Date.now(),
      backoffBaseMs: cfg.jobBackoffBaseMs ?? 10_000, backoffMaxMs: cfg.jobBackoffMaxMs ?? 360_000, expectationsSatisfied: this.#exp.satisfied(key),
    })
    const error = await this.#managePods(key, cur, plan)
    if (canonicalJson(plan.status) !== canonicalJson(cur.status ?? {})) {
      try {
        await ctx.client.update(jobsInfo, { ...clone(cur), status: plan.status }, 'status')
      } catch (e) {
        if (e instanceof ApiClientError && e.status === 404) return undefined
        throw e
      }
      this.#recordConditions(cur, plan.newConditions)
    }
    if (error) throw new Error(error)
    return plan.requeueAfterMs
  }

  #recordConditions(job: KubeObject, added: JobCondition[]): void {
    const wasSuspended = (job.status?.conditions ?? []).some((c: JobCondition) => c.type === 'Suspended' && c.status === 'True')
    if (wasSuspended && job.spec?.suspend === false) this.#ctx!.events.event(job, 'Normal', 'Resumed', jobMessages.resumed.message)
    for (const c of added) {
      const e = conditionEvents[c.type]?.(c)
      if (e) this.#ctx!.events.event(job, e.type, e.reason, e.message)
    }
  }

  /** Deletes and creates what the plan says; returns the first error message, if any. */
  async #managePods(key: string, job: KubeObject, plan: JobPlan): Promise<string | undefined> {
    const ctx = this.#ctx!
    let error: string | undefined
    if (plan.delete.length) {
      // Pods the Job stops on purpose are not failures: their finalizer goes first, so they are never counted.
      if (!plan.countDeleted) await Promise.all(plan.delete.filter(hasFinalizer).map((p) => this.#removeFinalizer(p)))
      this.#exp.expectDeletions(key, plan.delete.map(keyFor))
      const errors = (await Promise.all(plan.delete.map((p) => deleteOwnedPod(ctx, this.#exp, key, job, p)))).filter((e) => e)
      error = errors[0]
    }
    const indexes = plan.createIndexes
    const count = indexes.length || plan.create
    if (count > 0) {
      this.#exp.expectCreations(key, count)
      let next = 0
      const r = await slowStartBatch(count, () => createOwnedPod(ctx, this.#exp, key, job, buildJobPod(job, indexes.length ? indexes[next++] : undefined)))
      for (let i = 0; i < r.skipped; i++) this.#exp.creationObserved(key)
      if (r.error) error ??= r.error.message
    }
    return error
  }

  /** Drop our finalizer (merge patch guarded by resourceVersion; re-read on a conflict). */
  async #removeFinalizer(pod: Pod): Promise<void> {
    const client = this.#ctx!.client
    let cur: Pod | undefined = pod
    for (let attempt = 0; attempt < 3 && cur && hasFinalizer(cur); attempt++) {
      const finalizers = (cur.metadata.finalizers ?? []).filter((f) => f !== jobTrackingFinalizer)
      try {
        await client.patch(podsInfo, cur.metadata.namespace, cur.metadata.name!, { metadata: { resourceVersion: cur.metadata.resourceVersion, finalizers } }, 'application/merge-patch+json')
        this.#finalizerGone.set(pod.metadata.uid!, performance.now())
        return
      } catch (e) {
        if (!(e instanceof ApiClientError)) throw e
        if (e.status === 404) {
          this.#finalizerGone.set(pod.metadata.uid!, performance.now())
          return
        }
        if (e.status !== 409) throw e
        cur = await client.get(podsInfo, pod.metadata.namespace, pod.metadata.name!).catch(() => undefined)
        if (cur && cur.metadata.uid !== pod.metadata.uid) return
      }
    }
  }

  /** A pod holding our finalizer whose Job is gone: release it (after checking the Job is really gone, not just missing from the cache). */
  async #syncOrphan(podKey: string): Promise<undefined> {
    const pod = this.#pods!.get(podKey)
    if (!pod || !hasFinalizer(pod)) return undefined
    const ref = controllerRefOf(pod)
    if (!ref || ref.kind !== 'Job') return undefined
    const job = await this.#ctx!.client.get(jobsInfo, pod.metadata.namespace, ref.name).catch((e) => {
      if (e instanceof ApiClientError && e.status === 404) return undefined
      throw e
    })
    if (job && job.metadata.uid === ref.uid && !job.metadata.deletionTimestamp) {
      this.#loop?.enqueue(keyFor(job))
      return undefined
    }
    await this.#removeFinalizer(pod)
    return undefined
  }
}

export const jobController = (): Controller => new JobController()
