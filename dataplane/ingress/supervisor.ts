// The ingress supervisor of one class on one node (runs inside the node
// agent). Informers keep the class's inputs cached; any change marks the
// snapshot dirty and, after a short coalescing delay, one new IngressSnapshot
// (snapshot-build.ts) goes to the worker pool (pool.ts), which swaps it into
// every running worker: no restart, no dropped request. The supervisor also
// serves /healthz, /readyz and /metrics on address:statusPort, and one
// supervisor per class (Lease kube-system/ingress-<class>-status) writes the
// Ingresses' status and conflict Events (status.ts).
//
// Lifecycle: start() resolves once the workers listen and the first snapshot
// is in use (readyz 200). stop() fails readiness at once and leaves the
// published addresses, keeps accepting for lameDuckMs (default 2 s: load
// balancers and clients that follow /readyz or status.loadBalancer move away
// meanwhile, instead of meeting a closed port), then drains the workers for
// drainMs while the informers keep the routes current, then stops.

import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism } from 'node:os'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { ApiEventRecorder } from '../../controlplane/controllers/informers.ts'
import { LeaderElector } from '../../controlplane/controllers/leader.ts'
import { monotonicMs } from '../../controlplane/client/lease-observer.ts'
import type { Logger } from '../../lib/log.ts'
import { Gauge, Histogram, Registry } from '../../lib/metrics.ts'
import { WorkerPool } from './pool.ts'
import { compileRouteTable, ingressKey } from './routes.ts'
import { buildSnapshot, challengesConfigMapName, classIngresses, defaultCertificateSecret, isDefaultClass, namedSecrets } from './snapshot-build.ts'
import type { IngressSnapshot } from './snapshot.ts'
import { PresencePublisher, presenceNamespace, presentAddresses } from './presence.ts'
import { AppliedRevision } from '../applied-revision.ts'
import { applyIngressStatus, dumpRoutes, planIngressStatus, sameJson, type Compiled } from './status.ts'
import { unresolvedRefs } from './refs.ts'
import { buildGatewayRouting, type GatewayBuild } from './gateway-build.ts'
import { applyGatewayStatus, gatewayInfo, planGatewayStatus } from './gateway-status.ts'
import { certificateProblems } from './snapshot-build.ts'
import { poolAddresses } from './status.ts'

export { ingressPoolLabel } from './snapshot-build.ts'

const info = {
  classes: lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!,
  ingresses: lookupResource('networking.k8s.io', 'v1', 'ingresses')!,
  services: lookupResource('', 'v1', 'services')!,
  slices: lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!,
  nodes: lookupResource('', 'v1', 'nodes')!,
  secrets: lookupResource('', 'v1', 'secrets')!,
  configmaps: lookupResource('', 'v1', 'configmaps')!,
  leases: lookupResource('coordination.k8s.io', 'v1', 'leases')!,
  namespaces: lookupResource('', 'v1', 'namespaces')!,
  ...gatewayInfo,
}

/** What the supervisor needs of the worker pool (pool.ts WorkerPool). */
export interface IngressPool {
  start(): Promise<void>
  apply(snapshot: IngressSnapshot): void
  readonly appliedGeneration: number
  waitForGeneration(generation: number, timeoutMs: number): Promise<void>
  metrics(): Promise<string>
  drain(drainMs: number): Promise<void>
  stop(): Promise<void>
}

export interface PoolConfig { className: string; addresses: string[]; httpPort: number; httpsPort: number; nodeName: string }

/**
 * The seam for the ACME engine (certs/, issue 5 point 7): started after the
 * first snapshot, stopped first. It stores challenge tokens in the ConfigMap
 * kube-system/skiff-ingress-<class>-acme-challenges (which every supervisor
 * watches) and certificates in the Secrets named in spec.tls.
 */
export interface IngressAcmeHook {
  start(ctx: IngressAcmeContext): void | Promise<void>
  stop(): void | Promise<void>
}

export interface IngressAcmeContext {
  client: ApiClient
  className: string
  nodeName: string
  logger: Logger
  /** The supervisor's registry, served on /metrics: the ACME metrics go here. */
  metrics: Registry
  /** The class's Ingresses, oldest first (cached objects: never mutate). */
  ingresses(): KubeObject[]
  ingressClass(): KubeObject | undefined
  /** fn runs after every new snapshot. */
  onChange(fn: () => void): void
  /** Challenges served at once, before the ConfigMap write comes back through the watch; merged into snapshot.challenges. */
  setChallenges(challenges: Record<string, string>): void
}

export interface IngressSupervisorOptions {
  /** The class's own identity (user skiff:ingress:<class>). */
  client: ApiClient
  className: string
  nodeName: string
  /** The node's InternalIP: workers and the status server bind here. */
  address: string
  /** The node's ExternalIP, if it has one: workers bind here too, and it is the address published in Ingress status. */
  externalAddress?: string
  httpPort?: number
  httpsPort?: number
  /** Worker processes (default: one per core). */
  workers?: number
  /** /healthz, /readyz, /metrics (default 10254; 0: a free port). */
  statusPort?: number
  drainMs?: number
  /** After readiness fails, new connections are still accepted this long before the listeners close (default 2000). */
  lameDuckMs?: number
  logger: Logger
  /** Log level of the worker processes (access logs are 'info'); default: inherited SKIFF_LOG_LEVEL. */
  workerLogLevel?: string
  /** Delay that coalesces bursts of changes into one snapshot (default 30 ms). */
  coalesceMs?: number
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number }
  acme?: IngressAcmeHook
  /** Tests of the supervisor alone; default: a WorkerPool. */
  createPool?: (o: { config: PoolConfig; workers: number; logger: Logger }) => IngressPool
}


export class IngressSupervisor {
  #o: IngressSupervisorOptions
  #log: Logger
  #inf: Record<'classes' | 'ingresses' | 'services' | 'slices' | 'nodes' | 'defaultCert' | 'challenges' | 'leases' | 'namespaces' | 'gatewayClasses' | 'gateways' | 'httpRoutes' | 'referenceGrants', Informer>
  /** The last Gateway API build (status facts) and the listener Secrets it names. */
  #gateway?: GatewayBuild
  #presence: PresencePublisher
  /** When this process last saw each presence Lease change (monotonic ms: freshness by local observation). */
  #leaseSeen = new Map<string, number>()
  #expiryTimer?: NodeJS.Timeout
  #secretInformers = new Map<string, Informer>()
  #pool?: IngressPool
  #server?: Server
  #elector: LeaderElector
  #recorder: ApiEventRecorder
  #registry = new Registry()
  #m: { generation: Gauge; build: Histogram; conflicts: Gauge; errors: Gauge }
  #generation = 0
  #firstGeneration = 0
  #lastContent = ''
  #compiled?: Compiled
  #dirty = { snapshot: false, status: false }
  #timer?: NodeJS.Timeout
  #statusLoop?: Promise<void>
  #emitted = new Set<string>()
  #extraChallenges: Record<string, string> = {}
  #onChange: Array<() => void> = []
  #running = false
  #draining = false
  #statusPort = 0
  #applied: AppliedRevision

  constructor(opts: IngressSupervisorOptions) {
    this.#o = opts
    this.#log = opts.logger.child({ component: 'ingress', class: opts.className })
    const inf = (resource: keyof typeof info, extra: { namespace?: string; fieldSelector?: string } = {}) =>
      new Informer({ client: opts.client, info: info[resource], logger: this.#log, resyncMs: 300_000, ...extra })
    this.#inf = {
      classes: inf('classes'), ingresses: inf('ingresses'), services: inf('services'), slices: inf('slices'), nodes: inf('nodes'),
      defaultCert: inf('secrets', { namespace: defaultCertificateSecret.namespace, fieldSelector: `metadata.name=${defaultCertificateSecret.name}` }),
      challenges: inf('configmaps', { namespace: 'kube-system', fieldSelector: `metadata.name=${challengesConfigMapName(opts.className)}` }),
      leases: inf('leases', { namespace: presenceNamespace }),
      namespaces: inf('namespaces'), gatewayClasses: inf('gatewayClasses'), gateways: inf('gateways'), httpRoutes: inf('httpRoutes'), referenceGrants: inf('referenceGrants'),
    }
    this.#presence = new PresencePublisher({
      client: opts.client, className: opts.className, nodeName: opts.nodeName, logger: this.#log,
      state: () => ({ address: opts.externalAddress ?? opts.address, ready: this.ready, generation: this.#pool?.appliedGeneration ?? 0, appliedRevision: this.#applied.value }),
    })
    // Routing inputs only: Node status changes (once a minute per node) would cost a presence write each.
    this.#applied = new AppliedRevision({
      sources: [this.#inf.classes, this.#inf.ingresses, this.#inf.services, this.#inf.slices, this.#inf.gateways, this.#inf.httpRoutes],
      idle: () => this.#running && !this.#draining && !this.#dirty.snapshot && !this.#timer && this.#generation > 0 && (this.#pool?.appliedGeneration ?? 0) >= this.#generation,
      report: () => void this.#presence.update(),
      pollMs: 100,
    })
    this.#recorder = new ApiEventRecorder({ client: opts.client, logger: this.#log, component: `skiff-ingress-${opts.className}` })
    this.#elector = new LeaderElector({
      client: opts.client, logger: this.#log, name: `ingress-${opts.className}-status`, namespace: 'kube-system',
      identity: `${opts.nodeName}_${randomUUID().slice(0, 8)}`, ...opts.leaderElection,
      onStartedLeading: () => this.#schedule('status'),
      onStoppedLeading: () => undefined,
    })
    const labels = ['class']
    const registers = [this.#registry]
    this.#m = {
      generation: new Gauge({ name: 'skiff_ingress_snapshot_generation', help: 'Generation of the last snapshot sent to the workers', labelNames: labels, registers }),
      build: new Histogram({ name: 'skiff_ingress_snapshot_build_seconds', help: 'Time to build and compile one snapshot', labelNames: labels, buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers }),
      conflicts: new Gauge({ name: 'skiff_ingress_conflicts', help: 'Route conflicts between Ingresses of the class', labelNames: labels, registers }),
      errors: new Gauge({ name: 'skiff_ingress_config_errors', help: 'Broken Ingresses and unusable TLS Secrets of the class', labelNames: labels, registers }),
    }
  }

  /** The bound status port (after start). */
  get statusPort(): number {
    return this.#statusPort
  }

  get generation(): number {
    return this.#generation
  }

  get isLeader(): boolean {
    return this.#elector.isLeader
  }

  /** The store revision whose Ingresses, Services and EndpointSlices every worker routes by (see ../applied-revision.ts). */
  get appliedRevision(): number {
    return this.#applied.value
  }

  get ready(): boolean {
    return this.#running && !this.#draining && this.#firstGeneration > 0 && (this.#pool?.appliedGeneration ?? 0) >= this.#firstGeneration
  }

  /** Resolves once the workers listen and serve the first snapshot; on failure everything started is stopped again. */
  async start(): Promise<void> {
    this.#running = true
    try {
      await this.#start()
    } catch (e) {
      await this.#teardown()
      throw e
    }
  }

  async #start(): Promise<void> {
    const o = this.#o
    await this.#startStatusServer()
    for (const [name, inf] of Object.entries(this.#inf)) {
      if (name === 'leases') continue
      // Nodes matter to both: status addresses, and endpoints on dead hosts (an unchanged snapshot is dropped).
      const mark = () => this.#schedule('both')
      inf.addHandlers({ onAdd: mark, onUpdate: (a, b) => a !== b && mark(), onDelete: mark })
    }
    const seen = (l: KubeObject) => {
      this.#leaseSeen.set(l.metadata.name!, monotonicMs())
      this.#schedule('status')
    }
    this.#inf.leases.addHandlers({ onAdd: seen, onUpdate: (a, b) => a !== b && seen(b), onDelete: (l) => (this.#leaseSeen.delete(l.metadata.name!), this.#schedule('status')) })
    await Promise.all(Object.values(this.#inf).map((i) => i.start()))
    // Certificates before the first snapshot, so the workers do not start without them (bounded: a 403 retries forever).
    await this.#syncSecretInformers(5_000)
    const config: PoolConfig = { className: o.className, addresses: [o.address, ...(o.externalAddress ? [o.externalAddress] : [])], httpPort: o.httpPort ?? 80, httpsPort: o.httpsPort ?? 443, nodeName: o.nodeName }
    const workers = o.workers ?? availableParallelism()
    const pool = o.createPool ? o.createPool({ config, workers, logger: this.#log }) : new WorkerPool({ config, workers, logger: this.#log, logLevel: o.workerLogLevel })
    this.#pool = pool
    await pool.start()
    this.#syncSnapshot()
    this.#firstGeneration = this.#generation
    await pool.waitForGeneration(this.#firstGeneration, 30_000)
    this.#applied.poll()
    this.#presence.start()
    this.#applied.start()
    this.#elector.start()
    await o.acme?.start(this.#acmeContext())
    this.#log.info({ addresses: config.addresses, http: config.httpPort, https: config.httpsPort, workers, statusPort: this.#statusPort, generation: this.#generation }, 'ingress controller ready')
  }

  /** Fail readiness at once, drain the workers (routes stay current meanwhile), then stop watching. */
  async stop(): Promise<void> {
    if (!this.#running || this.#draining) return
    this.#draining = true
    this.#log.info({ drainMs: this.#o.drainMs ?? 10_000 }, 'draining')
    // Out of the published addresses first: as the leader, write status without this node before letting go.
    await this.#presence.withdraw()
    if (this.#elector.isLeader) await this.#syncStatus({ withdrawing: true }).catch((e) => this.#log.warn({ err: (e as Error).message }, 'final status write failed'))
    const elector = this.#elector.stop()
    await Promise.resolve(this.#o.acme?.stop()).catch((e) => this.#log.warn({ err: (e as Error).message }, 'acme stop failed'))
    // Lame duck: readiness fails and the address is withdrawn, but the ports still answer for a moment.
    const lameDuckMs = Math.max(0, Math.min(this.#o.lameDuckMs ?? 2_000, this.#o.drainMs ?? 10_000))
    if (lameDuckMs > 0) await new Promise((r) => setTimeout(r, lameDuckMs))
    if (this.#pool) {
      await this.#pool.drain(this.#o.drainMs ?? 10_000).catch((e) => this.#log.warn({ err: (e as Error).message }, 'drain failed'))
      await this.#pool.stop()
    }
    await elector
    await this.#teardown()
  }

  async #teardown(): Promise<void> {
    await this.#statusLoop
    this.#running = false
    this.#applied.stop()
    clearTimeout(this.#timer)
    clearTimeout(this.#expiryTimer)
    await this.#presence.withdraw()
    await this.#elector.stop()
    await this.#pool?.stop()
    for (const inf of [...Object.values(this.#inf), ...this.#secretInformers.values()]) inf.stop()
    this.#secretInformers.clear()
    const server = this.#server
    if (server) await new Promise<void>((r) => {
      server.close(() => r())
      server.closeAllConnections()
    })
  }

  /** The compiled table of the last snapshot, for /debug/ingress. */
  debugText(): string {
    const c = this.#compiled
    const head = `class ${this.#o.className} on ${this.#o.nodeName} (${[this.#o.address, this.#o.externalAddress].filter(Boolean).join(', ')}) generation ${this.#generation} applied ${this.#pool?.appliedGeneration ?? 0} ${this.ready ? 'ready' : 'not ready'}${this.isLeader ? ', status leader' : ''}\n`
    return c ? head + dumpRoutes(c) : head + 'no snapshot yet\n'
  }

  #schedule(what: 'snapshot' | 'status' | 'both'): void {
    if (what !== 'status') this.#dirty.snapshot = true
    if (what !== 'snapshot') this.#dirty.status = true
    if (this.#timer || !this.#running) return
    this.#timer = setTimeout(() => this.#flush(), this.#o.coalesceMs ?? 30)
  }

  #flush(): void {
    this.#timer = undefined
    if (!this.#running) return
    if (this.#dirty.snapshot && this.#pool) {
      this.#dirty.snapshot = false
      try {
        this.#syncSnapshot()
      } catch (e) {
        this.#log.error({ err: (e as Error).message }, 'snapshot build failed; retrying')
        this.#retryLater('snapshot', 1_000)
      }
      void this.#syncSecretInformers(0)
    }
    if (this.#dirty.status && !this.#statusLoop) {
      this.#statusLoop = this.#syncStatus()
        .catch((e) => this.#log.error({ err: (e as Error).message }, 'ingress status sync failed'))
        .finally(() => {
          this.#statusLoop = undefined
          if (this.#dirty.status) this.#schedule('status')
        })
    }
  }

  #retryLater(what: 'snapshot' | 'status', ms: number): void {
    setTimeout(() => this.#schedule(what), ms).unref()
  }

  /** Build, drop a no-op (same content as the last one), compile for status and metrics, send to the workers. */
  #syncSnapshot(): void {
    const started = performance.now()
    const secrets = [...this.#secretInformers.values()].flatMap((i) => i.list())
    const gateway = buildGatewayRouting({
      className: this.#o.className,
      gatewayClasses: this.#inf.gatewayClasses.list(), gateways: this.#inf.gateways.list(), httpRoutes: this.#inf.httpRoutes.list(),
      referenceGrants: this.#inf.referenceGrants.list(), namespaces: this.#inf.namespaces.list(), services: this.#inf.services.list(),
      certificateProblems: certificateProblems(secrets, secrets.map(ingressKey)),
    })
    this.#gateway = gateway
    const snapshot = buildSnapshot({
      gateway,
      generation: 0,
      className: this.#o.className,
      ingressClasses: this.#inf.classes.list(),
      ingresses: this.#inf.ingresses.list(),
      services: this.#inf.services.list(),
      endpointSlices: this.#inf.slices.list(),
      secrets,
      defaultCertificate: this.#inf.defaultCert.list()[0],
      challenges: { ...this.#inf.challenges.list()[0]?.data, ...this.#extraChallenges },
      nodes: this.#inf.nodes.list(),
    })
    const content = JSON.stringify(snapshot)
    if (content === this.#lastContent) return
    this.#lastContent = content
    snapshot.generation = ++this.#generation
    const { table, conflicts, broken } = compileRouteTable(snapshot.ingresses, { className: snapshot.className, isDefaultClass: snapshot.isDefaultClass })
    this.#compiled = { table, conflicts, broken, snapshot }
    const certErrors = Object.values(snapshot.certificates).filter((c) => 'error' in c).length
    const cls = { class: this.#o.className }
    this.#m.generation.set(cls, snapshot.generation)
    this.#m.conflicts.set(cls, conflicts.length)
    this.#m.errors.set(cls, broken.length + certErrors)
    this.#pool!.apply(snapshot)
    this.#m.build.observe(cls, (performance.now() - started) / 1000)
    this.#log.debug({ generation: snapshot.generation, ingresses: snapshot.ingresses.length, conflicts: conflicts.length, broken: broken.length }, 'snapshot applied')
    this.#dirty.status = true
    for (const fn of this.#onChange) fn()
  }

  /** One Secret informer per Secret named in spec.tls, pinned to its name (the only way the ingress role may list Secrets). */
  async #syncSecretInformers(waitMs: number): Promise<void> {
    const wanted = namedSecrets(this.#classIngresses())
    for (const key of this.#gateway?.secrets ?? []) wanted.add(key)
    for (const [key, inf] of this.#secretInformers) {
      if (wanted.has(key)) continue
      inf.stop()
      this.#secretInformers.delete(key)
      this.#schedule('snapshot')
    }
    const starting: Promise<void>[] = []
    for (const key of wanted) {
      if (this.#secretInformers.has(key)) continue
      const [namespace, name] = key.split('/') as [string, string]
      const inf = new Informer({ client: this.#o.client, info: info.secrets, logger: this.#log, namespace, fieldSelector: `metadata.name=${name}`, resyncMs: 300_000 })
      // Status too: a Secret that stops (or starts) matching its key changes the ResolvedRefs condition.
      const mark = () => this.#schedule('both')
      inf.addHandlers({ onAdd: mark, onUpdate: (a, b) => a !== b && mark(), onDelete: mark })
      this.#secretInformers.set(key, inf)
      // Once listed, plan the status again: a Secret that does not exist brings no event of its own.
      const p = inf.start().then(() => this.#schedule('both'), (e) => this.#log.warn({ secret: key, err: (e as Error).message }, 'secret informer failed'))
      starting.push(p)
    }
    if (waitMs > 0 && starting.length) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.all(starting), new Promise((r) => (timer = setTimeout(r, waitMs)))])
      clearTimeout(timer)
    }
  }

  /** Secrets named in spec.tls whose informer has not listed yet: not reported missing before they are looked up. */
  #unseenSecrets(): Set<string> {
    const unseen = new Set<string>()
    for (const key of namedSecrets(this.#classIngresses())) if (!this.#secretInformers.get(key)?.hasSynced) unseen.add(key)
    return unseen
  }

  #classIngresses(): KubeObject[] {
    const className = this.#o.className
    return classIngresses(this.#inf.ingresses.list(), { className, isDefaultClass: isDefaultClass(this.#inf.classes.list(), className) })
  }

  /** The elected supervisor writes every class Ingress's addresses and conditions, and Events for new problems. */
  async #syncStatus(o: { withdrawing?: boolean } = {}): Promise<void> {
    this.#dirty.status = false
    const c = this.#compiled
    if (!c || !this.#elector.isLeader || (this.#draining && !o.withdrawing)) return
    const mine = this.#classIngresses()
    const present = presentAddresses({ className: this.#o.className, leases: this.#inf.leases.list(), observedAtMs: (n) => this.#leaseSeen.get(n), nowMs: monotonicMs() })
    if (o.withdrawing) present.addresses.delete(this.#o.externalAddress ?? this.#o.address)
    // Look again when the first presence Lease would expire unrenewed (a dead controller).
    clearTimeout(this.#expiryTimer)
    if (present.nextExpiryMs !== undefined && !o.withdrawing) {
      this.#expiryTimer = setTimeout(() => this.#schedule('status'), Math.max(0, present.nextExpiryMs - monotonicMs()) + 50)
      this.#expiryTimer.unref()
    }
    if (this.#gateway) {
      const addresses = poolAddresses(this.#inf.nodes.list(), this.#o.className).filter((ip) => present.addresses.has(ip))
      const objs = { gatewayClasses: this.#inf.gatewayClasses.list(), gateways: this.#inf.gateways.list(), httpRoutes: this.#inf.httpRoutes.list() }
      const updates = planGatewayStatus({ build: this.#gateway, ...objs, addresses, now: new Date().toISOString().replace(/\.\d+Z$/, 'Z') })
      if (updates.length) {
        const objects = new Map<string, KubeObject>()
        for (const [kind, list] of [['GatewayClass', objs.gatewayClasses], ['Gateway', objs.gateways], ['HTTPRoute', objs.httpRoutes]] as const) for (const x of list) objects.set(`${kind}/${ingressKey(x)}`, x)
        if (!(await applyGatewayStatus({ client: this.#o.client, logger: this.#log, updates, objects }))) this.#retryLater('status', 1_000)
      }
    }
    const plan = planIngressStatus({
      serving: present.addresses,
      className: this.#o.className, ingresses: mine, nodes: this.#inf.nodes.list(),
      conflicts: c.conflicts, broken: c.broken, emitted: this.#emitted, now: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      unresolved: unresolvedRefs(c.snapshot, this.#unseenSecrets()),
    })
    if (plan.updates.length === 0 && plan.events.length === 0 && sameJson([...plan.emitted], [...this.#emitted])) return
    this.#emitted = plan.emitted
    const ok = await applyIngressStatus({ client: this.#o.client, recorder: this.#recorder, logger: this.#log, plan, ingresses: new Map(mine.map((i) => [ingressKey(i), i])) })
    if (!ok) this.#retryLater('status', 1_000)
  }

  async #startStatusServer(): Promise<void> {
    const server = createServer((req, res) => void this.#serveStatus(req.url ?? '/', res))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#o.statusPort ?? 10254, this.#o.address, () => resolve())
    })
    this.#statusPort = (server.address() as AddressInfo).port
  }

  /** The workers' metrics (aggregated over the pool) and the supervisor's own, as /metrics serves them; the agent's kubelet serves them too. */
  async metricsText(): Promise<string> {
    const pool = this.#pool ? await this.#pool.metrics() : ''
    return `${pool.trimEnd()}\n${await this.#registry.metrics()}`
  }

  async #serveStatus(url: string, res: import('node:http').ServerResponse): Promise<void> {
    const path = url.split('?')[0]
    const text = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type })
      res.end(body)
    }
    if (path === '/healthz') return text(this.#running ? 200 : 503, this.#running ? 'ok\n' : 'stopped\n')
    if (path === '/readyz') return text(this.ready ? 200 : 503, this.ready ? 'ok\n' : this.#draining ? 'draining\n' : 'not ready\n')
    if (path === '/metrics') {
      try {
        return text(200, await this.metricsText(), this.#registry.contentType)
      } catch (e) {
        return text(500, `metrics: ${(e as Error).message}\n`)
      }
    }
    if (path === '/debug/ingress') return text(200, this.debugText())
    return text(404, 'not found\n')
  }

  #acmeContext(): IngressAcmeContext {
    return {
      client: this.#o.client, className: this.#o.className, nodeName: this.#o.nodeName, logger: this.#log.child({ component: 'acme' }), metrics: this.#registry,
      ingresses: () => this.#classIngresses(),
      ingressClass: () => this.#inf.classes.get(this.#o.className),
      onChange: (fn) => void this.#onChange.push(fn),
      setChallenges: (challenges) => {
        this.#extraChallenges = { ...challenges }
        this.#schedule('snapshot')
      },
    }
  }
}

