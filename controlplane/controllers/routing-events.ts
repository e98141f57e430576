// "Applied on n/n nodes" in `kubectl describe svc|ingress` (issue 11).
// kubectl's describers print a fixed set of fields and the object's Events,
// so the news travels as Events: when a change of a Service (the Service or
// its EndpointSlices) or of an Ingress (the Ingress, its backend Services
// and their slices) has been applied by every serving node,
//   Normal  RoutingApplied  applied on 3/3 nodes: revision 1234, 180 ms after the change was seen
// and when it has not after warnAfterMs (10 s),
//   Warning RoutingNotApplied  revision 1234 applied on 2/3 nodes after 10 s; not yet: node-3 (service-proxy at 1200)
// The arithmetic (targets, serving appliers) is ../api/routing-applied.ts,
// the same as the Applied column of `kubectl get -o wide`; a node counts
// while its Lease is seen renewed by this process's monotonic clock.
//
// One Event object per object and reason, updated in place (count, message,
// lastTimestamp) as Kubernetes' event correlator does for repeats: a Service
// changing all day keeps one RoutingApplied Event, "(x40 over 3h)".

import { createHash } from 'node:crypto'
import { lookupResource } from '../api/resources.ts'
import {
  ingressAppliers,
  ingressBackendServices,
  ingressTarget,
  nodeLeaseNamespace,
  presenceLeaseNamespace,
  proxyAppliers,
  serviceTarget,
  servingAppliers,
  type Applier,
} from '../api/routing-applied.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { eventObject } from './informers.ts'
import { LeaseObserver } from '../client/lease-observer.ts'
import type { Controller, ControllerContext } from './types.ts'

const servicesInfo = lookupResource('', 'v1', 'services')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const ingressesInfo = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const eventsInfo = lookupResource('', 'v1', 'events')!
const sliceServiceLabel = 'kubernetes.io/service-name'

export interface RoutingProgress {
  /** A revision waited for, and since when (this process's monotonic clock). */
  target: number
  sinceMs: number
}

export interface RoutingState {
  /** The newest target announced (or found applied at first sight); 0: none yet. */
  announced: number
  /** The newest target seen, for the time an announcement reports. */
  latest?: RoutingProgress
  /** The oldest target not yet applied everywhere: the one a Warning is about. */
  oldest?: RoutingProgress & { warned: boolean }
}

export interface RoutingDecision {
  state: RoutingState
  event?: { type: 'Normal' | 'Warning'; reason: 'RoutingApplied' | 'RoutingNotApplied'; message: string }
}

/**
 * What to say about one object now. Pure. No state: the object was never
 * seen (a starting controller), and a target already applied everywhere is
 * taken as announced without an Event. No serving applier: nothing to wait
 * for. While changes keep coming, the Warning is about the oldest revision
 * some node has not applied for warnAfterMs, not about a target that moves.
 */
export function decideRouting(o: { state?: RoutingState; target: number; appliers: Applier[]; nowMs: number; warnAfterMs: number; unit: string }): RoutingDecision {
  const state: RoutingState = o.state ?? { announced: 0 }
  if (o.target <= state.announced || o.appliers.length === 0) return { state: { announced: state.announced } }
  const n = o.appliers.length
  const latest = state.latest?.target === o.target ? state.latest : { target: o.target, sinceMs: o.nowMs }
  if (o.appliers.every((a) => a.revision >= o.target)) {
    if (!o.state) return { state: { announced: o.target } }
    return {
      state: { announced: o.target },
      event: { type: 'Normal', reason: 'RoutingApplied', message: `applied on ${n}/${n} ${o.unit}: revision ${o.target}, ${Math.round(o.nowMs - latest.sinceMs)} ms after the change was seen` },
    }
  }
  // The oldest revision still missing somewhere; once every node has it, the wait is for the newest one, from when it was seen.
  let oldest = state.oldest ?? { target: o.target, sinceMs: o.nowMs, warned: false }
  if (o.appliers.every((a) => a.revision >= oldest.target)) oldest = { target: latest.target, sinceMs: latest.sinceMs, warned: false }
  const next: RoutingState = { announced: state.announced, latest, oldest }
  if (!oldest.warned && o.nowMs - oldest.sinceMs >= o.warnAfterMs) {
    next.oldest = { ...oldest, warned: true }
    const behind = o.appliers.filter((a) => a.revision < oldest.target)
    const missing = behind.map((a) => `${a.node} (${a.component} at ${a.revision})`).sort()
    return {
      state: next,
      event: { type: 'Warning', reason: 'RoutingNotApplied', message: `revision ${oldest.target} applied on ${n - behind.length}/${n} ${o.unit} after ${Math.round((o.nowMs - oldest.sinceMs) / 1000)} s; not yet: ${missing.join(', ')}` },
    }
  }
  return { state: next }
}

/** The name of the one Event kept per object and reason (client-go names are <object>.<hex>). */
export function routingEventName(obj: KubeObject, reason: string): string {
  return `${obj.metadata.name}.${createHash('sha256').update(`${obj.metadata.uid}/${reason}`).digest('hex').slice(0, 16)}`
}

export class RoutingEventsController implements Controller {
  readonly name = 'routing-events'
  #ctx?: ControllerContext
  #services?: Informer
  #slices?: Informer
  #ingresses?: Informer
  #leases?: Informer
  #observer = new LeaseObserver()
  #states = new Map<string, RoutingState>()
  #dirty = new Set<string>()
  #timer?: NodeJS.Timeout
  #running?: Promise<void>
  #warnAfterMs = 10_000
  #periodMs: number

  constructor(o: { periodMs?: number } = {}) {
    this.#periodMs = o.periodMs ?? 250
  }

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#warnAfterMs = ctx.config.routingWarnAfterMs ?? 10_000
    this.#services = ctx.informers.for(servicesInfo)
    this.#slices = ctx.informers.for(slicesInfo)
    this.#ingresses = ctx.informers.for(ingressesInfo)
    this.#leases = ctx.informers.for(leasesInfo)
    const svc = (o: KubeObject) => this.#dirty.add(`Service ${keyFor(o)}`)
    const ing = (o: KubeObject) => this.#dirty.add(`Ingress ${keyFor(o)}`)
    const slice = (o: KubeObject) => {
      const name = o.metadata?.labels?.[sliceServiceLabel]
      if (!name) return
      this.#dirty.add(`Service ${o.metadata.namespace}/${name}`)
      this.#ingressesOf(o.metadata.namespace!, name).forEach(ing)
    }
    this.#services.addHandlers({ onAdd: (o) => (svc(o), this.#ingressesOf(o.metadata.namespace!, o.metadata.name!).forEach(ing)), onUpdate: (_a, o) => (svc(o), this.#ingressesOf(o.metadata.namespace!, o.metadata.name!).forEach(ing)), onDelete: (o) => void this.#states.delete(`Service ${keyFor(o)}`) })
    this.#slices.addHandlers({ onAdd: slice, onUpdate: (_a, o) => slice(o), onDelete: slice })
    this.#ingresses.addHandlers({ onAdd: ing, onUpdate: (_a, o) => ing(o), onDelete: (o) => void this.#states.delete(`Ingress ${keyFor(o)}`) })
    const seen = this.#observer.handlers()
    const routingLease = (l: KubeObject) => l.metadata?.namespace === nodeLeaseNamespace || (l.metadata?.namespace === presenceLeaseNamespace && l.metadata?.name?.startsWith('ingress-') === true)
    this.#leases.addHandlers({
      onAdd: (l) => routingLease(l) && (seen.onAdd!(l), this.#pendingDirty()),
      onUpdate: (a, l) => routingLease(l) && (seen.onUpdate!(a, l), this.#pendingDirty()),
      onDelete: (l) => routingLease(l) && (seen.onDelete!(l), this.#pendingDirty()),
    })
    const tick = () => {
      this.#running ??= this.#pass().catch((e) => ctx.logger.warn({ controller: this.name, err: (e as Error).message }, 'routing events pass failed')).finally(() => (this.#running = undefined))
    }
    this.#timer = setInterval(tick, this.#periodMs)
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  #ingressesOf(ns: string, service: string): KubeObject[] {
    return (this.#ingresses?.list() ?? []).filter((i) => i.metadata.namespace === ns && ingressBackendServices(i).has(service))
  }

  /** Lease news can finish (or end the wait of) anything pending. */
  #pendingDirty(): void {
    for (const [key, s] of this.#states) if (s.oldest) this.#dirty.add(key)
  }

  async #pass(): Promise<void> {
    // Deadlines are clock-driven: every waiting object is looked at each pass.
    this.#pendingDirty()
    if (!this.#dirty.size) return
    const keys = [...this.#dirty]
    this.#dirty.clear()
    const leases = this.#leases!.list().filter((l) => l.metadata.namespace === nodeLeaseNamespace || l.metadata.namespace === presenceLeaseNamespace)
    const appliers = servingAppliers(leases, (l) => this.#observer.fresh(l))
    const nowMs = this.#observer.now()
    for (const key of keys) {
      const [kind, nsName] = key.split(' ') as ['Service' | 'Ingress', string]
      const obj = (kind === 'Service' ? this.#services : this.#ingresses)!.get(nsName)
      if (!obj) {
        this.#states.delete(key)
        continue
      }
      const [ns] = nsName.split('/')
      const slices = this.#slices!.list().filter((s) => s.metadata.namespace === ns)
      const target = kind === 'Service' ? serviceTarget(obj, slices) : ingressTarget(obj, this.#services!.list().filter((s) => s.metadata.namespace === ns), slices)
      const mine = kind === 'Service' ? proxyAppliers(appliers) : ingressAppliers(obj, appliers)
      const d = decideRouting({ state: this.#states.get(key), target, appliers: mine, nowMs, warnAfterMs: this.#warnAfterMs, unit: kind === 'Service' ? 'nodes' : 'ingress nodes' })
      this.#states.set(key, d.state)
      if (d.event) await this.#record({ ...obj, apiVersion: kind === 'Service' ? 'v1' : 'networking.k8s.io/v1', kind }, d.event)
    }
  }

  /** Create the object's Event for this reason, or count one more on it. */
  async #record(obj: KubeObject, e: NonNullable<RoutingDecision['event']>): Promise<void> {
    const ctx = this.#ctx!
    const ns = obj.metadata.namespace!
    const name = routingEventName(obj, e.reason)
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    try {
      const old = await ctx.client.get(eventsInfo, ns, name).catch((err) => {
        if (err instanceof ApiClientError && err.status === 404) return undefined
        throw err
      })
      if (old) {
        await ctx.client.patch(eventsInfo, ns, name, { count: Number(old.count ?? 1) + 1, message: e.message, type: e.type, lastTimestamp: now }, 'application/merge-patch+json')
        return
      }
      await ctx.client.create(eventsInfo, ns, eventObject(obj, { name, type: e.type, reason: e.reason, message: e.message, component: this.name }))
    } catch (err) {
      ctx.logger.debug({ controller: this.name, err: (err as Error).message, reason: e.reason }, 'event not recorded')
    }
  }
}
