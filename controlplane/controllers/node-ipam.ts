// Node IPAM: every Node without spec.podCIDR gets one subnet (a /24 by
// default) of the cluster's pod network, written to spec.podCIDR and
// spec.podCIDRs. The agent then gives pod IPs from it.
//
// The set of used subnets is never kept apart from the Nodes: each sync
// rebuilds it from the cached Nodes plus our own writes not yet seen in the
// cache, so a restart or a new leader starts from the truth. Every write is a
// PUT carrying the Node's resourceVersion; a 409 retries the sync with a
// fresher cache. A full range records a Warning `CIDRNotAvailable` Event.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import type { Controller, ControllerContext } from './types.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!

export interface CIDR {
  base: number // network address as an unsigned 32-bit number
  prefix: number
}

/** An IPv4 CIDR, normalized to its network address; throws on anything else. */
export function parseCIDR(text: string): CIDR {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(text.trim())
  const octets = m ? m.slice(1, 5).map(Number) : []
  const prefix = m ? Number(m[5]) : -1
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw new Error(`SKIFF_ERR_IPAM_CIDR: not an IPv4 CIDR: ${text}`)
  const addr = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  return { base: (addr & mask) >>> 0, prefix }
}

export function formatCIDR(c: CIDR): string {
  return `${c.base >>> 24}.${(c.base >>> 16) & 255}.${(c.base >>> 8) & 255}.${c.base & 255}/${c.prefix}`
}

/** Subnets of `maskSize` in `cluster`, in order (the caller stops early; a /8 of /24s is 65536). */
export function subnets(cluster: CIDR, maskSize: number): Generator<string> {
  if (!Number.isInteger(maskSize) || maskSize < cluster.prefix || maskSize > 30) throw new Error(`SKIFF_ERR_IPAM_MASK: node mask /${maskSize} does not fit in /${cluster.prefix}`)
  return enumerate(cluster, maskSize)
}

function* enumerate(cluster: CIDR, maskSize: number): Generator<string> {
  const count = 2 ** (maskSize - cluster.prefix)
  const step = 2 ** (32 - maskSize)
  for (let i = 0; i < count; i++) yield formatCIDR({ base: (cluster.base + i * step) >>> 0, prefix: maskSize })
}

function nodeCIDRs(node: KubeObject): string[] {
  const list: string[] = Array.isArray(node.spec?.podCIDRs) ? node.spec.podCIDRs.filter((c: unknown) => typeof c === 'string') : []
  if (typeof node.spec?.podCIDR === 'string' && node.spec.podCIDR) list.push(node.spec.podCIDR)
  return list
}

export interface CIDRPlan {
  assign: Array<{ node: string; cidr: string }>
  /** Nodes still without a subnet because the range is full. */
  unavailable: string[]
}

/**
 * Which subnet each Node without one gets: the lowest free one, oldest Node
 * first. `pending` holds our assignments the cache does not show yet (node ->
 * cidr): those count as used and their Nodes as served.
 */
export function planNodeCIDRs(nodes: KubeObject[], opts: { clusterCIDR: string; maskSize: number; pending?: Map<string, string> }): CIDRPlan {
  const pending = opts.pending ?? new Map<string, string>()
  const used = new Set<string>(pending.values())
  for (const n of nodes) for (const c of nodeCIDRs(n)) used.add(normalize(c))
  const waiting = nodes
    .filter((n) => nodeCIDRs(n).length === 0 && !pending.has(n.metadata.name!) && !n.metadata.deletionTimestamp)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name!.localeCompare(b.metadata.name!))
  const plan: CIDRPlan = { assign: [], unavailable: [] }
  if (waiting.length === 0) return plan
  const free = subnets(parseCIDR(opts.clusterCIDR), opts.maskSize)
  for (const n of waiting) {
    let cidr: string | undefined
    for (let next = free.next(); !next.done; next = free.next()) {
      if (!used.has(next.value)) {
        cidr = next.value
        break
      }
    }
    if (cidr) plan.assign.push({ node: n.metadata.name!, cidr })
    else plan.unavailable.push(n.metadata.name!)
  }
  return plan
}

function normalize(c: string): string {
  try {
    return formatCIDR(parseCIDR(c))
  } catch {
    return c
  }
}

/** How long one of our writes may stay invisible in the cache before its subnet is no longer held for it. */
const pendingHoldMs = 10_000

export class NodeIpamController implements Controller {
  readonly name = 'node-ipam'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #nodes?: Informer
  /** Assignments written but not yet in the cache, and when (performance.now(): a wall-clock step must not expire them early). */
  #pending = new Map<string, { cidr: string; at: number }>()
  #warned = new Set<string>()

  async start(ctx: ControllerContext): Promise<void> {
    subnets(parseCIDR(ctx.config.clusterCIDR), ctx.config.nodeCIDRMaskSize) // a bad setting fails at start, not on the first node
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#nodes = ctx.informers.for(nodesInfo)
    const poke = () => this.#queue!.add('nodes')
    this.#nodes.addHandlers({ onAdd: poke, onUpdate: (o, n) => o !== n && poke(), onDelete: poke })
    await ctx.informers.start()
    this.#queue.start(() => this.#sync())
    poke()
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
    this.#pending.clear()
    this.#warned.clear()
  }

  async #sync(): Promise<void> {
    const ctx = this.#ctx!
    const nodes = this.#nodes!.list()
    this.#forgetSeenPending(nodes)
    const pending = new Map([...this.#pending].map(([n, p]) => [n, p.cidr]))
    const plan = planNodeCIDRs(nodes, { clusterCIDR: ctx.config.clusterCIDR, maskSize: ctx.config.nodeCIDRMaskSize, pending })
    for (const name of plan.unavailable) {
      const node = this.#nodes!.get(name)
      if (!node || this.#warned.has(name)) continue
      this.#warned.add(name)
      ctx.events.event(node, 'Warning', 'CIDRNotAvailable', `Node ${name} status is now: CIDRNotAvailable`)
      ctx.logger.warn({ node: name, clusterCIDR: ctx.config.clusterCIDR }, 'no pod CIDR left for node')
    }
    for (const { node: name, cidr } of plan.assign) {
      const node = this.#nodes!.get(name)
      if (!node) continue
      try {
        await ctx.client.update(nodesInfo, { ...node, spec: { ...node.spec, podCIDR: cidr, podCIDRs: [cidr] } })
      } catch (e) {
        if (e instanceof ApiClientError && e.status === 404) continue
        throw e // 409: the Node changed; the retry plans again from a fresher cache
      }
      this.#pending.set(name, { cidr, at: performance.now() })
      this.#warned.delete(name)
      ctx.logger.info({ node: name, podCIDR: cidr }, 'assigned pod CIDR')
    }
  }

  #forgetSeenPending(nodes: KubeObject[]): void {
    const byName = new Map(nodes.map((n) => [n.metadata.name!, n]))
    for (const [name, p] of this.#pending) {
      const n = byName.get(name)
      if (!n || nodeCIDRs(n).length > 0 || performance.now() - p.at > pendingHoldMs) this.#pending.delete(name)
    }
  }
}
