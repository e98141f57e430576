// "Applied on n/n nodes" (issue 11): which data-plane components serve now,
// and which of them route by a given store revision. Pure; the apiserver's
// printers and the node agent's terminating-pod wait both use it.
//
// The reports (dataplane/applied-revision.ts):
//  - every node's service proxy: the node Lease kube-node-lease/<node>,
//    annotation service-proxy.skiff.dev/applied-revision;
//  - every serving ingress node of a class: its presence Lease
//    kube-system/ingress-<class>-node-<node>, annotation
//    ingress.skiff.dev/applied-revision (only while ready).
// A component counts while its Lease is fresh: a dead node stops counting
// when its Lease runs out, as it stops being Ready. Freshness is the
// caller's judgement (a LeaseObserver: seen renewed within its duration on
// the reader's monotonic clock), never the writer's renewTime against the
// reader's wall clock; only one-shot readers without history use
// leaseFreshByWallClock.

import type { KubeObject } from './types.ts'

export const proxyAppliedAnnotation = 'service-proxy.skiff.dev/applied-revision'
export const ingressAppliedAnnotation = 'ingress.skiff.dev/applied-revision'
export const nodeLeaseNamespace = 'kube-node-lease'
export const presenceLeaseNamespace = 'kube-system'
const presenceName = /^ingress-(.+)-node-(.+)$/
const sliceServiceLabel = 'kubernetes.io/service-name'

export interface Applier {
  node: string
  /** 'service-proxy' or 'ingress/<class>'. */
  component: string
  revision: number
}

/** Whether a Lease counts as renewed within its duration (see LeaseObserver.fresh). */
export type LeaseFreshness = (lease: KubeObject) => boolean

/**
 * renewTime within leaseDurationSeconds of `nowMs`: the writer's wall clock
 * against the reader's. Only for one-shot readers that have seen no earlier
 * version of the Lease (`skiff kubeconfig`); a clock off by more than the
 * duration on either side gets it wrong.
 */
export function leaseFreshByWallClock(lease: KubeObject, nowMs: number): boolean {
  const renew = Date.parse(String(lease.spec?.renewTime ?? ''))
  const duration = Number(lease.spec?.leaseDurationSeconds ?? 0)
  return Number.isFinite(renew) && duration > 0 && renew + duration * 1000 > nowMs
}

/** The components serving now, from node Leases and ingress presence Leases (other Leases are ignored). */
export function servingAppliers(leases: Iterable<KubeObject>, fresh: LeaseFreshness): Applier[] {
  const out: Applier[] = []
  for (const l of leases) {
    const ns = l.metadata?.namespace
    const a = l.metadata?.annotations ?? {}
    if (ns === nodeLeaseNamespace && a[proxyAppliedAnnotation] !== undefined) {
      if (fresh(l)) out.push({ node: l.metadata.name!, component: 'service-proxy', revision: Number(a[proxyAppliedAnnotation]) || 0 })
      continue
    }
    const m = ns === presenceLeaseNamespace ? presenceName.exec(l.metadata?.name ?? '') : null
    if (m && a[ingressAppliedAnnotation] !== undefined && a['ingress.skiff.dev/ready'] === 'true' && fresh(l)) {
      out.push({ node: m[2]!, component: `ingress/${m[1]}`, revision: Number(a[ingressAppliedAnnotation]) || 0 })
    }
  }
  return out
}

/** How many of `appliers` route by `target` or newer, e.g. "3/3". */
export function appliedText(appliers: Applier[], target: number): string {
  if (appliers.length === 0) return '<none>'
  return `${appliers.filter((a) => a.revision >= target).length}/${appliers.length}`
}

function rv(o: KubeObject | undefined): number {
  return Number(o?.metadata?.resourceVersion ?? 0) || 0
}

/** The revision a Service's routing must reach: the Service and its EndpointSlices. */
export function serviceTarget(svc: KubeObject, slices: Iterable<KubeObject>): number {
  let target = rv(svc)
  for (const s of slices) {
    if (s.metadata?.namespace === svc.metadata.namespace && s.metadata?.labels?.[sliceServiceLabel] === svc.metadata.name) target = Math.max(target, rv(s))
  }
  return target
}

/** The Services an Ingress sends to (rules and default backend). */
export function ingressBackendServices(ing: KubeObject): Set<string> {
  const names = new Set<string>()
  const add = (b: any) => {
    if (typeof b?.service?.name === 'string') names.add(b.service.name)
  }
  add(ing.spec?.defaultBackend)
  for (const r of Array.isArray(ing.spec?.rules) ? ing.spec.rules : []) for (const p of Array.isArray(r?.http?.paths) ? r.http.paths : []) add(p?.backend)
  return names
}

/** The revision an Ingress's routing must reach: the Ingress, its backend Services and their EndpointSlices. */
export function ingressTarget(ing: KubeObject, services: Iterable<KubeObject>, slices: Iterable<KubeObject>): number {
  const backends = ingressBackendServices(ing)
  const ns = ing.metadata.namespace
  let target = rv(ing)
  for (const s of services) if (s.metadata?.namespace === ns && backends.has(s.metadata.name!)) target = Math.max(target, rv(s))
  for (const s of slices) if (s.metadata?.namespace === ns && backends.has(s.metadata?.labels?.[sliceServiceLabel] ?? '')) target = Math.max(target, rv(s))
  return target
}

/** Appliers that matter for an Ingress: the ingress nodes of its class (every class when it names none). */
export function ingressAppliers(ing: KubeObject, appliers: Applier[]): Applier[] {
  const cls = ing.spec?.ingressClassName as string | undefined
  return appliers.filter((a) => (cls ? a.component === `ingress/${cls}` : a.component.startsWith('ingress/')))
}

export function proxyAppliers(appliers: Applier[]): Applier[] {
  return appliers.filter((a) => a.component === 'service-proxy')
}
