// The Gateway API route table of a worker (pure): GatewaySnapshot → an index
// by scheme (HTTP / HTTPS listeners), listener hostname and route hostname,
// each holding the matches sorted by the specification's precedence; and a
// request → the matched rule, the filters' effects and the weighted backend.
//
// Lookup: one listener per request (listener isolation: exact hostname, then
// the longest matching wildcard, then the host-less listener; never a fall
// back to a less specific one), then within it one route-hostname tier
// (exact, longest wildcard, any): the first tier holding routes decides
// alone. In the tier, the first match in precedence order wins: Exact path >
// RegularExpression (longer pattern first; its place is implementation-
// specific) > longest PathPrefix > method > most headers > most query params
// > oldest route > namespace/name > rule order > match order. No match: 404.

import type { GatewaySnapshot, GwBackend, GwFilter, GwHeaderEdits, GwMatch, GwRoute, GwRule } from './gateway-build.ts'
import { prefixMatches } from './routes.ts'

export interface GwEntry {
  route: string
  namespace: string
  created: number
  ruleIndex: number
  matchIndex: number
  match: GwMatch
  /** PathPrefix: the value without its trailing slash ('' for `/`). */
  prefixKey: string
  regex?: RegExp
  headerRegex: Array<RegExp | undefined>
  queryRegex: Array<RegExp | undefined>
  rule: GwRule
  /** The listener port (for redirects without scheme or port). */
  listenerPort: number
}

/** Route entries of one listener hostname, by route hostname. */
export interface GwHostIndex { exact: Map<string, GwEntry[]>; wildcard: Map<string, GwEntry[]>; any: GwEntry[] | undefined }
export interface GwSchemeIndex { exact: Map<string, GwHostIndex>; wildcard: Map<string, GwHostIndex>; any: GwHostIndex | undefined }
export interface GatewayTable { http: GwSchemeIndex; https: GwSchemeIndex; /** hostnames of HTTPS listeners (or their routes) → certificate Secrets. */ tls: Array<{ hosts: string[]; secret: string }>; routeCount: number }

export interface GwRequest { scheme: 'http' | 'https'; host: string; method: string; path: string; search: string; /** flat [name, value, ...] */ headers: readonly string[] }

export type GwMatchResult =
  | { kind: 'none' }
  | { kind: 'not-found'; level: number }
  | { kind: 'match'; level: number; entry: GwEntry }

const emptyScheme = (): GwSchemeIndex => ({ exact: new Map(), wildcard: new Map(), any: undefined })
const emptyHosts = (): GwHostIndex => ({ exact: new Map(), wildcard: new Map(), any: undefined })

function put<T>(ix: { exact: Map<string, T>; wildcard: Map<string, T>; any: T | undefined }, host: string, make: () => T): T {
  if (host === '') return (ix.any ??= make())
  const map = host.startsWith('*.') ? ix.wildcard : ix.exact
  const k = host.startsWith('*.') ? host.slice(2) : host
  let v = map.get(k)
  if (v === undefined) map.set(k, (v = make()))
  return v
}

/** Exact, then wildcards (one or more labels, longest suffix first), then any; with the level found (3, 2, 1) and the hostname as written. */
function lookup<T>(ix: { exact: Map<string, T>; wildcard: Map<string, T>; any: T | undefined }, host: string): { value: T; level: number; name: string } | undefined {
  const exact = ix.exact.get(host)
  if (exact !== undefined) return { value: exact, level: 3, name: host }
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
    const w = ix.wildcard.get(host.slice(dot + 1))
    if (w !== undefined) return { value: w, level: 2, name: `*.${host.slice(dot + 1)}` }
  }
  return ix.any === undefined ? undefined : { value: ix.any, level: 1, name: '' }
}

function safeRegex(src: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${src})$`)
  } catch {
    return undefined
  }
}

/** Negative when a comes first. */
export function comparePrecedence(a: GwEntry, b: GwEntry): number {
  const rank = (e: GwEntry) => (e.match.pathType === 'Exact' ? 0 : e.match.pathType === 'RegularExpression' ? 1 : 2)
  const len = (e: GwEntry) => (e.match.pathType === 'PathPrefix' ? e.prefixKey.length : e.match.path.length)
  return rank(a) - rank(b) || len(b) - len(a) ||
    Number(b.match.method !== undefined) - Number(a.match.method !== undefined) ||
    b.match.headers.length - a.match.headers.length ||
    b.match.query.length - a.match.query.length ||
    a.created - b.created ||
    (a.route < b.route ? -1 : a.route > b.route ? 1 : 0) ||
    a.ruleIndex - b.ruleIndex || a.matchIndex - b.matchIndex
}

export function compileGatewayTable(snap: GatewaySnapshot | undefined): GatewayTable {
  const table: GatewayTable = { http: emptyScheme(), https: emptyScheme(), tls: [], routeCount: 0 }
  if (!snap) return table
  const byKey = new Map(snap.listeners.map((l) => [l.key, l]))
  const touched = new Set<GwEntry[]>()
  for (const route of snap.routes) {
    for (const [lkey, hosts] of Object.entries(route.attachments)) {
      const l = byKey.get(lkey)
      if (!l) continue
      const scheme = l.protocol === 'HTTPS' ? table.https : table.http
      const hostIx = put(scheme, l.hostname, emptyHosts)
      for (const h of hosts) {
        const list = put(hostIx, h, (): GwEntry[] => [])
        list.push(...entries(route, l.port))
        touched.add(list)
      }
      table.routeCount++
    }
  }
  for (const list of touched) list.sort(comparePrecedence)
  for (const l of snap.listeners) {
    if (l.protocol !== 'HTTPS' || l.certificates.length === 0) continue
    const hosts = l.hostname !== '' ? [l.hostname] : [...new Set(snap.routes.flatMap((r) => r.attachments[l.key] ?? []).filter((h) => h !== ''))]
    table.tls.push({ hosts, secret: l.certificates[0]! })
  }
  return table
}

function entries(route: GwRoute, listenerPort: number): GwEntry[] {
  const out: GwEntry[] = []
  for (const rule of route.rules) {
    for (const [matchIndex, match] of rule.matches.entries()) {
      const e: GwEntry = {
        route: route.route, namespace: route.namespace, created: route.created, ruleIndex: rule.ruleIndex, matchIndex, match, rule, listenerPort,
        prefixKey: match.pathType === 'PathPrefix' ? match.path.replace(/\/+$/, '') : '',
        headerRegex: match.headers.map((h) => (h.type === 'RegularExpression' ? safeRegex(h.value) : undefined)),
        queryRegex: match.query.map((q) => (q.type === 'RegularExpression' ? safeRegex(q.value) : undefined)),
      }
      if (match.pathType === 'RegularExpression') {
        const re = safeRegex(match.path)
        if (!re) continue
        e.regex = re
      }
      out.push(e)
    }
  }
  return out
}

/** The first value of a header (name lower-case), from a flat raw list. */
function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1]
  return undefined
}

/**
 * The header and query values the candidates of one request look at, each
 * read at most once however many candidates ask: the query string is
 * parsed on the first query match (not once per candidate), a header name
 * scanned for once.
 */
export class RequestFields {
  readonly #req: Pick<GwRequest, 'search' | 'headers'>
  #query: URLSearchParams | undefined
  readonly #headers = new Map<string, string | undefined>()

  constructor(req: Pick<GwRequest, 'search' | 'headers'>) {
    this.#req = req
  }

  header(name: string): string | undefined {
    if (this.#headers.has(name)) return this.#headers.get(name)
    const v = headerValue(this.#req.headers, name)
    this.#headers.set(name, v)
    return v
  }

  query(name: string): string | undefined {
    if (this.#req.search.length < 2) return undefined
    this.#query ??= new URLSearchParams(this.#req.search.slice(1))
    const v = this.#query.get(name)
    return v === null ? undefined : v
  }
}

export function entryMatches(e: GwEntry, req: Pick<GwRequest, 'method' | 'path' | 'search' | 'headers'>, fields: RequestFields = new RequestFields(req)): boolean {
  const m = e.match
  if (m.pathType === 'Exact' ? req.path !== m.path : m.pathType === 'PathPrefix' ? !prefixMatches(e.prefixKey, req.path) : !e.regex!.test(req.path)) return false
  if (m.method !== undefined && m.method !== req.method) return false
  for (let i = 0; i < m.headers.length; i++) {
    const h = m.headers[i]!
    const v = fields.header(h.name)
    if (v === undefined || (h.type === 'Exact' ? v !== h.value : !e.headerRegex[i]?.test(v))) return false
  }
  for (let i = 0; i < m.query.length; i++) {
    const q = m.query[i]!
    const v = fields.query(q.name)
    if (v === undefined || (q.type === 'Exact' ? v !== q.value : !e.queryRegex[i]?.test(v))) return false
  }
  return true
}

/**
 * Where a request goes among the Gateway routes. `host` is already
 * lower-cased without port (requestHost); `path` normalised. `level` says
 * how specific the host tier that decided is (3 exact, 2 wildcard, 1 any),
 * for the choice between Gateway routes and Ingress rules.
 */
export function matchGateway(table: GatewayTable, req: GwRequest): GwMatchResult {
  const listener = lookup(req.scheme === 'https' ? table.https : table.http, req.host)
  if (!listener) return { kind: 'none' }
  const tier = lookup(listener.value, req.host)
  if (!tier) return { kind: 'none' }
  const level = Math.min(listener.level, tier.level)
  const fields = new RequestFields(req)
  for (const e of tier.value) if (entryMatches(e, req, fields)) return { kind: 'match', level, entry: e }
  return { kind: 'not-found', level }
}

/** Weighted pick (w/Σw; weight 0 never chosen); undefined when every weight is 0 or there are none. `random` in [0, 1). */
export function pickBackend(backends: readonly GwBackend[], random: number): GwBackend | undefined {
  let total = 0
  for (const b of backends) total += Math.max(0, b.weight)
  if (total <= 0) return undefined
  let r = random * total
  for (const b of backends) {
    const w = Math.max(0, b.weight)
    if (w === 0) continue
    if (r < w) return b
    r -= w
  }
  return backends.findLast((b) => b.weight > 0)
}

/** `path` with the matched prefix replaced (ReplacePrefixMatch): /foo/bar, prefix /foo, /xyz → /xyz/bar; '' → /bar; /foo with '' → /. */
export function replacePrefix(path: string, prefixKey: string, replacement: string): string {
  const rest = path.slice(prefixKey.length)
  let out = replacement.replace(/\/+$/, '') + rest
  if (!out.startsWith('/')) out = '/' + out
  return out
}

function modifiedPath(e: GwEntry, path: string, mod: { type: string; value: string } | undefined): string {
  if (!mod) return path
  if (mod.type === 'ReplaceFullPath') return mod.value || '/'
  return e.match.pathType === 'PathPrefix' ? replacePrefix(path, e.prefixKey, mod.value) : path
}

export type GwAction =
  | { kind: 'answer'; status: number; body: string; headers?: Record<string, string> }
  | { kind: 'forward'; backend: { namespace: string; service: string; port: number }; path: string; host?: string; request: GwHeaderEdits[]; response: GwHeaderEdits[] }

/** What the matched rule does with the request: redirect, an error, or forward (backend picked by weight) with the header and URL changes. */
export function gatewayAction(e: GwEntry, req: GwRequest & { authority: string }, random: number): GwAction {
  const filters = e.rule.filters
  const unsupported = filters.find((f) => f.type === 'Unsupported')
  if (unsupported) return { kind: 'answer', status: 500, body: `filter ${unsupported.type === 'Unsupported' ? unsupported.name : ''} is not supported\n` }
  const redirect = filters.find((f): f is Extract<GwFilter, { type: 'RequestRedirect' }> => f.type === 'RequestRedirect')
  if (redirect) {
    const scheme = redirect.scheme ?? req.scheme
    const host = redirect.hostname ?? req.host
    const port = redirect.port ?? (redirect.scheme ? (scheme === 'https' ? 443 : 80) : e.listenerPort)
    const defaultPort = scheme === 'https' ? 443 : 80
    const location = `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${modifiedPath(e, req.path, redirect.path)}${req.search}`
    return { kind: 'answer', status: redirect.statusCode, body: `redirect to ${location}\n`, headers: { Location: location } }
  }
  const b = pickBackend(e.rule.backends, random)
  if (!b) return { kind: 'answer', status: 500, body: e.rule.backends.length ? 'no backend with weight above 0\n' : 'the rule has no backendRefs\n' }
  if ('error' in b) return { kind: 'answer', status: 500, body: `${b.error}\n` }
  const all = [...filters, ...b.filters]
  const rewrite = all.find((f): f is Extract<GwFilter, { type: 'URLRewrite' }> => f.type === 'URLRewrite')
  const request = all.flatMap((f) => (f.type === 'RequestHeaderModifier' ? [f.edits] : []))
  const response = all.flatMap((f) => (f.type === 'ResponseHeaderModifier' ? [f.edits] : []))
  const action: GwAction = { kind: 'forward', backend: { namespace: b.namespace, service: b.service, port: b.port }, path: modifiedPath(e, req.path, rewrite?.path), request, response }
  if (rewrite?.hostname) action.host = rewrite.hostname
  return action
}

/** Applies header edits to a flat header list (names case-insensitive): set replaces every value, add appends one, remove deletes. */
export function applyHeaderEdits(list: string[], edits: readonly GwHeaderEdits[]): string[] {
  let out = list
  for (const e of edits) {
    const drop = new Set([...e.remove, ...e.set.map(([n]) => n)].map((n) => n.toLowerCase()))
    const next: string[] = []
    for (let i = 0; i < out.length; i += 2) if (!drop.has(out[i]!.toLowerCase())) next.push(out[i]!, out[i + 1]!)
    for (const [n, v] of e.set) next.push(n, v)
    for (const [n, v] of e.add) next.push(n, v)
    out = next
  }
  return out
}

function describeMatch(m: GwMatch): string {
  const parts = [`${m.pathType} ${m.path}`]
  if (m.method) parts.push(`method ${m.method}`)
  for (const h of m.headers) parts.push(`header ${h.name}${h.type === 'Exact' ? '=' : '~'}${h.value}`)
  for (const q of m.query) parts.push(`query ${q.name}${q.type === 'Exact' ? '=' : '~'}${q.value}`)
  return parts.join(', ')
}

/** What `skiff route` prints for the Gateway routes: the listener and route hostname chosen, each candidate in precedence order, the result. */
export function explainGateway(table: GatewayTable, req: GwRequest): string[] {
  const listener = lookup(req.scheme === 'https' ? table.https : table.http, req.host)
  if (!listener) return [`gateway: no ${req.scheme.toUpperCase()} listener serves host ${JSON.stringify(req.host)}`]
  const lines = [`gateway: listener hostname ${listener.name || '(any)'} (no fallback to less specific listeners)`]
  const tier = lookup(listener.value, req.host)
  if (!tier) return [...lines, '  no attached route covers the host']
  lines.push(`  route hostname ${tier.name || '(any)'}: candidates in precedence order (Exact, regex, longest prefix, method, headers, query, oldest, name, rule)`)
  let chosen: GwEntry | undefined
  const fields = new RequestFields(req)
  for (const e of tier.value) {
    const ok = entryMatches(e, req, fields)
    const why = !ok ? 'does not match' : chosen ? 'matches, but an earlier candidate wins' : 'matches: chosen'
    if (ok && !chosen) chosen = e
    lines.push(`    ${e.route} rule ${e.ruleIndex} match ${e.matchIndex} [${describeMatch(e.match)}]: ${why}`)
  }
  if (!chosen) return [...lines, '  result: 404 Not Found (no match)']
  const backends = chosen.rule.backends.map((b) => ('error' in b ? `500 (${b.error}) weight ${b.weight}` : `${b.namespace}/${b.service}:${b.port} weight ${b.weight}`))
  const filters = chosen.rule.filters.map((f) => (f.type === 'Unsupported' ? `${f.name} (unsupported: 500)` : f.type))
  lines.push(`  result: ${chosen.route} rule ${chosen.ruleIndex}${filters.length ? ` filters ${filters.join(', ')}` : ''} -> ${backends.length ? backends.join(', ') : 'no backendRefs'}`)
  return lines
}
