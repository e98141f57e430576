// Admission: everything the ingress decides about a request before it
// forwards it, for plain requests and upgrades alike (one path, as Traefik
// has one router for both): the RFC 9110/9112 message checks (message.ts),
// one path normalisation (paths.ts), ACME HTTP-01 on HTTP, the route and
// method (routes.ts), source ranges, the HTTPS redirect, the declared body
// size, the backend. The answer is data; proxy.ts writes it.

import { checkMessage } from './message.ts'
import type { HeaderScan } from './headers.ts'
import { normalizePath } from './paths.ts'
import { matchRoute, requestHost, type Match } from './routes.ts'
import { inRanges, rewritePath, wantsSslRedirect, type IngressOptions } from './options.ts'
import { backendKey, type ResolvedBackend, type RuntimeState } from './state.ts'
import { gatewayAction, matchGateway, type GwEntry, type GwMatchResult, type GwRequest } from './gateway-routes.ts'
import type { GwHeaderEdits } from './gateway-build.ts'
import { ingressOptions } from './options.ts'

export type Scheme = 'http' | 'https'

/** What admission reads of a request (an http.IncomingMessage is one). */
export interface AdmitRequest {
  method?: string
  url?: string
  httpVersion: string
  /** Node's flag for a request it handed over as an upgrade. */
  upgrade?: boolean
  socket: { remoteAddress?: string; servername?: unknown }
  /** The request's header list (Gateway API header matches). */
  rawHeaders?: string[]
}

/** What admission writes down for the access log and metrics. */
export interface AdmissionRecord {
  /** The matched rule host (the metrics label): `*` host-less, `_default`, `_` nothing. */
  host: string
  path: string
  ingress: string
  /** Why admission answered 4xx/5xx itself (the answer's text). */
  reason?: string
}

/** Admission's answer: reply now, or forward to a backend. */
export type Admission =
  | { kind: 'answer'; status: number; body: string; headers?: Record<string, string>; close?: boolean }
  | { kind: 'forward'; backend: Extract<ResolvedBackend, { ok: true }>; opts: IngressOptions; url: string; authority: string; absolute: boolean; hsts: number; gateway?: GatewayEdits }

/** What an HTTPRoute's filters change on the way up and down (proxy.ts applies them). */
export interface GatewayEdits { request: GwHeaderEdits[]; response: GwHeaderEdits[]; host?: string }

/** HTTPRoutes have no per-route proxy options: the defaults of an Ingress without annotations. */
const gatewayOptions = ingressOptions({ metadata: {} } as never)

const acmePrefix = '/.well-known/acme-challenge/'

/**
 * Everything before forwarding, for plain requests and upgrades alike; fills
 * rec's host, path, ingress and (for a 4xx/5xx answer) reason. Pure: reads
 * only its arguments; never throws.
 */
export function admit(req: AdmitRequest, scan: HeaderScan, scheme: Scheme, state: RuntimeState, rec: AdmissionRecord): Admission {
  const answer = (status: number, body: string, headers?: Record<string, string>, close?: boolean): Admission => {
    if (status >= 400) rec.reason = body.trimEnd()
    return { kind: 'answer', status, body, headers, close }
  }
  // A message that breaks the HTTP rules: its framing or its target cannot be trusted, so the connection closes too.
  const msg = checkMessage({ url: req.url ?? '/', httpVersion: req.httpVersion, upgrade: req.upgrade === true }, scan)
  if (!msg.ok) return answer(msg.status, `${msg.reason}\n`, undefined, true)
  const norm = normalizePath(msg.target)
  if (!norm.ok) return answer(400, `bad request path: ${norm.reason}\n`)
  rec.path = norm.path
  const authority = msg.absoluteAuthority ?? scan.host ?? (scheme === 'https' && typeof req.socket.servername === 'string' ? req.socket.servername : '')
  const host = requestHost(authority)
  if (scheme === 'http' && req.method === 'GET' && norm.path.startsWith(acmePrefix)) {
    // Own keys only: `__proto__` or `constructor` as a token would otherwise find Object.prototype's (and crash the worker).
    const token = norm.path.slice(acmePrefix.length)
    const keyAuth = Object.hasOwn(state.challenges, token) ? state.challenges[token] : undefined
    return typeof keyAuth === 'string' ? answer(200, keyAuth) : answer(404, 'unknown ACME challenge\n')
  }
  const m = matchRoute(state.table, { host, method: req.method ?? 'GET', path: norm.path })
  const g = gatewayDecides(state, m, { scheme, host, method: req.method ?? 'GET', path: norm.path, search: norm.search, headers: req.rawHeaders ?? [] })
  if (g?.kind === 'not-found') {
    rec.host = '_gateway'
    return answer(404, 'no route matched\n')
  }
  if (g) return admitGateway(g.entry, { scheme, host, authority, path: norm.path, search: norm.search, absolute: msg.absoluteAuthority !== undefined, req, state, rec, answer })
  rec.host = m.kind === 'route' ? m.host || '*' : m.kind === 'method-not-allowed' ? m.host || '*' : m.kind === 'default-backend' ? '_default' : '_'
  if (m.kind === 'not-found') return answer(404, 'default backend - 404\n')
  if (m.kind === 'method-not-allowed') return answer(405, 'method not allowed\n', { Allow: m.allow.join(', ') })
  rec.ingress = m.ingress
  const ing = state.ingresses.get(m.ingress)!
  if (ing.allow && !inRanges(ing.allow, req.socket.remoteAddress ?? '')) return answer(403, 'forbidden\n')
  const opts = ing.options
  if (scheme === 'http' && wantsSslRedirect(opts, host)) {
    const location = `https://${authority.toLowerCase().replace(/:\d+$/, '')}${norm.path}${norm.search}`
    return answer(308, `redirect to ${location}\n`, { Location: location })
  }
  if (opts.bodySizeLimit > 0 && Number(scan.contentLength ?? 0) > opts.bodySizeLimit) return answer(413, 'request body too large\n', undefined, true)
  const backend = state.backends.get(backendKey(m.namespace, m.backend))!
  if (!backend.ok) return answer(503, `service unavailable: ${backend.reason}\n`)
  const path = m.kind === 'route' && opts.rewriteTarget ? rewritePath({ target: opts.rewriteTarget, matched: m.path, exact: m.pathType === 'Exact' }, norm.path) : norm.path
  return { kind: 'forward', backend, opts, url: path + norm.search, authority, absolute: msg.absoluteAuthority !== undefined, hsts: scheme === 'https' ? opts.hstsMaxAge : 0 }
}

interface GatewayAdmitContext {
  scheme: Scheme
  host: string
  authority: string
  path: string
  search: string
  absolute: boolean
  req: AdmitRequest
  state: RuntimeState
  rec: AdmissionRecord
  answer: (status: number, body: string, headers?: Record<string, string>, close?: boolean) => Admission
}

/**
 * Gateway API routes and Ingress rules share the host space: the more
 * specific host level decides (exact 3 > wildcard 2 > any 1 > an Ingress
 * defaultBackend), Gateway routes at a tie. The Gateway result when it
 * decides, else undefined (the Ingress match stands).
 */
export function gatewayDecides(state: RuntimeState, m: Match, req: GwRequest): Exclude<GwMatchResult, { kind: 'none' }> | undefined {
  if (state.gateway.routeCount === 0) return undefined
  const g = matchGateway(state.gateway, req)
  const ingressLevel = m.kind === 'route' || m.kind === 'method-not-allowed' ? (m.host === '' ? 1 : m.host.startsWith('*.') ? 2 : 3) : m.kind === 'default-backend' ? 0.5 : 0
  return g.kind !== 'none' && g.level >= ingressLevel ? g : undefined
}

/** An HTTPRoute rule matched: its redirect or error, or the weighted backend with the filters' edits. */
function admitGateway(e: GwEntry, c: GatewayAdmitContext): Admission {
  c.rec.host = c.host
  c.rec.ingress = `httproute:${e.route}`
  const a = gatewayAction(e, { scheme: c.scheme, host: c.host, method: c.req.method ?? 'GET', path: c.path, search: c.search, headers: c.req.rawHeaders ?? [], authority: c.authority }, Math.random())
  if (a.kind === 'answer') return c.answer(a.status, a.body, a.headers)
  const backend = c.state.backends.get(backendKey(a.backend.namespace, { service: a.backend.service, port: a.backend.port }))
  if (!backend) return c.answer(500, 'backend not resolved\n')
  if (!backend.ok) return c.answer(503, `service unavailable: ${backend.reason}\n`)
  const gateway: GatewayEdits = { request: a.request, response: a.response }
  if (a.host !== undefined) gateway.host = a.host
  return { kind: 'forward', backend, opts: gatewayOptions, url: a.path + c.search, authority: c.authority, absolute: c.absolute, hsts: 0, gateway }
}
