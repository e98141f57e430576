// pods/binding, pure: the Binding body (api/binding.ts parseBinding) and the
// pod one write makes of it (planBinding), with Kubernetes' messages.
import t, { type Test } from 'tap'
import { parseBinding, planBinding } from '../../controlplane/api/binding.ts'
import { ApiError } from '../../controlplane/api/errors.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { bindingFor } from '../../controlplane/scheduler/bind.ts'

const now = new Date('2026-06-01T12:00:00.123Z')

function pod(o: { nodeName?: string; deleting?: boolean; gates?: boolean; conditions?: unknown[]; annotations?: Record<string, string> } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '7', ...(o.annotations ? { annotations: o.annotations } : {}), ...(o.deleting ? { deletionTimestamp: '2026-06-01T11:00:00Z' } : {}) },
    spec: { containers: [{ name: 'c', image: 'i' }], ...(o.nodeName ? { nodeName: o.nodeName } : {}), ...(o.gates ? { schedulingGates: [{ name: 'g' }] } : {}) },
    status: { phase: 'Pending', ...(o.conditions ? { conditions: o.conditions } : {}) },
  }
}

const binding = (target: unknown, meta: Record<string, unknown> = { name: 'web' }) => ({ apiVersion: 'v1', kind: 'Binding', metadata: meta, target })

function apiError(t: Test, fn: () => unknown, reason: string, message: string | RegExp) {
  try {
    fn()
    t.fail('no error')
  } catch (e) {
    t.ok(e instanceof ApiError, 'an ApiError')
    t.equal((e as ApiError).reason, reason)
    t.match((e as ApiError).message, message)
  }
}

t.test('the body: target validated with field paths, name and kind checked', async (t) => {
  t.same(parseBinding(binding({ kind: 'Node', name: 'n1' }, { name: 'web', uid: 'u1', annotations: { a: 'b' } }), 'web', 'default'), {
    name: 'web', namespace: 'default', uid: 'u1', resourceVersion: undefined, annotations: { a: 'b' }, node: 'n1',
  })
  t.equal(parseBinding(binding({ name: 'n1' }), 'web', 'default').node, 'n1', 'an empty target kind is a Node')
  apiError(t, () => parseBinding(binding({ kind: 'Node' }), 'web', 'default'), 'Invalid', 'Binding "web" is invalid: target.name: Required value')
  apiError(t, () => parseBinding(binding({ kind: 'Pod', name: 'x' }), 'web', 'default'), 'Invalid', 'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"')
  apiError(t, () => parseBinding(binding({ name: 'n1' }, { name: 'other' }), 'web', 'default'), 'BadRequest', 'name in URL does not match name in Binding object')
  apiError(t, () => parseBinding({ kind: 'Eviction' }, 'web', 'default'), 'BadRequest', /must be Binding/)
  apiError(t, () => parseBinding([], 'web', 'default'), 'BadRequest', /must be a Binding/)
  const causes = (() => {
    try {
      parseBinding(binding({ kind: 'Pod' }), 'web', 'default')
    } catch (e) {
      return (e as ApiError).details?.causes
    }
  })()
  t.same(causes?.map((c) => c.field), ['target.kind', 'target.name'])
})

t.test('the write: nodeName, PodScheduled=True and annotations in one object', async (t) => {
  const b = parseBinding(binding({ kind: 'Node', name: 'n1' }, { name: 'web', annotations: { x: 'y' } }), 'web', 'default')
  const out = planBinding(pod({ annotations: { keep: '1' } }), b, now)
  t.equal(out.spec.nodeName, 'n1')
  t.same(out.metadata.annotations, { keep: '1', x: 'y' })
  t.same(out.status.conditions, [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-06-01T12:00:00Z' }])
  t.equal(out.metadata.resourceVersion, '7', 'the write is guarded by the version read')
  const unsched = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available', lastProbeTime: null, lastTransitionTime: '2026-06-01T11:00:00Z' }
  const other = { type: 'Ready', status: 'False' }
  const replaced = planBinding(pod({ conditions: [other, unsched] }), b, now)
  t.same(replaced.status.conditions, [other, { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-06-01T12:00:00Z' }], 'the False condition is replaced, reason and message cleared')
  const kept = planBinding(pod({ conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-06-01T10:00:00Z' }] }), b, now)
  t.equal(kept.status.conditions[0].lastTransitionTime, '2026-06-01T10:00:00Z', 'no transition, no new time')
})

t.test('refusals: 409 with Kubernetes messages', async (t) => {
  const b = parseBinding(binding({ name: 'n2' }), 'web', 'default')
  apiError(t, () => planBinding(pod({ nodeName: 'n1' }), b, now), 'Conflict', 'Operation cannot be fulfilled on pods/binding "web": pod web is already assigned to node "n1"')
  apiError(t, () => planBinding(pod({ deleting: true }), b, now), 'Conflict', 'pod web is being deleted, cannot be assigned to a host')
  apiError(t, () => planBinding(pod({ gates: true }), b, now), 'Conflict', 'pod web has non-empty .spec.schedulingGates')
  apiError(t, () => planBinding(pod(), { ...b, uid: 'u0' }, now), 'Conflict', 'Precondition failed: UID in precondition: u0, UID in object meta: u1')
  apiError(t, () => planBinding(pod(), { ...b, resourceVersion: '6' }, now), 'Conflict', 'Precondition failed: ResourceVersion in precondition: 6, ResourceVersion in object meta: 7')
  t.equal(planBinding(pod(), { ...b, uid: 'u1', resourceVersion: '7' }, now).spec.nodeName, 'n2', 'matching preconditions bind')
})

t.test("the scheduler's Binding: name, namespace and UID of the pod, the node as target", async (t) => {
  t.same(bindingFor(pod(), 'n1'), { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'web', namespace: 'default', uid: 'u1' }, target: { kind: 'Node', name: 'n1' } })
})
