// `skiff service NAME [--url]`: every way to reach a Service from outside
// the cluster, as `minikube service --url` prints it, from the objects alone
// (pure, table-tested in test/unit/service-urls.test.ts):
//   - NodePort: each nodePort on every node address (InternalIP, ExternalIP)
//     of a Ready node, for type NodePort and LoadBalancer;
//   - LoadBalancer: status.loadBalancer.ingress (ip or hostname) with each port;
//   - Ingress: every rule path (and defaultBackend) of the Service's namespace
//     that sends to it, on the rule's host (else the Ingress's status
//     addresses); https when spec.tls lists the host (or lists no hosts);
//   - Gateway: every HTTPRoute rule with a backendRef to it, on each accepted
//     listener of its parent Gateways; the route's hostnames (else the
//     listener's, else the Gateway's status addresses); https for an HTTPS
//     listener; the listener port unless it is the scheme's default.
// A port named or declaring appProtocol https (or port 443) is https; UDP
// ports print udp://, SCTP ones are skipped.

import type { KubeObject } from '../controlplane/api/types.ts'

export interface ServiceUrl {
  /** How the URL reaches the Service. */
  via: 'NodePort' | 'LoadBalancer' | 'Ingress' | 'Gateway'
  /** The Service port's name, else its number. */
  port: string
  url: string
  /** The object that makes the route (Ingress ns/name, Gateway ns/name via HTTPRoute ns/name). */
  through?: string
}

export interface ServiceUrlInput {
  service: KubeObject
  nodes: KubeObject[]
  ingresses?: KubeObject[]
  httpRoutes?: KubeObject[]
  gateways?: KubeObject[]
}

const hostPort = (host: string, port: number, scheme: string) =>
  `${host.includes(':') ? `[${host}]` : host}${(scheme === 'http' && port === 80) || (scheme === 'https' && port === 443) ? '' : `:${port}`}`

function portScheme(p: any): string {
  const proto = String(p.protocol ?? 'TCP').toUpperCase()
  if (proto === 'UDP') return 'udp'
  if (proto !== 'TCP') return ''
  const https = /^https/i.test(String(p.name ?? '')) || /^https$/i.test(String(p.appProtocol ?? '')) || p.port === 443
  return https ? 'https' : 'http'
}

const portLabel = (p: any) => String(p.name || p.port)

function nodeReady(n: KubeObject): boolean {
  const c = (n.status?.conditions ?? []).find((x: any) => x.type === 'Ready')
  return !c || c.status === 'True'
}

function nodeAddresses(nodes: KubeObject[]): string[] {
  const out: string[] = []
  for (const n of nodes) {
    if (!nodeReady(n)) continue
    for (const type of ['InternalIP', 'ExternalIP']) {
      for (const a of n.status?.addresses ?? []) if (a?.type === type && a.address && !out.includes(a.address)) out.push(a.address)
    }
  }
  return out
}

function nodePortUrls(svc: KubeObject, nodes: KubeObject[]): ServiceUrl[] {
  if (svc.spec?.type !== 'NodePort' && svc.spec?.type !== 'LoadBalancer') return []
  const addrs = nodeAddresses(nodes)
  const out: ServiceUrl[] = []
  for (const p of svc.spec?.ports ?? []) {
    const scheme = portScheme(p)
    if (!p.nodePort || !scheme) continue
    for (const a of addrs) out.push({ via: 'NodePort', port: portLabel(p), url: `${scheme}://${hostPort(a, p.nodePort, '')}` })
  }
  return out
}

function loadBalancerUrls(svc: KubeObject): ServiceUrl[] {
  if (svc.spec?.type !== 'LoadBalancer') return []
  const out: ServiceUrl[] = []
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    const host = ing.ip ?? ing.hostname
    if (!host) continue
    for (const p of svc.spec?.ports ?? []) {
      const scheme = portScheme(p)
      if (scheme) out.push({ via: 'LoadBalancer', port: portLabel(p), url: `${scheme}://${hostPort(host, p.port, scheme)}` })
    }
  }
  return out
}

/** The Service port an Ingress backend or a backendRef names (number or port name), if the Service has it. */
function servicePort(svc: KubeObject, ref: { number?: number; name?: string } | undefined): any {
  const ports = svc.spec?.ports ?? []
  if (!ref) return ports.length === 1 ? ports[0] : undefined
  return ports.find((p: any) => (ref.number !== undefined ? p.port === ref.number : p.name === ref.name))
}

function urlPath(path: string | undefined): string {
  return !path || path === '/' ? '/' : path
}

function ingressUrls(svc: KubeObject, ingresses: KubeObject[]): ServiceUrl[] {
  const out: ServiceUrl[] = []
  const name = svc.metadata.name
  for (const ing of ingresses) {
    if (ing.metadata.namespace !== svc.metadata.namespace) continue
    const tls: any[] = ing.spec?.tls ?? []
    const scheme = (host: string | undefined) => (tls.some((t) => !t.hosts?.length || (host && t.hosts.includes(host))) ? 'https' : 'http')
    const statusHosts: string[] = (ing.status?.loadBalancer?.ingress ?? []).map((x: any) => x.ip ?? x.hostname).filter(Boolean)
    const through = `Ingress ${ing.metadata.namespace}/${ing.metadata.name}`
    const add = (host: string | undefined, backend: any, path: string | undefined) => {
      if (backend?.service?.name !== name) return
      const p = servicePort(svc, backend.service.port)
      if (!p) return
      for (const h of host && !host.startsWith('*') ? [host] : host ? [] : statusHosts) {
        const s = scheme(host)
        out.push({ via: 'Ingress', port: portLabel(p), url: `${s}://${hostPort(h, s === 'https' ? 443 : 80, s)}${urlPath(path)}`, through })
      }
    }
    add(undefined, ing.spec?.defaultBackend, '/')
    for (const rule of ing.spec?.rules ?? []) for (const path of rule.http?.paths ?? []) add(rule.host, path.backend, path.path)
  }
  return out
}

function hostnameMatches(listener: string | undefined, host: string): boolean {
  if (!listener) return true
  if (listener.startsWith('*.')) return host.endsWith(listener.slice(1)) && host.length > listener.length - 1
  return listener === host
}

function gatewayUrls(svc: KubeObject, routes: KubeObject[], gateways: KubeObject[]): ServiceUrl[] {
  const out: ServiceUrl[] = []
  for (const route of routes) {
    const rns = route.metadata.namespace
    const paths: Array<{ port: any; path: string }> = []
    for (const rule of route.spec?.rules ?? []) {
      for (const ref of rule.backendRefs ?? []) {
        if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') continue
        if (ref.name !== svc.metadata.name || (ref.namespace ?? rns) !== svc.metadata.namespace) continue
        const p = servicePort(svc, ref.port === undefined ? undefined : { number: ref.port })
        if (!p) continue
        const matches = rule.matches?.length ? rule.matches : [{}]
        for (const m of matches) paths.push({ port: p, path: urlPath(m.path?.value) })
      }
    }
    if (paths.length === 0) continue
    for (const parent of route.spec?.parentRefs ?? []) {
      if ((parent.kind ?? 'Gateway') !== 'Gateway') continue
      const gw = gateways.find((g) => g.metadata.name === parent.name && g.metadata.namespace === (parent.namespace ?? rns))
      if (!gw) continue
      const addrs: string[] = (gw.status?.addresses ?? []).map((a: any) => a.value).filter(Boolean)
      for (const l of gw.spec?.listeners ?? []) {
        if (parent.sectionName && parent.sectionName !== l.name) continue
        if (parent.port && parent.port !== l.port) continue
        const scheme = l.protocol === 'HTTPS' ? 'https' : l.protocol === 'HTTP' ? 'http' : ''
        if (!scheme) continue
        const routeHosts: string[] = route.spec?.hostnames ?? []
        const hosts = routeHosts.length
          ? routeHosts.filter((h) => !h.startsWith('*') && hostnameMatches(l.hostname, h))
          : l.hostname && !l.hostname.startsWith('*') ? [l.hostname] : l.hostname ? [] : addrs
        const through = `Gateway ${gw.metadata.namespace}/${gw.metadata.name} (listener ${l.name}) via HTTPRoute ${rns}/${route.metadata.name}`
        for (const h of hosts) for (const p of paths) out.push({ via: 'Gateway', port: portLabel(p.port), url: `${scheme}://${hostPort(h, l.port, scheme)}${p.path}`, through })
      }
    }
  }
  return out
}

/** Every URL that reaches the Service from outside, NodePorts first, without repeats. */
export function serviceUrls(input: ServiceUrlInput): ServiceUrl[] {
  const all = [
    ...nodePortUrls(input.service, input.nodes),
    ...loadBalancerUrls(input.service),
    ...ingressUrls(input.service, input.ingresses ?? []),
    ...gatewayUrls(input.service, input.httpRoutes ?? [], input.gateways ?? []),
  ]
  const seen = new Set<string>()
  return all.filter((u) => !seen.has(`${u.via} ${u.url}`) && !!seen.add(`${u.via} ${u.url}`))
}

/** The table `skiff service NAME` prints (minikube's columns, plus how). */
export function formatServiceUrls(svc: KubeObject, urls: ServiceUrl[]): string[] {
  if (urls.length === 0) return [`service ${svc.metadata.namespace}/${svc.metadata.name} (type ${svc.spec?.type ?? 'ClusterIP'}) has no URL outside the cluster: no NodePort, LoadBalancer address, Ingress or HTTPRoute reaches it`]
  const rows = [['VIA', 'PORT', 'URL', 'THROUGH'], ...urls.map((u) => [u.via, u.port, u.url, u.through ?? ''])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd())
}
