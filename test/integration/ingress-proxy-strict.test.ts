// The ingress applies RFC 9110/9112 to every message, upgrades included: raw
// sockets send the bad bytes to real worker processes (2 workers on
// 127.0.0.1), each once as a plain request and once as a WebSocket upgrade.
// Each gets its 400 (or 501/505) with the reason in the body, nothing
// reaches an upstream, the refusal is counted under host "_", and the
// access log line (from the same proxy served in this process) carries the
// reason. A valid absolute-form request is routed by its authority, which
// is also the Host the upstream sees.

import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'
import { createIngressProxy, serveWith, serverOptions } from '../../dataplane/ingress/proxy.ts'
import { compileState } from '../../dataplane/ingress/state.ts'
import { Balancer } from '../../dataplane/ingress/balancer.ts'
import { createWorkerMetrics } from '../../dataplane/ingress/worker-metrics.ts'
import { ep, ing, path, rawRequest, rule, startIngressWorkers, upstream } from '../harness/ingress.ts'

t.jobs = 1
const [sa, sb, sany] = await Promise.all([upstream(t, 'sa'), upstream(t, 'sb'), upstream(t, 'sany')])
const snapshot: IngressSnapshot = {
  generation: 1, className: 'external', isDefaultClass: false,
  ingresses: [ing('a', [rule('a.test', path('Prefix', '/', 'sa'))]), ing('b', [rule('b.test', path('Prefix', '/', 'sb'))]), ing('any', [rule('', path('Prefix', '/', 'sany'))])],
  services: Object.fromEntries(['sa', 'sb', 'sany'].map((n) => [`default/${n}`, { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }])),
  endpoints: { 'default/sa': [ep(sa)], 'default/sb': [ep(sb)], 'default/sany': [ep(sany)] },
  certificates: {}, challenges: {}, settings: { trustedProxies: [] },
}
const { pool, httpPort } = await startIngressWorkers(t, { workers: 2 })
pool.apply(snapshot)
await pool.waitForGeneration(1, 30_000)

const upgradeHeaders = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
/** `head` is a request line plus header lines (each ending in CRLF); the plain form adds Connection: close, the upgrade form the WebSocket headers. */
const plain = (head: string) => `${head}Connection: close\r\n\r\n`
const upgrade = (head: string) => `${head}${upgradeHeaders}\r\n`

/** [what, request head, status, reason in the body]: the reason is the proxy's own or the parser's. */
const cases: [string, string, number, string][] = [
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n', 400, 'missing Host header'],
  ['two Host lines, same value', 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n', 400, 'more than one Host header'],
  ['two Host lines, different values', 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n', 400, 'more than one Host header'],
  ['empty Host', 'GET / HTTP/1.1\r\nHost: \r\n', 400, 'invalid Host header: empty host'],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: a test\r\n', 400, 'invalid Host header: invalid host characters'],
  ['Host with a path', 'GET / HTTP/1.1\r\nHost: a.test/x\r\n', 400, 'invalid Host header: invalid host characters'],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: u@a.test\r\n', 400, 'invalid Host header: userinfo is not allowed'],
  ['Host with a bad port', 'GET / HTTP/1.1\r\nHost: a.test:99999\r\n', 400, 'invalid Host header: invalid port'],
  ['Host with a broken IP literal', 'GET / HTTP/1.1\r\nHost: [::1\r\n', 400, 'invalid Host header: unterminated IP literal'],
  ['absolute-form without Host', 'GET http://b.test/ HTTP/1.1\r\n', 400, 'missing Host header'],
  ['absolute-form with userinfo', 'GET http://u:p@b.test/ HTTP/1.1\r\nHost: a.test\r\n', 400, 'invalid authority in the request target: userinfo is not allowed'],
  ['absolute-form with an empty authority', 'GET http:///x HTTP/1.1\r\nHost: a.test\r\n', 400, 'invalid authority in the request target: empty host'],
  ['absolute-form, scheme ftp', 'GET ftp://b.test/ HTTP/1.1\r\nHost: a.test\r\n', 400, 'absolute-form target with a scheme other than http or https'],
  ['a fragment in the target', 'GET /x#y HTTP/1.1\r\nHost: a.test\r\n', 400, 'fragment in the request target'],
  ['field name not a token', 'GET / HTTP/1.1\r\nHost: a.test\r\nX(y): 1\r\n', 400, 'Invalid header token'],
  ['space before the colon', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y : 1\r\n', 400, 'Invalid header token'],
  ['field value with a CTL', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\x01b\r\n', 400, 'Invalid header value char'],
  ['field value with DEL', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\x7fb\r\n', 400, 'Invalid header value char'],
  ['field value with NUL', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\x00b\r\n', 400, 'Invalid header value char'],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\rb\r\n', 400, 'Missing expected LF after header value'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\r\n b\r\n', 400, 'Unexpected whitespace after header value'],
  ['Transfer-Encoding with Content-Length', 'GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n', 400, "Transfer-Encoding can't be present with Content-Length"],
  ['Transfer-Encoding not ending in chunked', 'GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n', 400, 'Transfer-Encoding not ending in chunked'],
  ['chunked, then another coding', 'GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, gzip\r\n', 400, 'Invalid `Transfer-Encoding` header value'],
  ['a coding before chunked', 'GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n', 501, 'transfer coding not implemented'],
  ['Transfer-Encoding in HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n', 400, 'HTTP/1.0 request'],
  ['two Content-Lengths, different', 'GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n', 400, 'Duplicate Content-Length'],
  ['two Content-Lengths, same', 'GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nContent-Length: 0\r\n', 400, 'Duplicate Content-Length'],
  ['a Content-Length list', 'GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0, 0\r\n', 400, 'Invalid character in Content-Length'],
]

const seenBefore = (): number => sa.seen.length + sb.seen.length + sany.seen.length
const count400 = async (): Promise<number> => {
  let n = 0
  for (const m of (await pool.metrics()).matchAll(/skiff_ingress_requests_total\{class="external",host="_",status="(?:400|501)",upstream="-"\} (\d+)/g)) n += Number(m[1])
  return n
}

t.test('every bad message is refused with its status and reason, as a plain request and as an upgrade', async (t) => {
  const before = seenBefore()
  const counted = await count400()
  for (const [what, head, status, reason] of cases) {
    for (const [form, bytes] of [['plain', plain(head)], ['upgrade', upgrade(head)]] as const) {
      const out = await rawRequest(httpPort, Buffer.from(bytes, 'latin1'))
      t.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${what} (${form}): ${status}`)
      t.ok(out.includes(reason), `${what} (${form}): says "${reason}"`)
      t.match(out, /\r\nConnection: close\r\n/i, `${what} (${form}): the connection closes`)
    }
  }
  t.equal(seenBefore(), before, 'no upstream saw any of them')
  t.equal(await count400() - counted, cases.length * 2, 'each refusal counted under host "_" with its status')
})

t.test('the refusal closes a keep-alive connection: a request smuggled behind it is never served', async (t) => {
  const before = seenBefore()
  const out = await rawRequest(httpPort, 'GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n')
  t.match(out, /^HTTP\/1\.1 501 /)
  t.equal((out.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one answer only')
  t.equal(seenBefore(), before)
})

t.test('valid messages pass: HTAB and obs-text in values, HTTP/1.0 without Host, IP-literal Host', async (t) => {
  t.match(await rawRequest(httpPort, plain('GET /tab HTTP/1.1\r\nHost: a.test\r\nX-Y: a\tb\r\n')), /^HTTP\/1\.1 200 [^]*"name":"sa"/)
  t.match(await rawRequest(httpPort, Buffer.from(plain('GET /obs HTTP/1.1\r\nHost: a.test\r\nX-Y: caf\xe9\r\n'), 'latin1')), /^HTTP\/1\.1 200 [^]*"name":"sa"/)
  t.match(await rawRequest(httpPort, 'GET /old HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 [^]*"name":"sany"/, 'HTTP/1.0 without Host: the host-less rules')
  t.match(await rawRequest(httpPort, plain('GET /ip HTTP/1.1\r\nHost: [::1]:8080\r\n')), /^HTTP\/1\.1 200 [^]*"name":"sany"/)
  t.match(await rawRequest(httpPort, plain('GET /ok HTTP/1.1\r\nHost: A.TEST.:80\r\n')), /^HTTP\/1\.1 200 [^]*"name":"sa"/, 'case, trailing dot and port')
})

t.test('absolute-form: the authority routes and becomes the Host the upstream sees (plain and upgrade)', async (t) => {
  const out = await rawRequest(httpPort, plain('GET http://b.test/abs?q=1 HTTP/1.1\r\nHost: a.test\r\n'))
  t.match(out, /^HTTP\/1\.1 200 [^]*"name":"sb","url":"\/abs\?q=1"/)
  const seen = sb.seen.at(-1)!
  t.equal(seen.headers.host, 'b.test', 'Host replaced by the authority')
  t.equal(seen.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'host').length, 1, 'one Host')
  t.equal(seen.headers['x-forwarded-host'], 'b.test')
  const up = await new Promise<string>((resolve, reject) => {
    const c = net.connect(httpPort, '127.0.0.1', () => c.write(upgrade('GET http://b.test/ws HTTP/1.1\r\nHost: a.test\r\n')))
    let got = ''
    c.setEncoding('latin1')
    c.on('data', (d) => {
      got += d
      if (got.includes('\r\n\r\n')) {
        c.destroy()
        resolve(got)
      }
    })
    c.on('error', reject)
  })
  t.match(up, /^HTTP\/1\.1 101 /, 'the upgrade is switched')
  const ws = sb.seen.at(-1)!
  t.equal(ws.url, '/ws')
  t.equal(ws.headers.host, 'b.test', 'the WebSocket upstream sees the authority as Host')
})

t.test('CONNECT is 501; a request line without a version (HTTP/0.9 to the parser) is 505', async (t) => {
  t.match(await rawRequest(httpPort, 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n'), /^HTTP\/1\.1 501 [^]*CONNECT is not supported/)
  t.match(await rawRequest(httpPort, 'GET /\r\nHost: a.test\r\n\r\n'), /^HTTP\/1\.1 505 [^]*HTTP version not supported/)
  t.match(await rawRequest(httpPort, 'GET / HTTP/1.2\r\nHost: a.test\r\n\r\n'), /^HTTP\/1\.1 400 [^]*Invalid HTTP version/, 'other versions: the parser')
})

t.test('acme-challenge-proto: a token named __proto__ is a 404, and the worker lives on', async (t) => {
  const pids = pool.pids
  for (const tok of ['__proto__', 'constructor']) {
    t.match(await rawRequest(httpPort, plain(`GET /.well-known/acme-challenge/${tok} HTTP/1.1\r\nHost: a.test\r\n`)), /^HTTP\/1\.1 404 [^]*unknown ACME challenge/, tok)
  }
  t.same(pool.pids, pids, 'no worker restarted')
})

t.test('the access log line of a refusal carries its reason (the same proxy, in this process)', async (t) => {
  const lines: any[] = []
  const sink = new Writable({ write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l))
    cb()
  } })
  const state = compileState(snapshot)
  const proxy = createIngressProxy({ state: () => state, balancer: new Balancer(), metrics: createWorkerMetrics(), accessLog: pino({ level: 'info' }, sink), className: 'external', draining: () => false })
  const server = http.createServer(serverOptions)
  serveWith(server, proxy, 'http')
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    proxy.close()
    server.closeAllConnections()
    server.close(() => r())
  }))
  const port = (server.address() as net.AddressInfo).port
  await rawRequest(port, plain('GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n'))
  await rawRequest(port, upgrade('GET / HTTP/1.1\r\n'))
  await rawRequest(port, plain('GET / HTTP/1.1\r\nHost: a.test\r\nX-Y: a\x01b\r\n'))
  await rawRequest(port, plain('GET /fine HTTP/1.1\r\nHost: a.test\r\n'))
  const want = [
    { status: 400, host: 'a.test', reason: 'more than one Host header' },
    { status: 400, host: '', reason: 'missing Host header' },
    { status: 400, reason: 'HPE_INVALID_HEADER_TOKEN: Invalid header value char' },
    { status: 200, path: '/fine' },
  ]
  t.match(lines, want.map((w) => ({ class: 'external', ...w })))
  t.notOk('reason' in lines[3], 'an answered request has no reason')
})
