// The userspace backend: makes a RoutingTable real with Node.js TCP and UDP
// listeners on the service addresses, for hosts without kernel NAT.
//
// apply() is a diff: new listeners open, removed ones close, endpoint sets are
// swapped in place (connections already open keep flowing; only new ones see
// the change). It is atomic from the outside: addresses and listeners are
// added first, and if any listener fails to open, everything this apply added
// is taken back and the previous state stays in place. Removals happen only
// after every addition succeeded.
//
// Limits (see README.md): the client's source address cannot be preserved, so
// externalTrafficPolicy Local only restricts the choice to local endpoints;
// agents sharing one host and one ClusterIP:port (reusePort) each get a share
// of the connections, whatever node the client is on.

import type { Logger } from '../../lib/log.ts'
import { silentLogger } from '../../lib/log.ts'
import type { Registry } from '../../lib/metrics.ts'
import type { Backend, RoutingTable } from './types.ts'
import { ServiceAddresses } from './userspace-addrs.ts'
import { createProxyMetrics, type ProxyMetrics } from './userspace-metrics.ts'
import { networkInterfaces } from 'node:os'
import type { Endpoint, NodeView, ServicePort } from './types.ts'
import { diffListeners, EndpointPicker, endpointKey, planUserspace, route, type ListenerSpec, type PickerClock, type UserspacePlan } from './userspace-plan.ts'
import { TcpListener, type ListenerContext, type ProxyListener } from './userspace-tcp.ts'
import { UdpListener } from './userspace-udp.ts'

export interface UserspaceBackendOptions {
  /** Owner of the service addresses on the shared interface, the node name (default: the table's node name). */
  owner?: string
  /** Interface carrying the service addresses (default skiff-svc0). */
  iface?: string
  /** Where owners record the addresses they need (default /run/skiff/service-addresses). */
  stateDir?: string
  registry?: Registry
  log?: Logger
  /** A connect to an endpoint that takes longer fails over to another endpoint (default 5 s). */
  connectTimeoutMs?: number
  /** UDP sessions idle this long are closed (default 30 s). */
  udpIdleMs?: number
  /** Random source and clock for endpoint choice (tests). */
  clock?: PickerClock
}

export class UserspaceApplyError extends Error {
  readonly code = 'SKIFF_ERR_SERVICE_PROXY_LISTEN'
}

export interface UserspaceDebugTable {
  generation: number
  addresses: string[]
  listeners: (ListenerSpec & { endpoints: string[] })[]
  skipped: UserspacePlan['skipped']
}

export class UserspaceBackend implements Backend {
  readonly name = 'userspace' as const
  readonly metrics: ProxyMetrics
  readonly #opts: UserspaceBackendOptions
  readonly #log: Logger
  readonly #listeners = new Map<string, ProxyListener>()
  /**
   * Closed TCP listeners whose connections are still open: their address
   * stays until the last one ends (removing it would send the rest of the
   * stream off the machine), and is released by the first apply after that.
   */
  readonly #draining = new Set<ProxyListener>()
  /** Per service port with listeners: its current data and its picker (affinity state). */
  readonly #ports = new Map<string, { sp: ServicePort; picker: EndpointPicker; live: Set<string> }>()
  #node: NodeView | undefined
  #local = new Set<string>()
  readonly #ctx: ListenerContext
  #addresses = new Set<string>()
  #addrs: ServiceAddresses | undefined
  #last: UserspaceDebugTable = { generation: 0, addresses: [], listeners: [], skipped: [] }
  /** apply() and cleanup() run one at a time. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(opts: UserspaceBackendOptions = {}) {
    this.#opts = opts
    this.#log = opts.log ?? silentLogger()
    this.metrics = createProxyMetrics(opts.registry)
    this.#ctx = {
      choose: (spec, ip, exclude) => this.#choose(spec, ip, exclude),
      live: (spec) => this.#ports.get(spec.portId)?.live ?? new Set(),
      metrics: this.metrics,
      log: this.#log,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      udpIdleMs: opts.udpIdleMs ?? 30_000,
    }
  }

  apply(table: RoutingTable): Promise<{ rules: number }> {
    return this.#serial(() => this.#apply(table))
  }

  cleanup(): Promise<void> {
    return this.#serial(() => this.#cleanup())
  }

  /** What is currently made real, for the debug endpoint. */
  debugTable(): UserspaceDebugTable {
    return this.#last
  }

  #choose(spec: ListenerSpec, clientIP: string, exclude?: ReadonlySet<string>): Endpoint | undefined {
    const p = this.#ports.get(spec.portId)
    if (!p || !this.#node) return undefined
    const ip = clientIP.startsWith('::ffff:') ? clientIP.slice(7) : clientIP
    const r = route(p.sp, this.#node, spec.kind, { ip, host: this.#isHost(ip) })
    return r.action === 'forward' ? p.picker.pick(ip, r.endpoints, exclude) : undefined
  }

  #isHost(ip: string): boolean {
    return ip.startsWith('127.') || ip === '::1' || this.#local.has(ip)
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn)
    this.#queue = next.catch(() => {})
    return next
  }

  #addressManager(table: RoutingTable): ServiceAddresses {
    this.#addrs ??= new ServiceAddresses({ owner: this.#opts.owner ?? table.node.name, iface: this.#opts.iface, stateDir: this.#opts.stateDir })
    return this.#addrs
  }

  async #apply(table: RoutingTable): Promise<{ rules: number }> {
    const plan = planUserspace(table)
    for (const s of plan.skipped) this.#log.warn({ port: s.id, reason: s.reason }, 'service port not served by the userspace backend')
    const addrs = this.#addressManager(table)
    const previous = [...this.#addresses]
    const diff = diffListeners(this.#listeners.keys(), plan.listeners)
    // Ports that are new get their data before their listeners accept anything.
    const newPorts = [...plan.ports.values()].filter((sp) => !this.#ports.has(sp.id))
    for (const sp of newPorts) this.#ports.set(sp.id, { sp, picker: new EndpointPicker(sp.affinitySeconds, this.#opts.clock), live: liveSet(sp) })
    this.#node ??= table.node
    const opened: ProxyListener[] = []
    try {
      // Claim old and new addresses while both may be in use.
      await addrs.ensure([...previous, ...plan.addresses])
      this.#local = localAddresses()
      for (const spec of diff.open) opened.push(await this.#open(spec, addrs, plan.addresses))
    } catch (e) {
      await Promise.all(opened.map((l) => l.close({ destroy: true })))
      for (const sp of newPorts) this.#ports.delete(sp.id)
      await addrs.writeClaim(previous).catch(() => {})
      await addrs.release(plan.addresses.filter((a) => !this.#addresses.has(a))).catch(() => {})
      throw new UserspaceApplyError(`userspace backend: apply of generation ${table.generation} failed, previous state kept: ${(e as Error).message}`, { cause: e })
    }
    this.#node = table.node
    await this.#commit(plan, diff.keep, opened, diff.close)
    const keep = new Set(plan.addresses)
    for (const l of this.#draining) {
      if (l.connections === 0) this.#draining.delete(l)
      else if (previous.includes(l.spec.ip)) keep.add(l.spec.ip)
    }
    const gone = previous.filter((a) => !keep.has(a))
    this.#addresses = keep
    await addrs.writeClaim([...keep])
    await addrs.release(gone).catch((e) => this.#log.warn({ err: e }, 'could not remove service addresses'))
    this.#last = this.#debug(table.generation, plan)
    return { rules: this.#listeners.size + this.#addresses.size }
  }

  /** Open one listener; if its address vanished (another agent released it in a race), put it back and retry once. */
  async #open(spec: ListenerSpec, addrs: ServiceAddresses, serviceAddresses: string[]): Promise<ProxyListener> {
    const make = () => (spec.protocol === 'TCP' ? new TcpListener(spec, this.#ctx) : new UdpListener(spec, this.#ctx))
    const l = make()
    try {
      await l.listen()
      return l
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL' || !serviceAddresses.includes(spec.ip)) throw e
      await addrs.ensure([...this.#addresses, ...serviceAddresses])
      const again = make()
      await again.listen()
      return again
    }
  }

  /** Everything after this cannot fail: swap endpoint sets, register and close listeners. */
  async #commit(plan: UserspacePlan, keep: ListenerSpec[], opened: ProxyListener[], close: string[]): Promise<void> {
    for (const sp of plan.ports.values()) {
      const p = this.#ports.get(sp.id)!
      p.sp = sp
      p.live = liveSet(sp)
      p.picker.update(sp.affinitySeconds, [...sp.clusterEndpoints, ...sp.localEndpoints])
    }
    for (const id of [...this.#ports.keys()]) if (!plan.ports.has(id)) this.#ports.delete(id)
    for (const spec of keep) this.#listeners.get(spec.key)!.spec = spec
    for (const l of opened) this.#listeners.set(l.spec.key, l)
    for (const key of close) {
      const l = this.#listeners.get(key)!
      this.#listeners.delete(key)
      // Open TCP connections keep flowing, like established conntrack entries.
      await l.close({ destroy: false })
      if (l.connections > 0) this.#draining.add(l)
    }
    for (const l of this.#listeners.values()) l.dropStale()
    this.metrics.listeners.set(this.#listeners.size)
  }

  async #cleanup(): Promise<void> {
    const all = [...this.#listeners.values(), ...this.#draining]
    this.#listeners.clear()
    this.#draining.clear()
    this.#ports.clear()
    await Promise.all(all.map((l) => l.close({ destroy: true })))
    this.metrics.listeners.set(0)
    this.#addresses = new Set()
    this.#last = { generation: this.#last.generation, addresses: [], listeners: [], skipped: [] }
    const addrs = this.#addrs ?? (this.#opts.owner ? new ServiceAddresses({ owner: this.#opts.owner, iface: this.#opts.iface, stateDir: this.#opts.stateDir }) : undefined)
    await addrs?.cleanup()
  }

  #debug(generation: number, plan: UserspacePlan): UserspaceDebugTable {
    return {
      generation,
      addresses: [...this.#addresses],
      listeners: plan.listeners.map((l) => ({
        ...l,
        endpoints: [...(this.#ports.get(l.portId)?.live ?? [])],
      })),
      skipped: plan.skipped,
    }
  }
}

export function createUserspaceBackend(opts: UserspaceBackendOptions = {}): UserspaceBackend {
  return new UserspaceBackend(opts)
}

function liveSet(sp: ServicePort): Set<string> {
  return new Set([...sp.clusterEndpoints, ...sp.localEndpoints].map(endpointKey))
}

/** This machine's own addresses: a connection from one of them comes from the host. */
function localAddresses(): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address)
  return out
}
