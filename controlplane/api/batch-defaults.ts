// batch/v1 defaulting (SetDefaults_Job, SetDefaults_CronJob) and the Job
// selector the apiserver generates on create (the job strategy's
// generateSelector). Selector generation needs the Job's uid, so the
// registry calls generateJobSelector after it has assigned one; the rest runs
// with every other defaulter (defaults.ts).

import { defaultPodSpec } from './defaults.ts'
import type { KubeObject } from './types.ts'

type Obj = Record<string, any>

export const batchLabels = {
  controllerUid: 'batch.kubernetes.io/controller-uid',
  jobName: 'batch.kubernetes.io/job-name',
  legacyControllerUid: 'controller-uid',
  legacyJobName: 'job-name',
  completionIndex: 'batch.kubernetes.io/job-completion-index',
} as const

export const jobTrackingFinalizer = 'batch.kubernetes.io/job-tracking'
export const cronJobScheduledTimestamp = 'batch.kubernetes.io/cronjob-scheduled-timestamp'

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const unset = (v: unknown) => v === undefined || v === null
const sub = (o: Obj, key: string): Obj => (isObj(o[key]) ? o[key] : (o[key] = {}))

function defaultTemplate(spec: Obj): void {
  if (isObj(spec.template)) defaultPodSpec(sub(spec.template, 'spec'))
}

export function defaultJob(o: KubeObject): void {
  const spec = sub(o, 'spec')
  if (unset(spec.completions) && unset(spec.parallelism)) {
    spec.completions = 1
    spec.parallelism = 1
  }
  if (unset(spec.parallelism)) spec.parallelism = 1
  if (unset(spec.backoffLimit)) spec.backoffLimit = unset(spec.backoffLimitPerIndex) ? 6 : 2147483647
  if (unset(spec.completionMode) || spec.completionMode === '') spec.completionMode = 'NonIndexed'
  if (unset(spec.suspend)) spec.suspend = false
  if (unset(spec.podReplacementPolicy) || spec.podReplacementPolicy === '') spec.podReplacementPolicy = isObj(spec.podFailurePolicy) ? 'Failed' : 'TerminatingOrFailed'
  // The Job's own labels default to its pod template's (Kubernetes shares the very map).
  const labels = isObj(spec.template) && isObj(spec.template.metadata) ? spec.template.metadata.labels : undefined
  if (isObj(labels) && (!isObj(o.metadata?.labels) || Object.keys(o.metadata.labels).length === 0)) o.metadata = { ...o.metadata, labels: { ...labels } }
  defaultTemplate(spec)
}

export function defaultCronJob(o: KubeObject): void {
  const spec = sub(o, 'spec')
  if (unset(spec.concurrencyPolicy) || spec.concurrencyPolicy === '') spec.concurrencyPolicy = 'Allow'
  if (unset(spec.suspend)) spec.suspend = false
  if (unset(spec.successfulJobsHistoryLimit)) spec.successfulJobsHistoryLimit = 3
  if (unset(spec.failedJobsHistoryLimit)) spec.failedJobsHistoryLimit = 1
  if (isObj(spec.jobTemplate) && isObj(spec.jobTemplate.spec)) defaultTemplate(spec.jobTemplate.spec)
}

/**
 * On create, unless spec.manualSelector: the template gets the job-name and
 * controller-uid labels (both spellings; a label the user set is kept, and a
 * wrong one is then rejected by validation), and the selector matches the
 * controller-uid. Job labels that were defaulted from the template follow it.
 */
export function generateJobSelector(job: KubeObject): void {
  const spec = job.spec
  if (!isObj(spec) || spec.manualSelector === true || !isObj(spec.template)) return
  const meta = sub(spec.template, 'metadata')
  const before = isObj(meta.labels) ? JSON.stringify(meta.labels) : undefined
  const shared = before !== undefined && before !== '{}' && JSON.stringify(job.metadata?.labels ?? {}) === before
  const labels = sub(meta, 'labels')
  const name = job.metadata?.name ?? ''
  const uid = job.metadata?.uid ?? ''
  for (const k of [batchLabels.legacyJobName, batchLabels.jobName]) if (!(k in labels)) labels[k] = name
  for (const k of [batchLabels.legacyControllerUid, batchLabels.controllerUid]) if (!(k in labels)) labels[k] = uid
  const selector = sub(spec, 'selector')
  const matchLabels = sub(selector, 'matchLabels')
  if (!(batchLabels.controllerUid in matchLabels)) matchLabels[batchLabels.controllerUid] = uid
  if (shared) job.metadata.labels = { ...labels }
}
