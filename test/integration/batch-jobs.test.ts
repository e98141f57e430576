// batch/v1 Jobs and CronJobs end to end: the real controllers (in the
// server's controller manager, with the Job backoff shortened and the
// CronJob clock running 20 times faster than real time, controllers/clock.ts),
// one real node agent running the pods on Docker, and the real kubectl.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { fastClock } from '../../controlplane/controllers/clock.ts'
import { silentLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const jobs = lookupResource('batch', 'v1', 'jobs')!
const cronjobs = lookupResource('batch', 'v1', 'cronjobs')!
const events = lookupResource('', 'v1', 'events')!
const ns = 'default'
const image = 'skiff/echo:local'
const slow = { timeout: 60_000, interval: 250 }

await ensureImages({ progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(1, 'job')
const c = await startTestCluster(t, {
  identities: nodeIdentities(names),
  controllers: { clusterCIDR: net.clusterCIDR, jobBackoffBaseMs: 2_000, cronJobClock: fastClock(20) },
})
await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR, backoff: { baseMs: 500, maxMs: 2_000 } })

const cond = (o: KubeObject, type: string) => (o.status?.conditions ?? []).find((x: any) => x.type === type && x.status === 'True')
const jobPods = async (job: string) => (await c.client.list(pods, ns, { labelSelector: `batch.kubernetes.io/job-name=${job}` })).items
const finishedJob = (name: string, type: 'Complete' | 'Failed') =>
  eventually(async () => {
    const j = await c.client.get(jobs, ns, name)
    return cond(j, type) ? j : undefined
  }, { ...slow, what: `job ${name} ${type}` })

function jobYaml(name: string, spec: Record<string, unknown>, script: string): string {
  return JSON.stringify({
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name },
    spec: { ...spec, template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'work', image, command: ['sh', '-c', script] }] } } },
  })
}

t.test('completions 5, parallelism 2: five pods succeed, never more than two active', async (t) => {
  const inf = new Informer({ client: c.client, info: pods, logger: silentLogger(), namespace: ns, labelSelector: 'batch.kubernetes.io/job-name=five' })
  let maxActive = 0
  const sample = () => {
    const active = inf.list().filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase) && !p.metadata.deletionTimestamp)
    maxActive = Math.max(maxActive, active.length)
  }
  inf.addHandlers({ onAdd: sample, onUpdate: sample, onDelete: sample })
  await inf.start()
  t.teardown(() => inf.stop())
  // Polling the Job's own status too, as a user watching `kubectl get job` would.
  let maxStatusActive = 0
  const poll = setInterval(() => {
    void c.client.get(jobs, ns, 'five').then((j) => (maxStatusActive = Math.max(maxStatusActive, j.status?.active ?? 0)), () => undefined)
  }, 100)
  t.teardown(() => clearInterval(poll))
  await c.kubectl(['apply', '-f', '-'], { stdin: jobYaml('five', { completions: 5, parallelism: 2 }, 'sleep 1; echo done') })
  const j = await finishedJob('five', 'Complete')
  clearInterval(poll)
  t.equal(j.status.succeeded, 5)
  t.equal(j.status.failed ?? 0, 0)
  t.ok(j.status.completionTime, 'completionTime set')
  t.ok(cond(j, 'SuccessCriteriaMet'), 'SuccessCriteriaMet before Complete, as Kubernetes 1.31+')
  const list = await jobPods('five')
  t.equal(list.length, 5, 'exactly five pods were made')
  t.equal(list.filter((p) => p.status?.phase === 'Succeeded').length, 5)
  t.ok(list.every((p) => !(p.metadata.finalizers ?? []).includes('batch.kubernetes.io/job-tracking')), 'finalizers removed once counted')
  t.ok(maxActive <= 2 && maxActive >= 1, `at most 2 active pods at once (saw ${maxActive})`)
  t.ok(maxStatusActive <= 2, `status.active never above 2 (saw ${maxStatusActive})`)
  const get = await c.kubectl(['get', 'job', 'five'])
  t.match(get.stdout, /NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE/)
  t.match(get.stdout, /five\s+Complete\s+5\/5\s+\d+s/)
  const wide = await c.kubectl(['get', 'job', 'five', '-o', 'wide'])
  t.match(wide.stdout, /CONTAINERS\s+IMAGES\s+SELECTOR/)
  t.match(wide.stdout, /work\s+skiff\/echo:local\s+batch\.kubernetes\.io\/controller-uid=/)
  const eventsOf = async (name: string) => (await c.client.list(events, ns)).items.filter((e) => e.involvedObject?.name === name)
  const ev = await eventually(async () => {
    const list = await eventsOf('five')
    return list.some((e) => e.reason === 'Completed') ? list : undefined
  }, { ...slow, what: 'Completed event' })
  t.equal(ev.filter((e) => e.reason === 'SuccessfulCreate').length, 5, 'five SuccessfulCreate events')
})

t.test('exit 1 with backoffLimit 2: three pods fail, then BackoffLimitExceeded', async (t) => {
  // When each pod is first seen, on this process's clock: the replacements must wait out the backoff (2 s, then 4 s).
  const seen = new Map<string, number>()
  const inf = new Informer({ client: c.client, info: pods, logger: silentLogger(), namespace: ns, labelSelector: 'batch.kubernetes.io/job-name=fails' })
  inf.addHandlers({ onAdd: (p) => void (seen.has(p.metadata.name!) || seen.set(p.metadata.name!, performance.now())) })
  await inf.start()
  t.teardown(() => inf.stop())
  await c.kubectl(['apply', '-f', '-'], { stdin: jobYaml('fails', { backoffLimit: 2 }, 'echo failing; exit 1') })
  const j = await finishedJob('fails', 'Failed')
  const failed = cond(j, 'Failed')
  t.equal(failed.reason, 'BackoffLimitExceeded')
  t.equal(failed.message, 'Job has reached the specified backoff limit')
  t.equal(j.status.failed, 3)
  t.equal(j.status.succeeded ?? 0, 0)
  const list = await jobPods('fails')
  t.equal(list.length, 3, 'no pod after the limit')
  for (const p of list) {
    t.equal(p.status.phase, 'Failed')
    t.match(p.status.containerStatuses[0].state, { terminated: { exitCode: 1, reason: 'Error' } })
    t.equal(p.status.containerStatuses[0].restartCount, 0, 'restartPolicy Never: not restarted')
  }
  // finishedAt has whole seconds, so a delay may start up to 1 s early: at least 1 s, then 3 s, after the pod before was seen.
  const times = [...seen.values()].sort((a, b) => a - b)
  t.equal(times.length, 3)
  t.ok(times[1]! - times[0]! >= 1_000, `first replacement waited (${Math.round(times[1]! - times[0]!)} ms)`)
  t.ok(times[2]! - times[1]! >= 3_000, `second replacement waited the doubled backoff (${Math.round(times[2]! - times[1]!)} ms)`)
  const get = await c.kubectl(['get', 'job', 'fails'])
  t.match(get.stdout, /fails\s+Failed\s+0\/1/)
  await eventually(async () => (await c.client.list(events, ns)).items.some((e) => e.involvedObject?.name === 'fails' && e.reason === 'BackoffLimitExceeded' && e.type === 'Warning'), { ...slow, what: 'BackoffLimitExceeded Warning event' })
  t.pass('BackoffLimitExceeded Warning event')
})

t.test('restartPolicy OnFailure: container restarts count toward backoffLimit', async (t) => {
  const spec = { backoffLimit: 1, template: { spec: { restartPolicy: 'OnFailure', terminationGracePeriodSeconds: 1, containers: [{ name: 'work', image, command: ['sh', '-c', 'exit 3'] }] } } }
  await c.client.create(jobs, ns, { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'restarts' }, spec })
  const j = await finishedJob('restarts', 'Failed')
  t.equal(cond(j, 'Failed').reason, 'BackoffLimitExceeded')
  t.equal(j.status.failed, 1, 'the one pod, deleted when the Job failed, counts as failed')
  t.ok(cond(j, 'FailureTarget'), 'FailureTarget came first')
})

t.test('an Indexed Job: each pod sees its JOB_COMPLETION_INDEX and hostname', async (t) => {
  await c.kubectl(['apply', '-f', '-'], { stdin: jobYaml('indexed', { completions: 3, parallelism: 3, completionMode: 'Indexed' }, 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"') })
  const j = await finishedJob('indexed', 'Complete')
  t.equal(j.status.completedIndexes, '0-2')
  t.equal(j.status.succeeded, 3)
  const list = await jobPods('indexed')
  const seen: string[] = []
  for (const p of list) {
    const ix = p.metadata.annotations!['batch.kubernetes.io/job-completion-index']
    t.equal(p.metadata.labels!['batch.kubernetes.io/job-completion-index'], ix)
    t.match(p.metadata.name, new RegExp(`^indexed-${ix}-`))
    const log = await c.kubectl(['logs', p.metadata.name!])
    t.equal(log.stdout.trim(), `index=${ix} host=indexed-${ix}`)
    seen.push(ix)
  }
  t.same(seen.sort(), ['0', '1', '2'])
})

t.test('ttlSecondsAfterFinished: the finished Job and its pods are deleted', async (t) => {
  await c.kubectl(['apply', '-f', '-'], { stdin: jobYaml('short-lived', { ttlSecondsAfterFinished: 1 }, 'echo bye') })
  await eventually(async () => {
    const gone = await c.client.get(jobs, ns, 'short-lived').then(() => false, (e) => e.status === 404)
    return gone && (await jobPods('short-lived')).length === 0
  }, { ...slow, what: 'job short-lived and its pod deleted' })
  t.pass('deleted')
})

t.test('kubectl delete job: its running pod loses the job-tracking finalizer and goes', async (t) => {
  await c.kubectl(['apply', '-f', '-'], { stdin: jobYaml('doomed', {}, 'sleep 60') })
  await eventually(async () => (await jobPods('doomed')).some((p) => p.status?.phase === 'Running'), { ...slow, what: 'doomed pod running' })
  const [before] = await jobPods('doomed')
  t.ok(before!.metadata.finalizers?.includes('batch.kubernetes.io/job-tracking'), 'a running pod holds the finalizer')
  await c.kubectl(['delete', 'job', 'doomed'])
  await eventually(async () => (await jobPods('doomed')).length === 0, { ...slow, what: 'pods of the deleted job gone' })
  t.pass('pods gone')
})

t.test('kubectl create job, create cronjob, create job --from=cronjob', async (t) => {
  await c.kubectl(['create', 'job', 'hello', `--image=${image}`, '--', 'sh', '-c', 'echo hello'])
  await finishedJob('hello', 'Complete')
  t.equal((await c.kubectl(['logs', 'job/hello'])).stdout.trim(), 'hello', 'kubectl logs job/NAME finds the pod by the selector')
  const described = await c.kubectl(['describe', 'job', 'hello'])
  t.match(described.stdout, /Pods Statuses:\s+0 Active \(0 Ready\) \/ 1 Succeeded \/ 0 Failed/)
  const hello = await c.client.get(jobs, ns, 'hello')
  t.equal(hello.spec.selector.matchLabels['batch.kubernetes.io/controller-uid'], hello.metadata.uid)
  t.equal(hello.spec.backoffLimit, 6)
  t.equal(hello.spec.completionMode, 'NonIndexed')
  // A schedule far away on the test's fast clock: this CronJob only serves as a template.
  await c.kubectl(['create', 'cronjob', 'yearly', `--image=${image}`, '--schedule=0 0 1 1 *', '--', 'sh', '-c', 'echo from-cron'])
  const cj = await c.client.get(cronjobs, ns, 'yearly')
  t.match(cj.spec, { concurrencyPolicy: 'Allow', suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1 })
  const get = await c.kubectl(['get', 'cj'])
  t.match(get.stdout, /NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE/)
  t.match(get.stdout, /yearly\s+0 0 1 1 \*\s+<none>\s+False\s+0\s+<none>/)
  await c.kubectl(['create', 'job', 'manual', '--from=cronjob/yearly'])
  const manual = await finishedJob('manual', 'Complete')
  t.equal(manual.metadata.annotations!['cronjob.kubernetes.io/instantiate'], 'manual')
  t.equal(manual.metadata.ownerReferences?.[0]?.uid, cj.metadata.uid)
  const [pod] = await jobPods('manual')
  t.equal((await c.kubectl(['logs', pod!.metadata.name!])).stdout.trim(), 'from-cron')
  const bad = await c.kubectl(['create', 'cronjob', 'bad', `--image=${image}`, '--schedule=61 * * * *'], { allowFail: true })
  t.not(bad.code, 0)
  t.match(bad.stderr, /spec\.schedule: Invalid value: "61 \* \* \* \*"/)
  const all = await c.kubectl(['get', 'all'])
  t.match(all.stdout, /job\.batch\/hello/)
  t.match(all.stdout, /cronjob\.batch\/yearly/)
})

t.test('a CronJob every minute makes Jobs and keeps successfulJobsHistoryLimit 2', async (t) => {
  const made = new Set<string>()
  const inf = new Informer({ client: c.client, info: jobs, logger: silentLogger(), namespace: ns })
  const note = (j: KubeObject) => {
    if (j.metadata.ownerReferences?.[0]?.name === 'tick') made.add(j.metadata.name!)
  }
  inf.addHandlers({ onAdd: note })
  await inf.start()
  t.teardown(() => inf.stop())
  await c.kubectl(['apply', '-f', '-'], {
    stdin: JSON.stringify({
      apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'tick' },
      spec: {
        schedule: '* * * * *', successfulJobsHistoryLimit: 2,
        jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', terminationGracePeriodSeconds: 1, containers: [{ name: 'tick', image, command: ['sh', '-c', 'echo tick'] }] } } } },
      },
    }),
  })
  await eventually(() => made.size >= 4, { ...slow, what: `four scheduled Jobs (saw ${made.size})` })
  await c.kubectl(['patch', 'cronjob', 'tick', '--type=merge', '-p', '{"spec":{"suspend":true}}'])
  const left = await eventually(async () => {
    const own = (await c.client.list(jobs, ns)).items.filter((j) => j.metadata.ownerReferences?.[0]?.name === 'tick')
    const cj = await c.client.get(cronjobs, ns, 'tick')
    return own.length === 2 && own.every((j) => cond(j, 'Complete')) && !(cj.status?.active ?? []).length ? own : undefined
  }, { ...slow, what: 'two finished Jobs left, none active' })
  for (const j of made) t.match(j, /^tick-\d{8}$/, 'named <cronjob>-<minutes since epoch>')
  const minutes = [...made].map((n) => Number(n.slice(5))).sort((a, b) => a - b)
  t.equal(new Set(minutes).size, minutes.length, 'one Job per scheduled minute')
  for (const j of left) {
    const ts = j.metadata.annotations!['batch.kubernetes.io/cronjob-scheduled-timestamp']
    t.equal(Date.parse(ts) / 60_000, Number(j.metadata.name!.slice(5)), 'scheduled-timestamp annotation matches the name')
  }
  t.same(left.map((j) => j.metadata.name).sort(), [...made].sort().slice(-2), 'the newest two are kept')
  const cj = await c.client.get(cronjobs, ns, 'tick')
  t.ok(cj.status.lastScheduleTime, 'lastScheduleTime')
  t.ok(cj.status.lastSuccessfulTime, 'lastSuccessfulTime')
  const get = await c.kubectl(['get', 'cronjob', 'tick'])
  t.match(get.stdout, /tick\s+\* \* \* \* \*\s+<none>\s+True\s+0\s+\S+/)
})
