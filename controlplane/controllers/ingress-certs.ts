// The cluster-CA certificate issuer for Ingress TLS (issue 5, point 6).
//  - keeps kube-system/skiff-ingress-default-tls: the certificate every
//    ingress controller serves for an unknown SNI (CN "Skiff Ingress Default
//    Certificate", SAN ingress.local);
//  - for every Ingress of a class whose IngressClass says
//    `skiff.dev/issuer: ca`, makes each spec.tls Secret hold a cluster-CA
//    certificate covering its hosts.
// Decisions come from certs/issue.ts (buildCertTargets, planCertificate);
// this file only feeds them from the caches and writes Secrets.
//
// One queue key ('all'): any Ingress, IngressClass or relevant Secret change
// re-plans every target (a few dozen at most; planning is cheap, issuing only
// happens for targets that need it). A Secret without the
// `cert.skiff.dev/issuer` marker belongs to the user and is never
// overwritten; a Warning says when it does not cover the hosts. Every write
// carries the resourceVersion read from the cache (create: AlreadyExists),
// so a stale cache costs a retry, never a lost write.

import { issueServingCert, type ClusterCA } from '../../certs/ca.ts'
import { buildCertTargets, buildTlsSecret, planCertificate, type CertTarget } from '../../certs/issue.ts'
import { isDefaultIngressClass } from '../../dataplane/ingress/routes.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { readSkiffAnnotation } from '../api/validation/skiff.ts'
import { ApiClientError } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import type { Controller, ControllerContext } from './types.ts'

const ingressesInfo = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const classesInfo = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
const secretsInfo = lookupResource('', 'v1', 'secrets')!

export const defaultCertSecret = { namespace: 'kube-system', name: 'skiff-ingress-default-tls' }
export const defaultCertCommonName = 'Skiff Ingress Default Certificate'
export const defaultCertHost = 'ingress.local'
/** Re-check at least this often, so a renewal is never missed for long (timers drift; caches resync). */
const maxRecheckMs = 3_600_000

export interface IngressCertsOptions {
  ca: ClusterCA
  /** Validity of issued certificates (default 365 days). */
  days?: number
  /** The clock, for tests of renewal. */
  now?: () => number
}

export class IngressCertsController implements Controller {
  readonly name = 'ingress-certs'
  #opts: IngressCertsOptions
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #ingresses?: Informer
  #classes?: Informer
  #secrets?: Informer
  /** 'namespace/name' of every Secret we look after, so other Secret changes are ignored. */
  #watched = new Set<string>([`${defaultCertSecret.namespace}/${defaultCertSecret.name}`])
  #warned = new Map<string, string>()
  #timer?: NodeJS.Timeout

  constructor(opts: IngressCertsOptions) {
    this.#opts = opts
  }

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#ingresses = ctx.informers.for(ingressesInfo)
    this.#classes = ctx.informers.for(classesInfo)
    this.#secrets = ctx.informers.for(secretsInfo)
    const poke = () => this.#queue!.add('all')
    const pokeSecret = (s: KubeObject) => {
      if (this.#watched.has(`${s.metadata.namespace}/${s.metadata.name}`)) poke()
    }
    this.#ingresses.addHandlers({ onAdd: poke, onUpdate: poke, onDelete: poke })
    this.#classes.addHandlers({ onAdd: poke, onUpdate: poke, onDelete: poke })
    this.#secrets.addHandlers({ onAdd: pokeSecret, onUpdate: (_o, n) => pokeSecret(n), onDelete: pokeSecret })
    // Never plan from a half-filled cache: an unlisted Secret would look missing.
    await ctx.informers.start()
    this.#queue.start(() => this.#sync())
    poke()
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer)
    this.#queue?.stop()
    this.#warned.clear()
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now()
  }

  /** The targets of every class whose issuer is the cluster CA. */
  #targets(): CertTarget[] {
    const classes = this.#classes!.list()
    const ingresses = this.#ingresses!.list()
    return classes
      .filter((c) => readSkiffAnnotation(c, 'skiff.dev/issuer') === 'ca')
      .flatMap((c) => buildCertTargets(ingresses, { className: c.metadata.name!, isDefaultClass: isDefaultIngressClass(c) }))
  }

  async #sync(): Promise<void> {
    const targets = this.#targets()
    this.#watched = new Set([`${defaultCertSecret.namespace}/${defaultCertSecret.name}`, ...targets.map((t) => `${t.namespace}/${t.secretName}`)])
    const defaultTarget: CertTarget = { ...defaultCertSecret, secretName: defaultCertSecret.name, hosts: [defaultCertHost], ingresses: [] }
    let failed: unknown
    let next = this.#now() + maxRecheckMs
    for (const t of [defaultTarget, ...targets]) {
      try {
        next = Math.min(next, await this.#reconcile(t, t === defaultTarget))
      } catch (e) {
        failed ??= e // the others still get their turn; the queue retries the whole pass
      }
    }
    for (const key of this.#warned.keys()) if (!this.#watched.has(key)) this.#warned.delete(key)
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#queue!.add('all'), Math.max(1000, next - this.#now()))
    this.#timer.unref()
    if (failed) throw failed
  }

  /** Makes one Secret right; returns when it next needs a look (its renewal time). */
  async #reconcile(t: CertTarget, isDefault: boolean): Promise<number> {
    const ctx = this.#ctx!
    const key = `${t.namespace}/${t.secretName}`
    const secret = this.#secrets!.get(key)
    const now = this.#now()
    const plan = planCertificate({ secret, hosts: t.hosts, issuer: 'cluster-ca', now })
    if (plan.action === 'ok') return plan.renewAt
    if (plan.action === 'foreign') {
      if (!plan.covered) this.#warn(t, `Secret ${key} was not made by Skiff and its certificate does not cover ${t.hosts.join(', ')} (or has expired); it is left alone`)
      return now + maxRecheckMs
    }
    const issued = issueServingCert(this.#opts.ca, { commonName: isDefault ? defaultCertCommonName : commonNameFor(t.hosts), dnsNames: t.hosts, days: this.#opts.days })
    const body = buildTlsSecret({
      namespace: t.namespace,
      name: t.secretName,
      // leaf then chain: the chain is the cluster CA itself
      certPem: issued.certPem + this.#opts.ca.certPem,
      keyPem: issued.keyPem,
      issuer: 'cluster-ca',
      hosts: t.hosts,
      existing: secret,
      extraData: { 'ca.crt': this.#opts.ca.certPem },
    })
    try {
      if (secret) await ctx.client.update(secretsInfo, body)
      else await ctx.client.create(secretsInfo, t.namespace, body)
    } catch (e) {
      // 404: deleted meanwhile (or its namespace is going); the next pass creates it.
      if (e instanceof ApiClientError && e.status === 404) return now + 1000
      throw e // 409: changed or created meanwhile; retry from a fresher cache
    }
    this.#warned.delete(key)
    ctx.logger.info({ secret: key, hosts: t.hosts, reason: plan.reason }, 'issued certificate from the cluster CA')
    for (const ing of t.ingresses) ctx.events.event(ing, 'Normal', 'Issued', `Certificate for ${t.hosts.join(', ')} issued by the cluster CA into Secret ${t.secretName} (${plan.reason})`)
    return now + maxRecheckMs
  }

  #warn(t: CertTarget, message: string): void {
    const key = `${t.namespace}/${t.secretName}`
    if (this.#warned.get(key) === message) return
    this.#warned.set(key, message)
    this.#ctx!.logger.warn({ secret: key }, message)
    for (const ing of t.ingresses) this.#ctx!.events.event(ing, 'Warning', 'CertificateNotCovered', message)
  }
}

/** The first host that fits a CN (64 characters); clients match SANs anyway. */
export function commonNameFor(hosts: string[]): string {
  return hosts.find((h) => h.length <= 64) ?? 'skiff-ingress'
}
