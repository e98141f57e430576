// Apiserver identity Leases (as kube-apiserver's kube-system/apiserver-<id>,
// label apiserver.kubernetes.io/identity=kube-apiserver): each server of an
// HA control plane renews one every 10 s, with the URL agents reach it at in
// annotation apiserver.skiff.dev/url, and deletes it on a clean stop. Agents
// and `skiff kubeconfig` read them to know every server (node/agent.ts,
// ApiClient.setServers); a Lease not seen renewed within its duration (on
// the reader's monotonic clock: ../client/lease-observer.ts) is a server
// that is gone.

import { createHash } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { LeaseFreshness } from '../api/routing-applied.ts'
import { microTime } from '../controllers/leader.ts'
import type { Logger } from '../../lib/log.ts'
import type { Registry } from './registry.ts'

const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
export const identityLabel = 'apiserver.kubernetes.io/identity'
export const identityLabelValue = 'kube-apiserver'
export const urlAnnotation = 'apiserver.skiff.dev/url'
/** The store's endpoints (Redis, replicas, sentinels: `ip:port,...`): agents keep pods away from them. */
export const storeEndpointsAnnotation = 'apiserver.skiff.dev/store-endpoints'
const namespace = 'kube-system'
const renewMs = 10_000
const durationSeconds = 30

export function identityLeaseName(url: string): string {
  return `apiserver-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`
}

/** `a.b.c.d:port`, the only shape an nft rule takes here. */
export function isIPv4Endpoint(ep: string): boolean {
  const m = /^(.+):(\d{1,5})$/.exec(ep)
  return !!m && isIPv4(m[1]!) && Number(m[2]) > 0 && Number(m[2]) < 65536
}

/** The store endpoints every fresh identity Lease names, deduplicated and sorted (pure). */
export function liveStoreEndpoints(items: Iterable<KubeObject>, fresh: LeaseFreshness): string[] {
  const out = new Set<string>()
  for (const l of items) {
    if (l.metadata?.labels?.[identityLabel] !== identityLabelValue || !fresh(l)) continue
    for (const ep of String(l.metadata.annotations?.[storeEndpointsAnnotation] ?? '').split(',')) if (isIPv4Endpoint(ep)) out.add(ep)
  }
  return [...out].sort()
}

/** The URLs of the apiservers whose identity Leases are fresh (pure). */
export function liveApiservers(items: Iterable<KubeObject>, fresh: LeaseFreshness): string[] {
  const out: string[] = []
  for (const l of items) {
    const url = l.metadata?.annotations?.[urlAnnotation]
    if (l.metadata?.labels?.[identityLabel] === identityLabelValue && url && fresh(l)) out.push(url)
  }
  return out.sort()
}

interface IdentityOptions {
  registry: Registry
  url: string
  logger: Logger
  storeEndpoints?: () => Promise<string[]>
  /** Run after each renewal, and with leaving=true before the Lease is deleted (the default/kubernetes endpoints). */
  afterRenew?: (leaving: boolean) => Promise<void>
}

export class IdentityLease {
  #o: IdentityOptions
  #timer?: NodeJS.Timeout
  #name: string
  #lastEndpoints?: string[]

  constructor(o: IdentityOptions) {
    this.#o = o
    this.#name = identityLeaseName(o.url)
  }

  async start(): Promise<void> {
    await this.#tick()
    this.#timer = setInterval(() => void this.#tick(), renewMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#o.afterRenew?.(true).catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'could not take this server out of the default/kubernetes endpoints'))
    await this.#o.registry.delete(leases, namespace, this.#name).catch(() => undefined)
  }

  async #tick(): Promise<void> {
    try {
      await this.#renew()
    } catch (e) {
      return this.#o.logger.warn({ err: (e as Error).message }, 'apiserver identity lease write failed; retrying')
    }
    await this.#o.afterRenew?.(false).catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'default/kubernetes endpoints not reconciled; retrying at the next renewal'))
  }

  async #renew(): Promise<void> {
    const endpoints = (await this.#o.storeEndpoints?.().catch((e) => {
      this.#o.logger.debug({ err: (e as Error).message }, 'cannot list the store endpoints this time')
      return undefined
    })) ?? this.#lastEndpoints
    this.#lastEndpoints = endpoints
    const annotations: Record<string, string> = { [urlAnnotation]: this.#o.url, ...(endpoints?.length ? { [storeEndpointsAnnotation]: endpoints.join(',') } : {}) }
    const desired: KubeObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace, labels: { [identityLabel]: identityLabelValue }, annotations },
      spec: { holderIdentity: this.#name, leaseDurationSeconds: durationSeconds, renewTime: microTime(Date.now()) },
    }
    let current: KubeObject | undefined
    try {
      current = await this.#o.registry.get(leases, namespace, this.#name)
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'NotFound')) throw e
    }
    if (!current) {
      await this.#o.registry.create(leases, namespace, desired)
      return
    }
    await this.#o.registry.update(leases, namespace, this.#name, { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion } })
  }
}
