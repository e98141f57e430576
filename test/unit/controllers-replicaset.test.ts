import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { computeReplicaSetStatus, planReplicaSetPods } from '../../controlplane/controllers/replicaset.ts'

const iso = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString().replace(/\.\d+Z$/, 'Z')
const at = (s: number) => Date.parse(iso(s))

interface P {
  node?: string
  phase?: string
  ready?: boolean
  readyAt?: number
  deleting?: boolean
  labels?: Record<string, string>
}

function pod(name: string, o: P = {}): KubeObject {
  return {
    metadata: { name, namespace: 'ns', creationTimestamp: iso(0), labels: o.labels ?? { app: 'web' }, ...(o.deleting ? { deletionTimestamp: iso(1) } : {}) },
    spec: { nodeName: o.node },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: iso(o.readyAt ?? 0) }] },
  }
}

t.test('planReplicaSetPods', async (t) => {
  const cases: Array<{ name: string; replicas: number; pods: KubeObject[]; create: number; del: string[] }> = [
    { name: 'nothing yet', replicas: 3, pods: [], create: 3, del: [] },
    { name: 'steady', replicas: 2, pods: [pod('a', { ready: true }), pod('b', { ready: true })], create: 0, del: [] },
    { name: 'terminating pods do not count', replicas: 2, pods: [pod('a', { ready: true }), pod('b', { deleting: true })], create: 1, del: [] },
    { name: 'surplus: the not-ready one first', replicas: 1, pods: [pod('a', { node: 'n', ready: true }), pod('b', { node: 'n' })], create: 0, del: ['b'] },
    { name: 'surplus: unscheduled first', replicas: 2, pods: [pod('a', { node: 'n', ready: true }), pod('b', { ready: true }), pod('c', { node: 'n', ready: true })], create: 0, del: ['b'] },
    { name: 'failed pods are deleted and replaced', replicas: 2, pods: [pod('a', { ready: true }), pod('f', { phase: 'Failed' })], create: 1, del: ['f'] },
    { name: 'succeeded pods are left alone but do not count', replicas: 1, pods: [pod('s', { phase: 'Succeeded' })], create: 1, del: [] },
    { name: 'scale to zero', replicas: 0, pods: [pod('a'), pod('b', { deleting: true })], create: 0, del: ['a'] },
  ]
  for (const c of cases) {
    const plan = planReplicaSetPods({ replicas: c.replicas, pods: c.pods })
    t.same({ create: plan.create, del: plan.delete.map((p) => p.metadata.name) }, { create: c.create, del: c.del }, c.name)
  }
})

t.test('computeReplicaSetStatus', async (t) => {
  const rs: KubeObject = { metadata: { name: 'web', generation: 4 }, spec: { minReadySeconds: 10, template: { metadata: { labels: { app: 'web', tier: 'fe' } } } }, status: {} }
  const pods = [
    pod('a', { ready: true, readyAt: 0, labels: { app: 'web', tier: 'fe' } }),
    pod('b', { ready: true, readyAt: 5, labels: { app: 'web' } }),
    pod('c', { labels: { app: 'web', tier: 'fe' } }),
    pod('d', { deleting: true, ready: true }),
    pod('e', { phase: 'Failed' }),
  ]
  const { status, recheckAfterMs } = computeReplicaSetStatus({ rs, pods, now: at(12) })
  t.same(status, { replicas: 3, fullyLabeledReplicas: 2, readyReplicas: 2, availableReplicas: 1, observedGeneration: 4 })
  t.equal(recheckAfterMs, 3000 + 50, 'look again when b has been ready for 10 s')

  const failing = computeReplicaSetStatus({ rs, pods: [], now: at(20), failure: { reason: 'FailedCreate', message: 'quota' } })
  t.same(failing.status.conditions, [{ type: 'ReplicaFailure', status: 'True', lastTransitionTime: iso(20), reason: 'FailedCreate', message: 'quota' }])
  const kept = computeReplicaSetStatus({ rs: { ...rs, status: failing.status }, pods: [], now: at(30), failure: { reason: 'FailedCreate', message: 'quota' } })
  t.same(kept.status.conditions, failing.status.conditions, 'an ongoing failure keeps its condition as it was')
  const cleared = computeReplicaSetStatus({ rs: { ...rs, status: failing.status }, pods: [], now: at(40) })
  t.equal(cleared.status.conditions, undefined, 'cleared once creates work again')
})
