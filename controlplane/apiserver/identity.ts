// Apiserver identity Leases (as kube-apiserver's kube-system/apiserver-<id>,
// label apiserver.kubernetes.io/identity=kube-apiserver): each server of an
// HA control plane renews one every 10 s, with the URL agents reach it at in
// annotation apiserver.skiff.dev/url, and deletes it on a clean stop. Agents
// and `skiff kubeconfig` read them to know every server (node/agent.ts,
// ApiClient.setServers); a Lease not renewed within its duration is a server
// that is gone.

import { createHash } from 'node:crypto'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
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

function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

export function identityLeaseName(url: string): string {
  return `apiserver-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`
}

/** The store endpoints every fresh identity Lease names, deduplicated and sorted (pure). */
export function liveStoreEndpoints(items: Iterable<KubeObject>, nowMs: number): string[] {
  const out = new Set<string>()
  for (const l of items) {
    if (l.metadata?.labels?.[identityLabel] !== identityLabelValue) continue
    const renew = Date.parse(String(l.spec?.renewTime ?? ''))
    if (!(renew + Number(l.spec?.leaseDurationSeconds ?? 0) * 1000 > nowMs)) continue
    for (const ep of String(l.metadata.annotations?.[storeEndpointsAnnotation] ?? '').split(',')) if (/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(ep)) out.add(ep)
  }
  return [...out].sort()
}

/** The URLs of the apiservers whose identity Leases are fresh (pure). */
export function liveApiservers(items: Iterable<KubeObject>, nowMs: number): string[] {
  const out: string[] = []
  for (const l of items) {
    if (l.metadata?.labels?.[identityLabel] !== identityLabelValue) continue
    const url = l.metadata.annotations?.[urlAnnotation]
    const renew = Date.parse(String(l.spec?.renewTime ?? ''))
    const dur = Number(l.spec?.leaseDurationSeconds ?? 0)
    if (url && Number.isFinite(renew) && renew + dur * 1000 > nowMs) out.push(url)
  }
  return out.sort()
}

export class IdentityLease {
  #o: { registry: Registry; url: string; logger: Logger; storeEndpoints?: () => Promise<string[]> }
  #timer?: NodeJS.Timeout
  #name: string
  #lastEndpoints?: string[]

  constructor(o: { registry: Registry; url: string; logger: Logger; storeEndpoints?: () => Promise<string[]> }) {
    this.#o = o
    this.#name = identityLeaseName(o.url)
  }

  async start(): Promise<void> {
    await this.#renew().catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'apiserver identity lease write failed; retrying'))
    this.#timer = setInterval(() => void this.#renew().catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'apiserver identity lease write failed; retrying')), renewMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#o.registry.delete(leases, namespace, this.#name).catch(() => undefined)
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
