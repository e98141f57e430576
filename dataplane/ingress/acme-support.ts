// Support for acme.ts: the one-shot per-certificate Leases replicas
// coordinate with, the transport around acme-client (a directory probe,
// extra trust for private ACME servers, timeouts, failures classified as
// unreachable or rate limited, no retries of its own) and the ACME metrics.

import { AsyncLocalStorage } from 'node:async_hooks'
import { Agent, request as httpsRequest } from 'node:https'
import { createRequire } from 'node:module'
import { rootCertificates } from 'node:tls'
import acme from 'acme-client'
import { parseRetryAfter, type AcmeFailureKind } from '../../certs/issue.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import { CodedError } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, type Registry } from '../../lib/metrics.ts'
import { microTime, planLeaseWrite, recordOf, type LeaseRecord } from '../../controlplane/controllers/leader.ts'
import { monotonicMs } from '../../controlplane/client/lease-observer.ts'

const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
/** On the per-certificate Lease: the shared backoff (not skiff.dev/: those are validated user settings). */
export const leaseAnnotations = { failures: 'cert.skiff.dev/failures', retryAfter: 'cert.skiff.dev/retry-after', reason: 'cert.skiff.dev/failure-reason' } as const

/** A failed order as the Lease records it, so every replica (and a restarted one) backs off alike. */
export interface SharedFailure {
  failures: number
  /** Wall clock (Date.now): no order before this. */
  retryAt: number
  reason?: AcmeFailureKind
}

/**
 * One-shot Leases per certificate (no renew loop: an order is bounded by 80 %
 * of the duration). Expiry is judged by when this replica first saw the
 * record unchanged (as leader.ts does), so clock skew between nodes cannot
 * steal a live Lease; every write is a resourceVersion CAS.
 */
export class AcmeLeases {
  #o: { client: ApiClient; identity: string; leaseDurationMs: number }
  #seen = new Map<string, { key: string; atMs: number }>()

  constructor(opts: { client: ApiClient; identity: string; leaseDurationMs: number }) {
    this.#o = opts
  }

  /** The Lease as written when we now hold it; else who holds it, or until when the certificate backs off. */
  async acquire(namespace: string, name: string): Promise<{ lease: KubeObject } | { heldBy: string } | { backoff: SharedFailure }> {
    const { client, identity, leaseDurationMs } = this.#o
    let lease: KubeObject | undefined
    try {
      lease = await client.get(leasesInfo, namespace, name)
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e
    }
    const current: LeaseRecord | undefined = lease?.spec ? recordOf(lease) : undefined
    const now = Date.now()
    const backoff = lease && sharedFailure(lease)
    if (backoff && backoff.retryAt > now) return { backoff }
    const seenKey = current ? `${current.holderIdentity}|${current.renewTime}|${current.leaseTransitions}` : ''
    const k = `${namespace}/${name}`
    // A holder's Lease expires by this process's monotonic clock since we saw it change (as leader election does), never
    // by its renewTime against our wall clock: a clock step neither takes a held Lease early nor holds off a takeover.
    const mono = monotonicMs()
    if (this.#seen.get(k)?.key !== seenKey) this.#seen.set(k, { key: seenKey, atMs: mono })
    const spec = planLeaseWrite({ current, identity, leaseDurationMs, now, observedAtMs: this.#seen.get(k)!.atMs, monotonicNow: mono })
    if (!spec) return { heldBy: current!.holderIdentity }
    try {
      return {
        lease: lease
          ? await client.update(leasesInfo, { ...lease, spec: { ...lease.spec, ...spec } })
          : await client.create(leasesInfo, namespace, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec }),
      }
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 409) return { heldBy: 'a replica that wrote it first' }
      throw e
    }
  }

  /**
   * Clears the holder (CAS on our own write) so the next replica need not wait
   * for expiry, and records the backoff after a failure (cleared on success).
   */
  async release(lease: KubeObject, log: Logger, failure?: SharedFailure): Promise<void> {
    const now = microTime(Date.now())
    const { [leaseAnnotations.failures]: _f, [leaseAnnotations.retryAfter]: _r, [leaseAnnotations.reason]: _k, ...others } = lease.metadata.annotations ?? {}
    const annotations = failure
      ? { ...others, [leaseAnnotations.failures]: String(failure.failures), [leaseAnnotations.retryAfter]: new Date(failure.retryAt).toISOString(), ...(failure.reason ? { [leaseAnnotations.reason]: failure.reason } : {}) }
      : others
    try {
      await this.#o.client.update(leasesInfo, { ...lease, metadata: { ...lease.metadata, annotations }, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now } })
    } catch (e) {
      log.warn({ err: errorText(e), lease: lease.metadata.name }, 'could not release the certificate lease; it expires by itself')
    }
  }
}

/** The failure recorded on a certificate Lease, if any (0 failures: none). */
export function sharedFailure(lease: KubeObject): SharedFailure | undefined {
  const a = lease.metadata.annotations ?? {}
  const failures = Number(a[leaseAnnotations.failures] ?? 0)
  const retryAt = Date.parse(a[leaseAnnotations.retryAfter] ?? '')
  if (!(failures > 0) || Number.isNaN(retryAt)) return undefined
  const reason = a[leaseAnnotations.reason]
  return { failures, retryAt, ...(reason === 'unreachable' || reason === 'rate_limited' || reason === 'other' ? { reason } : {}) }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

// --- transport ---

export const acmeErrorCodes = {
  /** No answer (connect error, reset, timeout) or a 5xx. */
  Unreachable: 'SKIFF_ERR_ACME_UNREACHABLE',
  /** HTTP 429, or a problem document of type rateLimited (RFC 8555 6.6; Let's Encrypt sends it with 503 when overloaded). */
  RateLimited: 'SKIFF_ERR_ACME_RATE_LIMITED',
  /** The whole order took longer than its deadline. */
  Timeout: 'SKIFF_ERR_ACME_TIMEOUT',
} as const

export type AcmeErrorReason = keyof typeof acmeErrorCodes

/**
 * A failure of the ACME server, not of the order. It has no `config`
 * property on purpose: acme-client's axios interceptor passes such errors
 * through untouched instead of retrying them.
 */
export class AcmeServerError extends CodedError<AcmeErrorReason> {
  readonly retryAfterMs?: number
  readonly status?: number

  constructor(reason: AcmeErrorReason, message: string, o: { retryAfterMs?: number; status?: number; cause?: unknown } = {}) {
    super({ name: 'AcmeServerError', codes: acmeErrorCodes, reason, message, cause: o.cause })
    if (o.retryAfterMs !== undefined) this.retryAfterMs = o.retryAfterMs
    if (o.status !== undefined) this.status = o.status
  }

  get kind(): AcmeFailureKind {
    return this.reason === 'RateLimited' ? 'rate_limited' : 'unreachable'
  }
}

export const rateLimitedProblem = 'urn:ietf:params:acme:error:rateLimited'

/**
 * An ACME server's answer the backoff must know about: 429 or a rateLimited
 * problem is RateLimited, another 5xx Unreachable (both with the
 * Retry-After, if any); anything else is the order's business (undefined).
 */
export function classifyAcmeAnswer(o: { method: string; url: string; status: number; retryAfter?: string; body?: unknown; now: number }): AcmeServerError | undefined {
  const problem = problemOf(o.body)
  const rateLimited = o.status === 429 || problem.type === rateLimitedProblem
  if (!rateLimited && o.status < 500) return undefined
  const retryAfterMs = parseRetryAfter(o.retryAfter, o.now)
  const details = [problem.type, problem.detail].filter(Boolean).join(': ')
  const wait = retryAfterMs === undefined ? '' : `; Retry-After ${Math.ceil(retryAfterMs / 1000)} s`
  const message = `${o.method.toUpperCase()} ${o.url} answered HTTP ${o.status}${details ? ` (${details})` : ''}${wait}`
  return new AcmeServerError(rateLimited ? 'RateLimited' : 'Unreachable', message, { status: o.status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
}

function problemOf(body: unknown): { type?: string; detail?: string } {
  let doc = body
  if (typeof body === 'string' && body.trimStart().startsWith('{')) {
    try {
      doc = JSON.parse(body)
    } catch {
      return {}
    }
  }
  if (!doc || typeof doc !== 'object') return {}
  const { type, detail } = doc as Record<string, unknown>
  return { ...(typeof type === 'string' ? { type } : {}), ...(typeof detail === 'string' ? { detail: detail.slice(0, 300) } : {}) }
}

/** One order's exchange with the server: once stopped (rate limited, or past its deadline), its further requests fail unsent. */
interface Exchange {
  stopped?: Error
}
const exchanges = new AsyncLocalStorage<Exchange>()

/**
 * Runs one order's exchange with the ACME server, rejecting after timeoutMs.
 * A rate limit or the deadline ends it for good: acme-client's own loops
 * (status polls, which retry any error up to backoffAttempts times) and an
 * order abandoned at its deadline can send nothing more.
 */
export async function acmeExchange<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const ex: Exchange = {}
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject((ex.stopped = new AcmeServerError('Timeout', `the ACME order took longer than ${timeoutMs} ms`))), timeoutMs)
  })
  try {
    return await Promise.race([exchanges.run(ex, fn), deadline])
  } finally {
    clearTimeout(timer)
    ex.stopped ??= new Error('the ACME exchange is over')
  }
}

// acme-client sends through axios's http adapter; this wrapper (set on every
// ACME request by the interceptor below) turns transport failures, 429s and
// 5xx into AcmeServerErrors before acme-client sees them, so neither its
// axios retry (up to 5 more sends, sleeping Retry-After in between) nor a
// message without the status and Retry-After is left.
const axiosHttpAdapter: (config: any) => Promise<any> = createRequire(createRequire(import.meta.url).resolve('acme-client'))('axios').getAdapter('http')

async function acmeAdapter(config: any): Promise<any> {
  const ex = exchanges.getStore()
  if (ex?.stopped) throw ex.stopped
  const what = `${String(config.method ?? 'get').toUpperCase()} ${config.url}`
  try {
    return await axiosHttpAdapter(config)
  } catch (e: any) {
    // acme-client makes every answer a rejection (validateStatus: false) and sorts them out itself.
    const res = e?.response
    if (!res) throw new AcmeServerError('Unreachable', `${what}: ${e?.code ?? e?.message ?? e}`, { cause: e })
    const failure = classifyAcmeAnswer({ method: String(config.method ?? 'get'), url: String(config.url), status: res.status, retryAfter: res.headers?.['retry-after'], body: res.data, now: Date.now() })
    if (!failure) throw e
    if (failure.reason === 'RateLimited' && ex) ex.stopped = failure
    throw failure
  }
}

/**
 * A quick GET of the directory before ordering: an unreachable or limiting
 * server fails here in seconds with its real cause, before any account or
 * order request.
 */
export function probeDirectory(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: agent ?? undefined, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => void (body.length < 65_536 && (body += c)))
      res.on('error', (e) => reject(new AcmeServerError('Unreachable', `ACME directory ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)))
      res.on('end', () => {
        if (res.statusCode === 200) return resolve()
        const status = res.statusCode ?? 0
        reject(classifyAcmeAnswer({ method: 'GET', url, status, retryAfter: res.headers['retry-after'], body, now: Date.now() }) ?? new Error(`ACME directory ${url} answered HTTP ${status}`))
      })
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', (e) => reject(new AcmeServerError('Unreachable', `ACME directory ${url} unreachable: ${(e as NodeJS.ErrnoException).code ?? e.message}`)))
    req.end()
  })
}

// acme-client talks through one process-wide axios instance. Extra trust is
// added to it once, for every ACME request: it only adds roots (Node's own
// stay), so it cannot weaken another issuer's checks.
const bundles = new Set<string>()
let agent: Agent | undefined
let installed = false

/** Sets up the ACME transport (once per process) and adds `caBundlePem` to the roots ACME servers are checked against. */
export function setUpAcmeTransport(caBundlePem?: string): void {
  if (caBundlePem && !bundles.has(caBundlePem)) {
    bundles.add(caBundlePem)
    agent = new Agent({ ca: [...rootCertificates, ...bundles], keepAlive: false })
  }
  if (installed) return
  installed = true
  // Retries are the issuer's (per certificate, shared through the Lease); acme-client's would multiply orders.
  const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings
  if (settings) settings.retryMaxAttempts = 0
  acme.axios.interceptors.request.use((cfg) => {
    cfg.httpsAgent ??= agent
    cfg.timeout ||= 30_000
    cfg.adapter = acmeAdapter
    return cfg
  })
}

// --- metrics ---

/** What an issuer shows of its certificates: the ones failing, with their next attempt. */
export interface AcmeMetricsSource {
  className: string
  failing(): Iterable<{ certificate: string; failures: number; retryAt: number; reason?: AcmeFailureKind }>
}

/**
 * The ACME metrics of one registry (the ingress supervisor's /metrics):
 * counters by class, and gauges read from the issuers' state at scrape time.
 */
export class AcmeMetrics {
  static #byRegistry = new WeakMap<Registry, AcmeMetrics>()
  readonly orders: Counter<'class'>
  readonly failures: Counter<'class' | 'reason'>
  readonly issued: Counter<'class'>
  #sources = new Set<AcmeMetricsSource>()

  static of(registry: Registry): AcmeMetrics {
    let m = AcmeMetrics.#byRegistry.get(registry)
    if (!m) AcmeMetrics.#byRegistry.set(registry, (m = new AcmeMetrics(registry)))
    return m
  }

  private constructor(registry: Registry) {
    const registers = [registry]
    const sources = this.#sources
    this.orders = new Counter({ name: 'skiff_ingress_acme_orders_total', help: 'ACME orders this replica started (each may fail before reaching the server)', labelNames: ['class'], registers })
    this.failures = new Counter({ name: 'skiff_ingress_acme_order_failures_total', help: 'Failed ACME orders by reason: unreachable (no answer, timeout, 5xx), rate_limited (429 or rateLimited), other', labelNames: ['class', 'reason'], registers })
    this.issued = new Counter({ name: 'skiff_ingress_acme_certificates_issued_total', help: 'Certificates issued by ACME and written to their Secret', labelNames: ['class'], registers })
    new Gauge({
      name: 'skiff_ingress_acme_next_attempt_timestamp_seconds', help: 'Failing certificates: when the next order may start (Unix time), with the reason of the last failure', labelNames: ['class', 'certificate', 'reason'], registers,
      collect() {
        this.reset()
        for (const s of sources) for (const c of s.failing()) this.set({ class: s.className, certificate: c.certificate, reason: c.reason ?? 'other' }, c.retryAt / 1000)
      },
    })
    new Gauge({
      name: 'skiff_ingress_acme_consecutive_failures', help: 'Failing certificates: failed orders in a row', labelNames: ['class', 'certificate'], registers,
      collect() {
        this.reset()
        for (const s of sources) for (const c of s.failing()) this.set({ class: s.className, certificate: c.certificate }, c.failures)
      },
    })
  }

  add(source: AcmeMetricsSource): void {
    this.#sources.add(source)
  }

  remove(source: AcmeMetricsSource): void {
    this.#sources.delete(source)
  }
}
