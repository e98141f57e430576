// Property-based fuzzing of real ingress workers (fast-check, fixed seed and
// run count): random raw request bytes over TCP, from pure noise to near
// misses of valid messages (bad framing, bad Host, odd targets, upgrades,
// pipelined requests), against 2 worker processes. After every message the
// connection ends with an HTTP/1.1 status line or nothing; every 25 runs a
// valid request still answers 200; at the end no worker has died or been
// restarted and their memory grew by less than a bound.

import t from 'tap'
import fc from 'fast-check'
import net from 'node:net'
import { readFile } from 'node:fs/promises'
import type { IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'
import { ep, ing, path, rawRequest, rule, startIngressWorkers, upstream } from '../harness/ingress.ts'

/** Fixed, so CI runs the same cases every time; SKIFF_FUZZ_SEED explores others locally. */
const seed = Number(process.env.SKIFF_FUZZ_SEED ?? 20261104)
const numRuns = 400
const rssGrowthLimitKiB = 64 * 1024
/** SKIFF_FUZZ_VERBOSE=1: each message and the start of its answer as a comment. */
const verbose = process.env.SKIFF_FUZZ_VERBOSE === '1'

const unhandled: unknown[] = []
process.on('unhandledRejection', (e) => void unhandled.push(e))

t.jobs = 1
const [sa, sws] = await Promise.all([upstream(t, 'sa'), upstream(t, 'sws')])
const snapshot: IngressSnapshot = {
  generation: 1, className: 'external', isDefaultClass: false,
  ingresses: [
    ing('a', [rule('a.test', path('Prefix', '/', 'sa'))], { annotations: { 'skiff.dev/proxy-body-size': '4k', 'skiff.dev/proxy-read-timeout': '2s', 'skiff.dev/proxy-send-timeout': '2s' } }),
    ing('m', [rule('m.test', path('Exact', '/only', 'sa'))], { annotations: { 'skiff.dev/methods': 'GET' } }),
    ing('ws', [rule('ws.test', path('Prefix', '/', 'sws'))]),
  ],
  services: { 'default/sa': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }, 'default/sws': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
  endpoints: { 'default/sa': [ep(sa)], 'default/sws': [ep(sws)] },
  certificates: {}, challenges: { tok: 'tok.thumb' }, settings: { trustedProxies: [] },
}
const { pool, httpPort } = await startIngressWorkers(t, { workers: 2 })
pool.apply(snapshot)
await pool.waitForGeneration(1, 30_000)

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

/** Writes the bytes, half-closes, and reads until the server closes (or `ms` passes: then the connection is cut and 'timeout' returned). */
function exchange(data: Uint8Array, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(httpPort, '127.0.0.1', () => c.end(data))
    let out = ''
    c.setEncoding('latin1')
    c.on('data', (d) => (out += d))
    c.on('error', () => undefined)
    c.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    const timer = setTimeout(() => {
      c.destroy()
      resolve(`timeout:${out}`)
    }, ms)
  })
}

// Pieces of near-valid messages; each may be replaced by noise.
const noise = fc.string({ unit: 'binary-ascii', maxLength: 60 })
const method = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE') }, { weight: 1, arbitrary: fc.constantFrom('CONNECT', 'PRI', 'get') }, { weight: 1, arbitrary: noise })
const target = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('/', '/x', '/only', '/a//../b?q=1', '/.well-known/acme-challenge/tok', 'http://a.test/', 'http://m.test/only') },
  { weight: 2, arbitrary: fc.constantFrom('/%2F', '/%zz', '/x#y', '*', 'http://u@a.test/', '/.well-known/acme-challenge/__proto__', 'a.test:443') },
  { weight: 1, arbitrary: noise.map((s) => `/${s}`) },
)
const version = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/1.1 ', 'http/1.1', '') })
const host = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('a.test', 'm.test', 'ws.test', 'A.TEST:80', 'nope.test') }, { weight: 1, arbitrary: fc.constantFrom('', 'a test', 'u@a.test', '[::1', 'a.test:99999') })
const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 40 })
const hostLines = fc.oneof({ weight: 10, arbitrary: host.map((h) => [`Host: ${h}`]) }, { weight: 1, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.tuple(host, host).map(([a, b]) => [`Host: ${a}`, `Host: ${b}`]) })
const goodField = fc.oneof(
  fc.constantFrom('Connection: close', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13',
    'Expect: 100-continue', 'X-Forwarded-For: 1.2.3.4', 'Cookie: SKIFF_AFFINITY=x', 'X-Y: caf\xe9', 'Accept: */*'),
  printable.map((s) => `X-Fuzz: ${s}`),
)
const badField = fc.oneof(
  fc.constantFrom('Content-Length: -1', 'Content-Length: 1, 1', 'Transfer-Encoding: gzip', 'Transfer-Encoding: gzip, chunked', ' folded', 'X(bad): 1', 'X-Y: a\x01b'),
  noise.map((s) => `X-Fuzz: ${s}`),
  noise,
)
/** Framing and body: matching (none, Content-Length, chunked) mostly, mismatched or smuggling-shaped sometimes. */
const framing: fc.Arbitrary<[string[], string]> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<[string[], string]>([[], '']) },
  { weight: 2, arbitrary: printable.map((b): [string[], string] => [[`Content-Length: ${b.length}`], b]) },
  { weight: 2, arbitrary: printable.map((b): [string[], string] => [['Transfer-Encoding: chunked'], `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`]) },
  { weight: 1, arbitrary: fc.constantFrom<[string[], string]>(
    [['Content-Length: 5000'], 'short'], [['Content-Length: 5'], 'hello world'], [['Transfer-Encoding: chunked'], 'zz\r\n'],
    [['Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n'], [['Content-Length: 0', 'Content-Length: 0'], ''],
    [[], 'GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n'], [['Transfer-Encoding: chunked'], '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n'],
  ) },
  { weight: 1, arbitrary: noise.map((b): [string[], string] => [[], b]) },
)
const eol = fc.oneof({ weight: 12, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r') })
const structured = fc.tuple(method, target, version, hostLines, fc.array(goodField, { maxLength: 4 }), fc.option(badField, { freq: 4 }), framing, eol, fc.boolean())
  .map(([m, tg, v, hosts, good, bad, [frame, b], nl, pipelined]) => {
    const fields = [...hosts, ...good, ...(bad === null ? [] : [bad]), ...frame]
    const head = `${m} ${tg} ${v}${nl}${fields.map((f) => `${f}${nl}`).join('')}${nl}${b}`
    return Buffer.from(pipelined ? `${head}GET / HTTP/1.1\r\nHost: a.test\r\n\r\n` : head, 'latin1')
  })
const message = fc.oneof({ weight: 4, arbitrary: structured }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }) })

t.test(`${numRuns} random messages: each ends in a status line or nothing, and the workers keep answering`, async (t) => {
  const pids = pool.pids
  const rssBefore = await Promise.all(pids.map(rssKiB))
  const statuses = new Map<string, number>()
  let run = 0
  let liveness = 0
  await fc.assert(fc.asyncProperty(message, async (bytes) => {
    const out = await exchange(bytes)
    if (verbose) t.comment(`${JSON.stringify(Buffer.from(bytes).toString('latin1')).slice(0, 160)} => ${JSON.stringify(out).slice(0, 120)}`)
    const status = out.startsWith('timeout:') ? 'timeout' : out === '' ? 'closed' : /^HTTP\/1\.1 (\d{3}) /.exec(out)?.[1] ?? 'garbage'
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status === 'garbage') return false
    if (++run % 25 === 0) {
      const ok = await rawRequest(httpPort, 'GET /alive HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 })
      if (!/^HTTP\/1\.1 200 [^]*"name":"sa"/.test(ok)) return false
      liveness++
    }
    return true
  }), { seed, numRuns, endOnFailure: true })
  t.comment(`answers: ${JSON.stringify([...statuses].sort())}`)
  t.ok(liveness >= numRuns / 25 - 1, `a valid request answered 200 after every 25 messages (${liveness} times)`)
  t.ok((statuses.get('400') ?? 0) > numRuns / 10 && (statuses.get('200') ?? 0) > 0 && (statuses.get('404') ?? 0) > 0, 'refusals and answers both')
  t.ok((statuses.get('timeout') ?? 0) <= numRuns / 20, `few connections waited for more bytes (${statuses.get('timeout') ?? 0})`)
  t.same(pool.pids, pids, 'no worker died or was restarted')
  const rssAfter = await Promise.all(pids.map(rssKiB))
  rssAfter.forEach((kib, i) => t.ok(kib - rssBefore[i]! < rssGrowthLimitKiB, `worker ${pids[i]} grew ${kib - rssBefore[i]!} KiB (< ${rssGrowthLimitKiB})`))
  const ok = await rawRequest(httpPort, 'GET /after HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')
  t.match(ok, /^HTTP\/1\.1 200 [^]*"url":"\/after"/, 'and the next valid request is served')
})

t.test('no unhandled rejection', async (t) => {
  t.same(unhandled, [])
})
