import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { nodeFit, planDaemonSet, revisionHashLabel } from '../../controlplane/controllers/daemonset.ts'
import { templateHash } from '../../controlplane/controllers/pod-template.ts'

const iso = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString().replace(/\.\d+Z$/, 'Z')
const now = Date.parse(iso(100))

function node(name: string, o: { ready?: boolean; labels?: Record<string, string>; taints?: any[] } = {}): KubeObject {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) } },
    spec: { taints: o.taints ?? [] },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  }
}

t.test('nodeFit: readiness, nodeSelector, required affinity, taints and tolerations', async (t) => {
  const plain = { spec: { containers: [] } }
  const withSpec = (spec: object) => ({ spec: { containers: [], ...spec } })
  const noSchedule = { key: 'dedicated', value: 'infra', effect: 'NoSchedule' }
  const noExecute = { key: 'dedicated', value: 'infra', effect: 'NoExecute' }
  const affinity = (exprs: any[], fields: any[] = []) => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: exprs, matchFields: fields }] } } } })
  const cases: Array<[string, KubeObject, any, [boolean, boolean]]> = [
    ['a Ready node', node('a'), plain, [true, true]],
    ['not Ready: no new pod, the old one stays', node('a', { ready: false }), plain, [false, true]],
    ['nodeSelector matches', node('a', { labels: { disk: 'ssd' } }), withSpec({ nodeSelector: { disk: 'ssd' } }), [true, true]],
    ['nodeSelector does not match', node('a'), withSpec({ nodeSelector: { disk: 'ssd' } }), [false, false]],
    ['NoSchedule taint: no new pod, the old one stays', node('a', { taints: [noSchedule] }), plain, [false, true]],
    ['NoSchedule taint tolerated', node('a', { taints: [noSchedule] }), withSpec({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }] }), [true, true]],
    ['wrong value not tolerated', node('a', { taints: [noSchedule] }), withSpec({ tolerations: [{ key: 'dedicated', value: 'db' }] }), [false, true]],
    ['Exists with no key tolerates everything', node('a', { taints: [noSchedule, noExecute] }), withSpec({ tolerations: [{ operator: 'Exists' }] }), [true, true]],
    ['NoExecute taint evicts', node('a', { taints: [noExecute] }), plain, [false, false]],
    ['PreferNoSchedule is ignored', node('a', { taints: [{ key: 'x', effect: 'PreferNoSchedule' }] }), plain, [true, true]],
    ['daemon pods tolerate unschedulable', node('a', { taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }), plain, [true, true]],
    ['affinity In matches', node('a', { labels: { zone: 'z1' } }), withSpec(affinity([{ key: 'zone', operator: 'In', values: ['z1', 'z2'] }])), [true, true]],
    ['affinity NotIn excludes', node('a', { labels: { zone: 'z1' } }), withSpec(affinity([{ key: 'zone', operator: 'NotIn', values: ['z1'] }])), [false, false]],
    ['affinity Gt', node('a', { labels: { cores: '8' } }), withSpec(affinity([{ key: 'cores', operator: 'Gt', values: ['4'] }])), [true, true]],
    ['affinity matchFields on the name', node('b'), withSpec(affinity([], [{ key: 'metadata.name', operator: 'In', values: ['a'] }])), [false, false]],
  ]
  for (const [name, n, template, [shouldRun, shouldContinueRunning]] of cases) t.same(nodeFit(n, template), { shouldRun, shouldContinueRunning }, name)
})

const template = (image: string) => ({ metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image }] } })

function ds(image: string, strategy: object = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } }): KubeObject {
  return { metadata: { name: 'agent', namespace: 'ns', generation: 2 }, spec: { selector: { matchLabels: { app: 'agent' } }, template: template(image), updateStrategy: strategy }, status: {} }
}

function pod(name: string, nodeName: string, o: { image?: string; ready?: boolean; created?: number; phase?: string; deleting?: boolean } = {}): KubeObject {
  const hash = templateHash(template(o.image ?? 'v1'))
  return {
    metadata: { name, namespace: 'ns', creationTimestamp: iso(o.created ?? 0), labels: { app: 'agent', [revisionHashLabel]: hash }, ...(o.deleting ? { deletionTimestamp: iso(1) } : {}) },
    spec: { nodeName },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false || o.phase === 'Failed' ? 'False' : 'True', lastTransitionTime: iso(0) }] },
  }
}

const names = (ps: KubeObject[]) => ps.map((p) => p.metadata.name).sort()

t.test('planDaemonSet: one pod per eligible node', async (t) => {
  const nodes = [node('a'), node('b'), node('c'), node('down', { ready: false }), node('tainted', { taints: [{ key: 'd', effect: 'NoSchedule' }] }), node('evict', { taints: [{ key: 'd', effect: 'NoExecute' }] })]
  const pods = [
    pod('on-a', 'a'),
    pod('b-old', 'b', { created: 1 }),
    pod('b-new', 'b', { created: 5 }),
    pod('on-down', 'down'),
    pod('on-evict', 'evict'),
    pod('on-gone-node', 'gone'),
    pod('failed-on-c', 'c', { phase: 'Failed' }),
  ]
  const plan = planDaemonSet({ ds: ds('v1'), nodes, pods, now, manage: true })
  t.same(plan.create, [], 'c has a (failed) pod: it is deleted first, replaced next sync')
  t.same(names(plan.delete), ['b-new', 'failed-on-c', 'on-evict', 'on-gone-node'])
  t.same(plan.status, {
    desiredNumberScheduled: 3,
    currentNumberScheduled: 3,
    numberMisscheduled: 2,
    numberReady: 2,
    numberAvailable: 2,
    numberUnavailable: 1,
    updatedNumberScheduled: 3,
    observedGeneration: 2,
  })
  const fresh = planDaemonSet({ ds: ds('v1'), nodes, pods: [pod('on-a', 'a')], now, manage: true })
  t.same(fresh.create, ['b', 'c'])
  t.same(planDaemonSet({ ds: ds('v1'), nodes, pods: [], now, manage: false }).create, [], 'nothing while expectations are pending')
  const terminating = planDaemonSet({ ds: ds('v1'), nodes: [node('a')], pods: [pod('old', 'a', { deleting: true })], now, manage: true })
  t.same([terminating.create, terminating.delete], [[], []], 'no new pod while the old one terminates')
})

t.test('planDaemonSet: rolling update replaces at most maxUnavailable available pods', async (t) => {
  const nodes = ['a', 'b', 'c', 'd'].map((n) => node(n))
  const old = nodes.map((n) => pod(`old-${n.metadata.name}`, n.metadata.name!))
  const step1 = planDaemonSet({ ds: ds('v2'), nodes, pods: old, now, manage: true })
  t.same(names(step1.delete), ['old-a'], 'one at a time')
  t.equal(step1.status.updatedNumberScheduled, 0)

  const replacing = [pod('new-a', 'a', { image: 'v2', ready: false }), ...old.slice(1)]
  t.same(planDaemonSet({ ds: ds('v2'), nodes, pods: replacing, now, manage: true }).delete, [], 'waits while the new pod is unavailable')

  const two = ds('v2', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '50%' } })
  t.same(names(planDaemonSet({ ds: two, nodes, pods: old, now, manage: true }).delete), ['old-a', 'old-b'], '50% of 4')

  const broken = [pod('old-a', 'a', { ready: false }), ...old.slice(1)]
  t.same(names(planDaemonSet({ ds: ds('v2'), nodes, pods: broken, now, manage: true }).delete), ['old-a'], 'an unavailable old pod is replaced, and uses up the budget')
  const brokenAndBudget = planDaemonSet({ ds: two, nodes, pods: broken, now, manage: true })
  t.same(names(brokenAndBudget.delete), ['old-a', 'old-b'], 'a budget of two: the broken pod and one available one')

  t.same(planDaemonSet({ ds: ds('v2', { type: 'OnDelete' }), nodes, pods: old, now, manage: true }).delete, [], 'OnDelete never replaces')
})
