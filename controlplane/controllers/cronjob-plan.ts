// The pure part of the CronJob controller (pkg/controller/cronjob, v2):
// which scheduled time is due, whether it is too late or too many were
// missed, what Job to create for it, which active Jobs to replace, how the
// status moves, and which finished Jobs the history limits let go.

import { cronJobScheduledTimestamp } from '../api/batch-defaults.ts'
import { rfc3339InZone, type CronSchedule } from '../api/cron.ts'
import type { KubeObject, OwnerReference } from '../api/types.ts'
import { condition, isJobFinished } from './job-plan.ts'
import { isoSeconds } from './pod-template.ts'

export interface CronEvent {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
}

/** `<cronjob>-<scheduled time in minutes since the epoch>`: one name per scheduled time, so a Job is never made twice. */
export function scheduledJobName(cronJobName: string, scheduledMs: number): string {
  return `${cronJobName}-${Math.floor(scheduledMs / 60_000)}`
}

/**
 * The most recent scheduled time in (earliest, now], and how many were
 * missed. Like Kubernetes, the count is estimated from the gap between the
 * first two times after `earliest` when there are many (a schedule that
 * fires on irregular days is then approximate); more than 100 is "too many".
 */
export function mostRecentScheduleTime(schedule: CronSchedule, earliest: number, now: number): { time?: number; missed: number } {
  const t1 = schedule.next(earliest)
  if (t1 === undefined || now < t1) return { missed: 0 }
  const t2 = schedule.next(t1)
  if (t2 === undefined || now < t2) return { time: t1, missed: 1 }
  const gap = Math.round((t2 - t1) / 1000)
  if (gap < 1) return { missed: 0 }
  const missed = Math.floor((now - t1) / 1000 / gap) + 1
  if (missed <= 1000) {
    // Walk the real times: exact for every schedule, and cheap at this size.
    let last = t2
    for (let t = schedule.next(t2); t !== undefined && t <= now; t = schedule.next(t)) last = t
    return { time: last, missed }
  }
  return { time: t1 + (missed - 1) * gap * 1000, missed }
}

export interface CronJobPlanInput {
  cj: KubeObject
  /** Jobs the CronJob controls (cache, plus active ones confirmed by a read). */
  jobs: KubeObject[]
  now: number
  /** undefined when the schedule does not parse (an Event says why). */
  schedule?: CronSchedule
  scheduleError?: string
}

export interface CronJobPlan {
  status: Record<string, any>
  /** The Job to create, if one is due. */
  create?: KubeObject
  /** Active Jobs to delete first (concurrencyPolicy Replace). */
  replace: KubeObject[]
  /** Finished Jobs beyond the history limits, oldest first. */
  prune: KubeObject[]
  events: CronEvent[]
  /** When (on the CronJob's clock, ms from now) the next schedule is due. */
  requeueAfterMs?: number
}

export function jobRef(job: KubeObject): Record<string, string> {
  return { kind: 'Job', namespace: job.metadata.namespace!, name: job.metadata.name!, uid: job.metadata.uid!, apiVersion: 'batch/v1', resourceVersion: job.metadata.resourceVersion ?? '' }
}

const time = (s: unknown) => (typeof s === 'string' ? Date.parse(s) : NaN)

/** The Job for one scheduled time: the jobTemplate, a controller reference, the scheduled-timestamp annotation in the CronJob's zone. */
export function buildScheduledJob(cj: KubeObject, scheduledMs: number, cjApi: { apiVersion: string; kind: string }): KubeObject {
  const tmpl = cj.spec?.jobTemplate ?? {}
  const owner: OwnerReference = { apiVersion: cjApi.apiVersion, kind: cjApi.kind, name: cj.metadata.name!, uid: cj.metadata.uid!, controller: true, blockOwnerDeletion: true }
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: scheduledJobName(cj.metadata.name!, scheduledMs),
      namespace: cj.metadata.namespace,
      labels: { ...(tmpl.metadata?.labels ?? {}) },
      annotations: { ...(tmpl.metadata?.annotations ?? {}), [cronJobScheduledTimestamp]: rfc3339InZone(scheduledMs, cj.spec?.timeZone) },
      ownerReferences: [owner],
    },
    spec: structuredClone(tmpl.spec ?? {}),
  }
}

/** Finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest start first. */
export function jobsToPrune(cj: KubeObject, jobs: KubeObject[]): KubeObject[] {
  const byStart = (a: KubeObject, b: KubeObject) => {
    const ta = time(a.status?.startTime)
    const tb = time(b.status?.startTime)
    if (Number.isNaN(ta) !== Number.isNaN(tb)) return Number.isNaN(ta) ? 1 : -1
    if (ta !== tb && !Number.isNaN(ta)) return ta - tb
    return (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '')
  }
  const out: KubeObject[] = []
  const keep = (list: KubeObject[], limit: unknown) => {
    if (typeof limit !== 'number') return
    const sorted = [...list].sort(byStart)
    out.push(...sorted.slice(0, Math.max(0, sorted.length - limit)))
  }
  keep(jobs.filter((j) => condition(j, 'Complete') && !j.metadata.deletionTimestamp), cj.spec?.successfulJobsHistoryLimit)
  keep(jobs.filter((j) => condition(j, 'Failed') && !j.metadata.deletionTimestamp), cj.spec?.failedJobsHistoryLimit)
  return out
}

export function planCronJob(i: CronJobPlanInput): CronJobPlan {
  const { cj, now } = i
  const spec = cj.spec ?? {}
  const events: CronEvent[] = []
  const plan: CronJobPlan = { status: {}, replace: [], prune: [], events }
  // Active: the status list, less what finished or vanished.
  const byUid = new Map(i.jobs.map((j) => [j.metadata.uid, j]))
  const active: Array<Record<string, string>> = []
  for (const ref of cj.status?.active ?? []) {
    const j = byUid.get(ref.uid)
    if (!j) events.push({ type: 'Normal', reason: 'MissingJob', message: `Active job went missing: ${ref.name}` })
    else if (isJobFinished(j)) {
      const c = condition(j, 'Complete') ?? condition(j, 'Failed')
      events.push({ type: 'Normal', reason: 'SawCompletedJob', message: `Saw completed job: ${j.metadata.name}, condition: ${c?.type}` })
    } else active.push(ref)
  }
  // Like Kubernetes, an unfinished Job of ours that the list does not name (made by `kubectl create job --from`, or
  // created just before a crash) is reported, not adopted into active: concurrencyPolicy ignores it.
  for (const j of i.jobs) {
    if (!isJobFinished(j) && !active.some((r) => r.uid === j.metadata.uid))
      events.push({ type: 'Warning', reason: 'UnexpectedJob', message: `Saw a job that the controller did not create or forgot: ${j.metadata.name}` })
  }
  let lastSuccessful = time(cj.status?.lastSuccessfulTime)
  for (const j of i.jobs) {
    const done = condition(j, 'Complete') ? time(j.status?.completionTime) : NaN
    if (!Number.isNaN(done) && (Number.isNaN(lastSuccessful) || done > lastSuccessful)) lastSuccessful = done
  }
  let lastSchedule: string | undefined = cj.status?.lastScheduleTime
  const finish = () => {
    plan.status = {
      ...(active.length ? { active } : {}),
      ...(lastSchedule ? { lastScheduleTime: lastSchedule } : {}),
      ...(!Number.isNaN(lastSuccessful) ? { lastSuccessfulTime: isoSeconds(lastSuccessful) } : {}),
    }
    plan.prune = jobsToPrune(cj, i.jobs)
    return plan
  }
  if (cj.metadata.deletionTimestamp || spec.suspend === true) return finish()
  if (!i.schedule) {
    events.push({ type: 'Warning', reason: 'UnparseableSchedule', message: `unparseable schedule: ${JSON.stringify(spec.schedule ?? '')} : ${i.scheduleError ?? ''}` })
    return finish()
  }
  const schedule = i.schedule
  const created = time(cj.metadata.creationTimestamp)
  let earliest = Number.isNaN(time(lastSchedule)) ? created : time(lastSchedule)
  const sds = typeof spec.startingDeadlineSeconds === 'number' ? spec.startingDeadlineSeconds : undefined
  if (sds !== undefined) earliest = Math.max(earliest, now - sds * 1000)
  const due = mostRecentScheduleTime(schedule, earliest, now)
  const nextAfter = (t: number) => {
    const n = schedule.next(t)
    return n === undefined ? undefined : n - now + 100
  }
  plan.requeueAfterMs = nextAfter(Math.max(now, due.time ?? earliest))
  if (due.missed > 100)
    events.push({ type: 'Warning', reason: 'TooManyMissedTimes', message: `too many missed start times: ${due.missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew` })
  const at = due.time
  if (at === undefined) return finish()
  if (sds !== undefined && at + sds * 1000 < now) {
    events.push({ type: 'Warning', reason: 'MissSchedule', message: `Missed scheduled time to start a job: ${new Date(at).toUTCString().replace('GMT', '+0000')}` })
    return finish()
  }
  const name = scheduledJobName(cj.metadata.name!, at)
  if (active.some((r) => r.name === name) || time(lastSchedule) === at) return finish()
  if (spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
    events.push({ type: 'Normal', reason: 'JobAlreadyActive', message: 'Not starting job because prior execution is running and concurrency policy is Forbid' })
    return finish()
  }
  if (spec.concurrencyPolicy === 'Replace') {
    plan.replace = active.map((r) => byUid.get(r.uid)).filter((j): j is KubeObject => !!j)
    active.length = 0
  }
  plan.create = buildScheduledJob(cj, at, { apiVersion: 'batch/v1', kind: 'CronJob' })
  lastSchedule = isoSeconds(at)
  return finish()
}
