// Shared by the two resource scorers: the pod's non-zero cpu/memory request
// (computed once per cycle in preScore) added to what the node already
// carries, scored per resource and averaged with equal weights, in integer
// arithmetic like kube-scheduler's NodeResourcesFit scoring strategies.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, NodeInfo, Resources } from '../framework.ts'
import { podNonZeroRequests } from '../resources.ts'

const key = 'resource-score'

export function preScoreResources(state: CycleState, pod: KubeObject): void {
  state.set(key, podNonZeroRequests(pod))
}

/** The mean over cpu and memory of `perResource(requested, allocatable)`. */
export function resourceScore(state: CycleState, pod: KubeObject, nodeInfo: NodeInfo, perResource: (requested: number, allocatable: number) => number): number {
  let req = state.get(key) as Resources | undefined
  if (!req) state.set(key, (req = podNonZeroRequests(pod)))
  const cpu = perResource(nodeInfo.nonZeroRequested.milliCPU + req.milliCPU, nodeInfo.allocatable.milliCPU)
  const mem = perResource(nodeInfo.nonZeroRequested.memory + req.memory, nodeInfo.allocatable.memory)
  return Math.floor((cpu + mem) / 2)
}
