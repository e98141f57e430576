// batch/v1 in the API layer: defaults, the generated selector, validation
// (field paths and messages as Kubernetes), and the kubectl get columns.

import t from 'tap'
import { generateJobSelector } from '../../controlplane/api/batch-defaults.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { printTable } from '../../controlplane/api/printers.ts'
import { lookupResource, resolveResourceName } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { validate } from '../../controlplane/api/validation.ts'

const jobs = lookupResource('batch', 'v1', 'jobs')!
const cronjobs = lookupResource('batch', 'v1', 'cronjobs')!
const uid = '0b9c1a1e-1111-2222-3333-444455556666'

function created(body: KubeObject): KubeObject {
  const obj = applyDefaults(jobs, body)
  obj.metadata = { ...obj.metadata, namespace: 'default', uid }
  generateJobSelector(obj)
  return obj
}

const template = (extra: Record<string, unknown> = {}) => ({ spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }], ...extra } })
const messages = (causes: Array<{ field?: string; message?: string }>) => causes.map((c) => `${c.field}: ${c.message}`)

t.test('resources: jobs and cronjobs (cj) in category all', async (t) => {
  t.match(jobs, { kind: 'Job', namespaced: true, categories: ['all'], subresources: ['status'] })
  t.equal(resolveResourceName('cj')?.kind, 'CronJob')
  t.same(cronjobs.categories, ['all'])
})

t.test('Job defaults and the generated selector', async (t) => {
  const j = created({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'pi' }, spec: { template: { metadata: { labels: { app: 'pi' } }, ...template() } } })
  t.match(j.spec, { completions: 1, parallelism: 1, backoffLimit: 6, completionMode: 'NonIndexed', suspend: false, podReplacementPolicy: 'TerminatingOrFailed' })
  t.same(j.spec.selector, { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } })
  t.same(j.spec.template.metadata.labels, { app: 'pi', 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': 'pi', 'controller-uid': uid, 'job-name': 'pi' })
  t.same(j.metadata.labels, j.spec.template.metadata.labels, 'labels defaulted from the template follow it')
  t.equal(j.spec.template.spec.terminationGracePeriodSeconds, 30, 'pod template defaulted')
  t.same(validate(jobs, j), [])
  const parallel = created({ metadata: { name: 'p' }, spec: { parallelism: 3, template: template() } })
  t.equal(parallel.spec.completions, undefined, 'only parallelism given: completions stays unset')
  t.same(parallel.metadata.labels, undefined, 'no template labels: no Job labels')
  const manual = created({ metadata: { name: 'm' }, spec: { manualSelector: true, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, ...template() } } })
  t.same(manual.spec.selector, { matchLabels: { a: 'b' } })
  t.same(validate(jobs, manual), [])
})

t.test('Job validation', async (t) => {
  const base = (spec: Record<string, unknown>) => created({ metadata: { name: 'v' }, spec: { template: template(), ...spec } })
  const always = created({ metadata: { name: 'v' }, spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }] } } } })
  t.same(messages(validate(jobs, always)), ['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'])
  t.same(messages(validate(jobs, base({ completionMode: 'Indexed', completions: null, parallelism: 2 }))), ['spec.completions: Required value: when completion mode is Indexed'])
  t.same(messages(validate(jobs, base({ completionMode: 'Sometimes' }))), ['spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'])
  t.same(messages(validate(jobs, base({ backoffLimit: -1 }))), ['spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0'])
  const wrong = base({})
  wrong.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': 'other' } }
  t.match(messages(validate(jobs, wrong)), [
    /^spec\.selector: Invalid value: v1\.LabelSelector\{MatchLabels:map\[string\]string\{"batch\.kubernetes\.io\/controller-uid":"other"\}.*: `selector` not auto-generated$/,
    /^spec\.template\.metadata\.labels: Invalid value: map\[string\]string\{.*\}: `selector` does not match template `labels`$/,
  ])
  const old = base({ completions: 2 })
  const bigger = { ...old, spec: { ...old.spec, completions: 3 } }
  t.same(messages(validate(jobs, bigger, old)), ['spec.completions: Invalid value: 3: field is immutable'])
  const elasticOld = base({ completionMode: 'Indexed', completions: 2, parallelism: 2 })
  const elastic = { ...elasticOld, spec: { ...elasticOld.spec, completions: 4, parallelism: 4 } }
  t.same(validate(jobs, elastic, elasticOld), [], 'elastic Indexed Jobs scale completions with parallelism')
  const image = { ...old, spec: { ...old.spec, template: { ...old.spec.template, spec: { ...old.spec.template.spec, containers: [{ name: 'c', image: 'other' }] } } } }
  t.match(messages(validate(jobs, image, old)), [/^spec\.template: Invalid value: .*: field is immutable$/])
  const suspend = { ...old, spec: { ...old.spec, suspend: true, parallelism: 5 } }
  t.same(validate(jobs, suspend, old), [], 'suspend and parallelism may change')
})

t.test('CronJob defaults and validation', async (t) => {
  const cj = (spec: Record<string, unknown>, name = 'tick') =>
    applyDefaults(cronjobs, { metadata: { name, namespace: 'default' }, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: template() } }, ...spec } })
  const d = cj({})
  t.match(d.spec, { concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1 })
  t.equal(d.spec.jobTemplate.spec.completions, undefined, 'the job template is not Job-defaulted')
  t.same(validate(cronjobs, d), [])
  t.same(validate(cronjobs, cj({ schedule: '@hourly', timeZone: 'Europe/Berlin' })), [])
  t.same(messages(validate(cronjobs, cj({ schedule: 'every minute' }))), ['spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]'])
  t.same(messages(validate(cronjobs, cj({ schedule: 'TZ=UTC 0 * * * *' }))), [
    'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": expected exactly 5 fields, found 6: [TZ=UTC 0 * * * *]',
    'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
  ])
  t.same(messages(validate(cronjobs, cj({ timeZone: 'Mars/Olympus' }))), ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'])
  t.same(messages(validate(cronjobs, cj({ concurrencyPolicy: 'Sometimes' }))), ['spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'])
  t.same(messages(validate(cronjobs, cj({ schedule: '' }))), ['spec.schedule: Required value'])
  t.same(messages(validate(cronjobs, cj({}, 'x'.repeat(53)))), [`metadata.name: Invalid value: "${'x'.repeat(53)}": must be no more than 52 characters`])
  t.same(messages(validate(cronjobs, cj({ jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } } }))), [
    'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
  ])
})

t.test('printers: kubectl get job / cronjob columns', async (t) => {
  const now = new Date('2026-01-01T00:10:00Z')
  const job = {
    metadata: { name: 'pi', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { completions: 5, parallelism: 2, selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u' } }, template: { spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    status: { succeeded: 5, startTime: '2026-01-01T00:00:00Z', completionTime: '2026-01-01T00:00:42Z', conditions: [{ type: 'Complete', status: 'True' }] },
  }
  const table = printTable(jobs, [job], { includeObject: 'None', now, resourceVersion: '1' })
  t.same(table.columnDefinitions.map((c) => `${c.name}/${c.priority}`), ['Name/0', 'Status/0', 'Completions/0', 'Duration/0', 'Age/0', 'Containers/1', 'Images/1', 'Selector/1'])
  t.same(table.rows[0]!.cells, ['pi', 'Complete', '5/5', '42s', '10m', 'c', 'busybox', 'batch.kubernetes.io/controller-uid=u'])
  const running = { ...job, spec: { parallelism: 3 }, status: { startTime: '2026-01-01T00:09:00Z' } }
  t.same(printTable(jobs, [running], { includeObject: 'None', now, resourceVersion: '1' }).rows[0]!.cells.slice(1, 4), ['Running', '0/1 of 3', '60s'])
  const cj = {
    metadata: { name: 'tick', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { schedule: '*/5 * * * *', suspend: false, jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }] } } } } },
    status: { active: [{ name: 'a' }], lastScheduleTime: '2026-01-01T00:05:00Z' },
  }
  const ct = printTable(cronjobs, [cj], { includeObject: 'None', now, resourceVersion: '1' })
  t.same(ct.columnDefinitions.map((c) => c.name).slice(0, 7), ['Name', 'Schedule', 'Timezone', 'Suspend', 'Active', 'Last Schedule', 'Age'])
  t.same(ct.rows[0]!.cells.slice(0, 7), ['tick', '*/5 * * * *', '<none>', 'False', 1, '5m', '10m'])
})
