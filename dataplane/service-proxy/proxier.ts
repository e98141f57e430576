// The service proxier: the runner that keeps one node's backend equal to
// buildRoutingTable(Services, EndpointSlices, node). Contract:
//  - event handlers only mark the table dirty (and note when an
//    EndpointSlice changed, for the programming latency metric);
//  - one sync builds the whole table and hands it to the backend (built
//    incrementally: unchanged Services keep their ports from the last sync);
//  - bursts coalesce: at most one sync per minSyncIntervalMs (50 ms);
//  - a periodic full resync (resyncMs, 30 s) repairs drift;
//  - a failed apply retries with exponential backoff (200 ms .. 10 s);
//  - nothing is applied before both informers have their first full list.

import { createServer, type Server } from 'node:http'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry } from '../../lib/metrics.ts'
import { AppliedRevision } from '../applied-revision.ts'
import { buildRoutingTable, endpointKey, type TableCache } from './table.ts'
import type { Backend, NodeView, RoutingTable } from './types.ts'

const servicesInfo = lookupResource('', 'v1', 'services')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
export const triggerTimeAnnotation = 'endpoints.kubernetes.io/last-change-trigger-time'

export interface ProxierOptions {
  client: ApiClient
  backend: Backend
  logger: Logger
  /** The node as it is now (addresses, podCIDR); read at every sync. */
  node: () => NodeView
  registry?: Registry
  minSyncIntervalMs?: number
  resyncMs?: number
  /** Called when a change of Services or EndpointSlices is in effect on this node, with the store revision applied. */
  onApplied?: (revision: number) => void
}

export interface ProxierMetrics {
  registry: Registry
  syncDuration: Histogram
  rules: Gauge
  programmingLatency: Histogram
  generation: Gauge
  failures: Counter
}

function createProxierMetrics(registry: Registry): ProxierMetrics {
  const registers = [registry]
  return {
    registry,
    syncDuration: new Histogram({ name: 'skiff_proxy_sync_duration_seconds', help: 'Duration of one service proxy sync (build and apply)', buckets: latencyBuckets, registers }),
    rules: new Gauge({ name: 'skiff_proxy_rules_applied', help: 'Rules and map elements of the last applied table', registers }),
    programmingLatency: new Histogram({
      name: 'skiff_proxy_network_programming_duration_seconds',
      help: 'From an EndpointSlice change (its trigger time, else when the proxier saw it) to the rules applied',
      buckets: latencyBuckets, registers,
    }),
    generation: new Gauge({ name: 'skiff_proxy_last_applied_generation', help: 'Generation of the last applied table', registers }),
    failures: new Counter({ name: 'skiff_proxy_sync_failures_total', help: 'Failed applies (retried with backoff)', registers }),
  }
}

export class ServiceProxier {
  readonly metrics: ProxierMetrics
  #o: ProxierOptions
  #services: Informer
  #slices: Informer
  #dirty = false
  #timer?: NodeJS.Timeout
  #resync?: NodeJS.Timeout
  #syncing = false
  /** performance.now() of the last sync: a wall-clock step back must not hold the next one off. */
  #lastSyncAt = 0
  #failures = 0
  #generation = 0
  #stopped = true
  #pendingChanges: number[] = []
  #lastSliceEventAt = 0
  #current?: RoutingTable
  /** Ports of unchanged Services from the previous sync (buildRoutingTable is incremental with it). */
  #tableCache: TableCache = { entries: new Map() }
  #health: HealthChecks
  #applied: AppliedRevision

  constructor(opts: ProxierOptions) {
    this.#o = opts
    this.#health = new HealthChecks(opts.logger)
    this.metrics = createProxierMetrics(opts.registry ?? createRegistry())
    this.#services = new Informer({ client: opts.client, info: servicesInfo, logger: opts.logger })
    this.#slices = new Informer({ client: opts.client, info: slicesInfo, logger: opts.logger })
    const mark = () => this.#markDirty()
    this.#services.addHandlers({ onAdd: mark, onUpdate: mark, onDelete: mark })
    const sliceChanged = (s: KubeObject) => {
      this.#lastSliceEventAt = performance.now()
      const t = Date.parse(s.metadata.annotations?.[triggerTimeAnnotation] ?? '')
      this.#pendingChanges.push(Number.isFinite(t) ? t : Date.now())
      this.#markDirty()
    }
    this.#slices.addHandlers({ onAdd: sliceChanged, onUpdate: (o, n) => o !== n && sliceChanged(n), onDelete: sliceChanged })
    this.#applied = new AppliedRevision({
      sources: [this.#services, this.#slices],
      idle: () => !this.#stopped && !this.#dirty && !this.#syncing && !this.#timer,
      report: (rev) => opts.onApplied?.(rev),
    })
  }

  /**
   * The Services of a namespace from this proxier's informer (the kubelet's
   * service lister: container variables read it instead of listing the API);
   * undefined until the informer has synced.
   */
  services(namespace: string): KubeObject[] | undefined {
    if (!this.#services.hasSynced) return undefined
    return this.#services.list((s) => s.metadata.namespace === namespace)
  }

  /** The store revision whose Services and EndpointSlices this node's rules reflect (see ../applied-revision.ts). */
  get appliedRevision(): number {
    return this.#applied.value
  }

  /** Resolves once both informers are synced and the first table is applied (or its apply failed and retries). */
  async start(): Promise<void> {
    this.#stopped = false
    await Promise.all([this.#services.start(), this.#slices.start()])
    // The initial list is not a change the user made: no latency sample for it.
    this.#pendingChanges = []
    this.#resync = setInterval(() => this.#markDirty(), this.#o.resyncMs ?? 30_000)
    this.#resync.unref()
    this.#dirty = true
    await this.#sync()
    this.#applied.start()
  }

  /** Stop syncing; rules stay in place (established traffic keeps flowing). cleanup: also remove them. */
  async stop(opts: { cleanup?: boolean } = {}): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearInterval(this.#resync)
    this.#applied.stop()
    this.#services.stop()
    this.#slices.stop()
    for (let i = 0; this.#syncing && i < 100; i++) await new Promise((r) => setTimeout(r, 20))
    await this.#health.close()
    if (opts.cleanup) await this.#o.backend.cleanup()
    else this.#o.backend.close?.()
  }

  /** performance.now() when the last EndpointSlice event arrived (the benchmark splits delivery from apply with it). */
  get lastSliceEventAt(): number {
    return this.#lastSliceEventAt
  }

  /** The backend this proxier applies to (benchmarks read the nftables backend's sync counts). */
  get backend(): Backend {
    return this.#o.backend
  }

  /** The last applied table (undefined before the first apply). */
  get table(): RoutingTable | undefined {
    return this.#current
  }

  /** The current table as text, for the debug endpoint. */
  debugText(): string {
    return this.#current ? formatTable(this.#current, this.#o.backend.name) : 'service proxy: nothing applied yet\n'
  }

  #markDirty(): void {
    this.#dirty = true
    this.#schedule(0)
  }

  #schedule(extraDelayMs: number): void {
    if (this.#stopped || this.#timer || this.#syncing) return
    const wait = Math.max(extraDelayMs, this.#lastSyncAt + (this.#o.minSyncIntervalMs ?? 50) - performance.now(), 0)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#sync()
    }, wait)
  }

  async #sync(): Promise<void> {
    if (this.#stopped || !this.#dirty || this.#syncing) return
    if (!this.#services.hasSynced || !this.#slices.hasSynced) return
    this.#syncing = true
    this.#dirty = false
    const changes = this.#pendingChanges
    this.#pendingChanges = []
    const started = performance.now()
    let retryIn = 0
    const inputs = this.#applied.inputs()
    try {
      const table = buildRoutingTable(this.#services.list(), this.#slices.list(), this.#o.node(), ++this.#generation, this.#tableCache)
      const { rules } = await this.#o.backend.apply(table)
      this.#current = table
      this.#failures = 0
      await this.#health.update(table)
      const now = Date.now()
      for (const t of changes) this.metrics.programmingLatency.observe(Math.max(0, now - t) / 1000)
      this.metrics.rules.set(rules)
      this.metrics.generation.set(table.generation)
      this.#applied.applied(inputs)
    } catch (e) {
      this.metrics.failures.inc()
      this.#dirty = true
      this.#pendingChanges.unshift(...changes)
      retryIn = Math.min(10_000, 200 * 2 ** this.#failures++)
      this.#o.logger.warn({ err: (e as Error).message, retryInMs: retryIn }, 'service proxy apply failed')
    } finally {
      this.metrics.syncDuration.observe((performance.now() - started) / 1000)
      this.#lastSyncAt = performance.now()
      this.#syncing = false
    }
    if (this.#dirty) this.#schedule(retryIn)
  }
}

/** One line per Service port: addresses, policies, endpoints. */
export function formatTable(table: RoutingTable, backend: string): string {
  const n = table.node
  const lines = [`# skiff service proxy (${backend}) node=${n.name} generation=${table.generation} podCIDR=${n.podCIDR} addresses=${n.addresses.join(',')}`]
  for (const p of table.ports) {
    const vips = [p.clusterIP ?? '-', p.nodePort ? `nodePort=${p.nodePort}` : '', ...p.loadBalancerIPs.map((ip) => `lb=${ip}`), ...p.externalIPs.map((ip) => `ext=${ip}`)]
    const policy = `eTP=${p.externalTrafficPolicy} iTP=${p.internalTrafficPolicy}${p.affinitySeconds ? ` affinity=${p.affinitySeconds}s` : ''}`
    const eps = p.clusterEndpoints.map((e) => endpointKey(e) + (e.nodeName === n.name ? '(local)' : '') + (e.ready ? '' : '(terminating)'))
    lines.push(`${p.id} ${p.protocol}/${p.port} ${vips.filter(Boolean).join(' ')} ${policy} -> ${eps.length ? eps.join(' ') : 'REJECT'}`)
  }
  return lines.join('\n') + '\n'
}

/**
 * healthCheckNodePort servers (LoadBalancer + externalTrafficPolicy Local):
 * on each node address, 200 where this node has local endpoints, 503
 * elsewhere, with kube-proxy's JSON body. A port that cannot be bound is
 * logged and tried again at the next sync.
 */
class HealthChecks {
  #log: Logger
  #servers = new Map<string, Server>()
  #local = new Map<number, { namespace: string; name: string; localEndpoints: number }>()

  constructor(log: Logger) {
    this.#log = log
  }

  async update(table: RoutingTable): Promise<void> {
    const local = new Map<number, { namespace: string; name: string; localEndpoints: number }>()
    for (const p of table.ports) {
      if (!p.healthCheckNodePort) continue
      const prev = local.get(p.healthCheckNodePort)
      local.set(p.healthCheckNodePort, { namespace: p.namespace, name: p.service, localEndpoints: Math.max(prev?.localEndpoints ?? 0, p.localEndpoints.length) })
    }
    this.#local = local
    const want = new Set([...local.keys()].flatMap((port) => table.node.addresses.map((a) => `${a}:${port}`)))
    for (const [key, srv] of this.#servers) if (!want.has(key)) { this.#servers.delete(key); srv.close() }
    for (const key of want) if (!this.#servers.has(key)) await this.#listen(key)
  }

  async #listen(key: string): Promise<void> {
    const i = key.lastIndexOf(':')
    const host = key.slice(0, i)
    const port = Number(key.slice(i + 1))
    const srv = createServer((req, res) => {
      const s = this.#local.get(port)
      const body = JSON.stringify({ service: { namespace: s?.namespace ?? '', name: s?.name ?? '' }, localEndpoints: s?.localEndpoints ?? 0 })
      res.writeHead(s && s.localEndpoints > 0 ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' })
      res.end(body + '\n')
    })
    try {
      await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(port, host, () => resolve()) })
      this.#servers.set(key, srv)
    } catch (e) {
      this.#log.warn({ address: key, err: (e as Error).message }, 'cannot serve healthCheckNodePort')
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((s) => new Promise((r) => s.close(r))))
    this.#servers.clear()
  }
}
