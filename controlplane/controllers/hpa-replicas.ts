// The HPA's arithmetic, as kube-controller-manager's podautoscaler computes
// it. Pure: the replica calculator for a resource metric (tolerance 0.1,
// missing metrics and not-yet-ready pods), and the behavior (stabilization
// windows over past recommendations, scale-up and scale-down rate policies).

import { parseQuantity } from '../api/validation.ts'
import type { ScalingRules } from '../api/autoscaling.ts'
import type { KubeObject } from '../api/types.ts'

export const tolerance = 0.1
/** Pods started less than this ago may show boot-time CPU (Kubernetes' --horizontal-pod-autoscaler-cpu-initialization-period). */
export const cpuInitializationPeriodMs = 5 * 60_000
/** Readiness flapping right after start is ignored (--horizontal-pod-autoscaler-initial-readiness-delay). */
export const initialReadinessDelayMs = 30_000

export interface PodMetric {
  /** milli-cores for cpu, bytes for memory */
  value: number
  timestampMs: number
  windowMs: number
}

export class ReplicaCalcError extends Error {}

const ms = (t: unknown) => (typeof t === 'string' ? Date.parse(t) : NaN)

/** Which pods count: ready ones with metrics, unready, missing and ignored (groupPods). */
export function groupPods(pods: readonly KubeObject[], metrics: ReadonlyMap<string, PodMetric>, resource: string, now: number) {
  let readyPodCount = 0
  const unready = new Set<string>()
  const missing = new Set<string>()
  const ignored = new Set<string>()
  for (const pod of pods) {
    const name = pod.metadata.name!
    if (pod.metadata.deletionTimestamp || pod.status?.phase === 'Failed') {
      ignored.add(name)
      continue
    }
    if (pod.status?.phase === 'Pending') {
      unready.add(name)
      continue
    }
    const metric = metrics.get(name)
    if (!metric) {
      missing.add(name)
      continue
    }
    if (resource === 'cpu') {
      const cond = (pod.status?.conditions ?? []).find((c: any) => c?.type === 'Ready')
      const start = ms(pod.status?.startTime)
      let isUnready: boolean
      if (!cond || !Number.isFinite(start)) isUnready = true
      else if (start + cpuInitializationPeriodMs > now) {
        isUnready = cond.status === 'False' || metric.timestampMs < ms(cond.lastTransitionTime) + metric.windowMs
      } else {
        isUnready = cond.status === 'False' && start + initialReadinessDelayMs > ms(cond.lastTransitionTime)
      }
      if (isUnready) {
        unready.add(name)
        continue
      }
    }
    readyPodCount++
  }
  return { readyPodCount, unready, missing, ignored }
}

/** Sum of the pods' container requests for the resource (milli-cores for cpu, bytes else); throws when a container has none. */
export function podRequests(pods: readonly KubeObject[], resource: string, container?: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const pod of pods) {
    let sum = 0
    for (const c of pod.spec?.containers ?? []) {
      if (container && c.name !== container) continue
      const q = c.resources?.requests?.[resource]
      if (q === undefined) throw new ReplicaCalcError(`missing request for ${resource} in container ${c.name} of Pod ${pod.metadata.name}`)
      const v = parseQuantity(String(q)) ?? 0
      sum += resource === 'cpu' ? Math.round(v * 1000) : v
    }
    out.set(pod.metadata.name!, sum)
  }
  return out
}

/** GetResourceUtilizationRatio: integer percent of the summed requests, and the ratio to the target. */
export function utilizationRatio(metrics: ReadonlyMap<string, PodMetric>, requests: ReadonlyMap<string, number>, target: number) {
  let metricsTotal = 0
  let requestsTotal = 0
  let entries = 0
  for (const [pod, m] of metrics) {
    const r = requests.get(pod)
    if (r === undefined) continue
    metricsTotal += m.value
    requestsTotal += r
    entries++
  }
  if (requestsTotal === 0) throw new ReplicaCalcError('no metrics returned matched known pods')
  const utilization = Math.trunc((metricsTotal * 100) / requestsTotal)
  return { ratio: utilization / target, utilization, rawAverage: Math.trunc(metricsTotal / entries) }
}

export interface ReplicaProposal {
  replicas: number
  /** Percent of request (Utilization targets). */
  utilization: number
  /** Average value per pod (milli-cores or bytes). */
  rawAverage: number
}

interface CalcInput {
  currentReplicas: number
  resource: string
  pods: readonly KubeObject[]
  metrics: ReadonlyMap<string, PodMetric>
  now: number
  tolerance?: number
}

/**
 * The replica calculator's shared steps: group the pods, drop ignored and
 * unready ones, propose from the ready ones, and when pods lack metrics (or
 * unready pods would make a scale-up), fill them in the direction that
 * dampens the change and propose again (GetResourceReplicas' shape).
 */
function calculate(o: CalcInput, ratioOf: (m: ReadonlyMap<string, PodMetric>) => { ratio: number; utilization: number; rawAverage: number }, missingValue: (pod: string, ratio: number) => number | undefined): ReplicaProposal {
  const tol = o.tolerance ?? tolerance
  if (o.pods.length === 0) throw new ReplicaCalcError('no pods returned by selector while calculating replica count')
  const { readyPodCount, unready, missing, ignored } = groupPods(o.pods, o.metrics, o.resource, o.now)
  const metrics = new Map(o.metrics)
  for (const p of [...ignored, ...unready]) metrics.delete(p)
  if (metrics.size === 0) throw new ReplicaCalcError('did not receive metrics for targeted pods (pods might be unready)')
  const { ratio, utilization, rawAverage } = ratioOf(metrics)
  const keep = { replicas: o.currentReplicas, utilization, rawAverage }
  const scaleUpWithUnready = unready.size > 0 && ratio > 1
  if (!scaleUpWithUnready && missing.size === 0) {
    if (Math.abs(1 - ratio) <= tol) return keep
    return { replicas: Math.ceil(ratio * readyPodCount), utilization, rawAverage }
  }
  for (const p of missing) {
    const value = missingValue(p, ratio)
    if (value !== undefined) metrics.set(p, { value, timestampMs: o.now, windowMs: 0 })
  }
  if (scaleUpWithUnready) for (const p of unready) metrics.set(p, { value: 0, timestampMs: o.now, windowMs: 0 })
  const next = ratioOf(metrics).ratio
  if (Math.abs(1 - next) <= tol || (ratio < 1 && next > 1) || (ratio > 1 && next < 1)) return keep
  const replicas = Math.ceil(next * metrics.size)
  if ((next < 1 && replicas > o.currentReplicas) || (next > 1 && replicas < o.currentReplicas)) return keep
  return { replicas, utilization, rawAverage }
}

/** GetResourceReplicas: the proposal of one resource Utilization metric. */
export function resourceReplicas(o: CalcInput & { targetUtilization: number; container?: string }): ReplicaProposal {
  const requests = o.pods.length ? podRequests(o.pods, o.resource, o.container) : new Map<string, number>()
  return calculate(o, (m) => utilizationRatio(m, requests, o.targetUtilization), (pod, ratio) => {
    const req = requests.get(pod) ?? 0
    // Scaling down: a pod without metrics is assumed at its full request (or the target, above 100%); scaling up: idle.
    if (ratio < 1) return o.targetUtilization > 100 ? (req * o.targetUtilization) / 100 : req
    return ratio > 1 ? 0 : undefined
  })
}

/** GetRawResourceReplicas / AverageValue: usage per pod against a target per pod. */
export function averageValueReplicas(o: CalcInput & { targetAverage: number }): ReplicaProposal {
  const ratioOf = (m: ReadonlyMap<string, PodMetric>) => {
    const total = [...m.values()].reduce((s, x) => s + x.value, 0)
    return { ratio: total / (o.targetAverage * m.size), utilization: 0, rawAverage: Math.trunc(total / m.size) }
  }
  return calculate(o, ratioOf, (_, ratio) => (ratio < 1 ? o.targetAverage : 0))
}

// ---- behavior ---------------------------------------------------------------

export interface Recommendation {
  replicas: number
  atMs: number
}

export interface ScaleEvent {
  change: number
  atMs: number
}

/** stabilizeRecommendationWithBehaviors: the recommendation after the window, and the recommendations to keep. */
export function stabilize(o: { desired: number; current: number; up: ScalingRules; down: ScalingRules; history: readonly Recommendation[]; now: number }): {
  replicas: number
  history: Recommendation[]
  reason: string
  message: string
} {
  const upward = o.desired >= o.current
  const windowS = upward ? o.up.stabilizationWindowSeconds : o.down.stabilizationWindowSeconds
  const better = upward ? Math.min : Math.max
  const reason = upward ? 'ScaleUpStabilized' : 'ScaleDownStabilized'
  const message = upward ? 'recent recommendations were lower than current one, applying the lowest recent recommendation' : 'recent recommendations were higher than current one, applying the highest recent recommendation'
  const obsoleteCutoff = o.now - Math.max(o.up.stabilizationWindowSeconds, o.down.stabilizationWindowSeconds) * 1000
  const cutoff = o.now - windowS * 1000
  let replicas = o.desired
  const history = [...o.history]
  let oldIndex = -1
  history.forEach((r, i) => {
    if (r.atMs > cutoff) replicas = better(r.replicas, replicas)
    if (r.atMs < obsoleteCutoff) oldIndex = i
  })
  const entry = { replicas: o.desired, atMs: o.now }
  if (oldIndex >= 0) history[oldIndex] = entry
  else history.push(entry)
  return { replicas, history, reason, message }
}

function changeInPeriod(periodSeconds: number, events: readonly ScaleEvent[], now: number): number {
  const cutoff = now - periodSeconds * 1000
  return events.filter((e) => e.atMs > cutoff).reduce((s, e) => s + e.change, 0)
}

/** calculateScaleUpLimitWithScalingRules */
export function scaleUpLimit(current: number, events: readonly ScaleEvent[], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return current
  const pick = rules.selectPolicy === 'Min' ? Math.min : Math.max
  let result = rules.selectPolicy === 'Min' ? Infinity : -Infinity
  for (const p of rules.policies) {
    const start = current - changeInPeriod(p.periodSeconds, events, now)
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100))
    result = pick(result, proposed)
  }
  return result
}

/** calculateScaleDownLimitWithBehaviors */
export function scaleDownLimit(current: number, events: readonly ScaleEvent[], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'Disabled') return current
  const pick = rules.selectPolicy === 'Min' ? Math.max : Math.min
  let result = rules.selectPolicy === 'Min' ? -Infinity : Infinity
  for (const p of rules.policies) {
    const start = current + changeInPeriod(p.periodSeconds, events, now)
    const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100))
    result = pick(result, proposed)
  }
  return result
}

/** convertDesiredReplicasWithBehaviorRate: min/max and the rate policies. */
export function limitByRate(o: { desired: number; current: number; min: number; max: number; up: ScalingRules; down: ScalingRules; upEvents: readonly ScaleEvent[]; downEvents: readonly ScaleEvent[]; now: number }): { replicas: number; reason: string; message: string } {
  if (o.desired > o.current) {
    const limit = Math.max(scaleUpLimit(o.current, o.upEvents, o.up, o.now), o.current)
    let allowed = o.max
    let reason = 'TooManyReplicas'
    let message = 'the desired replica count is more than the maximum replica count'
    if (allowed > limit) {
      allowed = limit
      reason = 'ScaleUpLimit'
      message = 'the desired replica count is increasing faster than the maximum scale rate'
    }
    if (o.desired > allowed) return { replicas: allowed, reason, message }
  } else if (o.desired < o.current) {
    const limit = Math.min(scaleDownLimit(o.current, o.downEvents, o.down, o.now), o.current)
    let allowed = o.min
    let reason = 'TooFewReplicas'
    let message = 'the desired replica count is less than the minimum replica count'
    if (allowed < limit) {
      allowed = limit
      reason = 'ScaleDownLimit'
      message = 'the desired replica count is decreasing faster than the maximum scale rate'
    }
    if (o.desired < allowed) return { replicas: allowed, reason, message }
  }
  return { replicas: o.desired, reason: 'DesiredWithinRange', message: 'the desired count is within the acceptable range' }
}
