// Jobs and CronJobs (printJob, printCronJob in pkg/printers/internalversion,
// Kubernetes 1.32: the Job's STATUS column is there since 1.30).

import type { KubeObject } from '../types.ts'
import { age, arr, containerCells, formatSelector, humanDuration, num, rec, since } from './format.ts'
import { ageCol, col, nameCol, templateCols } from './types.ts'
import type { KindPrinter } from './types.ts'

const hasCondition = (job: KubeObject, type: string) => arr(job.status?.conditions).some((c) => c?.type === type && c?.status === 'True')

/** The STATUS cell: the first of Complete, Failed, Terminating, Suspended, FailureTarget, SuccessCriteriaMet, else Running. */
export function jobStatusText(job: KubeObject): string {
  if (hasCondition(job, 'Complete')) return 'Complete'
  if (hasCondition(job, 'Failed')) return 'Failed'
  if (job.metadata?.deletionTimestamp) return 'Terminating'
  if (hasCondition(job, 'Suspended')) return 'Suspended'
  if (hasCondition(job, 'FailureTarget')) return 'FailureTarget'
  if (hasCondition(job, 'SuccessCriteriaMet')) return 'SuccessCriteriaMet'
  return 'Running'
}

function completions(job: KubeObject): string {
  const spec = rec(job.spec)
  const succeeded = num(job.status?.succeeded)
  if (typeof spec.completions === 'number') return `${succeeded}/${spec.completions}`
  if (typeof spec.parallelism !== 'number') return `${succeeded}/1`
  return spec.parallelism > 1 ? `${succeeded}/1 of ${spec.parallelism}` : `${succeeded}/1`
}

function duration(job: KubeObject, now: Date): string {
  const start = Date.parse(job.status?.startTime ?? '')
  if (Number.isNaN(start)) return ''
  const end = Date.parse(job.status?.completionTime ?? '')
  return humanDuration((Number.isNaN(end) ? now.getTime() : end) - start)
}

export const jobPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Status', 'Status of the job.'),
    col('Completions', 'The completion status of the job.'),
    col('Duration', 'Time required to complete the job.'),
    ageCol,
    ...templateCols.slice(0, 2),
    col('Selector', 'A label query over pods that should match the pod count. Label keys and values that must match in order to be controlled by this resource.', { priority: 1 }),
  ],
  cells(job, now) {
    return [job.metadata?.name ?? '', jobStatusText(job), completions(job), duration(job, now), age(job, now), ...containerCells(job.spec?.template?.spec), formatSelector(job.spec?.selector)]
  },
}

function boolPtr(v: unknown): string {
  return typeof v === 'boolean' ? (v ? 'True' : 'False') : '<unset>'
}

export const cronJobPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Schedule', 'The schedule for running the job.'),
    col('Timezone', 'The time zone the job should run in.'),
    col('Suspend', 'Whether the job is suspended.', { type: 'boolean' }),
    col('Active', 'The number of active jobs.', { type: 'integer' }),
    col('Last Schedule', 'The time when the last scheduled job ran.'),
    ageCol,
    ...templateCols.slice(0, 2),
    col('Selector', 'A label query over pods that should match the pod count. Label keys and values that must match in order to be controlled by this resource.', { priority: 1 }),
  ],
  cells(cj, now) {
    const spec = rec(cj.spec)
    const jobSpec = rec(rec(spec.jobTemplate).spec)
    const last = cj.status?.lastScheduleTime ? since(cj.status.lastScheduleTime, now) : '<none>'
    return [
      cj.metadata?.name ?? '', spec.schedule ?? '', spec.timeZone || '<none>', boolPtr(spec.suspend), arr(cj.status?.active).length, last, age(cj, now),
      ...containerCells(rec(jobSpec.template).spec), formatSelector(jobSpec.selector),
    ]
  },
}
