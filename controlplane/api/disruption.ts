// What the disruption controller and the pods/eviction subresource share
// about PodDisruptionBudgets (policy/v1), pure: which pods a budget selects,
// IntOrString arithmetic, the DisruptionAllowed condition, and the eviction
// decision (Kubernetes' registry/core/pod/storage/eviction.go).

import { ApiError } from './errors.ts'
import type { KubeObject } from './types.ts'
import { selectorMatches } from './validation/meta.ts'

export const disruptionAllowedCondition = 'DisruptionAllowed'
export const reasons = { sufficientPods: 'SufficientPods', insufficientPods: 'InsufficientPods', syncFailed: 'SyncFailed' } as const
/** The pod condition an eviction or a taint eviction adds before it deletes (PodDisruptionConditions). */
export const disruptionTargetCondition = 'DisruptionTarget'
export const evictionMessage = "Cannot evict pod as it would violate the pod's disruption budget."
/** Kubernetes' MaxDisruptedPodSize: evictions the controller has not yet confirmed. */
export const maxDisruptedPods = 2000

export type IntOrString = number | string

const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')

/**
 * Does `pdb` cover `pod`? Same namespace; a missing selector covers
 * nothing, an empty one every pod of the namespace (policy/v1).
 */
export function pdbSelects(pdb: KubeObject, pod: KubeObject): boolean {
  if (pdb.metadata.namespace !== pod.metadata.namespace) return false
  const sel = pdb.spec?.selector
  if (sel === undefined || sel === null) return false
  return selectorMatches(sel, pod.metadata.labels ?? {})
}

/**
 * intstr.GetScaledValueFromIntOrPercent: an integer as it is, a percentage
 * of `total` rounded up or down. Throws on anything else.
 */
export function scaledValue(v: IntOrString, total: number, roundUp: boolean): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  const m = typeof v === 'string' ? /^(\d+)%$/.exec(v) : null
  if (!m) throw new Error(`invalid value for IntOrString: invalid value ${JSON.stringify(v)}: must be an integer or a percentage`)
  const scaled = (Number(m[1]) * total) / 100
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled)
}

export function isPodReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True')
}

/**
 * apimeta.SetStatusCondition for DisruptionAllowed: lastTransitionTime moves
 * only when the status changes.
 */
export function withDisruptionCondition(status: Record<string, any>, c: { status: 'True' | 'False'; reason: string; message: string }, now: number): Record<string, any> {
  const conditions: any[] = Array.isArray(status.conditions) ? status.conditions : []
  const old = conditions.find((x) => x?.type === disruptionAllowedCondition)
  const next = {
    type: disruptionAllowedCondition,
    status: c.status,
    observedGeneration: status.observedGeneration ?? 0,
    lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : time(now),
    reason: c.reason,
    message: c.message,
  }
  return { ...status, conditions: [...conditions.filter((x) => x?.type !== disruptionAllowedCondition), next] }
}

/** pdbhelper.UpdateDisruptionAllowedCondition: True/SufficientPods while an eviction is allowed. */
export function withAllowedCondition(status: Record<string, any>, now: number): Record<string, any> {
  const allowed = (status.disruptionsAllowed ?? 0) > 0
  return withDisruptionCondition(status, { status: allowed ? 'True' : 'False', reason: allowed ? reasons.sufficientPods : reasons.insufficientPods, message: '' }, now)
}

/**
 * The pod's conditions with DisruptionTarget=True (reason EvictionByEvictionAPI,
 * DeletionByTaintManager or DeletionByPodGC), as Kubernetes writes it before
 * it deletes a pod for a disruption.
 */
export function withDisruptionTarget(pod: KubeObject, reason: string, message: string, now: number): any[] {
  const conditions: any[] = (pod.status?.conditions ?? []).filter((c: any) => c?.type !== disruptionTargetCondition)
  conditions.push({ type: disruptionTargetCondition, status: 'True', lastProbeTime: null, lastTransitionTime: time(now), reason, message })
  return conditions
}

export type EvictionDecision =
  /** Delete without touching a budget; `pinned`: with the pod's resourceVersion as precondition (an unhealthy pod must still be unhealthy). */
  | { action: 'delete'; pinned: boolean }
  /** Write `status` to the budget (resourceVersion precondition), then delete. */
  | { action: 'decrement'; pdb: KubeObject; status: Record<string, any> }
  | { action: 'reject'; error: ApiError }

/** A 429; retryAfterSeconds > 0 also becomes a Retry-After header, which client-go honours by retrying itself. */
function tooManyRequests(message: string, retryAfterSeconds = 0): ApiError {
  return new ApiError('TooManyRequests', evictionMessage, { causes: [{ reason: 'DisruptionBudget', message }], ...(retryAfterSeconds ? { retryAfterSeconds } : {}) })
}

/**
 * The eviction decision for `pod` given the budgets of its namespace.
 * Pods that are finished, pending or already terminating go without a
 * budget check; more than one budget is an error (500, as Kubernetes); an
 * unready pod goes without consuming budget when the policy is AlwaysAllow,
 * or (IfHealthyBudget, the default) when the budget is met anyway.
 */
export function planEviction(pod: KubeObject, budgets: readonly KubeObject[], now: number, dryRun = false): EvictionDecision {
  const phase = pod.status?.phase
  if (phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending' || pod.metadata.deletionTimestamp) return { action: 'delete', pinned: false }
  const pdbs = budgets.filter((b) => pdbSelects(b, pod))
  if (pdbs.length === 0) return { action: 'delete', pinned: false }
  if (pdbs.length > 1) {
    return { action: 'reject', error: new ApiError('InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.') }
  }
  const pdb = pdbs[0]!
  const st = pdb.status ?? {}
  if (!isPodReady(pod)) {
    if (pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow') return { action: 'delete', pinned: true }
    if ((st.currentHealthy ?? 0) >= (st.desiredHealthy ?? 0) && (st.desiredHealthy ?? 0) > 0) return { action: 'delete', pinned: true }
  }
  const name = pdb.metadata.name
  if ((st.observedGeneration ?? 0) < (pdb.metadata.generation ?? 0)) return { action: 'reject', error: tooManyRequests(`The disruption budget ${name} is still being processed by the server.`, 10) }
  const allowed = st.disruptionsAllowed ?? 0
  if (allowed < 0) return { action: 'reject', error: new ApiError('Forbidden', `poddisruptionbudgets.policy "${name}" is forbidden: pdb disruptions allowed is negative`) }
  if (Object.keys(st.disruptedPods ?? {}).length > maxDisruptedPods) {
    return { action: 'reject', error: new ApiError('Forbidden', `poddisruptionbudgets.policy "${name}" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller`) }
  }
  if (allowed === 0) return { action: 'reject', error: tooManyRequests(`The disruption budget ${name} needs ${st.desiredHealthy ?? 0} healthy pods and has ${st.currentHealthy ?? 0} currently`) }
  let status: Record<string, any> = { ...st, disruptionsAllowed: allowed - 1 }
  if (allowed - 1 === 0) status = withAllowedCondition(status, now)
  if (!dryRun) status.disruptedPods = { ...(st.disruptedPods ?? {}), [pod.metadata.name!]: time(now) }
  return { action: 'decrement', pdb, status }
}
