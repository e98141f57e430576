// Deployment status and conditions, pure (Kubernetes' deployment/util and
// syncRolloutStatus). Counts come from the pods of the Deployment's
// ReplicaSets as the controller sees them, not from ReplicaSet statuses,
// which lag one more hop behind.
//
// Conditions:
//   Available    True  MinimumReplicasAvailable   available >= replicas - maxUnavailable
//                False MinimumReplicasUnavailable
//   Progressing  True  NewReplicaSetCreated / FoundNewReplicaSet / ReplicaSetUpdated
//                True  NewReplicaSetAvailable     the rollout is complete
//                False ProgressDeadlineExceeded   no progress for progressDeadlineSeconds
//                Unknown DeploymentPaused / DeploymentResumed

import type { KubeObject } from '../api/types.ts'
import { isoSeconds } from './pod-template.ts'

export interface DeploymentCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  lastUpdateTime: string
  lastTransitionTime: string
  reason: string
  message: string
}

export const reasons = {
  minimumAvailable: 'MinimumReplicasAvailable',
  minimumUnavailable: 'MinimumReplicasUnavailable',
  newRsCreated: 'NewReplicaSetCreated',
  foundNewRs: 'FoundNewReplicaSet',
  rsUpdated: 'ReplicaSetUpdated',
  newRsAvailable: 'NewReplicaSetAvailable',
  timedOut: 'ProgressDeadlineExceeded',
  paused: 'DeploymentPaused',
  resumed: 'DeploymentResumed',
} as const

export function newCondition(type: string, status: DeploymentCondition['status'], reason: string, message: string, now: number): DeploymentCondition {
  const t = isoSeconds(now)
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message }
}

export function getCondition(conds: DeploymentCondition[] | undefined, type: string): DeploymentCondition | undefined {
  return (conds ?? []).find((c) => c.type === type)
}

/** SetDeploymentCondition: same status and reason is a no-op; same status keeps lastTransitionTime. */
export function setCondition(conds: DeploymentCondition[], c: DeploymentCondition): DeploymentCondition[] {
  const cur = getCondition(conds, c.type)
  if (cur && cur.status === c.status && cur.reason === c.reason) return conds
  const next = cur && cur.status === c.status ? { ...c, lastTransitionTime: cur.lastTransitionTime } : c
  return [...conds.filter((x) => x.type !== c.type), next]
}

export function removeCondition(conds: DeploymentCondition[], type: string): DeploymentCondition[] {
  return conds.filter((c) => c.type !== type)
}

/** What the status needs to know about one ReplicaSet and its pods. */
export interface RsSummary {
  /** spec.replicas (after this sync's changes). */
  replicas: number
  active: number
  ready: number
  available: number
  isNew: boolean
}

export interface DeploymentStatus {
  observedGeneration: number
  replicas: number
  updatedReplicas: number
  readyReplicas: number
  availableReplicas: number
  unavailableReplicas: number
  collisionCount?: number
  conditions: DeploymentCondition[]
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

export function calculateStatus(o: { d: KubeObject; rss: RsSummary[]; conditions: DeploymentCondition[]; maxUnavailable: number; now: number }): DeploymentStatus {
  const available = sum(o.rss.map((r) => r.available))
  const total = sum(o.rss.map((r) => r.replicas))
  const status: DeploymentStatus = {
    observedGeneration: o.d.metadata.generation ?? 0,
    replicas: sum(o.rss.map((r) => r.active)),
    updatedReplicas: sum(o.rss.filter((r) => r.isNew).map((r) => r.active)),
    readyReplicas: sum(o.rss.map((r) => r.ready)),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
    conditions: o.conditions,
  }
  if (o.d.status?.collisionCount !== undefined) status.collisionCount = o.d.status.collisionCount
  const want = Number(o.d.spec?.replicas ?? 1)
  const cond =
    available >= want - o.maxUnavailable
      ? newCondition('Available', 'True', reasons.minimumAvailable, 'Deployment has minimum availability.', o.now)
      : newCondition('Available', 'False', reasons.minimumUnavailable, 'Deployment does not have minimum availability.', o.now)
  status.conditions = setCondition(status.conditions, cond)
  return status
}

export function hasProgressDeadline(d: KubeObject): boolean {
  const s = d.spec?.progressDeadlineSeconds
  return typeof s === 'number' && s < 2 ** 31 - 1
}

/** The rollout is done: every replica updated and available, and the latest spec observed. */
export function deploymentComplete(d: KubeObject, s: DeploymentStatus): boolean {
  const want = Number(d.spec?.replicas ?? 1)
  return s.updatedReplicas === want && s.replicas === want && s.availableReplicas === want && s.observedGeneration >= (d.metadata.generation ?? 0)
}

/** Some progress since the last status: more updated, ready or available pods, or fewer old ones. */
export function deploymentProgressing(old: Partial<DeploymentStatus> | undefined, s: DeploymentStatus): boolean {
  const o = { replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, ...(old ?? {}) }
  return (
    s.updatedReplicas > o.updatedReplicas ||
    s.replicas - s.updatedReplicas < o.replicas - o.updatedReplicas ||
    s.readyReplicas > o.readyReplicas ||
    s.availableReplicas > o.availableReplicas
  )
}

export function deploymentTimedOut(d: KubeObject, s: DeploymentStatus, now: number): boolean {
  if (!hasProgressDeadline(d)) return false
  const c = getCondition(s.conditions, 'Progressing')
  if (!c || c.reason === reasons.newRsAvailable) return false
  if (c.reason === reasons.timedOut) return true
  return Date.parse(c.lastUpdateTime) + d.spec.progressDeadlineSeconds * 1000 < now
}

/** syncRolloutStatus: the Progressing condition for a status computed during a rollout. */
export function withRolloutConditions(o: { d: KubeObject; status: DeploymentStatus; newRsName?: string; now: number }): DeploymentStatus {
  const { d, now } = o
  const s = { ...o.status }
  if (!hasProgressDeadline(d)) {
    s.conditions = removeCondition(s.conditions, 'Progressing')
    return s
  }
  const cur = getCondition(s.conditions, 'Progressing')
  const complete = s.replicas === s.updatedReplicas && cur?.reason === reasons.newRsAvailable
  if (complete) return s
  const rsText = o.newRsName ? `ReplicaSet "${o.newRsName}"` : `Deployment "${d.metadata.name}"`
  if (deploymentComplete(d, s)) {
    s.conditions = setCondition(s.conditions, newCondition('Progressing', 'True', reasons.newRsAvailable, `${rsText} has successfully progressed.`, now))
  } else if (deploymentProgressing(d.status, s)) {
    // Progress refreshes lastUpdateTime even with an unchanged reason, so the deadline restarts.
    const c = newCondition('Progressing', 'True', reasons.rsUpdated, `${rsText} is progressing.`, now)
    if (cur?.status === 'True') c.lastTransitionTime = cur.lastTransitionTime
    s.conditions = [...removeCondition(s.conditions, 'Progressing'), c]
  } else if (deploymentTimedOut(d, s, now)) {
    s.conditions = setCondition(s.conditions, newCondition('Progressing', 'False', reasons.timedOut, `${rsText} has timed out progressing.`, now))
  }
  return s
}

/** When to look again for a progress deadline that may pass without any event; undefined when none can. */
export function stuckRequeueMs(d: KubeObject, s: DeploymentStatus, now: number): number | undefined {
  const c = getCondition(s.conditions, 'Progressing')
  if (!hasProgressDeadline(d) || !c || deploymentComplete(d, s) || c.reason === reasons.timedOut || c.reason === reasons.newRsAvailable) return undefined
  const after = Date.parse(c.lastUpdateTime) + d.spec.progressDeadlineSeconds * 1000 - now
  return Math.max(0, after) + 1000
}

/** checkPausedConditions: Progressing Unknown while paused, and once when resumed; a timeout is never overwritten. */
export function pausedConditions(d: KubeObject, conds: DeploymentCondition[], now: number): DeploymentCondition[] {
  const cur = getCondition(conds, 'Progressing')
  if (cur?.reason === reasons.timedOut) return conds
  const pausedShown = cur?.reason === reasons.paused
  if (d.spec?.paused && !pausedShown) return setCondition(conds, newCondition('Progressing', 'Unknown', reasons.paused, 'Deployment is paused', now))
  if (!d.spec?.paused && pausedShown) return setCondition(conds, newCondition('Progressing', 'Unknown', reasons.resumed, 'Deployment is resumed', now))
  return conds
}
