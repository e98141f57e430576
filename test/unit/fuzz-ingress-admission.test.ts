// Property-based fuzzing (fast-check, fixed seed and run counts so every CI
// run is the same) of the ingress's pure request path: header scan, message
// checks, path normalisation, admission against a compiled table, and the
// header lists sent upstream. Whatever the bytes: no throw, an answer with
// a status (or a forward to an origin-form URL), and the invariants the
// proxy relies on.

import t from 'tap'
import fc from 'fast-check'
import { admit, type AdmissionRecord, type AdmitRequest } from '../../dataplane/ingress/admission.ts'
import { forwardedValues, scanHeaders, upstreamHeaders } from '../../dataplane/ingress/headers.ts'
import { authorityError, checkMessage } from '../../dataplane/ingress/message.ts'
import { normalizePath } from '../../dataplane/ingress/paths.ts'
import { compileState } from '../../dataplane/ingress/state.ts'
import type { IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'

/** Fixed, so CI runs the same cases every time; SKIFF_FUZZ_SEED explores others locally. */
const seed = Number(process.env.SKIFF_FUZZ_SEED ?? 20261104)
const runs = { seed, numRuns: 3000 }

// Any rejection nobody handled fails the file (the last test reads this).
const unhandled: unknown[] = []
process.on('unhandledRejection', (e) => void unhandled.push(e))

const backend = (name: string) => ({ service: { name, port: { number: 80 } } })
const ing = (name: string, rules: any[], annotations: Record<string, string> = {}, extra: object = {}) => ({
  metadata: { namespace: 'default', name, annotations, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { ingressClassName: 'external', rules, ...extra },
})
const snapshot: IngressSnapshot = {
  generation: 1, className: 'external', isDefaultClass: false,
  ingresses: [
    ing('a', [{ host: 'a.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('web') }, { path: '/x', pathType: 'Exact', backend: backend('empty') }] } }]),
    ing('m', [{ host: 'm.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('web') }] } }], { 'skiff.dev/methods': 'GET,POST', 'skiff.dev/proxy-body-size': '1k' }),
    ing('w', [{ host: '*.w.test', http: { paths: [{ path: '/app', pathType: 'Prefix', backend: backend('web') }] } }], { 'skiff.dev/rewrite-target': '/', 'skiff.dev/allow-source-ranges': '10.0.0.0/8' }),
    ing('s', [{ host: 's.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('web') }] } }], {}, { tls: [{ hosts: ['s.test'], secretName: 's' }] }),
    ing('any', [{ http: { paths: [{ path: '/any', pathType: 'Prefix', backend: backend('web') }] } }], {}, { defaultBackend: backend('web') }),
  ],
  services: { 'default/web': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, 'default/empty': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
  endpoints: { 'default/web': [{ ip: '10.244.0.5', ports: { http: 8080 }, ready: true, serving: true, terminating: false }], 'default/empty': [] },
  certificates: {}, challenges: { 'tok-1': 'tok-1.thumb' }, settings: { trustedProxies: ['10.0.0.0/8'] },
}
const state = compileState(snapshot)

// Generators: arbitrary text (any code unit below 256), and pieces that are
// near misses of valid messages, so the interesting branches are reached.
const bytes = fc.string({ unit: 'binary-ascii', maxLength: 80 })
const anyText = fc.string({ unit: 'binary', maxLength: 40 })
const token = fc.constantFrom('Host', 'host', 'HOST', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Cookie', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Request-Id', 'Upgrade', 'TE', 'Keep-Alive', 'X-Real-IP', 'Forwarded', 'X-Y')
const hostish = fc.oneof(
  fc.constantFrom('a.test', 'A.TEST.:80', 'm.test', 's.test', 'x.w.test', '[::1]:80', '', ':80', 'a.test:99999', 'u@a.test', '[::1', '[v1.x]', 'a b', 'a.test,b.test', '%61.test', '*.w.test'),
  bytes,
)
const headerValue = fc.oneof(hostish, fc.constantFrom('0', '5', '2048', '-1', '1, 1', 'chunked', 'gzip, chunked', 'chunked, chunked', 'CHUNKED', 'identity', 'close, X-Y', 'upgrade'), anyText)
const rawHeaders = fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: token }, { weight: 1, arbitrary: anyText }), headerValue), { maxLength: 8 }).map((pairs) => pairs.flat())
const target = fc.oneof(
  fc.constantFrom('/', '/x', '/app/y?q=1', '/.well-known/acme-challenge/tok-1', '/.well-known/acme-challenge/__proto__', '/.well-known/acme-challenge/constructor', '/a//../b', '/%2F', '/%zz', '/x#y', '*', 'http://a.test/x', 'HTTPS://x.w.test/app', 'http://u@a.test/', 'http:///x', 'ftp://a.test/', 'a.test:443', '/any/%61', '/caf\u00e9', '/\ud800'),
  bytes.map((b) => `/${b}`),
  bytes,
  anyText,
)
const request: fc.Arbitrary<AdmitRequest> = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT'), anyText),
  url: target,
  httpVersion: fc.constantFrom('1.1', '1.0', '0.9', '2.0', ''),
  upgrade: fc.boolean(),
  socket: fc.record({ remoteAddress: fc.constantFrom('10.1.2.3', '::ffff:10.1.2.3', '192.0.2.1', '::1', '', 'garbage'), servername: fc.constantFrom('s.test', 'a.test', undefined, false) }, { requiredKeys: ['remoteAddress'] }),
}, { requiredKeys: ['httpVersion', 'socket'] })

const record = (): AdmissionRecord => ({ host: '_', path: '', ingress: '' })

t.test('admission: any request line and header list is answered or forwarded, never a throw', async (t) => {
  const statuses = new Map<number, number>()
  fc.assert(fc.property(request, rawHeaders, fc.constantFrom('http', 'https') as fc.Arbitrary<'http' | 'https'>, (req, raw, scheme) => {
    const rec = record()
    const d = admit(req, scanHeaders(raw), scheme, state, rec)
    if (d.kind === 'answer') {
      statuses.set(d.status, (statuses.get(d.status) ?? 0) + 1)
      if (!(Number.isInteger(d.status) && d.status >= 200 && d.status <= 599)) return false
      if (typeof d.body !== 'string') return false
      if (d.status >= 400 && rec.reason !== d.body.trimEnd()) return false
      // Every header value we write must be one Node accepts (no CR/LF/controls from the request).
      for (const v of Object.values(d.headers ?? {})) if (/[\x00-\x08\x0a-\x1f\x7f]/.test(v)) return false
      return true
    }
    statuses.set(0, (statuses.get(0) ?? 0) + 1)
    return d.url.startsWith('/') && !d.url.includes('#') && d.backend.endpoints.length > 0 && typeof d.authority === 'string'
  }), runs)
  t.ok((statuses.get(400) ?? 0) > 0 && (statuses.get(0) ?? 0) > 0 && statuses.size >= 6, `a spread of answers: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`)
})

t.test('ACME tokens are own keys only: __proto__ and constructor are 404, not a crash', async (t) => {
  for (const tok of ['__proto__', 'constructor', 'hasOwnProperty', 'toString']) {
    const d = admit({ method: 'GET', url: `/.well-known/acme-challenge/${tok}`, httpVersion: '1.1', socket: {} }, scanHeaders(['Host', 'a.test']), 'http', state, record())
    t.match(d, { kind: 'answer', status: 404 }, tok)
  }
  t.match(admit({ method: 'GET', url: '/.well-known/acme-challenge/tok-1', httpVersion: '1.1', socket: {} }, scanHeaders(['Host', 'a.test']), 'http', state, record()), { kind: 'answer', status: 200, body: 'tok-1.thumb' })
})

t.test('message checks: a verdict for anything; an accepted target is origin-form or goes to the path check', async (t) => {
  fc.assert(fc.property(target, fc.constantFrom('1.1', '1.0', '0.9'), fc.boolean(), rawHeaders, (url, httpVersion, upgrade, raw) => {
    const c = checkMessage({ url, httpVersion, upgrade }, scanHeaders(raw))
    if (!c.ok) return [400, 501, 505].includes(c.status) && c.reason.length > 0 && !/[\r\n]/.test(c.reason)
    if (c.absoluteAuthority !== undefined && authorityError(c.absoluteAuthority) !== undefined) return false
    return !c.target.includes('#')
  }), runs)
  t.pass()
})

t.test('authority syntax: a verdict for anything; an accepted one has no space, control, slash, @ or comma-space', async (t) => {
  fc.assert(fc.property(fc.oneof(hostish, anyText), (a) => {
    const why = authorityError(a)
    if (why !== undefined) return typeof why === 'string'
    return !/[\s\x00-\x1f\x7f/@\\?#]/.test(a) && a !== '' && !a.startsWith(':')
  }), runs)
  t.pass()
})

t.test('path normalisation: total, and a normalised path is canonical (normalising again changes nothing)', async (t) => {
  fc.assert(fc.property(fc.oneof(target, fc.string({ unit: 'binary', maxLength: 60 }).map((s) => `/${s}`)), (raw) => {
    const n = normalizePath(raw)
    if (!n.ok) return n.status === 400 && n.reason.length > 0
    const again = normalizePath(n.path + n.search)
    return n.path.startsWith('/') && !n.path.includes('//') && !/\/\.\.?(\/|$)/.test(n.path) && /^[\x21-\x7e]*$/.test(n.path) && again.ok && again.path === n.path
  }), runs)
  t.pass()
})

t.test('header lists: scan and upstream list are total; no hop-by-hop field and one Host go upstream', async (t) => {
  const hop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'expect', 'http2-settings'])
  fc.assert(fc.property(rawHeaders, fc.boolean(), fc.option(fc.constantFrom('b.test', '[::1]:8080')), (raw, trusted, host) => {
    const s = scanHeaders(raw)
    const fw = forwardedValues(s, { scheme: 'http', peer: '10.1.2.3', trusted, host: 'a.test', localPort: 80, newRequestId: () => 'id' })
    const out = upstreamHeaders(raw, s, fw.headers, trusted, host ?? undefined)
    if (out.length % 2 !== 0) return false
    const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
    if (names.some((n) => hop.has(n) || (s.connectionTokens ?? []).includes(n))) return false
    if (host != null && (names.filter((n) => n === 'host').length !== 1 || out[1] !== host)) return false
    return names.filter((n) => n === 'x-forwarded-for').length === 1 && /^[A-Za-z0-9._:-]{1,128}$/.test(fw.requestId)
  }), runs)
  t.pass()
})

t.test('no unhandled rejection', async (t) => {
  t.same(unhandled, [])
})
