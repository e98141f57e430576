// Gateway API objects → what one pool's workers serve (GatewaySnapshot) and
// what its status leader writes (GatewayFacts), pure. A GatewayClass named
// after the pool (`internal`, `external`) whose controllerName is
// `skiff.dev/ingress` is the pool's; its Gateways' listeners are served by
// the pool's workers (HTTP on the workers' HTTP port, HTTPS on their HTTPS
// port); HTTPRoutes attach to those listeners through parentRefs
// (sectionName, port, allowedRoutes, hostname intersection), and their
// backendRefs resolve to Services of the same namespace, or of another one a
// ReferenceGrant opens. Rules as in gateway-api apis/v1 (B4, B5 of
// policy-and-gateway-anchors.md); choices in README.md.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { selectorMatches } from '../../controlplane/api/validation/meta.ts'
import { referenceGranted } from '../../controlplane/api/reference-grants.ts'
import { ingressKey } from './routes.ts'

export const gatewayControllerName = 'skiff.dev/ingress'
export const gatewayGroup = 'gateway.networking.k8s.io'
/** The ports a Gateway listener may name: the workers' HTTP and HTTPS ports. */
export const listenerPorts = { HTTP: 80, HTTPS: 443 } as const

export type GwPathType = 'Exact' | 'PathPrefix' | 'RegularExpression'
export interface GwValueMatch { name: string; type: 'Exact' | 'RegularExpression'; value: string }
export interface GwMatch { pathType: GwPathType; path: string; method?: string; headers: GwValueMatch[]; query: GwValueMatch[] }
export interface GwHeaderEdits { set: Array<[string, string]>; add: Array<[string, string]>; remove: string[] }
export interface GwPathModifier { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; value: string }
export type GwFilter =
  | { type: 'RequestHeaderModifier'; edits: GwHeaderEdits }
  | { type: 'ResponseHeaderModifier'; edits: GwHeaderEdits }
  | { type: 'RequestRedirect'; scheme?: 'http' | 'https'; hostname?: string; port?: number; path?: GwPathModifier; statusCode: number }
  | { type: 'URLRewrite'; hostname?: string; path?: GwPathModifier }
  /** A filter Skiff does not implement: its requests get 500 (the spec forbids skipping a filter). */
  | { type: 'Unsupported'; name: string }
/** A backendRef: a Service port, or why it cannot be used (its share of requests gets 500). */
export type GwBackend =
  | { weight: number; namespace: string; service: string; port: number; filters: GwFilter[] }
  | { weight: number; error: string }
export interface GwRule { ruleIndex: number; matches: GwMatch[]; filters: GwFilter[]; backends: GwBackend[] }
export interface GwListener {
  /** 'namespace/gateway/listener'. */
  key: string
  protocol: 'HTTP' | 'HTTPS'
  port: number
  /** '' for any host. */
  hostname: string
  /** 'namespace/secret' of the usable certificateRefs (HTTPS). */
  certificates: string[]
}
export interface GwRoute {
  /** 'namespace/name'. */
  route: string
  namespace: string
  /** creationTimestamp in ms (Infinity when missing): older routes win ties. */
  created: number
  /** Listener key → the route's hostnames on that listener after intersection ('' = any host). */
  attachments: Record<string, string[]>
  rules: GwRule[]
}
export interface GatewaySnapshot { listeners: GwListener[]; routes: GwRoute[] }

export interface GwCondition { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string }
export interface ListenerFacts { name: string; attachedRoutes: number; conditions: GwCondition[] }
export interface GatewayFacts { key: string; generation: number; conditions: GwCondition[]; listeners: ListenerFacts[] }
export interface RouteParentFacts { parentRef: Record<string, unknown>; conditions: GwCondition[] }
export interface RouteFacts { key: string; generation: number; parents: RouteParentFacts[] }
export interface GatewayClassFacts { name: string; generation: number; conditions: GwCondition[] }
export interface GatewayBuild {
  snapshot: GatewaySnapshot
  /** Services the routes name (for the snapshot's services and endpoints). */
  services: Set<string>
  /** Secrets the listeners name (for the snapshot's certificates). */
  secrets: Set<string>
  gatewayClass?: GatewayClassFacts
  gateways: GatewayFacts[]
  routes: RouteFacts[]
}

export interface GatewayInputs {
  className: string
  gatewayClasses: KubeObject[]
  gateways: KubeObject[]
  httpRoutes: KubeObject[]
  referenceGrants: KubeObject[]
  namespaces: KubeObject[]
  services: KubeObject[]
  /** Secrets named by listeners, when they exist and hold a usable pair: 'namespace/name' → problem ('' when fine). */
  certificateProblems?: Record<string, string>
}

const cond = (type: string, ok: boolean, reason: string, message: string): GwCondition => ({ type, status: ok ? 'True' : 'False', reason, message })
const arr = (v: unknown): any[] => (Array.isArray(v) ? v : [])
const created = (o: KubeObject): number => Date.parse(o.metadata?.creationTimestamp ?? '') || Infinity

/** Whether this pool serves the GatewayClass: named after the pool and claimed by Skiff's controller. */
export function classIsOurs(gc: KubeObject | undefined, className: string): boolean {
  return gc?.metadata?.name === className && gc?.spec?.controllerName === gatewayControllerName
}

/**
 * The hostnames a route serves on a listener: the intersection of the
 * listener's hostname and the route's (a wildcard is the leftmost label and
 * matches one or more labels; a missing hostname on either side is any).
 * [] when they do not intersect; [''] for any host.
 */
export function intersectHostnames(listener: string, route: readonly string[]): string[] {
  if (route.length === 0) return [listener]
  if (listener === '') return [...new Set(route)]
  const out = new Set<string>()
  for (const h of route) {
    const hit = intersectOne(listener, h)
    if (hit) out.add(hit)
  }
  return [...out]
}

function intersectOne(l: string, h: string): string | undefined {
  if (l === h) return h
  const lw = l.startsWith('*.')
  const hw = h.startsWith('*.')
  if (lw && !hw) return h.endsWith(l.slice(1)) ? h : undefined
  if (!lw && hw) return l.endsWith(h.slice(1)) ? l : undefined
  if (lw && hw) return h.endsWith(l.slice(1)) ? h : l.endsWith(h.slice(1)) ? l : undefined
  return undefined
}

function headerEdits(m: any): GwHeaderEdits {
  const pairs = (v: unknown): Array<[string, string]> => arr(v).filter((h) => typeof h?.name === 'string').map((h) => [String(h.name), String(h.value ?? '')])
  return { set: pairs(m?.set), add: pairs(m?.add), remove: arr(m?.remove).map(String) }
}

function pathModifier(p: any): GwPathModifier | undefined {
  if (p?.type === 'ReplaceFullPath') return { type: p.type, value: String(p.replaceFullPath ?? '/') }
  if (p?.type === 'ReplacePrefixMatch') return { type: p.type, value: String(p.replacePrefixMatch ?? '') }
  return undefined
}

export function compileFilter(f: any): GwFilter {
  switch (f?.type) {
    case 'RequestHeaderModifier': return { type: 'RequestHeaderModifier', edits: headerEdits(f.requestHeaderModifier) }
    case 'ResponseHeaderModifier': return { type: 'ResponseHeaderModifier', edits: headerEdits(f.responseHeaderModifier) }
    case 'RequestRedirect': {
      const r = f.requestRedirect ?? {}
      const out: GwFilter = { type: 'RequestRedirect', statusCode: typeof r.statusCode === 'number' ? r.statusCode : 302 }
      if (r.scheme === 'http' || r.scheme === 'https') out.scheme = r.scheme
      if (typeof r.hostname === 'string') out.hostname = r.hostname
      if (typeof r.port === 'number') out.port = r.port
      const p = pathModifier(r.path)
      if (p) out.path = p
      return out
    }
    case 'URLRewrite': {
      const r = f.urlRewrite ?? {}
      const out: GwFilter = { type: 'URLRewrite' }
      if (typeof r.hostname === 'string') out.hostname = r.hostname
      const p = pathModifier(r.path)
      if (p) out.path = p
      return out
    }
    default: return { type: 'Unsupported', name: String(f?.type ?? '') }
  }
}

function compileMatch(m: any): GwMatch {
  const values = (v: unknown, lower: boolean): GwValueMatch[] => {
    const seen = new Set<string>()
    const out: GwValueMatch[] = []
    for (const x of arr(v)) {
      const name = lower ? String(x?.name ?? '').toLowerCase() : String(x?.name ?? '')
      // Only the first entry of a name counts (httproute_types.go).
      if (seen.has(name)) continue
      seen.add(name)
      out.push({ name, type: x?.type === 'RegularExpression' ? 'RegularExpression' : 'Exact', value: String(x?.value ?? '') })
    }
    return out
  }
  const pathType: GwPathType = m?.path?.type === 'Exact' || m?.path?.type === 'RegularExpression' ? m.path.type : 'PathPrefix'
  const out: GwMatch = { pathType, path: typeof m?.path?.value === 'string' ? m.path.value : '/', headers: values(m?.headers, true), query: values(m?.queryParams, false) }
  if (typeof m?.method === 'string') out.method = m.method
  return out
}

interface BackendProblem { reason: 'RefNotPermitted' | 'BackendNotFound' | 'InvalidKind'; message: string }

function resolveBackendRef(b: any, route: KubeObject, services: Map<string, KubeObject>, grants: KubeObject[], problems: BackendProblem[]): GwBackend {
  const weight = typeof b?.weight === 'number' ? b.weight : 1
  const group = b?.group ?? ''
  const kind = b?.kind ?? 'Service'
  const routeNs = route.metadata?.namespace ?? ''
  const ns = typeof b?.namespace === 'string' && b.namespace !== '' ? b.namespace : routeNs
  const name = String(b?.name ?? '')
  const fail = (reason: BackendProblem['reason'], message: string): GwBackend => {
    problems.push({ reason, message })
    return { weight, error: message }
  }
  if (group !== '' || kind !== 'Service') return fail('InvalidKind', `backendRef ${name}: kind ${group ? `${kind}.${group}` : kind} is not supported (only Service)`)
  if (ns !== routeNs && !referenceGranted(grants, { fromGroup: gatewayGroup, fromKind: 'HTTPRoute', fromNamespace: routeNs, toGroup: '', toKind: 'Service', toNamespace: ns, toName: name }))
    return fail('RefNotPermitted', `backendRef ${ns}/${name}: no ReferenceGrant in namespace ${ns} allows HTTPRoutes of ${routeNs} to refer to it`)
  const svc = services.get(`${ns}/${name}`)
  if (!svc) return fail('BackendNotFound', `backendRef ${ns}/${name}: service not found`)
  if (!arr(svc.spec?.ports).some((p) => p?.port === b?.port)) return fail('BackendNotFound', `backendRef ${ns}/${name}: service has no port ${b?.port}`)
  return { weight, namespace: ns, service: name, port: Number(b.port), filters: arr(b?.filters).map(compileFilter) }
}

interface ListenerState { listener: GwListener; gateway: KubeObject; spec: any; valid: boolean; attached: number; facts: ListenerFacts }

/** Everything the pool serves and reports about Gateway API objects. */
export function buildGatewayRouting(input: GatewayInputs): GatewayBuild {
  const out: GatewayBuild = { snapshot: { listeners: [], routes: [] }, services: new Set(), secrets: new Set(), gateways: [], routes: [] }
  const gc = input.gatewayClasses.find((c) => c.metadata?.name === input.className)
  if (gc && gc.spec?.controllerName === gatewayControllerName) {
    out.gatewayClass = { name: input.className, generation: gc.metadata?.generation ?? 1, conditions: [cond('Accepted', true, 'Accepted', `served by the ingress pool ${input.className}`)] }
  }
  if (!classIsOurs(gc, input.className)) return out
  const nsLabels = new Map(input.namespaces.map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]))
  const services = new Map(input.services.map((s) => [ingressKey(s), s]))
  const listeners = new Map<string, ListenerState[]>() // by gateway key
  const gateways = input.gateways.filter((g) => g.spec?.gatewayClassName === input.className)
  for (const g of gateways) {
    const gkey = ingressKey(g)
    const states: ListenerState[] = []
    for (const l of arr(g.spec?.listeners)) states.push(listenerState(g, l, input, out.secrets))
    listeners.set(gkey, states)
  }
  const sortedRoutes = [...input.httpRoutes].sort((a, b) => created(a) - created(b) || (ingressKey(a) < ingressKey(b) ? -1 : 1))
  for (const route of sortedRoutes) {
    const routeNs = route.metadata?.namespace ?? ''
    const parents: RouteParentFacts[] = []
    const attachments: Record<string, string[]> = {}
    const problems: BackendProblem[] = []
    const rules: GwRule[] = arr(route.spec?.rules).map((r, ruleIndex) => ({
      ruleIndex,
      matches: (arr(r?.matches).length ? arr(r.matches) : [{}]).map(compileMatch),
      filters: arr(r?.filters).map(compileFilter),
      backends: arr(r?.backendRefs).map((b) => resolveBackendRef(b, route, services, input.referenceGrants, problems)),
    }))
    for (const ref of arr(route.spec?.parentRefs)) {
      if ((ref?.group ?? gatewayGroup) !== gatewayGroup || (ref?.kind ?? 'Gateway') !== 'Gateway') continue
      const gkey = `${ref?.namespace || routeNs}/${ref?.name}`
      const states = listeners.get(gkey)
      if (!states) continue // not a Gateway of this pool: another controller's, or missing
      const parentRef = { group: gatewayGroup, kind: 'Gateway', ...ref }
      const accepted = attach(route, ref, states, nsLabels, attachments)
      const resolved = problems.length === 0 ? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved') : cond('ResolvedRefs', false, problems[0]!.reason, problems.map((p) => p.message).join('; '))
      parents.push({ parentRef, conditions: [accepted, resolved] })
    }
    if (parents.length === 0) continue
    out.routes.push({ key: ingressKey(route), generation: route.metadata?.generation ?? 1, parents })
    if (Object.keys(attachments).length === 0) continue
    for (const r of rules) for (const b of r.backends) if (!('error' in b)) out.services.add(`${b.namespace}/${b.service}`)
    out.snapshot.routes.push({ route: ingressKey(route), namespace: routeNs, created: created(route), attachments, rules })
  }
  for (const g of gateways) {
    const states = listeners.get(ingressKey(g))!
    for (const s of states) {
      s.facts.attachedRoutes = s.attached
      if (s.valid) out.snapshot.listeners.push(s.listener)
    }
    const valid = states.filter((s) => s.valid).length
    const conditions = [
      valid === states.length ? cond('Accepted', true, 'Accepted', 'all listeners are valid') : cond('Accepted', valid > 0, 'ListenersNotValid', `${states.length - valid} of ${states.length} listeners are not valid`),
      valid > 0 ? cond('Programmed', true, 'Programmed', `served by the ingress pool ${input.className}`) : cond('Programmed', false, 'Invalid', 'no valid listener'),
    ]
    out.gateways.push({ key: ingressKey(g), generation: g.metadata?.generation ?? 1, conditions, listeners: states.map((s) => s.facts) })
  }
  return out
}

function listenerState(g: KubeObject, l: any, input: GatewayInputs, secrets: Set<string>): ListenerState {
  const gkey = ingressKey(g)
  const ns = g.metadata?.namespace ?? ''
  const name = String(l?.name ?? '')
  const protocol = l?.protocol
  const listener: GwListener = { key: `${gkey}/${name}`, protocol: protocol === 'HTTPS' ? 'HTTPS' : 'HTTP', port: Number(l?.port), hostname: typeof l?.hostname === 'string' ? l.hostname : '', certificates: [] }
  const facts: ListenerFacts = { name, attachedRoutes: 0, conditions: [] }
  const state: ListenerState = { listener, gateway: g, spec: l, valid: false, attached: 0, facts }
  const refuse = (accepted: GwCondition, resolved = cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved')): ListenerState => {
    facts.conditions = [accepted, resolved, cond('Programmed', false, 'Invalid', accepted.status === 'False' ? accepted.message : resolved.message), cond('Conflicted', false, 'NoConflicts', 'no conflicts')]
    return state
  }
  if (protocol !== 'HTTP' && protocol !== 'HTTPS') return refuse(cond('Accepted', false, 'UnsupportedProtocol', `protocol ${protocol} is not supported (HTTP, HTTPS)`))
  if (listener.port !== listenerPorts[protocol as 'HTTP' | 'HTTPS']) return refuse(cond('Accepted', false, 'PortUnavailable', `the ingress workers serve ${protocol} on port ${listenerPorts[protocol as 'HTTP' | 'HTTPS']} only`))
  const kinds = arr(l?.allowedRoutes?.kinds)
  if (kinds.length && !kinds.some((k) => (k?.group ?? gatewayGroup) === gatewayGroup && k?.kind === 'HTTPRoute'))
    return refuse(cond('Accepted', true, 'Accepted', 'accepted'), cond('ResolvedRefs', false, 'InvalidRouteKinds', 'only HTTPRoute is supported'))
  if (protocol === 'HTTPS') {
    if ((l?.tls?.mode ?? 'Terminate') !== 'Terminate') return refuse(cond('Accepted', false, 'UnsupportedValue', 'tls mode Passthrough is not supported'))
    const problems: Array<{ reason: string; message: string }> = []
    for (const ref of arr(l?.tls?.certificateRefs)) {
      const rns = typeof ref?.namespace === 'string' && ref.namespace !== '' ? ref.namespace : ns
      const key = `${rns}/${ref?.name}`
      if ((ref?.group ?? '') !== '' || (ref?.kind ?? 'Secret') !== 'Secret') { problems.push({ reason: 'InvalidCertificateRef', message: `certificateRef ${key}: only core Secrets are supported` }); continue }
      if (rns !== ns && !referenceGranted(input.referenceGrants, { fromGroup: gatewayGroup, fromKind: 'Gateway', fromNamespace: ns, toGroup: '', toKind: 'Secret', toNamespace: rns, toName: String(ref?.name) })) {
        problems.push({ reason: 'RefNotPermitted', message: `certificateRef ${key}: no ReferenceGrant in namespace ${rns} allows it` })
        continue
      }
      secrets.add(key)
      const problem = input.certificateProblems?.[key]
      if (problem === undefined || problem !== '') { problems.push({ reason: 'InvalidCertificateRef', message: problem || `certificateRef ${key}: secret not found` }); continue }
      listener.certificates.push(key)
    }
    if (listener.certificates.length === 0) {
      const p = problems[0] ?? { reason: 'InvalidCertificateRef', message: 'no certificateRefs' }
      return refuse(cond('Accepted', true, 'Accepted', 'accepted'), cond('ResolvedRefs', false, p.reason, problems.map((x) => x.message).join('; ') || p.message))
    }
  }
  state.valid = true
  facts.conditions = [cond('Accepted', true, 'Accepted', 'accepted'), cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved'), cond('Programmed', true, 'Programmed', 'programmed'), cond('Conflicted', false, 'NoConflicts', 'no conflicts')]
  return state
}

/** Attaches one parentRef's route to the allowed listeners; returns the parent's Accepted condition. */
function attach(route: KubeObject, ref: any, states: ListenerState[], nsLabels: Map<string, Record<string, string>>, attachments: Record<string, string[]>): GwCondition {
  const routeNs = route.metadata?.namespace ?? ''
  const candidates = states.filter((s) => s.valid && (ref?.sectionName == null || ref.sectionName === s.facts.name) && (ref?.port == null || ref.port === s.listener.port))
  if (candidates.length === 0) return cond('Accepted', false, 'NoMatchingParent', ref?.sectionName != null ? `no valid listener named ${ref.sectionName}` : ref?.port != null ? `no valid listener on port ${ref.port}` : 'the Gateway has no valid listener')
  const allowed = candidates.filter((s) => {
    const ns = s.spec?.allowedRoutes?.namespaces
    const from = ns?.from ?? 'Same'
    if (from === 'All') return true
    if (from === 'Selector') return selectorMatches(ns?.selector ?? {}, nsLabels.get(routeNs) ?? {})
    return routeNs === (s.gateway.metadata?.namespace ?? '')
  })
  if (allowed.length === 0) return cond('Accepted', false, 'NotAllowedByListeners', `no listener of the Gateway allows routes from namespace ${routeNs}`)
  const hostnames: string[] = arr(route.spec?.hostnames).map(String)
  let any = false
  for (const s of allowed) {
    const hosts = intersectHostnames(s.listener.hostname, hostnames)
    if (hosts.length === 0) continue
    any = true
    if (!attachments[s.listener.key]) {
      attachments[s.listener.key] = hosts
      s.attached++
    }
  }
  if (!any) return cond('Accepted', false, 'NoMatchingListenerHostname', 'no hostname of the route matches a listener hostname')
  return cond('Accepted', true, 'Accepted', 'accepted')
}
