import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { parseCIDR, formatCIDR, planNodeCIDRs, subnets } from '../../controlplane/controllers/node-ipam.ts'
import { evictionDelayMs, neededTaint, planNodeLifecycle } from '../../controlplane/controllers/node-lifecycle.ts'

const node = (name: string, o: { podCIDR?: string; created?: string; taints?: any[]; conditions?: any[] } = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, creationTimestamp: o.created ?? '2025-01-01T00:00:00Z' },
  spec: { ...(o.podCIDR ? { podCIDR: o.podCIDR, podCIDRs: [o.podCIDR] } : {}), ...(o.taints ? { taints: o.taints } : {}) },
  status: { conditions: o.conditions ?? [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: '2025-01-01T00:00:00Z' }] },
})

t.test('CIDR parsing and subnets', async (t) => {
  t.equal(formatCIDR(parseCIDR('10.244.7.9/16')), '10.244.0.0/16', 'normalized to the network address')
  t.same([...subnets(parseCIDR('10.244.0.0/22'), 24)], ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'])
  t.throws(() => parseCIDR('10.244.0.0'), /SKIFF_ERR_IPAM_CIDR/)
  t.throws(() => parseCIDR('300.1.1.1/8'), /SKIFF_ERR_IPAM_CIDR/)
  t.throws(() => subnets(parseCIDR('10.244.0.0/24'), 16), /SKIFF_ERR_IPAM_MASK/)
})

const ipamCases: Array<{ name: string; nodes: KubeObject[]; cluster?: string; pending?: Record<string, string>; want: { assign: string[]; unavailable: string[] } }> = [
  {
    name: 'three new nodes get distinct /24s, oldest first',
    nodes: [node('c', { created: '2025-01-03T00:00:00Z' }), node('a', { created: '2025-01-01T00:00:00Z' }), node('b', { created: '2025-01-02T00:00:00Z' })],
    want: { assign: ['a=10.244.0.0/24', 'b=10.244.1.0/24', 'c=10.244.2.0/24'], unavailable: [] },
  },
  {
    name: 'subnets already on nodes are used; a gap is filled first',
    nodes: [node('a', { podCIDR: '10.244.0.0/24' }), node('b', { podCIDR: '10.244.2.0/24' }), node('c'), node('d')],
    want: { assign: ['c=10.244.1.0/24', 'd=10.244.3.0/24'], unavailable: [] },
  },
  {
    name: 'our writes not yet in the cache count as used and served',
    nodes: [node('a'), node('b')],
    pending: { a: '10.244.0.0/24' },
    want: { assign: ['b=10.244.1.0/24'], unavailable: [] },
  },
  {
    name: 'a full range leaves the rest unavailable',
    cluster: '10.244.0.0/23',
    nodes: [node('a', { podCIDR: '10.244.0.0/24' }), node('b'), node('c')],
    want: { assign: ['b=10.244.1.0/24'], unavailable: ['c'] },
  },
]

for (const c of ipamCases) {
  t.test(`ipam: ${c.name}`, async (t) => {
    const plan = planNodeCIDRs(c.nodes, { clusterCIDR: c.cluster ?? '10.244.0.0/16', maskSize: 24, pending: new Map(Object.entries(c.pending ?? {})) })
    t.same({ assign: plan.assign.map((a) => `${a.node}=${a.cidr}`), unavailable: plan.unavailable }, c.want)
  })
}

const now = Date.parse('2025-06-01T12:00:00Z')
const sec = 1000
const pod = (name: string, o: { ready?: boolean; deleting?: { at: number; grace: number }; tolerations?: any[]; phase?: string } = {}): KubeObject => ({
  metadata: { name, namespace: 'app', uid: `u-${name}`, ...(o.deleting ? { deletionTimestamp: new Date(o.deleting.at).toISOString(), deletionGracePeriodSeconds: o.deleting.grace } : {}) },
  spec: { nodeName: 'n1', ...(o.tolerations ? { tolerations: o.tolerations } : {}) },
  status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
})
const unknownReady = (sinceMs: number) => [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', lastTransitionTime: new Date(sinceMs).toISOString() }]
const unreachable = [
  { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: '2025-06-01T11:59:00Z' },
]

function summary(p: ReturnType<typeof planNodeLifecycle>) {
  return {
    ready: p.conditions?.find((c) => c.type === 'Ready')?.status,
    taints: p.taints?.map((x) => `${x.key.replace('node.kubernetes.io/', '')}:${x.effect}`),
    event: p.nodeEvent?.reason,
    markNotReady: p.markNotReady.map((x) => x.metadata.name),
    evict: p.evict.map((x) => x.metadata.name),
    forceDelete: p.forceDelete.map((x) => x.metadata.name),
  }
}

// Durations are what the controller observed on its monotonic clock; the
// timestamps in the objects (lastTransitionTime, deletionTimestamp) are for
// people and never decide anything: a wall-clock step cannot move them.
const lifecycleCases: Array<{ name: string; node: KubeObject; pods?: KubeObject[]; silentForMs: number; taintedForMs?: number; terminatingForMs?: Record<string, number>; want: ReturnType<typeof summary> }> = [
  {
    name: 'fresh lease, ready node: nothing to do',
    node: node('n1'),
    pods: [pod('a')],
    silentForMs: 5 * sec,
    want: { ready: undefined, taints: undefined, event: undefined, markNotReady: [], evict: [], forceDelete: [] },
  },
  {
    name: 'silent past the grace period: Ready=Unknown, unreachable taints, event, ready pods marked not ready',
    node: node('n1', { taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] }),
    pods: [pod('a'), pod('b', { ready: false })],
    silentForMs: 41 * sec,
    want: { ready: 'Unknown', taints: ['dedicated:NoSchedule', 'unreachable:NoSchedule', 'unreachable:NoExecute'], event: 'NodeNotReady', markNotReady: ['a'], evict: [], forceDelete: [] },
  },
  {
    name: 'already marked and still inside the eviction timeout: no writes',
    node: node('n1', { taints: unreachable, conditions: unknownReady(now - 30 * sec) }),
    pods: [pod('b', { ready: false })],
    silentForMs: 70 * sec,
    taintedForMs: 30 * sec,
    want: { ready: undefined, taints: undefined, event: undefined, markNotReady: [], evict: [], forceDelete: [] },
  },
  {
    name: 'past the eviction timeout: pods deleted gracefully, except those tolerating the taint forever or longer',
    node: node('n1', { taints: unreachable, conditions: unknownReady(now - 61 * sec) }),
    pods: [
      pod('a', { ready: false }),
      pod('ds', { ready: false, tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' }] }),
      pod('long', { ready: false, tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] }),
      pod('done', { phase: 'Succeeded' }),
      pod('short', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }] }),
    ],
    silentForMs: 100 * sec,
    taintedForMs: 61 * sec,
    want: { ready: undefined, taints: undefined, event: undefined, markNotReady: [], evict: ['a', 'short'], forceDelete: [] },
  },
  {
    name: 'a transition time long past (a wall clock stepped, or another machine wrote it) evicts nothing the controller has not seen tainted for long',
    node: node('n1', { taints: unreachable, conditions: unknownReady(now - 3600 * sec) }),
    pods: [pod('a', { ready: false })],
    silentForMs: 50 * sec,
    taintedForMs: 10 * sec,
    want: { ready: undefined, taints: undefined, event: undefined, markNotReady: [], evict: [], forceDelete: [] },
  },
  {
    name: 'terminating pods on an unreachable node are force deleted once their grace period is over, as this controller saw it',
    node: node('n1', { taints: unreachable, conditions: unknownReady(now - 100 * sec) }),
    pods: [
      pod('over', { deleting: { at: now - 31 * sec, grace: 30 } }),
      pod('within', { deleting: { at: now - 10 * sec, grace: 30 } }),
      pod('stamped-long-ago', { deleting: { at: now - 3600 * sec, grace: 30 } }),
    ],
    silentForMs: 100 * sec,
    taintedForMs: 100 * sec,
    terminatingForMs: { over: 31 * sec, within: 10 * sec, 'stamped-long-ago': 5 * sec },
    want: { ready: undefined, taints: undefined, event: undefined, markNotReady: [], evict: [], forceDelete: ['over'] },
  },
  {
    name: 'lease fresh again: taints removed, condition left to the agent, terminating pods left to the agent',
    node: node('n1', { taints: [...unreachable, { key: 'dedicated', effect: 'NoSchedule' }], conditions: unknownReady(now - 100 * sec) }),
    pods: [pod('over', { deleting: { at: now - 31 * sec, grace: 30 } })],
    silentForMs: 1 * sec,
    terminatingForMs: { over: 31 * sec },
    want: { ready: undefined, taints: ['dedicated:NoSchedule'], event: undefined, markNotReady: [], evict: [], forceDelete: [] },
  },
  {
    name: 'the agent itself reports Ready=False: not-ready taints, eviction after the timeout but no force',
    node: node('n1', { conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date(now - 61 * sec).toISOString() }] }),
    pods: [pod('a'), pod('t', { deleting: { at: now - 100 * sec, grace: 30 } })],
    silentForMs: 1 * sec,
    taintedForMs: 61 * sec,
    terminatingForMs: { t: 100 * sec },
    want: { ready: undefined, taints: ['not-ready:NoSchedule', 'not-ready:NoExecute'], event: undefined, markNotReady: [], evict: ['a'], forceDelete: [] },
  },
]

for (const c of lifecycleCases) {
  t.test(`lifecycle: ${c.name}`, async (t) => {
    const terminatingForMs = new Map(Object.entries(c.terminatingForMs ?? {}).map(([name, ms]) => [`u-${name}`, ms]))
    const plan = planNodeLifecycle({ node: c.node, pods: c.pods ?? [], silentForMs: c.silentForMs, taintedForMs: c.taintedForMs ?? 0, terminatingForMs, now, gracePeriodMs: 40 * sec, podEvictionTimeoutMs: 60 * sec })
    t.same(summary(plan), c.want)
  })
}

t.test('a node that never posted status gets a Ready=Unknown condition', async (t) => {
  const plan = planNodeLifecycle({ node: node('n1', { conditions: [] }), pods: [], silentForMs: 50 * sec, taintedForMs: 0, terminatingForMs: new Map(), now, gracePeriodMs: 40 * sec, podEvictionTimeoutMs: 60 * sec })
  t.match(plan.conditions, [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusNeverUpdated' }])
})

t.test('neededTaint: unreachable while silent, not-ready only for the agent\'s own Ready=False', async (t) => {
  t.equal(neededTaint(node('n1'), true), 'node.kubernetes.io/unreachable')
  t.equal(neededTaint(node('n1'), false), undefined)
  t.equal(neededTaint(node('n1', { conditions: unknownReady(now) }), false), undefined, 'Unknown with a fresh Lease: left to the agent')
  t.equal(neededTaint(node('n1', { conditions: [{ type: 'Ready', status: 'False' }] }), false), 'node.kubernetes.io/not-ready')
})

t.test('eviction delay from tolerations', async (t) => {
  const key = 'node.kubernetes.io/unreachable'
  t.equal(evictionDelayMs(pod('a'), key, 60_000), 60_000)
  t.equal(evictionDelayMs(pod('a', { tolerations: [{ operator: 'Exists' }] }), key, 60_000), undefined, 'tolerates everything forever')
  t.equal(evictionDelayMs(pod('a', { tolerations: [{ key, operator: 'Exists', effect: 'NoSchedule' }] }), key, 60_000), 60_000, 'a NoSchedule toleration does not count')
  t.equal(evictionDelayMs(pod('a', { tolerations: [{ key, operator: 'Exists', tolerationSeconds: 5 }, { key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 9 }] }), key, 60_000), 5_000)
})
