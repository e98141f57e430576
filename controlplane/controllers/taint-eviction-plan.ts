// Which pods a node's NoExecute taints evict, and when, as Kubernetes'
// taint eviction controller (NoExecuteTaintManager) decides, pure:
//  - a pod with a NoExecute taint it does not tolerate goes at once;
//  - a pod tolerating every one goes after the shortest tolerationSeconds
//    among the tolerations used (the first matching one per taint; 0 or
//    less is at once), and never when none of them sets seconds;
//  - the time counts from when the pod was first seen needing eviction
//    (the caller's clock), so a new leader starts counting again.
// The node lifecycle controller's own taints (not-ready, unreachable) stay
// with node-lifecycle.ts, which gives pods without a toleration of them the
// podEvictionTimeout instead of "at once" (Kubernetes' DefaultTolerationSeconds
// admission does the same with 300 s tolerations).

import type { KubeObject } from '../api/types.ts'
import { podTolerations, toleratesTaint, type Taint, type Toleration } from '../scheduler/plugins/tolerations.ts'

export const lifecycleTaintKeys: ReadonlySet<string> = new Set(['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'])

/** The node's NoExecute taints this controller acts on (an operator's, not node lifecycle's). */
export function operatorNoExecuteTaints(node: KubeObject): Taint[] {
  const taints: any[] = Array.isArray(node.spec?.taints) ? node.spec.taints : []
  return taints.filter((t) => t && t.effect === 'NoExecute' && typeof t.key === 'string' && !lifecycleTaintKeys.has(t.key))
}

/**
 * How long `pod` may stay on a node with these NoExecute taints: 0 when one
 * is not tolerated, undefined (forever) when no taint or no used toleration
 * sets tolerationSeconds, else the shortest of them in ms.
 */
export function tolerationDelayMs(pod: KubeObject, taints: readonly Taint[]): number | undefined {
  if (taints.length === 0) return undefined
  const tolerations = podTolerations(pod)
  const used: Toleration[] = []
  for (const taint of taints) {
    const t = tolerations.find((x) => toleratesTaint(x, taint))
    if (!t) return 0
    used.push(t)
  }
  let min: number | undefined
  for (const t of used as Array<Toleration & { tolerationSeconds?: unknown }>) {
    if (t.tolerationSeconds === undefined || t.tolerationSeconds === null) continue
    const s = Number(t.tolerationSeconds)
    if (!(s > 0)) return 0
    min = Math.min(min ?? Infinity, s * 1000)
  }
  return min
}

export interface TaintEvictionInput {
  node: KubeObject
  /** Pods bound to the node. */
  pods: readonly KubeObject[]
  /** How long (the caller's clock) this pod has been seen needing eviction; called only for pods with a finite delay. */
  pendingForMs(pod: KubeObject): number
}

export interface TaintEvictionPlan {
  evict: KubeObject[]
  /** Pods that will have to go later (their uid), for the caller's bookkeeping. */
  pending: Set<string>
  /** Look again after this long (the next eviction due). */
  recheckAfterMs?: number
}

export function planTaintEvictions(input: TaintEvictionInput): TaintEvictionPlan {
  const taints = operatorNoExecuteTaints(input.node)
  const plan: TaintEvictionPlan = { evict: [], pending: new Set() }
  if (taints.length === 0) return plan
  for (const pod of input.pods) {
    const phase = pod.status?.phase
    if (pod.metadata.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed') continue
    const delay = tolerationDelayMs(pod, taints)
    if (delay === undefined) continue
    plan.pending.add(pod.metadata.uid!)
    const left = delay - input.pendingForMs(pod)
    if (left <= 0) plan.evict.push(pod)
    else plan.recheckAfterMs = Math.min(plan.recheckAfterMs ?? Infinity, left)
  }
  return plan
}
