// Pure helpers shared by the certificate issuers (the cluster-CA controller in
// controlplane/controllers/ingress-certs.ts and the ACME issuer in
// dataplane/ingress/acme.ts): which certificates the Ingresses of a class
// need, whether a Secret already satisfies one, when to renew, and the Secret
// to write. No I/O; node:crypto only parses.

import { createHash, X509Certificate } from 'node:crypto'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ingressInClass, type CompileOptions } from '../dataplane/ingress/routes.ts'

/**
 * Markers on Secrets an issuer manages. Deliberately not under `skiff.dev/`:
 * those are user settings the apiserver validates (unknown keys rejected).
 * A Secret without `issuer` is the user's and is never overwritten.
 */
export const certAnnotations = {
  issuer: 'cert.skiff.dev/issuer',
  hosts: 'cert.skiff.dev/hosts',
  notBefore: 'cert.skiff.dev/not-before',
  notAfter: 'cert.skiff.dev/not-after',
} as const

export type IssuerName = 'cluster-ca' | 'acme'

export interface CertInfo {
  notBefore: number
  notAfter: number
  /** DNS SANs, lower-cased. */
  dnsNames: string[]
  serialNumber: string
}

/** One certificate the Ingresses of a class need: a Secret and the union of the hosts naming it. */
export interface CertTarget {
  namespace: string
  secretName: string
  /** Sorted, lower-cased, unique. */
  hosts: string[]
  /** The Ingresses naming this Secret ('namespace/name'), for Events. */
  ingresses: KubeObject[]
}

/** The PEM blocks of a chain, in order. */
export function splitPemChain(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

/** "DNS:a.example, DNS:*.b.example, IP Address:1.2.3.4" → the DNS names. */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase())
}

/** Dates and names of the first (leaf) certificate of a PEM chain; undefined when it does not parse. */
export function parseCert(pem: string): CertInfo | undefined {
  const first = splitPemChain(pem)[0]
  if (!first) return undefined
  try {
    const x = new X509Certificate(first)
    return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), dnsNames: dnsNamesOf(x.subjectAltName), serialNumber: x.serialNumber }
  } catch {
    return undefined
  }
}

/** Renewal starts when a third of the lifetime remains (as cert-manager and Let's Encrypt advise). */
export function renewalWindow(notBefore: number, notAfter: number): { renewAt: number } {
  return { renewAt: notAfter - (notAfter - notBefore) / 3 }
}

/** Does a SAN cover a host? `*.x` covers exactly one label; a wildcard host needs the same wildcard SAN. */
export function sanCovers(san: string, host: string): boolean {
  const s = san.toLowerCase()
  const h = host.toLowerCase()
  if (s === h) return true
  if (!s.startsWith('*.') || h.startsWith('*.')) return false
  const dot = h.indexOf('.')
  return dot > 0 && h.slice(dot + 1) === s.slice(2)
}

export function coversHosts(dnsNames: string[], hosts: string[]): boolean {
  return hosts.every((h) => dnsNames.some((san) => sanCovers(san, h)))
}

export function normalizeHosts(hosts: unknown[]): string[] {
  return [...new Set(hosts.filter((h): h is string => typeof h === 'string' && h !== '').map((h) => h.toLowerCase()))].sort()
}

/**
 * The certificates the class's Ingresses need: every spec.tls entry with a
 * secretName and hosts. Several entries (or Ingresses) naming one Secret get
 * one certificate covering the union of their hosts.
 */
export function buildCertTargets(ingresses: KubeObject[], cls: CompileOptions): CertTarget[] {
  const byKey = new Map<string, CertTarget>()
  for (const ing of ingresses) {
    if (!ingressInClass(ing, cls) || ing.metadata.deletionTimestamp) continue
    for (const tls of ing.spec?.tls ?? []) {
      const hosts = normalizeHosts(Array.isArray(tls?.hosts) ? tls.hosts : [])
      if (typeof tls?.secretName !== 'string' || !tls.secretName || hosts.length === 0) continue
      const namespace = ing.metadata.namespace ?? 'default'
      const key = `${namespace}/${tls.secretName}`
      const t: CertTarget = byKey.get(key) ?? { namespace, secretName: tls.secretName, hosts: [], ingresses: [] }
      t.hosts = normalizeHosts([...t.hosts, ...hosts])
      if (!t.ingresses.includes(ing)) t.ingresses.push(ing)
      byKey.set(key, t)
    }
  }
  return [...byKey.values()].sort((a, b) => (`${a.namespace}/${a.secretName}` < `${b.namespace}/${b.secretName}` ? -1 : 1))
}

export type CertPlan =
  | { action: 'ok'; renewAt: number }
  | { action: 'issue'; reason: 'missing' | 'unreadable' | 'hosts-changed' | 'not-covered' | 'renewal' | 'issuer-changed' }
  /** A Secret the user made (no marker): never overwritten. */
  | { action: 'foreign'; covered: boolean }

export function certFromSecret(secret: KubeObject): string | undefined {
  const b64 = secret.data?.['tls.crt']
  return typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : undefined
}

/** What to do about one target given its Secret as it is (undefined: absent). */
export function planCertificate(opts: { secret: KubeObject | undefined; hosts: string[]; issuer: IssuerName; now: number }): CertPlan {
  const { secret, hosts, issuer, now } = opts
  if (!secret) return { action: 'issue', reason: 'missing' }
  const marker = secret.metadata?.annotations?.[certAnnotations.issuer]
  const pem = certFromSecret(secret)
  const info = pem ? parseCert(pem) : undefined
  if (marker === undefined) return { action: 'foreign', covered: !!info && coversHosts(info.dnsNames, hosts) && now < info.notAfter }
  if (marker !== issuer) return { action: 'issue', reason: 'issuer-changed' }
  if (!info || typeof secret.data?.['tls.key'] !== 'string') return { action: 'issue', reason: 'unreadable' }
  if (secret.metadata?.annotations?.[certAnnotations.hosts] !== hosts.join(',')) return { action: 'issue', reason: 'hosts-changed' }
  if (!coversHosts(info.dnsNames, hosts)) return { action: 'issue', reason: 'not-covered' }
  const { renewAt } = renewalWindow(info.notBefore, info.notAfter)
  return now >= renewAt ? { action: 'issue', reason: 'renewal' } : { action: 'ok', renewAt }
}

/**
 * The whole Secret to write (one write: a replica never sees a new key with
 * an old certificate). `existing` keeps its resourceVersion for the CAS and
 * its other labels and annotations.
 */
export function buildTlsSecret(opts: { namespace: string; name: string; certPem: string; keyPem: string; issuer: IssuerName; hosts: string[]; existing?: KubeObject; extraData?: Record<string, string> }): KubeObject {
  const info = parseCert(opts.certPem)
  if (!info) throw new Error('buildTlsSecret: the certificate does not parse')
  const meta = opts.existing?.metadata ?? {}
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...meta,
      name: opts.name,
      namespace: opts.namespace,
      annotations: {
        ...meta.annotations,
        [certAnnotations.issuer]: opts.issuer,
        [certAnnotations.hosts]: opts.hosts.join(','),
        [certAnnotations.notBefore]: new Date(info.notBefore).toISOString(),
        [certAnnotations.notAfter]: new Date(info.notAfter).toISOString(),
      },
    },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': Buffer.from(opts.certPem).toString('base64'),
      'tls.key': Buffer.from(opts.keyPem).toString('base64'),
      ...Object.fromEntries(Object.entries(opts.extraData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    },
  }
}

/** Exponential backoff per certificate: base × 2^(failures-1), capped. */
export function backoffMs(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return 0
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30))
}

/**
 * Why an ACME order failed, as far as the retry cares (also the metric label):
 * the server could not be reached or answered 5xx; it said "rate limited"
 * (HTTP 429 or problem type rateLimited, RFC 8555 6.6); anything else
 * (validation failed, the order was refused, the Secret could not be written).
 */
export type AcmeFailureKind = 'unreachable' | 'rate_limited' | 'other'

/**
 * The longest Retry-After honoured (7 days, Let's Encrypt's longest limit
 * window): a bad header must not stop renewals for good.
 */
export const maxRetryAfterMs = 7 * 24 * 3_600_000

/**
 * When to order again after a failure, in ms from now (`why` for Events):
 *  - always the backoff, base × 2^(n-1) capped at maxMs: during an outage
 *    the attempts ramp down to one per maxMs;
 *  - rate limited: at once no sooner than maxMs (the promise: at most one
 *    order per host per maxMs once the server refuses), nor than Retry-After;
 *  - a Retry-After of any answer (a 503 may carry one) is never undercut;
 *    past maxRetryAfterMs it counts as that.
 */
export function planAcmeRetry(o: { failures: number; kind: AcmeFailureKind; retryAfterMs?: number; baseMs: number; maxMs: number }): { delayMs: number; why: 'backoff' | 'rate-limit interval' | 'Retry-After' } {
  let plan: { delayMs: number; why: 'backoff' | 'rate-limit interval' | 'Retry-After' } = { delayMs: backoffMs(Math.max(1, o.failures), o.baseMs, o.maxMs), why: 'backoff' }
  if (o.kind === 'rate_limited') plan = { delayMs: o.maxMs, why: 'rate-limit interval' } // the backoff is never above maxMs
  const retryAfter = Math.min(o.retryAfterMs ?? 0, maxRetryAfterMs)
  if (retryAfter > plan.delayMs) plan = { delayMs: retryAfter, why: 'Retry-After' }
  return plan
}

const failureWords: Record<AcmeFailureKind, string> = { unreachable: 'ACME server unreachable', rate_limited: 'rate limited by the ACME server', other: 'ACME order failed' }

/** The AcmeFailed Event: why, when the next attempt is and why then, and what is served meanwhile. */
export function acmeFailureMessage(o: { hosts: string[]; reason: AcmeFailureKind; text: string; failures: number; retryAt: number; delayMs: number; why: string; secret?: KubeObject }): string {
  const pem = o.secret && certFromSecret(o.secret)
  const current = pem ? parseCert(pem) : undefined
  const kept = current ? `; the current certificate (valid until ${new Date(current.notAfter).toISOString()}) stays served` : ''
  const next = `next attempt at ${new Date(o.retryAt).toISOString()} (in ${Math.round(o.delayMs / 1000)} s, ${o.why}, ${o.failures} failed in a row)`
  return `Certificate for ${o.hosts.join(', ')} not issued: ${failureWords[o.reason]}: ${o.text}; ${next}${kept}`
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const mon = `(${months.join('|')})`
const hms = '(\\d{2}):(\\d{2}):(\\d{2})'
const imfFixdate = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${mon} (\\d{4}) ${hms} GMT$`)
const rfc850Date = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${mon}-(\\d{2}) ${hms} GMT$`)
const asctimeDate = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${mon} ([ \\d]\\d) ${hms} (\\d{4})$`)

/** An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept) in ms; undefined if it is none. */
export function parseHttpDate(text: string, now: number): number | undefined {
  let m: RegExpExecArray | null
  let f: { day: string; month: string; year: number; h: string; mi: string; s: string } | undefined
  if ((m = imfFixdate.exec(text))) f = { day: m[1]!, month: m[2]!, year: Number(m[3]), h: m[4]!, mi: m[5]!, s: m[6]! }
  else if ((m = rfc850Date.exec(text))) {
    // A two-digit year more than 50 years ahead is the latest past year with those digits.
    const thisYear = new Date(now).getUTCFullYear()
    let year = thisYear - (thisYear % 100) + Number(m[3])
    if (year > thisYear + 50) year -= 100
    f = { day: m[1]!, month: m[2]!, year, h: m[4]!, mi: m[5]!, s: m[6]! }
  } else if ((m = asctimeDate.exec(text))) f = { month: m[1]!, day: m[2]!.trim(), h: m[3]!, mi: m[4]!, s: m[5]!, year: Number(m[6]) }
  if (!f) return undefined
  const [day, month, h, mi, s] = [Number(f.day), months.indexOf(f.month), Number(f.h), Number(f.mi), Number(f.s)]
  if (h > 23 || mi > 59 || s > 60) return undefined
  const ms = Date.UTC(f.year, month, day, h, mi, Math.min(s, 59))
  return new Date(ms).getUTCDate() === day ? ms : undefined // no 31 Feb
}

/**
 * Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, as ms from
 * `now` (a date in the past is 0); undefined when absent or malformed, so
 * the caller's own backoff applies.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  const text = value?.trim()
  if (!text) return undefined
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER)
  const at = parseHttpDate(text, now)
  return at === undefined ? undefined : Math.max(0, at - now)
}

/** Short stable hash of 'namespace/secret', for Lease names (which must stay under 253 characters and be DNS-safe). */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10)
}
