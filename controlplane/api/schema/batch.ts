// batch/v1 Job and CronJob. Field numbers follow k8s.io/api generated.proto.

import { atomic, byType, conditionStatus, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const

export const batch = definePackage('batch', 'io.k8s.api.batch.v1', {
  Job: object('Runs pods until a number of them succeed.', {
    metadata: meta,
    spec: [2, 'JobSpec', 'Desired state.'],
    status: [3, 'JobStatus', 'Observed state.'],
  }),
  JobList: listOf('Job'),
  JobSpec: type('Desired state of a job.', {
    parallelism: [1, '*int32', 'Pods running at once. Defaults to 1.'],
    completions: [2, '*int32', 'Successful pods needed.'],
    activeDeadlineSeconds: [3, '*int64', 'Seconds the job may run.'],
    podFailurePolicy: [11, '*PodFailurePolicy', 'How pod failures count.'],
    successPolicy: [16, '*SuccessPolicy', 'When an indexed job succeeds early.'],
    backoffLimit: [7, '*int32', 'Retries before the job fails. Defaults to 6.'],
    backoffLimitPerIndex: [12, '*int32', 'Retries per index (Indexed jobs).'],
    maxFailedIndexes: [13, '*int32', 'Failed indexes before the job fails.'],
    selector: [4, '*meta.LabelSelector', 'Pods of the job; generated unless manualSelector.'],
    manualSelector: [5, '*bool', 'The selector is set by the user.'],
    template: [6, 'core.PodTemplateSpec', 'The pods to run.', req],
    ttlSecondsAfterFinished: [8, '*int32', 'Delete the job this many seconds after it finishes.'],
    completionMode: [9, '*string', 'NonIndexed or Indexed.', { enum: ['Indexed', 'NonIndexed'] }],
    suspend: [10, '*bool', 'Do not create pods.'],
    podReplacementPolicy: [14, '*string', 'TerminatingOrFailed or Failed.'],
    managedBy: [15, '*string', 'Controller that manages the job.'],
  }),
  PodFailurePolicy: type('How pod failures count.', {
    rules: [1, '[]PodFailurePolicyRule', 'Rules, first match wins.', { required: true, listType: 'atomic' }],
  }),
  PodFailurePolicyRule: type('What to do with a matching pod failure.', {
    action: [1, 'string', 'FailJob, FailIndex, Ignore or Count.', { required: true, enum: ['Count', 'FailIndex', 'FailJob', 'Ignore'] }],
    onExitCodes: [2, '*PodFailurePolicyOnExitCodesRequirement', 'Match by exit codes.'],
    onPodConditions: [3, '[]PodFailurePolicyOnPodConditionsPattern', 'Match by pod conditions.', atomic],
  }),
  PodFailurePolicyOnExitCodesRequirement: type('Exit codes a rule matches.', {
    containerName: [1, '*string', 'Container; all when empty.'],
    operator: [2, 'string', 'In or NotIn.', { required: true, enum: ['In', 'NotIn'] }],
    values: [3, '[]int32', 'Exit codes.', { required: true, listType: 'set' }],
  }),
  PodFailurePolicyOnPodConditionsPattern: type('A pod condition a rule matches.', {
    type: [1, 'string', 'Condition type.', req],
    status: [2, 'string', 'Condition status. Defaults to True.'],
  }),
  SuccessPolicy: type('When an indexed job succeeds early.', {
    rules: [1, '[]SuccessPolicyRule', 'Rules, any match succeeds.', { required: true, listType: 'atomic' }],
  }),
  SuccessPolicyRule: type('One success rule.', {
    succeededIndexes: [1, '*string', 'Indexes that must succeed (1,3-5).'],
    succeededCount: [2, '*int32', 'How many of them.'],
  }),
  JobStatus: type('Observed state of a job.', {
    conditions: [1, '[]JobCondition', 'Current conditions (Complete, Failed, ...).', { ...byType, listType: 'atomic' }],
    startTime: [2, '*Time', 'When the job started.'],
    completionTime: [3, '*Time', 'When the job completed.'],
    active: [4, 'int32', 'Running pods.'],
    succeeded: [5, 'int32', 'Succeeded pods.'],
    failed: [6, 'int32', 'Failed pods.'],
    terminating: [11, '*int32', 'Pods being deleted.'],
    completedIndexes: [7, 'string', 'Completed indexes (Indexed jobs).'],
    failedIndexes: [10, '*string', 'Failed indexes.'],
    uncountedTerminatedPods: [8, '*UncountedTerminatedPods', 'Finished pods not counted yet.'],
    ready: [9, '*int32', 'Ready pods.'],
  }),
  JobCondition: type('One condition of a job.', {
    type: [1, 'string', 'Condition type.', req],
    status: [2, 'string', 'True, False or Unknown.', { required: true, enum: conditionStatus }],
    lastProbeTime: [3, 'Time', 'Last check.'],
    lastTransitionTime: [4, 'Time', 'Last status change.'],
    reason: [5, 'string', 'CamelCase reason.'],
    message: [6, 'string', 'Details.'],
  }),
  UncountedTerminatedPods: type('Finished pods not counted yet.', {
    succeeded: [1, '[]string', 'UIDs of succeeded pods.', { listType: 'set' }],
    failed: [2, '[]string', 'UIDs of failed pods.', { listType: 'set' }],
  }),
  CronJob: object('Creates Jobs on a schedule.', {
    metadata: meta,
    spec: [2, 'CronJobSpec', 'Schedule and job template.'],
    status: [3, 'CronJobStatus', 'Observed state.'],
  }),
  CronJobList: listOf('CronJob'),
  CronJobSpec: type('Schedule and job template of a cron job.', {
    schedule: [1, 'string', 'Cron schedule (5 fields).', req],
    timeZone: [8, '*string', 'Time zone of the schedule.'],
    startingDeadlineSeconds: [2, '*int64', 'Seconds a missed start may be late.'],
    concurrencyPolicy: [3, 'string', 'Allow, Forbid or Replace. Defaults to Allow.', { enum: ['Allow', 'Forbid', 'Replace'] }],
    suspend: [4, '*bool', 'Do not start new jobs.'],
    jobTemplate: [5, 'JobTemplateSpec', 'The jobs to create.', req],
    successfulJobsHistoryLimit: [6, '*int32', 'Successful jobs kept. Defaults to 3.'],
    failedJobsHistoryLimit: [7, '*int32', 'Failed jobs kept. Defaults to 1.'],
  }),
  JobTemplateSpec: type('The jobs a cron job creates.', {
    metadata: [1, 'meta.ObjectMeta', 'Labels and annotations of the jobs.'],
    spec: [2, 'JobSpec', 'Spec of the jobs.'],
  }),
  CronJobStatus: type('Observed state of a cron job.', {
    active: [1, '[]core.ObjectReference', 'Running jobs.', atomic],
    lastScheduleTime: [4, '*Time', 'Last time a job was scheduled.'],
    lastSuccessfulTime: [5, '*Time', 'Last time a job succeeded.'],
  }),
})
