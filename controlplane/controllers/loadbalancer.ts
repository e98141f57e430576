// The LoadBalancer controller: every Service of type LoadBalancer (without a
// loadBalancerClass, or with `skiff.dev/lb`) gets one IPv4 address of the
// configured pool in status.loadBalancer.ingress; every node's data plane
// answers on it. planLoadBalancers (loadbalancer-plan.ts) decides; this file
// only feeds it from the Service cache and writes /status.
//
// Allocation is global, so there is one queue key: any Service change
// re-plans all of them (bursts coalesce). The used set is never kept apart
// from the Services: it is rebuilt from their statuses on every sync, plus
// our own writes the cache does not show yet. Leadership is not fencing: two
// controllers overlapping for a moment could give one address twice; the
// next sync of either sees both and the younger Service gives it back.
// Every write is a PUT of /status carrying the Service's resourceVersion.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { Counter, Gauge } from '../../lib/metrics.ts'
import { defaultLoadBalancerPool, parsePool, planLoadBalancers, poolSize, type LBWrite, type PoolRange } from './loadbalancer-plan.ts'
import type { Controller, ControllerConfig, ControllerContext } from './types.ts'

const servicesInfo = lookupResource('', 'v1', 'services')!

/** ControllerConfig plus the pool setting (to be moved into ControllerConfig itself). */
export type LoadBalancerConfig = ControllerConfig & {
  /** CIDRs, `a.b.c.d-e.f.g.h` ranges or single addresses (default 10.112.0.0/24). */
  loadBalancerPool?: string[]
}

/** How long one of our writes may stay invisible in the cache before its address is no longer held for it. */
const pendingHoldMs = 10_000
/** How long an address the apiserver refused (422: claimed elsewhere) is left out of fresh picks. */
const avoidMs = 10_000

export class LoadBalancerController implements Controller {
  readonly name = 'loadbalancer'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #services?: Informer
  #pool: PoolRange[] = []
  #poolName = ''
  /** Writes not yet in the cache, and addresses refused lately; times are performance.now() (immune to wall-clock steps). */
  #pending = new Map<string, { ip: string; rv: string; at: number }>()
  #avoid = new Map<string, number>()
  /** The last Warning message recorded per Service, so each distinct one is recorded once. */
  #warned = new Map<string, string>()
  #writes?: Counter
  #free?: Gauge

  async start(ctx: ControllerContext): Promise<void> {
    const entries = (ctx.config as LoadBalancerConfig).loadBalancerPool ?? defaultLoadBalancerPool
    this.#pool = parsePool(entries) // a bad setting fails at start, not on the first Service
    this.#poolName = entries.join(',')
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#writes = new Counter({ name: 'loadbalancer_controller_writes_total', help: 'Service status writes by the LoadBalancer controller, by what they did', labelNames: ['op'], registers: [ctx.metrics] })
    this.#free = new Gauge({ name: 'loadbalancer_pool_free_addresses', help: 'Addresses of the LoadBalancer pool no Service holds', registers: [ctx.metrics] })
    this.#services = ctx.informers.for(servicesInfo)
    const poke = () => this.#queue!.add('services')
    this.#services.addHandlers({ onAdd: poke, onUpdate: poke, onDelete: poke })
    // Never plan from a half-filled cache: an address held by an unlisted Service would look free.
    await ctx.informers.start()
    this.#queue.start(() => this.#sync())
    poke()
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
    this.#pending.clear()
    this.#avoid.clear()
    this.#warned.clear()
  }

  async #sync(): Promise<void> {
    const services = this.#services!.list()
    this.#forgetSeen(services)
    const plan = planLoadBalancers({
      services,
      pool: this.#pool,
      poolName: this.#poolName,
      pending: new Map([...this.#pending].map(([k, p]) => [k, p.ip])),
      avoid: new Set(this.#avoid.keys()),
    })
    this.#free!.set(poolSize(this.#pool) - plan.used)
    for (const u of plan.unassigned) this.#warn(u.key, u.message)
    // A Service that left the failed state may fail again later with the same message: that is news again.
    const failing = new Set(plan.unassigned.map((u) => u.key))
    for (const key of this.#warned.keys()) if (!failing.has(key)) this.#warned.delete(key)
    let failed: unknown
    for (const w of plan.writes) {
      try {
        await this.#write(w)
      } catch (e) {
        failed ??= e // the others still get written; the queue retries the whole plan
      }
    }
    if (failed) throw failed
  }

  async #write(w: LBWrite): Promise<void> {
    const ctx = this.#ctx!
    const svc = this.#services!.get(w.key)
    if (!svc) return
    const status = { ...svc.status, loadBalancer: w.ingress.length ? { ...svc.status?.loadBalancer, ingress: w.ingress } : {} }
    let written: KubeObject
    try {
      written = await ctx.client.update(servicesInfo, { ...svc, status }, 'status')
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return
      // 422: the apiserver holds that address for another Service (see README); leave it out for a while.
      if (e instanceof ApiClientError && e.status === 422 && w.ip) this.#avoid.set(w.ip, performance.now())
      throw e // 409: the Service changed; the retry plans again from a fresher cache
    }
    this.#pending.set(w.key, { ip: w.ip ?? '', rv: written.metadata.resourceVersion!, at: performance.now() })
    const old = (svc.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip ?? i.hostname).join(',')
    if (w.ip) {
      this.#writes!.inc({ op: old ? 'reassign' : 'assign' })
      this.#warned.delete(w.key)
      ctx.events.event(written, 'Normal', 'IPAllocated', `Assigned IP ["${w.ip}"]`)
      ctx.logger.info({ service: w.key, ip: w.ip, previous: old || undefined }, 'assigned LoadBalancer address')
    } else {
      this.#writes!.inc({ op: 'release' })
      ctx.logger.info({ service: w.key, previous: old }, 'released LoadBalancer address')
    }
  }

  #warn(key: string, message: string): void {
    const svc = this.#services!.get(key)
    if (!svc || this.#warned.get(key) === message) return
    this.#warned.set(key, message)
    this.#ctx!.events.event(svc, 'Warning', 'AllocationFailed', message)
    this.#ctx!.logger.warn({ service: key, pool: this.#poolName }, message)
  }

  /** Drop pending writes the cache now shows (or whose Service is gone, or too old) and refusals that aged out. */
  #forgetSeen(services: KubeObject[]): void {
    const now = performance.now()
    const byKey = new Map(services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]))
    for (const [key, p] of this.#pending) {
      const s = byKey.get(key)
      if (!s || Number(s.metadata.resourceVersion) >= Number(p.rv) || now - p.at > pendingHoldMs) this.#pending.delete(key)
    }
    for (const [ip, at] of this.#avoid) if (now - at > avoidMs) this.#avoid.delete(ip)
  }
}
