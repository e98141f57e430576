// The ingress route table: one class's Ingresses compiled once into data that
// answers "where does METHOD host/path go?" with a Map lookup for the host, a
// Map lookup for Exact paths and a walk over Prefix paths longest first.
// Pure: no I/O, backends stay symbolic (Service name + port); the proxy maps
// them to endpoints. Rules as in the Ingress v1 spec (networking-anchors.md),
// plus `skiff.dev/methods`. Choices are written down in README.md.

import { httpMethods, readSkiffAnnotation } from '../../controlplane/api/validation/skiff.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { normalizePath } from './paths.ts'

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific'
export interface Backend { service: string; port: number | string }

export interface RouteEntry {
  ingress: string // namespace/name
  namespace: string
  host: string // as written on the rule ('' for any host)
  ruleIndex: number
  pathIndex: number
  path: string // normalised
  pathType: PathType
  /** undefined: every method. */
  methods: readonly string[] | undefined
  backend: Backend
}

/** Entries claiming one host + path + matching kind, oldest first, with disjoint method sets. */
export interface PathGroup {
  exact: boolean
  /** Exact: the path; Prefix: the path without its trailing slash ('' for `/`). */
  key: string
  entries: RouteEntry[]
  /** Union of the entries' methods, in httpMethods order; undefined when one accepts every method. */
  allow: string[] | undefined
}

export interface HostRoutes {
  host: string
  exact: Map<string, PathGroup>
  /** Longest key first. */
  prefixes: PathGroup[]
}

export interface DefaultBackend { ingress: string; namespace: string; backend: Backend }

export interface RouteTable {
  exactHosts: Map<string, HostRoutes>
  /** By the suffix after `*.`: `*.example.com` is under `example.com`. */
  wildcardHosts: Map<string, HostRoutes>
  anyHost: HostRoutes | undefined
  defaultBackend: DefaultBackend | undefined
}

export interface Conflict {
  ingresses: string[] // [kept (oldest), rejected]
  host: string
  path: string
  pathType: PathType
  /** The overlapping methods; ['*'] when both accept every method. */
  methods: string[]
  message: string
}

export interface BrokenIngress { ingress: string; message: string }

export interface CompileOptions { className: string; isDefaultClass: boolean }

export interface RouteRequest { host: string; method: string; path: string }

export type Match =
  | ({ kind: 'route' } & RouteEntry)
  | ({ kind: 'default-backend' } & DefaultBackend)
  | { kind: 'method-not-allowed'; allow: string[]; host: string; path: string }
  | { kind: 'not-found' }

export const legacyClassAnnotation = 'kubernetes.io/ingress.class'
export const defaultClassAnnotation = 'ingressclass.kubernetes.io/is-default-class'

/** An IngressClass is the default one when it says so (ingressclass.kubernetes.io/is-default-class: "true"). */
export function isDefaultIngressClass(cls: KubeObject | undefined): boolean {
  return cls?.metadata?.annotations?.[defaultClassAnnotation] === 'true'
}

/** ingressClassName first, then the legacy annotation; an Ingress with neither belongs to the default class. */
export function ingressInClass(ing: KubeObject, opts: CompileOptions): boolean {
  const cls = ing.spec?.ingressClassName ?? ing.metadata?.annotations?.[legacyClassAnnotation]
  return cls === undefined || cls === null || cls === '' ? opts.isDefaultClass : cls === opts.className
}

export function ingressKey(ing: KubeObject): string {
  return `${ing.metadata?.namespace ?? ''}/${ing.metadata?.name ?? ''}`
}

/** Oldest first (creationTimestamp; missing counts as newest), then namespace/name: the deterministic winner order. */
export function byAge(a: KubeObject, b: KubeObject): number {
  const ta = Date.parse(a.metadata?.creationTimestamp ?? '') || Infinity
  const tb = Date.parse(b.metadata?.creationTimestamp ?? '') || Infinity
  if (ta !== tb) return ta < tb ? -1 : 1
  const ka = ingressKey(a)
  const kb = ingressKey(b)
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

/** The routes of one Ingress, or why it cannot be served (it is then skipped whole). */
export function ingressEntries(ing: KubeObject): { ok: true; entries: RouteEntry[]; defaultBackend?: Backend } | { ok: false; message: string } {
  const ingress = ingressKey(ing)
  const namespace = ing.metadata?.namespace ?? ''
  const annotation = ing.metadata?.annotations?.['skiff.dev/methods']
  const methods = readSkiffAnnotation(ing, 'skiff.dev/methods')
  // An unreadable method list must not widen to "every method".
  if (annotation !== undefined && methods === undefined) return { ok: false, message: `invalid skiff.dev/methods ${JSON.stringify(annotation)}` }
  let defaultBackend: Backend | undefined
  if (ing.spec?.defaultBackend != null) {
    const b = readBackend(ing.spec.defaultBackend)
    if (typeof b === 'string') return { ok: false, message: `spec.defaultBackend: ${b}` }
    defaultBackend = b
  }
  const entries: RouteEntry[] = []
  const rules: any[] = Array.isArray(ing.spec?.rules) ? ing.spec.rules : []
  for (const [ruleIndex, rule] of rules.entries()) {
    const host = String(rule?.host ?? '').toLowerCase()
    if (host.includes('*') && !/^\*\.[^*]+$/.test(host)) return { ok: false, message: `spec.rules[${ruleIndex}].host ${JSON.stringify(host)}: a wildcard must be '*.' followed by a domain` }
    const paths: any[] = Array.isArray(rule?.http?.paths) ? rule.http.paths : []
    for (const [pathIndex, p] of paths.entries()) {
      const at = `spec.rules[${ruleIndex}].http.paths[${pathIndex}]`
      const entry = readPath(p, { ingress, namespace, host, ruleIndex, pathIndex, methods })
      if (typeof entry === 'string') return { ok: false, message: `${at}: ${entry}` }
      entries.push(entry)
    }
  }
  return { ok: true, entries, defaultBackend }
}

type EntryBase = Pick<RouteEntry, 'ingress' | 'namespace' | 'host' | 'ruleIndex' | 'pathIndex' | 'methods'>

function readPath(p: any, base: EntryBase): RouteEntry | string {
  const pathType = p?.pathType
  if (pathType !== 'Exact' && pathType !== 'Prefix' && pathType !== 'ImplementationSpecific') return `unsupported pathType ${JSON.stringify(pathType)}`
  const raw = typeof p.path === 'string' && p.path !== '' ? p.path : pathType === 'ImplementationSpecific' ? '/' : ''
  const norm = normalizePath(raw)
  if (!norm.ok) return `path ${JSON.stringify(raw)}: ${norm.reason}`
  if (norm.search !== '') return `path ${JSON.stringify(raw)} contains '?'`
  const backend = readBackend(p.backend)
  if (typeof backend === 'string') return `backend: ${backend}`
  return { ...base, path: norm.path, pathType, backend }
}

function readBackend(b: any): Backend | string {
  if (b?.resource != null) return 'resource backends are not supported'
  const svc = b?.service
  if (typeof svc?.name !== 'string' || svc.name === '') return 'service name is required'
  const port = svc.port?.number ?? svc.port?.name
  if (typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536) return { service: svc.name, port }
  if (typeof port === 'string' && port !== '') return { service: svc.name, port }
  return 'service port name or number is required'
}

const isExact = (e: RouteEntry): boolean => e.pathType === 'Exact'
const keyOf = (e: RouteEntry): string => (isExact(e) ? e.path : e.path.replace(/\/+$/, ''))

/** Methods both sets accept; ['*'] when both accept all; [] when disjoint. */
function overlap(a: readonly string[] | undefined, b: readonly string[] | undefined): string[] {
  if (!a && !b) return ['*']
  if (!a) return [...b!]
  if (!b) return [...a]
  return a.filter((m) => b.includes(m))
}

function sortMethods(ms: Iterable<string>): string[] {
  const order = httpMethods as readonly string[]
  return [...new Set(ms)].sort((x, y) => order.indexOf(x) - order.indexOf(y))
}

/**
 * Compiles the Ingresses of one class (others are ignored). Entries of the
 * same host + path + matching kind with overlapping methods conflict: the
 * oldest keeps the route, the newer is left out, and the Conflict names both.
 * A broken Ingress is left out whole and listed in `broken`; the rest serve.
 */
export function compileRouteTable(ingresses: KubeObject[], opts: CompileOptions): { table: RouteTable; conflicts: Conflict[]; broken: BrokenIngress[] } {
  const mine = ingresses.filter((i) => ingressInClass(i, opts)).sort(byAge)
  const conflicts: Conflict[] = []
  const broken: BrokenIngress[] = []
  const groups = new Map<string, { host: string; group: PathGroup }>()
  let defaultBackend: DefaultBackend | undefined
  for (const ing of mine) {
    const read = ingressEntries(ing)
    if (!read.ok) {
      broken.push({ ingress: ingressKey(ing), message: read.message })
      continue
    }
    if (read.defaultBackend) {
      const candidate = { ingress: ingressKey(ing), namespace: ing.metadata?.namespace ?? '', backend: read.defaultBackend }
      if (!defaultBackend) defaultBackend = candidate
      else conflicts.push({ ingresses: [defaultBackend.ingress, candidate.ingress], host: '', path: '', pathType: 'Prefix', methods: ['*'], message: `defaultBackend of ${candidate.ingress} ignored: ${defaultBackend.ingress} is older and defines one` })
    }
    for (const e of read.entries) addEntry(groups, e, conflicts)
  }
  return { table: buildTable(groups, defaultBackend), conflicts, broken }
}

function addEntry(groups: Map<string, { host: string; group: PathGroup }>, e: RouteEntry, conflicts: Conflict[]): void {
  const exact = isExact(e)
  const key = keyOf(e)
  const id = `${e.host} ${exact ? 'E' : 'P'} ${key}`
  let g = groups.get(id)
  if (!g) groups.set(id, (g = { host: e.host, group: { exact, key, entries: [], allow: [] } }))
  for (const kept of g.group.entries) {
    const ms = overlap(kept.methods, e.methods)
    if (ms.length === 0) continue
    conflicts.push({
      ingresses: [...new Set([kept.ingress, e.ingress])], host: e.host, path: e.path, pathType: e.pathType, methods: ms,
      message: `host ${JSON.stringify(e.host || '*')} path ${e.path} (${exact ? 'Exact' : 'Prefix'}) methods ${ms.join(',')}: claimed by ${kept.ingress} and ${e.ingress}; ${kept.ingress} is older and keeps it`,
    })
    return
  }
  g.group.entries.push(e)
  g.group.allow = g.group.allow && e.methods ? sortMethods([...g.group.allow, ...e.methods]) : undefined
}

function buildTable(groups: Map<string, { host: string; group: PathGroup }>, defaultBackend: DefaultBackend | undefined): RouteTable {
  const hosts = new Map<string, HostRoutes>()
  for (const { host, group } of groups.values()) {
    let h = hosts.get(host)
    if (!h) hosts.set(host, (h = { host, exact: new Map(), prefixes: [] }))
    if (group.exact) h.exact.set(group.key, group)
    else h.prefixes.push(group)
  }
  const table: RouteTable = { exactHosts: new Map(), wildcardHosts: new Map(), anyHost: undefined, defaultBackend }
  for (const h of hosts.values()) {
    h.prefixes.sort((a, b) => b.key.length - a.key.length || (a.key < b.key ? -1 : 1))
    if (h.host === '') table.anyHost = h
    else if (h.host.startsWith('*.')) table.wildcardHosts.set(h.host.slice(2), h)
    else table.exactHosts.set(h.host, h)
  }
  return table
}

/** Lower-case, without port or trailing dot: `Example.COM:8080` → `example.com`, `[::1]:80` → `[::1]`. */
export function requestHost(host: string): string {
  let h = host.toLowerCase()
  if (h.startsWith('[')) h = h.slice(0, h.indexOf(']') + 1)
  else if (h.includes(':')) h = h.slice(0, h.indexOf(':'))
  return h.endsWith('.') ? h.slice(0, -1) : h
}

/** The one host rule set a request uses: exact host, else a one-label wildcard, else the host-less rules. Never a fallback past the first found. */
export function selectHost(table: RouteTable, host: string): { routes: HostRoutes; how: 'exact' | 'wildcard' | 'any' } | undefined {
  const h = requestHost(host)
  const exact = table.exactHosts.get(h)
  if (exact) return { routes: exact, how: 'exact' }
  const dot = h.indexOf('.')
  const wild = dot > 0 ? table.wildcardHosts.get(h.slice(dot + 1)) : undefined
  if (wild) return { routes: wild, how: 'wildcard' }
  return table.anyHost ? { routes: table.anyHost, how: 'any' } : undefined
}

export function prefixMatches(key: string, path: string): boolean {
  return key === '' || path === key || (path.startsWith(key) && path.charCodeAt(key.length) === 47 /* '/' */)
}

/** The best path group for a normalised path: Exact first, then the longest Prefix (element-wise). */
export function bestGroup(routes: HostRoutes, path: string): PathGroup | undefined {
  const exact = routes.exact.get(path)
  if (exact) return exact
  for (const g of routes.prefixes) if (prefixMatches(g.key, path)) return g
  return undefined
}

/**
 * Where a request goes. `path` must already be normalised (normalizePath);
 * it is matched case-sensitively. The best matching path decides alone: a
 * method it does not accept is a 405 with its Allow list, never a fall
 * through to a shorter path, another host rule or the default backend.
 */
export function matchRoute(table: RouteTable, req: RouteRequest): Match {
  const sel = selectHost(table, req.host)
  const group = sel && bestGroup(sel.routes, req.path)
  if (group) {
    const e = group.entries.find((x) => !x.methods || x.methods.includes(req.method))
    if (e) return { kind: 'route', ...e }
    return { kind: 'method-not-allowed', allow: group.allow ?? [], host: sel.routes.host, path: group.entries[0]!.path }
  }
  return table.defaultBackend ? { kind: 'default-backend', ...table.defaultBackend } : { kind: 'not-found' }
}

const fmtBackend = (b: Backend): string => `service ${b.service} port ${b.port}`
const fmtMethods = (m: readonly string[] | undefined): string => (m ? m.join(',') : 'any method')

/** What `skiff route METHOD URL` prints: the host rule chosen, each candidate path and why it did or did not win. `path` may be raw. */
export function explainRoute(table: RouteTable, req: RouteRequest): string[] {
  const lines = [`request: ${req.method} host ${JSON.stringify(req.host)} path ${JSON.stringify(req.path)}`]
  const norm = normalizePath(req.path)
  if (!norm.ok) return [...lines, `result: 400 Bad Request (${norm.reason})`]
  if (norm.path !== req.path.split('?')[0]) lines.push(`normalised path: ${norm.path}`)
  const path = norm.path
  const sel = selectHost(table, req.host)
  if (!sel) lines.push(`host ${JSON.stringify(requestHost(req.host))}: no exact, wildcard or host-less rule`)
  else {
    const how = { exact: 'exact host rule', wildcard: `wildcard rule ${sel.routes.host}`, any: 'rules without a host' }[sel.how]
    lines.push(`host ${JSON.stringify(requestHost(req.host))}: ${how} (no fallback to other host rules)`)
    lines.push(...explainGroups(sel.routes, path, req.method))
  }
  const m = matchRoute(table, { ...req, path })
  if (m.kind === 'route') lines.push(`result: ${m.ingress} rule ${m.ruleIndex} path ${m.pathIndex} (${m.pathType} ${m.path}) -> ${m.namespace}/${fmtBackend(m.backend)}`)
  else if (m.kind === 'default-backend') lines.push(`result: no path matched; defaultBackend of ${m.ingress} -> ${m.namespace}/${fmtBackend(m.backend)}`)
  else if (m.kind === 'method-not-allowed') lines.push(`result: 405 Method Not Allowed, Allow: ${m.allow.join(', ')}`)
  else lines.push('result: 404 Not Found (no rule and no defaultBackend)')
  return lines
}

function explainGroups(routes: HostRoutes, path: string, method: string): string[] {
  const lines: string[] = []
  const winner = bestGroup(routes, path)
  const all = [...routes.exact.values(), ...routes.prefixes]
  for (const g of all) {
    const matches = g.exact ? g.key === path : prefixMatches(g.key, path)
    const why = g === winner ? 'matches, best path' : !matches ? 'does not match' : 'matches, but a better path wins (Exact first, then longest)'
    for (const e of g.entries) {
      const m = g === winner ? (!e.methods || e.methods.includes(method) ? `accepts ${method}: chosen` : `does not accept ${method}`) : ''
      lines.push(`  ${e.pathType} ${e.path} [${fmtMethods(e.methods)}] ${e.ingress}: ${why}${m ? '; ' + m : ''}`)
    }
  }
  if (all.length === 0) lines.push('  no paths')
  return lines
}
