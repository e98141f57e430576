// The ACME transport of dataplane/ingress/acme-support.ts: which answers are
// "rate limited" or "unreachable", the failure shared on the Lease, and
// acme-client through it against a small local ACME-shaped HTTPS server:
// a 429 is sent once (acme-client's own axios retry would send it 5 more
// times), a refused connection keeps its cause, and a stopped exchange sends
// nothing more.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import acme from 'acme-client'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { AcmeServerError, acmeExchange, classifyAcmeAnswer, leaseAnnotations, probeDirectory, rateLimitedProblem, setUpAcmeTransport, sharedFailure } from '../../dataplane/ingress/acme-support.ts'
import { freePort } from '../../lib/net.ts'

const now = Date.UTC(2026, 0, 15, 12, 0, 0)

t.test('classifyAcmeAnswer', async (t) => {
  const problem = (type: string, detail = 'no') => JSON.stringify({ type, detail })
  const cases = [
    { name: '429 with a rateLimited problem', status: 429, body: problem(rateLimitedProblem, 'too many new orders'), retryAfter: '60', want: { reason: 'RateLimited', kind: 'rate_limited', retryAfterMs: 60_000 } },
    { name: '429 without a body', status: 429, body: '', retryAfter: 'Thu, 15 Jan 2026 13:00:00 GMT', want: { reason: 'RateLimited', retryAfterMs: 3_600_000 } },
    { name: 'Let\'s Encrypt overloaded: 503 + rateLimited', status: 503, body: problem(rateLimitedProblem, 'Service busy; retry later.'), retryAfter: '5', want: { reason: 'RateLimited', retryAfterMs: 5_000 } },
    { name: '503 with Retry-After', status: 503, body: 'down for maintenance', retryAfter: '600', want: { reason: 'Unreachable', kind: 'unreachable', retryAfterMs: 600_000 } },
    { name: '500 serverInternal', status: 500, body: problem('urn:ietf:params:acme:error:serverInternal'), want: { reason: 'Unreachable', retryAfterMs: undefined } },
    { name: 'a parsed body (axios may hand one over)', status: 400, body: { type: rateLimitedProblem, detail: 'x' }, want: { reason: 'RateLimited' } },
  ]
  for (const c of cases) {
    const got = classifyAcmeAnswer({ method: 'post', url: 'https://ca.test/new-order', status: c.status, retryAfter: c.retryAfter, body: c.body, now })
    t.ok(got instanceof AcmeServerError, `${c.name}: a server failure`)
    t.match(got, c.want, c.name)
  }
  const limited = classifyAcmeAnswer({ method: 'post', url: 'https://ca.test/new-order', status: 429, retryAfter: '60', body: problem(rateLimitedProblem, 'too many new orders'), now })!
  t.equal(limited.message, `POST https://ca.test/new-order answered HTTP 429 (${rateLimitedProblem}: too many new orders); Retry-After 60 s`)
  t.equal(limited.code, 'SKIFF_ERR_ACME_RATE_LIMITED')
  for (const [status, body] of [[200, '{}'], [400, problem('urn:ietf:params:acme:error:badNonce')], [403, problem('urn:ietf:params:acme:error:unauthorized')], [404, 'not found']] as const) {
    t.equal(classifyAcmeAnswer({ method: 'get', url: 'u', status, body, now }), undefined, `${status} is the order's business`)
  }
  t.notOk('config' in limited, 'no config property: acme-client\'s axios interceptor passes it through')
})

t.test('sharedFailure reads the backoff a replica wrote on the Lease', async (t) => {
  const lease = (a: Record<string, string>): KubeObject => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l', annotations: a } })
  const at = '2026-01-15T13:00:00.000Z'
  t.same(sharedFailure(lease({ [leaseAnnotations.failures]: '3', [leaseAnnotations.retryAfter]: at, [leaseAnnotations.reason]: 'rate_limited' })), { failures: 3, retryAt: Date.parse(at), reason: 'rate_limited' })
  t.same(sharedFailure(lease({ [leaseAnnotations.failures]: '1', [leaseAnnotations.retryAfter]: at })), { failures: 1, retryAt: Date.parse(at) }, 'written before reasons were recorded')
  t.same(sharedFailure(lease({ [leaseAnnotations.failures]: '1', [leaseAnnotations.retryAfter]: at, [leaseAnnotations.reason]: 'toString' })), { failures: 1, retryAt: Date.parse(at) }, 'an unknown reason is left out')
  t.equal(sharedFailure(lease({})), undefined)
  t.equal(sharedFailure(lease({ [leaseAnnotations.failures]: '0', [leaseAnnotations.retryAfter]: at })), undefined)
  t.equal(sharedFailure(lease({ [leaseAnnotations.failures]: '2', [leaseAnnotations.retryAfter]: 'later' })), undefined)
})

interface FakeCa { url: string; seen: string[]; limitAccounts: boolean; server: Server }

/** An ACME-shaped HTTPS server: a directory, nonces, and new-account answering 429 (rateLimited, Retry-After 120) while limitAccounts. */
async function fakeCa(t: { teardown(fn: () => unknown): void }, certPem: string, keyPem: string): Promise<FakeCa> {
  const ca: FakeCa = { url: '', seen: [], limitAccounts: true, server: undefined as unknown as Server }
  ca.server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    ca.seen.push(`${req.method} ${req.url}`)
    req.resume()
    const base = ca.url.replace(/\/dir$/, '')
    if (req.url === '/dir') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order` }))
    if (req.url === '/nonce') return res.writeHead(200, { 'replay-nonce': `n${ca.seen.length}`, 'cache-control': 'no-store' }).end()
    if (req.url === '/account' && ca.limitAccounts) {
      return res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '120', 'replay-nonce': 'n' }).end(JSON.stringify({ type: rateLimitedProblem, detail: 'too many registrations', status: 429 }))
    }
    res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'urn:ietf:params:acme:error:malformed', detail: 'not here' }))
  })
  await new Promise<void>((r) => ca.server.listen(0, '127.0.0.1', r))
  ca.url = `https://127.0.0.1:${(ca.server.address() as AddressInfo).port}/dir`
  t.teardown(() => new Promise<void>((r) => {
    ca.server.closeAllConnections()
    ca.server.close(() => r())
  }))
  return ca
}

t.test('acme-client through the Skiff transport', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-acme-transport-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const tlsCa = await loadOrCreateCA(dir)
  const serving = issueServingCert(tlsCa, { commonName: 'fake-acme', ipAddresses: ['127.0.0.1'], days: 1 })
  setUpAcmeTransport(tlsCa.certPem)
  const ca = await fakeCa(t, serving.certPem, serving.keyPem)
  const accountKey = await acme.crypto.createPrivateKey()

  await t.test('a 429 is sent once and comes back as RateLimited with its Retry-After', async (t) => {
    ca.seen.length = 0
    const client = new acme.Client({ directoryUrl: ca.url, accountKey })
    const started = Date.now()
    const err = await acmeExchange(() => client.createAccount({ termsOfServiceAgreed: true }), 30_000).catch((e) => e)
    t.ok(err instanceof AcmeServerError, `an AcmeServerError (${err?.message})`)
    t.match(err, { reason: 'RateLimited', kind: 'rate_limited', retryAfterMs: 120_000, status: 429 })
    t.equal(ca.seen.filter((s) => s === 'POST /account').length, 1, 'new-account sent once: no retry by acme-client')
    t.ok(Date.now() - started < 20_000, 'and no sleep of Retry-After inside acme-client')
  })

  await t.test('after a rate limit the exchange sends nothing more', async (t) => {
    ca.seen.length = 0
    const client = new acme.Client({ directoryUrl: ca.url, accountKey })
    const err = await acmeExchange(async () => {
      await client.createAccount({ termsOfServiceAgreed: true }).catch(() => undefined) // as acme-client's status polls swallow errors and retry
      return client.createAccount({ termsOfServiceAgreed: true })
    }, 30_000).catch((e) => e)
    t.match(err, { reason: 'RateLimited' })
    t.equal(ca.seen.filter((s) => s === 'POST /account').length, 1, 'the second new-account never left')
  })

  await t.test('an exchange past its deadline sends nothing more', async (t) => {
    ca.seen.length = 0
    ca.limitAccounts = false
    let later: Promise<unknown> | undefined
    const err = await acmeExchange(async () => {
      await new Promise((r) => setTimeout(r, 300))
      later = new acme.Client({ directoryUrl: ca.url, accountKey }).getTermsOfServiceUrl().catch((e) => e)
      return later
    }, 50).catch((e) => e)
    t.match(err, { reason: 'Timeout', code: 'SKIFF_ERR_ACME_TIMEOUT' })
    await new Promise((r) => setTimeout(r, 400))
    t.match(await later, { reason: 'Timeout' }, 'the abandoned order\'s request failed at once')
    t.same(ca.seen, [], 'nothing reached the server')
    ca.limitAccounts = true
  })

  await t.test('a refused connection is Unreachable with its cause', async (t) => {
    const closed = `https://127.0.0.1:${await freePort()}/dir`
    const err = await acmeExchange(() => new acme.Client({ directoryUrl: closed, accountKey }).createAccount({ termsOfServiceAgreed: true }), 30_000).catch((e) => e)
    t.match(err, { reason: 'Unreachable', kind: 'unreachable', message: /ECONNREFUSED/ })
    t.match(await probeDirectory(closed).catch((e) => e), { reason: 'Unreachable', message: /unreachable: ECONNREFUSED/ })
  })

  await t.test('probeDirectory: a limiting or failing directory', async (t) => {
    const answers: Array<[number, Record<string, string>, string]> = [
      [429, { 'retry-after': '30' }, JSON.stringify({ type: rateLimitedProblem, detail: 'slow down' })],
      [503, { 'retry-after': '10' }, 'maintenance'],
      [404, {}, 'no'],
    ]
    const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (_req, res) => {
      const [status, headers, body] = answers[0]!
      res.writeHead(status, headers).end(body)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    t.teardown(() => new Promise<void>((r) => server.close(() => r())))
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`
    t.match(await probeDirectory(url).catch((e) => e), { reason: 'RateLimited', retryAfterMs: 30_000 })
    answers.shift()
    t.match(await probeDirectory(url).catch((e) => e), { reason: 'Unreachable', retryAfterMs: 10_000, status: 503 })
    answers.shift()
    const other = await probeDirectory(url).catch((e) => e)
    t.notOk(other instanceof AcmeServerError, 'a 404 is no server failure')
    t.match(other.message, /answered HTTP 404/)
  })
})
