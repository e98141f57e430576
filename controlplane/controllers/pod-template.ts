// Shared parts of the workload controllers (ReplicaSet, Deployment,
// DaemonSet): pods from templates, template hashing, owner references and
// claiming (adopt orphans, release what no longer matches), pod readiness and
// availability, and the ActivePods deletion order. The queue loop and
// expectations the three controllers share are in workload-loop.ts.
//
// Template identity: two templates are the same when their normalised forms
// are equal. Normalising defaults the pod spec (as the apiserver does), drops
// the `pod-template-hash` label, and removes nulls and empty objects/arrays
// recursively, so the template `kubectl rollout undo` sends back (which carries
// `"creationTimestamp":null` and `"resources":{}` from its Go round trip) is the
// template the ReplicaSet was made from.

import { defaultPodSpec } from '../api/defaults.ts'
import type { ResourceInfo } from '../api/resources.ts'
import { labelSelectorFromObject, matchesLabels, type LabelSelector } from '../api/selectors.ts'
import { clone, type KubeObject, type OwnerReference } from '../api/types.ts'
import { ApiClientError, type ApiClient } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'

export type Pod = KubeObject

export const podTemplateHashLabel = 'pod-template-hash'
const safeChars = 'bcdfghjklmnpqrstvwxz2456789'

// --- templates ---------------------------------------------------------------

/** A canonical copy of a pod template: defaulted, hash label dropped, empties pruned, keys sorted. */
export function normaliseTemplate(template: unknown): unknown {
  const t = clone((template ?? {}) as Record<string, any>)
  if (t.spec && typeof t.spec === 'object') defaultPodSpec(t.spec)
  if (t.metadata?.labels) delete t.metadata.labels[podTemplateHashLabel]
  return prune(t) ?? {}
}

function prune(v: unknown): unknown {
  if (v === null || v === undefined) return undefined
  if (Array.isArray(v)) {
    const items = v.map(prune).filter((x) => x !== undefined)
    return items.length ? items : undefined
  }
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) {
      const p = prune((v as Record<string, unknown>)[k])
      if (p !== undefined) out[k] = p
    }
    return Object.keys(out).length ? out : undefined
  }
  return v
}

export function templatesEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(normaliseTemplate(a)) === JSON.stringify(normaliseTemplate(b))
}

/** JSON with sorted keys, for comparing statuses and the like. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v))
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as any)[k])]))
  return v
}

/** FNV-1a (32 bit), as Kubernetes' ComputeHash uses. */
function fnv32a(text: string): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/**
 * The pod-template-hash of a template: FNV-1a of its normalised JSON (plus the
 * collision count when there is one), encoded like rand.SafeEncodeString so it
 * is a valid label value and name suffix (no vowels, no look-alike digits).
 */
export function templateHash(template: unknown, collisionCount?: number): string {
  let text = JSON.stringify(normaliseTemplate(template))
  if (collisionCount) text += `#${collisionCount}`
  return [...String(fnv32a(text))].map((c) => safeChars[c.charCodeAt(0) % safeChars.length]).join('')
}

/** The selector of a workload's spec; a missing or broken one selects nothing. */
export function selectorOf(obj: KubeObject): LabelSelector | undefined {
  const sel = obj.spec?.selector
  if (!sel || typeof sel !== 'object') return undefined
  try {
    const s = labelSelectorFromObject(sel)
    return s.requirements.length ? s : undefined
  } catch {
    return undefined
  }
}

export function selects(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  return !!selector && matchesLabels(selector, labels)
}

// --- owner references ----------------------------------------------------------

export function controllerRefOf(obj: KubeObject): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r) => r.controller)
}

export function ownerRefTo(owner: KubeObject, info: Pick<ResourceInfo, 'group' | 'version' | 'kind'>): OwnerReference {
  const apiVersion = info.group ? `${info.group}/${info.version}` : info.version
  return { apiVersion, kind: info.kind, name: owner.metadata.name!, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true }
}

/** The owner named by obj's controller reference, if it is in the cache with the same uid. */
export function resolveControllerRef<T extends KubeObject>(inf: Informer<T>, obj: KubeObject, kind: string): T | undefined {
  const ref = controllerRefOf(obj)
  if (!ref || ref.kind !== kind) return undefined
  const owner = inf.get(`${obj.metadata.namespace}/${ref.name}`)
  return owner && owner.metadata.uid === ref.uid ? owner : undefined
}

export interface Claims<T> {
  owned: T[]
  adopt: T[]
  release: T[]
}

/**
 * Which of `objs` (same namespace as owner) the owner controls, should adopt
 * (orphans it selects) or should release (its own that it no longer selects),
 * like ControllerRefManager.ClaimObject. An owner being deleted neither adopts
 * nor releases.
 */
export function claimObjects<T extends KubeObject>(owner: KubeObject, selector: LabelSelector | undefined, objs: T[]): Claims<T> {
  const out: Claims<T> = { owned: [], adopt: [], release: [] }
  const deleting = !!owner.metadata.deletionTimestamp
  for (const o of objs) {
    if (o.metadata.namespace !== owner.metadata.namespace) continue
    const ref = controllerRefOf(o)
    const match = selects(selector, o.metadata.labels)
    if (ref) {
      if (ref.uid !== owner.metadata.uid) continue
      if (match) out.owned.push(o)
      else if (!deleting) out.release.push(o)
    } else if (match && !deleting && !o.metadata.deletionTimestamp) out.adopt.push(o)
  }
  return out
}

/**
 * Adopt and release through merge patches guarded by each object's
 * resourceVersion; returns the objects adopted. Before adopting, the owner is
 * read fresh (not from the cache) so a deleted or re-created owner never
 * adopts. Conflicts and vanished objects are left for the next sync.
 */
export async function applyClaims<T extends KubeObject>(opts: { client: ApiClient; info: ResourceInfo; ownerInfo: ResourceInfo; owner: KubeObject; claims: Claims<T> }): Promise<T[]> {
  const { client, info, owner, claims } = opts
  const patch = (o: T, refs: OwnerReference[]) =>
    client.patch(info, o.metadata.namespace, o.metadata.name!, { metadata: { resourceVersion: o.metadata.resourceVersion, ownerReferences: refs.length ? refs : null } }, 'application/merge-patch+json') as Promise<T>
  for (const o of claims.release) {
    await ignoreGoneOrConflict(patch(o, (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid)))
  }
  if (!claims.adopt.length) return []
  const fresh = await client.get(opts.ownerInfo, owner.metadata.namespace, owner.metadata.name!)
  if (fresh.metadata.uid !== owner.metadata.uid || fresh.metadata.deletionTimestamp) return []
  const ref = ownerRefTo(owner, opts.ownerInfo)
  const adopted: T[] = []
  for (const o of claims.adopt) {
    const r = await ignoreGoneOrConflict(patch(o, [...(o.metadata.ownerReferences ?? []), ref]))
    if (r) adopted.push(r)
  }
  return adopted
}

export async function ignoreGoneOrConflict<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p
  } catch (e) {
    if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return undefined
    throw e
  }
}

// --- pods --------------------------------------------------------------------

export interface PodFromTemplate {
  template: any
  owner: KubeObject
  ownerInfo: Pick<ResourceInfo, 'group' | 'version' | 'kind'>
  /** Labels added to the template's (e.g. controller-revision-hash). */
  extraLabels?: Record<string, string>
  nodeName?: string
  extraTolerations?: any[]
}

/** A pod to create for `owner`: the template's metadata and spec, owner reference, `generateName: <owner>-`. */
export function buildPodFromTemplate(o: PodFromTemplate): Pod {
  const t = clone(o.template ?? {})
  const meta = t.metadata ?? {}
  const spec = t.spec ?? {}
  if (o.nodeName) spec.nodeName = o.nodeName
  if (o.extraTolerations?.length) {
    const have = new Set((spec.tolerations ?? []).map((x: any) => canonicalJson(x)))
    spec.tolerations = [...(spec.tolerations ?? []), ...o.extraTolerations.filter((x) => !have.has(canonicalJson(x)))]
  }
  const labels = { ...(meta.labels ?? {}), ...(o.extraLabels ?? {}) }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${o.owner.metadata.name}-`,
      namespace: o.owner.metadata.namespace,
      labels,
      ...(meta.annotations ? { annotations: meta.annotations } : {}),
      ...(meta.finalizers ? { finalizers: meta.finalizers } : {}),
      ownerReferences: [ownerRefTo(o.owner, o.ownerInfo)],
    },
    spec,
  }
}

function condition(pod: Pod, type: string): any {
  return (pod.status?.conditions ?? []).find((c: any) => c?.type === type)
}

export function isPodReady(pod: Pod): boolean {
  return condition(pod, 'Ready')?.status === 'True'
}

/** Ready for at least minReadySeconds (the Ready condition's lastTransitionTime is when it became ready). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  const at = availableAt(pod, minReadySeconds)
  return at !== undefined && at <= now
}

/** When a ready pod becomes (or became) available; undefined when not ready. */
export function availableAt(pod: Pod, minReadySeconds: number): number | undefined {
  const c = condition(pod, 'Ready')
  if (c?.status !== 'True') return undefined
  if (!minReadySeconds) return 0
  const since = Date.parse(c.lastTransitionTime ?? '')
  return Number.isNaN(since) ? 0 : since + minReadySeconds * 1000
}

export function isPodTerminal(pod: Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded'
}

/** Counts toward replicas: not finished and not being deleted. */
export function isPodActive(pod: Pod): boolean {
  return !isPodTerminal(pod) && !pod.metadata.deletionTimestamp
}

function restarts(pod: Pod): number {
  return Math.max(0, ...(pod.status?.containerStatuses ?? []).map((c: any) => Number(c?.restartCount) || 0))
}

const phaseRank: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 }
const time = (s: unknown) => (typeof s === 'string' ? Date.parse(s) || 0 : 0)

/**
 * The order in which surplus pods are deleted (controller.ActivePods): first
 * unscheduled, then pending before unknown before running, not ready before
 * ready, lower pod-deletion-cost, ready for less time, more restarts, newer.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const keys: Array<(p: Pod) => number> = [
    (p) => (p.spec?.nodeName ? 1 : 0),
    (p) => phaseRank[p.status?.phase] ?? 1,
    (p) => (isPodReady(p) ? 1 : 0),
    (p) => Number(p.metadata.annotations?.['controller.kubernetes.io/pod-deletion-cost']) || 0,
    (p) => (isPodReady(p) ? -time(condition(p, 'Ready')?.lastTransitionTime) : 0),
    (p) => -restarts(p),
    (p) => -time(p.metadata.creationTimestamp),
  ]
  for (const k of keys) {
    const d = k(a) - k(b)
    if (d) return d
  }
  return 0
}

/** An int or a percentage of `total` ("25%"), percentages rounded up or down. */
export function resolveIntOrPercent(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return Math.max(0, Math.trunc(v))
  if (typeof v === 'string') {
    const m = /^(\d+)%$/.exec(v.trim())
    if (m) return (roundUp ? Math.ceil : Math.floor)((Number(m[1]) * total) / 100)
    if (/^\d+$/.test(v.trim())) return Number(v)
  }
  return 0
}

export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
}
