// Pure part of the userspace backend: which sockets a RoutingTable needs,
// which service addresses must exist locally, how a listener set differs from
// the previous one, and how an endpoint is chosen (random, ClientIP affinity,
// retry excluding a failed endpoint). No I/O here; userspace.ts does it.

import { BlockList } from 'node:net'
import type { Endpoint, NodeView, RoutingTable, ServicePort } from './types.ts'

/**
 * What kind of address a listener is on, which decides the traffic policy:
 * `cluster` for a ClusterIP (internalTrafficPolicy), `node` for a NodePort on
 * this node's address and `external` for LoadBalancer and external IPs
 * (externalTrafficPolicy).
 */
export type ListenerKind = 'cluster' | 'node' | 'external'

export interface ListenerSpec {
  /** `TCP 10.96.0.5:80`: one socket per key. */
  key: string
  protocol: 'TCP' | 'UDP'
  ip: string
  port: number
  /** ServicePort.id, for metrics and the router lookup. */
  portId: string
  kind: ListenerKind
}

export interface UserspacePlan {
  listeners: ListenerSpec[]
  /** The service ports that have listeners, by id: what the routers choose from. */
  ports: Map<string, ServicePort>
  /** Service addresses (ClusterIP, LoadBalancer IPs, external IPs) that must be local. */
  addresses: string[]
  /** Ports the userspace backend cannot serve, with the reason (e.g. SCTP). */
  skipped: { id: string; reason: string }[]
}

export function listenerKey(protocol: string, ip: string, port: number): string {
  return ip.includes(':') ? `${protocol} [${ip}]:${port}` : `${protocol} ${ip}:${port}`
}

/**
 * The sockets and addresses a table needs. A service port without any
 * endpoint gets no listener: with nothing bound, the kernel answers a TCP SYN
 * with a reset and a UDP datagram with ICMP port unreachable, which is the
 * "reject at once" of the contract. The address itself stays, so the packet
 * is not routed off the machine and left to time out.
 */
export function planUserspace(table: RoutingTable): UserspacePlan {
  const listeners = new Map<string, ListenerSpec>()
  const ports = new Map<string, ServicePort>()
  const addresses = new Set<string>()
  const skipped: UserspacePlan['skipped'] = []
  // The node's cluster DNS first: like the nftables rule, it wins over a Service on the same address.
  for (const sp of [...clusterDnsPorts(table.node), ...table.ports]) {
    if (sp.protocol !== 'TCP' && sp.protocol !== 'UDP') {
      skipped.push({ id: sp.id, reason: `protocol ${sp.protocol} is not supported by the userspace backend` })
      continue
    }
    const protocol = sp.protocol
    const add = (ip: string, port: number, kind: ListenerKind) => {
      if (sp.clusterEndpoints.length === 0) return
      const key = listenerKey(protocol, ip, port)
      if (listeners.has(key)) {
        skipped.push({ id: sp.id, reason: `${key} is already used by ${listeners.get(key)!.portId}` })
        return
      }
      ports.set(sp.id, sp)
      listeners.set(key, { key, protocol, ip, port, portId: sp.id, kind })
    }
    if (sp.clusterIP && sp.clusterIP !== 'None') {
      addresses.add(sp.clusterIP)
      add(sp.clusterIP, sp.port, 'cluster')
    }
    for (const ip of [...sp.loadBalancerIPs, ...sp.externalIPs]) {
      addresses.add(ip)
      add(ip, sp.port, 'external')
    }
    if (sp.nodePort) for (const ip of table.node.addresses) add(ip, sp.nodePort, 'node')
  }
  return { listeners: [...listeners.values()], ports, addresses: [...addresses].sort(), skipped }
}

/** NodeView.dns as two synthetic Service ports (TCP and UDP 53) towards the node's DNS server. */
export function clusterDnsPorts(node: NodeView): ServicePort[] {
  const dns = node.dns
  if (!dns) return []
  const endpoint: Endpoint = { ip: dns.target, port: dns.port, nodeName: node.name, ready: true, serving: true, terminating: false }
  return (['UDP', 'TCP'] as const).map((protocol) => ({
    id: `cluster-dns:${protocol}`, namespace: '', service: 'cluster-dns', portName: protocol.toLowerCase(), protocol, clusterIP: dns.ip, port: 53,
    loadBalancerIPs: [], externalIPs: [], clusterEndpoints: [endpoint], localEndpoints: [endpoint],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', affinitySeconds: 0,
  }))
}

export interface Source {
  ip: string
  /** The connection comes from this machine itself (a local source address). */
  host: boolean
}

export type Route = { action: 'forward'; endpoints: Endpoint[] } | { action: 'reject' } | { action: 'drop' }

function inSubnet(ip: string, base: string, prefix: number): boolean {
  const family = ip.includes(':') ? 'ipv6' : 'ipv4'
  if (family !== (base.includes(':') ? 'ipv6' : 'ipv4')) return false
  const b = new BlockList()
  b.addSubnet(base, prefix, family)
  return b.check(ip, family)
}

/** Parsed CIDRs: route() runs per connection and the node's CIDRs rarely change. */
const cidrCache = new Map<string, { list: BlockList; family: 'ipv4' | 'ipv6' } | null>()

export function inCIDR(ip: string, cidr: string): boolean {
  let c = cidrCache.get(cidr)
  if (c === undefined) {
    const [base, len] = cidr.split('/')
    const family = base?.includes(':') ? 'ipv6' : 'ipv4'
    c = null
    if (base && len) {
      const list = new BlockList()
      list.addSubnet(base, Number(len), family)
      c = { list, family }
    }
    if (cidrCache.size > 256) cidrCache.clear()
    cidrCache.set(cidr, c)
  }
  return !!c && c.family === (ip.includes(':') ? 'ipv6' : 'ipv4') && c.list.check(ip, c.family)
}

/**
 * The endpoints one connection may use, by where it comes from: the same
 * semantics as the conformance tracer (test/conformance/service-proxy.ts),
 * decided per connection because a userspace listener sees the client's
 * address. Agents on one host share listeners (reusePort), so a pod of
 * another node can land here: "local" then means local to the client's node,
 * found as the endpoints in the client's pod subnet (every node's podCIDR has
 * this node's prefix length).
 */
export function route(sp: ServicePort, node: NodeView, kind: ListenerKind, src: Source): Route {
  if (sp.clusterEndpoints.length === 0) return { action: 'reject' }
  const fromCluster = !src.host && inCIDR(src.ip, node.clusterCIDR)
  const forward = (endpoints: Endpoint[]): Route => (endpoints.length ? { action: 'forward', endpoints } : { action: 'drop' })
  if (kind === 'cluster') {
    if (src.host || sp.internalTrafficPolicy === 'Cluster') return forward(sp.clusterEndpoints)
    if (inCIDR(src.ip, node.podCIDR)) return forward(sp.localEndpoints)
    const prefix = Number(node.podCIDR.split('/')[1])
    return forward(sp.clusterEndpoints.filter((e) => inSubnet(e.ip, src.ip, prefix)))
  }
  if (sp.externalTrafficPolicy === 'Cluster' || fromCluster || src.host) return forward(sp.clusterEndpoints)
  if (sp.localEndpoints.length > 0) return forward(sp.localEndpoints)
  // A shared LoadBalancer IP: kube-proxy leaves the packet to a node with local
  // endpoints; a userspace listener cannot hand an accepted connection over, so it serves it.
  return kind === 'node' ? { action: 'drop' } : forward(sp.clusterEndpoints)
}

/**
 * What the userspace backend does with a packet, for the conformance suite:
 * `pass` when no listener or service address of this table matches.
 */
export function traceUserspace(table: RoutingTable, plan: UserspacePlan, packet: { from: Source; to: { ip: string; port: number; proto: string } }): Route | { action: 'pass' } {
  const l = plan.listeners.find((x) => x.key === listenerKey(packet.to.proto, packet.to.ip, packet.to.port))
  if (l) return route(plan.ports.get(l.portId)!, table.node, l.kind, packet.from)
  const served = [...clusterDnsPorts(table.node), ...table.ports].some((sp) =>
    sp.protocol === packet.to.proto &&
    ((sp.port === packet.to.port && (sp.clusterIP === packet.to.ip || sp.loadBalancerIPs.includes(packet.to.ip) || sp.externalIPs.includes(packet.to.ip))) ||
      (sp.nodePort === packet.to.port && table.node.addresses.includes(packet.to.ip))))
  return served ? { action: 'reject' } : { action: 'pass' }
}

export interface ListenerDiff {
  open: ListenerSpec[]
  close: string[]
  /** Listeners that stay; their spec (port id, scope) may have changed and is updated in place. */
  keep: ListenerSpec[]
}

export function diffListeners(current: Iterable<string>, desired: ListenerSpec[]): ListenerDiff {
  const have = new Set(current)
  const want = new Set(desired.map((l) => l.key))
  return {
    open: desired.filter((l) => !have.has(l.key)),
    keep: desired.filter((l) => have.has(l.key)),
    close: [...have].filter((k) => !want.has(k)).sort(),
  }
}

export function endpointKey(ep: { ip: string; port: number }): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`
}

export interface PickerClock {
  random?: () => number
  now?: () => number
}

/** FNV-1a, 32 bits: a fast, stable string hash (not for security). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Highest-random-weight choice: every agent with the same endpoint set picks the same endpoint for a client. */
function rendezvous(clientIP: string, endpoints: readonly Endpoint[]): Endpoint {
  let best = endpoints[0]!
  let bestScore = -1
  for (const e of endpoints) {
    const score = fnv1a(`${clientIP}|${endpointKey(e)}`)
    if (score > bestScore) [best, bestScore] = [e, score]
  }
  return best
}

/**
 * Chooses an endpoint for a new connection or UDP session among the
 * candidates route() allows. Without affinity: uniformly at random. With
 * ClientIP affinity: the endpoint remembered for the client while its
 * timeout lasts (refreshed on every use, like the `recent` match kube-proxy
 * uses), else a rendezvous hash of the client IP over the candidates.
 * Agents on one host share a listener through reusePort and the kernel
 * spreads one client's connections over them; each keeps its own memory, so
 * a random first choice would split the client across endpoints, while the
 * hash makes them agree. One picker per service port, so affinity spans its
 * ClusterIP, NodePort and LoadBalancer addresses.
 */
export class EndpointPicker {
  #affinitySeconds: number
  readonly #affinity = new Map<string, { endpoint: string; expires: number }>()
  readonly #random: () => number
  readonly #now: () => number

  constructor(affinitySeconds: number, clock: PickerClock = {}) {
    this.#affinitySeconds = affinitySeconds
    this.#random = clock.random ?? Math.random
    this.#now = clock.now ?? Date.now
  }

  /** New timeout and endpoint set: affinity to an endpoint that left is forgotten. */
  update(affinitySeconds: number, endpoints: Endpoint[]): void {
    this.#affinitySeconds = affinitySeconds
    if (affinitySeconds <= 0) {
      this.#affinity.clear()
      return
    }
    const live = new Set(endpoints.map(endpointKey))
    for (const [client, a] of this.#affinity) if (!live.has(a.endpoint)) this.#affinity.delete(client)
  }

  /** An endpoint of `candidates` for `clientIP`, never one in `exclude` (endpoints that just failed); undefined if none is left. */
  pick(clientIP: string, candidates: readonly Endpoint[], exclude: ReadonlySet<string> = new Set()): Endpoint | undefined {
    const now = this.#now()
    const usable = candidates.filter((e) => !exclude.has(endpointKey(e)))
    if (this.#affinitySeconds > 0) {
      const a = this.#affinity.get(clientIP)
      const ep = a && a.expires > now ? usable.find((e) => endpointKey(e) === a.endpoint) : undefined
      if (ep) {
        a!.expires = now + this.#affinitySeconds * 1000
        return ep
      }
    }
    if (usable.length === 0) return undefined
    if (this.#affinitySeconds <= 0) return usable[Math.min(usable.length - 1, Math.floor(this.#random() * usable.length))]!
    const ep = rendezvous(clientIP, usable)
    this.#affinity.set(clientIP, { endpoint: endpointKey(ep), expires: now + this.#affinitySeconds * 1000 })
    if (this.#affinity.size > 4096) this.#expire(now)
    return ep
  }

  /** Drop expired affinity entries (bounded memory for many clients). */
  #expire(now: number): void {
    for (const [client, a] of this.#affinity) if (a.expires <= now) this.#affinity.delete(client)
  }
}
