// Jobs and CronJobs (pkg/apis/batch/validation): the pod template may only
// restart Never or OnFailure, the selector is the generated one unless
// manualSelector, Indexed jobs need completions, most of the spec is fixed
// once created, and a CronJob's schedule and time zone must parse.

import { batchLabels } from '../batch-defaults.ts'
import { parseSchedule, timeZoneError } from '../cron.ts'
import type { KubeObject } from '../types.ts'
import { canonical, goStringMap, immutableMsg, invalid, isRecord, nonNegative, notSupported, raw, required, type Causes } from './field.ts'
import { goSelector, selectorMatches, validateLabelSelector } from './meta.ts'
import { validatePodTemplate } from './pod.ts'

const maxParallelismForIndexedJob = 100_000

/** validateJobSpec: what a Job and a CronJob's jobTemplate share. */
function validateJobSpecCommon(spec: Record<string, any>, path: string): Causes {
  const out: Causes = []
  for (const f of ['parallelism', 'completions', 'activeDeadlineSeconds', 'backoffLimit', 'ttlSecondsAfterFinished']) out.push(...nonNegative(`${path}.${f}`, spec[f]))
  const mode = spec.completionMode
  if (mode !== undefined && mode !== null) {
    if (mode !== 'NonIndexed' && mode !== 'Indexed') out.push(notSupported(`${path}.completionMode`, mode, ['NonIndexed', 'Indexed']))
    if (mode === 'Indexed') {
      if (spec.completions === undefined || spec.completions === null) out.push(required(`${path}.completions`, 'when completion mode is Indexed'))
      if (typeof spec.parallelism === 'number' && spec.parallelism > maxParallelismForIndexedJob)
        out.push(invalid(`${path}.parallelism`, spec.parallelism, `must be less than or equal to ${maxParallelismForIndexedJob} when completion mode is Indexed`))
    }
  }
  out.push(...validatePodTemplate(spec.template, `${path}.template`))
  const rp = isRecord(spec.template) && isRecord(spec.template.spec) ? spec.template.spec.restartPolicy : undefined
  if (isRecord(spec.template) && rp !== 'OnFailure' && rp !== 'Never') out.push(notSupported(`${path}.template.spec.restartPolicy`, rp ?? '', ['OnFailure', 'Never']))
  return out
}

/** The generated selector and labels must be the ones generateJobSelector made (validateGeneratedSelector). */
function validateGeneratedSelector(job: KubeObject): Causes {
  const spec = job.spec
  if (spec.manualSelector === true) return []
  const labels = spec.template?.metadata?.labels
  if (!isRecord(labels)) return []
  if (!spec.selector) return [required('spec.selector')]
  const out: Causes = []
  const uid = job.metadata?.uid ?? ''
  if (!uid) out.push(required('metadata.uid'))
  const has = (key: string, want: string) =>
    labels[key] === want ? [] : [required(`spec.template.metadata.labels[${key}]`, `must be '${want}'`)]
  out.push(...has(batchLabels.controllerUid, uid), ...has(batchLabels.jobName, job.metadata?.name ?? ''))
  if (!selectorMatches(spec.selector, { [batchLabels.controllerUid]: uid })) out.push(invalid('spec.selector', goSelector(spec.selector), '`selector` not auto-generated'))
  return out
}

export function validateJob(job: KubeObject, old?: KubeObject): Causes {
  const spec = job.spec
  if (!isRecord(spec)) return [required('spec')]
  const out = [...validateGeneratedSelector(job), ...validateJobSpecCommon(spec, 'spec')]
  if (spec.selector === undefined || spec.selector === null) out.push(required('spec.selector'))
  else {
    out.push(...validateLabelSelector(spec.selector, 'spec.selector'))
    const labels = spec.template?.metadata?.labels
    if (!selectorMatches(spec.selector, labels)) out.push(invalid('spec.template.metadata.labels', goStringMap(labels), '`selector` does not match template `labels`'))
  }
  if (old && isRecord(old.spec)) out.push(...validateJobSpecUpdate(spec, old.spec))
  return out
}

/** Elastic Indexed Jobs may change completions together with parallelism. */
function validateJobSpecUpdate(spec: Record<string, any>, old: Record<string, any>): Causes {
  const out: Causes = []
  const same = (f: string) => canonical(spec[f]) === canonical(old[f])
  const elastic = spec.completionMode === 'Indexed' && old.completionMode === 'Indexed' && spec.completions === spec.parallelism
  if (!elastic && !same('completions')) out.push(invalid('spec.completions', spec.completions ?? null, immutableMsg))
  if (!same('selector')) out.push(invalid('spec.selector', goSelector(spec.selector), immutableMsg))
  if (!same('template')) out.push(invalid('spec.template', raw(canonical(spec.template ?? null)), immutableMsg))
  for (const f of ['completionMode', 'podFailurePolicy', 'backoffLimitPerIndex', 'manualSelector'])
    if (!same(f)) out.push(invalid(`spec.${f}`, spec[f] ?? null, immutableMsg))
  return out
}

function validateSchedule(schedule: unknown, timeZone: unknown, oldSchedule: unknown): Causes {
  if (typeof schedule !== 'string' || schedule === '') return [required('spec.schedule')]
  const out: Causes = []
  try {
    parseSchedule(schedule)
  } catch (e) {
    out.push(invalid('spec.schedule', schedule, (e as Error).message))
  }
  const allowTZ = typeof oldSchedule === 'string' && oldSchedule.includes('TZ')
  if (allowTZ && schedule.includes('TZ') && timeZone != null) out.push(invalid('spec.schedule', schedule, 'cannot use both timeZone field and TZ or CRON_TZ in schedule'))
  else if (!allowTZ && schedule.includes('TZ')) out.push(invalid('spec.schedule', schedule, 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead'))
  return out
}

export function validateCronJob(cj: KubeObject, old?: KubeObject): Causes {
  const out: Causes = []
  const name = cj.metadata?.name ?? ''
  // The controller appends `-<11 digits>` to name its Jobs, whose names must stay within 63 characters.
  if (!old && name.length > 52) out.push(invalid('metadata.name', name, 'must be no more than 52 characters'))
  const spec = cj.spec
  if (!isRecord(spec)) return [...out, required('spec')]
  out.push(...validateSchedule(spec.schedule, spec.timeZone, old?.spec?.schedule))
  out.push(...nonNegative('spec.startingDeadlineSeconds', spec.startingDeadlineSeconds))
  const policy = spec.concurrencyPolicy
  if (policy === undefined || policy === null || policy === '') out.push(required('spec.concurrencyPolicy'))
  else if (!['Allow', 'Forbid', 'Replace'].includes(policy)) out.push(notSupported('spec.concurrencyPolicy', policy, ['Allow', 'Forbid', 'Replace']))
  const jt = spec.jobTemplate
  if (!isRecord(jt) || !isRecord(jt.spec)) out.push(required('spec.jobTemplate.spec.template'))
  else {
    out.push(...validateJobSpecCommon(jt.spec, 'spec.jobTemplate.spec'))
    if (jt.spec.selector != null) out.push(invalid('spec.jobTemplate.spec.selector', goSelector(jt.spec.selector), '`selector` will be auto-generated'))
    if (jt.spec.manualSelector === true) out.push(notSupported('spec.jobTemplate.spec.manualSelector', true, ['nil', 'false']))
  }
  out.push(...nonNegative('spec.successfulJobsHistoryLimit', spec.successfulJobsHistoryLimit))
  out.push(...nonNegative('spec.failedJobsHistoryLimit', spec.failedJobsHistoryLimit))
  if (spec.timeZone !== undefined && spec.timeZone !== null) {
    const err = typeof spec.timeZone === 'string' ? timeZoneError(spec.timeZone) : 'must be a string'
    if (err) out.push(invalid('spec.timeZone', spec.timeZone, err))
  }
  return out
}
