// The Deployment's rollout, pure: from the Deployment, the ReplicaSets it
// owns and their pods, planDeployment computes one sync's writes (the new
// ReplicaSet to create, ReplicaSets to update or delete, the Deployment's
// annotations and status, events). It follows Kubernetes' deployment
// controller step by step (sync.go, rolling.go, recreate.go) with one
// deliberate difference: availability and pod counts come from the pods the
// controller sees, and a ReplicaSet counts as min(spec.replicas, available
// pods) available and max(spec.replicas, active pods) big. Both are the
// pessimistic side of a ReplicaSet that has not caught up yet, so a rollout
// never dips below replicas - maxUnavailable ready pods nor goes above
// replicas + maxSurge because some status lagged.
//
// Revisions and history are in deployment-replicasets.ts.

import type { KubeObject } from '../api/types.ts'
import { availableAt, canonicalJson, isPodActive, isPodReady, isPodTerminal, resolveIntOrPercent, type Pod } from './pod-template.ts'
import {
  calculateStatus,
  deploymentComplete,
  hasProgressDeadline,
  newCondition,
  pausedConditions,
  reasons,
  setCondition,
  stuckRequeueMs,
  withRolloutConditions,
  type DeploymentCondition,
  type DeploymentStatus,
} from './deployment-status.ts'
import { buildNewReplicaSet, findNewReplicaSet, maxRevision, planHistoryCleanup, revisionOf, setNewReplicaSetAnnotations, setReplicasAnnotations } from './deployment-replicasets.ts'

export interface DeploymentInput {
  deployment: KubeObject
  /** The ReplicaSets the Deployment controls (after adoption). Never mutated. */
  replicaSets: KubeObject[]
  /** Pods by the uid of the ReplicaSet that controls them. */
  podsByRs: Map<string, Pod[]>
  now: number
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
}

export interface DeploymentPlan {
  create?: KubeObject
  update: KubeObject[]
  delete: KubeObject[]
  events: PlannedEvent[]
  /** The Deployment's annotations when its revision annotation changes. */
  annotations?: Record<string, string>
  status: DeploymentStatus
  requeueAfterMs?: number
}

export interface PodCounts {
  active: number
  ready: number
  available: number
  /** Not Failed or Succeeded, terminating or not: what Recreate waits for. */
  running: number
  /** When the next ready pod becomes available (minReadySeconds), if one will. */
  nextAvailableAt?: number
}

export function countPods(pods: Pod[], minReadySeconds: number, now: number): PodCounts {
  const c: PodCounts = { active: 0, ready: 0, available: 0, running: 0 }
  for (const p of pods) {
    if (!isPodTerminal(p)) c.running++
    if (!isPodActive(p)) continue
    c.active++
    if (isPodReady(p)) c.ready++
    const at = availableAt(p, minReadySeconds)
    if (at === undefined) continue
    if (at <= now) c.available++
    else c.nextAvailableAt = Math.min(c.nextAvailableAt ?? Infinity, at)
  }
  return c
}

/** maxSurge rounds up, maxUnavailable down; both zero would stall, so unavailable becomes 1 (ResolveFenceposts). */
export function resolveFenceposts(maxSurge: unknown, maxUnavailable: unknown, desired: number): { surge: number; unavailable: number } {
  const surge = resolveIntOrPercent(maxSurge ?? '25%', desired, true)
  const unavailable = resolveIntOrPercent(maxUnavailable ?? '25%', desired, false)
  return surge === 0 && unavailable === 0 ? { surge, unavailable: 1 } : { surge, unavailable }
}

const isRolling = (d: KubeObject) => (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate'
const desired = (d: KubeObject) => Number(d.spec?.replicas ?? 1)

export function maxSurge(d: KubeObject): number {
  if (!isRolling(d)) return 0
  const ru = d.spec?.strategy?.rollingUpdate ?? {}
  return resolveFenceposts(ru.maxSurge, ru.maxUnavailable, desired(d)).surge
}

export function maxUnavailable(d: KubeObject): number {
  if (!isRolling(d) || desired(d) === 0) return 0
  const ru = d.spec?.strategy?.rollingUpdate ?? {}
  return Math.min(desired(d), resolveFenceposts(ru.maxSurge, ru.maxUnavailable, desired(d)).unavailable)
}

/** A ReplicaSet while planning: a working copy, the original (absent when it is to be created), its pods. */
interface Rs {
  obj: KubeObject
  orig?: KubeObject
  pods: PodCounts
}

const replicas = (rs: Rs) => Number(rs.obj.spec?.replicas ?? 0)
const availableOf = (rs: Rs) => Math.min(replicas(rs), rs.pods.available)
const footprint = (rs: Rs) => Math.max(replicas(rs), rs.pods.active)
const created = (rs: Rs) => Date.parse(rs.obj.metadata.creationTimestamp ?? '') || Infinity
const byCreation = (a: Rs, b: Rs) => created(a) - created(b) || (a.obj.metadata.name! < b.obj.metadata.name! ? -1 : 1)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** The state of one sync while it is planned. */
class Working {
  readonly d: KubeObject
  readonly now: number
  readonly rss: Rs[]
  events: PlannedEvent[] = []
  conditions: DeploymentCondition[]
  annotations: Record<string, string>
  newRs?: Rs
  toDelete: KubeObject[] = []
  rolloutStatus = false

  constructor(input: DeploymentInput) {
    this.d = input.deployment
    this.now = input.now
    const minReady = Number(this.d.spec?.minReadySeconds) || 0
    this.rss = input.replicaSets.map((rs) => ({ obj: structuredClone(rs), orig: rs, pods: countPods(input.podsByRs.get(rs.metadata.uid!) ?? [], minReady, input.now) }))
    this.conditions = [...(this.d.status?.conditions ?? [])]
    this.annotations = { ...(this.d.metadata.annotations ?? {}) }
  }

  get old(): Rs[] {
    return this.rss.filter((r) => r !== this.newRs).sort(byCreation)
  }

  get all(): Rs[] {
    return this.newRs ? [...this.old, this.newRs] : this.old
  }

  event(reason: string, message: string): void {
    this.events.push({ type: 'Normal', reason, message })
  }
}

/**
 * getAllReplicaSetsAndSyncRevision: find the new ReplicaSet (template equal to
 * the Deployment's), bring its revision to max(old)+1 (that is how `rollout
 * undo` reuses an old one), and create it when asked and missing.
 */
function syncRevision(w: Working, createIfMissing: boolean): void {
  const found = findNewReplicaSet(w.d, w.rss.map((r) => r.obj))
  w.newRs = found ? w.rss.find((r) => r.obj === found) : undefined
  const newRevision = maxRevision(w.old.map((r) => r.obj)) + 1
  if (w.newRs) {
    setNewReplicaSetAnnotations(w.d, w.newRs.obj, newRevision)
    const minReady = w.d.spec?.minReadySeconds
    if ((w.newRs.obj.spec.minReadySeconds ?? 0) !== (minReady ?? 0)) w.newRs.obj.spec.minReadySeconds = minReady
    if (!w.conditions.some((c) => c.type === 'Progressing') && hasProgressDeadline(w.d)) {
      w.conditions = setCondition(w.conditions, newCondition('Progressing', 'True', reasons.foundNewRs, `Found new replica set "${w.newRs.obj.metadata.name}"`, w.now))
    }
  } else if (createIfMissing) {
    const obj = buildNewReplicaSet(w.d, newRevision)
    setReplicasAnnotations(obj, desired(w.d), desired(w.d) + maxSurge(w.d))
    w.newRs = { obj, pods: { active: 0, ready: 0, available: 0, running: 0 } }
    obj.spec.replicas = newRsReplicas(w, w.newRs)
    w.rss.push(w.newRs)
    if (obj.spec.replicas > 0) w.event('ScalingReplicaSet', `Scaled up replica set ${obj.metadata.name} from 0 to ${obj.spec.replicas}`)
    w.conditions = setCondition(w.conditions, newCondition('Progressing', 'True', reasons.newRsCreated, `Created new replica set "${obj.metadata.name}"`, w.now))
  }
  const rev = w.newRs ? revisionOf(w.newRs.obj) : undefined
  if (rev !== undefined && w.annotations['deployment.kubernetes.io/revision'] !== String(rev)) w.annotations['deployment.kubernetes.io/revision'] = String(rev)
}

/** NewRSNewReplicas: how big the new ReplicaSet may be now. */
function newRsReplicas(w: Working, newRs: Rs): number {
  if (!isRolling(w.d)) return desired(w.d)
  const current = sum(w.all.map(footprint))
  const maxTotal = desired(w.d) + maxSurge(w.d)
  if (current >= maxTotal) return replicas(newRs)
  return replicas(newRs) + Math.max(0, Math.min(maxTotal - current, desired(w.d) - replicas(newRs)))
}

/** scaleReplicaSet: size and the desired/max annotations; an event when the size changes. */
function scale(w: Working, rs: Rs, to: number, op?: 'up' | 'down'): boolean {
  const from = replicas(rs)
  const resized = from !== to
  const annotated = setReplicasAnnotations(rs.obj, desired(w.d), desired(w.d) + maxSurge(w.d))
  if (resized || annotated) rs.obj.spec.replicas = to
  if (resized) w.event('ScalingReplicaSet', `Scaled ${op ?? (to > from ? 'up' : 'down')} replica set ${rs.obj.metadata.name} from ${from} to ${to}`)
  return resized
}

function scaleIfNeeded(w: Working, rs: Rs, to: number): boolean {
  return replicas(rs) !== to && scale(w, rs, to)
}

function reconcileNewReplicaSet(w: Working): boolean {
  const rs = w.newRs!
  if (replicas(rs) === desired(w.d)) return false
  if (replicas(rs) > desired(w.d)) return scaleIfNeeded(w, rs, desired(w.d))
  return scaleIfNeeded(w, rs, newRsReplicas(w, rs))
}

function reconcileOldReplicaSets(w: Working): boolean {
  const old = w.old
  if (sum(old.map(replicas)) === 0) return false
  const minAvailable = desired(w.d) - maxUnavailable(w.d)
  const newUnavailable = w.newRs ? replicas(w.newRs) - availableOf(w.newRs) : 0
  const maxScaledDown = sum(w.all.map(replicas)) - minAvailable - newUnavailable
  if (maxScaledDown <= 0) return false
  // Unhealthy old pods go first: removing them costs no availability.
  let cleaned = 0
  for (const rs of old) {
    if (cleaned >= maxScaledDown) break
    const unhealthy = replicas(rs) - availableOf(rs)
    if (replicas(rs) === 0 || unhealthy === 0) continue
    const n = Math.min(maxScaledDown - cleaned, unhealthy)
    scale(w, rs, replicas(rs) - n)
    cleaned += n
  }
  const budget = sum(w.all.map(availableOf)) - minAvailable
  let scaledDown = 0
  for (const rs of old) {
    if (scaledDown >= budget) break
    if (replicas(rs) === 0) continue
    const n = Math.min(replicas(rs), budget - scaledDown)
    scale(w, rs, replicas(rs) - n)
    scaledDown += n
  }
  return cleaned + scaledDown > 0
}

function rolloutRolling(w: Working): void {
  syncRevision(w, true)
  w.rolloutStatus = true
  if (reconcileNewReplicaSet(w)) return
  if (reconcileOldReplicaSets(w)) return
  if (deploymentComplete(w.d, statusOf(w))) cleanupHistory(w)
}

function rolloutRecreate(w: Working): void {
  syncRevision(w, false)
  w.rolloutStatus = true
  let scaledDown = false
  for (const rs of w.old) if (replicas(rs) > 0) scaledDown = scale(w, rs, 0, 'down') || scaledDown
  if (scaledDown) return
  // Recreate means no old pod runs next to a new one, terminating ones included.
  if (w.old.some((rs) => rs.pods.running > 0)) return
  if (!w.newRs) syncRevision(w, true)
  scaleIfNeeded(w, w.newRs!, desired(w.d))
  if (deploymentComplete(w.d, statusOf(w))) cleanupHistory(w)
}

/** isScalingEvent: an active ReplicaSet was sized for a different replica count. */
function isScalingEvent(w: Working): boolean {
  return w.rss.some((rs) => {
    const d = rs.obj.metadata.annotations?.['deployment.kubernetes.io/desired-replicas']
    return replicas(rs) > 0 && d !== undefined && Number(d) !== desired(w.d)
  })
}

/** scale(): resize after the Deployment's replicas changed, proportionally across active ReplicaSets mid-rollout. */
function scaleReplicaSets(w: Working): void {
  const active = w.all.filter((rs) => replicas(rs) > 0)
  if (active.length <= 1) {
    // One active ReplicaSet (or none: then the newest) takes the whole count.
    const only = active[0] ?? w.newRs ?? w.old[w.old.length - 1]
    if (only) scaleIfNeeded(w, only, desired(w.d))
    return
  }
  const nrs = w.newRs
  const saturated = nrs && replicas(nrs) === desired(w.d) && Number(nrs.obj.metadata.annotations?.['deployment.kubernetes.io/desired-replicas']) === desired(w.d) && nrs.pods.available >= desired(w.d)
  if (saturated) {
    for (const rs of w.old) if (replicas(rs) > 0) scaleIfNeeded(w, rs, 0)
    return
  }
  if (!isRolling(w.d)) return
  const allowed = desired(w.d) > 0 ? desired(w.d) + maxSurge(w.d) : 0
  const toAdd = allowed - sum(active.map(replicas))
  if (toAdd === 0) return
  // Larger first; on ties, newer first when growing and older first when shrinking.
  active.sort((a, b) => replicas(b) - replicas(a) || (toAdd > 0 ? byCreation(b, a) : byCreation(a, b)))
  const sizes = new Map<Rs, number>()
  let added = 0
  for (const rs of active) {
    const p = proportion(w, rs, toAdd, added)
    sizes.set(rs, replicas(rs) + p)
    added += p
  }
  sizes.set(active[0], Math.max(0, sizes.get(active[0])! + toAdd - added))
  for (const rs of active) scale(w, rs, sizes.get(rs)!, toAdd > 0 ? 'up' : 'down')
}

/** GetProportion: this ReplicaSet's share of toAdd, by its size against the max-replicas it was sized for. */
function proportion(w: Working, rs: Rs, toAdd: number, added: number): number {
  if (replicas(rs) === 0 || toAdd === added) return 0
  let fraction: number
  if (desired(w.d) === 0) fraction = -replicas(rs)
  else {
    const before = Number(rs.obj.metadata.annotations?.['deployment.kubernetes.io/max-replicas']) || Number(w.d.status?.replicas) || 0
    fraction = before === 0 ? 0 : Math.round((replicas(rs) * (desired(w.d) + maxSurge(w.d))) / before) - replicas(rs)
  }
  const allowed = toAdd - added
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed)
}

function cleanupHistory(w: Working): void {
  const limit = w.d.spec?.revisionHistoryLimit
  if (typeof limit !== 'number') return
  const old = w.old.filter((rs) => rs.orig)
  const busy = new Set(old.filter((rs) => rs.pods.running > 0).map((rs) => rs.obj))
  w.toDelete = planHistoryCleanup(
    old.map((rs) => rs.obj),
    limit,
    (rs) => busy.has(rs),
  )
}

function statusOf(w: Working): DeploymentStatus {
  const rss = w.all.map((rs) => ({ replicas: replicas(rs), active: rs.pods.active, ready: rs.pods.ready, available: rs.pods.available, isNew: rs === w.newRs }))
  return calculateStatus({ d: w.d, rss, conditions: w.conditions, maxUnavailable: maxUnavailable(w.d), now: w.now })
}

export function planDeployment(input: DeploymentInput): DeploymentPlan {
  const w = new Working(input)
  const d = w.d
  if (d.metadata.deletionTimestamp) syncRevision(w, false)
  else {
    w.conditions = pausedConditions(d, w.conditions, w.now)
    if (d.spec?.paused) {
      syncRevision(w, false)
      scaleReplicaSets(w)
      cleanupHistory(w)
    } else if (isScalingEvent(w)) {
      syncRevision(w, false)
      scaleReplicaSets(w)
    } else if (isRolling(d)) rolloutRolling(w)
    else rolloutRecreate(w)
  }
  return finish(w)
}

function finish(w: Working): DeploymentPlan {
  let status = statusOf(w)
  if (w.rolloutStatus) status = withRolloutConditions({ d: w.d, status, newRsName: w.newRs?.obj.metadata.name, now: w.now })
  // Only a rollout watches its deadline (a paused Deployment does not), as requeueStuckDeployment.
  const waits = [w.rolloutStatus ? stuckRequeueMs(w.d, status, w.now) : undefined, ...w.all.map((rs) => (rs.pods.nextAvailableAt === undefined ? undefined : rs.pods.nextAvailableAt - w.now + 50))]
  const defined = waits.filter((x): x is number => x !== undefined)
  const annotationsChanged = canonicalJson(w.annotations) !== canonicalJson(w.d.metadata.annotations ?? {})
  return {
    create: w.newRs && !w.newRs.orig ? w.newRs.obj : undefined,
    update: w.rss.filter((rs) => rs.orig && canonicalJson(rs.obj) !== canonicalJson(rs.orig)).map((rs) => rs.obj),
    delete: w.toDelete,
    events: w.events,
    annotations: annotationsChanged ? w.annotations : undefined,
    status,
    requeueAfterMs: defined.length ? Math.max(0, Math.min(...defined)) : undefined,
  }
}
