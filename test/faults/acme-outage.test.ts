// Issue 11, "the ACME server unreachable, then answering 429: old
// certificates stay served, orders back off to at most one per host per
// hour, an Event and a metric say so".
//
// Real parts: a control plane, Pebble (harness/pebble.ts), and the ingress
// supervisor of class `external` on 127.0.0.1 with one real worker process
// and the real ACME issuer (acmeSupervisorHook): Pebble validates HTTP-01
// against the worker's port and TLS clients get certificates from the
// Secrets. Between the issuer and Pebble, a front proxy of this test (HTTPS
// on loopback) passes requests through, counts new-order requests per host,
// answers 429 + Retry-After + a rateLimited problem to them while limiting,
// and resets the connection when Pebble is gone. The "hour" is shortened to
// HOUR_MS (backoffMaxMs), the backoff base to BASE_MS.
//
//  1. a.example.test is issued; TLS clients get it.
//  2. Pebble is SIGKILLed (by pid) and a renewal forced (the issuer's clock
//     moved into the last third): attempts back off (gaps >= the backoff),
//     the old certificate stays served, an Event and the metrics say
//     "unreachable", the Lease holds the next attempt.
//  3. A new Pebble behind the proxy, which now limits new orders; a second
//     host b.example.test wants a certificate too. For LIMIT_WINDOW_MS the
//     proxy counts orders per host: at most one per host per HOUR_MS, and
//     none before Retry-After. b (new, its first failure) gets "2": the hour
//     must win over it and over the short backoff; a (its backoff already at
//     the hour after phase 2) gets an HTTP-date 8 s ahead, which must win.
//     The ingress restarted in the middle changes nothing; the old
//     certificate stays served, Events and metrics say "rate limited".
//  4. The limit lifts: both certificates are issued once their time comes.
//
// Timings are reported with t.comment; assertions are lower bounds on gaps
// (timers fire late, never early) and upper bounds on counts.

import t from 'tap'
import { randomBytes, X509Certificate } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { createServer, request as httpsRequest, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { backoffMs, certFromSecret, parseCert, renewalWindow, shortHash } from '../../certs/issue.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { ApiEventRecorder } from '../../controlplane/controllers/informers.ts'
import { acmeSupervisorHook } from '../../dataplane/ingress/acme.ts'
import { leaseAnnotations, rateLimitedProblem } from '../../dataplane/ingress/acme-support.ts'
import { IngressSupervisor } from '../../dataplane/ingress/supervisor.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { startPebble, type PebbleHandle } from '../harness/pebble.ts'

const nss = lookupResource('', 'v1', 'namespaces')!
const secrets = lookupResource('', 'v1', 'secrets')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const events = lookupResource('', 'v1', 'events')!
const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const classes = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()

const BASE_MS = 500
const HOUR_MS = 5_000
const LIMIT_WINDOW_MS = 4 * HOUR_MS
const RETRY_AFTER_A_MS = 8_000 // above the hour (an HTTP-date): Retry-After decides
const RETRY_AFTER_B_S = 2 // below it (delay-seconds): the hour decides
/** Clock granularity between this process's Date.now and the issuer's timers. */
const SLACK_MS = 100
const ns = `acme-out-${randomBytes(3).toString('hex')}`
const hostA = 'a.example.test'
const hostB = 'b.example.test'

interface Seen { at: number; method: string; path: string; hosts: string[]; outcome: number | 'reset' }

/** The test's front proxy: HTTPS on loopback in front of whichever Pebble is current. */
interface FrontProxy {
  directoryUrl: string
  /** Trust for the proxy's own TLS (what the issuer gets as caBundlePem). */
  caPem: string
  seen: Seen[]
  /** While set: new-order requests get 429 with this Retry-After (per host list) and a rateLimited problem. */
  limit?: (hosts: string[]) => string
  setUpstream(p: PebbleHandle): Promise<void>
}

function httpsGetJson(url: string, caPem: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: caPem, timeout: 5_000 }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve(JSON.parse(body)))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** The identifiers of a new-order JWS (flattened JSON serialization, RFC 8555 7.4). */
function orderHosts(body: Buffer): string[] {
  try {
    const payload = JSON.parse(Buffer.from(JSON.parse(body.toString('utf8')).payload, 'base64url').toString('utf8'))
    return (payload.identifiers ?? []).map((i: { value: string }) => i.value).sort()
  } catch {
    return []
  }
}

async function startFrontProxy(t: { teardown(fn: () => unknown): void }, dir: string): Promise<FrontProxy> {
  const ca = await loadOrCreateCA(join(dir, 'proxy-ca'))
  const serving = issueServingCert(ca, { commonName: 'acme-front', ipAddresses: ['127.0.0.1'], days: 1 })
  let upstream: { port: number; caPem: string; newOrderPath: string } | undefined
  const proxy: FrontProxy = {
    directoryUrl: '',
    caPem: ca.certPem,
    seen: [],
    async setUpstream(p) {
      const dirDoc = await httpsGetJson(p.directoryUrl, p.caBundlePem)
      upstream = { port: Number(new URL(p.directoryUrl).port), caPem: p.caBundlePem, newOrderPath: new URL(dirDoc.newOrder).pathname }
    },
  }
  const server: Server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const up = upstream
      const path = req.url ?? '/'
      const seen: Seen = { at: Date.now(), method: req.method ?? '', path, hosts: up && req.method === 'POST' && path === up.newOrderPath ? orderHosts(body) : [], outcome: 0 }
      proxy.seen.push(seen)
      if (seen.hosts.length > 0 && proxy.limit) {
        seen.outcome = 429
        const problem = { type: rateLimitedProblem, detail: `too many new orders for ${seen.hosts.join(', ')}`, status: 429 }
        return void res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': proxy.limit(seen.hosts) }).end(JSON.stringify(problem))
      }
      // Host kept: Pebble builds its URLs from it, so every URL the issuer gets points back here.
      const fwd = httpsRequest({ host: '127.0.0.1', port: up?.port ?? 1, method: req.method, path, headers: req.headers, ca: up?.caPem, timeout: 10_000 }, (ures) => {
        seen.outcome = ures.statusCode ?? 0
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
      })
      fwd.on('timeout', () => fwd.destroy(new Error('upstream timeout')))
      // No ACME server behind: like a TCP balancer without a backend, the connection closes without an answer.
      fwd.on('error', () => {
        seen.outcome = 'reset'
        req.socket.destroy()
      })
      fwd.end(body)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  proxy.directoryUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return proxy
}

/** One HTTPS request to the ingress for `host`, verified against `rootPem`: the serial served and the status. */
function httpsToIngress(port: number, host: string, rootPem: string): Promise<{ serial: string; status: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername: host, headers: { host }, path: '/', ca: rootPem, agent: false, timeout: 5_000 }, (res) => {
      const cert = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()
      res.resume()
      res.on('end', () => (cert ? resolve({ serial: cert.serialNumber, status: res.statusCode ?? 0 }) : reject(new Error('no peer certificate'))))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** The value of one sample of a Prometheus text exposition, by name and a subset of its labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)\{([^}]*)\} (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}

/** The ingress's /metrics (the supervisor's status port). */
function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000 }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve(body))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

const ingressFor = (name: string, host: string, secretName: string): KubeObject => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: ns },
  spec: { ingressClassName: 'external', tls: [{ secretName, hosts: [host] }], rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
})

t.test('ACME server unreachable, then answering 429', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-acme-outage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const c = await startTestCluster(t, { identities: [{ user: 'skiff:ingress:external', groups: ['skiff:ingress-controllers'] }] })
  const ingressClient: ApiClient = c.clientFor(c.tokens.get('skiff:ingress:external')!)
  const [httpPort, httpsPort] = [await freePort(), await freePort()]
  const pebble1 = await startPebble(t, { httpPort, certificateValidityPeriodSeconds: 3600 })
  const proxy = await startFrontProxy(t, dir)
  await proxy.setUpstream(pebble1)

  await c.client.create(nss, undefined, { metadata: { name: ns } })
  const cls = await c.client.get(classes, undefined, 'external')
  cls.metadata.annotations = { ...cls.metadata.annotations, 'skiff.dev/acme-directory': proxy.directoryUrl, 'skiff.dev/acme-email': 'ops@example.test' }
  await c.client.update(classes, cls)
  await c.client.create(ingresses, ns, ingressFor('site-a', hostA, 'a-tls'))

  // The ingress node: started again in phase 3 on the same ports, as after a restart of the agent.
  let offset = 0
  let supervisor: IngressSupervisor | undefined
  const startIngress = async () => {
    const s = new IngressSupervisor({
      client: ingressClient, className: 'external', nodeName: 'edge-1', address: '127.0.0.1', httpPort, httpsPort, workers: 1, statusPort: 0, drainMs: 1_000, lameDuckMs: 0, logger, workerLogLevel: 'warn',
      acme: acmeSupervisorHook({
        events: new ApiEventRecorder({ client: ingressClient, logger, component: 'skiff-ingress-external' }),
        now: () => Date.now() + offset, caBundlePem: proxy.caPem, renewCheckMs: 250, leaseRetryMs: 250, backoffBaseMs: BASE_MS, backoffMaxMs: HOUR_MS, challengeDelayMs: 200,
      }),
    })
    await s.start()
    supervisor = s
  }
  t.teardown(() => supervisor?.stop())
  await startIngress()

  const secret = async (name: string) => (await c.client.get(secrets, ns, name).catch(() => undefined)) as KubeObject | undefined
  const serialOf = (s: KubeObject | undefined) => (s ? parseCert(certFromSecret(s)!)?.serialNumber : undefined)
  const failedEvents = async (ingress: string) => (await c.client.list(events, ns)).items.filter((e) => e.reason === 'AcmeFailed' && e.involvedObject?.name === ingress)
  const leaseOf = (secretName: string) => c.client.get(leases, ns, `ingress-external-acme-${shortHash(`${ns}/${secretName}`)}`)
  const metrics = () => scrape(supervisor!.statusPort)

  // --- 1: issued and served ---
  const issuedA = await eventually(() => secret('a-tls'), { timeout: 60_000, what: 'Secret a-tls from ACME' })
  const oldSerial = serialOf(issuedA)!
  const oldInfo = parseCert(certFromSecret(issuedA)!)!
  await eventually(async () => (await httpsToIngress(httpsPort, hostA, pebble1.rootPem).catch(() => undefined))?.serial === oldSerial, { timeout: 30_000, what: `the ingress serving ${hostA}` })
  t.pass(`${hostA} issued (serial ${oldSerial}) and served, verified against Pebble's root`)

  // Requests to the old certificate through every fault (paused only while the ingress restarts).
  const served = { requests: 0, failures: 0, wrong: 0, paused: false, stop: false, lastError: '' }
  const probing = (async () => {
    while (!served.stop) {
      if (!served.paused) {
        served.requests++
        const r = await httpsToIngress(httpsPort, hostA, pebble1.rootPem).catch((e: Error) => ((served.lastError = e.message), undefined))
        if (!r) served.failures++
        else if (r.serial !== oldSerial) served.wrong++
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  t.teardown(async () => {
    served.stop = true
    await probing
  })

  await t.test('ACME server unreachable: backoff, old certificate served, Event and metrics say unreachable', async (t) => {
    process.kill(pebble1.pid, 'SIGKILL')
    await pebble1.stop() // waits for the exit
    const from = proxy.seen.length
    const started = Date.now()
    offset = renewalWindow(oldInfo.notBefore, oldInfo.notAfter).renewAt - Date.now() + 1_000
    const attempts = () => proxy.seen.slice(from).filter((s) => s.path === '/dir')
    // An attempt is recorded when its request arrives and settled when the forward fails: wait for four settled ones.
    await eventually(() => attempts().length >= 4 && attempts().every((s) => s.outcome !== 0), { timeout: 30_000, what: 'four settled attempts at the unreachable server' })
    const elapsed = Date.now() - started
    const at = attempts().map((s) => s.at)
    t.ok(attempts().every((s) => s.outcome === 'reset'), 'every attempt met a reset connection')
    const gaps = at.slice(1).map((x, i) => x - at[i]!)
    t.comment(`attempts at +${at.map((x) => x - started).join(', +')} ms; gaps ${gaps.join(', ')} ms (backoff ${gaps.map((_, i) => backoffMs(i + 1, BASE_MS, HOUR_MS)).join(', ')} ms)`)
    gaps.forEach((g, i) => t.ok(g >= backoffMs(i + 1, BASE_MS, HOUR_MS) - SLACK_MS, `attempt ${i + 2} came ${g} ms after attempt ${i + 1}: not before its backoff (${backoffMs(i + 1, BASE_MS, HOUR_MS)} ms)`))
    t.notOk(proxy.seen.slice(from).some((s) => s.hosts.length > 0), 'no order was sent: the directory probe fails first')

    const text = await metrics()
    const failures = sample(text, 'skiff_ingress_acme_order_failures_total', { class: 'external', reason: 'unreachable' }) ?? 0
    t.ok(failures >= 4, `metric: ${failures} unreachable failures`)
    const next = sample(text, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { class: 'external', certificate: `${ns}/a-tls`, reason: 'unreachable' })
    t.ok(next !== undefined && next * 1000 <= Date.now() + HOUR_MS, `metric: next attempt at ${next && new Date(next * 1000).toISOString()}, per the backoff (never past the hour while unreachable)`)
    t.ok((sample(text, 'skiff_ingress_acme_consecutive_failures', { class: 'external', certificate: `${ns}/a-tls` }) ?? 0) >= 4, 'metric: consecutive failures')

    const lease = await leaseOf('a-tls')
    t.equal(lease.metadata.annotations?.[leaseAnnotations.reason], 'unreachable', 'the Lease records why')
    t.ok(Number(lease.metadata.annotations?.[leaseAnnotations.failures]) >= 4, 'and how many failures')

    const evs = await failedEvents('site-a')
    t.ok(evs.length >= 1, 'an AcmeFailed Event on the Ingress')
    t.match(evs[0]?.message, new RegExp(`^Certificate for ${hostA} not issued: ACME server unreachable: .*; next attempt at \\S+ \\(in \\d+ s, backoff, 1 failed in a row\\); the current certificate \\(valid until \\S+\\) stays served$`))
    t.ok(evs.length <= 1 + Math.floor(elapsed / HOUR_MS), `no Event spam: ${evs.length} Event(s) for ${attempts().length} failures in ${elapsed} ms`)
    t.equal(serialOf(await secret('a-tls')), oldSerial, 'the Secret still holds the old certificate')
    t.equal((await httpsToIngress(httpsPort, hostA, pebble1.rootPem)).serial, oldSerial, 'TLS clients get the old certificate')
  })

  const limitedFrom = proxy.seen.length
  // Certificates for a year: the clock moved to renew a's 1 h certificate must not find the new ones due too.
  const pebble2 = await startPebble(t, { httpPort, certificateValidityPeriodSeconds: 365 * 86_400 })
  let limitStart = 0

  await t.test('ACME server answering 429: at most one order per host per hour, Retry-After honoured, across a restart', async (t) => {
    await proxy.setUpstream(pebble2)
    proxy.limit = (hosts) => (hosts.includes(hostB) ? String(RETRY_AFTER_B_S) : new Date(Date.now() + RETRY_AFTER_A_MS).toUTCString())
    limitStart = Date.now()
    await c.client.create(ingresses, ns, ingressFor('site-b', hostB, 'b-tls'))
    const orders = (host: string) => proxy.seen.slice(limitedFrom).filter((s) => s.hosts.includes(host))
    await eventually(() => orders(hostA).length >= 1 && orders(hostB).length >= 1, { timeout: 30_000, what: 'a limited order for each host' })

    const text = await eventually(async () => {
      const m = await metrics()
      return sample(m, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { certificate: `${ns}/a-tls`, reason: 'rate_limited' }) && sample(m, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { certificate: `${ns}/b-tls`, reason: 'rate_limited' }) ? m : undefined
    }, { timeout: 10_000, what: 'the rate limit in the metrics' })
    t.ok((sample(text, 'skiff_ingress_acme_order_failures_total', { class: 'external', reason: 'rate_limited' }) ?? 0) >= 2, 'metric: rate-limited failures counted')
    for (const [ingress, host] of [['site-a', hostA], ['site-b', hostB]] as const) {
      const ev = await eventually(async () => (await failedEvents(ingress)).find((e) => /rate limited/.test(e.message)), { timeout: 10_000, what: `a rate-limited Event on ${ingress}` })
      t.match(ev.message, new RegExp(`^Certificate for ${host} not issued: rate limited by the ACME server: POST \\S+ answered HTTP 429 \\(${rateLimitedProblem}: too many new orders for ${host}\\); Retry-After \\d+ s; next attempt at \\S+ \\(in \\d+ s, (rate-limit interval|Retry-After), \\d+ failed in a row\\)`), `${ingress}: the Event says rate limited, Retry-After and when`)
    }
    t.match((await failedEvents('site-a')).find((e) => /rate limited/.test(e.message))?.message, /stays served$/, 'the Event on site-a says the current certificate stays served')
    t.equal((await leaseOf('b-tls')).metadata.annotations?.[leaseAnnotations.reason], 'rate_limited', 'the Lease records the rate limit')

    // The restart: a new supervisor and issuer know nothing but what the Lease and the Secret say.
    served.paused = true
    const restartStarted = Date.now()
    await supervisor!.stop()
    supervisor = undefined
    await startIngress()
    served.paused = false
    t.comment(`ingress restarted in ${Date.now() - restartStarted} ms`)
    t.equal((await httpsToIngress(httpsPort, hostA, pebble1.rootPem)).serial, oldSerial, 'after the restart TLS clients still get the old certificate (from the Secret)')
    const after = await eventually(async () => {
      const m = await metrics()
      return sample(m, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { certificate: `${ns}/b-tls`, reason: 'rate_limited' }) ? m : undefined
    }, { timeout: 10_000, what: 'the restarted issuer reporting the backoff it read from the Lease' })
    t.ok(after, 'the restarted ingress reports the backoff (read from the Lease) in its metrics')

    await new Promise((r) => setTimeout(r, Math.max(0, limitStart + LIMIT_WINDOW_MS - Date.now())))
    const windowMs = Date.now() - limitStart
    // An HTTP-date has whole seconds: up to 1 s of it is lost.
    for (const [host, minGap] of [[hostA, Math.max(HOUR_MS, RETRY_AFTER_A_MS - 1_000)], [hostB, HOUR_MS]] as const) {
      const at = orders(host).map((s) => s.at)
      const gaps = at.slice(1).map((x, i) => x - at[i]!)
      t.comment(`${host}: ${at.length} orders in ${windowMs} ms, gaps ${gaps.join(', ') || '-'} ms`)
      t.ok(at.length <= Math.floor(windowMs / HOUR_MS) + 1, `${host}: ${at.length} orders in ${windowMs} ms: at most one per ${HOUR_MS} ms`)
      t.ok(at.length >= 2, `${host}: ordered again once allowed (${at.length})`)
      gaps.forEach((g, i) => t.ok(g >= minGap - SLACK_MS, `${host}: order ${i + 2} ${g} ms after the one before (>= ${minGap} ms)`))
      t.ok(orders(host).every((s) => s.outcome === 429), `${host}: every order got 429`)
    }
    t.ok(proxy.seen.slice(limitedFrom).filter((s) => s.hosts.length > 0).every((s) => s.hosts.length === 1), 'one host per order')
    for (const ingress of ['site-a', 'site-b']) {
      const evs = (await failedEvents(ingress)).filter((e) => /rate limited/.test(e.message))
      const hostOrders = orders(ingress === 'site-a' ? hostA : hostB).length
      t.ok(evs.length <= hostOrders, `${ingress}: ${evs.length} rate-limited Event(s) for ${hostOrders} refused orders`)
    }
    t.equal(serialOf(await secret('a-tls')), oldSerial, 'the old certificate is kept in its Secret')
    t.equal(await secret('b-tls'), undefined, 'nothing written for b while limited')
  })

  await t.test('the limit lifts: both certificates are issued once their time comes', async (t) => {
    served.stop = true
    await probing
    proxy.limit = undefined
    const lifted = Date.now()
    const [renewedA, issuedB] = await Promise.all([
      eventually(async () => {
        const s = await secret('a-tls')
        return serialOf(s) !== oldSerial ? s : undefined
      }, { timeout: 60_000, what: 'the renewed certificate for a' }).then((s) => ({ s, ms: Date.now() - lifted })),
      eventually(() => secret('b-tls'), { timeout: 60_000, what: 'a certificate for b' }).then((s) => ({ s, ms: Date.now() - lifted })),
    ])
    offset = 0
    t.comment(`issued after the limit lifted: ${hostA} in ${renewedA.ms} ms, ${hostB} in ${issuedB.ms} ms`)
    t.comment(`requests to the old certificate until the limit lifted: ${served.requests}, failed ${served.failures}, other certificate ${served.wrong}${served.lastError ? ` (last error: ${served.lastError})` : ''}`)
    t.ok(served.requests > 20, `requests kept going (${served.requests})`)
    t.equal(served.failures, 0, 'no request to the old certificate failed')
    t.equal(served.wrong, 0, 'every one got the old certificate')
    const root2 = new X509Certificate(pebble2.rootPem)
    for (const [host, s] of [[hostA, renewedA.s], [hostB, issuedB.s]] as const) {
      const serial = serialOf(s)
      const got = await eventually(async () => {
        const r = await httpsToIngress(httpsPort, host, pebble2.rootPem)
        if (r.serial !== serial) throw new Error(`served serial ${r.serial}, not ${serial}`)
        return r
      }, { timeout: 30_000, what: `the ingress serving the new certificate of ${host}` })
      t.ok(got, `${host}: the new certificate is served, verified against the new Pebble's root (${root2.subject.split('\n')[0]})`)
    }
    const text = await metrics()
    t.equal(sample(text, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { certificate: `${ns}/a-tls` }), undefined, 'no next attempt pending for a')
    t.equal(sample(text, 'skiff_ingress_acme_next_attempt_timestamp_seconds', { certificate: `${ns}/b-tls` }), undefined, 'nor for b')
    const issued = (await c.client.list(events, ns)).items.filter((e) => e.reason === 'Issued' && /failed attempt/.test(e.message))
    t.ok(issued.length >= 1, `Issued Events say after how many failures (${issued.map((e) => e.message).join(' | ')})`)
    t.equal((await leaseOf('a-tls')).metadata.annotations?.[leaseAnnotations.failures], undefined, 'the Lease backoff is cleared')
  })
})
