// `skiff route <METHOD> <URL>`: which Ingress, rule, Service and endpoints a
// request would take, and why, for each ingress class (or one, --class). It
// reads the same objects the ingress supervisors read and runs the same code
// the workers run (buildSnapshot → compileState → matchRoute), so the answer
// is what the data plane does, not a re-implementation of it.

import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { buildSnapshot, ingressPoolLabel } from '../dataplane/ingress/snapshot-build.ts'
import { compileState, type RuntimeState } from '../dataplane/ingress/state.ts'
import { explainRoute, matchRoute, requestHost } from '../dataplane/ingress/routes.ts'
import { normalizePath } from '../dataplane/ingress/paths.ts'
import { wantsSslRedirect } from '../dataplane/ingress/options.ts'
import { internalIP } from '../dataplane/ingress/status.ts'
import { httpMethods } from '../controlplane/api/validation/skiff.ts'
import { buildGatewayRouting } from '../dataplane/ingress/gateway-build.ts'
import { explainGateway } from '../dataplane/ingress/gateway-routes.ts'
import { gatewayDecides } from '../dataplane/ingress/admission.ts'
import { gatewayInfo } from '../dataplane/ingress/gateway-status.ts'

const res = {
  classes: lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!,
  ingresses: lookupResource('networking.k8s.io', 'v1', 'ingresses')!,
  services: lookupResource('', 'v1', 'services')!,
  slices: lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!,
  nodes: lookupResource('', 'v1', 'nodes')!,
  namespaces: lookupResource('', 'v1', 'namespaces')!,
}

export interface RouteRequestArgs {
  method: string
  url: string
  className?: string
}

/** Parses `METHOD URL`: the URL needs a scheme and host (http://shop.example.com/cart). */
export function parseRouteArgs(method: string, url: string): { method: string; scheme: 'http' | 'https'; host: string; target: string } {
  const m = method.toUpperCase()
  if (!(httpMethods as readonly string[]).includes(m)) throw new Error(`${JSON.stringify(method)} is not an HTTP method; use one of ${httpMethods.join(', ')}`)
  const u = /^(https?):\/\/([^/?#]+)([^#]*)/i.exec(url)
  if (!u) throw new Error(`${JSON.stringify(url)} is not an http:// or https:// URL with a host, e.g. http://shop.example.com/cart`)
  const target = u[3] === '' ? '/' : u[3]!.startsWith('?') ? '/' + u[3] : u[3]!
  return { method: m, scheme: u[1]!.toLowerCase() as 'http' | 'https', host: u[2]!, target }
}

/** The explanation for one class's compiled state: pure, table-tested. */
export function explainForClass(state: RuntimeState, req: ReturnType<typeof parseRouteArgs>, poolAddresses: string[]): string[] {
  const lines = [`class ${state.className}${poolAddresses.length ? ` (served on ${poolAddresses.join(', ')})` : ' (no ingress nodes in its pool)'}:`]
  const norm = normalizePath(req.target)
  const m = norm.ok ? matchRoute(state.table, { method: req.method, host: requestHost(req.host), path: norm.path }) : undefined
  if (norm.ok && m) {
    // Gateway API routes first when they decide for this host (admission.ts gatewayDecides); headers are not known here.
    const gw = { scheme: req.scheme, host: requestHost(req.host), method: req.method, path: norm.path, search: norm.search, headers: [] }
    if (gatewayDecides(state, m, gw)) return [...lines, ...explainGateway(state.gateway, gw).map((l) => '  ' + l)]
  }
  lines.push(...explainRoute(state.table, { method: req.method, host: req.host, path: req.target }).map((l) => '  ' + l))
  if (!norm.ok || !m) return lines
  if (m.kind !== 'route' && m.kind !== 'default-backend') return lines
  const ing = state.ingresses.get(m.ingress)
  if (ing && req.scheme === 'http' && wantsSslRedirect(ing.options, requestHost(req.host))) {
    lines.push(`  then: 308 redirect to https:// (spec.tls covers the host; skiff.dev/ssl-redirect: "false" turns it off)`)
    return lines
  }
  if (ing?.options.allowSourceRanges) lines.push(`  only clients from ${ing.options.allowSourceRanges.join(', ')} (others get 403)`)
  const backend = [...state.backends.values()].find((b) => b.key === `${m.namespace}/${m.backend.service}:${m.backend.port}`)
  if (!backend) return lines
  if (!backend.ok) {
    lines.push(`  service ${m.namespace}/${m.backend.service} port ${m.backend.port}: 503 (${backend.reason})`)
    return lines
  }
  const how = ing?.options.loadBalance ?? 'round-robin'
  const fallback = backend.terminatingFallback ? ' (none ready: terminating ones that still serve)' : ''
  lines.push(`  endpoints (${how})${fallback}: ${backend.endpoints.map((e) => (e.pod ? `${e.id} (${e.pod})` : e.id)).join(', ')}`)
  return lines
}

export async function explainRequest(client: ApiClient, args: RouteRequestArgs): Promise<string[]> {
  const req = parseRouteArgs(args.method, args.url)
  const [classes, ingresses, services, slices, nodes] = await Promise.all([
    client.list(res.classes), client.list(res.ingresses), client.list(res.services), client.list(res.slices), client.list(res.nodes),
  ])
  // Gateway API kinds: an empty list when the user may not read them.
  const orEmpty = (p: Promise<{ items: KubeObject[] }>) => p.then((l) => l.items, () => [] as KubeObject[])
  const [gatewayClasses, gateways, httpRoutes, referenceGrants, namespaces] = await Promise.all([
    orEmpty(client.list(gatewayInfo.gatewayClasses)), orEmpty(client.list(gatewayInfo.gateways)), orEmpty(client.list(gatewayInfo.httpRoutes)),
    orEmpty(client.list(gatewayInfo.referenceGrants)), orEmpty(client.list(res.namespaces)),
  ])
  const ours = classes.items.filter((c) => c.spec?.controller === 'skiff.dev/ingress' && (!args.className || c.metadata.name === args.className))
  if (ours.length === 0) throw new Error(args.className ? `no IngressClass ${args.className} with controller skiff.dev/ingress: see \`skiff get ingressclasses\`` : 'no IngressClass with controller skiff.dev/ingress')
  const out: string[] = []
  for (const cls of ours) {
    const className = cls.metadata.name!
    const gateway = buildGatewayRouting({ className, gatewayClasses, gateways, httpRoutes, referenceGrants, namespaces, services: services.items })
    const snapshot = buildSnapshot({ generation: 0, className, ingressClasses: classes.items, ingresses: ingresses.items, services: services.items, endpointSlices: slices.items, secrets: [], gateway })
    out.push(...explainForClass(compileState(snapshot), req, poolOf(nodes.items, className)))
  }
  return out
}

function poolOf(nodes: KubeObject[], className: string): string[] {
  return nodes
    .filter((n) => n.metadata.labels?.[ingressPoolLabel] === className)
    .map(internalIP)
    .filter((a): a is string => !!a)
    .sort()
}
