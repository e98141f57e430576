// TaintToleration: every NoSchedule and NoExecute taint of the node must be
// tolerated by the pod. PreferNoSchedule taints never block a pod (and are
// not scored yet).

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo, Status } from '../framework.ts'
import { success, unschedulable } from '../status.ts'
import { podTolerations, tolerates, type Taint } from './tolerations.ts'

const name = 'TaintToleration'

/** Kubernetes' wording, with the first untolerated taint (`{key: value}`). */
export function reasonUntolerated(t: Taint): string {
  return `node(s) had untolerated taint {${t.key}: ${t.value ?? ''}}`
}

function filter(state: CycleState, pod: KubeObject, nodeInfo: NodeInfo): Status {
  const taints = nodeInfo.node.spec?.taints
  if (!Array.isArray(taints) || taints.length === 0) return success
  let tolerations = state.get(name) as ReturnType<typeof podTolerations> | undefined
  if (!tolerations) state.set(name, (tolerations = podTolerations(pod)))
  for (const t of taints as Taint[]) {
    if (!t || (t.effect !== 'NoSchedule' && t.effect !== 'NoExecute')) continue
    if (!tolerates(tolerations, t)) return unschedulable(reasonUntolerated(t))
  }
  return success
}

export const taintToleration = { name, filter } satisfies FilterPlugin
