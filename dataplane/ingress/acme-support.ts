// Support for acme.ts: the one-shot per-certificate Leases replicas
// coordinate with, and the transport around acme-client (a directory probe,
// extra trust for private ACME servers, timeouts, readable errors).

import { Agent, request as httpsRequest } from 'node:https'
import { rootCertificates } from 'node:tls'
import acme from 'acme-client'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import type { Logger } from '../../lib/log.ts'
import { microTime, planLeaseWrite, recordOf, type LeaseRecord } from '../../controlplane/controllers/leader.ts'

const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
/** On the per-certificate Lease: the shared backoff (not skiff.dev/: those are validated user settings). */
export const leaseAnnotations = { failures: 'cert.skiff.dev/failures', retryAfter: 'cert.skiff.dev/retry-after' } as const

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
  async acquire(namespace: string, name: string): Promise<{ lease: KubeObject } | { heldBy: string } | { backoffUntil: number; failures: number }> {
    const { client, identity, leaseDurationMs } = this.#o
    let lease: KubeObject | undefined
    try {
      lease = await client.get(leasesInfo, namespace, name)
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e
    }
    const current: LeaseRecord | undefined = lease?.spec ? recordOf(lease) : undefined
    const now = Date.now()
    const backoffUntil = Date.parse(lease?.metadata.annotations?.[leaseAnnotations.retryAfter] ?? '')
    if (backoffUntil > now) return { backoffUntil, failures: Number(lease?.metadata.annotations?.[leaseAnnotations.failures] ?? 0) }
    const seenKey = current ? `${current.holderIdentity}|${current.renewTime}|${current.leaseTransitions}` : ''
    const k = `${namespace}/${name}`
    if (this.#seen.get(k)?.key !== seenKey) this.#seen.set(k, { key: seenKey, atMs: now })
    const spec = planLeaseWrite({ current, identity, leaseDurationMs, now, observedAtMs: this.#seen.get(k)!.atMs })
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
  async release(lease: KubeObject, log: Logger, failure?: { failures: number; retryAt: number }): Promise<void> {
    const now = microTime(Date.now())
    const { [leaseAnnotations.failures]: _f, [leaseAnnotations.retryAfter]: _r, ...others } = lease.metadata.annotations ?? {}
    const annotations = failure ? { ...others, [leaseAnnotations.failures]: String(failure.failures), [leaseAnnotations.retryAfter]: new Date(failure.retryAt).toISOString() } : others
    try {
      await this.#o.client.update(leasesInfo, { ...lease, metadata: { ...lease.metadata, annotations }, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now } })
    } catch (e) {
      log.warn({ err: errorText(e), lease: lease.metadata.name }, 'could not release the certificate lease; it expires by itself')
    }
  }
}

export function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e)
  // acme-client retries network errors (5, 10, ... 25 s) and then loses the cause in a TypeError.
  return /reading 'config'/.test(text) ? 'network error talking to the ACME server (after acme-client retries)' : text
}

/**
 * A quick GET of the directory before ordering: an unreachable CA fails in
 * seconds with its real cause, instead of after acme-client's 75 s of retries.
 */
export function probeDirectory(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: agent ?? undefined, timeout: 10_000 }, (res) => {
      res.resume()
      if (res.statusCode === 200) resolve()
      else reject(new Error(`ACME directory ${url} answered HTTP ${res.statusCode}`))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (e) => reject(new Error(`ACME directory ${url} unreachable: ${(e as NodeJS.ErrnoException).code ?? e.message}`)))
    req.end()
  })
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

// acme-client talks through one process-wide axios instance. Extra trust is
// added to it once, for every ACME request: it only adds roots (Node's own
// stay), so it cannot weaken another issuer's checks.
const bundles = new Set<string>()
let agent: Agent | undefined
let interceptor = false

export function trustForAcme(pem: string): void {
  if (bundles.has(pem)) return
  bundles.add(pem)
  agent = new Agent({ ca: [...rootCertificates, ...bundles], keepAlive: false })
  if (interceptor) return
  interceptor = true
  acme.axios.interceptors.request.use((cfg) => {
    cfg.httpsAgent ??= agent
    cfg.timeout ||= 30_000
    return cfg
  })
}

