// NodeResourcesMostAllocated (the bin-packing profile): prefer the node
// that is fullest after placing the pod, so whole nodes stay free.
// Per resource: requested * 100 / allocatable, capped at 100.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, NodeInfo, ScorePlugin } from '../framework.ts'
import { maxNodeScore } from '../status.ts'
import { preScoreResources, resourceScore } from './resource-score.ts'

export function mostRequestedScore(requested: number, allocatable: number): number {
  if (allocatable <= 0) return 0
  return Math.floor((Math.min(requested, allocatable) * maxNodeScore) / allocatable)
}

export const mostAllocated = {
  name: 'NodeResourcesMostAllocated',
  weight: 1,
  preScore: (state: CycleState, pod: KubeObject) => preScoreResources(state, pod),
  score: (state: CycleState, pod: KubeObject, nodeInfo: NodeInfo) => resourceScore(state, pod, nodeInfo, mostRequestedScore),
} satisfies ScorePlugin
