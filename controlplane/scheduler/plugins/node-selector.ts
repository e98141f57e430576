// NodeSelector: every key=value of spec.nodeSelector is a label of the node.
// It shares its reason with NodeAffinity, as in Kubernetes (where both live
// in one plugin), so the counts in the pod's message add up.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo, Status } from '../framework.ts'
import { success, unschedulable } from '../status.ts'

export const reasonAffinityMismatch = "node(s) didn't match Pod's node affinity/selector"

function filter(_state: CycleState, pod: KubeObject, nodeInfo: NodeInfo): Status {
  const sel = pod.spec?.nodeSelector
  if (!sel || typeof sel !== 'object') return success
  const labels: Record<string, string> = nodeInfo.node.metadata.labels ?? {}
  for (const [k, v] of Object.entries(sel)) if (!Object.hasOwn(labels, k) || labels[k] !== v) return unschedulable(reasonAffinityMismatch)
  return success
}

export const nodeSelector = { name: 'NodeSelector', filter } satisfies FilterPlugin
