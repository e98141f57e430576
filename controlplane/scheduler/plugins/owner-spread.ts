// OwnerSpread: spread the pods of one controller (the ownerReference with
// controller: true, e.g. a ReplicaSet) across nodes, like kube-scheduler's
// SelectorSpread on the node level: the node with fewer pods of the same
// owner scores higher. Weighted above the resource score in the default
// profile, so 6 replicas over 3 equal nodes go 2/2/2.
//
// score = pods of the owner on the node; normalised to
// 100 * (max - count) / max, and 100 everywhere when no node has one yet.
// Pods without a controller score 100 everywhere (no preference).

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, NodeInfo, NodeScore, ScorePlugin } from '../framework.ts'
import { maxNodeScore } from '../status.ts'
import { controllerUid } from '../resources.ts'

const name = 'OwnerSpread'

function preScore(state: CycleState, pod: KubeObject): void {
  state.set(name, controllerUid(pod))
}

function score(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): number {
  const owner = state.get(name) as string | undefined
  return owner === undefined ? 0 : (nodeInfo.controllerPods.get(owner) ?? 0)
}

export function normalizeSpread(scores: NodeScore[]): void {
  let max = 0
  for (const s of scores) if (s.score > max) max = s.score
  for (const s of scores) s.score = max === 0 ? maxNodeScore : Math.floor((maxNodeScore * (max - s.score)) / max)
}

export const ownerSpread = {
  name,
  weight: 2,
  preScore,
  score,
  normalizeScore: (_state: CycleState, _pod: KubeObject, scores: NodeScore[]) => normalizeSpread(scores),
} satisfies ScorePlugin
