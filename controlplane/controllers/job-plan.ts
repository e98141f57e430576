// The pure part of the Job controller (pkg/controller/job in Kubernetes).
//
// A pod is counted exactly once through the `batch.kubernetes.io/job-tracking`
// finalizer, as Kubernetes does: a finished pod that still holds it is first
// written into status.uncountedTerminatedPods (planFinishedPods), then its
// finalizer is removed, then its uid moves from uncounted into succeeded or
// failed (planJob). A crash between the steps repeats a step, never a count.
//
// planJob then decides everything else from the counts and the pods: the
// conditions (SuccessCriteriaMet / FailureTarget first, Complete / Failed
// once no pod is left running, as Kubernetes 1.31+), how many pods (or which
// completion indexes) to create, which to delete, the backoff before the
// next creation, and when to look again (backoff, activeDeadlineSeconds).

import { jobTrackingFinalizer, batchLabels } from '../api/batch-defaults.ts'
import type { KubeObject } from '../api/types.ts'
import { compareForDeletion, isoSeconds, isPodReady, type Pod } from './pod-template.ts'

export interface Uncounted {
  succeeded: string[]
  failed: string[]
}

export interface JobCondition {
  type: string
  status: 'True' | 'False'
  reason?: string
  message?: string
  lastProbeTime?: string
  lastTransitionTime?: string
}

export const jobMessages = {
  backoff: { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
  deadline: { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' },
  complete: { reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' },
  suspended: { reason: 'JobSuspended', message: 'Job suspended' },
  resumed: { reason: 'JobResumed', message: 'Job resumed' },
} as const

export const hasFinalizer = (p: Pod) => (p.metadata.finalizers ?? []).includes(jobTrackingFinalizer)
export const isSucceeded = (p: Pod) => p.status?.phase === 'Succeeded'
/** Failed, or being deleted before it succeeded (Kubernetes counts such a pod as failed). */
export const isFailed = (p: Pod) => p.status?.phase === 'Failed' || (!!p.metadata.deletionTimestamp && !isSucceeded(p))
export const isActive = (p: Pod) => !isSucceeded(p) && !isFailed(p)

export function condition(job: KubeObject, type: string): JobCondition | undefined {
  return (job.status?.conditions ?? []).find((c: JobCondition) => c?.type === type && c.status === 'True')
}

export function isJobFinished(job: KubeObject): boolean {
  return !!(condition(job, 'Complete') || condition(job, 'Failed'))
}

export function completionIndexOf(pod: Pod): number | undefined {
  const v = pod.metadata.annotations?.[batchLabels.completionIndex]
  if (v === undefined || !/^\d+$/.test(v)) return undefined
  return Number(v)
}

// --- completed indexes: "1,3-5,7" --------------------------------------------

export function parseIndexes(text: string | undefined, limit: number): Set<number> {
  const out = new Set<number>()
  for (const part of (text ?? '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) continue
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    for (let i = from; i <= to && i < limit; i++) out.add(i)
  }
  return out
}

export function formatIndexes(set: Iterable<number>): string {
  const sorted = [...new Set(set)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

// --- step 1: finished pods into uncountedTerminatedPods ---------------------

export interface FinishedPodsPlan {
  uncounted: Uncounted
  completedIndexes?: string
  /** True when uncounted (or completedIndexes) grew: write status before touching any finalizer. */
  changed: boolean
  /** Finished pods whose finalizer can go (their uid is in uncounted, or they are a duplicate success of an index). */
  removeFinalizer: Pod[]
}

/**
 * Finished pods that still hold the finalizer, added to uncounted. In an
 * Indexed Job a success counts only for an index not yet completed (and the
 * index joins completedIndexes in the same write); a second success of an
 * index only loses its finalizer. `finalizerGone` lists uids whose finalizer
 * this controller already removed but the cache may not show yet.
 */
export function planFinishedPods(o: { job: KubeObject; pods: Pod[]; finalizerGone?: ReadonlySet<string> }): FinishedPodsPlan {
  const st = o.job.status ?? {}
  const old: Uncounted = { succeeded: [...(st.uncountedTerminatedPods?.succeeded ?? [])], failed: [...(st.uncountedTerminatedPods?.failed ?? [])] }
  const known = new Set([...old.succeeded, ...old.failed])
  const indexed = o.job.spec?.completionMode === 'Indexed'
  const completions = Number(o.job.spec?.completions ?? 0)
  const done = indexed ? parseIndexes(st.completedIndexes, completions) : new Set<number>()
  const out: FinishedPodsPlan = { uncounted: old, changed: false, removeFinalizer: [] }
  for (const p of o.pods) {
    const uid = p.metadata.uid!
    if (!hasFinalizer(p) || o.finalizerGone?.has(uid) || isActive(p)) continue
    out.removeFinalizer.push(p)
    if (known.has(uid)) continue
    if (isSucceeded(p)) {
      if (indexed) {
        const ix = completionIndexOf(p)
        if (ix === undefined || ix >= completions || done.has(ix)) continue
        done.add(ix)
      }
      old.succeeded.push(uid)
    } else old.failed.push(uid)
    known.add(uid)
    out.changed = true
  }
  if (indexed) out.completedIndexes = formatIndexes(done)
  return out
}

// --- step 2: everything else ----------------------------------------------------

export interface JobPlanInput {
  job: KubeObject
  /** The Job's pods (owned, cache view). */
  pods: Pod[]
  /** uncountedTerminatedPods after step 1. */
  uncounted: Uncounted
  completedIndexes?: string
  /** uids whose finalizer is gone (removed now, or earlier and maybe not in the cache yet). */
  finalizerGone: ReadonlySet<string>
  now: number
  backoffBaseMs: number
  backoffMaxMs: number
  /** False while pod creations or deletions asked for are not yet seen in the cache. */
  expectationsSatisfied: boolean
}

export interface JobPlan {
  status: Record<string, any>
  /** Non-Indexed: how many pods to create. */
  create: number
  /** Indexed: the completion indexes to create pods for. */
  createIndexes: number[]
  /** Active pods to delete; `count` says whether their deletion counts as a failure (the Job is failing) or not (finalizer removed first). */
  delete: Pod[]
  countDeleted: boolean
  /** Conditions that became True in this plan (for Events). */
  newConditions: JobCondition[]
  /** Look again after this long (backoff or deadline), if set. */
  requeueAfterMs?: number
}

/** The exponential backoff before the next pod after `failures` failures in a row (Kubernetes: 10 s doubling, at most 6 min). */
export function backoffDelayMs(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return 0
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30))
}

function finishedAt(p: Pod): number {
  let t = 0
  for (const cs of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) {
    const f = Date.parse(cs?.state?.terminated?.finishedAt ?? '')
    if (!Number.isNaN(f)) t = Math.max(t, f)
  }
  if (!t && p.metadata.deletionTimestamp) t = Date.parse(p.metadata.deletionTimestamp) || 0
  return t
}

/** Failures since the last success, and when the last of them finished (podBackoffStore, but from the pods themselves). */
export function failuresInRow(pods: Pod[]): { count: number; lastAt: number } {
  const finished = pods.filter((p) => !isActive(p)).map((p) => ({ ok: isSucceeded(p), at: finishedAt(p) }))
  const lastOk = Math.max(0, ...finished.filter((f) => f.ok).map((f) => f.at))
  const failed = finished.filter((f) => !f.ok && f.at >= lastOk)
  return { count: failed.length, lastAt: Math.max(0, ...failed.map((f) => f.at)) }
}

function restartsOf(p: Pod): number {
  let n = 0
  for (const cs of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) n += Number(cs?.restartCount) || 0
  return n
}

/** restartPolicy OnFailure: container restarts of running pods count toward backoffLimit (pastBackoffLimitOnFailure). */
function pastBackoffLimitOnFailure(job: KubeObject, active: Pod[]): boolean {
  if (job.spec?.template?.spec?.restartPolicy !== 'OnFailure') return false
  const limit = Number(job.spec?.backoffLimit ?? 6)
  const restarts = active.filter((p) => ['Running', 'Pending'].includes(p.status?.phase)).reduce((n, p) => n + restartsOf(p), 0)
  return limit === 0 ? restarts > 0 : restarts >= limit
}

function setCondition(conditions: JobCondition[], c: JobCondition, now: number): JobCondition[] {
  const at = isoSeconds(now)
  const prev = conditions.find((x) => x.type === c.type)
  if (prev && prev.status === c.status && prev.reason === c.reason) return conditions
  const next = { ...c, lastProbeTime: at, lastTransitionTime: prev?.status === c.status ? prev.lastTransitionTime : at }
  return prev ? conditions.map((x) => (x.type === c.type ? next : x)) : [...conditions, next]
}

export function planJob(i: JobPlanInput): JobPlan {
  const { job, now } = i
  const spec = job.spec ?? {}
  const old = job.status ?? {}
  const indexed = spec.completionMode === 'Indexed'
  const completions: number | undefined = typeof spec.completions === 'number' ? spec.completions : undefined
  const parallelism = Number(spec.parallelism ?? 1)
  const pods = i.pods
  const active = pods.filter((p) => isActive(p))
  const terminating = pods.filter((p) => p.metadata.deletionTimestamp && hasFinalizer(p) && !i.finalizerGone.has(p.metadata.uid!) && !isSucceeded(p) && p.status?.phase !== 'Failed')

  // Counts: uncounted uids whose finalizer is gone (or whose pod is gone) move into succeeded/failed.
  const present = new Map(pods.map((p) => [p.metadata.uid!, p]))
  const stillHeld = (uid: string) => {
    const p = present.get(uid)
    return !!p && hasFinalizer(p) && !i.finalizerGone.has(uid)
  }
  const uncounted: Uncounted = { succeeded: i.uncounted.succeeded.filter(stillHeld), failed: i.uncounted.failed.filter(stillHeld) }
  const succeeded = Number(old.succeeded ?? 0) + i.uncounted.succeeded.length - uncounted.succeeded.length
  const failed = Number(old.failed ?? 0) + i.uncounted.failed.length - uncounted.failed.length
  const allSucceeded = succeeded + uncounted.succeeded.length
  const allFailed = failed + uncounted.failed.length
  const done = indexed ? parseIndexes(i.completedIndexes ?? old.completedIndexes, completions ?? 0) : new Set<number>()

  let conditions: JobCondition[] = [...(old.conditions ?? [])]
  const newConditions: JobCondition[] = []
  const add = (c: JobCondition) => {
    const before = conditions
    conditions = setCondition(conditions, c, now)
    if (conditions !== before && c.status === 'True') newConditions.push(c)
  }
  const plan: JobPlan = { status: {}, create: 0, createIndexes: [], delete: [], countDeleted: false, newConditions }
  let startTime: string | undefined = old.startTime
  let completionTime: string | undefined = old.completionTime
  const suspended = spec.suspend === true
  const wasSuspended = conditions.some((c) => c.type === 'Suspended' && c.status === 'True')
  const finished = isJobFinished(job)
  let requeue: number | undefined
  const soon = (ms: number) => (requeue = Math.max(0, Math.min(requeue ?? Infinity, ms)))

  const failureTarget = condition(job, 'FailureTarget')
  const successMet = condition(job, 'SuccessCriteriaMet')
  const settled = active.length === 0 && terminating.length === 0 && uncounted.succeeded.length + uncounted.failed.length === 0

  if (finished) {
    // Nothing more to run; leftover active pods (a Job finished by someone else) go without counting.
    plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
  } else if (failureTarget) {
    plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
    plan.countDeleted = true
    if (settled) add({ type: 'Failed', status: 'True', reason: failureTarget.reason, message: failureTarget.message })
  } else if (successMet) {
    plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
    if (settled) {
      add({ type: 'Complete', status: 'True', reason: successMet.reason, message: successMet.message })
      completionTime = isoSeconds(now)
    }
  } else {
    const complete = indexed ? done.size >= (completions ?? 0) : completions === undefined ? allSucceeded > 0 && active.length === 0 : allSucceeded >= completions
    const limit = Number(spec.backoffLimit ?? 6)
    const deadline = typeof spec.activeDeadlineSeconds === 'number' && startTime && !suspended ? Date.parse(startTime) + spec.activeDeadlineSeconds * 1000 : undefined
    let failure: { reason: string; message: string } | undefined
    if (allFailed > limit || pastBackoffLimitOnFailure(job, active)) failure = jobMessages.backoff
    else if (deadline !== undefined && now >= deadline) failure = jobMessages.deadline
    if (complete) {
      // With nothing left running the terminal condition follows in the same write.
      add({ type: 'SuccessCriteriaMet', status: 'True', ...jobMessages.complete })
      plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
      if (settled) {
        add({ type: 'Complete', status: 'True', ...jobMessages.complete })
        completionTime = isoSeconds(now)
      }
    } else if (failure) {
      add({ type: 'FailureTarget', status: 'True', ...failure })
      plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
      plan.countDeleted = true
      if (settled) add({ type: 'Failed', status: 'True', ...failure })
    } else if (suspended) {
      if (!wasSuspended) add({ type: 'Suspended', status: 'True', ...jobMessages.suspended })
      plan.delete = active.filter((p) => !p.metadata.deletionTimestamp)
    } else {
      if (wasSuspended) {
        conditions = setCondition(conditions, { type: 'Suspended', status: 'False', ...jobMessages.resumed }, now)
        startTime = isoSeconds(now)
      }
      startTime ??= isoSeconds(now)
      if (deadline !== undefined) soon(deadline - now)
      else if (typeof spec.activeDeadlineSeconds === 'number') soon(spec.activeDeadlineSeconds * 1000)
      manage(i, plan, { indexed, completions, parallelism, active, allSucceeded, done, soon })
    }
  }

  const status: Record<string, any> = {}
  if (conditions.length) status.conditions = conditions
  if (startTime) status.startTime = startTime
  if (completionTime) status.completionTime = completionTime
  // As Kubernetes serialises JobStatus: active, succeeded, failed and completedIndexes are omitted when empty; ready and terminating are pointers.
  if (active.length) status.active = active.length
  status.ready = active.filter(isPodReady).length
  if (succeeded) status.succeeded = succeeded
  if (failed) status.failed = failed
  status.terminating = terminating.length
  if (indexed && done.size) status.completedIndexes = formatIndexes(done)
  status.uncountedTerminatedPods = {
    ...(uncounted.succeeded.length ? { succeeded: uncounted.succeeded } : {}),
    ...(uncounted.failed.length ? { failed: uncounted.failed } : {}),
  }
  plan.status = status
  if (requeue !== undefined && Number.isFinite(requeue)) plan.requeueAfterMs = requeue
  return plan
}

/** Creations and deletions of a running Job (manageJob). */
function manage(
  i: JobPlanInput,
  plan: JobPlan,
  o: { indexed: boolean; completions?: number; parallelism: number; active: Pod[]; allSucceeded: number; done: Set<number>; soon(ms: number): void },
): void {
  if (!i.expectationsSatisfied) return
  const live = o.active.filter((p) => !p.metadata.deletionTimestamp)
  let want: number
  if (o.indexed) want = Math.min(o.parallelism, (o.completions ?? 0) - o.done.size)
  else if (o.completions === undefined) want = o.allSucceeded > 0 ? live.length : o.parallelism
  else want = Math.min(o.parallelism, o.completions - o.allSucceeded)
  want = Math.max(0, want)
  if (live.length > want) {
    plan.delete = [...live].sort(compareForDeletion).slice(0, live.length - want)
    return
  }
  if (live.length === want) return
  const { count, lastAt } = failuresInRow(i.pods)
  const wait = lastAt + backoffDelayMs(count, i.backoffBaseMs, i.backoffMaxMs) - i.now
  if (count > 0 && wait > 0) {
    o.soon(wait)
    return
  }
  const n = want - live.length
  if (!o.indexed) {
    plan.create = n
    return
  }
  const running = new Set(live.map(completionIndexOf).filter((x) => x !== undefined))
  for (let ix = 0; ix < (o.completions ?? 0) && plan.createIndexes.length < n; ix++) if (!o.done.has(ix) && !running.has(ix)) plan.createIndexes.push(ix)
}
