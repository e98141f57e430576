// buildRoutingTable: the whole desired service table of one node, as a pure
// function of the Services, the EndpointSlices and the node (types.ts has the
// contract). Endpoint choice follows kube-proxy (pkg/proxy/topology.go,
// CategorizeEndpoints):
//  - cluster endpoints: the ready ones; when none is ready, the serving and
//    terminating ones (so a rolling update never blackholes a Service);
//  - local endpoints: the same rule applied to the endpoints on this node;
//  - a Service port matches an EndpointSlice port by name (the slice already
//    carries the resolved target port number of each pod);
//  - ExternalName and headless Services get no entry: nothing to proxy;
//  - NodePorts only for NodePort/LoadBalancer, LoadBalancer IPs from
//    status.loadBalancer.ingress[].ip.

import type { KubeObject } from '../../controlplane/api/types.ts'
import type { Endpoint, NodeView, Protocol, RoutingTable, ServicePort } from './types.ts'

export const serviceNameLabel = 'kubernetes.io/service-name'

export interface TableInputs {
  services: KubeObject[]
  slices: KubeObject[]
  node: NodeView
  generation?: number
}

/** The node's view from its Node object: addresses, podCIDR. */
export function nodeViewFrom(node: KubeObject, clusterCIDR: string): NodeView {
  const addrs = (node.status?.addresses ?? []) as Array<{ type: string; address: string }>
  const addresses = [...new Set(addrs.filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address))]
  return { name: node.metadata.name!, addresses, podCIDR: node.spec?.podCIDR ?? '', clusterCIDR }
}

/** Whether the Service is proxied at all (has a virtual IP). */
export function isProxied(svc: KubeObject): boolean {
  const spec = svc.spec ?? {}
  if (spec.type === 'ExternalName') return false
  return typeof spec.clusterIP === 'string' && spec.clusterIP !== '' && spec.clusterIP !== 'None'
}

/**
 * What the previous build made, per Service: an unchanged Service (the same
 * resourceVersion, the same slices at the same resourceVersions, the same
 * node) keeps its ServicePort objects, so a sync after one EndpointSlice
 * change recomputes one Service, and later stages (the nftables model cache)
 * can recognise unchanged ports by identity.
 */
export interface TableCache {
  entries: Map<string, { key: string; ports: ServicePort[] }>
}

export function buildRoutingTable(services: KubeObject[], slices: KubeObject[], node: NodeView, generation: number, cache?: TableCache): RoutingTable {
  const byService = new Map<string, KubeObject[]>()
  for (const s of slices) {
    const name = s.metadata.labels?.[serviceNameLabel]
    if (!name || (s.addressType ?? 'IPv4') !== 'IPv4') continue
    const key = `${s.metadata.namespace}/${name}`
    const list = byService.get(key)
    if (list) list.push(s)
    else byService.set(key, [s])
  }
  const ports: ServicePort[] = []
  const before = cache?.entries
  const now = new Map<string, { key: string; ports: ServicePort[] }>()
  for (const svc of services) {
    if (!isProxied(svc)) continue
    const name = `${svc.metadata.namespace}/${svc.metadata.name}`
    const own = byService.get(name) ?? []
    const key = cache ? contentKey(svc, own, node) : undefined
    const hit = key !== undefined ? before!.get(name) : undefined
    const made = hit && hit.key === key ? hit.ports : (Array.isArray(svc.spec.ports) ? svc.spec.ports : []).map((sp: any) => servicePort(svc, sp, own, node))
    if (key !== undefined) now.set(name, { key, ports: made })
    ports.push(...made)
  }
  if (cache) cache.entries = now
  ports.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return { node, ports, generation }
}

/** What a Service's ports depend on, by resourceVersion; undefined (never cached) when an object has none. */
function contentKey(svc: KubeObject, slices: KubeObject[], node: NodeView): string | undefined {
  const rv = svc.metadata.resourceVersion
  if (!rv) return undefined
  const parts = [node.name, svc.metadata.uid ?? '', rv]
  for (const s of slices) {
    if (!s.metadata.resourceVersion) return undefined
    parts.push(`${s.metadata.name}@${s.metadata.resourceVersion}`)
  }
  return parts.join(' ')
}

function servicePort(svc: KubeObject, sp: any, slices: KubeObject[], node: NodeView): ServicePort {
  const spec = svc.spec
  const portName: string = sp.name ?? ''
  const protocol: Protocol = sp.protocol ?? 'TCP'
  const all = endpointsFor(slices, portName, protocol)
  const external = spec.type === 'NodePort' || spec.type === 'LoadBalancer'
  const isLB = spec.type === 'LoadBalancer'
  const affinity = spec.sessionAffinity === 'ClientIP' ? Number(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : 0
  const out: ServicePort = {
    id: `${svc.metadata.namespace}/${svc.metadata.name}:${portName}`,
    namespace: svc.metadata.namespace!,
    service: svc.metadata.name!,
    portName,
    protocol,
    clusterIP: spec.clusterIP,
    port: Number(sp.port),
    loadBalancerIPs: isLB ? lbIPs(svc) : [],
    externalIPs: Array.isArray(spec.externalIPs) ? [...spec.externalIPs] : [],
    clusterEndpoints: usable(all),
    localEndpoints: usable(all.filter((e) => e.nodeName === node.name)),
    externalTrafficPolicy: external && spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    internalTrafficPolicy: spec.internalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    affinitySeconds: affinity > 0 ? affinity : 0,
  }
  if (external && sp.nodePort) out.nodePort = Number(sp.nodePort)
  if (isLB && out.externalTrafficPolicy === 'Local' && spec.healthCheckNodePort) out.healthCheckNodePort = Number(spec.healthCheckNodePort)
  return out
}

function lbIPs(svc: KubeObject): string[] {
  const ingress = (svc.status?.loadBalancer?.ingress ?? []) as Array<{ ip?: string }>
  return [...new Set(ingress.map((i) => i.ip).filter((ip): ip is string => !!ip && !ip.includes(':')))]
}

/** Every endpoint of the slices for the port named `portName`, deduplicated by ip:port, sorted. */
function endpointsFor(slices: KubeObject[], portName: string, protocol: Protocol): Endpoint[] {
  const seen = new Map<string, Endpoint>()
  for (const s of slices) {
    const p = (Array.isArray(s.ports) ? s.ports : []).find((x: any) => (x.name ?? '') === portName && (x.protocol ?? 'TCP') === protocol)
    if (!p || typeof p.port !== 'number') continue
    for (const e of Array.isArray(s.endpoints) ? s.endpoints : []) {
      const c = e.conditions ?? {}
      // API semantics: a missing `ready` means ready; a missing `serving` means the same as ready.
      const ready = c.ready !== false
      const serving = c.serving ?? ready
      const terminating = c.terminating === true
      for (const ip of (e.addresses ?? []) as string[]) {
        const ep: Endpoint = { ip, port: p.port, ready, serving, terminating }
        if (e.nodeName) ep.nodeName = e.nodeName
        const k = `${ip}:${p.port}`
        // The same address in two slices (during a move): trust the readier copy.
        const prev = seen.get(k)
        if (!prev || (!prev.ready && ready)) seen.set(k, ep)
      }
    }
  }
  return [...seen.values()].sort(compareEndpoints)
}

/** Ready endpoints; when none is ready, the serving terminating ones. */
function usable(eps: Endpoint[]): Endpoint[] {
  const ready = eps.filter((e) => e.ready)
  return ready.length > 0 ? ready : eps.filter((e) => e.serving && e.terminating)
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  const x = ipNum(a.ip) - ipNum(b.ip)
  return x !== 0 ? x : a.port - b.port
}

export function ipNum(ip: string): number {
  const p = ip.split('.').map(Number)
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0
}

export function inCIDR(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/')
  if (!base || bits === undefined) return false
  const n = Number(bits)
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0
  return ((ipNum(ip) & mask) >>> 0) === ((ipNum(base) & mask) >>> 0)
}

/** `ip:port` of an endpoint, the form used by tracers, rules and the debug table. */
export function endpointKey(e: { ip: string; port: number }): string {
  return `${e.ip}:${e.port}`
}
