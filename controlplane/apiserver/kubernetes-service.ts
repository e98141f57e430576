// The `default/kubernetes` Service, as kube-apiserver keeps it: a ClusterIP
// Service on the first address of the service range, port 443 (name https),
// without a selector, whose Endpoints and EndpointSlice list the apiservers
// that serve now. Every apiserver reconciles it after each renewal of its
// identity Lease (identity.ts, every 10 s): the Service is created when
// missing (a user's change of it is left alone, as its port is), and the
// endpoints are the addresses of the identity Leases seen renewed within
// their duration (on this server's monotonic clock, LeaseObserver). A
// server that stops takes itself out before it goes. Loopback addresses are
// left out (a pod cannot reach an apiserver listening on 127.0.0.1; such a
// test cluster's Service simply has no endpoints).

import { isIPv4 } from 'node:net'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { LeaseObserver } from '../client/lease-observer.ts'
import { serviceNameLabel } from '../controllers/endpoints.ts'
import type { Logger } from '../../lib/log.ts'
import { identityLabel, identityLabelValue, liveApiservers } from './identity.ts'
import type { Registry } from './registry.ts'
import { intToIp, parseCIDR } from './service-alloc.ts'

const services = lookupResource('', 'v1', 'services')!
const endpoints = lookupResource('', 'v1', 'endpoints')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const ns = 'default'
const name = 'kubernetes'
const labels = { component: 'apiserver', provider: 'kubernetes' }

/** The first usable address of the service range (10.96.0.1 for 10.96.0.0/12). */
export function kubernetesServiceIP(serviceCIDR: string): string {
  return intToIp(parseCIDR(serviceCIDR).base + 1)
}

/** `https://10.0.0.5:6443` → its IPv4 address and port, or undefined (a name, IPv6, loopback). */
export function apiserverEndpoint(url: string): { ip: string; port: number } | undefined {
  try {
    const u = new URL(url)
    const port = Number(u.port || 443)
    if (!isIPv4(u.hostname) || u.hostname.startsWith('127.')) return undefined
    return { ip: u.hostname, port }
  } catch {
    return undefined
  }
}

/** The Endpoints subsets and EndpointSlices for these apiserver URLs: one subset and one slice per port (pure). */
export function kubernetesEndpoints(urls: readonly string[]): { subsets: any[]; slices: KubeObject[] } {
  const byPort = new Map<number, Set<string>>()
  for (const url of urls) {
    const ep = apiserverEndpoint(url)
    if (ep) byPort.set(ep.port, (byPort.get(ep.port) ?? new Set()).add(ep.ip))
  }
  const ports = [...byPort.keys()].sort((a, b) => a - b)
  const subsets = ports.map((port) => ({ addresses: [...byPort.get(port)!].sort().map((ip) => ({ ip })), ports: [{ name: 'https', port, protocol: 'TCP' }] }))
  const sliceList = ports.map((port, i) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: i === 0 ? name : `${name}-${port}`, namespace: ns, labels: { [serviceNameLabel]: name } },
    addressType: 'IPv4',
    endpoints: [...byPort.get(port)!].sort().map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false } })),
    ports: [{ name: 'https', port, protocol: 'TCP' }],
  }))
  return { subsets, slices: sliceList }
}

export class KubernetesService {
  #o: { registry: Registry; logger: Logger; serviceCIDR: string; self: string }
  #targetPort: number
  #observer = new LeaseObserver()
  #warned = false

  constructor(o: { registry: Registry; logger: Logger; serviceCIDR: string; self: string }) {
    this.#o = o
    this.#targetPort = Number(new URL(o.self).port || 443)
  }

  /** Bring the Service and its endpoints in line; `leaving`: this server is stopping. */
  async reconcile(leaving = false): Promise<void> {
    await this.#ensureService()
    const { items } = await this.#o.registry.list(leases, 'kube-system')
    const live = liveApiservers(items.filter((l) => l.metadata.labels?.[identityLabel] === identityLabelValue), (l) => this.#observer.fresh(l))
    const urls = leaving ? live.filter((u) => u !== this.#o.self) : live
    const want = kubernetesEndpoints(urls)
    await this.#put(endpoints, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }, subsets: want.subsets }, ['subsets'])
    const { items: current } = await this.#o.registry.list(slices, ns)
    for (const s of want.slices) await this.#put(slices, s, ['endpoints', 'ports', 'addressType'])
    for (const s of current) {
      const ours = s.metadata.labels?.[serviceNameLabel] === name && (s.metadata.name === name || s.metadata.name!.startsWith(`${name}-`))
      if (ours && !want.slices.some((w) => w.metadata.name === s.metadata.name)) await this.#o.registry.delete(slices, ns, s.metadata.name!).catch(() => undefined)
    }
  }

  async #ensureService(): Promise<void> {
    const ip = kubernetesServiceIP(this.#o.serviceCIDR)
    try {
      await this.#o.registry.create(services, ns, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: ns, labels },
        spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: this.#targetPort }], sessionAffinity: 'None' },
      })
      this.#o.logger.info({ clusterIP: ip }, 'created the default/kubernetes Service')
    } catch (e) {
      if (e instanceof ApiError && e.reason === 'AlreadyExists') return
      if (!this.#warned) this.#o.logger.warn({ err: (e as Error).message, clusterIP: ip }, 'cannot create the default/kubernetes Service; pods will not find the API through it until its address is free')
      this.#warned = true
    }
  }

  /** Create `desired`, or update the listed fields of the stored one when they differ. */
  async #put(info: typeof services, desired: KubeObject, fields: string[]): Promise<void> {
    const { registry } = this.#o
    let current: KubeObject | undefined
    try {
      current = await registry.get(info, ns, desired.metadata.name!)
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'NotFound')) throw e
    }
    if (!current) {
      await registry.create(info, ns, desired).catch((e) => {
        if (!(e instanceof ApiError && (e.reason === 'AlreadyExists' || e.reason === 'Conflict'))) throw e
      })
      return
    }
    const same = fields.every((f) => JSON.stringify((current as any)[f] ?? null) === JSON.stringify((desired as any)[f] ?? null))
    if (same) return
    const next: any = { ...current, metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...desired.metadata.labels } } }
    for (const f of fields) next[f] = (desired as any)[f]
    await registry.updateFrom(info, current, next).catch((e) => {
      if (!(e instanceof ApiError && (e.reason === 'Conflict' || e.reason === 'NotFound'))) throw e
    })
  }
}
