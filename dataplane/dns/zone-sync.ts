// The push model: informers on Services, EndpointSlices and Pods; any event
// schedules one rebuild on the next turn of the event loop (a burst of events
// coalesces into one), and the compiled zone is swapped in whole. Nothing is
// compiled before all three first lists are in (the server answers SERVFAIL
// for cluster names until then).

import { lookupResource } from '../../controlplane/api/resources.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import type { Logger } from '../../lib/log.ts'
import { compileZone, type CompiledZone } from './compile.ts'
import type { DnsMetrics } from './metrics.ts'
import { buildZone, type Zone } from './zone.ts'

export interface ZoneSyncOptions {
  client: ApiClient
  logger: Logger
  origin: string
  ttl: number
  dnsIP?: string
  metrics: DnsMetrics
  /** Called after every swap (tests, debug). */
  onZone?(z: CompiledZone): void
}

export class ZoneSync {
  #o: ZoneSyncOptions
  #informers: Informer[]
  #zone?: CompiledZone
  #data?: Zone
  #scheduled = false
  #stopped = false
  #serial = Math.floor(Date.now() / 1000)
  #synced: Promise<void>
  #markSynced!: () => void

  constructor(opts: ZoneSyncOptions) {
    this.#o = opts
    const mk = (group: string, version: string, resource: string) =>
      new Informer({ client: opts.client, info: lookupResource(group, version, resource)!, logger: opts.logger })
    this.#informers = [mk('', 'v1', 'services'), mk('discovery.k8s.io', 'v1', 'endpointslices'), mk('', 'v1', 'pods')]
    const schedule = () => this.#schedule()
    for (const inf of this.#informers) inf.addHandlers({ onAdd: schedule, onUpdate: (a, b) => a !== b && schedule(), onDelete: schedule })
    this.#synced = new Promise((r) => (this.#markSynced = r))
  }

  get zone(): CompiledZone | undefined {
    return this.#zone
  }

  /** The uncompiled zone (debug output). */
  get data(): Zone | undefined {
    return this.#data
  }

  whenSynced(): Promise<void> {
    return this.#synced
  }

  /** Start the informers in the background; resolves at once (the server serves meanwhile). */
  start(): void {
    this.#stopped = false
    void Promise.all(this.#informers.map((i) => i.start())).then(() => {
      if (this.#stopped) return
      this.#rebuild()
      this.#markSynced()
      this.#o.logger.info({ records: this.#zone?.records }, 'cluster DNS zone synced')
    })
  }

  stop(): void {
    this.#stopped = true
    for (const i of this.#informers) i.stop()
  }

  #schedule(): void {
    if (this.#scheduled || !this.#informers.every((i) => i.hasSynced)) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (!this.#stopped) this.#rebuild()
    })
  }

  #rebuild(): void {
    const t0 = performance.now()
    const [services, slices, pods] = this.#informers.map((i) => i.list())
    try {
      this.#data = buildZone({ services: services!, slices: slices!, pods: pods!, origin: this.#o.origin, ttl: this.#o.ttl, dnsIP: this.#o.dnsIP, serial: ++this.#serial })
      this.#zone = compileZone(this.#data)
    } catch (e) {
      // Keep serving the previous zone; the next event retries.
      this.#o.logger.error({ err: (e as Error).message }, 'cluster DNS zone build failed')
      return
    }
    this.#o.metrics.zoneBuilt((performance.now() - t0) / 1000, this.#zone.records)
    this.#o.onZone?.(this.#zone)
  }
}
