// The controller manager: runs a list of Controllers (workload controllers,
// the scheduler, the infrastructure controllers here) only while this process
// holds the `kube-system/skiff-controller-manager` Lease. Any number of
// managers may run in different processes; one leads.
//
// Each leadership term gets a fresh ControllerContext (new shared informers
// and event recorder), so a controller started again after a lost term never
// sees handlers or caches of the previous one. Metrics registered during a
// term are removed from the registry when it ends, so the same controllers
// can register them again next term.

import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { ApiClient } from '../client/client.ts'
import { silentLogger, type Logger } from '../../lib/log.ts'
import { Gauge, createRegistry, type Registry } from '../../lib/metrics.ts'
import { ApiEventRecorder, SharedInformers } from './informers.ts'
import { LeaderElector } from './leader.ts'
import { defaultControllerConfig, type Controller, type ControllerConfig, type ControllerContext, type InformerFactory } from './types.ts'
import type { ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { Informer } from '../client/informer.ts'

export interface ControllerManagerOptions {
  client: ApiClient
  controllers: Controller[]
  logger?: Logger
  /** Registry the controllers register their metrics in (e.g. the apiserver's, so /metrics shows them). */
  metrics?: Registry
  config?: Partial<ControllerConfig>
  /** Unique per process; default `<hostname>_<uuid>`. */
  identity?: string
  /** Event source component. */
  component?: string
  election?: { leaseName?: string; namespace?: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number }
}

/** Shared informers of one term: once closed, a late start() from a controller still starting is a no-op. */
class TermInformers implements InformerFactory {
  #inner: SharedInformers
  #closed = false

  constructor(inner: SharedInformers) {
    this.#inner = inner
  }

  for<T extends KubeObject = KubeObject>(info: ResourceInfo): Informer<T> {
    return this.#inner.for<T>(info)
  }

  async start(): Promise<void> {
    if (!this.#closed) await this.#inner.start()
  }

  stop(): void {
    this.#inner.stop()
  }

  close(): void {
    this.#closed = true
    this.#inner.stop()
  }
}

interface Term {
  ctx: ControllerContext
  informers: TermInformers
  starting: Promise<void>
  metricsBefore: Set<string>
}

export class ControllerManager {
  readonly metrics: Registry
  readonly config: ControllerConfig
  #o: ControllerManagerOptions
  #log: Logger
  #elector: LeaderElector
  #term?: Term
  /** Serializes term starts and stops so a new term never overlaps the last. */
  #chain: Promise<void> = Promise.resolve()
  #leaderGauge: Gauge

  constructor(opts: ControllerManagerOptions) {
    this.#o = opts
    this.#log = (opts.logger ?? silentLogger()).child({ component: 'controller-manager' })
    this.metrics = opts.metrics ?? createRegistry()
    this.config = Object.freeze({ ...defaultControllerConfig, ...stripUndefined(opts.config ?? {}) })
    const identity = opts.identity ?? `${hostname()}_${randomUUID()}`
    const e = opts.election ?? {}
    this.#leaderGauge = new Gauge({ name: 'skiff_controller_manager_leader', help: '1 while this process leads the controllers', registers: [this.metrics] })
    this.#elector = new LeaderElector({
      client: opts.client,
      logger: this.#log,
      name: e.leaseName ?? 'skiff-controller-manager',
      namespace: e.namespace ?? 'kube-system',
      identity,
      leaseDurationMs: e.leaseDurationMs,
      renewDeadlineMs: e.renewDeadlineMs,
      retryPeriodMs: e.retryPeriodMs,
      onStartedLeading: () => this.#enqueue(() => this.#startTerm()),
      onStoppedLeading: () => this.#enqueue(() => this.#stopTerm()),
    })
  }

  get isLeader(): boolean {
    return this.#elector.isLeader
  }

  get identity(): string {
    return this.#elector.identity
  }

  async start(): Promise<void> {
    this.#elector.start()
  }

  /** Stops the controllers (if leading), then releases the Lease so another manager takes over at once. */
  async stop(): Promise<void> {
    await this.#elector.stop()
    await this.#chain
  }

  #enqueue(step: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(step).catch((e) => this.#log.error({ err: (e as Error).message }, 'controller manager step failed'))
    return this.#chain
  }

  #context(informers: TermInformers): ControllerContext {
    const { client } = this.#o
    return {
      client,
      informers,
      events: new ApiEventRecorder({ client, logger: this.#log, component: this.#o.component ?? 'skiff-controller-manager', concurrency: 64 }),
      logger: this.#log,
      metrics: this.metrics,
      config: this.config,
    }
  }

  async #startTerm(): Promise<void> {
    if (!this.#elector.isLeader) return
    const informers = new TermInformers(new SharedInformers({ client: this.#o.client, logger: this.#log }))
    const ctx = this.#context(informers)
    const metricsBefore = new Set(this.metrics.getMetricsAsArray().map((m) => m.name))
    const starting = (async () => {
      await Promise.all(
        this.#o.controllers.map(async (c) => {
          try {
            await c.start(ctx)
            this.#log.info({ controller: c.name }, 'controller started')
          } catch (e) {
            this.#log.error({ controller: c.name, err: (e as Error).message }, 'controller failed to start')
          }
        }),
      )
      await ctx.informers.start()
    })()
    this.#term = { ctx, informers, starting, metricsBefore }
    this.#leaderGauge.set(1)
    // Not awaited: a stop must be able to run while the informers still sync.
  }

  async #stopTerm(): Promise<void> {
    const term = this.#term
    if (!term) return
    this.#term = undefined
    this.#leaderGauge.set(0)
    // Closing the informers first ends any initial list still retrying, so `starting` settles.
    term.informers.close()
    await term.starting
    await Promise.all(
      this.#o.controllers.map(async (c) => {
        try {
          await c.stop()
        } catch (e) {
          this.#log.error({ controller: c.name, err: (e as Error).message }, 'controller failed to stop')
        }
      }),
    )
    for (const m of this.metrics.getMetricsAsArray()) if (!term.metricsBefore.has(m.name)) this.metrics.removeSingleMetric(m.name)
    this.#log.info('controllers stopped')
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
