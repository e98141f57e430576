// The HPA's arithmetic (controllers/hpa-replicas.ts): Kubernetes' replica
// calculator cases (pkg/controller/podautoscaler/replica_calculator_test.go),
// stabilization windows and rate policies.

import t from 'tap'
import { defaultScaleDown, defaultScaleUp } from '../../controlplane/api/autoscaling.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { limitByRate, resourceReplicas, scaleDownLimit, scaleUpLimit, stabilize, type PodMetric } from '../../controlplane/controllers/hpa-replicas.ts'
import { mergeConditions, windowMs } from '../../controlplane/controllers/hpa.ts'

const now = Date.parse('2026-01-01T00:10:00Z')
const iso = (ms: number) => new Date(ms).toISOString()

function pod(name: string, o: { request?: string; phase?: string; ready?: boolean; deleting?: boolean } = {}): KubeObject {
  const start = now - 10 * 60_000 // long past the CPU initialization period
  return {
    metadata: { name, namespace: 'ns', ...(o.deleting ? { deletionTimestamp: iso(now) } : {}) },
    spec: { containers: [{ name: 'c', resources: { requests: { cpu: o.request ?? '1' } } }] },
    status: { phase: o.phase ?? 'Running', startTime: iso(start), conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: iso(start) }] },
  }
}

function metrics(levels: Record<string, number>): Map<string, PodMetric> {
  return new Map(Object.entries(levels).map(([k, v]) => [k, { value: v, timestampMs: now - 1_000, windowMs: 30_000 }]))
}

t.test('resourceReplicas: Kubernetes replica calculator cases', async (t) => {
  const cases: Array<{ name: string; current: number; target: number; pods: KubeObject[]; levels: Record<string, number>; replicas: number; utilization: number; raw?: number }> = [
    { name: 'scale up', current: 3, target: 30, pods: [pod('a'), pod('b'), pod('c')], levels: { a: 300, b: 500, c: 700 }, replicas: 5, utilization: 50, raw: 500 },
    { name: 'scale up with an unready pod counted as idle', current: 3, target: 30, pods: [pod('a', { ready: false }), pod('b'), pod('c')], levels: { a: 300, b: 500, c: 700 }, replicas: 4, utilization: 60, raw: 600 },
    { name: 'failed pods are ignored', current: 2, target: 30, pods: [pod('a'), pod('b'), pod('c', { phase: 'Failed' }), pod('d', { phase: 'Failed' })], levels: { a: 500, b: 700, c: 0, d: 0 }, replicas: 4, utilization: 60 },
    { name: 'deleted pods are ignored', current: 2, target: 30, pods: [pod('a'), pod('b'), pod('c', { deleting: true })], levels: { a: 500, b: 700, c: 0 }, replicas: 4, utilization: 60 },
    { name: 'scale down', current: 5, target: 50, pods: ['a', 'b', 'c', 'd', 'e'].map((n) => pod(n)), levels: { a: 100, b: 300, c: 500, d: 250, e: 250 }, replicas: 3, utilization: 28, raw: 280 },
    { name: 'within tolerance', current: 3, target: 100, pods: [pod('a', { request: '900m' }), pod('b'), pod('c', { request: '1100m' })], levels: { a: 1010, b: 1030, c: 1020 }, replicas: 3, utilization: 102 },
    { name: 'missing metrics at target: no change', current: 2, target: 100, pods: [pod('a'), pod('b')], levels: { a: 1000 }, replicas: 2, utilization: 100 },
    { name: 'missing metrics while scaling up count as idle', current: 2, target: 50, pods: [pod('a'), pod('b')], levels: { a: 1500 }, replicas: 3, utilization: 150 },
    { name: 'missing metrics while scaling down count as at their request', current: 3, target: 50, pods: [pod('a'), pod('b'), pod('c')], levels: { a: 100, b: 100 }, replicas: 3, utilization: 10 },
    { name: 'pending pods are unready: scaling down counts the ready ones', current: 2, target: 50, pods: [pod('a'), pod('b', { phase: 'Pending' })], levels: { a: 200 }, replicas: 1, utilization: 20 },
  ]
  for (const c of cases) {
    const got = resourceReplicas({ currentReplicas: c.current, targetUtilization: c.target, resource: 'cpu', pods: c.pods, metrics: metrics(c.levels), now })
    t.equal(got.replicas, c.replicas, `${c.name}: replicas`)
    t.equal(got.utilization, c.utilization, `${c.name}: utilization`)
    if (c.raw !== undefined) t.equal(got.rawAverage, c.raw, `${c.name}: average value`)
  }
  t.throws(() => resourceReplicas({ currentReplicas: 1, targetUtilization: 50, resource: 'cpu', pods: [], metrics: new Map(), now }), /no pods returned by selector/)
  t.throws(() => resourceReplicas({ currentReplicas: 1, targetUtilization: 50, resource: 'cpu', pods: [pod('a', { ready: false })], metrics: metrics({ a: 10 }), now }), /did not receive metrics for targeted pods/)
  const noRequest = pod('a')
  delete noRequest.spec.containers[0].resources
  t.throws(() => resourceReplicas({ currentReplicas: 1, targetUtilization: 50, resource: 'cpu', pods: [noRequest], metrics: metrics({ a: 10 }), now }), /missing request for cpu in container c of Pod a/)
})

t.test('a pod in its CPU initialization period counts once a full window follows readiness', async (t) => {
  const young = (readyAgoMs: number): KubeObject => ({ ...pod('a'), status: { phase: 'Running', startTime: iso(now - 60_000), conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: iso(now - readyAgoMs) }] } })
  const m = metrics({ a: 900, b: 100 })
  const fresh = resourceReplicas({ currentReplicas: 2, targetUtilization: 50, resource: 'cpu', pods: [young(10_000), pod('b')], metrics: m, now })
  t.equal(fresh.utilization, 10, 'a sample taken within a window of becoming ready is left out')
  const settled = resourceReplicas({ currentReplicas: 2, targetUtilization: 50, resource: 'cpu', pods: [young(50_000), pod('b')], metrics: m, now })
  t.equal(settled.utilization, 50, 'a later sample counts')
})

t.test('stabilization windows', async (t) => {
  const up = defaultScaleUp()
  const down = defaultScaleDown()
  const history = [{ replicas: 5, atMs: now - 100_000 }]
  const held = stabilize({ desired: 2, current: 5, up, down, history, now })
  t.match(held, { replicas: 5, reason: 'ScaleDownStabilized' }, 'scale-down waits for the highest recommendation of the last 300 s')
  t.equal(held.history.length, 2, 'the new recommendation is recorded')
  const short = stabilize({ desired: 2, current: 5, up, down: { ...down, stabilizationWindowSeconds: 10 }, history, now })
  t.equal(short.replicas, 2, 'with a 10 s window the old recommendation no longer holds')
  t.equal(stabilize({ desired: 8, current: 5, up, down, history: [{ replicas: 6, atMs: now - 1_000 }], now }).replicas, 8, 'scale-up is not stabilized by default')
  const slowUp = { ...up, stabilizationWindowSeconds: 60 }
  t.match(stabilize({ desired: 8, current: 5, up: slowUp, down, history: [{ replicas: 6, atMs: now - 1_000 }], now }), { replicas: 6, reason: 'ScaleUpStabilized' })
  const obsolete = stabilize({ desired: 3, current: 3, up, down, history: [{ replicas: 9, atMs: now - 400_000 }], now })
  t.same(obsolete.history, [{ replicas: 3, atMs: now }], 'a recommendation older than every window is replaced')
})

t.test('rate policies', async (t) => {
  const up = defaultScaleUp()
  const down = defaultScaleDown()
  t.equal(scaleUpLimit(1, [], up, now), 5, '+4 pods beats +100% from 1')
  t.equal(scaleUpLimit(10, [], up, now), 20, '+100% beats +4 pods from 10')
  t.equal(scaleUpLimit(5, [{ change: 4, atMs: now - 5_000 }], up, now), 5, 'changes in the period count against it')
  t.equal(scaleUpLimit(5, [{ change: 4, atMs: now - 20_000 }], up, now), 10, 'older changes do not')
  t.equal(scaleUpLimit(5, [], { ...up, selectPolicy: 'Min' }, now), 9, 'Min picks the smaller policy')
  t.equal(scaleUpLimit(5, [], { ...up, selectPolicy: 'Disabled' }, now), 5, 'Disabled never scales up')
  t.equal(scaleDownLimit(10, [], down, now), 0, '100% down at once')
  const onePerMinute = { stabilizationWindowSeconds: 0, selectPolicy: 'Max' as const, policies: [{ type: 'Pods' as const, value: 1, periodSeconds: 60 }] }
  t.equal(scaleDownLimit(4, [{ change: 1, atMs: now - 30_000 }], onePerMinute, now), 4, 'one pod a minute, already used')
  t.match(limitByRate({ desired: 20, current: 1, min: 1, max: 10, up, down, upEvents: [], downEvents: [], now }), { replicas: 5, reason: 'ScaleUpLimit' })
  t.match(limitByRate({ desired: 20, current: 8, min: 1, max: 10, up, down, upEvents: [], downEvents: [], now }), { replicas: 10, reason: 'TooManyReplicas' })
  t.match(limitByRate({ desired: 0, current: 3, min: 1, max: 10, up, down, upEvents: [], downEvents: [], now }), { replicas: 1, reason: 'TooFewReplicas' })
  t.match(limitByRate({ desired: 1, current: 4, min: 1, max: 10, up, down: onePerMinute, upEvents: [], downEvents: [], now }), { replicas: 3, reason: 'ScaleDownLimit' })
  t.match(limitByRate({ desired: 4, current: 3, min: 1, max: 10, up, down, upEvents: [], downEvents: [], now }), { replicas: 4, reason: 'DesiredWithinRange' })
})

t.test('conditions keep their transition time while unchanged; metric windows parse', async (t) => {
  const old = [{ type: 'AbleToScale', status: 'True' as const, reason: 'A', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }]
  const next = mergeConditions(old, [{ type: 'AbleToScale', status: 'True', reason: 'B', message: '' }, { type: 'ScalingActive', status: 'False', reason: 'C', message: '' }], now)
  t.equal(next[0]!.lastTransitionTime, '2026-01-01T00:00:00Z')
  t.equal(next[1]!.lastTransitionTime, '2026-01-01T00:10:00Z')
  t.equal(windowMs('15.002s'), 15_002)
  t.equal(windowMs('1m0.5s'), 60_500)
  t.equal(windowMs('500ms'), 500)
})
