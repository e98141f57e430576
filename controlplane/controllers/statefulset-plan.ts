// The pure part of the StatefulSet controller (pkg/controller/statefulset:
// stateful_set_utils.go and updateStatefulSet in stateful_set_control.go).
//
// Pods are named <set>-<ordinal> for ordinals [start, start+replicas); a pod
// with another ordinal is condemned. One sync, in Kubernetes' order:
//   1. every missing ordinal gets its claims and a pod; a Failed/Succeeded pod
//      is deleted (to be made again). With OrderedReady ("monotonic") the
//      walk stops at the first pod it creates or deletes, and at the first pod
//      that is terminating or not Running and Ready: ordinal i is made only
//      when 0..i-1 are Running and Ready.
//   2. condemned pods are deleted from the highest ordinal; with OrderedReady
//      one at a time, and only while every other pod is healthy.
//   3. RollingUpdate: from the highest ordinal down to `partition`, the first
//      pod not at the update revision is deleted (it comes back at the new
//      revision in step 1), one at a time, each waiting for the previous to be
//      Running and Ready again. OnDelete: nothing, a pod is updated when deleted.
// Parallel skips the waits of steps 1 and 2; the update stays one at a time.

import type { KubeObject } from '../api/types.ts'
import { availableAt, buildPodFromTemplate, isPodReady, isPodTerminal, type Pod } from './pod-template.ts'
import type { ResourceInfo } from '../api/resources.ts'

export const podNameLabel = 'statefulset.kubernetes.io/pod-name'
export const podIndexLabel = 'apps.kubernetes.io/pod-index'
export const stsRevisionLabel = 'controller-revision-hash'

/** The ordinal of a pod of `set` (its name is <set>-<n>), or undefined. */
export function parseOrdinal(setName: string, podName: string | undefined): number | undefined {
  if (!podName?.startsWith(`${setName}-`)) return undefined
  const rest = podName.slice(setName.length + 1)
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined
}

export function claimName(template: string, setName: string, ordinal: number): string {
  return `${template}-${setName}-${ordinal}`
}

function claimTemplates(set: KubeObject): any[] {
  return (set.spec?.volumeClaimTemplates ?? []).filter((c: any) => c?.metadata?.name)
}

/** The claims of one ordinal (getPersistentVolumeClaims): template labels plus the selector's matchLabels. */
export function buildClaims(set: KubeObject, ordinal: number): KubeObject[] {
  const whenDeleted = set.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted
  return claimTemplates(set).map((t) => {
    const meta = t.metadata ?? {}
    const labels = { ...(meta.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) }
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: claimName(meta.name, set.metadata.name!, ordinal),
        namespace: set.metadata.namespace,
        labels,
        ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
        // whenDeleted: Delete makes the set an owner (not the controller) so garbage collection removes the claim with it.
        ...(whenDeleted === 'Delete'
          ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: set.metadata.name!, uid: set.metadata.uid!, controller: false, blockOwnerDeletion: true }] }
          : {}),
      },
      spec: structuredClone(t.spec ?? {}),
    }
  })
}

/** The pod of one ordinal at a revision: identity (name, hostname, subdomain, labels) and storage (claim volumes first). */
export function buildStatefulSetPod(o: { set: KubeObject; setInfo: Pick<ResourceInfo, 'group' | 'version' | 'kind'>; template: unknown; ordinal: number; revision: string }): Pod {
  const { set, ordinal } = o
  const name = `${set.metadata.name}-${ordinal}`
  const extraLabels = { [podNameLabel]: name, [podIndexLabel]: String(ordinal), [stsRevisionLabel]: o.revision }
  const pod = buildPodFromTemplate({ template: o.template, owner: set, ownerInfo: o.setInfo, extraLabels })
  delete pod.metadata.generateName
  pod.metadata.name = name
  pod.spec.hostname = name
  if (set.spec?.serviceName) pod.spec.subdomain = set.spec.serviceName
  const claims = claimTemplates(set)
  if (claims.length) {
    const names = new Set(claims.map((c) => c.metadata.name))
    const own = claims.map((c) => ({ name: c.metadata.name, persistentVolumeClaim: { claimName: claimName(c.metadata.name, set.metadata.name!, ordinal) } }))
    pod.spec.volumes = [...own, ...(pod.spec.volumes ?? []).filter((v: any) => !names.has(v?.name))]
  }
  return pod
}

export const podRevision = (p: Pod): string | undefined => p.metadata.labels?.[stsRevisionLabel]

export function isRunningAndReady(p: Pod): boolean {
  return p.status?.phase === 'Running' && isPodReady(p)
}

export interface StatefulSetInput {
  set: KubeObject
  /** Pods of the set (controller reference and a valid ordinal), terminating ones included. */
  pods: Pod[]
  currentRevision: string
  updateRevision: string
  /** Names of the claims that exist. */
  claims: Set<string>
  now: number
  /** False while creations/deletions are still expected: compute status only. */
  manage: boolean
}

export interface StatefulSetPlan {
  /** Pods to create: the ordinal and which revision. */
  create: Array<{ ordinal: number; revision: 'current' | 'update' }>
  delete: Pod[]
  /** Claims to create (before the pods that mount them). */
  claims: KubeObject[]
  status: Record<string, any>
  recheckAfterMs?: number
}

export function setReplicas(set: KubeObject): number {
  const r = set.spec?.replicas
  return typeof r === 'number' ? Math.max(0, r) : 1
}

export function ordinalStart(set: KubeObject): number {
  return Math.max(0, Number(set.spec?.ordinals?.start) || 0)
}

/**
 * Status from the pods (updateStatefulSetStatus): counts, the revisions, and
 * a finished rolling update makes the update revision current.
 */
export function statefulSetStatus(o: Omit<StatefulSetInput, 'claims' | 'manage'>, collisionCount: number): { status: Record<string, any>; recheckAfterMs?: number } {
  const minReady = Number(o.set.spec?.minReadySeconds) || 0
  const status = {
    observedGeneration: o.set.metadata.generation ?? 0,
    replicas: 0,
    readyReplicas: 0,
    currentReplicas: 0,
    updatedReplicas: 0,
    availableReplicas: 0,
    currentRevision: o.currentRevision,
    updateRevision: o.updateRevision,
    collisionCount,
  }
  let recheck: number | undefined
  for (const p of o.pods) {
    status.replicas++
    if (isRunningAndReady(p)) {
      status.readyReplicas++
      const at = availableAt(p, minReady)
      if (at !== undefined && at <= o.now) status.availableReplicas++
      else if (at !== undefined) recheck = Math.min(recheck ?? Infinity, at - o.now + 50)
    }
    if (p.metadata.deletionTimestamp) continue
    if (podRevision(p) === o.currentRevision) status.currentReplicas++
    if (podRevision(p) === o.updateRevision) status.updatedReplicas++
  }
  if ((o.set.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate' && status.updatedReplicas === status.replicas && status.readyReplicas === status.replicas) {
    status.currentReplicas = status.updatedReplicas
    status.currentRevision = status.updateRevision
  }
  return { status, recheckAfterMs: recheck }
}

/** The pods to create and delete in this sync; see the file header. */
export function planStatefulSetPods(o: StatefulSetInput): Pick<StatefulSetPlan, 'create' | 'delete' | 'claims'> {
  const { set } = o
  const out: Pick<StatefulSetPlan, 'create' | 'delete' | 'claims'> = { create: [], delete: [], claims: [] }
  const name = set.metadata.name!
  const start = ordinalStart(set)
  const count = setReplicas(set)
  const monotonic = (set.spec?.podManagementPolicy ?? 'OrderedReady') !== 'Parallel'
  const strategy = set.spec?.updateStrategy ?? {}
  const rolling = (strategy.type ?? 'RollingUpdate') === 'RollingUpdate'
  const partition = rolling && strategy.rollingUpdate ? Math.max(0, Number(strategy.rollingUpdate.partition) || 0) : 0
  const replicas: Array<Pod | undefined> = Array.from({ length: count }, () => undefined)
  const condemned: Pod[] = []
  for (const p of o.pods) {
    const ord = parseOrdinal(name, p.metadata.name)!
    if (ord >= start && ord < start + count) replicas[ord - start] = p
    else condemned.push(p)
  }
  condemned.sort((a, b) => parseOrdinal(name, b.metadata.name)! - parseOrdinal(name, a.metadata.name)!)
  const missingClaims = (ord: number) => buildClaims(set, ord).filter((c) => !o.claims.has(c.metadata.name!))
  const healthy = (p: Pod) => isRunningAndReady(p) && !p.metadata.deletionTimestamp
  // 1. replicas, in ordinal order
  for (let i = 0; i < count; i++) {
    const ord = start + i
    const p = replicas[i]
    if (!p) {
      out.claims.push(...missingClaims(ord))
      // newVersionedStatefulSetPod: below the partition a new pod is made at the current revision.
      out.create.push({ ordinal: ord, revision: rolling && ord < partition ? 'current' : 'update' })
      if (monotonic) return out
      continue
    }
    if (isPodTerminal(p) && !p.metadata.deletionTimestamp) {
      out.delete.push(p)
      if (monotonic) return out
      continue
    }
    if (p.metadata.deletionTimestamp) {
      if (monotonic) return out
      continue
    }
    // A pod whose claims were deleted gets them back.
    out.claims.push(...missingClaims(ord))
    if (!isRunningAndReady(p) && monotonic) return out
  }
  // 2. condemned, highest ordinal first
  const unhealthy = [...replicas.filter((p): p is Pod => !!p), ...condemned].filter((p) => !healthy(p))
  const firstUnhealthy = unhealthy[0]
  for (const p of condemned) {
    if (p.metadata.deletionTimestamp) {
      if (monotonic) return out
      continue
    }
    if (monotonic && !healthy(p) && p !== firstUnhealthy) return out
    out.delete.push(p)
    if (monotonic) return out
  }
  if (out.create.length || out.delete.length || !rolling) return out
  // 3. rolling update, highest ordinal first, down to the partition
  for (let i = count - 1; i >= 0 && start + i >= partition; i--) {
    const p = replicas[i]
    if (!p) return out
    if (podRevision(p) !== o.updateRevision && !p.metadata.deletionTimestamp) {
      out.delete.push(p)
      return out
    }
    if (!healthy(p)) return out
  }
  return out
}

/**
 * whenScaled: Delete: the claims of ordinals scaled away, once their pod is
 * gone (Kubernetes makes the condemned pod their owner and lets garbage
 * collection delete them with it). Retain (the default) deletes nothing.
 */
export function claimsToDeleteOnScaleDown(set: KubeObject, pods: Pod[], claims: Iterable<string>): string[] {
  if (set.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled !== 'Delete') return []
  const name = set.metadata.name!
  const start = ordinalStart(set)
  const end = start + setReplicas(set)
  const running = new Set(pods.map((p) => parseOrdinal(name, p.metadata.name)))
  const templates = claimTemplates(set).map((t) => `${t.metadata.name}-`)
  const out: string[] = []
  for (const c of claims) {
    const t = templates.find((x) => c.startsWith(x))
    const ord = t === undefined ? undefined : parseOrdinal(name, c.slice(t.length))
    if (ord !== undefined && (ord < start || ord >= end) && !running.has(ord)) out.push(c)
  }
  return out.sort()
}

export function planStatefulSet(o: StatefulSetInput & { collisionCount: number }): StatefulSetPlan {
  const { status, recheckAfterMs } = statefulSetStatus(o, o.collisionCount)
  if (!o.manage || o.set.metadata.deletionTimestamp) return { create: [], delete: [], claims: [], status, recheckAfterMs }
  return { ...planStatefulSetPods(o), status, recheckAfterMs }
}
