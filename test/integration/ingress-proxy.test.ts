// The ingress data path with real traffic: a WorkerPool of 2 worker processes
// on 127.0.0.1 (free ports), real upstream HTTP/WebSocket servers on
// 127.0.0.x, requests from node:http, raw sockets and curl. Each upstream
// answers with its name and records what it received, so a test asserts both
// where a request went and what the backend saw.

import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import type { EndpointInfo, IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { ep, ing, path, rawRequest, rule, startIngressWorkers, upstream as startUpstream, type Upstream } from '../harness/ingress.ts'

const upstream = (name: string, ip?: string): Promise<Upstream> => startUpstream(t, name, ip)

t.jobs = 1
const tmp = await mkdtemp(join(tmpdir(), 'skiff-ingress-'))
t.teardown(() => rm(tmp, { recursive: true, force: true }))
const ca = await loadOrCreateCA(tmp)
const caFile = join(tmp, 'ca.crt')
await writeFile(caFile, ca.certPem)
const certA = issueServingCert(ca, { commonName: 'a.test', dnsNames: ['a.test'] })
const certB = issueServingCert(ca, { commonName: 'b.test', dnsNames: ['b.test', '*.wild.test'] })
const certDefault = issueServingCert(ca, { commonName: 'skiff default', dnsNames: ['default.invalid'] })

const [s1, s2, s3, sd, w1, w2, w3, deny, pub, rec] = await Promise.all([
  upstream('s1'), upstream('s2'), upstream('s3'), upstream('sdefault'), upstream('w1', '127.0.0.2'), upstream('w2', '127.0.0.3'), upstream('w3'), upstream('deny'), upstream('pub'), upstream('rec'),
])
const deadPort = await freePort('127.0.0.1')
const dead = { ip: '127.0.0.1', port: deadPort }

/** The base snapshot; `extra` adds Ingresses, `eps` overrides endpoints. */
function snapshot(generation: number, o: { extra?: any[]; eps?: Record<string, EndpointInfo[]>; trusted?: string[] } = {}): IngressSnapshot {
  const byName: Record<string, Upstream[]> = { s1: [s1], s2: [s2], s3: [s3], sdefault: [sd], web: [w1, w2], deny: [deny], pub: [pub], rec: [rec], w3: [w3] }
  const endpoints: Record<string, EndpointInfo[]> = {}
  for (const [n, us] of Object.entries(byName)) endpoints[`default/${n}`] = us.map(ep)
  endpoints['default/flaky'] = [ep(dead), ep(w3)]
  endpoints['default/flakypost'] = [ep(dead), ep(w3)]
  endpoints['default/empty'] = []
  Object.assign(endpoints, o.eps ?? {})
  const services: IngressSnapshot['services'] = {}
  for (const k of Object.keys(endpoints)) services[k] = { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }
  services['default/ext'] = { type: 'ExternalName', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], externalName: 'example.com' }
  const ingresses = [
    ing('r1', [rule('r1.test', path('Prefix', '/', 's1'))]),
    ing('r2', [rule('r2.test', path('Exact', '/foo', 's1'))]),
    ing('r3', [rule('r3.test', path('Exact', '/foo/', 's1'))]),
    ing('r4', [rule('r4.test', path('Prefix', '/foo/', 's1'))]),
    ing('r5', [rule('r5.test', path('Prefix', '/aaa/bb', 's1'))]),
    ing('r6', [rule('r6.test', path('Prefix', '/aaa/bbb/', 's1'))]),
    ing('r7', [rule('r7.test', path('Prefix', '/aaa/bbb', 's1'))]),
    ing('r8', [rule('r8.test', path('Prefix', '/', 's1'), path('Prefix', '/aaa', 's2'), path('Prefix', '/aaa/bbb', 's3'))]),
    ing('r9', [rule('r9.test', path('Prefix', '/aaa', 's1'))]),
    ing('r10', [rule('r10.test', path('Prefix', '/foo', 's1'), path('Exact', '/foo', 's2'))]),
    ing('r11', [rule('r11.test', path('ImplementationSpecific', '/imp', 's1'))]),
    ing('wild', [rule('*.w.test', path('Prefix', '/', 's2'))]),
    ing('mget', [rule('meth.test', path('Prefix', '/', 's1'))], { annotations: { 'skiff.dev/methods': 'GET,HEAD' } }),
    ing('mpost', [rule('meth.test', path('Prefix', '/', 's2'))], { annotations: { 'skiff.dev/methods': 'POST' } }),
    ing('sec', [rule('sec.test', path('Exact', '/admin', 'deny'), path('Prefix', '/', 'pub'))]),
    ing('svc', [rule('svc.test', path('Prefix', '/empty', 'empty'), path('Prefix', '/missing', 'nosuch'), path('Prefix', '/ext', 'ext'), path('Prefix', '/', 'web'))]),
    ing('flaky', [rule('flaky.test', path('Prefix', '/', 'flaky'))]),
    ing('flakypost', [rule('flakypost.test', path('Prefix', '/', 'flakypost'))]),
    ing('lim', [rule('lim.test', path('Prefix', '/', 'rec'))], { annotations: { 'skiff.dev/proxy-body-size': '1k' } }),
    ing('rw', [rule('rw.test', path('Prefix', '/app', 'rec'))], { annotations: { 'skiff.dev/rewrite-target': '/' } }),
    ing('tls-a', [rule('a.test', path('Prefix', '/', 's1'))], { tls: [{ hosts: ['a.test'], secretName: 'a-cert' }], annotations: { 'skiff.dev/hsts-max-age': '600' } }),
    ing('tls-b', [rule('b.test', path('Prefix', '/', 's2'))], { tls: [{ hosts: ['b.test'], secretName: 'b-cert' }], annotations: { 'skiff.dev/ssl-redirect': 'false' } }),
    ing('ws', [rule('ws.test', path('Prefix', '/', 'web'))]),
    ...(o.extra ?? []),
  ]
  return {
    generation, className: 'external', isDefaultClass: false, ingresses, services, endpoints,
    certificates: { 'default/a-cert': { cert: certA.certPem, key: certA.keyPem }, 'default/b-cert': { cert: certB.certPem, key: certB.keyPem } },
    defaultCertificate: { cert: certDefault.certPem, key: certDefault.keyPem },
    challenges: { 'tok-123': 'tok-123.thumbprint' },
    settings: { trustedProxies: o.trusted ?? ['127.0.0.5/32'] },
  }
}

const { pool, httpPort, httpsPort } = await startIngressWorkers(t, { addresses: ['127.0.0.1', '127.0.0.2'] })
let gen = 1
pool.apply(snapshot(gen))
await pool.waitForGeneration(gen, 30_000)

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string; json: any }
function get(host: string, p: string, o: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean; localAddress?: string; agent?: http.Agent } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host, ...(o.headers ?? {}) }
    if (o.body !== undefined && !o.chunked) headers['content-length'] = String(Buffer.byteLength(o.body))
    const req = http.request({ host: '127.0.0.1', port: httpPort, path: p, method: o.method ?? 'GET', headers, localAddress: o.localAddress, agent: o.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(body) } catch {}
        resolve({ status: res.statusCode!, headers: res.headers, body, json })
      })
    })
    req.on('error', reject)
    if (o.body !== undefined) req.end(o.body)
    else req.end()
  })
}
const where = async (host: string, p: string, method = 'GET'): Promise<string> => {
  const r = await get(host, p, { method })
  return r.status === 200 ? r.json.name : String(r.status)
}

const raw = (data: string): Promise<string> => rawRequest(httpPort, data)

t.test('every configured address serves (a node\'s InternalIP and ExternalIP)', async (t) => {
  for (const address of ['127.0.0.1', '127.0.0.2']) {
    const r = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: address, port: httpPort, path: '/anything', headers: { host: 'r1.test' }, agent: false }, (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', reject)
      req.end()
    })
    t.equal(r, 200, `r1.test answered on ${address}`)
  }
})

t.test('Ingress matching table (networking-anchors.md)', async (t) => {
  const rows: [string, string, string][] = [
    ['r1.test', '/anything/at/all', 's1'],
    ['r2.test', '/foo/', '404'], ['r2.test', '/foo', 's1'],
    ['r3.test', '/foo', '404'], ['r3.test', '/foo/', 's1'],
    ['r4.test', '/foo', 's1'], ['r4.test', '/foo/', 's1'],
    ['r5.test', '/aaa/bbb', '404'],
    ['r6.test', '/aaa/bbb', 's1'],
    ['r7.test', '/aaa/bbb/ccc', 's1'], ['r7.test', '/aaa/bbbxyz', '404'],
    ['r8.test', '/aaa/bbb', 's3'], ['r8.test', '/aaa/x', 's2'], ['r8.test', '/zzz', 's1'],
    ['r9.test', '/ccc', '404'],
    ['r10.test', '/foo', 's2'], ['r10.test', '/foo/x', 's1'],
    ['r11.test', '/imp/x', 's1'],
    ['R1.TEST:80', '/x', 's1'],
    ['a.w.test', '/', 's2'], ['b.a.w.test', '/', '404'], ['w.test', '/', '404'],
    ['unknown.test', '/', '404'],
  ]
  for (const [host, p, want] of rows) t.equal(await where(host, p), want, `${host}${p}`)
  const r = await get('unknown.test', '/')
  t.match(r.body, /404/, 'built-in default backend text')
})

t.test('methods: GET and POST to different backends, PUT is 405 with Allow', async (t) => {
  t.equal(await where('meth.test', '/x', 'GET'), 's1')
  t.equal(await where('meth.test', '/x', 'POST'), 's2')
  const r = await get('meth.test', '/x', { method: 'PUT' })
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, HEAD, POST')
})

t.test('defaultBackend, then back to 404', async (t) => {
  pool.apply(snapshot(++gen, { extra: [ing('dflt', [], { defaultBackend: 'sdefault' })] }))
  await pool.waitForGeneration(gen, 30_000)
  t.equal(await where('r9.test', '/ccc'), 'sdefault', 'Prefix /aaa, request /ccc: default backend')
  t.equal(await where('nohost.test', '/'), 'sdefault')
  pool.apply(snapshot(++gen))
  await pool.waitForGeneration(gen, 30_000)
  t.equal(await where('r9.test', '/ccc'), '404')
})

t.test('503: no endpoints, missing Service, ExternalName', async (t) => {
  for (const [p, why] of [['/empty', 'no ready endpoints'], ['/missing', 'not found'], ['/ext', 'ExternalName']]) {
    const r = await get('svc.test', p!)
    t.equal(r.status, 503, p)
    t.match(r.body, why!)
  }
})

t.test('framing and path smuggling', async (t) => {
  t.match(await raw('POST / HTTP/1.1\r\nHost: r1.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'), /^HTTP\/1\.1 400/, 'CL + TE')
  t.match(await raw('POST / HTTP/1.1\r\nHost: r1.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'), /^HTTP\/1\.1 400/, 'two Content-Lengths')
  t.match(await raw('POST / HTTP/1.1\r\nHost: r1.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'), /^HTTP\/1\.1 400/, 'duplicate Content-Length')
  t.match(await raw(`GET / HTTP/1.1\r\nHost: r1.test\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`), /^HTTP\/1\.1 431/, '17 KB header')
  t.match(await raw('GET /a%2Fb HTTP/1.1\r\nHost: sec.test\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400[^]*encoded slash/, 'encoded slash: 400 with a reason')
  for (const p of ['/public/../admin', '/%61dmin', '//admin', '/./admin', '/public/%2e%2e/admin']) {
    const out = await raw(`GET ${p}?q=1 HTTP/1.1\r\nHost: sec.test\r\nConnection: close\r\n\r\n`)
    t.match(out, /^HTTP\/1\.1 200/, p)
    t.match(out, /"name":"deny","url":"\/admin\?q=1"/, `${p}: matched Exact /admin and forwarded as /admin`)
  }
  const abs = await raw('GET http://sec.test/public/../admin HTTP/1.1\r\nHost: r1.test\r\nConnection: close\r\n\r\n')
  t.match(abs, /"name":"deny","url":"\/admin"/, 'absolute-form: authority decides the host, path normalised')
  t.match(await where('sec.test', '/public/x'), 'pub')
  t.notOk(pub.seen.some((s) => /admin/i.test(s.url) || /%/.test(s.url) || s.url.includes('//') || s.url.includes('..')), 'pub never saw an /admin spelling')
})

t.test('forwarded headers and request id', async (t) => {
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-request-id': 'client-chosen-id', forwarded: 'for=6.6.6.6' }
  const u = await get('r1.test', '/h', { headers: spoof, localAddress: '127.0.0.1' })
  t.equal(u.json.headers['x-forwarded-for'], '127.0.0.1', 'untrusted peer: incoming XFF dropped')
  t.equal(u.json.headers['x-forwarded-proto'], 'http')
  t.equal(u.json.headers['x-forwarded-host'], 'r1.test')
  t.equal(u.json.headers['x-forwarded-port'], String(httpPort))
  t.equal(u.json.headers['x-real-ip'], '127.0.0.1')
  t.equal(u.json.headers.forwarded, undefined)
  t.match(u.json.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'untrusted request id replaced')
  const tr = await get('r1.test', '/h', { headers: spoof, localAddress: '127.0.0.5' })
  t.equal(tr.json.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.5', 'trusted peer: appended')
  t.equal(tr.json.headers['x-request-id'], 'client-chosen-id')
})

t.test('retry: GET on a dead endpoint retried elsewhere, POST not', async (t) => {
  for (let i = 0; i < 6; i++) t.equal(await where('flaky.test', `/g${i}`), 'w3', `GET ${i}`)
  const before = w3.seen.filter((s) => s.method === 'POST').length
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push((await get('flakypost.test', `/p${i}`, { method: 'POST', body: 'x' })).status)
  const ok = statuses.filter((s) => s === 200).length
  t.ok(statuses.includes(502), `some POSTs hit the dead endpoint and were not retried: ${statuses}`)
  t.equal(w3.seen.filter((s) => s.method === 'POST').length - before, ok, 'each POST reached an upstream at most once')
})

t.test('body size limit (proxy-body-size 1k)', async (t) => {
  t.equal((await get('lim.test', '/', { method: 'POST', body: 'x'.repeat(2048) })).status, 413, 'Content-Length over the limit')
  t.equal((await get('lim.test', '/', { method: 'POST', body: 'x'.repeat(2048), chunked: true })).status, 413, 'chunked over the limit')
  const ok = await get('lim.test', '/', { method: 'POST', body: 'x'.repeat(500), chunked: true })
  t.equal(ok.status, 200)
  t.equal(ok.json.body, 500)
})

t.test('cookie affinity: a client with the cookie stays on its endpoint', async (t) => {
  pool.apply(snapshot(++gen, { extra: [ing('sticky', [rule('sticky.test', path('Prefix', '/', 'web'))], { annotations: { 'skiff.dev/load-balance': 'cookie' } })] }))
  await pool.waitForGeneration(gen, 30_000)
  const first = await get('sticky.test', '/')
  const cookie = String([first.headers['set-cookie'] ?? []].flat()[0] ?? '').split(';')[0]!
  t.match(cookie, /^SKIFF_AFFINITY=./, 'the first answer sets the affinity cookie')
  const names = new Set<string>()
  for (let i = 0; i < 10; i++) names.add((await get('sticky.test', `/${i}`, { headers: { cookie } })).json.name)
  t.same([...names], [first.json.name], 'ten requests with the cookie reach the same endpoint')
  const spread = new Set<string>()
  for (let i = 0; i < 20 && spread.size < 2; i++) spread.add((await get('sticky.test', `/n${i}`)).json.name)
  t.equal(spread.size, 2, 'clients without the cookie are spread over both endpoints')
})

t.test('timeouts: a slow answer is a 504 after the read timeout; a stalled upload after the send timeout', async (t) => {
  // An upstream that accepts and never reads: the request body backs up until the send timeout fires.
  const stalled = new Set<net.Socket>()
  const stall = net.createServer((sock) => {
    stalled.add(sock)
    sock.pause()
  })
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    for (const sock of stalled) sock.destroy()
    stall.close(() => r())
  }))
  const stallEp = { ip: '127.0.0.1', port: (stall.address() as net.AddressInfo).port }
  pool.apply(snapshot(++gen, {
    eps: { 'default/stall': [ep(stallEp)] },
    extra: [
      ing('slowread', [rule('slowread.test', path('Prefix', '/', 's1'))], { annotations: { 'skiff.dev/proxy-read-timeout': '300ms' } }),
      ing('stalled', [rule('stalled.test', path('Prefix', '/', 'stall'))], { annotations: { 'skiff.dev/proxy-send-timeout': '500ms', 'skiff.dev/proxy-read-timeout': '60s', 'skiff.dev/proxy-body-size': '0' } }),
    ],
  }))
  await pool.waitForGeneration(gen, 30_000)
  t.equal((await get('slowread.test', '/x?delay=2000')).status, 504, 'read timeout: 504')
  t.equal((await get('slowread.test', '/x?delay=10')).status, 200, 'a quick answer is fine')
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: httpPort, path: '/upload', method: 'POST', headers: { host: 'stalled.test', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode!)
      req.destroy()
    })
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)))
    const chunk = Buffer.alloc(64 * 1024, 120)
    let sent = 0
    const pump = (): void => {
      while (sent < 1024 && !req.destroyed) {
        sent++
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      if (!req.destroyed) req.end()
    }
    pump()
  })
  t.equal(status, 504, 'send timeout: 504 while the upstream stops reading the body')
})

t.test('a WebSocket upgrade over HTTP to a TLS host is redirected', async (t) => {
  const out = await raw('GET /chat?x=1 HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  t.match(out, /^HTTP\/1\.1 308 /, '308')
  t.match(out, /\r\nLocation: https:\/\/a\.test\/chat\?x=1\r\n/, 'to the same path on https')
})

t.test('rewrite-target', async (t) => {
  t.equal((await get('rw.test', '/app/x/y?q=1')).json.url, '/x/y?q=1')
  t.equal((await get('rw.test', '/app')).json.url, '/')
})

t.test('ssl-redirect and ACME HTTP-01 on HTTP', async (t) => {
  const r = await get('a.test', '/p?q=1')
  t.equal(r.status, 308)
  t.equal(r.headers.location, 'https://a.test/p?q=1')
  const c = await get('a.test', '/.well-known/acme-challenge/tok-123')
  t.equal(c.status, 200, 'challenge answered before the redirect')
  t.equal(c.body, 'tok-123.thumbprint')
  t.equal((await get('a.test', '/.well-known/acme-challenge/nope')).status, 404)
  t.equal(await where('b.test', '/'), 's2', 'ssl-redirect "false"')
})

function peerCN(servername: string | undefined, o: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: httpsPort, servername, rejectUnauthorized: false, ...o }, () => {
      const cn = s.getPeerCertificate().subject?.CN
      s.end()
      resolve(String(cn))
    })
    s.on('error', reject)
  })
}

const curl = (args: string[]): Promise<string> => new Promise((resolve, reject) => {
  execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)))
})

t.test('TLS: SNI per host, default cert, TLS 1.1 refused, HSTS', async (t) => {
  const a = await curl(['-i', '--resolve', `a.test:${httpsPort}:127.0.0.1`, '--cacert', caFile, `https://a.test:${httpsPort}/x`])
  t.match(a, /^HTTP\/1\.1 200/)
  t.match(a, /strict-transport-security: max-age=600/i)
  t.match(a, /"name":"s1"/)
  t.match(a, /"x-forwarded-proto":"https"/)
  const b = await curl(['--resolve', `b.test:${httpsPort}:127.0.0.1`, '--cacert', caFile, `https://b.test:${httpsPort}/`])
  t.match(b, /"name":"s2"/)
  t.equal(await peerCN('a.test'), 'a.test')
  t.equal(await peerCN('b.test'), 'b.test')
  t.equal(await peerCN('zzz.test'), 'skiff default', 'unknown SNI')
  t.equal(await peerCN(undefined), 'skiff default', 'no SNI')
  await t.rejects(peerCN('a.test', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }), 'TLS 1.1 refused')
})

t.test('WebSocket stays open across snapshots', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/chat`, { headers: { host: 'ws.test' } })
  t.teardown(() => ws.terminate())
  const replies: string[] = []
  let closed = false
  ws.on('message', (m) => replies.push(String(m)))
  ws.on('close', () => (closed = true))
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j) })
  ws.send('one')
  await eventually(() => replies.length === 1, { timeout: 30_000 })
  pool.apply(snapshot(++gen, { extra: [ing('unrelated', [rule('u.test', path('Prefix', '/', 's1'))])] }))
  await pool.waitForGeneration(gen, 30_000)
  pool.apply(snapshot(++gen, { eps: { 'default/web': [ep(w1), ep(w2), ep(w3)] } }))
  await pool.waitForGeneration(gen, 30_000)
  ws.send('two')
  await eventually(() => replies.length === 2, { timeout: 30_000 })
  t.match(replies[0], /^w[12]:one$/)
  t.equal(replies[1]!.split(':')[0], replies[0]!.split(':')[0], 'same upstream connection')
  t.notOk(closed)
  const metrics = await pool.metrics()
  t.match(metrics, /skiff_ingress_websockets_open\{class="external"\} 1/)
  t.match(metrics, /skiff_ingress_requests_total\{[^}]*host="r1.test"/)
  t.match(metrics, new RegExp(`skiff_ingress_route_generation\\{class="external"\\} ${gen}`))
})

t.test('hitless swap: 2,000 keep-alive requests while 20 snapshots are applied', async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  let failures = 0
  let done = 0
  const loop = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await get('svc.test', `/hitless/${i}`, { agent }).catch(() => undefined)
      if (r?.status === 200) done++
      else failures++
    }
  }
  const swaps = (async () => {
    for (let i = 0; i < 20; i++) {
      const eps = i % 2 === 0 ? [ep(w1), ep(w2), ep(w3)] : [ep(w2)]
      pool.apply(snapshot(++gen, { eps: { 'default/web': eps }, extra: [ing(`churn${i}`, [rule(`c${i}.test`, path('Prefix', '/', 's1'))])] }))
      await pool.waitForGeneration(gen, 30_000)
    }
  })()
  await Promise.all([loop(500), loop(500), loop(500), loop(500), swaps])
  t.equal(failures, 0)
  t.equal(done, 2000)
})

t.test('a crashed worker is restarted and gets the last snapshot', async (t) => {
  const [victim] = pool.pids
  process.kill(victim!, 'SIGKILL')
  await eventually(() => pool.pids.length === 2 && !pool.pids.includes(victim!) && pool.appliedGeneration === gen, { timeout: 30_000, what: 'restart' })
  t.equal(await where('r1.test', '/after-restart'), 's1')
})

t.test('drain: ports stop accepting, the in-flight request completes', async (t) => {
  const slow = get('r1.test', '/slow?delay=1500')
  await eventually(() => s1.seen.some((s) => s.url.startsWith('/slow')), { timeout: 30_000 })
  const drained = pool.drain(10_000)
  await eventually(() => new Promise<boolean>((resolve) => {
    const c = net.connect(httpPort, '127.0.0.1')
    c.on('connect', () => { c.destroy(); resolve(false) })
    c.on('error', (e: any) => resolve(e.code === 'ECONNREFUSED'))
  }), { timeout: 30_000, what: 'port closed' })
  const r = await slow
  t.equal(r.status, 200)
  t.equal(r.headers.connection, 'close')
  await drained
  t.same(pool.pids, [])
})
