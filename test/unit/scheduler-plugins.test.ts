// Each scheduler plugin on its own: a pod, a node (with the pods already on
// it), and the Status or score the plugin must give.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo } from '../../controlplane/scheduler/framework.ts'
import { MutableNodeInfo } from '../../controlplane/scheduler/nodeinfo.ts'
import { nodeAffinity } from '../../controlplane/scheduler/plugins/node-affinity.ts'
import { nodePorts } from '../../controlplane/scheduler/plugins/node-ports.ts'
import { nodeReady } from '../../controlplane/scheduler/plugins/node-ready.ts'
import { nodeResourcesFit } from '../../controlplane/scheduler/plugins/node-resources-fit.ts'
import { nodeSelector } from '../../controlplane/scheduler/plugins/node-selector.ts'
import { leastAllocated, leastRequestedScore } from '../../controlplane/scheduler/plugins/least-allocated.ts'
import { mostAllocated, mostRequestedScore } from '../../controlplane/scheduler/plugins/most-allocated.ts'
import { ownerSpread } from '../../controlplane/scheduler/plugins/owner-spread.ts'
import { taintToleration } from '../../controlplane/scheduler/plugins/taint-toleration.ts'
import { toleratesTaint } from '../../controlplane/scheduler/plugins/tolerations.ts'
import { makeNode, makePod, type NodeSpecOptions } from '../../controlplane/scheduler/testing.ts'

function info(node: KubeObject, pods: KubeObject[] = []): NodeInfo {
  const i = new MutableNodeInfo(node.metadata.name!)
  i.setNode(node)
  for (const p of pods) i.addPod(`${p.metadata.namespace}/${p.metadata.name}`, { ...p, spec: { ...p.spec, nodeName: node.metadata.name } })
  return i
}

/** Run one filter plugin the way a cycle does: preFilter, then filter. 'ok' or the reasons joined. */
function runFilter(plugin: FilterPlugin, pod: KubeObject, node: NodeInfo): string {
  const state: CycleState = new Map()
  const pre = plugin.preFilter?.(state, pod)
  if (pre && pre.code !== 'Success') return `prefilter: ${pre.reasons.join('; ')}`
  const s = plugin.filter(state, pod, node)
  return s.code === 'Success' ? 'ok' : s.reasons.join('; ')
}

type Test = typeof t

interface FilterCase {
  name: string
  pod: KubeObject
  node: NodeSpecOptions
  onNode?: KubeObject[]
  want: string
}

function filterTable(t: Test, plugin: FilterPlugin, cases: FilterCase[]): void {
  t.test(plugin.name, async (t) => {
    for (const c of cases) t.equal(runFilter(plugin, c.pod, info(makeNode('n1', c.node), c.onNode)), c.want, c.name)
  })
}

const notReady = "node(s) were not ready"
const mismatch = "node(s) didn't match Pod's node affinity/selector"

filterTable(t, nodeReady, [
  { name: 'ready node', pod: makePod('p'), node: {}, want: 'ok' },
  { name: 'Ready=False', pod: makePod('p'), node: { ready: 'False' }, want: notReady },
  { name: 'Ready=Unknown (silent node)', pod: makePod('p'), node: { ready: 'Unknown' }, want: notReady },
  { name: 'cordoned', pod: makePod('p'), node: { unschedulable: true }, want: 'node(s) were unschedulable' },
  {
    name: 'cordoned, pod tolerates the unschedulable taint (DaemonSet pods do)',
    pod: makePod('p', { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] }),
    node: { unschedulable: true },
    want: 'ok',
  },
  {
    name: 'not ready, pod tolerates not-ready only for NoExecute',
    pod: makePod('p', { tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' }] }),
    node: { ready: 'False' },
    want: notReady,
  },
  { name: 'not ready, pod tolerates everything', pod: makePod('p', { tolerations: [{ operator: 'Exists' }] }), node: { ready: 'False' }, want: 'ok' },
])

filterTable(t, nodeResourcesFit, [
  { name: 'no requests fit anywhere', pod: makePod('p'), node: { cpu: '0', memory: '0' }, want: 'ok' },
  { name: 'fits exactly', pod: makePod('p', { cpu: '2', memory: '8Gi' }), node: {}, want: 'ok' },
  { name: 'millicores add up', pod: makePod('p', { cpu: '500m' }), node: { cpu: '1' }, onNode: [makePod('a', { cpu: '300m' }), makePod('b', { cpu: '200m' })], want: 'ok' },
  { name: 'one millicore too many', pod: makePod('p', { cpu: '501m' }), node: { cpu: '1' }, onNode: [makePod('a', { cpu: '500m' })], want: 'Insufficient cpu' },
  { name: 'cpu 64 on a 2-cpu node', pod: makePod('p', { cpu: '64' }), node: {}, want: 'Insufficient cpu' },
  { name: 'memory', pod: makePod('p', { memory: '9Gi' }), node: {}, want: 'Insufficient memory' },
  { name: 'cpu and memory both reported', pod: makePod('p', { cpu: '3', memory: '9Gi' }), node: {}, want: 'Insufficient cpu; Insufficient memory' },
  { name: 'pod count', pod: makePod('p'), node: { pods: '2' }, onNode: [makePod('a'), makePod('b')], want: 'Too many pods' },
  { name: 'pod count with room', pod: makePod('p'), node: { pods: '3' }, onNode: [makePod('a'), makePod('b')], want: 'ok' },
  { name: 'node without allocatable pods takes none', pod: makePod('p'), node: { pods: '0' }, want: 'Too many pods' },
  { name: 'extended resource missing on node', pod: makePod('p', { requests: { 'example.com/gpu': '1' } }), node: {}, want: 'Insufficient example.com/gpu' },
  { name: 'extended resource present', pod: makePod('p', { requests: { 'example.com/gpu': '1' } }), node: { extra: { 'example.com/gpu': '2' } }, want: 'ok' },
  { name: 'ephemeral-storage ignored when the node does not report it', pod: makePod('p', { requests: { 'ephemeral-storage': '1Gi' } }), node: {}, want: 'ok' },
  { name: 'ephemeral-storage checked when reported', pod: makePod('p', { requests: { 'ephemeral-storage': '2Gi' } }), node: { extra: { 'ephemeral-storage': '1Gi' } }, want: 'Insufficient ephemeral-storage' },
  {
    name: "the node's existing requests count",
    pod: makePod('p', { cpu: '1500m' }),
    node: {},
    onNode: [makePod('a', { cpu: '1' })],
    want: 'Insufficient cpu',
  },
])

filterTable(t, nodeSelector, [
  { name: 'no selector', pod: makePod('p'), node: {}, want: 'ok' },
  { name: 'label matches', pod: makePod('p', { nodeSelector: { disk: 'ssd' } }), node: { labels: { disk: 'ssd' } }, want: 'ok' },
  { name: 'label differs', pod: makePod('p', { nodeSelector: { disk: 'ssd' } }), node: { labels: { disk: 'hdd' } }, want: mismatch },
  { name: 'label missing', pod: makePod('p', { nodeSelector: { disk: 'ssd' } }), node: {}, want: mismatch },
  { name: 'all keys must match', pod: makePod('p', { nodeSelector: { disk: 'ssd', zone: 'a' } }), node: { labels: { disk: 'ssd' } }, want: mismatch },
  { name: 'inherited property names are not labels', pod: makePod('p', { nodeSelector: { constructor: 'x' } }), node: {}, want: mismatch },
])

const expr = (key: string, operator: string, values?: string[]) => ({ matchExpressions: [{ key, operator, ...(values ? { values } : {}) }] })
const zoneA = { labels: { zone: 'a', gen: '5' } }

filterTable(t, nodeAffinity, [
  { name: 'no affinity', pod: makePod('p'), node: {}, want: 'ok' },
  { name: 'In matches', pod: makePod('p', { affinityTerms: [expr('zone', 'In', ['a', 'b'])] }), node: zoneA, want: 'ok' },
  { name: 'In does not match', pod: makePod('p', { affinityTerms: [expr('zone', 'In', ['b'])] }), node: zoneA, want: mismatch },
  { name: 'NotIn', pod: makePod('p', { affinityTerms: [expr('zone', 'NotIn', ['a'])] }), node: zoneA, want: mismatch },
  { name: 'NotIn on a missing label matches', pod: makePod('p', { affinityTerms: [expr('rack', 'NotIn', ['r1'])] }), node: zoneA, want: 'ok' },
  { name: 'Exists', pod: makePod('p', { affinityTerms: [expr('zone', 'Exists')] }), node: zoneA, want: 'ok' },
  { name: 'DoesNotExist', pod: makePod('p', { affinityTerms: [expr('zone', 'DoesNotExist')] }), node: zoneA, want: mismatch },
  { name: 'Gt true', pod: makePod('p', { affinityTerms: [expr('gen', 'Gt', ['4'])] }), node: zoneA, want: 'ok' },
  { name: 'Gt false', pod: makePod('p', { affinityTerms: [expr('gen', 'Gt', ['5'])] }), node: zoneA, want: mismatch },
  { name: 'Lt true', pod: makePod('p', { affinityTerms: [expr('gen', 'Lt', ['10'])] }), node: zoneA, want: 'ok' },
  { name: 'Gt on a non-integer label never matches', pod: makePod('p', { affinityTerms: [expr('zone', 'Gt', ['1'])] }), node: zoneA, want: mismatch },
  { name: 'unknown operator never matches', pod: makePod('p', { affinityTerms: [expr('zone', 'Equals', ['a'])] }), node: zoneA, want: mismatch },
  { name: 'terms are ORed', pod: makePod('p', { affinityTerms: [expr('zone', 'In', ['b']), expr('gen', 'In', ['5'])] }), node: zoneA, want: 'ok' },
  {
    name: 'expressions in one term are ANDed',
    pod: makePod('p', { affinityTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, { key: 'gen', operator: 'In', values: ['4'] }] }] }),
    node: zoneA,
    want: mismatch,
  },
  { name: 'an empty term matches nothing', pod: makePod('p', { affinityTerms: [{}] }), node: zoneA, want: mismatch },
  { name: 'no terms match nothing', pod: makePod('p', { affinityTerms: [] }), node: zoneA, want: mismatch },
  { name: 'matchFields metadata.name In', pod: makePod('p', { affinityTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }] }), node: {}, want: 'ok' },
  { name: 'matchFields metadata.name NotIn', pod: makePod('p', { affinityTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] }] }), node: {}, want: mismatch },
  { name: 'matchFields on another field never matches', pod: makePod('p', { affinityTerms: [{ matchFields: [{ key: 'metadata.uid', operator: 'Exists' }] }] }), node: {}, want: mismatch },
])

const gpuTaint = { key: 'gpu', value: 'true', effect: 'NoSchedule' }

filterTable(t, taintToleration, [
  { name: 'untainted node', pod: makePod('p'), node: {}, want: 'ok' },
  { name: 'NoSchedule taint, no toleration', pod: makePod('p'), node: { taints: [gpuTaint] }, want: 'node(s) had untolerated taint {gpu: true}' },
  { name: 'NoExecute taint, no toleration', pod: makePod('p'), node: { taints: [{ key: 'dedicated', effect: 'NoExecute' }] }, want: 'node(s) had untolerated taint {dedicated: }' },
  { name: 'PreferNoSchedule never blocks', pod: makePod('p'), node: { taints: [{ key: 'x', effect: 'PreferNoSchedule' }] }, want: 'ok' },
  { name: 'Equal with the same value', pod: makePod('p', { tolerations: [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }] }), node: { taints: [gpuTaint] }, want: 'ok' },
  { name: 'operator defaults to Equal', pod: makePod('p', { tolerations: [{ key: 'gpu', value: 'true' }] }), node: { taints: [gpuTaint] }, want: 'ok' },
  { name: 'Equal with another value', pod: makePod('p', { tolerations: [{ key: 'gpu', operator: 'Equal', value: 'false' }] }), node: { taints: [gpuTaint] }, want: 'node(s) had untolerated taint {gpu: true}' },
  { name: 'Exists ignores the value', pod: makePod('p', { tolerations: [{ key: 'gpu', operator: 'Exists' }] }), node: { taints: [gpuTaint] }, want: 'ok' },
  { name: 'effect must match when given', pod: makePod('p', { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoExecute' }] }), node: { taints: [gpuTaint] }, want: 'node(s) had untolerated taint {gpu: true}' },
  { name: 'empty key with Exists tolerates all', pod: makePod('p', { tolerations: [{ operator: 'Exists' }] }), node: { taints: [gpuTaint, { key: 'dedicated', effect: 'NoExecute' }] }, want: 'ok' },
  {
    name: 'every blocking taint must be tolerated',
    pod: makePod('p', { tolerations: [{ key: 'gpu', operator: 'Exists' }] }),
    node: { taints: [gpuTaint, { key: 'dedicated', value: 'db', effect: 'NoExecute' }] },
    want: 'node(s) had untolerated taint {dedicated: db}',
  },
])

const portsMsg = "node(s) didn't have free ports for the requested pod ports"

filterTable(t, nodePorts, [
  { name: 'no host ports', pod: makePod('p'), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80 }] })], want: 'ok' },
  { name: 'free port', pod: makePod('p', { hostPorts: [{ port: 8080 }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80 }] })], want: 'ok' },
  { name: 'same port and protocol', pod: makePod('p', { hostPorts: [{ port: 80 }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80 }] })], want: portsMsg },
  { name: 'same port, other protocol', pod: makePod('p', { hostPorts: [{ port: 53, protocol: 'UDP' }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 53 }] })], want: 'ok' },
  { name: 'different host IPs', pod: makePod('p', { hostPorts: [{ port: 80, hostIP: '10.0.0.1' }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80, hostIP: '10.0.0.2' }] })], want: 'ok' },
  { name: 'same host IP', pod: makePod('p', { hostPorts: [{ port: 80, hostIP: '10.0.0.1' }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80, hostIP: '10.0.0.1' }] })], want: portsMsg },
  { name: 'wildcard against a specific IP', pod: makePod('p', { hostPorts: [{ port: 80 }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80, hostIP: '10.0.0.1' }] })], want: portsMsg },
  { name: 'specific IP against a wildcard', pod: makePod('p', { hostPorts: [{ port: 80, hostIP: '10.0.0.1' }] }), node: {}, onNode: [makePod('a', { hostPorts: [{ port: 80 }] })], want: portsMsg },
])

t.test('toleratesTaint', async (t) => {
  const taint = { key: 'k', value: 'v', effect: 'NoSchedule' }
  const cases: Array<[object, boolean]> = [
    [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' }, true],
    [{ key: 'k', operator: 'Equal', value: 'v' }, true],
    [{ key: 'k', operator: 'Exists' }, true],
    [{ key: 'other', operator: 'Exists' }, false],
    [{ operator: 'Exists', effect: 'NoSchedule' }, true],
    [{ operator: 'Exists', effect: 'NoExecute' }, false],
    [{ key: 'k', operator: 'Bogus' }, false],
  ]
  for (const [tol, want] of cases) t.equal(toleratesTaint(tol, taint), want, JSON.stringify(tol))
})

t.test('resource scores per resource', async (t) => {
  // [requested, allocatable, least, most]
  const cases: Array<[number, number, number, number]> = [
    [0, 2000, 100, 0],
    [500, 2000, 75, 25],
    [2000, 2000, 0, 100],
    [3000, 2000, 0, 100],
    [1, 3, 66, 33],
    [100, 0, 0, 0],
  ]
  for (const [req, alloc, least, most] of cases) {
    t.equal(leastRequestedScore(req, alloc), least, `least ${req}/${alloc}`)
    t.equal(mostRequestedScore(req, alloc), most, `most ${req}/${alloc}`)
  }
})

t.test('least and most allocated over cpu and memory, with non-zero defaults', async (t) => {
  const node = info(makeNode('n1', { cpu: '2', memory: '8Gi' }), [makePod('a', { cpu: '1', memory: '2Gi' })])
  const score = (plugin: typeof leastAllocated | typeof mostAllocated, pod: KubeObject) => {
    const state: CycleState = new Map()
    plugin.preScore(state, pod)
    return plugin.score(state, pod, node)
  }
  // cpu 1.5/2 -> least 25, most 75; memory 3/8 Gi -> least 62, most 37.
  t.equal(score(leastAllocated, makePod('p', { cpu: '500m', memory: '1Gi' })), 43)
  t.equal(score(mostAllocated, makePod('p', { cpu: '500m', memory: '1Gi' })), 56)
  // No requests: counted as 100m and 200Mi, so the empty pod still weighs something.
  // cpu 1.1/2 -> 45; memory (2Gi + 200Mi)/8Gi -> 72.
  t.equal(score(leastAllocated, makePod('p')), 58)
})

t.test('owner spread: fewer pods of the same owner score higher', async (t) => {
  const owned = (name: string, owner: string) => makePod(name, { owner })
  const nodes = [
    info(makeNode('n1'), [owned('a', 'rs1'), owned('b', 'rs1')]),
    info(makeNode('n2'), [owned('c', 'rs1'), owned('d', 'rs2')]),
    info(makeNode('n3'), [owned('e', 'rs2'), makePod('f', { owner: 'rs1', terminating: true })]),
  ]
  const run = (pod: KubeObject) => {
    const state: CycleState = new Map()
    ownerSpread.preScore(state, pod)
    const scores = nodes.map((n) => ({ name: n.name, score: ownerSpread.score(state, pod, n) }))
    ownerSpread.normalizeScore(state, pod, scores)
    return scores.map((s) => s.score)
  }
  t.same(run(owned('p', 'rs1')), [0, 50, 100], 'terminating pods do not count')
  t.same(run(owned('p', 'rs2')), [100, 0, 0])
  t.same(run(owned('p', 'rs3')), [100, 100, 100], 'a new owner has no preference')
  t.same(run(makePod('p')), [100, 100, 100], 'a pod without a controller has no preference')
})
