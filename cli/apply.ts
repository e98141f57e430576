// `skiff apply -f`: client-side apply as kubectl does it. A new object is
// created with the `kubectl.kubernetes.io/last-applied-configuration`
// annotation; an existing one gets a strategic merge patch computed from the
// last applied manifest to the new one (removed fields become null), so
// fields the server or other clients set (clusterIP, status, container ports
// merged by key) are kept. Objects apply in dependency order (namespaces first).

import { lookupKind, qualifiedResource, type ResourceInfo } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import type { Manifest } from './manifests.ts'

export const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration'

const order = ['Namespace', 'ServiceAccount', 'Secret', 'ConfigMap', 'IngressClass', 'Service', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Pod', 'Ingress']

function rank(kind: string): number {
  const i = order.indexOf(kind)
  return i < 0 ? order.length : i
}

/** RFC 7386 diff: the merge patch that turns `from` into `to` (null deletes). */
export function createMergePatch(from: any, to: any): any {
  const patch: Record<string, unknown> = {}
  for (const k of Object.keys(from ?? {})) if (!(k in (to ?? {}))) patch[k] = null
  for (const [k, v] of Object.entries(to ?? {})) {
    const old = from?.[k]
    if (isObject(v) && isObject(old)) {
      const sub = createMergePatch(old, v)
      if (Object.keys(sub).length) patch[k] = sub
    } else if (JSON.stringify(v) !== JSON.stringify(old)) patch[k] = v
  }
  return patch
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The manifest as applied (namespace filled, no last-applied annotation of its own). */
function cleanManifest(obj: KubeObject, ns: string | undefined): KubeObject {
  const copy = structuredClone(obj)
  if (ns) copy.metadata.namespace = ns
  const { [lastAppliedAnnotation]: _drop, ...rest } = copy.metadata.annotations ?? {}
  if (Object.keys(rest).length) copy.metadata.annotations = rest
  else delete copy.metadata.annotations
  return copy
}

function annotate(obj: KubeObject, lastApplied: string): KubeObject {
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...(obj.metadata.annotations ?? {}), [lastAppliedAnnotation]: lastApplied } } }
}

export interface ApplyResult {
  ref: string // deployment.apps/web
  action: 'created' | 'configured' | 'unchanged'
}

export function refOf(info: ResourceInfo, name: string): string {
  return `${info.kind.toLowerCase()}${info.group ? '.' + info.group : ''}/${name}`
}

export async function applyOne(client: ApiClient, m: Manifest, defaultNs: string): Promise<ApplyResult> {
  const obj = m.object
  const info = lookupKind(obj.apiVersion!, obj.kind!)
  if (!info) throw new Error(`${m.source}: no kind "${obj.kind}" in version "${obj.apiVersion}" is served by this cluster`)
  const ns = info.namespaced ? (obj.metadata.namespace ?? defaultNs) : undefined
  const clean = cleanManifest(obj, ns)
  const lastApplied = JSON.stringify(clean)
  const name = obj.metadata.name!
  let live: KubeObject | undefined
  try {
    live = await client.get(info, ns, name)
  } catch (e) {
    if (!(e instanceof ApiClientError && e.status === 404)) throw e
  }
  if (!live) {
    await client.create(info, ns, annotate(clean, lastApplied))
    return { ref: refOf(info, name), action: 'created' }
  }
  const previous = live.metadata.annotations?.[lastAppliedAnnotation]
  const original = previous ? JSON.parse(previous) : {}
  const patch = createMergePatch(original, clean)
  delete patch.status
  if (Object.keys(patch).length === 0) return { ref: refOf(info, name), action: 'unchanged' }
  patch.metadata = { ...(patch.metadata ?? {}), annotations: { ...(patch.metadata?.annotations ?? {}), [lastAppliedAnnotation]: lastApplied } }
  await client.patch(info, ns, name, patch)
  return { ref: refOf(info, name), action: 'configured' }
}

export async function applyAll(client: ApiClient, manifests: Manifest[], defaultNs: string, out: (line: string) => void): Promise<number> {
  let failures = 0
  const sorted = [...manifests].sort((a, b) => rank(a.object.kind!) - rank(b.object.kind!))
  for (const m of sorted) {
    try {
      const r = await applyOne(client, m, defaultNs)
      out(`${r.ref} ${r.action}`)
    } catch (e) {
      failures++
      const info = lookupKind(m.object.apiVersion!, m.object.kind!)
      const what = info ? `${qualifiedResource(info)} "${m.object.metadata.name}"` : m.source
      process.stderr.write(`Error from server when applying ${what} (${m.source}): ${(e as Error).message}\n`)
    }
  }
  return failures
}
