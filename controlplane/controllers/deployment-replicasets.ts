// A Deployment's ReplicaSets, pure: which one is "new" (its template equals
// the Deployment's), how a new one is built (`<deployment>-<pod-template-hash>`,
// the hash label added to its selector and template), revision annotations
// (the new ReplicaSet always carries max(old)+1, so a reused old one moves to
// the top and `kubectl rollout undo` / `rollout history` see it), and which
// old ReplicaSets fall out of revisionHistoryLimit.

import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ownerRefTo, podTemplateHashLabel, templateHash, templatesEqual } from './pod-template.ts'

export const deploymentsInfo = lookupResource('apps', 'v1', 'deployments')!

export const annotations = {
  revision: 'deployment.kubernetes.io/revision',
  revisionHistory: 'deployment.kubernetes.io/revision-history',
  desiredReplicas: 'deployment.kubernetes.io/desired-replicas',
  maxReplicas: 'deployment.kubernetes.io/max-replicas',
} as const

/** Deployment annotations never copied to its ReplicaSets (kubectl's rollback skips the same set). */
const notCopied = new Set<string>([
  'kubectl.kubernetes.io/last-applied-configuration',
  annotations.revision,
  annotations.revisionHistory,
  annotations.desiredReplicas,
  annotations.maxReplicas,
  'deprecated.deployment.rollback.to',
])

/** Kubernetes' default limit for the revision-history annotation. */
const maxRevisionHistoryChars = 2000

export function revisionOf(rs: KubeObject): number | undefined {
  const v = rs.metadata.annotations?.[annotations.revision]
  if (v === undefined || !/^\d+$/.test(v)) return undefined
  return Number(v)
}

export function maxRevision(rss: KubeObject[]): number {
  return Math.max(0, ...rss.map((rs) => revisionOf(rs) ?? 0))
}

const createdAt = (o: KubeObject) => Date.parse(o.metadata.creationTimestamp ?? '') || Infinity

/** The oldest ReplicaSet whose template equals the Deployment's, ignoring the hash label. */
export function findNewReplicaSet(d: KubeObject, rss: KubeObject[]): KubeObject | undefined {
  const sorted = [...rss].sort((a, b) => createdAt(a) - createdAt(b) || (a.metadata.name! < b.metadata.name! ? -1 : 1))
  return sorted.find((rs) => templatesEqual(rs.spec?.template, d.spec?.template))
}

/** A new ReplicaSet for the Deployment's template, with no replicas yet. */
export function buildNewReplicaSet(d: KubeObject, revision: number): KubeObject {
  const hash = templateHash(d.spec?.template, d.status?.collisionCount)
  const template = clone(d.spec?.template ?? {})
  template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [podTemplateHashLabel]: hash } }
  const selector = clone(d.spec?.selector ?? {})
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash }
  const rs: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...template.metadata.labels },
      ownerReferences: [ownerRefTo(d, deploymentsInfo)],
    },
    spec: { replicas: 0, selector, template },
  }
  if (d.spec?.minReadySeconds) rs.spec.minReadySeconds = d.spec.minReadySeconds
  setNewReplicaSetAnnotations(d, rs, revision)
  return rs
}

/**
 * Copy the Deployment's annotations and raise the revision to newRevision
 * when it is lower, remembering the old one in revision-history (a rollback).
 * Mutates rs (a working copy); returns whether anything changed.
 */
export function setNewReplicaSetAnnotations(d: KubeObject, rs: KubeObject, newRevision: number): boolean {
  const a = (rs.metadata.annotations ??= {})
  let changed = false
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (notCopied.has(k) || a[k] === v) continue
    a[k] = v
    changed = true
  }
  const oldText = a[annotations.revision]
  if (oldText !== undefined && oldText !== '' && !/^\d+$/.test(oldText)) return changed
  const old = oldText ? Number(oldText) : 0
  if (old >= newRevision) return changed
  a[annotations.revision] = String(newRevision)
  if (oldText) a[annotations.revisionHistory] = appendHistory(a[annotations.revisionHistory], oldText)
  return true
}

function appendHistory(history: string | undefined, rev: string): string {
  const revs = history ? history.split(',') : []
  revs.push(rev)
  while (revs.join(',').length > maxRevisionHistoryChars && revs.length > 1) revs.shift()
  return revs.join(',')
}

/** The desired-replicas and max-replicas annotations (what proportional scaling reads); returns whether they changed. */
export function setReplicasAnnotations(rs: KubeObject, desired: number, max: number): boolean {
  const a = (rs.metadata.annotations ??= {})
  const want = { [annotations.desiredReplicas]: String(desired), [annotations.maxReplicas]: String(max) }
  let changed = false
  for (const [k, v] of Object.entries(want)) {
    if (a[k] === v) continue
    a[k] = v
    changed = true
  }
  return changed
}

/**
 * Old ReplicaSets to delete beyond revisionHistoryLimit, lowest revisions
 * first; only ones scaled to zero, observed so by their controller, and with
 * no pods left (`busy` says which still have some).
 */
export function planHistoryCleanup(old: KubeObject[], limit: number, busy: (rs: KubeObject) => boolean): KubeObject[] {
  const alive = old.filter((rs) => !rs.metadata.deletionTimestamp)
  const excess = alive.length - limit
  if (excess <= 0) return []
  const sorted = [...alive].sort((a, b) => (revisionOf(a) ?? 0) - (revisionOf(b) ?? 0) || createdAt(a) - createdAt(b))
  return sorted
    .slice(0, excess)
    .filter(
      (rs) =>
        Number(rs.spec?.replicas ?? 0) === 0 &&
        Number(rs.status?.replicas ?? 0) === 0 &&
        (rs.metadata.generation ?? 0) <= Number(rs.status?.observedGeneration ?? 0) &&
        !busy(rs),
    )
}
