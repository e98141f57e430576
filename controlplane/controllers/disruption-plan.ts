// The status of a PodDisruptionBudget as Kubernetes' disruption controller
// computes it (pkg/controller/disruption), pure:
//  - expectedPods: the pods selected (minAvailable an integer), else the sum
//    of the scale of the pods' controllers (a ReplicaSet of a Deployment
//    counts as the Deployment); a pod without a controller is "unmanaged"
//    and left out; a controller without a scale is an error (SyncFailed);
//  - desiredHealthy: minAvailable (scaled, rounded up), or expectedPods
//    minus maxUnavailable (scaled, rounded up), never below 0;
//  - currentHealthy: Ready pods that are neither terminating nor listed in
//    disruptedPods (evicted, not yet seen deleted);
//  - disruptionsAllowed: currentHealthy - desiredHealthy, 0 when negative or
//    when nothing is expected;
//  - disruptedPods: entries older than 2 minutes (the pod was never deleted)
//    and of pods gone or terminating are dropped.

import { pdbSelects, scaledValue, withAllowedCondition, withDisruptionCondition, reasons, isPodReady } from '../api/disruption.ts'
import type { KubeObject, OwnerReference } from '../api/types.ts'

/** How long an eviction may take before its pod counts again (Kubernetes' DeletionTimeout). */
export const deletionTimeoutMs = 2 * 60_000

/** The scale of a pod's controller: its uid (several pods share one) and replicas; undefined when it has no scale. */
export type ScaleLookup = (namespace: string, ref: OwnerReference) => { uid: string; replicas: number } | undefined

export interface DisruptionInput {
  pdb: KubeObject
  /** The pods of the budget's namespace (filtered here by its selector). */
  pods: readonly KubeObject[]
  scaleOf: ScaleLookup
  now: number
}

export interface DisruptionPlan {
  /** The new status; undefined when the stored one is already right. */
  status?: Record<string, any>
  /** Events to record on the budget. */
  events: Array<{ type: 'Normal' | 'Warning'; reason: string; message: string }>
  /** Sync again after this long (a disruptedPods entry expires). */
  recheckAfterMs?: number
}

interface Expected {
  expectedCount: number
  desiredHealthy: number
  unmanaged: string[]
}

function expectedScale(pdb: KubeObject, pods: readonly KubeObject[], scaleOf: ScaleLookup): { count: number; unmanaged: string[] } {
  const seen = new Set<string>()
  const unmanaged: string[] = []
  let count = 0
  for (const pod of pods) {
    const ref = (pod.metadata.ownerReferences ?? []).find((r) => r.controller)
    if (!ref) {
      unmanaged.push(pod.metadata.name!)
      continue
    }
    const scale = scaleOf(pdb.metadata.namespace!, ref)
    if (!scale) throw new Error(`found no controllers for pod "${pod.metadata.name}"`)
    if (seen.has(scale.uid)) continue
    seen.add(scale.uid)
    count += scale.replicas
  }
  return { count, unmanaged }
}

/** getExpectedPodCount: what the budget counts on and how many must stay healthy. */
export function expectedPodCount(pdb: KubeObject, pods: readonly KubeObject[], scaleOf: ScaleLookup): Expected {
  const { minAvailable, maxUnavailable } = pdb.spec ?? {}
  if (maxUnavailable !== undefined && maxUnavailable !== null) {
    const { count, unmanaged } = expectedScale(pdb, pods, scaleOf)
    const desired = count - scaledValue(maxUnavailable, count, true)
    return { expectedCount: count, desiredHealthy: Math.max(0, desired), unmanaged }
  }
  if (typeof minAvailable === 'number') return { expectedCount: pods.length, desiredHealthy: minAvailable, unmanaged: [] }
  if (typeof minAvailable === 'string') {
    const { count, unmanaged } = expectedScale(pdb, pods, scaleOf)
    return { expectedCount: count, desiredHealthy: scaledValue(minAvailable, count, true), unmanaged }
  }
  return { expectedCount: 0, desiredHealthy: 0, unmanaged: [] }
}

/** buildDisruptedPodMap: entries still waiting for their pod's deletion, and when the first of them expires. */
export function liveDisruptedPods(pdb: KubeObject, pods: readonly KubeObject[], now: number): { disrupted: Record<string, string>; expired: string[]; recheckAfterMs?: number } {
  const given: Record<string, string> = pdb.status?.disruptedPods ?? {}
  const disrupted: Record<string, string> = {}
  const expired: string[] = []
  let recheck: number | undefined
  for (const pod of pods) {
    const name = pod.metadata.name!
    if (pod.metadata.deletionTimestamp || !given[name]) continue
    const due = Date.parse(given[name]) + deletionTimeoutMs
    if (due < now) {
      expired.push(name)
      continue
    }
    disrupted[name] = given[name]
    recheck = Math.min(recheck ?? Infinity, due - now)
  }
  return { disrupted, expired, ...(recheck !== undefined ? { recheckAfterMs: recheck } : {}) }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

export function planDisruptionStatus(input: DisruptionInput): DisruptionPlan {
  const { pdb, now } = input
  const pods = input.pods.filter((p) => pdbSelects(pdb, p))
  const events: DisruptionPlan['events'] = []
  const old: Record<string, any> = pdb.status ?? {}
  if (pods.length === 0) events.push({ type: 'Normal', reason: 'NoPods', message: 'No matching pods found' })
  let expected: Expected
  try {
    expected = expectedPodCount(pdb, pods, input.scaleOf)
  } catch (e) {
    const message = (e as Error).message
    events.push({ type: 'Warning', reason: 'CalculateExpectedPodCountFailed', message: `Failed to calculate the number of expected pods: ${message}` })
    const failed = withDisruptionCondition({ ...old, disruptionsAllowed: 0 }, { status: 'False', reason: reasons.syncFailed, message }, now)
    return same(failed, old) ? { events: [] } : { status: failed, events }
  }
  if (expected.unmanaged.length) events.push({ type: 'Warning', reason: 'UnmanagedPods', message: `Pods that have no controller are not counted in the expected number of pods: ${expected.unmanaged.join(', ')}` })
  const { disrupted, expired, recheckAfterMs } = liveDisruptedPods(pdb, pods, now)
  for (const name of expired) events.push({ type: 'Warning', reason: 'NotDeleted', message: `Pod ${pdb.metadata.namespace}/${name} was expected to be deleted but it wasn't, updating pdb` })
  const currentHealthy = pods.filter((p) => !p.metadata.deletionTimestamp && !disrupted[p.metadata.name!] && isPodReady(p)).length
  let allowed = currentHealthy - expected.desiredHealthy
  if (expected.expectedCount <= 0 || allowed <= 0) allowed = 0
  const base: Record<string, any> = {
    ...(old.conditions ? { conditions: old.conditions } : {}),
    observedGeneration: pdb.metadata.generation ?? 0,
    ...(Object.keys(disrupted).length ? { disruptedPods: disrupted } : {}),
    disruptionsAllowed: allowed,
    currentHealthy,
    desiredHealthy: expected.desiredHealthy,
    expectedPods: expected.expectedCount,
  }
  const status = withAllowedCondition(base, now)
  const unchanged = (['observedGeneration', 'disruptionsAllowed', 'currentHealthy', 'desiredHealthy', 'expectedPods', 'conditions'] as const).every((k) => same(status[k], old[k])) && same(status.disruptedPods ?? {}, old.disruptedPods ?? {})
  return { status: unchanged ? undefined : status, events: unchanged ? [] : events, ...(recheckAfterMs !== undefined ? { recheckAfterMs } : {}) }
}
