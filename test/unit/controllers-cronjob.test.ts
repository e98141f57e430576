import t from 'tap'
import { parseSchedule, rfc3339InZone } from '../../controlplane/api/cron.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { fastClock } from '../../controlplane/controllers/clock.ts'
import { jobsToPrune, mostRecentScheduleTime, planCronJob, scheduledJobName } from '../../controlplane/controllers/cronjob-plan.ts'

const T = (s: string) => Date.parse(s)
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')

function cronJob(spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}, created = '2026-01-01T00:00:30Z'): KubeObject {
  return {
    metadata: { name: 'cj', namespace: 'ns', uid: 'cj-uid', creationTimestamp: created },
    spec: { schedule: '* * * * *', concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1, jobTemplate: { metadata: { labels: { app: 'x' } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } } }, ...spec },
    status,
  }
}

function job(name: string, o: { done?: 'Complete' | 'Failed'; start?: string } = {}): KubeObject {
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'cj', uid: 'cj-uid', controller: true }] },
    spec: {},
    status: { ...(o.start ? { startTime: o.start } : {}), ...(o.done ? { conditions: [{ type: o.done, status: 'True' }], ...(o.done === 'Complete' ? { completionTime: o.start } : {}) } : {}) },
  }
}

t.test('schedules: five fields, macros, time zones, errors as Kubernetes words them', async (t) => {
  const next = (expr: string, after: string, tz?: string) => iso(parseSchedule(expr, tz).next(T(after))!)
  t.equal(next('*/15 * * * *', '2026-01-01T00:07:00Z'), '2026-01-01T00:15:00Z')
  t.equal(next('@hourly', '2026-01-01T00:07:00Z'), '2026-01-01T01:00:00Z')
  t.equal(next('@daily', '2026-01-01T00:07:00Z'), '2026-01-02T00:00:00Z')
  t.equal(next('@weekly', '2026-01-01T00:07:00Z'), '2026-01-04T00:00:00Z', 'Sunday')
  t.equal(next('0 9 * * *', '2026-01-01T00:00:00Z', 'Europe/Berlin'), '2026-01-01T08:00:00Z', '09:00 in Berlin is 08:00 UTC in winter')
  t.equal(next('0 9 * * *', '2026-07-01T00:00:00Z', 'Europe/Berlin'), '2026-07-01T07:00:00Z', 'and 07:00 UTC in summer')
  t.equal(next('0 0 * * *', '2026-01-01T00:00:00Z', 'Asia/Kolkata'), '2026-01-01T18:30:00Z')
  t.equal(next('@every 90s', '2026-01-01T00:00:00Z'), '2026-01-01T00:01:30Z')
  t.throws(() => parseSchedule('* * *'), { message: 'expected exactly 5 fields, found 3: [* * *]' })
  t.throws(() => parseSchedule('@often'), { message: 'unrecognized descriptor: @often' })
  t.throws(() => parseSchedule('61 * * * *'))
  t.equal(rfc3339InZone(T('2026-12-04T17:00:00Z'), 'Europe/Berlin'), '2026-12-04T18:00:00+01:00')
  t.equal(rfc3339InZone(T('2026-12-04T17:00:00Z')), '2026-12-04T17:00:00Z')
})

t.test('mostRecentScheduleTime: due time and missed starts', async (t) => {
  const every = parseSchedule('* * * * *')
  t.same(mostRecentScheduleTime(every, T('2026-01-01T00:00:30Z'), T('2026-01-01T00:00:50Z')), { missed: 0 })
  t.same(mostRecentScheduleTime(every, T('2026-01-01T00:00:30Z'), T('2026-01-01T00:01:10Z')), { time: T('2026-01-01T00:01:00Z'), missed: 1 })
  t.same(mostRecentScheduleTime(every, T('2026-01-01T00:00:30Z'), T('2026-01-01T00:05:10Z')), { time: T('2026-01-01T00:05:00Z'), missed: 5 })
  const many = mostRecentScheduleTime(every, T('2026-01-01T00:00:00Z'), T('2026-01-01T03:00:30Z'))
  t.same(many, { time: T('2026-01-01T03:00:00Z'), missed: 180 })
  // Irregular: weekdays at 9; walking the real times gives Monday, not an extrapolated Sunday.
  const weekdays = parseSchedule('0 9 * * 1-5')
  t.equal(iso(mostRecentScheduleTime(weekdays, T('2026-01-01T10:00:00Z'), T('2026-01-05T10:00:00Z')).time!), '2026-01-05T09:00:00Z')
})

t.test('planCronJob: creating the due Job', async (t) => {
  const now = T('2026-01-01T00:01:05Z')
  const p = planCronJob({ cj: cronJob(), jobs: [], now, schedule: parseSchedule('* * * * *') })
  t.equal(p.create?.metadata.name, scheduledJobName('cj', T('2026-01-01T00:01:00Z')))
  t.equal(p.create?.metadata.name, `cj-${T('2026-01-01T00:01:00Z') / 60_000}`)
  t.same(p.create?.metadata.labels, { app: 'x' })
  t.equal(p.create?.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'], '2026-01-01T00:01:00Z')
  t.match(p.create?.metadata.ownerReferences, [{ kind: 'CronJob', uid: 'cj-uid', controller: true, blockOwnerDeletion: true }])
  t.equal(p.status.lastScheduleTime, '2026-01-01T00:01:00Z')
  t.equal(p.requeueAfterMs, 55_100, 'back at the next minute')

  const tz = planCronJob({ cj: cronJob({ timeZone: 'Europe/Berlin' }), jobs: [], now, schedule: parseSchedule('* * * * *', 'Europe/Berlin') })
  t.equal(tz.create?.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'], '2026-01-01T01:01:00+01:00')

  const already = planCronJob({ cj: cronJob({}, { lastScheduleTime: '2026-01-01T00:01:00Z' }), jobs: [], now, schedule: parseSchedule('* * * * *') })
  t.notOk(already.create, 'that minute was already scheduled')

  const suspended = planCronJob({ cj: cronJob({ suspend: true }), jobs: [], now, schedule: parseSchedule('* * * * *') })
  t.notOk(suspended.create)

  const bad = planCronJob({ cj: cronJob(), jobs: [], now, scheduleError: 'boom' })
  t.match(bad.events, [{ type: 'Warning', reason: 'UnparseableSchedule' }])
})

t.test('planCronJob: concurrency, deadlines, too many missed', async (t) => {
  const now = T('2026-01-01T00:02:05Z')
  const running = job('cj-1', { start: '2026-01-01T00:01:00Z' })
  const status = { active: [{ kind: 'Job', name: 'cj-1', namespace: 'ns', uid: 'uid-cj-1' }], lastScheduleTime: '2026-01-01T00:01:00Z' }
  const sched = parseSchedule('* * * * *')
  const forbid = planCronJob({ cj: cronJob({ concurrencyPolicy: 'Forbid' }, status), jobs: [running], now, schedule: sched })
  t.notOk(forbid.create)
  t.match(forbid.events, [{ reason: 'JobAlreadyActive' }])
  const replace = planCronJob({ cj: cronJob({ concurrencyPolicy: 'Replace' }, status), jobs: [running], now, schedule: sched })
  t.same(replace.replace.map((j) => j.metadata.name), ['cj-1'])
  t.ok(replace.create)
  const allow = planCronJob({ cj: cronJob({}, status), jobs: [running], now, schedule: sched })
  t.ok(allow.create)
  t.same(allow.replace, [])
  t.equal(allow.status.active.length, 1, 'the running one stays active (the new one is added once created)')

  // 00:02:00 is more than startingDeadlineSeconds ago: it is skipped (Kubernetes starts looking at now - deadline).
  const late = planCronJob({ cj: cronJob({ startingDeadlineSeconds: 3 }), jobs: [], now: T('2026-01-01T00:02:05Z'), schedule: sched })
  t.notOk(late.create)
  t.equal(late.requeueAfterMs, 55_100)
  const inTime = planCronJob({ cj: cronJob({ startingDeadlineSeconds: 10 }), jobs: [], now: T('2026-01-01T00:02:05Z'), schedule: sched })
  t.equal(inTime.create?.metadata.name, `cj-${T('2026-01-01T00:02:00Z') / 60_000}`)

  const behind = planCronJob({ cj: cronJob(), jobs: [], now: T('2026-01-01T03:00:10Z'), schedule: sched })
  t.match(behind.events, [{ type: 'Warning', reason: 'TooManyMissedTimes', message: /^too many missed start times: 180\./ }])
  t.equal(behind.create?.metadata.name, `cj-${T('2026-01-01T03:00:00Z') / 60_000}`, 'and the most recent time still runs')
  const bounded = planCronJob({ cj: cronJob({ startingDeadlineSeconds: 200 }), jobs: [], now: T('2026-01-01T03:00:10Z'), schedule: sched })
  t.same(bounded.events, [], 'startingDeadlineSeconds bounds the count')
})

t.test('status: finished Jobs leave active, lastSuccessfulTime from the newest Complete', async (t) => {
  const done = job('cj-1', { done: 'Complete', start: '2026-01-01T00:01:30Z' })
  const status = { active: [{ kind: 'Job', name: 'cj-1', namespace: 'ns', uid: 'uid-cj-1' }, { kind: 'Job', name: 'gone', namespace: 'ns', uid: 'uid-gone' }] }
  const p = planCronJob({ cj: cronJob({ suspend: true }, status), jobs: [done], now: T('2026-01-01T00:02:05Z'), schedule: parseSchedule('* * * * *') })
  t.notOk(p.status.active)
  t.equal(p.status.lastSuccessfulTime, '2026-01-01T00:01:30Z')
  t.same(p.events.map((e) => e.reason).sort(), ['MissingJob', 'SawCompletedJob'])
  const manual = job('manual', { start: '2026-01-01T00:01:30Z' })
  const seen = planCronJob({ cj: cronJob({ concurrencyPolicy: 'Forbid' }), jobs: [manual], now: T('2026-01-01T00:01:35Z'), schedule: parseSchedule('* * * * *') })
  t.match(seen.events, [{ type: 'Warning', reason: 'UnexpectedJob', message: 'Saw a job that the controller did not create or forgot: manual' }])
  t.ok(seen.create, 'a Job the controller did not make does not block Forbid (as in Kubernetes)')
})

t.test('history limits: the oldest finished Jobs go', async (t) => {
  const jobs = [
    job('s1', { done: 'Complete', start: '2026-01-01T00:01:00Z' }),
    job('s3', { done: 'Complete', start: '2026-01-01T00:03:00Z' }),
    job('s2', { done: 'Complete', start: '2026-01-01T00:02:00Z' }),
    job('f1', { done: 'Failed', start: '2026-01-01T00:01:00Z' }),
    job('f2', { done: 'Failed', start: '2026-01-01T00:02:00Z' }),
    job('running', { start: '2026-01-01T00:00:00Z' }),
  ]
  t.same(jobsToPrune(cronJob({ successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1 }), jobs).map((j) => j.metadata.name), ['s1', 'f1'])
  t.same(jobsToPrune(cronJob({ successfulJobsHistoryLimit: 0, failedJobsHistoryLimit: 0 }), jobs).map((j) => j.metadata.name), ['s1', 's2', 's3', 'f1', 'f2'])
})

t.test('fastClock: N times faster than real time', async (t) => {
  const start = Date.now()
  const c = fastClock(60, start)
  t.ok(c.now() >= start && c.now() < start + 60_000)
  t.equal(c.realDelayMs(60_000), 1000)
  t.throws(() => fastClock(0.5))
})
