// PodDisruptionBudgets: the status arithmetic of the disruption controller
// (controllers/disruption-plan.ts) and the eviction decision (api/disruption.ts).
import t from 'tap'
import { planEviction, pdbSelects, scaledValue } from '../../controlplane/api/disruption.ts'
import type { KubeObject, OwnerReference } from '../../controlplane/api/types.ts'
import { deletionTimeoutMs, planDisruptionStatus, type ScaleLookup } from '../../controlplane/controllers/disruption-plan.ts'
import { parseEviction } from '../../controlplane/apiserver/eviction.ts'
import { validate } from '../../controlplane/api/validation.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { printTable } from '../../controlplane/api/printers.ts'

const now = Date.parse('2026-06-01T12:00:00Z')
const rsRef: OwnerReference = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'rs-1', controller: true }

function pod(name: string, o: { ready?: boolean; owner?: OwnerReference | null; deleting?: boolean; phase?: string; labels?: Record<string, string> } = {}): KubeObject {
  return {
    metadata: {
      name, namespace: 'default', uid: `u-${name}`, resourceVersion: '5', labels: o.labels ?? { app: 'web' },
      ...(o.owner === null ? {} : { ownerReferences: [o.owner ?? rsRef] }),
      ...(o.deleting ? { deletionTimestamp: '2026-06-01T11:59:00Z' } : {}),
    },
    spec: { nodeName: 'n1' },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  }
}

function pdb(spec: Record<string, unknown>, status: Record<string, unknown> = {}, generation = 1): KubeObject {
  return { metadata: { name: 'web', namespace: 'default', generation, resourceVersion: '9' }, spec: { selector: { matchLabels: { app: 'web' } }, ...spec }, status }
}

const scale3: ScaleLookup = (_ns, ref) => (ref.uid === 'rs-1' ? { uid: 'deploy-1', replicas: 3 } : undefined)
const three = [pod('a'), pod('b'), pod('c')]

t.test('scaledValue: integers as given, percentages rounded up or down', async (t) => {
  t.equal(scaledValue(2, 10, true), 2)
  t.equal(scaledValue('50%', 3, true), 2)
  t.equal(scaledValue('50%', 3, false), 1)
  t.equal(scaledValue('100%', 7, true), 7)
  t.throws(() => scaledValue('half', 3, true), /invalid value/)
})

const statusCases: Array<{ name: string; pdb: KubeObject; pods: KubeObject[]; scale?: ScaleLookup; want: Record<string, unknown> }> = [
  { name: 'minAvailable 2 over 3 ready pods: 1 disruption allowed', pdb: pdb({ minAvailable: 2 }), pods: three, want: { expectedPods: 3, desiredHealthy: 2, currentHealthy: 3, disruptionsAllowed: 1, reason: 'SufficientPods' } },
  { name: 'minAvailable 2 with one pod not ready: none allowed', pdb: pdb({ minAvailable: 2 }), pods: [pod('a'), pod('b'), pod('c', { ready: false })], want: { expectedPods: 3, desiredHealthy: 2, currentHealthy: 2, disruptionsAllowed: 0, reason: 'InsufficientPods' } },
  { name: 'minAvailable 50% counts on the owner scale, rounded up', pdb: pdb({ minAvailable: '50%' }), pods: three, want: { expectedPods: 3, desiredHealthy: 2, currentHealthy: 3, disruptionsAllowed: 1 } },
  { name: 'maxUnavailable 1 over a scale of 3', pdb: pdb({ maxUnavailable: 1 }), pods: three, want: { expectedPods: 3, desiredHealthy: 2, disruptionsAllowed: 1 } },
  { name: 'maxUnavailable 34% rounds up to 2 unavailable', pdb: pdb({ maxUnavailable: '34%' }), pods: three, want: { expectedPods: 3, desiredHealthy: 1, disruptionsAllowed: 2 } },
  { name: 'maxUnavailable with a scale above the pods present (a pod missing)', pdb: pdb({ maxUnavailable: 1 }), pods: [pod('a'), pod('b')], want: { expectedPods: 3, desiredHealthy: 2, currentHealthy: 2, disruptionsAllowed: 0 } },
  { name: 'a terminating pod is not healthy', pdb: pdb({ minAvailable: 2 }), pods: [pod('a'), pod('b'), pod('c', { deleting: true })], want: { currentHealthy: 2, disruptionsAllowed: 0 } },
  { name: 'a pod in disruptedPods is not healthy', pdb: pdb({ minAvailable: 1 }, { disruptedPods: { a: '2026-06-01T11:59:30Z' } }), pods: three, want: { currentHealthy: 2, disruptionsAllowed: 1, disruptedPods: { a: '2026-06-01T11:59:30Z' } } },
  { name: 'an expired disruptedPods entry is dropped', pdb: pdb({ minAvailable: 1 }, { disruptedPods: { a: new Date(now - deletionTimeoutMs - 1000).toISOString() } }), pods: three, want: { currentHealthy: 3, disruptionsAllowed: 2, disruptedPods: undefined } },
  { name: 'no pods: nothing expected, nothing allowed', pdb: pdb({ minAvailable: 0 }), pods: [], want: { expectedPods: 0, disruptionsAllowed: 0 } },
  { name: 'a pod without a controller is not counted with a percentage', pdb: pdb({ maxUnavailable: '50%' }), pods: [...three, pod('solo', { owner: null })], want: { expectedPods: 3, currentHealthy: 4 } },
  { name: 'a controller without a scale fails the sync: SyncFailed, nothing allowed', pdb: pdb({ maxUnavailable: 1 }, { disruptionsAllowed: 1 }), pods: three, scale: () => undefined, want: { disruptionsAllowed: 0, reason: 'SyncFailed' } },
  { name: 'pods of other selectors are ignored', pdb: pdb({ minAvailable: 1 }), pods: [pod('a'), pod('x', { labels: { app: 'other' } })], want: { expectedPods: 1, currentHealthy: 1, disruptionsAllowed: 0 } },
]

for (const c of statusCases) {
  t.test(`status: ${c.name}`, async (t) => {
    const plan = planDisruptionStatus({ pdb: c.pdb, pods: c.pods, scaleOf: c.scale ?? scale3, now })
    const st = plan.status!
    t.ok(st, 'a status to write')
    const cond = st.conditions.find((x: any) => x.type === 'DisruptionAllowed')
    for (const [k, v] of Object.entries(c.want)) {
      if (k === 'reason') t.equal(cond.reason, v, 'condition reason')
      else t.same(st[k], v, k)
    }
    if (cond.reason !== 'SyncFailed') t.equal(st.observedGeneration, 1, 'observedGeneration')
    t.equal(cond.status, st.disruptionsAllowed > 0 ? 'True' : 'False')
  })
}

t.test('status: an up-to-date status is not written again', async (t) => {
  const first = planDisruptionStatus({ pdb: pdb({ minAvailable: 2 }), pods: three, scaleOf: scale3, now }).status!
  const again = planDisruptionStatus({ pdb: pdb({ minAvailable: 2 }, first), pods: three, scaleOf: scale3, now: now + 5000 })
  t.equal(again.status, undefined)
})

t.test('pdbSelects: a missing selector selects nothing, an empty one the whole namespace', async (t) => {
  t.notOk(pdbSelects({ metadata: { namespace: 'default' }, spec: {} }, pod('a')))
  t.ok(pdbSelects({ metadata: { namespace: 'default' }, spec: { selector: {} } }, pod('a')))
  t.notOk(pdbSelects({ metadata: { namespace: 'other' }, spec: { selector: {} } }, pod('a')))
})

const ready = (allowed: number, extra: Record<string, unknown> = {}) => pdb({ minAvailable: 2 }, { observedGeneration: 1, disruptionsAllowed: allowed, currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, ...extra })

t.test('eviction decisions', async (t) => {
  const allowed = planEviction(pod('a'), [ready(1)], now)
  t.equal(allowed.action, 'decrement')
  if (allowed.action === 'decrement') {
    t.equal(allowed.status.disruptionsAllowed, 0, 'one disruption spent')
    t.ok(allowed.status.disruptedPods.a, 'the pod is recorded in disruptedPods')
    t.equal(allowed.status.conditions.find((c: any) => c.type === 'DisruptionAllowed').reason, 'InsufficientPods', 'the last one spent flips the condition')
  }
  const denied = planEviction(pod('a'), [ready(0)], now)
  t.equal(denied.action, 'reject')
  if (denied.action === 'reject') {
    t.equal(denied.error.status, 429)
    t.equal(denied.error.reason, 'TooManyRequests')
    t.equal(denied.error.message, "Cannot evict pod as it would violate the pod's disruption budget.")
    t.same(denied.error.details, { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 3 currently' }] }, 'no retryAfterSeconds: the client decides when to try again')
  }
  const stale = planEviction(pod('a'), [{ ...ready(1), metadata: { ...ready(1).metadata, generation: 2 } }], now)
  t.match(stale, { action: 'reject', error: { status: 429, details: { retryAfterSeconds: 10, causes: [{ message: /still being processed/ }] } } })
  const two = planEviction(pod('a'), [ready(1), { ...ready(1), metadata: { name: 'web2', namespace: 'default', generation: 1 } }], now)
  t.match(two, { action: 'reject', error: { status: 500, message: /more than one PodDisruptionBudget/ } })
  t.same(planEviction(pod('a'), [], now), { action: 'delete', pinned: false }, 'no budget: plain delete')
  t.same(planEviction(pod('p', { phase: 'Pending' }), [ready(0)], now), { action: 'delete', pinned: false }, 'pending pods ignore the budget')
  t.same(planEviction(pod('d', { deleting: true }), [ready(0)], now), { action: 'delete', pinned: false }, 'terminating pods ignore the budget')
  // Unhealthy pods.
  t.same(planEviction(pod('u', { ready: false }), [ready(0)], now), { action: 'delete', pinned: true }, 'IfHealthyBudget: the budget is met, the unready pod goes without spending')
  const short = pdb({ minAvailable: 2 }, { observedGeneration: 1, disruptionsAllowed: 0, currentHealthy: 1, desiredHealthy: 2, expectedPods: 3 })
  t.equal(planEviction(pod('u', { ready: false }), [short], now).action, 'reject', 'IfHealthyBudget: budget not met, unready pod stays')
  const always = { ...short, spec: { ...short.spec, unhealthyPodEvictionPolicy: 'AlwaysAllow' } }
  t.same(planEviction(pod('u', { ready: false }), [always], now), { action: 'delete', pinned: true }, 'AlwaysAllow: unready pods always go')
  t.equal(planEviction(pod('r'), [always], now).action, 'reject', 'AlwaysAllow does not help ready pods')
  const dry = planEviction(pod('a'), [ready(1)], now, true)
  t.ok(dry.action === 'decrement' && !dry.status.disruptedPods, 'a dry run records no disrupted pod')
})

t.test('Eviction bodies: policy/v1 and v1beta1, the pod of the URL', async (t) => {
  t.same(parseEviction({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'a' }, deleteOptions: { gracePeriodSeconds: 5 } }, 'a'), { deleteOptions: { gracePeriodSeconds: 5 } })
  t.same(parseEviction({ apiVersion: 'policy/v1beta1', kind: 'Eviction', metadata: { name: 'a' } }, 'a'), { deleteOptions: {} })
  t.throws(() => parseEviction({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'b' } }, 'a'), /name in URL does not match/)
  t.throws(() => parseEviction({ apiVersion: 'v1', kind: 'Pod' }, 'a'), /Eviction/)
})

t.test('validation: one of minAvailable/maxUnavailable, int or percent, with field paths', async (t) => {
  const info = lookupResource('policy', 'v1', 'poddisruptionbudgets')!
  const check = (spec: Record<string, unknown>) => validate(info, { metadata: { name: 'p', namespace: 'default' }, spec: { selector: { matchLabels: { a: 'b' } }, ...spec } }).map((c) => `${c.field}: ${c.message}`)
  t.same(check({ minAvailable: 1 }), [])
  t.same(check({ maxUnavailable: '20%' }), [])
  t.same(check({}), [], 'neither is valid, as in Kubernetes')
  t.match(check({ minAvailable: 1, maxUnavailable: 1 }), [/^spec: .*minAvailable and maxUnavailable cannot be both set/])
  t.match(check({ minAvailable: -1 }), [/^spec.minAvailable: .*must be greater than or equal to 0/])
  t.match(check({ maxUnavailable: '120%' }), [/^spec.maxUnavailable: .*must not be greater than 100%/])
  t.match(check({ maxUnavailable: 'x' }), [/^spec.maxUnavailable: .*a valid percent string/])
  t.match(check({ unhealthyPodEvictionPolicy: 'Sometimes' }), [/^spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes"/])
})

t.test('printer: NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE', async (t) => {
  const info = lookupResource('policy', 'v1', 'poddisruptionbudgets')!
  const table = printTable(info, [{ ...pdb({ minAvailable: 2 }, { disruptionsAllowed: 1 }), metadata: { name: 'web', creationTimestamp: '2026-06-01T11:55:00Z' } }], { includeObject: 'None', now: new Date(now), resourceVersion: '1' }) as any
  t.same(table.columnDefinitions.map((c: any) => c.name), ['Name', 'Min Available', 'Max Unavailable', 'Allowed Disruptions', 'Age'])
  t.same(table.rows[0].cells, ['web', '2', 'N/A', 1, '5m'])
})

t.test('protobuf Eviction bodies decode, policy/v1 and policy/v1beta1', async (t) => {
  const { default: protobuf } = await import('protobufjs/minimal.js')
  const { decodeProtobufObject } = await import('../../controlplane/api/protobuf.ts')
  for (const apiVersion of ['policy/v1', 'policy/v1beta1']) {
    const meta = protobuf.Writer.create().uint32(10).string('web-1').uint32(26).string('default').finish()
    const opts = protobuf.Writer.create().uint32(8).int64(5).finish()
    const raw = protobuf.Writer.create().uint32(10).bytes(meta).uint32(18).bytes(opts).finish()
    const typeMeta = protobuf.Writer.create().uint32(10).string(apiVersion).uint32(18).string('Eviction').finish()
    const unknown = protobuf.Writer.create().uint32(10).bytes(typeMeta).uint32(18).bytes(raw).finish()
    const body = Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.from(unknown)])
    t.match(decodeProtobufObject(body), { apiVersion, kind: 'Eviction', metadata: { name: 'web-1', namespace: 'default' }, deleteOptions: { gracePeriodSeconds: 5 } }, apiVersion)
  }
})

t.test('discovery lists pods/eviction (policy/v1 Eviction, create) and poddisruptionbudgets', async (t) => {
  const { apiResourceList, aggregatedDiscovery } = await import('../../controlplane/apiserver/discovery.ts')
  const core = apiResourceList('v1') as any
  t.match(core.resources.find((r: any) => r.name === 'pods/eviction'), { kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'], namespaced: true })
  const agg = aggregatedDiscovery(true) as any
  const podsRes = agg.items[0].versions[0].resources.find((r: any) => r.resource === 'pods')
  t.match(podsRes.subresources.find((s: any) => s.subresource === 'eviction'), { responseKind: { group: 'policy', version: 'v1', kind: 'Eviction' }, verbs: ['create'] })
  const policy = apiResourceList('policy/v1') as any
  t.match(policy.resources, [{ name: 'poddisruptionbudgets', shortNames: ['pdb'], kind: 'PodDisruptionBudget' }, { name: 'poddisruptionbudgets/status' }])
})
