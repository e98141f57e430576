// NodeResourcesFit: the pod's requests fit into what the node has left
// (allocatable minus the requests of its pods), and one more pod fits under
// allocatable.pods. Unset requests count 0 here (the non-zero defaults are
// for scoring only). Extended resources and hugepages are checked like
// cpu; ephemeral-storage only when the node reports it.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo, Resources, Status } from '../framework.ts'
import { podRequests } from '../resources.ts'
import { success, unschedulable } from '../status.ts'

const name = 'NodeResourcesFit'

export const reasonTooManyPods = 'Too many pods'

export function reasonInsufficient(resource: string): string {
  return `Insufficient ${resource}`
}

function preFilter(state: CycleState, pod: KubeObject): undefined {
  state.set(name, podRequests(pod))
  return undefined
}

/** Every reason the pod does not fit, in Kubernetes' order (pods, cpu, memory, then the rest). */
export function insufficientResources(req: Resources, nodeInfo: NodeInfo): string[] {
  const out: string[] = []
  if (nodeInfo.pods.size + 1 > nodeInfo.allowedPodNumber) out.push(reasonTooManyPods)
  const { allocatable: alloc, requested: used } = nodeInfo
  if (req.milliCPU > 0 && req.milliCPU > alloc.milliCPU - used.milliCPU) out.push(reasonInsufficient('cpu'))
  if (req.memory > 0 && req.memory > alloc.memory - used.memory) out.push(reasonInsufficient('memory'))
  for (const [res, want] of Object.entries(req.scalar)) {
    if (res === 'ephemeral-storage' && alloc.scalar[res] === undefined) continue
    if (want > (alloc.scalar[res] ?? 0) - (used.scalar[res] ?? 0)) out.push(reasonInsufficient(res))
  }
  return out
}

function filter(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): Status {
  const reasons = insufficientResources(state.get(name) as Resources, nodeInfo)
  return reasons.length ? unschedulable(...reasons) : success
}

export const nodeResourcesFit = { name, preFilter, filter } satisfies FilterPlugin
