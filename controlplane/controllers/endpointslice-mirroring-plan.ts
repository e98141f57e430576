// EndpointSlice mirroring, the pure part: Kubernetes' EndpointSlice mirroring
// controller turns hand-written v1 Endpoints of a Service without a selector
// into EndpointSlices, so everything that reads slices (service proxy, DNS,
// ingress) sees them. planMirroredSlices computes the slices to create,
// update and delete for one Endpoints name; endpointslice-mirroring.ts feeds
// it from the caches and writes the plan.
//
// Rules, as Kubernetes' endpointslicemirroring package:
//  - mirrored only when the Endpoints exist, are not labelled
//    `endpointslice.kubernetes.io/skip-mirror: "true"` (Skiff's own
//    Endpoints are), carry no leader-election annotation, and a Service of
//    the same name exists without a selector; otherwise mirrored slices go;
//  - one slice per (address type, port set); addresses are IPv4 or IPv6 by
//    their form, invalid ones are skipped (Event InvalidIPAddress); at most
//    1000 addresses per subset, ready ones first (Event
//    TooManyAddressesToMirror for the rest);
//  - slices carry the Endpoints' labels plus `kubernetes.io/service-name`
//    and `endpointslice.kubernetes.io/managed-by:
//    endpointslicemirroring-controller.k8s.io`, its annotations except
//    `endpoints.kubernetes.io/last-change-trigger-time` and kubectl's
//    last-applied-configuration, and a controller owner reference to the
//    Endpoints (so deleting the Endpoints collects them).

import { isIP } from 'node:net'
import type { KubeObject } from '../api/types.ts'
import { canonical, portKey, serviceNameLabel, managedByLabel, skipMirrorLabel, type EndpointPort } from './endpoints.ts'

export const mirroringManagedByValue = 'endpointslicemirroring-controller.k8s.io'
export const maxEndpointsPerSubset = 1000
export const lastChangeTriggerTimeAnnotation = 'endpoints.kubernetes.io/last-change-trigger-time'
const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration'
const leaderElectionAnnotation = 'control-plane.alpha.kubernetes.io/leader'

export interface MirrorPlan {
  create: KubeObject[]
  update: KubeObject[]
  delete: KubeObject[]
  /** Addresses that are not IPs (Kubernetes' InvalidIPAddress Event). */
  invalidAddresses: number
  /** All addresses left out, invalid ones included (TooManyAddressesToMirror when more than the invalid ones). */
  skippedAddresses: number
}

/** Whether Endpoints may be mirrored at all (the Service is checked separately). */
export function shouldMirror(ep: KubeObject | undefined): boolean {
  if (!ep) return false
  return ep.metadata.labels?.[skipMirrorLabel] !== 'true' && !(leaderElectionAnnotation in (ep.metadata.annotations ?? {}))
}

/** Whether the Service leaves its endpoints to whoever writes its Endpoints (no selector, or an empty one as Skiff's endpointslice controller reads it). */
export function mirrorsFor(svc: KubeObject | undefined): boolean {
  const sel = svc?.spec?.selector
  return svc !== undefined && (sel === undefined || sel === null || (typeof sel === 'object' && Object.keys(sel).length === 0))
}

/** Whether `slice` is a mirrored slice of the Endpoints `ns/name`. */
export function isMirroredSliceOf(slice: KubeObject, ns: string, name: string): boolean {
  const l = slice.metadata.labels ?? {}
  return slice.metadata.namespace === ns && l[serviceNameLabel] === name && l[managedByLabel] === mirroringManagedByValue
}

/** An address as an EndpointSlice writes it and its address type, or undefined when it is no IP. */
export function parseAddress(ip: unknown): { ip: string; type: 'IPv4' | 'IPv6' } | undefined {
  if (typeof ip !== 'string') return undefined
  // Leading zeros are accepted and dropped, as Go's sloppy parser and String() do.
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const v4 = ip.split('.').map(Number).join('.')
    return isIP(v4) === 4 ? { ip: v4, type: 'IPv4' } : undefined
  }
  return isIP(ip) === 6 ? { ip: ip.toLowerCase(), type: 'IPv6' } : undefined
}

function addressToEndpoint(a: any, ready: boolean, ip: string): Record<string, unknown> {
  const ep: Record<string, unknown> = { addresses: [ip], conditions: { ready } }
  if (a.hostname) ep.hostname = a.hostname
  if (a.nodeName) ep.nodeName = a.nodeName
  if (a.targetRef) ep.targetRef = a.targetRef
  return ep
}

function slicePorts(ports: unknown): EndpointPort[] {
  return (Array.isArray(ports) ? ports : []).map((p: any) => {
    const out: EndpointPort = { name: p?.name ?? '', port: Number(p?.port), protocol: p?.protocol ?? 'TCP' }
    if (p?.appProtocol) out.appProtocol = p.appProtocol
    return out
  })
}

interface Desired {
  type: 'IPv4' | 'IPv6'
  ports: EndpointPort[]
  endpoints: Map<string, Record<string, unknown>>
}

const groupKey = (type: string, ports: Array<Partial<EndpointPort>>) => `${type}${portKey(ports)}`

/** The endpoints wanted per (address type, port set), with the counts of addresses left out. */
export function desiredMirror(ep: KubeObject, max = maxEndpointsPerSubset): { groups: Map<string, Desired>; invalid: number; skipped: number } {
  const groups = new Map<string, Desired>()
  let invalid = 0
  let skipped = 0
  for (const subset of Array.isArray(ep.subsets) ? ep.subsets : []) {
    const ports = slicePorts(subset?.ports)
    const listed = [
      ...(Array.isArray(subset?.addresses) ? subset.addresses : []).map((a: any) => ({ a, ready: true })),
      ...(Array.isArray(subset?.notReadyAddresses) ? subset.notReadyAddresses : []).map((a: any) => ({ a, ready: false })),
    ]
    let added = 0
    for (const { a, ready } of listed) {
      if (added >= max) break
      const addr = parseAddress(a?.ip)
      if (!addr) {
        invalid++
        continue
      }
      const key = groupKey(addr.type, ports)
      let g = groups.get(key)
      if (!g) groups.set(key, (g = { type: addr.type, ports, endpoints: new Map() }))
      const e = addressToEndpoint(a, ready, addr.ip)
      g.endpoints.set(canonical(e), e)
      added++
    }
    skipped += listed.length - added
  }
  return { groups, invalid, skipped }
}

function sliceMeta(ep: KubeObject): { labels: Record<string, string>; annotations: Record<string, string>; ownerReferences: any[] } {
  const annotations: Record<string, string> = { ...(ep.metadata.annotations ?? {}) }
  delete annotations[lastChangeTriggerTimeAnnotation]
  delete annotations[lastAppliedAnnotation]
  return {
    labels: { ...(ep.metadata.labels ?? {}), [serviceNameLabel]: ep.metadata.name!, [managedByLabel]: mirroringManagedByValue },
    annotations,
    ownerReferences: [{ apiVersion: 'v1', kind: 'Endpoints', name: ep.metadata.name!, uid: ep.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
  }
}

const byName = (a: KubeObject, b: KubeObject) => (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0)

function sameSlice(slice: KubeObject, want: KubeObject): boolean {
  const set = (eps: unknown) => (Array.isArray(eps) ? eps.map(canonical).sort() : [])
  return (
    canonical(set(slice.endpoints)) === canonical(set(want.endpoints)) &&
    canonical(slice.ports ?? []) === canonical(want.ports) &&
    canonical(slice.metadata.labels ?? {}) === canonical(want.metadata.labels) &&
    canonical(slice.metadata.annotations ?? {}) === canonical(want.metadata.annotations ?? {}) &&
    canonical(slice.metadata.ownerReferences ?? []) === canonical(want.metadata.ownerReferences)
  )
}

/**
 * Mirrored slices to create, update and delete for the Endpoints `ns/name`.
 * `endpoints` and `svc` are the objects of that name (undefined when absent);
 * `existing` may hold any slices, only the mirrored ones of that name count.
 */
export function planMirroredSlices(
  ns: string,
  name: string,
  endpoints: KubeObject | undefined,
  svc: KubeObject | undefined,
  existing: KubeObject[],
  opts: { maxEndpointsPerSubset?: number } = {},
): MirrorPlan {
  const owned = existing.filter((s) => isMirroredSliceOf(s, ns, name)).sort(byName)
  const plan: MirrorPlan = { create: [], update: [], delete: [], invalidAddresses: 0, skippedAddresses: 0 }
  if (!endpoints || !shouldMirror(endpoints) || !mirrorsFor(svc)) return { ...plan, delete: owned }
  const max = opts.maxEndpointsPerSubset ?? maxEndpointsPerSubset
  const { groups, invalid, skipped } = desiredMirror(endpoints, max)
  plan.invalidAddresses = invalid
  plan.skippedAddresses = skipped
  const meta = sliceMeta(endpoints)
  const existingByKey = new Map<string, KubeObject[]>()
  for (const s of owned) {
    const k = groupKey(s.addressType ?? 'IPv4', s.ports ?? [])
    existingByKey.set(k, [...(existingByKey.get(k) ?? []), s])
  }
  for (const [key, g] of groups) {
    const have = existingByKey.get(key) ?? []
    existingByKey.delete(key)
    const want: KubeObject = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace: ns, ...meta },
      addressType: g.type,
      endpoints: [...g.endpoints.values()].slice(0, max),
      ports: g.ports,
    }
    // One slice per group: the first existing one is kept (rewritten if it differs), the rest go.
    plan.delete.push(...have.slice(1))
    const first = have[0]
    if (!first) plan.create.push({ ...want, metadata: { ...want.metadata, generateName: `${name.slice(0, 62)}-` } })
    else if (!sameSlice(first, want)) plan.update.push({ ...first, ...want, metadata: { ...first.metadata, ...meta } })
  }
  for (const rest of existingByKey.values()) plan.delete.push(...rest)
  return recycle(plan)
}

/** A slice about to be deleted is rewritten instead of creating a new one (Kubernetes' recycleSlices). */
function recycle(plan: MirrorPlan): MirrorPlan {
  // addressType is immutable, so only a slice of the same type is reused.
  for (const made of [...plan.create]) {
    const i = plan.delete.findIndex((s) => (s.addressType ?? 'IPv4') === made.addressType)
    if (i < 0) continue
    const old = plan.delete.splice(i, 1)[0]!
    plan.create.splice(plan.create.indexOf(made), 1)
    const { generateName: _g, ...meta } = made.metadata
    plan.update.push({ ...old, ...made, metadata: { ...old.metadata, ...meta, name: old.metadata.name } })
  }
  return plan
}
