// NoExecute taints an operator sets (controllers/taint-eviction-plan.ts), the
// unschedulable taint of a cordoned node (node-lifecycle.ts), and pod garbage
// collection's choice of orphans (pod-gc.ts).
import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { planTaintEvictions, tolerationDelayMs } from '../../controlplane/controllers/taint-eviction-plan.ts'
import { planNodeLifecycle } from '../../controlplane/controllers/node-lifecycle.ts'
import { orphanStatus, planPodGC } from '../../controlplane/controllers/pod-gc.ts'

const sec = 1000
const pod = (name: string, tolerations: any[] = [], o: { node?: string; deleting?: boolean; phase?: string } = {}): KubeObject => ({
  metadata: { name, namespace: 'default', uid: `u-${name}`, ...(o.deleting ? { deletionTimestamp: '2026-06-01T00:00:00Z' } : {}) },
  spec: { ...(o.node === '' ? {} : { nodeName: o.node ?? 'n1' }), tolerations },
  status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
})
const node = (taints: any[], o: { unschedulable?: boolean } = {}): KubeObject => ({
  metadata: { name: 'n1' },
  spec: { taints, ...(o.unschedulable ? { unschedulable: true } : {}) },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
})
const noExec = { key: 'k', value: 'v', effect: 'NoExecute' }

const delayCases: Array<{ name: string; tolerations: any[]; taints?: any[]; want: number | undefined }> = [
  { name: 'no toleration: at once', tolerations: [], want: 0 },
  { name: 'Equal with another value does not tolerate', tolerations: [{ key: 'k', operator: 'Equal', value: 'w', effect: 'NoExecute' }], want: 0 },
  { name: 'a NoSchedule toleration does not tolerate NoExecute', tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }], want: 0 },
  { name: 'tolerated without seconds: never', tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute' }], want: undefined },
  { name: 'tolerated for 30 s', tolerations: [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoExecute', tolerationSeconds: 30 }], want: 30 * sec },
  { name: 'empty effect tolerates every effect', tolerations: [{ key: 'k', operator: 'Exists', tolerationSeconds: 5 }], want: 5 * sec },
  { name: 'operator Exists with no key tolerates everything', tolerations: [{ operator: 'Exists' }], want: undefined },
  { name: 'tolerationSeconds 0 or less: at once', tolerations: [{ key: 'k', operator: 'Exists', tolerationSeconds: -1 }], want: 0 },
  { name: 'the shortest of the used tolerations', tolerations: [{ key: 'k', operator: 'Exists', tolerationSeconds: 30 }, { key: 'j', operator: 'Exists', tolerationSeconds: 10 }], taints: [noExec, { key: 'j', effect: 'NoExecute' }], want: 10 * sec },
  { name: 'one taint of two untolerated: at once', tolerations: [{ key: 'k', operator: 'Exists' }], taints: [noExec, { key: 'j', effect: 'NoExecute' }], want: 0 },
  { name: 'the first matching toleration per taint is the one used', tolerations: [{ key: 'k', operator: 'Exists' }, { key: 'k', operator: 'Exists', tolerationSeconds: 3 }], want: undefined },
]

for (const c of delayCases) {
  t.test(`toleration delay: ${c.name}`, async (t) => {
    t.equal(tolerationDelayMs(pod('p', c.tolerations), c.taints ?? [noExec]), c.want)
  })
}

t.test('planTaintEvictions: untolerated now, tolerated after its seconds, lifecycle taints left alone', async (t) => {
  const pods = [
    pod('plain'),
    pod('patient', [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }]),
    pod('forever', [{ key: 'k', operator: 'Exists', effect: 'NoExecute' }]),
    pod('going', [], { deleting: true }),
    pod('done', [], { phase: 'Succeeded' }),
  ]
  const at = (ms: number) => planTaintEvictions({ node: node([noExec]), pods, pendingForMs: () => ms })
  t.same(at(0).evict.map((p) => p.metadata.name), ['plain'])
  t.equal(at(0).recheckAfterMs, 10 * sec, 'look again when the patient one is due')
  t.same([...at(0).pending], ['u-plain', 'u-patient'])
  t.same(at(10 * sec).evict.map((p) => p.metadata.name), ['plain', 'patient'])
  const lifecycle = planTaintEvictions({ node: node([{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }]), pods, pendingForMs: () => 0 })
  t.same(lifecycle.evict, [], 'the unreachable taint is node lifecycle\'s (with its eviction timeout)')
  t.same(planTaintEvictions({ node: node([{ key: 'k', effect: 'NoSchedule' }]), pods, pendingForMs: () => 0 }).evict, [], 'NoSchedule evicts nothing')
})

t.test('node lifecycle: a cordoned node gets the unschedulable NoSchedule taint, and loses it when uncordoned', async (t) => {
  const base = { pods: [], silentForMs: 0, taintedForMs: 0, terminatingForMs: new Map(), now: Date.now(), gracePeriodMs: 40 * sec, podEvictionTimeoutMs: 60 * sec }
  const cordoned = planNodeLifecycle({ ...base, node: node([{ key: 'x', effect: 'NoSchedule' }], { unschedulable: true }) })
  t.same(cordoned.taints, [{ key: 'x', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }])
  const kept = planNodeLifecycle({ ...base, node: node([{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }], { unschedulable: true }) })
  t.equal(kept.taints, undefined, 'already there: no write')
  const uncordoned = planNodeLifecycle({ ...base, node: node([{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }]) })
  t.same(uncordoned.taints, [])
})

t.test('pod GC: pods on nodes missing for the quarantine, and terminating pods never scheduled', async (t) => {
  const pods = [pod('on-live', [], { node: 'live' }), pod('on-gone', [], { node: 'gone' }), pod('on-new', [], { node: 'new' }), pod('pending', [], { node: '' }), pod('unscheduled-deleting', [], { node: '', deleting: true })]
  const plan = planPodGC({ pods, nodes: new Set(['live']), missingForMs: (n) => (n === 'gone' ? 5 * sec : 0), quarantineMs: 2 * sec })
  t.same(plan.orphans.map((p) => p.metadata.name), ['on-gone'])
  t.same([...plan.missingNodes].sort(), ['gone', 'new'], 'a node missing for less than the quarantine is only noted')
  t.same(plan.unscheduledTerminating.map((p) => p.metadata.name), ['unscheduled-deleting'])
  const st = orphanStatus(pod('x'), Date.parse('2026-06-01T00:00:00Z'))
  t.equal(st.phase, 'Failed')
  t.match(st.conditions.find((c: any) => c.type === 'DisruptionTarget'), { status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' })
  t.equal(orphanStatus(pod('y', [], { phase: 'Succeeded' }), 0).phase, 'Succeeded', 'a finished pod keeps its phase')
})
