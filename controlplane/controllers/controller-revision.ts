// ControllerRevisions, the history of StatefulSets and DaemonSets, as
// Kubernetes keeps it (pkg/controller/history): each distinct pod template is
// one ControllerRevision owned by the workload, whose `data` is the strategic
// merge patch that puts that template back:
//
//     {"spec":{"template":{"$patch":"replace","metadata":{...},"spec":{...}}}}
//
// with keys sorted (Go's json.Marshal of a map) and the two fields Go always
// writes for a template (`metadata.creationTimestamp: null`, `resources: {}` of
// each container). `kubectl rollout history` lists the revisions it finds by
// the workload's selector and controller reference and applies `data` to show
// a revision; `kubectl rollout undo` sends `data` as a strategic merge patch.
//
// Revision numbers grow: a template equal to an older revision's (an undo)
// reuses that revision, renumbered to the next number. History beyond
// revisionHistoryLimit is deleted, oldest first, except revisions that live
// pods still run and the current and update revisions.
//
// Pure: revisionData, templateOfRevision, revisionHash, planRevision,
// planHistoryCleanup. Effectful: ensureRevision, deleteRevisions.

import { lookupResource, type ResourceInfo } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { canonicalJson, ownerRefTo, templatesEqual } from './pod-template.ts'
import type { ControllerContext } from './types.ts'

export const controllerRevisionsInfo = lookupResource('apps', 'v1', 'controllerrevisions')!
/** The label NewControllerRevision puts on a StatefulSet's revisions. */
export const revisionHashKey = 'controller.kubernetes.io/hash'
const safeChars = 'bcdfghjklmnpqrstvwxz2456789'

/** The template as Go encodes a PodTemplateSpec: creationTimestamp null, resources {} on every container. */
function goTemplate(template: unknown): Record<string, any> {
  const t = clone((template ?? {}) as Record<string, any>)
  t.metadata = { creationTimestamp: null, ...(t.metadata ?? {}) }
  for (const key of ['containers', 'initContainers']) {
    for (const c of t.spec?.[key] ?? []) if (c && typeof c === 'object' && !c.resources) c.resources = {}
  }
  return t
}

/** The `data` of a revision of `template`: a strategic merge patch replacing spec.template, keys sorted. */
export function revisionData(template: unknown): Record<string, any> {
  return JSON.parse(canonicalJson({ spec: { template: { ...goTemplate(template), $patch: 'replace' } } }))
}

/** The template a revision restores. */
export function templateOfRevision(cr: KubeObject): Record<string, any> | undefined {
  const t = (cr as any).data?.spec?.template
  if (!t || typeof t !== 'object') return undefined
  const { $patch: _, ...rest } = t
  return rest
}

/** FNV-1 (32 bit), as HashControllerRevision uses (hash/fnv New32). */
function fnv32(text: string): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(text, 'utf8')) {
    h = Math.imul(h, 0x01000193) >>> 0
    h ^= byte
  }
  return h >>> 0
}

/** HashControllerRevision: FNV-1 of the data's JSON, then the collision count, encoded like rand.SafeEncodeString. */
export function revisionHash(data: unknown, collisionCount: number): string {
  const n = fnv32(JSON.stringify(data) + String(collisionCount))
  return [...String(n)].map((c) => safeChars[c.charCodeAt(0) % safeChars.length]).join('')
}

export function revisionNumber(cr: KubeObject): number {
  return Number((cr as any).revision) || 0
}

const byRevision = (a: KubeObject, b: KubeObject) => revisionNumber(a) - revisionNumber(b) || (a.metadata.name! < b.metadata.name! ? -1 : 1)

export interface RevisionPlan {
  /** The revision of the template: existing, or to be created. */
  revision: KubeObject
  create: boolean
  /** An equal older revision is renumbered to this number. */
  renumber?: number
  collisionCount: number
}

export interface RevisionSpec {
  owner: KubeObject
  ownerInfo: Pick<ResourceInfo, 'group' | 'version' | 'kind'>
  template: unknown
  /** The owner's revisions (controller reference to it). */
  revisions: KubeObject[]
  /** Every revision name taken in the namespace (a name owned by another object collides). */
  taken: Map<string, KubeObject>
  collisionCount: number
  /** Name and hash label of a new revision for a collision count. */
  naming(data: unknown, collisionCount: number): { name: string; labels: Record<string, string> }
}

/**
 * The revision for the owner's template (getStatefulSetRevisions /
 * constructHistory): an equal existing one (the newest equal one, renumbered
 * when it is not the newest revision), else a new one numbered max+1, its
 * name moved on by the collision count while the name is taken by a
 * revision of another template.
 */
export function planRevision(o: RevisionSpec): RevisionPlan {
  const sorted = [...o.revisions].sort(byRevision)
  const next = (sorted.length ? revisionNumber(sorted[sorted.length - 1]) : 0) + 1
  const equal = sorted.filter((r) => templatesEqual(templateOfRevision(r), o.template))
  if (equal.length) {
    const r = equal[equal.length - 1]
    const newest = r === sorted[sorted.length - 1]
    return { revision: r, create: false, renumber: newest ? undefined : next, collisionCount: o.collisionCount }
  }
  const data = revisionData(o.template)
  let cc = o.collisionCount
  for (;;) {
    const { name, labels } = o.naming(data, cc)
    const other = o.taken.get(name)
    if (!other) {
      const annotations = o.owner.metadata.annotations
      const revision: KubeObject = {
        apiVersion: 'apps/v1',
        kind: 'ControllerRevision',
        metadata: { name, namespace: o.owner.metadata.namespace, labels, ...(annotations ? { annotations: { ...annotations } } : {}), ownerReferences: [ownerRefTo(o.owner, o.ownerInfo)] },
        data,
        revision: next,
      } as KubeObject
      return { revision, create: true, collisionCount: cc }
    }
    cc++
  }
}

/**
 * Revisions to delete (truncateHistory / cleanupHistory): all but the newest
 * `limit` of those no live pod runs and that are neither `keep`.
 */
export function planHistoryCleanup(revisions: KubeObject[], keep: Set<string>, limit: number): KubeObject[] {
  const old = revisions.filter((r) => !keep.has(r.metadata.name!)).sort(byRevision)
  return old.slice(0, Math.max(0, old.length - Math.max(0, limit)))
}

// --- effects -------------------------------------------------------------------

/**
 * Make the planned revision exist: create it (a 409 means the cache was
 * behind: the caller syncs again) or renumber it. Returns the stored revision.
 */
export async function ensureRevision(ctx: ControllerContext, plan: RevisionPlan): Promise<KubeObject> {
  const ns = plan.revision.metadata.namespace
  if (plan.create) return await ctx.client.create(controllerRevisionsInfo, ns, plan.revision)
  if (plan.renumber === undefined) return plan.revision
  const body = { metadata: { resourceVersion: plan.revision.metadata.resourceVersion }, revision: plan.renumber }
  return await ctx.client.patch(controllerRevisionsInfo, ns, plan.revision.metadata.name!, body, 'application/merge-patch+json')
}

export async function deleteRevisions(ctx: ControllerContext, revisions: KubeObject[]): Promise<void> {
  for (const r of revisions) {
    try {
      await ctx.client.delete(controllerRevisionsInfo, r.metadata.namespace, r.metadata.name!)
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e
    }
  }
}
