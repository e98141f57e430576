// TLS for the HTTPS port: one server whose SNICallback picks a SecureContext
// by server name from the Ingresses' spec.tls entries. SecureContexts are
// cached by the Secret's content, so a snapshot that leaves a Secret unchanged
// does not parse it again. Unknown or missing SNI gets the class default
// certificate (snapshot.defaultCertificate), else a self-signed fallback made
// once at worker start.

import { createHash } from 'node:crypto'
import { createSecureContext, type SecureContext } from 'node:tls'
import https from 'node:https'
import { selfSignedCert } from '../../certs/ca.ts'
import type { Logger } from '../../lib/log.ts'
import type { RuntimeState } from './state.ts'

export const fallbackCommonName = 'Skiff Ingress Default Certificate'

export interface KeyPair { cert: string; key: string }

/** Made once per worker: the answer when nothing better is configured. */
export function fallbackCertificate(): KeyPair {
  const c = selfSignedCert({ commonName: fallbackCommonName, dnsNames: ['ingress-default.skiff.invalid'] })
  return { cert: c.certPem, key: c.keyPem }
}

export class CertStore {
  private readonly logger: Logger
  private readonly fallback: KeyPair
  /** By sha256(cert + key): kept across snapshots while a Secret is in use. */
  private contexts = new Map<string, SecureContext>()
  private exact = new Map<string, SecureContext>()
  private wildcard = new Map<string, SecureContext>()
  private defaultPair: KeyPair
  private defaultContext: SecureContext
  private readonly loggedErrors = new Set<string>()

  constructor(opts: { logger: Logger; fallback: KeyPair }) {
    this.logger = opts.logger
    this.fallback = opts.fallback
    this.defaultPair = opts.fallback
    this.defaultContext = createSecureContext(opts.fallback)
  }

  /** Rebuilds the host maps from a new state; returns true when the default certificate changed. */
  update(state: RuntimeState): boolean {
    const nextContexts = new Map<string, SecureContext>()
    const exact = new Map<string, SecureContext>()
    const wildcard = new Map<string, SecureContext>()
    // Gateway HTTPS listeners after the Ingresses: an Ingress's spec.tls keeps a host both name.
    const entries = [...[...state.ingresses.values()].flatMap((ing) => ing.tls), ...(state.gateway?.tls ?? [])]
    for (const entry of entries) {
      const ctx = this.contextForSecret(state, entry.secret, nextContexts)
      if (!ctx) continue
      for (const h of entry.hosts) {
        const map = h.startsWith('*.') ? wildcard : exact
        const k = h.startsWith('*.') ? h.slice(2) : h
        if (!map.has(k)) map.set(k, ctx)
      }
    }
    const pair = state.defaultCertificate ?? this.fallback
    const changed = pair.cert !== this.defaultPair.cert || pair.key !== this.defaultPair.key
    if (changed) {
      this.defaultPair = pair
      this.defaultContext = this.cached(pair, nextContexts) ?? createSecureContext(this.fallback)
    }
    this.contexts = nextContexts
    this.exact = exact
    this.wildcard = wildcard
    return changed
  }

  get defaultKeyPair(): KeyPair {
    return this.defaultPair
  }

  private contextForSecret(state: RuntimeState, secret: string, next: Map<string, SecureContext>): SecureContext | undefined {
    const info = state.certificates[secret]
    if (!info) return this.logOnce(secret, 'certificate Secret missing from the snapshot')
    if ('error' in info) return this.logOnce(secret, info.error)
    return this.cached(info, next) ?? this.logOnce(secret, 'certificate or key does not parse')
  }

  private cached(pair: KeyPair, next: Map<string, SecureContext>): SecureContext | undefined {
    const hash = createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex')
    let ctx = next.get(hash) ?? this.contexts.get(hash)
    if (!ctx) {
      try {
        ctx = createSecureContext({ cert: pair.cert, key: pair.key })
      } catch {
        return undefined
      }
    }
    next.set(hash, ctx)
    return ctx
  }

  private logOnce(secret: string, error: string): undefined {
    const k = `${secret}\0${error}`
    if (!this.loggedErrors.has(k)) {
      this.loggedErrors.add(k)
      this.logger.warn({ secret, error }, 'ingress TLS certificate unusable; its hosts get the default certificate')
    }
    return undefined
  }

  /** Exact host, else a `*.suffix` entry (one label), else the default. */
  contextFor(servername: string | undefined): SecureContext {
    if (!servername) return this.defaultContext
    const name = servername.toLowerCase().replace(/\.$/, '')
    const hit = this.exact.get(name)
    if (hit) return hit
    const dot = name.indexOf('.')
    return (dot > 0 && this.wildcard.get(name.slice(dot + 1))) || this.defaultContext
  }
}

export interface TlsServerOptions {
  store: CertStore
  server: Pick<https.ServerOptions, 'maxHeaderSize' | 'insecureHTTPParser' | 'requireHostHeader' | 'requestTimeout' | 'headersTimeout'>
}

export function createTlsServer(opts: TlsServerOptions): https.Server {
  const pair = opts.store.defaultKeyPair
  return https.createServer({
    ...opts.server,
    cert: pair.cert,
    key: pair.key,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    SNICallback: (name, cb) => cb(null, opts.store.contextFor(name)),
  })
}
