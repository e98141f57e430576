// The pure part of the LoadBalancer controller: the address pool and the
// plan that says which Service gets which address.
//
// The plan is rebuilt from every Service on each sync, so it starts from the
// truth after a restart or a change of leader. Ownership of an address, in
// order: a Service of another loadBalancerClass (we cannot move it), then our
// Services oldest first (creationTimestamp, then namespace/name). A younger
// Service holding an address an older one holds too (two leaders overlapped)
// gives it back and gets a new one in the same write.

import type { KubeObject } from '../api/types.ts'
import { parseCIDR } from './node-ipam.ts'

/** The class this controller serves (besides Services without a class). */
export const loadBalancerClass = 'skiff.dev/lb'

/** Outside the service CIDR 10.96.0.0/12 and the pod network 10.244.0.0/16. */
export const defaultLoadBalancerPool = ['10.112.0.0/24']

/** An inclusive range of IPv4 addresses as unsigned 32-bit numbers. */
export interface PoolRange {
  first: number
  last: number
}

function ipToInt(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip.trim())
  if (!m) return undefined
  const o = m.slice(1, 5).map(Number)
  if (o.some((x) => x > 255)) return undefined
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/**
 * Pool entries: a CIDR (`10.112.0.0/24`, without its network and broadcast
 * addresses when it has more than two), a range (`10.112.0.10-10.112.0.20`)
 * or one address. Throws SKIFF_ERR_LB_POOL on anything else.
 */
export function parsePool(entries: readonly string[]): PoolRange[] {
  const bad = (e: string, why: string) => new Error(`SKIFF_ERR_LB_POOL: ${JSON.stringify(e)} ${why}`)
  if (entries.length === 0) throw bad('', 'an empty LoadBalancer pool')
  return entries.map((e) => {
    if (e.includes('/')) {
      let c
      try {
        c = parseCIDR(e)
      } catch {
        throw bad(e, 'is not an IPv4 CIDR')
      }
      const size = 2 ** (32 - c.prefix)
      return size > 2 ? { first: c.base + 1, last: c.base + size - 2 } : { first: c.base, last: c.base + size - 1 }
    }
    const [a, b = a] = e.split('-')
    const first = ipToInt(a!)
    const last = ipToInt(b!)
    if (first === undefined || last === undefined) throw bad(e, 'is not an IPv4 address, range or CIDR')
    if (last < first) throw bad(e, 'ends before it starts')
    return { first, last }
  })
}

export function inPool(pool: readonly PoolRange[], ip: string): boolean {
  const n = ipToInt(ip)
  return n !== undefined && pool.some((r) => n >= r.first && n <= r.last)
}

export function poolSize(pool: readonly PoolRange[]): number {
  return pool.reduce((sum, r) => sum + r.last - r.first + 1, 0)
}

/** Lowest address first; the caller stops early (a /16 holds 65534). */
function* addresses(pool: readonly PoolRange[]): Generator<string> {
  for (const r of pool) for (let n = r.first; n <= r.last; n++) yield intToIp(n)
}

export interface LBIngress {
  ip?: string
  hostname?: string
  ipMode?: string
}

/** Whether this controller gives `svc` an address. */
export function servedByUs(svc: KubeObject): boolean {
  const cls = svc.spec?.loadBalancerClass
  return svc.spec?.type === 'LoadBalancer' && (!cls || cls === loadBalancerClass)
}

function ingressOf(svc: KubeObject): LBIngress[] {
  const list = svc.status?.loadBalancer?.ingress
  return Array.isArray(list) ? list : []
}

export interface LBWrite {
  key: string
  /** The new `status.loadBalancer.ingress` (empty: no address). */
  ingress: LBIngress[]
  /** The address given, when this write gives one. */
  ip?: string
}

export interface LBPlan {
  writes: LBWrite[]
  /** Our Services left without an address, with the reason (the Warning Event's message). */
  unassigned: Array<{ key: string; message: string }>
  /** Pool addresses held by some Service (for metrics). */
  used: number
}

export interface LBPlanInput {
  services: KubeObject[]
  pool: readonly PoolRange[]
  /** The pool as configured, for messages. */
  poolName: string
  /**
   * Our writes the cache does not show yet: key -> the address written ('' =
   * none). Such a Service holds that address and is not written again.
   */
  pending?: ReadonlyMap<string, string>
  /** Addresses that must not be handed out (e.g. refused by the apiserver a moment ago). */
  avoid?: ReadonlySet<string>
}

const keyOf = (s: KubeObject) => `${s.metadata.namespace}/${s.metadata.name}`

function byAge(a: KubeObject, b: KubeObject): number {
  return (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || keyOf(a).localeCompare(keyOf(b))
}

const vip = (ip: string): LBIngress[] => [{ ip, ipMode: 'VIP' }]

/** Which Services get, keep, change or lose an address. */
export function planLoadBalancers(input: LBPlanInput): LBPlan {
  const pending = input.pending ?? new Map<string, string>()
  const services = [...input.services].sort(byAge)
  const current = (s: KubeObject): string[] => {
    const p = pending.get(keyOf(s))
    if (p !== undefined) return p ? [p] : []
    return ingressOf(s).flatMap((i) => (i.ip ? [i.ip] : []))
  }
  const requested = (s: KubeObject): string | undefined => (typeof s.spec?.loadBalancerIP === 'string' && s.spec.loadBalancerIP) || undefined
  const ours = services.filter(servedByUs)
  const owner = claimOwners(services, ours, { current, requested, pool: input.pool })

  // Every address visible anywhere stays out of fresh picks this round, even one being released.
  const used = new Set<string>(input.avoid ?? [])
  for (const s of services) for (const ip of current(s)) used.add(ip)
  const free = addresses(input.pool)
  const pick = (): string | undefined => {
    for (let n = free.next(); !n.done; n = free.next()) if (!used.has(n.value)) return n.value
    return undefined
  }

  const plan: LBPlan = { writes: [], unassigned: [], used: 0 }
  for (const s of ours) {
    const key = keyOf(s)
    if (s.metadata.deletionTimestamp || pending.has(key)) continue
    const want = desiredAddress(s, { owner, used, pick, requested: requested(s), current: current(s), pool: input.pool, poolName: input.poolName })
    if ('wait' in want) continue
    if ('message' in want) plan.unassigned.push({ key, message: want.message })
    if ('ip' in want) {
      owner.set(want.ip, key)
      used.add(want.ip)
    }
    const ingress = 'ip' in want ? vip(want.ip) : []
    if (!sameIngress(ingress, ingressOf(s))) plan.writes.push({ key, ingress, ...('ip' in want ? { ip: want.ip } : {}) })
  }
  // A Service that is no longer of type LoadBalancer has no load balancer, whoever wrote its status.
  for (const s of services) {
    if (s.spec?.type === 'LoadBalancer' || s.metadata.deletionTimestamp || pending.has(keyOf(s))) continue
    if (ingressOf(s).length > 0) plan.writes.push({ key: keyOf(s), ingress: [] })
  }
  plan.used = [...owner.keys()].filter((ip) => inPool(input.pool, ip)).length
  return plan
}

/** ip -> owning Service key, for addresses Services already hold and may keep. */
function claimOwners(
  services: KubeObject[],
  ours: KubeObject[],
  o: { current: (s: KubeObject) => string[]; requested: (s: KubeObject) => string | undefined; pool: readonly PoolRange[] },
): Map<string, string> {
  const owner = new Map<string, string>()
  for (const s of services) {
    if (s.spec?.type !== 'LoadBalancer' || servedByUs(s)) continue
    for (const ip of o.current(s)) if (!owner.has(ip)) owner.set(ip, keyOf(s))
  }
  for (const s of ours) {
    // One address per Service: the first one of the pool it holds, and only if it is the one it asked for (if it asked).
    const ip = o.current(s).find((a) => inPool(o.pool, a))
    const req = o.requested(s)
    if (ip && !owner.has(ip) && (!req || req === ip || s.metadata.deletionTimestamp)) owner.set(ip, keyOf(s))
  }
  return owner
}

/** An address, a reason for none, or wait (the requested address is still being given back by another Service). */
type Want = { ip: string } | { message: string } | { wait: true }

function desiredAddress(
  s: KubeObject,
  o: { owner: Map<string, string>; used: ReadonlySet<string>; pick: () => string | undefined; requested?: string; current: string[]; pool: readonly PoolRange[]; poolName: string },
): Want {
  const key = keyOf(s)
  if (o.requested) {
    if (!inPool(o.pool, o.requested)) return { message: `requested address ${o.requested} is not in the LoadBalancer pool ${o.poolName}` }
    const holder = o.owner.get(o.requested)
    if (holder && holder !== key) return { message: `requested address ${o.requested} is already in use by another Service` }
    if (!holder && o.used.has(o.requested) && !o.current.includes(o.requested)) return { wait: true }
    return { ip: o.requested }
  }
  const kept = o.current.find((ip) => o.owner.get(ip) === key)
  if (kept) return { ip: kept }
  const ip = o.pick()
  return ip ? { ip } : { message: `no free address in the LoadBalancer pool ${o.poolName}` }
}

function sameIngress(a: LBIngress[], b: LBIngress[]): boolean {
  const norm = (l: LBIngress[]) => JSON.stringify(l.map((i) => [i.ip ?? '', i.hostname ?? '', i.ipMode ?? '']))
  return norm(a) === norm(b)
}
