// One scheduling cycle, as a pure function: a pod, the nodes and a profile
// in; the chosen node, or why the pod fits nowhere, out. Phases: preFilter,
// findFeasible, prioritize, select (framework.ts explains the plugins).
//
// Like kube-scheduler, a cycle over a large cluster stops filtering once it
// has found enough feasible nodes (percentageOfNodesToScore, adaptive by
// default: all nodes up to 100, then 50% minus 1% per 125 nodes, at least
// 5% and at least 100 nodes) and starts where the previous cycle stopped,
// so every node gets its turn. A pod that fits nowhere is checked against
// every node, so its message covers them all.

import type { KubeObject } from '../api/types.ts'
import type { CycleState, NodeInfo, NodeScore, Profile, Status } from './framework.ts'
import { volumeLookupKey, type VolumeLookup } from './plugins/volume-binding.ts'

export interface CycleInput {
  pod: KubeObject
  nodes: readonly NodeInfo[]
  profile: Profile
  /** Index in `nodes` to start filtering at (the previous cycle's nextStartIndex). */
  startIndex?: number
  /** 0 (adaptive, the default) or 1..100. */
  percentageOfNodesToScore?: number
  /** The cluster's claims, volumes and classes, for VolumeBinding (absent: pods' claims are not checked). */
  volumes?: VolumeLookup
}

/** Per reason, how many nodes gave it; `numNodes` is every node considered. */
export interface FitError {
  numNodes: number
  reasons: Map<string, number>
}

export type CycleResult =
  | { node: string; score: number; feasible: number; evaluated: number; nextStartIndex: number }
  | { fitError: FitError; evaluated: number; nextStartIndex: number }

const minFeasibleNodesToFind = 100
const minFeasibleNodesPercentage = 5

/** How many feasible nodes are enough (kube-scheduler's numFeasibleNodesToFind). */
export function numFeasibleNodesToFind(numAllNodes: number, percentage = 0): number {
  if (numAllNodes < minFeasibleNodesToFind || percentage >= 100) return numAllNodes
  let pct = percentage
  if (pct <= 0) pct = Math.max(minFeasibleNodesPercentage, 50 - Math.floor(numAllNodes / 125))
  const n = Math.floor((numAllNodes * pct) / 100)
  return Math.max(n, minFeasibleNodesToFind)
}

export function runCycle(input: CycleInput): CycleResult {
  const { pod, nodes, profile } = input
  const start = nodes.length ? (input.startIndex ?? 0) % nodes.length : 0
  const state: CycleState = new Map()
  if (input.volumes) state.set(volumeLookupKey, input.volumes)
  const failed = runPreFilter(state, pod, profile)
  if (failed) {
    const reasons = new Map(failed.map((r) => [r, nodes.length]))
    return { fitError: { numNodes: nodes.length, reasons }, evaluated: 0, nextStartIndex: start }
  }
  const want = numFeasibleNodesToFind(nodes.length, input.percentageOfNodesToScore)
  const { feasible, reasons, evaluated } = findFeasible({ state, pod, nodes, profile, start, want })
  const nextStartIndex = nodes.length ? (start + evaluated) % nodes.length : 0
  if (feasible.length === 0) return { fitError: { numNodes: nodes.length, reasons }, evaluated, nextStartIndex }
  const scores = prioritize(state, pod, feasible, profile)
  const best = selectHost(scores)
  return { node: best.name, score: best.score, feasible: feasible.length, evaluated, nextStartIndex }
}

/** The reasons of the first PreFilter that rejects the pod outright, if any. */
function runPreFilter(state: CycleState, pod: KubeObject, profile: Profile): string[] | undefined {
  for (const p of profile.filters) {
    const s = p.preFilter?.(state, pod)
    if (s && s.code !== 'Success') return s.reasons
  }
  return undefined
}

function runFilters(state: CycleState, pod: KubeObject, node: NodeInfo, profile: Profile): Status | undefined {
  for (const p of profile.filters) {
    const s = p.filter(state, pod, node)
    if (s.code !== 'Success') return s
  }
  return undefined
}

function findFeasible(o: { state: CycleState; pod: KubeObject; nodes: readonly NodeInfo[]; profile: Profile; start: number; want: number }) {
  const feasible: NodeInfo[] = []
  const reasons = new Map<string, number>()
  let evaluated = 0
  for (; evaluated < o.nodes.length && feasible.length < o.want; evaluated++) {
    const node = o.nodes[(o.start + evaluated) % o.nodes.length]!
    const s = runFilters(o.state, o.pod, node, o.profile)
    if (!s) feasible.push(node)
    else if (s.code === 'Unschedulable') for (const r of s.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1)
  }
  return { feasible, reasons, evaluated }
}

/** Weighted sum of every score plugin, per feasible node, in the order of `feasible`. */
export function prioritize(state: CycleState, pod: KubeObject, feasible: readonly NodeInfo[], profile: Profile): NodeScore[] {
  const totals: NodeScore[] = feasible.map((n) => ({ name: n.name, score: 0 }))
  // One feasible node needs no ranking (kube-scheduler skips scoring too).
  if (feasible.length === 1) return totals
  for (const p of profile.scores) {
    p.preScore?.(state, pod, feasible)
    const scores: NodeScore[] = feasible.map((n) => ({ name: n.name, score: p.score(state, pod, n) }))
    p.normalizeScore?.(state, pod, scores)
    for (let i = 0; i < scores.length; i++) totals[i]!.score += scores[i]!.score * p.weight
  }
  return totals
}

/** The highest total; among equal totals the node whose name sorts first (deterministic, no randomness). */
export function selectHost(scores: readonly NodeScore[]): NodeScore {
  let best = scores[0]!
  for (const s of scores) if (s.score > best.score || (s.score === best.score && s.name < best.name)) best = s
  return best
}

/**
 * kube-scheduler's FitError text: `0/3 nodes are available: 1 node(s) didn't
 * match Pod's node affinity/selector, 2 Insufficient cpu.` One entry per
 * reason with the number of nodes that gave it, sorted as strings.
 */
export function fitErrorMessage(err: FitError): string {
  if (err.numNodes === 0) return 'no nodes available to schedule pods'
  const parts = [...err.reasons].map(([reason, n]) => `${n} ${reason}`).sort()
  return `0/${err.numNodes} nodes are available: ${parts.join(', ')}.`
}
