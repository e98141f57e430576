// What a Service's endpoints are, as pure functions shared by the
// EndpointSlice builder (endpointslice.ts) and the legacy v1 Endpoints
// builder below: which pods a Service selects, whether each is ready, and
// the port each Service port resolves to on each pod (a named targetPort is
// looked up in that pod's container ports, so two pods may differ).
//
// Legacy Endpoints mirror the slices so `kubectl get ep` and
// `kubectl describe svc` show them: one subset per distinct port mapping
// (a pod resolving none of the Service's ports is left out, while the slices
// keep it in a slice without ports, both as Kubernetes does),
// ready pods in `addresses`, not-ready ones in `notReadyAddresses`,
// terminating pods left out (unless publishNotReadyAddresses), at most 1000
// addresses (then the over-capacity annotation, as Kubernetes does).

import type { KubeObject } from '../api/types.ts'
import { labelSelectorFromObject, matchesLabels } from '../api/selectors.ts'

export const serviceNameLabel = 'kubernetes.io/service-name'
export const managedByLabel = 'endpointslice.kubernetes.io/managed-by'
export const managedByValue = 'endpointslice-controller.k8s.io'
export const headlessLabel = 'service.kubernetes.io/headless'
export const skipMirrorLabel = 'endpointslice.kubernetes.io/skip-mirror'
export const overCapacityAnnotation = 'endpoints.kubernetes.io/over-capacity'
export const maxEndpointsAddresses = 1000

export interface EndpointPort {
  name: string
  port: number
  protocol: string
  appProtocol?: string
}

/** A selected pod with what every endpoint format needs. */
export interface PodEndpoint {
  pod: KubeObject
  ip: string
  ready: boolean
  serving: boolean
  terminating: boolean
  hostname?: string
  ports: EndpointPort[]
  portKey: string
}

/**
 * Whether this controller manages the Service's endpoints: it has a non-empty
 * selector and is not ExternalName. Services without a selector get their
 * endpoints from whoever writes them by hand.
 */
export function hasManagedEndpoints(svc: KubeObject): boolean {
  const sel = svc.spec?.selector
  return svc.spec?.type !== 'ExternalName' && sel !== null && typeof sel === 'object' && Object.keys(sel).length > 0
}

export function isHeadless(svc: KubeObject): boolean {
  return svc.spec?.clusterIP === 'None'
}

export function isPodReady(pod: KubeObject): boolean {
  const conds: any[] = Array.isArray(pod.status?.conditions) ? pod.status.conditions : []
  return conds.some((c) => c?.type === 'Ready' && c.status === 'True')
}

/** The pod's IPv4 address (slices here are addressType IPv4), or undefined. */
export function podIPv4(pod: KubeObject): string | undefined {
  const isV4 = (ip: unknown): ip is string => typeof ip === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(ip)
  if (isV4(pod.status?.podIP)) return pod.status.podIP
  const ips: any[] = Array.isArray(pod.status?.podIPs) ? pod.status.podIPs : []
  return ips.map((p) => p?.ip).find(isV4)
}

/** The ports of `svc` as resolved on `pod`; a named targetPort the pod lacks is left out. */
export function resolvePorts(svc: KubeObject, pod: KubeObject): EndpointPort[] {
  const out: EndpointPort[] = []
  for (const sp of Array.isArray(svc.spec?.ports) ? svc.spec.ports : []) {
    const protocol = sp.protocol ?? 'TCP'
    const target = sp.targetPort ?? sp.port
    let port: number | undefined
    if (typeof target === 'number') port = target
    else if (typeof target === 'string' && /^\d+$/.test(target)) port = Number(target)
    else if (typeof target === 'string') port = findNamedPort(pod, target, protocol)
    if (port === undefined || port <= 0) continue
    const ep: EndpointPort = { name: sp.name ?? '', port, protocol }
    if (sp.appProtocol) ep.appProtocol = sp.appProtocol
    out.push(ep)
  }
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

function findNamedPort(pod: KubeObject, name: string, protocol: string): number | undefined {
  for (const c of Array.isArray(pod.spec?.containers) ? pod.spec.containers : []) {
    for (const p of Array.isArray(c?.ports) ? c.ports : []) {
      if (p?.name === name && (p.protocol ?? 'TCP') === protocol) return p.containerPort
    }
  }
  return undefined
}

export function portKey(ports: Array<Partial<EndpointPort>>): string {
  return JSON.stringify([...ports].map((p) => [p.name ?? '', p.port ?? 0, p.protocol ?? 'TCP', p.appProtocol ?? '']).sort())
}

/**
 * The pods `svc` selects that can be endpoints: same namespace, labels match,
 * an IPv4 podIP, not finished. Sorted by name so every builder is deterministic.
 */
export function podEndpoints(svc: KubeObject, pods: KubeObject[]): PodEndpoint[] {
  if (!hasManagedEndpoints(svc)) return []
  const selector = labelSelectorFromObject({ matchLabels: svc.spec.selector })
  const ns = svc.metadata.namespace
  const publishAll = svc.spec?.publishNotReadyAddresses === true
  const out: PodEndpoint[] = []
  for (const pod of pods) {
    if (pod.metadata.namespace !== ns || !matchesLabels(selector, pod.metadata.labels)) continue
    const phase = pod.status?.phase
    const ip = podIPv4(pod)
    if (!ip || phase === 'Succeeded' || phase === 'Failed') continue
    const terminating = Boolean(pod.metadata.deletionTimestamp)
    const serving = publishAll || isPodReady(pod)
    const ports = resolvePorts(svc, pod)
    const e: PodEndpoint = { pod, ip, ready: publishAll || (serving && !terminating), serving, terminating, ports, portKey: portKey(ports) }
    if (pod.spec?.hostname && pod.spec?.subdomain === svc.metadata.name) e.hostname = pod.spec.hostname
    out.push(e)
  }
  return out.sort((a, b) => (a.pod.metadata.name! < b.pod.metadata.name! ? -1 : a.pod.metadata.name! > b.pod.metadata.name! ? 1 : 0))
}

/** Labels every endpoints object of `svc` carries: the Service's own, then ours. */
export function endpointLabels(svc: KubeObject, extra: Record<string, string>): Record<string, string> {
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}), ...extra }
  if (isHeadless(svc)) labels[headlessLabel] = ''
  return labels
}

export function targetRef(pod: KubeObject): Record<string, string> {
  return { kind: 'Pod', namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid ?? '' }
}

/** JSON with sorted keys: compares what we wrote with what the server stored. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x))
}

// ---------------------------------------------------------------------------
// Legacy v1 Endpoints

/** The desired Endpoints object of `svc` (name and namespace of the Service). */
export function buildEndpoints(svc: KubeObject, pods: KubeObject[]): KubeObject {
  const publishAll = svc.spec?.publishNotReadyAddresses === true
  const groups = new Map<string, { ports: EndpointPort[]; addresses: any[]; notReadyAddresses: any[] }>()
  // Kubernetes' Endpoints controller lists a pod per Service port it resolves, so a pod that resolves
  // none is not listed at all; only a headless Service without ports lists pods with no ports.
  const portless = !(Array.isArray(svc.spec?.ports) && svc.spec.ports.length > 0) && isHeadless(svc)
  const listed = podEndpoints(svc, pods).filter((e) => (publishAll || !e.terminating) && (portless || e.ports.length > 0))
  for (const e of listed.slice(0, maxEndpointsAddresses)) {
    let g = groups.get(e.portKey)
    if (!g) groups.set(e.portKey, (g = { ports: e.ports, addresses: [], notReadyAddresses: [] }))
    const addr: Record<string, unknown> = { ip: e.ip }
    if (e.hostname) addr.hostname = e.hostname
    if (e.pod.spec?.nodeName) addr.nodeName = e.pod.spec.nodeName
    addr.targetRef = targetRef(e.pod)
    ;(e.ready ? g.addresses : g.notReadyAddresses).push(addr)
  }
  const byIP = (a: any, b: any) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)
  const subsets = [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, g]) => {
      const s: Record<string, unknown> = {}
      if (g.addresses.length) s.addresses = g.addresses.sort(byIP)
      if (g.notReadyAddresses.length) s.notReadyAddresses = g.notReadyAddresses.sort(byIP)
      // Endpoints ports omit an empty name (a single unnamed port).
      s.ports = g.ports.map(({ name, ...rest }) => (name ? { name, ...rest } : rest))
      return s
    })
  const annotations = listed.length > maxEndpointsAddresses ? { [overCapacityAnnotation]: 'truncated' } : undefined
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace, labels: endpointLabels(svc, { [skipMirrorLabel]: 'true' }), ...(annotations ? { annotations } : {}) },
    subsets,
  }
}

export type EndpointsAction = { op: 'none' } | { op: 'create'; object: KubeObject } | { op: 'update'; object: KubeObject } | { op: 'delete'; object: KubeObject }

/**
 * What to do about the Endpoints named like the Service. `svc` undefined means
 * the Service is gone: its Endpoints go too if we wrote them (our label).
 */
export function planEndpoints(svc: KubeObject | undefined, pods: KubeObject[], existing: KubeObject | undefined): EndpointsAction {
  if (!svc || !hasManagedEndpoints(svc)) {
    // Without a selector the Endpoints belong to the user; ones we wrote for a deleted or ExternalName Service go.
    const ours = existing?.metadata.labels?.[skipMirrorLabel] === 'true'
    const gone = !svc || svc.spec?.type === 'ExternalName'
    return existing && ours && gone ? { op: 'delete', object: existing } : { op: 'none' }
  }
  const want = buildEndpoints(svc, pods)
  if (!existing) return { op: 'create', object: want }
  const same =
    canonical(existing.subsets ?? []) === canonical(want.subsets) &&
    canonical(existing.metadata.labels ?? {}) === canonical(want.metadata.labels) &&
    existing.metadata.annotations?.[overCapacityAnnotation] === want.metadata.annotations?.[overCapacityAnnotation]
  if (same) return { op: 'none' }
  const annotations = { ...(existing.metadata.annotations ?? {}) }
  delete annotations[overCapacityAnnotation]
  Object.assign(annotations, want.metadata.annotations ?? {})
  return { op: 'update', object: { ...existing, metadata: { ...existing.metadata, labels: want.metadata.labels, annotations }, subsets: want.subsets } }
}
