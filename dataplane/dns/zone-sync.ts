// The push model: informers on Services, EndpointSlices and Pods; any event
// schedules one rebuild on the next turn of the event loop (a burst of events
// coalesces into one), and the compiled zone is swapped in whole. Nothing is
// compiled before all three first lists are in (the server answers SERVFAIL
// for cluster names until then).
//
// Where the zone is built: in this thread (`thread: false`, the in-process
// server), or in a builder thread (zone-builder.ts) that receives only the
// objects that changed since the last rebuild (all of them the first time,
// and again if the builder is restarted) and hands back the compiled zone as
// one shared block (zone-wire.ts) for the answering workers. Then this
// thread pays one message per rebuild, not the rebuild: at 10,000 endpoints
// a rebuild takes tens of milliseconds and the agent's event loop also runs
// the service proxy.

import { Worker } from 'node:worker_threads'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import type { Logger } from '../../lib/log.ts'
import { compileZone, type CompiledZone } from './compile.ts'
import type { DnsMetrics } from './metrics.ts'
import { decodeZone } from './zone-wire.ts'
import { buildZone, type Zone } from './zone.ts'

/** workerData of the builder thread. */
export interface BuilderSetup {
  origin: string
  ttl: number
  dnsIP?: string
}

type Changes = Array<[string, KubeObject | null]>

/** Objects changed since the last message (null: deleted), by kind; `reset`: these are all of them. */
export interface ToBuilder {
  reset: boolean
  serial: number
  services: Changes
  slices: Changes
  pods: Changes
}

export type FromBuilder =
  | { type: 'zone'; zone: SharedArrayBuffer; records: number; seconds: number }
  | { type: 'error'; message: string }

const builderUrl = new URL('./zone-builder.ts', import.meta.url)
const kindNames = ['services', 'slices', 'pods'] as const
const objectKey = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`

export interface ZoneSyncOptions {
  client: ApiClient
  logger: Logger
  origin: string
  ttl: number
  dnsIP?: string
  metrics: DnsMetrics
  /** Called after every swap (tests, debug); not with `thread`. */
  onZone?(z: CompiledZone): void
  /** Build in a builder thread; every new zone is handed to onBlock as one shared block (zone-wire.ts). */
  thread?: boolean
  onBlock?(block: SharedArrayBuffer): void
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
  // Builder thread mode.
  #builder?: Worker
  #block?: SharedArrayBuffer
  #pending = kindNames.map(() => new Map<string, KubeObject | null>())
  #resetNext = true
  #restartTimer?: NodeJS.Timeout

  constructor(opts: ZoneSyncOptions) {
    this.#o = opts
    const mk = (group: string, version: string, resource: string) =>
      new Informer({ client: opts.client, info: lookupResource(group, version, resource)!, logger: opts.logger })
    this.#informers = [mk('', 'v1', 'services'), mk('discovery.k8s.io', 'v1', 'endpointslices'), mk('', 'v1', 'pods')]
    this.#informers.forEach((inf, i) => {
      const changed = (o: KubeObject, gone = false) => {
        if (opts.thread) this.#pending[i]!.set(objectKey(o), gone ? null : o)
        this.#schedule()
      }
      inf.addHandlers({ onAdd: (o) => changed(o), onUpdate: (a, b) => a !== b && changed(b), onDelete: (o) => changed(o, true) })
    })
    this.#synced = new Promise((r) => (this.#markSynced = r))
  }

  get zone(): CompiledZone | undefined {
    // Builder thread mode: read back on demand (this thread answers nothing then; tests and debug only).
    if (this.#block && this.#zone === undefined) this.#zone = decodeZone(this.#block)
    return this.#zone
  }

  /** Whether a zone is compiled (without decoding it). */
  get ready(): boolean {
    return this.#zone !== undefined || this.#block !== undefined
  }

  /** The uncompiled zone (debug output; in-thread builds only). */
  get data(): Zone | undefined {
    return this.#data
  }

  whenSynced(): Promise<void> {
    return this.#synced
  }

  /** Start the informers in the background; resolves at once (the server serves meanwhile). */
  start(): void {
    this.#stopped = false
    if (this.#o.thread) this.#startBuilder()
    void Promise.all(this.#informers.map((i) => i.start())).then(() => {
      if (this.#stopped) return
      this.#rebuild()
      if (this.#o.thread) return // synced when the first block arrives
      this.#markSynced()
      this.#o.logger.info({ records: this.#zone?.records }, 'cluster DNS zone synced')
    })
  }

  stop(): void {
    this.#stopped = true
    for (const i of this.#informers) i.stop()
    clearTimeout(this.#restartTimer)
    void this.#builder?.terminate()
    this.#builder = undefined
  }

  #startBuilder(): void {
    const setup: BuilderSetup = { origin: this.#o.origin, ttl: this.#o.ttl, dnsIP: this.#o.dnsIP }
    const w = new Worker(builderUrl, { workerData: setup, name: 'skiff-dns-zone' })
    this.#builder = w
    w.on('message', (m: FromBuilder) => {
      if (m.type === 'error') {
        this.#o.logger.error({ err: m.message }, 'cluster DNS zone build failed')
        return
      }
      this.#block = m.zone
      this.#zone = undefined
      this.#o.metrics.zoneBuilt(m.seconds, m.records)
      this.#o.onBlock?.(m.zone)
      if (!this.#firstBlock) {
        this.#firstBlock = true
        this.#markSynced()
        this.#o.logger.info({ records: m.records }, 'cluster DNS zone synced')
      }
    })
    w.on('error', (e) => this.#o.logger.error({ err: e.message }, 'cluster DNS zone builder crashed'))
    w.on('exit', (code) => {
      if (this.#builder !== w || this.#stopped) return
      // A new builder starts empty: it gets every object again.
      this.#builder = undefined
      this.#resetNext = true
      this.#o.logger.error({ code }, 'cluster DNS zone builder exited; restarting in 1 s')
      this.#restartTimer = setTimeout(() => {
        this.#startBuilder()
        this.#schedule()
      }, 1000)
    })
  }

  #firstBlock = false

  #schedule(): void {
    if (this.#scheduled || !this.#informers.every((i) => i.hasSynced)) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (!this.#stopped) this.#rebuild()
    })
  }

  #rebuild(): void {
    if (this.#o.thread) return this.#sendChanges()
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

  /** Builder thread mode: what changed since the last message (everything after a reset), one message per rebuild. */
  #sendChanges(): void {
    if (!this.#builder) return
    const reset = this.#resetNext
    const changes = reset
      ? this.#informers.map((inf) => inf.list().map((o): [string, KubeObject | null] => [objectKey(o), o]))
      : this.#pending.map((m) => [...m])
    for (const m of this.#pending) m.clear()
    this.#resetNext = false
    const msg: ToBuilder = { reset, serial: ++this.#serial, services: changes[0]!, slices: changes[1]!, pods: changes[2]! }
    this.#builder.postMessage(msg)
  }
}
