import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import {
  backoffDelayMs, failuresInRow, formatIndexes, parseIndexes, planFinishedPods, planJob, type JobPlanInput,
} from '../../controlplane/controllers/job-plan.ts'
import { buildJobPod } from '../../controlplane/controllers/job.ts'
import { ttlExpiry } from '../../controlplane/controllers/ttl-after-finished.ts'

const iso = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString().replace(/\.\d+Z$/, 'Z')
const at = (s: number) => Date.parse(iso(s))
const fin = 'batch.kubernetes.io/job-tracking'

interface P {
  phase?: string
  finalizer?: boolean
  deleting?: boolean
  index?: number
  finishedAt?: number
  restarts?: number
  ready?: boolean
}

function pod(name: string, o: P = {}): KubeObject {
  const phase = o.phase ?? 'Running'
  const terminated = phase === 'Succeeded' || phase === 'Failed' ? { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, finishedAt: iso(o.finishedAt ?? 0) } } : { running: {} }
  return {
    metadata: {
      name, uid: `uid-${name}`, namespace: 'ns', creationTimestamp: iso(0),
      ...(o.finalizer === false ? {} : { finalizers: [fin] }),
      ...(o.deleting ? { deletionTimestamp: iso(o.finishedAt ?? 1) } : {}),
      ...(o.index !== undefined ? { annotations: { 'batch.kubernetes.io/job-completion-index': String(o.index) } } : {}),
    },
    spec: { nodeName: 'n' },
    status: { phase, containerStatuses: [{ name: 'c', restartCount: o.restarts ?? 0, state: terminated }], conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }] },
  }
}

function job(spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): KubeObject {
  return {
    metadata: { name: 'j', namespace: 'ns', uid: 'job-uid' },
    spec: { completions: 1, parallelism: 1, backoffLimit: 6, completionMode: 'NonIndexed', suspend: false, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } }, ...spec },
    status: { startTime: iso(0), ...status },
  }
}

function plan(j: KubeObject, pods: KubeObject[], o: Partial<JobPlanInput> = {}) {
  const finished = planFinishedPods({ job: j, pods })
  const gone = new Set(finished.removeFinalizer.map((p) => p.metadata.uid!))
  return {
    finished,
    plan: planJob({
      job: j, pods, uncounted: finished.uncounted, completedIndexes: finished.completedIndexes, finalizerGone: gone,
      now: at(100), backoffBaseMs: 10_000, backoffMaxMs: 360_000, expectationsSatisfied: true, ...o,
    }),
  }
}

const types = (p: ReturnType<typeof plan>['plan']) => (p.status.conditions ?? []).filter((c: any) => c.status === 'True').map((c: any) => c.type)

t.test('indexes: parse and format intervals', async (t) => {
  t.equal(formatIndexes([0, 1, 2, 4, 6, 7]), '0-2,4,6-7')
  t.equal(formatIndexes([]), '')
  t.same([...parseIndexes('0-2,4,9', 5)].sort(), [0, 1, 2, 4])
})

t.test('backoff: 10 s doubling, capped at 6 min; failures counted since the last success', async (t) => {
  t.same([0, 1, 2, 3, 6, 10].map((n) => backoffDelayMs(n, 10_000, 360_000)), [0, 10_000, 20_000, 40_000, 320_000, 360_000])
  t.same(failuresInRow([pod('a', { phase: 'Failed', finishedAt: 1 }), pod('b', { phase: 'Succeeded', finishedAt: 2 }), pod('c', { phase: 'Failed', finishedAt: 3 })]), { count: 1, lastAt: at(3) })
  t.same(failuresInRow([pod('a', { phase: 'Failed', finishedAt: 1 }), pod('c', { phase: 'Failed', finishedAt: 5 })]), { count: 2, lastAt: at(5) })
})

t.test('finished pods are written to uncounted before their finalizer goes, and counted once', async (t) => {
  const j = job({ completions: 3, parallelism: 2 })
  const pods = [pod('a', { phase: 'Succeeded' }), pod('b', { phase: 'Failed', finishedAt: 90 }), pod('c')]
  const step1 = planFinishedPods({ job: j, pods })
  t.same(step1.uncounted, { succeeded: ['uid-a'], failed: ['uid-b'] })
  t.ok(step1.changed)
  t.same(step1.removeFinalizer.map((p) => p.metadata.name), ['a', 'b'])
  // The same pods again with the uids already uncounted: nothing new to write.
  const again = planFinishedPods({ job: job({}, { uncountedTerminatedPods: step1.uncounted }), pods })
  t.notOk(again.changed)
  // A finalizer the cache still shows but we already removed does not count again.
  const stale = planFinishedPods({ job: j, pods, finalizerGone: new Set(['uid-a', 'uid-b']) })
  t.same(stale.uncounted, { succeeded: [], failed: [] })
  // Step 3 moves uids whose finalizer is gone into the counts.
  const p = planJob({ job: j, pods, uncounted: step1.uncounted, finalizerGone: new Set(['uid-a', 'uid-b']), now: at(100), backoffBaseMs: 10_000, backoffMaxMs: 360_000, expectationsSatisfied: true })
  t.match(p.status, { succeeded: 1, failed: 1, active: 1, uncountedTerminatedPods: {} })
  // A finalizer still held keeps the uid uncounted.
  const held = planJob({ job: j, pods, uncounted: step1.uncounted, finalizerGone: new Set(['uid-a']), now: at(100), backoffBaseMs: 10_000, backoffMaxMs: 360_000, expectationsSatisfied: true })
  t.match(held.status, { succeeded: 1, uncountedTerminatedPods: { failed: ['uid-b'] } })
  t.notOk('failed' in held.status, 'zero counts are omitted, as Kubernetes serialises them')
})

t.test('planJob: pods to create and delete', async (t) => {
  const cases: Array<{ name: string; j: KubeObject; pods: KubeObject[]; create: number; del?: string[]; o?: Partial<JobPlanInput> }> = [
    { name: 'new job: parallelism pods', j: job({ completions: 5, parallelism: 2 }), pods: [], create: 2 },
    { name: 'never more than the remaining completions', j: job({ completions: 5, parallelism: 3 }, { succeeded: 3 }), pods: [pod('x')], create: 1 },
    { name: 'parallelism lowered: the surplus goes', j: job({ completions: 5, parallelism: 1 }), pods: [pod('a', { ready: true }), pod('b')], create: 0, del: ['b'] },
    { name: 'completions unset: after a success no new pods', j: job({ completions: undefined, parallelism: 3 }, { succeeded: 1 }), pods: [pod('a')], create: 0 },
    { name: 'expectations pending: wait', j: job({ completions: 5, parallelism: 2 }), pods: [], create: 0, o: { expectationsSatisfied: false } },
    { name: 'a recent failure: wait for the backoff', j: job({ completions: 2, parallelism: 1 }, { failed: 1 }), pods: [pod('f', { phase: 'Failed', finalizer: false, finishedAt: 95 })], create: 0 },
    { name: 'backoff over: replace', j: job({ completions: 2, parallelism: 1 }, { failed: 1 }), pods: [pod('f', { phase: 'Failed', finalizer: false, finishedAt: 80 })], create: 1 },
    { name: 'suspended: running pods are deleted', j: job({ suspend: true }), pods: [pod('a')], create: 0, del: ['a'] },
  ]
  for (const c of cases) {
    const { plan: p } = plan(c.j, c.pods, c.o)
    t.same({ create: p.create, del: p.delete.map((x) => x.metadata.name) }, { create: c.create, del: c.del ?? [] }, c.name)
  }
  const waiting = plan(job({ completions: 2 }, { failed: 1 }), [pod('f', { phase: 'Failed', finalizer: false, finishedAt: 95 })]).plan
  t.equal(waiting.requeueAfterMs, 5_000, 'requeued when the 10 s backoff ends')
})

t.test('planJob: conditions', async (t) => {
  const done = plan(job({ completions: 2 }, { succeeded: 1 }), [pod('a', { phase: 'Succeeded' })]).plan
  t.same(types(done), ['SuccessCriteriaMet', 'Complete'], 'nothing running: both at once')
  t.match(done.status, { succeeded: 2, completionTime: iso(100) })
  t.match(done.newConditions.map((c) => c.reason), ['CompletionsReached', 'CompletionsReached'])

  const failing = plan(job({ completions: 3, parallelism: 2, backoffLimit: 2 }, { failed: 2 }), [pod('f', { phase: 'Failed' }), pod('r')]).plan
  t.same(types(failing), ['FailureTarget'], 'a pod still running: FailureTarget first')
  t.equal(failing.status.conditions[0].reason, 'BackoffLimitExceeded')
  t.same(failing.delete.map((p) => p.metadata.name), ['r'])
  t.ok(failing.countDeleted, 'pods of a failing Job count as failed')

  const target = job({ backoffLimit: 2 }, { failed: 3, conditions: [{ type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] })
  const failed = plan(target, []).plan
  t.same(types(failed), ['FailureTarget', 'Failed'], 'then Failed once no pod is left')
  t.notOk(failed.status.completionTime, 'a failed Job has no completionTime')

  const deadline = plan(job({ activeDeadlineSeconds: 50 }), [pod('a')]).plan
  t.equal(deadline.status.conditions[0].reason, 'DeadlineExceeded')
  const before = plan(job({ activeDeadlineSeconds: 150 }), [pod('a')]).plan
  t.same(types(before), [])
  t.equal(before.requeueAfterMs, 50_000, 'requeued at the deadline')

  const onFailure = job({ backoffLimit: 2, template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'i' }] } } })
  t.equal(plan(onFailure, [pod('a', { restarts: 2 })]).plan.status.conditions?.[0]?.reason, 'BackoffLimitExceeded', 'OnFailure: container restarts count')
  t.same(types(plan(onFailure, [pod('a', { restarts: 1 })]).plan), [])

  const suspended = plan(job({ suspend: true }), []).plan
  t.match(suspended.status.conditions, [{ type: 'Suspended', status: 'True', reason: 'JobSuspended' }])
  const resumed = plan(job({ suspend: false }, { conditions: [{ type: 'Suspended', status: 'True', reason: 'JobSuspended' }] }), []).plan
  t.match(resumed.status, { conditions: [{ type: 'Suspended', status: 'False', reason: 'JobResumed' }], startTime: iso(100) })
})

t.test('Indexed: each index once, duplicates not counted', async (t) => {
  const j = job({ completionMode: 'Indexed', completions: 4, parallelism: 2 }, { completedIndexes: '0' })
  const first = plan(j, [pod('a', { index: 1 })]).plan
  t.same(first.createIndexes, [2], 'lowest missing index without a pod')
  const dup = planFinishedPods({ job: j, pods: [pod('d', { index: 0, phase: 'Succeeded' }), pod('e', { index: 3, phase: 'Succeeded' })] })
  t.same(dup.uncounted.succeeded, ['uid-e'], 'index 0 was done already')
  t.equal(dup.completedIndexes, '0,3')
  t.same(dup.removeFinalizer.map((p) => p.metadata.name), ['d', 'e'])
  const complete = plan(job({ completionMode: 'Indexed', completions: 2, parallelism: 2 }, { completedIndexes: '1', succeeded: 1 }), [pod('z', { index: 0, phase: 'Succeeded' })]).plan
  t.same(types(complete), ['SuccessCriteriaMet', 'Complete'])
  t.equal(complete.status.completedIndexes, '0-1')
})

t.test('buildJobPod: finalizer, and for an index its annotation, label, hostname and env', async (t) => {
  const j = job({ completionMode: 'Indexed', completions: 3, template: { metadata: { labels: { a: 'b' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } })
  const p = buildJobPod(j, 2)
  t.same(p.metadata.finalizers, [fin])
  t.equal(p.metadata.generateName, 'j-2-')
  t.equal(p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'], '2')
  t.equal(p.metadata.labels?.['batch.kubernetes.io/job-completion-index'], '2')
  t.equal(p.spec.hostname, 'j-2')
  t.same(p.spec.containers[0].env, [{ name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } }])
  t.match(p.metadata.ownerReferences, [{ kind: 'Job', name: 'j', uid: 'job-uid', controller: true, blockOwnerDeletion: true }])
  t.equal(buildJobPod(job()).metadata.generateName, 'j-')
})

t.test('ttlExpiry: ttlSecondsAfterFinished after the finish', async (t) => {
  const complete = job({ ttlSecondsAfterFinished: 30 }, { completionTime: iso(10), conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: iso(10) }] })
  t.equal(ttlExpiry(complete), at(40))
  t.equal(ttlExpiry(job({ ttlSecondsAfterFinished: 30 })), undefined, 'not finished')
  t.equal(ttlExpiry(job({}, complete.status)), undefined, 'no TTL')
  t.equal(ttlExpiry(job({ ttlSecondsAfterFinished: 0 }, { conditions: [{ type: 'Failed', status: 'True', lastTransitionTime: iso(5) }] })), at(5))
})
