// headers.ts: the request headers read once from the raw list, and the
// header lists sent upstream and back to the client (RFC 9110 7.6.1).

import t from 'tap'
import { downstreamHeaders, forwardedValues, scanHeaders, upstreamHeaders } from '../../dataplane/ingress/headers.ts'

const raw = [
  'Host', 'app.test', 'Content-Length', '5', 'Cookie', 'a=1', 'cookie', 'SKIFF_AFFINITY=x',
  'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'TE', 'trailers',
  'X-Forwarded-For', '6.6.6.6', 'x-forwarded-for', '7.7.7.7', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.test',
  'X-Forwarded-Port', '1', 'X-Real-IP', '6.6.6.6', 'Forwarded', 'for=6.6.6.6', 'X-Request-Id', 'client-id', 'Accept', '*/*',
]

t.test('scan: what admission needs, in one pass', async (t) => {
  const s = scanHeaders(raw)
  t.equal(s.host, 'app.test')
  t.equal(s.contentLength, '5')
  t.equal(s.contentLengthCount, 1)
  t.equal(s.transferEncoding, undefined)
  t.equal(s.cookie, 'a=1; SKIFF_AFFINITY=x', 'cookie fields joined as one (RFC 9113 8.2.3 style)')
  t.same(s.connectionTokens, ['keep-alive', 'x-secret'])
  t.equal(s.xForwardedFor, '6.6.6.6, 7.7.7.7', 'repeated X-Forwarded-For fields joined in order')
  t.equal(s.xForwardedProto, 'https')
  t.equal(s.xForwardedHost, 'evil.test')
  t.equal(s.xForwardedPort, '1')
  t.equal(s.xRealIp, '6.6.6.6')
  t.equal(s.xRequestId, 'client-id')
  const dup = scanHeaders(['Content-Length', '1', 'content-length', '2', 'Transfer-Encoding', 'chunked', 'Host', 'a', 'Host', 'b'])
  t.equal(dup.contentLengthCount, 2, 'both Content-Lengths counted (admission answers 400)')
  t.equal(dup.transferEncoding, 'chunked')
  t.equal(dup.host, 'a', 'the first Host is kept')
  t.equal(dup.hostCount, 2, 'both Hosts counted (admission answers 400)')
  t.equal(scanHeaders([]).hostCount, 0)
})

const ctx = (trusted: boolean) => ({ scheme: 'http' as const, peer: '10.0.0.9', trusted, host: 'app.test', localPort: 80, newRequestId: () => 'new-id' })

t.test('forwarded values: replaced for an untrusted peer, extended for a trusted one', async (t) => {
  const s = scanHeaders(raw)
  t.same(forwardedValues(s, ctx(false)), {
    requestId: 'new-id',
    headers: [['x-forwarded-for', '10.0.0.9'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'app.test'], ['x-forwarded-port', '80'], ['x-real-ip', '10.0.0.9'], ['x-request-id', 'new-id']],
  })
  t.same(forwardedValues(s, ctx(true)), {
    requestId: 'client-id',
    headers: [['x-forwarded-for', '6.6.6.6, 7.7.7.7, 10.0.0.9'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'evil.test'], ['x-forwarded-port', '1'], ['x-real-ip', '6.6.6.6'], ['x-request-id', 'client-id']],
  })
  t.equal(forwardedValues(scanHeaders(['X-Request-Id', 'bad id with spaces']), ctx(true)).requestId, 'new-id', 'a malformed id is replaced even from a trusted peer')
})

t.test('upstream list: hop-by-hop fields and the fields Connection names are dropped; the forwarded set is ours', async (t) => {
  const s = scanHeaders(raw)
  const fw = forwardedValues(s, ctx(false))
  const out = upstreamHeaders(raw, s, fw.headers, false)
  const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
  for (const gone of ['connection', 'x-secret', 'keep-alive', 'te', 'forwarded']) t.notOk(names.includes(gone), `${gone} not forwarded`)
  t.equal(names.filter((n) => n === 'x-forwarded-for').length, 1, 'one X-Forwarded-For, ours')
  t.same(out.slice(0, 8), ['Host', 'app.test', 'Content-Length', '5', 'Cookie', 'a=1', 'cookie', 'SKIFF_AFFINITY=x'], 'end-to-end fields keep their order and spelling')
  t.same(out.slice(-12), fw.headers.flat())
  const trusted = upstreamHeaders(raw, s, forwardedValues(s, ctx(true)).headers, true)
  t.ok(trusted.includes('Forwarded'), 'a trusted peer\'s Forwarded stays')
  const te = scanHeaders(['Transfer-Encoding', 'chunked', 'Expect', '100-continue', 'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive'])
  t.same(upstreamHeaders(['Transfer-Encoding', 'chunked', 'Expect', '100-continue', 'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive'], te, [], false), [], 'framing and Expect are the proxy\'s own business')
})

t.test('client list: the upstream\'s hop-by-hop fields dropped, Set-Cookie and Connection: close added when asked', async (t) => {
  const up = ['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Keep-Alive', 'timeout=4', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1']
  t.same(downstreamHeaders(up.map((x) => Buffer.from(x)), {}), ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1'])
  t.same(downstreamHeaders(up, { setCookie: 'SKIFF_AFFINITY=abc; Path=/; HttpOnly', close: true }).slice(-4), ['Set-Cookie', 'SKIFF_AFFINITY=abc; Path=/; HttpOnly', 'Connection', 'close'], 'the upstream\'s own Set-Cookie stays, ours is appended')
})

t.test('upstream list: an absolute-form authority replaces Host (RFC 9112 3.2.2)', async (t) => {
  const s = scanHeaders(['Accept', '*/*', 'Host', 'a.test'])
  t.same(upstreamHeaders(['Accept', '*/*', 'Host', 'a.test'], s, [], false, 'b.test'), ['Host', 'b.test', 'Accept', '*/*'])
  t.same(upstreamHeaders(['Accept', '*/*'], scanHeaders(['Accept', '*/*']), [], false, 'b.test'), ['Host', 'b.test', 'Accept', '*/*'], 'HTTP/1.0 without Host: added')
})
