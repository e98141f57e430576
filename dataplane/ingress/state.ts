// Snapshot → the runtime state a worker serves from (pure). Everything a
// request needs is computed here once per snapshot: the route table, each
// Ingress's options, each backend's usable endpoints, the compiled source
// ranges. The worker swaps the whole value in one assignment, so a request
// sees one generation only.

import type { BlockList } from 'node:net'
import { compileRouteTable, ingressKey, type Backend, type BrokenIngress, type Conflict, type RouteTable } from './routes.ts'
import { compileRanges, ingressOptions, type IngressOptions } from './options.ts'
import type { CertificateInfo, EndpointInfo, IngressSnapshot, ServiceInfo } from './snapshot.ts'
import { compileGatewayTable, type GatewayTable } from './gateway-routes.ts'

export interface Endpoint {
  /** `ip:port`: the key of agents, balancer state and access logs. */
  id: string
  ip: string
  port: number
  pod?: string
}

/** A backend resolved to endpoints, or why it cannot be served (→ 503). */
export type ResolvedBackend =
  | { ok: true; key: string; endpoints: Endpoint[]; terminatingFallback: boolean }
  | { ok: false; key: string; reason: string }

export interface IngressRuntime {
  key: string
  options: IngressOptions
  /** undefined: everyone may connect. */
  allow: BlockList | undefined
  /** spec.tls entries: hosts → 'namespace/secret'. */
  tls: { hosts: string[]; secret: string }[]
}

export interface RuntimeState {
  generation: number
  className: string
  table: RouteTable
  conflicts: Conflict[]
  broken: BrokenIngress[]
  ingresses: Map<string, IngressRuntime>
  /** By backendKey(namespace, backend). */
  backends: Map<string, ResolvedBackend>
  challenges: Record<string, string>
  /** Trusted proxies; undefined when there are none (the common case: no lookup per request). */
  trusted: BlockList | undefined
  certificates: Record<string, CertificateInfo>
  defaultCertificate: { cert: string; key: string } | undefined
  /** Gateway API routes (gateway-routes.ts); empty when the class has none. */
  gateway: GatewayTable
}

export const backendKey = (namespace: string, b: Backend): string => `${namespace}/${b.service}:${b.port}`

export function compileState(snap: IngressSnapshot): RuntimeState {
  const { table, conflicts, broken } = compileRouteTable(snap.ingresses, { className: snap.className, isDefaultClass: snap.isDefaultClass })
  const classAllow = snap.settings.defaultAllowSourceRanges
  const ingresses = new Map<string, IngressRuntime>()
  for (const ing of snap.ingresses) {
    const options = ingressOptions(ing)
    const ranges = options.allowSourceRanges ?? classAllow
    ingresses.set(ingressKey(ing), { key: ingressKey(ing), options, allow: ranges ? compileRanges(ranges) : undefined, tls: tlsEntries(ing) })
  }
  const backends = new Map<string, ResolvedBackend>()
  const add = (namespace: string, b: Backend): void => {
    const key = backendKey(namespace, b)
    if (!backends.has(key)) backends.set(key, resolveBackend(snap, namespace, b))
  }
  for (const e of routeEntries(table)) add(e.namespace, e.backend)
  if (table.defaultBackend) add(table.defaultBackend.namespace, table.defaultBackend.backend)
  const gateway = compileGatewayTable(snap.gateway)
  for (const r of snap.gateway?.routes ?? []) for (const rule of r.rules) for (const b of rule.backends) if (!('error' in b)) add(b.namespace, { service: b.service, port: b.port })
  return {
    generation: snap.generation,
    className: snap.className,
    table,
    conflicts,
    broken,
    ingresses,
    backends,
    challenges: snap.challenges ?? {},
    trusted: snap.settings.trustedProxies?.length ? compileRanges(snap.settings.trustedProxies) : undefined,
    certificates: snap.certificates ?? {},
    defaultCertificate: snap.defaultCertificate,
    gateway,
  }
}

function tlsEntries(ing: { metadata?: any; spec?: any }): { hosts: string[]; secret: string }[] {
  const tls: any[] = Array.isArray(ing.spec?.tls) ? ing.spec.tls : []
  const ns = ing.metadata?.namespace ?? ''
  return tls
    .filter((t) => typeof t?.secretName === 'string' && t.secretName !== '')
    .map((t) => ({ hosts: (Array.isArray(t.hosts) ? t.hosts : []).map((h: string) => String(h).toLowerCase()), secret: `${ns}/${t.secretName}` }))
}

function* routeEntries(table: RouteTable) {
  const hosts = [...table.exactHosts.values(), ...table.wildcardHosts.values(), ...(table.anyHost ? [table.anyHost] : [])]
  for (const h of hosts) for (const g of [...h.exact.values(), ...h.prefixes]) yield* g.entries
}

/** The ServicePort a backend names: by number (its `port`) or by name. */
export function servicePort(svc: ServiceInfo, port: number | string): string | undefined {
  const p = svc.ports.find((sp) => (typeof port === 'number' ? sp.port === port : sp.name === port))
  return p?.name
}

/**
 * Backend → endpoints, never the ClusterIP. Ready endpoints; when none is
 * ready, the serving + terminating ones (as kube-proxy does), so a rollout's
 * last old pods still answer. Endpoints on unreachable nodes are left out
 * while any other remains. ExternalName is not proxied (503 with a reason).
 */
export function resolveBackend(snap: Pick<IngressSnapshot, 'services' | 'endpoints' | 'unreachableNodes'>, namespace: string, b: Backend): ResolvedBackend {
  const key = backendKey(namespace, b)
  const svcKey = `${namespace}/${b.service}`
  const svc = snap.services[svcKey]
  if (!svc) return { ok: false, key, reason: `service ${svcKey} not found` }
  if (svc.type === 'ExternalName') return { ok: false, key, reason: `service ${svcKey} is ExternalName (${svc.externalName ?? ''}): not supported by the ingress` }
  const portName = servicePort(svc, b.port)
  if (portName === undefined) return { ok: false, key, reason: `service ${svcKey} has no port ${b.port}` }
  const withPort = (snap.endpoints[svcKey] ?? []).filter((e) => typeof e.ports[portName] === 'number')
  // Pods on a host that is not Ready are skipped at once (before their own conditions change), unless nothing else is left.
  const dead = new Set(snap.unreachableNodes ?? [])
  const live = withPort.filter((e) => !e.nodeName || !dead.has(e.nodeName))
  const all = live.length > 0 ? live : withPort
  const ready = all.filter((e) => e.ready)
  const chosen = ready.length > 0 ? ready : all.filter((e) => e.serving && e.terminating)
  if (chosen.length === 0) return { ok: false, key, reason: `service ${svcKey} has no ready endpoints` }
  return { ok: true, key, endpoints: chosen.map((e) => toEndpoint(e, portName)), terminatingFallback: ready.length === 0 }
}

function toEndpoint(e: EndpointInfo, portName: string): Endpoint {
  const port = e.ports[portName]!
  const host = e.ip.includes(':') ? `[${e.ip}]` : e.ip
  return { id: `${host}:${port}`, ip: e.ip, port, pod: e.pod }
}

/** Every endpoint id in the state: agents of others are closed after a swap. */
export function endpointIds(state: RuntimeState): Set<string> {
  const ids = new Set<string>()
  for (const b of state.backends.values()) if (b.ok) for (const e of b.endpoints) ids.add(e.id)
  return ids
}
