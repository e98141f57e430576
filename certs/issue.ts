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

/** Short stable hash of 'namespace/secret', for Lease names (which must stay under 253 characters and be DNS-safe). */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10)
}
