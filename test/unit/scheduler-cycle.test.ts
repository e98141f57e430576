// Whole scheduling cycles: nodes and a sequence of pods in, where each pod
// lands (or the message it gets) out. Pods are placed one after another,
// each assumed in the cache before the next cycle, as the scheduler does.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { SchedulerCache } from '../../controlplane/scheduler/cache.ts'
import { fitErrorMessage, numFeasibleNodesToFind, runCycle, selectHost } from '../../controlplane/scheduler/cycle.ts'
import { profiles, type ProfileName } from '../../controlplane/scheduler/framework.ts'
import { makeNode, makePod } from '../../controlplane/scheduler/testing.ts'

interface Case {
  name: string
  nodes: KubeObject[]
  /** Pods already bound (spec.nodeName set). */
  running?: KubeObject[]
  pods: KubeObject[]
  profile?: ProfileName
  percentageOfNodesToScore?: number
  /** Pods per node after the run; unplaced pods are not counted. */
  want?: Record<string, number>
  /** Where each pod went, in order, or its message when it fit nowhere. */
  placements?: string[]
}

function simulate(c: Case): { counts: Record<string, number>; placements: string[] } {
  const cache = new SchedulerCache()
  for (const n of c.nodes) cache.upsertNode(n)
  for (const p of c.running ?? []) cache.upsertPod(p)
  const counts: Record<string, number> = {}
  const placements: string[] = []
  let start = 0
  for (const pod of c.pods) {
    const r = runCycle({ pod, nodes: cache.nodeInfos(), profile: profiles[c.profile ?? 'default'], startIndex: start, percentageOfNodesToScore: c.percentageOfNodesToScore })
    start = r.nextStartIndex
    if ('fitError' in r) {
      placements.push(fitErrorMessage(r.fitError))
      continue
    }
    cache.assume(pod, r.node)
    counts[r.node] = (counts[r.node] ?? 0) + 1
    placements.push(r.node)
  }
  return { counts, placements }
}

const three = () => [makeNode('n1'), makeNode('n2'), makeNode('n3')]
const replicas = (n: number, owner: string, o: Parameters<typeof makePod>[1] = {}) => Array.from({ length: n }, (_, i) => makePod(`${owner}-${i}`, { owner, ...o }))

const cases: Case[] = [
  { name: '6 replicas over 3 nodes', nodes: three(), pods: replicas(6, 'web'), want: { n1: 2, n2: 2, n3: 2 } },
  { name: '6 replicas with requests over 3 nodes', nodes: three(), pods: replicas(6, 'web', { cpu: '250m', memory: '256Mi' }), want: { n1: 2, n2: 2, n3: 2 } },
  {
    name: 'spread beats an emptier node: 3 replicas avoid stacking even when one node is busy',
    nodes: three(),
    running: [makePod('busy', { nodeName: 'n3', cpu: '1' })],
    pods: replicas(3, 'web'),
    placements: ['n1', 'n2', 'n3'],
  },
  {
    name: 'two owners interleaved still spread per owner',
    nodes: three(),
    pods: [...replicas(3, 'a'), ...replicas(3, 'b')],
    want: { n1: 2, n2: 2, n3: 2 },
  },
  {
    name: 'pods without an owner go to the least allocated node',
    nodes: three(),
    running: [makePod('x', { nodeName: 'n1', cpu: '1' }), makePod('y', { nodeName: 'n2', cpu: '500m' })],
    pods: [makePod('p')],
    placements: ['n3'],
  },
  {
    name: 'insufficient cpu everywhere',
    nodes: three(),
    pods: [makePod('big', { cpu: '64' })],
    placements: ['0/3 nodes are available: 3 Insufficient cpu.'],
  },
  {
    name: 'mixed reasons are counted per node and sorted',
    nodes: [makeNode('n1', { labels: { disk: 'ssd' } }), makeNode('n2'), makeNode('n3')],
    pods: [makePod('p', { cpu: '3', nodeSelector: { disk: 'ssd' } })],
    placements: ["0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."],
  },
  {
    name: 'the brief example: affinity and cpu',
    nodes: [makeNode('n1', { labels: { disk: 'ssd' } }), makeNode('n2', { labels: { disk: 'ssd' } }), makeNode('n3')],
    pods: [makePod('p', { cpu: '3', affinityTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }] })],
    placements: ["0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."],
  },
  {
    name: 'cpu and memory short on the same node count both',
    nodes: [makeNode('n1'), makeNode('n2', { cpu: '8' })],
    pods: [makePod('p', { cpu: '4', memory: '16Gi' })],
    placements: ['0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.'],
  },
  {
    name: 'taints keep pods off unless tolerated',
    nodes: [makeNode('n1', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] }), makeNode('n2', { ready: 'False' }), makeNode('n3', { unschedulable: true })],
    pods: [makePod('plain'), makePod('tolerant', { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }] })],
    placements: ['0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 1 node(s) were not ready, 1 node(s) were unschedulable.', 'n1'],
  },
  {
    name: 'nodeSelector pins pods to the labelled node',
    nodes: [makeNode('n1'), makeNode('n2', { labels: { disk: 'ssd' } }), makeNode('n3')],
    pods: replicas(3, 'db', { nodeSelector: { disk: 'ssd' } }),
    want: { n2: 3 },
  },
  {
    name: 'required affinity by node name (how DaemonSet pods are placed)',
    nodes: three(),
    pods: [makePod('ds', { affinityTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n3'] }] }] })],
    placements: ['n3'],
  },
  {
    name: 'host ports: two pods wanting port 80 go to different nodes, the third to the last free one, the fourth nowhere',
    nodes: three(),
    pods: [makePod('a', { hostPorts: [{ port: 80 }] }), makePod('b', { hostPorts: [{ port: 80 }] }), makePod('c', { hostPorts: [{ port: 80 }] }), makePod('d', { hostPorts: [{ port: 80 }] })],
    placements: ['n1', 'n2', 'n3', "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports."],
  },
  {
    name: 'assumed pods count: a burst fills nodes exactly to allocatable',
    nodes: [makeNode('n1', { cpu: '1' }), makeNode('n2', { cpu: '1' })],
    pods: Array.from({ length: 5 }, (_, i) => makePod(`p${i}`, { cpu: '500m' })),
    placements: ['n1', 'n2', 'n1', 'n2', '0/2 nodes are available: 2 Insufficient cpu.'],
  },
  {
    name: 'pod count limit',
    nodes: [makeNode('n1', { pods: '1' })],
    running: [makePod('x', { nodeName: 'n1' })],
    pods: [makePod('p')],
    placements: ['0/1 nodes are available: 1 Too many pods.'],
  },
  {
    name: 'finished pods hold nothing',
    nodes: [makeNode('n1', { pods: '1' })],
    running: [makePod('x', { nodeName: 'n1', phase: 'Succeeded', cpu: '2' })],
    pods: [makePod('p', { cpu: '2' })],
    placements: ['n1'],
  },
  { name: 'no nodes at all', nodes: [], pods: [makePod('p')], placements: ['no nodes available to schedule pods'] },
  {
    name: 'bin-packing profile packs: pods fill the first node before the next',
    nodes: three(),
    profile: 'bin-packing',
    pods: Array.from({ length: 6 }, (_, i) => makePod(`p${i}`, { cpu: '500m', memory: '1Gi' })),
    want: { n1: 4, n2: 2 },
  },
  {
    name: 'bin-packing packs replicas of one owner too',
    nodes: three(),
    profile: 'bin-packing',
    pods: replicas(4, 'web', { cpu: '500m', memory: '1Gi' }),
    want: { n1: 4 },
  },
  {
    name: 'bin-packing prefers the fuller node that still fits',
    nodes: three(),
    profile: 'bin-packing',
    running: [makePod('x', { nodeName: 'n2', cpu: '1' }), makePod('y', { nodeName: 'n3', cpu: '1500m' })],
    pods: [makePod('a', { cpu: '500m' }), makePod('b', { cpu: '1' })],
    placements: ['n3', 'n2'],
  },
  {
    name: 'default profile prefers the emptier node for the same pods',
    nodes: three(),
    running: [makePod('x', { nodeName: 'n2', cpu: '1' }), makePod('y', { nodeName: 'n3', cpu: '1500m' })],
    pods: [makePod('a', { cpu: '500m' })],
    placements: ['n1'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = simulate(c)
    if (c.want) t.same(got.counts, c.want, 'pods per node')
    if (c.placements) t.same(got.placements, c.placements, 'placements')
  })
}

t.test('a large cluster: 500 replicas over 250 nodes', async (t) => {
  const nodes = Array.from({ length: 250 }, (_, i) => makeNode(`node-${String(i).padStart(4, '0')}`))
  const pods = replicas(500, 'big', { cpu: '100m', memory: '500Mi' })
  const all = simulate({ name: 'all nodes scored', nodes, pods, percentageOfNodesToScore: 100 })
  t.same(new Set(Object.values(all.counts)), new Set([2]), 'scoring every node: exactly 2 per node')
  t.equal(Object.keys(all.counts).length, 250)
  // The adaptive default looks at 48% of 250 nodes per cycle, so the spread is close but not exact.
  const adaptive = simulate({ name: 'adaptive', nodes, pods })
  const counts = Object.values(adaptive.counts)
  t.equal(counts.reduce((a, b) => a + b, 0), 500)
  t.ok(Math.min(...counts) >= 1 && Math.max(...counts) <= 3, `adaptive: between 1 and 3 per node (got ${Math.min(...counts)}..${Math.max(...counts)})`)
})

t.test('numFeasibleNodesToFind follows kube-scheduler', async (t) => {
  const cases: Array<[number, number, number]> = [
    [0, 0, 0],
    [50, 0, 50],
    [99, 0, 99],
    [100, 0, 100], // 50 - 0 = 50% of 100 = 50, raised to the minimum of 100
    [1000, 0, 420], // 50 - 8 = 42%
    [5000, 0, 500], // 50 - 40 = 10%
    [10000, 0, 500], // 5% minimum
    [1000, 100, 1000],
    [1000, 10, 100],
    [1000, 50, 500],
  ]
  for (const [n, pct, want] of cases) t.equal(numFeasibleNodesToFind(n, pct), want, `${n} nodes at ${pct}%`)
})

t.test('partial filtering rotates the start so every node gets its turn', async (t) => {
  const cache = new SchedulerCache()
  for (let i = 0; i < 300; i++) cache.upsertNode(makeNode(`n${String(i).padStart(3, '0')}`))
  const r1 = runCycle({ pod: makePod('a'), nodes: cache.nodeInfos(), profile: profiles.default, startIndex: 0, percentageOfNodesToScore: 50 })
  t.ok('node' in r1)
  t.equal(r1.nextStartIndex, 150, 'stopped after half the nodes')
  const r2 = runCycle({ pod: makePod('b'), nodes: cache.nodeInfos(), profile: profiles.default, startIndex: r1.nextStartIndex, percentageOfNodesToScore: 50 })
  t.equal('node' in r2 && r2.node, 'n150', 'the next cycle starts where the last stopped')
  const none = runCycle({ pod: makePod('c', { cpu: '64' }), nodes: cache.nodeInfos(), profile: profiles.default, startIndex: 10, percentageOfNodesToScore: 50 })
  t.equal(none.evaluated, 300, 'an unschedulable pod is checked against every node')
})

t.test('selectHost breaks ties by node name', async (t) => {
  t.same(selectHost([{ name: 'b', score: 5 }, { name: 'a', score: 5 }, { name: 'c', score: 4 }]), { name: 'a', score: 5 })
  t.same(selectHost([{ name: 'b', score: 5 }, { name: 'c', score: 6 }]), { name: 'c', score: 6 })
})
