// NodeResourcesLeastAllocated (the default profile): prefer the node with
// the most cpu and memory left after placing the pod, which spreads load.
// Per resource: (allocatable - requested) * 100 / allocatable; a node the
// pod would overcommit scores 0.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, NodeInfo, ScorePlugin } from '../framework.ts'
import { maxNodeScore } from '../status.ts'
import { preScoreResources, resourceScore } from './resource-score.ts'

export function leastRequestedScore(requested: number, allocatable: number): number {
  if (allocatable <= 0 || requested > allocatable) return 0
  return Math.floor(((allocatable - requested) * maxNodeScore) / allocatable)
}

export const leastAllocated = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,
  preScore: (state: CycleState, pod: KubeObject) => preScoreResources(state, pod),
  score: (state: CycleState, pod: KubeObject, nodeInfo: NodeInfo) => resourceScore(state, pod, nodeInfo, leastRequestedScore),
} satisfies ScorePlugin
