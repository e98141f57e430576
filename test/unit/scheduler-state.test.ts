// The scheduler's bookkeeping: pod requests, the cache's assume/confirm/
// forget life cycle, the per-pod backoff, which events retry parked pods,
// and the patch bodies it sends.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { bindPatch, hasCondition, podScheduledCondition } from '../../controlplane/scheduler/bind.ts'
import { SchedulerCache } from '../../controlplane/scheduler/cache.ts'
import { backoffMs, SchedulingQueue } from '../../controlplane/scheduler/queue.ts'
import { podHostPorts, podNonZeroRequests, podRequests } from '../../controlplane/scheduler/resources.ts'
import { isPendingFor, nodeSchedulingChanged, podSpecChanged } from '../../controlplane/scheduler/triggers.ts'
import { makeNode, makePod } from '../../controlplane/scheduler/testing.ts'
import { Scheduler } from '../../controlplane/scheduler/scheduler.ts'
import { silentLogger } from '../../lib/log.ts'

const Mi = 2 ** 20

t.test('podRequests: containers add up, init containers take the max, sidecars add, overhead adds', async (t) => {
  const c = (cpu: string, memory: string, extra: object = {}) => ({ name: 'c', image: 'x', resources: { requests: { cpu, memory } }, ...extra })
  const cases: Array<{ name: string; spec: object; want: { milliCPU: number; memory: number } }> = [
    { name: 'nothing requested', spec: { containers: [{ name: 'a', image: 'x' }] }, want: { milliCPU: 0, memory: 0 } },
    { name: 'two containers', spec: { containers: [c('100m', '64Mi'), c('0.25', '128Mi')] }, want: { milliCPU: 350, memory: 192 * Mi } },
    { name: 'a big init container wins', spec: { containers: [c('100m', '64Mi')], initContainers: [c('1', '32Mi')] }, want: { milliCPU: 1000, memory: 64 * Mi } },
    { name: 'a sidecar adds to the containers', spec: { containers: [c('100m', '64Mi')], initContainers: [c('200m', '64Mi', { restartPolicy: 'Always' })] }, want: { milliCPU: 300, memory: 128 * Mi } },
    { name: 'overhead', spec: { containers: [c('100m', '64Mi')], overhead: { cpu: '10m', memory: '1Mi' } }, want: { milliCPU: 110, memory: 65 * Mi } },
    { name: 'decimal units', spec: { containers: [c('1.5', '1G')] }, want: { milliCPU: 1500, memory: 1e9 } },
  ]
  for (const k of cases) {
    const r = podRequests({ metadata: { name: 'p' }, spec: k.spec })
    t.same({ milliCPU: r.milliCPU, memory: r.memory }, k.want, k.name)
  }
  const nz = podNonZeroRequests(makePod('p'))
  t.same({ milliCPU: nz.milliCPU, memory: nz.memory }, { milliCPU: 100, memory: 200 * Mi }, 'non-zero defaults for scoring')
  t.same(podHostPorts(makePod('p', { hostPorts: [{ port: 80 }, { port: 53, protocol: 'UDP', hostIP: '10.0.0.1' }] })), [
    { hostIP: '0.0.0.0', protocol: 'TCP', port: 80 },
    { hostIP: '10.0.0.1', protocol: 'UDP', port: 53 },
  ])
})

const key = (p: KubeObject) => `${p.metadata.namespace}/${p.metadata.name}`
const cpuOf = (cache: SchedulerCache, node: string) => cache.nodeInfo(node)?.requested.milliCPU

t.test('cache: assume, confirm through the informer, forget', async (t) => {
  const cache = new SchedulerCache()
  cache.upsertNode(makeNode('n1'))
  cache.upsertNode(makeNode('n2'))
  const pod = makePod('p', { cpu: '500m' })
  cache.upsertPod(pod)
  t.equal(cpuOf(cache, 'n1'), 0, 'an unbound pod counts nowhere')
  cache.assume(pod, 'n1')
  t.equal(cpuOf(cache, 'n1'), 500, 'assumed pods count at once')
  t.ok(cache.isAssumed(key(pod)))
  cache.upsertPod(pod)
  t.equal(cpuOf(cache, 'n1'), 500, 'an informer event still showing the pod unbound keeps the assumption')
  t.notOk(pod.spec.nodeName, 'the informer object is never mutated')
  cache.upsertPod({ ...pod, spec: { ...pod.spec, nodeName: 'n1' } })
  t.notOk(cache.isAssumed(key(pod)), 'the informer confirms the bind')
  t.equal(cpuOf(cache, 'n1'), 500, 'counted once')
  t.notOk(cache.forget(key(pod)), 'a confirmed pod is not forgotten')
  t.equal(cpuOf(cache, 'n1'), 500)

  const other = makePod('q', { cpu: '1' })
  cache.assume(other, 'n2')
  t.ok(cache.forget(key(other)), 'a failed bind is forgotten')
  t.equal(cpuOf(cache, 'n2'), 0)

  const moved = makePod('r', { cpu: '1' })
  cache.assume(moved, 'n1')
  cache.upsertPod({ ...moved, spec: { ...moved.spec, nodeName: 'n2' } })
  t.same([cpuOf(cache, 'n1'), cpuOf(cache, 'n2')], [500, 1000], 'bound elsewhere by someone else: counted where it really is')

  cache.upsertPod({ ...moved, spec: { ...moved.spec, nodeName: 'n2' }, status: { phase: 'Succeeded' } })
  t.equal(cpuOf(cache, 'n2'), 0, 'a finished pod frees its node')
  cache.removePod(key(pod))
  t.equal(cpuOf(cache, 'n1'), 0, 'a deleted pod frees its node')
})

t.test('cache: nodes come and go; their pods stay counted until deleted', async (t) => {
  const cache = new SchedulerCache()
  cache.upsertNode(makeNode('b'))
  cache.upsertNode(makeNode('a'))
  t.same(cache.nodeInfos().map((n) => n.name), ['a', 'b'], 'sorted by name')
  cache.upsertPod(makePod('p', { nodeName: 'b', cpu: '1' }))
  cache.removeNode('b')
  t.same(cache.nodeInfos().map((n) => n.name), ['a'])
  cache.upsertNode(makeNode('b'))
  t.equal(cpuOf(cache, 'b'), 1000, 'the node came back with its pod')
  cache.upsertNode(makeNode('b', { cpu: '8' }))
  t.equal(cache.nodeInfo('b')?.allocatable.milliCPU, 8000, 'an update replaces allocatable')
  t.equal(cache.nodeInfo('b')?.pods.size, 1, 'and keeps the pods')
})

t.test('backoff doubles from the initial delay up to the cap', async (t) => {
  const o = { initialMs: 1000, maxMs: 10_000 }
  t.same([0, 1, 2, 3, 4, 5, 100].map((n) => backoffMs(n, o)), [0, 1000, 2000, 4000, 8000, 10_000, 10_000])
})

t.test('queue: parked pods wait for a change, and then for their backoff', async (t) => {
  let now = 0
  const q = new SchedulingQueue({ logger: silentLogger(), backoff: { initialMs: 1000, maxMs: 10_000 }, now: () => now })
  t.teardown(() => q.stop())
  q.activate('ns/a')
  t.same(q.counts, { active: 1, backoff: 0, unschedulable: 0 }, 'a new pod is active at once')
  q.markUnschedulable('ns/b')
  t.same(q.counts, { active: 1, backoff: 0, unschedulable: 1 })
  q.moveAllToActive()
  t.same(q.counts, { active: 1, backoff: 1, unschedulable: 0 }, 'a change moves it, but its 1 s backoff still holds')
  now = 5000
  q.markUnschedulable('ns/c')
  q.markUnschedulable('ns/c')
  now = 7500
  q.moveAllToActive()
  t.same(q.counts, { active: 2, backoff: 1, unschedulable: 0 }, 'after two attempts 2 s have passed: active again')
  t.equal(q.attempts('ns/c'), 2)
  q.forget('ns/b')
  t.same(q.counts, { active: 2, backoff: 0, unschedulable: 0 }, 'a bound or deleted pod leaves its timer')
})

t.test('which pods are ours, and which changes retry parked pods', async (t) => {
  const pending: Array<[string, KubeObject, boolean]> = [
    ['schedulerName default-scheduler', makePod('p', { schedulerName: 'default-scheduler' }), true],
    ['schedulerName unset', makePod('p'), true],
    ['another scheduler', makePod('p', { schedulerName: 'other' }), false],
    ['bound', makePod('p', { nodeName: 'n1' }), false],
    ['terminating', makePod('p', { terminating: true }), false],
    ['finished', makePod('p', { phase: 'Failed' }), false],
    ['gated', { ...makePod('p'), spec: { ...makePod('p').spec, schedulingGates: [{ name: 'wait' }] } }, false],
  ]
  for (const [name, pod, want] of pending) t.equal(isPendingFor(pod, 'default-scheduler'), want, name)

  const base = makeNode('n1')
  const later = structuredClone(base)
  later.status.conditions[0].lastHeartbeatTime = '2030-01-01T00:00:00Z'
  t.notOk(nodeSchedulingChanged(base, later), 'a heartbeat changes nothing')
  t.ok(nodeSchedulingChanged(base, makeNode('n1', { labels: { disk: 'ssd' } })), 'labels')
  t.ok(nodeSchedulingChanged(base, makeNode('n1', { cpu: '4' })), 'allocatable')
  t.ok(nodeSchedulingChanged(base, makeNode('n1', { ready: 'False' })), 'readiness')
  t.ok(nodeSchedulingChanged(base, makeNode('n1', { unschedulable: true })), 'cordon')
  t.ok(nodeSchedulingChanged(base, makeNode('n1', { taints: [{ key: 'k', effect: 'NoSchedule' }] })), 'taints')

  const p1 = { ...makePod('p'), metadata: { ...makePod('p').metadata, generation: 1 } }
  t.notOk(podSpecChanged(p1, { ...p1, status: { phase: 'Pending', conditions: [] } }), 'a status write is not a change')
  t.ok(podSpecChanged(p1, { ...p1, metadata: { ...p1.metadata, generation: 2 } }), 'a new generation is')
})

t.test('patch bodies', async (t) => {
  t.same(bindPatch('42', 'n1'), { metadata: { resourceVersion: '42' }, spec: { nodeName: 'n1' } })
  const at = new Date('2026-02-03T04:05:06.789Z')
  const msg = '0/3 nodes are available: 3 Insufficient cpu.'
  t.same(podScheduledCondition('False', at, msg), {
    type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: msg, lastProbeTime: null, lastTransitionTime: '2026-02-03T04:05:06Z',
  })
  t.same(podScheduledCondition('True', at), { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-02-03T04:05:06Z' })
  const pod = { ...makePod('p'), status: { phase: 'Pending', conditions: [podScheduledCondition('False', at, msg)] } }
  t.ok(hasCondition(pod, { status: 'False', reason: 'Unschedulable', message: msg }), 'same condition: nothing to write')
  t.notOk(hasCondition(pod, { status: 'False', reason: 'Unschedulable', message: 'other' }), 'a new message is written')
})

t.test('options are checked at construction', async (t) => {
  t.equal(new Scheduler().options.profile, 'default')
  t.equal(new Scheduler({ profile: 'bin-packing' }).options.profile, 'bin-packing')
  t.throws(() => new Scheduler({ profile: 'fastest' as never }), { code: 'SKIFF_ERR_SCHEDULER_UNKNOWN_PROFILE' })
  t.throws(() => new Scheduler({ percentageOfNodesToScore: 120 }), { code: 'SKIFF_ERR_SCHEDULER_INVALID_OPTION' })
  t.throws(() => new Scheduler({ retryIntervalMs: 0 }), { code: 'SKIFF_ERR_SCHEDULER_INVALID_OPTION' })
})
