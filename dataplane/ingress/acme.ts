// ACME certificates (HTTP-01, acme-client) for the TLS hosts of an ingress
// class whose IngressClass says `skiff.dev/issuer: acme` and names a
// `skiff.dev/acme-directory`. Every supervisor of the class (one per ingress
// node) runs one AcmeIssuer; they cooperate through the API only:
//
//  - per certificate (namespace + secretName): a Lease
//    `ingress-<class>-acme-<hash>` in the Ingress namespace; only its holder
//    orders, and it reads the Secret again after acquiring it, so a replica
//    that got the Lease after another finished does nothing;
//  - the account key: Secret kube-system/skiff-ingress-<class>-acme-account
//    (created once; a 409 means another replica made it: reuse theirs);
//  - challenge tokens: ConfigMap kube-system/skiff-ingress-<class>-acme-challenges
//    (token → key authorization), which every supervisor hands to its workers,
//    so whichever node the CA connects to answers;
//  - the result: one write of the whole kubernetes.io/tls Secret (leaf+chain,
//    key, `cert.skiff.dev/*` markers), which every replica picks up.
//
// A failure keeps the old Secret (the workers go on serving it), records a
// Warning `AcmeFailed` on the Ingresses naming it (why: unreachable, rate
// limited or other, and when the next attempt is), counts it in the metrics,
// and backs off per certificate (planAcmeRetry in certs/issue.ts): base ×
// 2^n up to backoffMaxMs, and after a rate limit at once backoffMaxMs or the
// server's Retry-After, whichever is later, for every host of the
// certificate. acme-client never retries on its own (acme-support.ts).
// Lease times use the wall clock; `now` (injectable for tests) only decides
// certificate validity and renewal.
//
// Seam for the supervisor: construct once per class, `start()`, call
// `sync(ingressesOfClass, ingressClass)` whenever either changes (cheap; it
// only records and kicks a pass), `stop()` on shutdown.

import acme from 'acme-client'
import { acmeFailureMessage, buildCertTargets, buildTlsSecret, planAcmeRetry, planCertificate, shortHash, type AcmeFailureKind, type CertTarget } from '../../certs/issue.ts'
import { isDefaultIngressClass } from './routes.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { readSkiffAnnotation } from '../../controlplane/api/validation/skiff.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import type { EventRecorder } from '../../controlplane/controllers/types.ts'
import type { Logger } from '../../lib/log.ts'
import type { Registry } from '../../lib/metrics.ts'
import { AcmeLeases, AcmeMetrics, AcmeServerError, acmeExchange, delay, errorText, probeDirectory, setUpAcmeTransport, sharedFailure, type AcmeMetricsSource, type SharedFailure } from './acme-support.ts'

const secretsInfo = lookupResource('', 'v1', 'secrets')!
const configMapsInfo = lookupResource('', 'v1', 'configmaps')!

export interface AcmeIssuerOptions {
  /** The class identity (skiff:ingress:<class>). */
  client: ApiClient
  className: string
  logger: Logger
  events?: EventRecorder
  /** Clock for certificate validity and renewal (tests move it); default Date.now. */
  now?: () => number
  /** Extra trust (PEM) for the ACME directory's own TLS, e.g. Pebble's or a private CA; added to Node's roots. */
  caBundlePem?: string
  /** This replica's name in Leases (the node name). */
  identity: string
  /** How often every certificate is re-checked for renewal (default 10 min). */
  renewCheckMs?: number
  /** Backoff after a failed order: base × 2^(n-1), capped (default 30 s). */
  backoffBaseMs?: number
  /**
   * The cap of that backoff, and the promise once orders fail (default 1 h):
   * at most one order per host per backoffMaxMs after a rate limit (or
   * later, per Retry-After), ramping to it during an outage.
   */
  backoffMaxMs?: number
  /** Where the ACME metrics go (the supervisor's registry, served on /metrics); none: not exported. */
  metrics?: Registry
  /** Lease duration (default 5 min); an order is abandoned after 80 % of it. */
  leaseDurationMs?: number
  /** When another replica holds the Lease: look again after this (default 30 s). */
  leaseRetryMs?: number
  /**
   * After the tokens are in the ConfigMap, before the CA is told to validate:
   * resolves when this replica serves them. Default: wait challengeDelayMs.
   */
  waitForChallenges?: (tokens: string[]) => Promise<void>
  /** Called with every token this issuer has in flight whenever that set changes, so this node serves them before the ConfigMap watch brings them back. */
  onChallenges?: (tokens: Record<string, string>) => void
  /** Used when waitForChallenges is not given (default 2000 ms: every supervisor's watch carries the ConfigMap to its workers). */
  challengeDelayMs?: number
}

interface ClassConfig {
  directoryUrl: string
  email?: string
}

interface CertState {
  failures: number
  /** Wall clock (Date.now): no attempt before this. Shared through the Lease, so every replica backs off. */
  retryAt: number
  reason?: AcmeFailureKind
  lastError?: string
}

export class AcmeIssuer {
  readonly stats = { passes: 0, orders: 0, issued: 0, failures: 0 }
  #o: AcmeIssuerOptions
  #log: Logger
  #config?: ClassConfig
  #targets: CertTarget[] = []
  #state = new Map<string, CertState>()
  #busy = new Map<string, Promise<void>>()
  #leases: AcmeLeases
  #accountKey?: string
  #timer?: NodeJS.Timeout
  #stopped = true
  #warned = new Map<string, string>()
  #inFlight = new Map<string, string>()
  /** Per host: no order for any certificate naming it before this (wall clock), so two Secrets for one host share the limit. */
  #hostRetryAt = new Map<string, number>()
  /** Per certificate: the last AcmeFailed Event (ApiEventRecorder does not aggregate repeats: every call is a new Event). */
  #lastEvent = new Map<string, { reason: AcmeFailureKind; at: number }>()
  #metrics?: AcmeMetrics
  #metricsSource: AcmeMetricsSource

  constructor(opts: AcmeIssuerOptions) {
    this.#o = opts
    this.#log = opts.logger.child({ component: 'acme', class: opts.className })
    this.#leases = new AcmeLeases({ client: opts.client, identity: opts.identity, leaseDurationMs: opts.leaseDurationMs ?? 300_000 })
    setUpAcmeTransport(opts.caBundlePem)
    this.#metrics = opts.metrics && AcmeMetrics.of(opts.metrics)
    this.#metricsSource = {
      className: opts.className,
      failing: () => [...this.#state].filter(([, st]) => st.failures > 0).map(([certificate, st]) => ({ certificate, ...st })),
    }
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#metrics?.add(this.#metricsSource)
    this.#schedule(0)
  }

  /** Stops the timer and waits for running orders (each bounded by the order timeout); their Leases are released. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await Promise.allSettled([...this.#busy.values()])
    this.#metrics?.remove(this.#metricsSource)
  }

  /**
   * The class's Ingresses (already filtered by the supervisor, or not: the
   * class rule is applied again) and its IngressClass, whenever either changes.
   */
  sync(ingresses: KubeObject[], ingressClass: KubeObject): void {
    const directoryUrl = readSkiffAnnotation(ingressClass, 'skiff.dev/acme-directory')
    const active = readSkiffAnnotation(ingressClass, 'skiff.dev/issuer') === 'acme' && directoryUrl !== undefined
    this.#config = active ? { directoryUrl, email: readSkiffAnnotation(ingressClass, 'skiff.dev/acme-email') } : undefined
    this.#targets = active ? buildCertTargets(ingresses, { className: this.#o.className, isDefaultClass: isDefaultIngressClass(ingressClass) }) : []
    const keys = new Set(this.#targets.map(keyOf))
    for (const m of [this.#state, this.#lastEvent]) for (const k of m.keys()) if (!keys.has(k)) m.delete(k)
    if (!this.#stopped) this.#schedule(0)
  }

  /** Certificates being checked or ordered right now. */
  get busy(): number {
    return this.#busy.size
  }

  /** Backoff state of one certificate (for tests and `skiff` diagnostics). */
  certState(namespace: string, secretName: string): Readonly<CertState> | undefined {
    return this.#state.get(`${namespace}/${secretName}`)
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now()
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#pass(), Math.max(0, delayMs))
    this.#timer.unref()
  }

  /** Starts work for every certificate not busy and not backing off (itself or any of its hosts); then sleeps until the next check or retry. */
  #pass(): void {
    if (this.#stopped) return
    this.stats.passes++
    const now = Date.now()
    const config = this.#config
    let next = this.#o.renewCheckMs ?? 600_000
    for (const [host, at] of this.#hostRetryAt) if (at <= now) this.#hostRetryAt.delete(host)
    for (const t of config ? this.#targets : []) {
      const key = keyOf(t)
      const retryAt = Math.max(this.#state.get(key)?.retryAt ?? 0, ...t.hosts.map((h) => this.#hostRetryAt.get(h) ?? 0))
      if (retryAt > now) {
        next = Math.min(next, retryAt - now)
        continue
      }
      if (this.#busy.has(key)) continue
      const run = this.#ensure(t, config!).finally(() => {
        this.#busy.delete(key)
        // A retry set while this ran must wake the loop at its time.
        const after = this.#state.get(key)
        if (after && !this.#stopped) this.#schedule(Math.min(next, after.retryAt - Date.now()))
      })
      this.#busy.set(key, run)
    }
    this.#schedule(next)
  }

  async #getSecret(t: CertTarget): Promise<KubeObject | undefined> {
    try {
      return await this.#o.client.get(secretsInfo, t.namespace, t.secretName)
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return undefined
      throw e
    }
  }

  /** One certificate: check, and order under its Lease when needed. Never throws. */
  async #ensure(t: CertTarget, config: ClassConfig): Promise<void> {
    const key = keyOf(t)
    const log = this.#log.child({ secret: key, hosts: t.hosts })
    const leaseName = `ingress-${this.#o.className}-acme-${shortHash(key)}`
    let lease: KubeObject | undefined
    let secret: KubeObject | undefined
    let outcome: SharedFailure | undefined
    try {
      const first = planCertificate({ secret: await this.#getSecret(t), hosts: t.hosts, issuer: 'acme', now: this.#now() })
      if (first.action !== 'issue') return this.#settled(t, first.action === 'foreign' && !first.covered)
      const got = await this.#leases.acquire(t.namespace, leaseName)
      if (!('lease' in got)) {
        if ('backoff' in got) this.#backOff(t, got.backoff)
        else this.#state.set(key, { ...this.#state.get(key), failures: this.#state.get(key)?.failures ?? 0, retryAt: Date.now() + (this.#o.leaseRetryMs ?? 30_000) })
        log.debug({ lease: leaseName, ...got }, 'not ordering: another replica holds the certificate lease, or the certificate is backing off')
        return
      }
      lease = got.lease
      // Failures of other replicas count too: the backoff is the certificate's, not this node's.
      const shared = sharedFailure(lease)
      if (shared && shared.failures > (this.#state.get(key)?.failures ?? 0)) this.#state.set(key, { ...shared, retryAt: 0 })
      // Double check under the Lease: the previous holder may just have written it.
      secret = await this.#getSecret(t)
      const plan = planCertificate({ secret, hosts: t.hosts, issuer: 'acme', now: this.#now() })
      if (plan.action !== 'issue') return this.#settled(t, plan.action === 'foreign' && !plan.covered)
      log.info({ reason: plan.reason, directory: config.directoryUrl }, 'ordering certificate')
      this.stats.orders++
      this.#metrics?.orders.inc({ class: this.#o.className })
      const issued = await acmeExchange(() => this.#order(t, config), Math.floor((this.#o.leaseDurationMs ?? 300_000) * 0.8))
      const body = buildTlsSecret({ namespace: t.namespace, name: t.secretName, ...issued, issuer: 'acme', hosts: t.hosts, existing: secret })
      if (secret) await this.#o.client.update(secretsInfo, body)
      else await this.#o.client.create(secretsInfo, t.namespace, body)
      this.stats.issued++
      this.#metrics?.issued.inc({ class: this.#o.className })
      const failedBefore = this.#state.get(key)?.failures ?? 0
      this.#state.delete(key)
      this.#lastEvent.delete(key)
      for (const h of t.hosts) this.#hostRetryAt.delete(h)
      log.info({ reason: plan.reason, failedBefore }, 'certificate issued')
      const after = failedBefore > 0 ? `, after ${failedBefore} failed attempt${failedBefore > 1 ? 's' : ''}` : ''
      for (const ing of t.ingresses) this.#o.events?.event(ing, 'Normal', 'Issued', `Certificate for ${t.hosts.join(', ')} issued by ACME into Secret ${t.secretName} (${plan.reason}${after})`)
    } catch (e) {
      outcome = this.#failed(t, e, log, secret)
    } finally {
      if (lease) await this.#leases.release(lease, log, outcome)
    }
  }

  #settled(t: CertTarget, foreignUncovered: boolean): void {
    const key = keyOf(t)
    this.#state.delete(key)
    this.#lastEvent.delete(key)
    if (!foreignUncovered) return void this.#warned.delete(key)
    const message = `Secret ${key} was not made by Skiff and does not cover ${t.hosts.join(', ')} (or has expired); ACME leaves it alone`
    if (this.#warned.get(key) === message) return
    this.#warned.set(key, message)
    this.#log.warn({ secret: key }, message)
    for (const ing of t.ingresses) this.#o.events?.event(ing, 'Warning', 'CertificateNotCovered', message)
  }

  /** A failure here, or one another replica (or this one before a restart) recorded on the Lease: the certificate and its hosts wait. */
  #backOff(t: CertTarget, failure: CertState): void {
    this.#state.set(keyOf(t), { ...this.#state.get(keyOf(t)), ...failure })
    for (const h of t.hosts) this.#hostRetryAt.set(h, Math.max(this.#hostRetryAt.get(h) ?? 0, failure.retryAt))
  }

  #failed(t: CertTarget, e: unknown, log: Logger, secret: KubeObject | undefined): SharedFailure {
    const key = keyOf(t)
    const failures = (this.#state.get(key)?.failures ?? 0) + 1
    const reason: AcmeFailureKind = e instanceof AcmeServerError ? e.kind : 'other'
    const retryAfterMs = e instanceof AcmeServerError ? e.retryAfterMs : undefined
    const maxMs = this.#o.backoffMaxMs ?? 3_600_000
    const plan = planAcmeRetry({ failures, kind: reason, retryAfterMs, baseMs: this.#o.backoffBaseMs ?? 30_000, maxMs })
    const text = errorText(e)
    const outcome = { failures, retryAt: Date.now() + plan.delayMs, reason }
    this.#backOff(t, { ...outcome, lastError: text })
    this.stats.failures++
    this.#metrics?.failures.inc({ class: this.#o.className, reason })
    log.warn({ err: text, code: e instanceof AcmeServerError ? e.code : undefined, reason, failures, retryInMs: plan.delayMs, why: plan.why }, 'ACME order failed; keeping the old certificate')
    // One Event per failure would be spam during an outage's ramp: again only when the reason changes or after backoffMaxMs.
    const last = this.#lastEvent.get(key)
    if (last && last.reason === reason && Date.now() - last.at < maxMs) return outcome
    this.#lastEvent.set(key, { reason, at: Date.now() })
    const message = acmeFailureMessage({ hosts: t.hosts, reason, text, failures, retryAt: outcome.retryAt, delayMs: plan.delayMs, why: plan.why, secret })
    for (const ing of t.ingresses) this.#o.events?.event(ing, 'Warning', 'AcmeFailed', message)
    return outcome
  }

  /** The whole ACME exchange for one certificate; the challenge tokens are removed again in every case. */
  async #order(t: CertTarget, config: ClassConfig): Promise<{ certPem: string; keyPem: string }> {
    const wildcard = t.hosts.find((h) => h.startsWith('*.'))
    if (wildcard) throw new Error(`${wildcard}: wildcard names need DNS-01, and only HTTP-01 is supported`)
    await probeDirectory(config.directoryUrl)
    // backoffAttempts: status polls only (a rate limit stops them: acmeExchange); requests themselves are never retried.
    const client = new acme.Client({ directoryUrl: config.directoryUrl, accountKey: await this.#account(), backoffAttempts: 10, backoffMin: 200, backoffMax: 5000 })
    await client.createAccount({ termsOfServiceAgreed: true, ...(config.email ? { contact: [`mailto:${config.email}`] } : {}) })
    const order = await client.createOrder({ identifiers: t.hosts.map((value) => ({ type: 'dns', value })) })
    const pending: Array<{ challenge: any; keyAuthorization: string }> = []
    for (const authz of await client.getAuthorizations(order)) {
      if (authz.status === 'valid') continue
      const challenge = authz.challenges.find((c) => c.type === 'http-01')
      if (!challenge) throw new Error(`${authz.identifier.value}: the CA offers no http-01 challenge`)
      pending.push({ challenge, keyAuthorization: await client.getChallengeKeyAuthorization(challenge) })
    }
    const tokens = Object.fromEntries(pending.map((p) => [p.challenge.token as string, p.keyAuthorization]))
    await this.#editChallenges((data) => ({ ...data, ...tokens }))
    this.#announce(tokens, true)
    try {
      await (this.#o.waitForChallenges ? this.#o.waitForChallenges(Object.keys(tokens)) : delay(this.#o.challengeDelayMs ?? 2000))
      for (const p of pending) await client.completeChallenge(p.challenge)
      for (const p of pending) await client.waitForValidStatus(p.challenge)
      const [key, csr] = await acme.crypto.createCsr({ commonName: t.hosts.find((h) => h.length <= 64), altNames: t.hosts })
      const finalized = await client.finalizeOrder(order, csr)
      const chain = await client.getCertificate(finalized)
      return { certPem: chain, keyPem: key.toString() }
    } finally {
      this.#announce(tokens, false)
      await this.#editChallenges((data) => Object.fromEntries(Object.entries(data).filter(([k]) => !(k in tokens)))).catch((e) => this.#log.warn({ err: errorText(e) }, 'could not remove challenge tokens'))
    }
  }

  #announce(tokens: Record<string, string>, add: boolean): void {
    for (const [k, v] of Object.entries(tokens)) add ? this.#inFlight.set(k, v) : this.#inFlight.delete(k)
    this.#o.onChallenges?.(Object.fromEntries(this.#inFlight))
  }

  /** The class's ACME account key: made by the first replica that needs it, reused by all. */
  async #account(): Promise<string> {
    if (this.#accountKey) return this.#accountKey
    const name = `skiff-ingress-${this.#o.className}-acme-account`
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const s = await this.#o.client.get(secretsInfo, 'kube-system', name)
        return (this.#accountKey = Buffer.from(s.data?.['account.key'] ?? '', 'base64').toString('utf8'))
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      }
      const key = (await acme.crypto.createPrivateKey()).toString()
      try {
        await this.#o.client.create(secretsInfo, 'kube-system', { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'kube-system' }, type: 'Opaque', data: { 'account.key': Buffer.from(key).toString('base64') } })
        return (this.#accountKey = key)
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 409)) throw e // another replica made it first: read theirs
      }
    }
    throw new Error(`could not create or read Secret kube-system/${name}`)
  }

  /** Read-modify-write of the challenges ConfigMap, retried on conflicts. */
  async #editChallenges(edit: (data: Record<string, string>) => Record<string, string>): Promise<void> {
    const name = `skiff-ingress-${this.#o.className}-acme-challenges`
    for (let attempt = 0; attempt < 8; attempt++) {
      let cm: KubeObject | undefined
      try {
        cm = await this.#o.client.get(configMapsInfo, 'kube-system', name)
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      }
      const data = edit({ ...(cm?.data ?? {}) })
      try {
        if (cm) await this.#o.client.update(configMapsInfo, { ...cm, data })
        else await this.#o.client.create(configMapsInfo, 'kube-system', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'kube-system' }, data })
        return
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 409)) throw e
      }
    }
    throw new Error(`ConfigMap kube-system/${name} kept changing; challenge tokens not written`)
  }
}

function keyOf(t: CertTarget): string {
  return `${t.namespace}/${t.secretName}`
}

/**
 * The AcmeIssuer as the ingress supervisor's `acme` hook (IngressAcmeHook in
 * supervisor.ts, matched structurally): built at start from the supervisor's
 * context, fed on every new snapshot, tokens served locally at once.
 */
export function acmeSupervisorHook(opts: Omit<AcmeIssuerOptions, 'client' | 'className' | 'logger' | 'identity' | 'onChallenges'> = {}) {
  let issuer: AcmeIssuer | undefined
  return {
    start(ctx: { client: ApiClient; className: string; nodeName: string; logger: Logger; metrics?: Registry; ingresses(): KubeObject[]; ingressClass(): KubeObject | undefined; onChange(fn: () => void): void; setChallenges(c: Record<string, string>): void }) {
      const metrics = opts.metrics ?? ctx.metrics
      issuer = new AcmeIssuer({ ...opts, ...(metrics ? { metrics } : {}), client: ctx.client, className: ctx.className, logger: ctx.logger, identity: ctx.nodeName, onChallenges: (c) => ctx.setChallenges(c) })
      const push = () => {
        const cls = ctx.ingressClass()
        if (cls) issuer!.sync(ctx.ingresses(), cls)
      }
      ctx.onChange(push)
      issuer.start()
      push()
    },
    async stop() {
      await issuer?.stop()
    },
  }
}
