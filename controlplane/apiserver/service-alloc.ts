// ClusterIP and NodePort allocation for Services. Planning is pure: given the
// old and new Service it decides which values to claim and release, filling
// in auto-allocated ones; the store then claims them atomically with the
// write (a value held by another Service fails the whole write). Auto values
// that lose a race are re-picked by the caller; requested ones are a 422.

import type { KubeObject, StatusCause } from '../api/types.ts'
import type { Claim } from '../store/types.ts'

export interface AllocConfig {
  serviceCIDR: string // '10.96.0.0/12'
  nodePortRange: [number, number] // [30000, 32767]
  /** Never handed out dynamically (the API's own ClusterIP, the cluster DNS). */
  reservedIPs: string[]
}

export const defaultAllocConfig: AllocConfig = {
  serviceCIDR: '10.96.0.0/12',
  nodePortRange: [30000, 32767],
  reservedIPs: ['10.96.0.1', '10.96.0.10'],
}

export const pools = { clusterIP: 'clusterip', nodePort: 'nodeport' } as const

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number)
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export function parseCIDR(cidr: string): { base: number; size: number } {
  const [ip, bits] = cidr.split('/')
  const prefix = Number(bits)
  const size = 2 ** (32 - prefix)
  return { base: (ipToInt(ip!) & ~(size - 1)) >>> 0, size }
}

export function inCIDR(ip: string, cidr: string): boolean {
  const { base, size } = parseCIDR(cidr)
  const n = ipToInt(ip)
  return n >= base && n < base + size
}

/** A random usable address of the range (not network/broadcast, not reserved, not taken). */
export function pickClusterIP(cfg: AllocConfig, taken: ReadonlySet<string>, rand = Math.random): string | undefined {
  const { base, size } = parseCIDR(cfg.serviceCIDR)
  for (let i = 0; i < 64; i++) {
    const ip = intToIp(base + 1 + Math.floor(rand() * (size - 2)))
    if (!taken.has(ip) && !cfg.reservedIPs.includes(ip)) return ip
  }
  return undefined
}

export function pickNodePort(cfg: AllocConfig, taken: ReadonlySet<string>, rand = Math.random): number | undefined {
  const [lo, hi] = cfg.nodePortRange
  const n = hi - lo + 1
  const start = Math.floor(rand() * n)
  for (let i = 0; i < n; i++) {
    const port = lo + ((start + i) % n)
    if (!taken.has(String(port))) return port
  }
  return undefined
}

export interface AllocPlan {
  claims: Claim[]
  releases: Claim[]
  /** Values the user asked for: losing them is a 422, not a retry. */
  requested: Map<string, string> // `${pool}/${value}` -> field path
  causes: StatusCause[]
}

function wantsClusterIP(svc: KubeObject): boolean {
  return svc.spec?.type !== 'ExternalName' && svc.spec?.clusterIP !== 'None'
}

function wantsNodePorts(svc: KubeObject): boolean {
  return svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer'
}

function heldValues(svc: KubeObject | undefined): Claim[] {
  if (!svc) return []
  const out: Claim[] = []
  if (wantsClusterIP(svc) && svc.spec?.clusterIP) out.push({ pool: pools.clusterIP, value: svc.spec.clusterIP })
  if (wantsNodePorts(svc)) {
    for (const p of svc.spec?.ports ?? []) if (p.nodePort) out.push({ pool: pools.nodePort, value: String(p.nodePort) })
    if (svc.spec?.healthCheckNodePort) out.push({ pool: pools.nodePort, value: String(svc.spec.healthCheckNodePort) })
  }
  return out
}

/**
 * Fill svc (mutated: it is the caller's fresh copy) with allocations and
 * return what to claim and release. `old` is the stored Service on update.
 */
export function planServiceAllocations(
  cfg: AllocConfig,
  svc: KubeObject,
  old: KubeObject | undefined,
  taken: { ips: ReadonlySet<string>; ports: ReadonlySet<string> },
): AllocPlan {
  const plan: AllocPlan = { claims: [], releases: [], requested: new Map(), causes: [] }
  const spec = svc.spec ?? (svc.spec = {})
  if (wantsClusterIP(svc)) allocateClusterIP(cfg, svc, old, taken.ips, plan)
  else if (spec.type === 'ExternalName') {
    delete spec.clusterIP
    delete spec.clusterIPs
  }
  if (wantsNodePorts(svc)) allocateNodePorts(cfg, svc, old, taken.ports, plan)
  else for (const p of spec.ports ?? []) delete p.nodePort
  if (!(spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local')) delete spec.healthCheckNodePort
  const keep = new Set(heldValues(svc).map((c) => `${c.pool}/${c.value}`))
  plan.releases = heldValues(old).filter((c) => !keep.has(`${c.pool}/${c.value}`))
  return plan
}

function allocateClusterIP(cfg: AllocConfig, svc: KubeObject, old: KubeObject | undefined, taken: ReadonlySet<string>, plan: AllocPlan): void {
  const spec = svc.spec
  const oldIP = old && wantsClusterIP(old) ? old.spec?.clusterIP : undefined
  if (!spec.clusterIP && oldIP) spec.clusterIP = oldIP
  if (spec.clusterIP) {
    if (!inCIDR(spec.clusterIP, cfg.serviceCIDR)) {
      plan.causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.clusterIPs',
        message: `Invalid value: ${JSON.stringify([spec.clusterIP])}: failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${cfg.serviceCIDR}`,
      })
      return
    }
    if (spec.clusterIP !== oldIP) plan.requested.set(`${pools.clusterIP}/${spec.clusterIP}`, 'spec.clusterIPs')
  } else {
    const ip = pickClusterIP(cfg, taken)
    if (!ip) {
      plan.causes.push({ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Internal error: failed to allocate a serviceIP: range is full` })
      return
    }
    spec.clusterIP = ip
  }
  spec.clusterIPs = [spec.clusterIP]
  plan.claims.push({ pool: pools.clusterIP, value: spec.clusterIP })
}

function allocateNodePorts(cfg: AllocConfig, svc: KubeObject, old: KubeObject | undefined, taken: ReadonlySet<string>, plan: AllocPlan): void {
  const [lo, hi] = cfg.nodePortRange
  const oldPorts = new Map<string, number>()
  if (old && wantsNodePorts(old)) for (const p of old.spec?.ports ?? []) if (p.nodePort) oldPorts.set(`${p.port}/${p.protocol ?? 'TCP'}`, p.nodePort)
  const used = new Set(taken)
  const ports: any[] = svc.spec.ports ?? []
  ports.forEach((p, i) => {
    const field = `spec.ports[${i}].nodePort`
    if (!p.nodePort) p.nodePort = oldPorts.get(`${p.port}/${p.protocol ?? 'TCP'}`)
    if (p.nodePort) {
      if (p.nodePort < lo || p.nodePort > hi) {
        plan.causes.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${p.nodePort}: provided port is not in the valid range. The range of valid ports is ${lo}-${hi}` })
        return
      }
      if (![...oldPorts.values()].includes(p.nodePort)) plan.requested.set(`${pools.nodePort}/${p.nodePort}`, field)
    } else {
      const port = pickNodePort(cfg, used)
      if (!port) {
        plan.causes.push({ reason: 'FieldValueInvalid', field, message: 'Internal error: failed to allocate a nodePort: range is full' })
        return
      }
      p.nodePort = port
    }
    used.add(String(p.nodePort))
    plan.claims.push({ pool: pools.nodePort, value: String(p.nodePort) })
  })
  if (svc.spec.type === 'LoadBalancer' && svc.spec.externalTrafficPolicy === 'Local') {
    const hc = svc.spec.healthCheckNodePort || old?.spec?.healthCheckNodePort || pickNodePort(cfg, used)
    if (hc) {
      svc.spec.healthCheckNodePort = hc
      plan.claims.push({ pool: pools.nodePort, value: String(hc) })
    }
  }
}

/** Like Kubernetes' dropTypeDependentFields: a type change clears what only the old type used. */
export function dropTypeDependentFields(svc: KubeObject, old: KubeObject): void {
  const spec = svc.spec
  if (!spec || spec.type === old.spec?.type) return
  if (!wantsNodePorts(svc)) {
    delete spec.externalTrafficPolicy
    delete spec.healthCheckNodePort
    for (const p of spec.ports ?? []) delete p.nodePort
  }
  if (spec.type !== 'LoadBalancer') {
    delete spec.allocateLoadBalancerNodePorts
    delete spec.loadBalancerClass
  }
  if (spec.type === 'ExternalName') {
    delete spec.clusterIP
    delete spec.clusterIPs
    delete spec.ipFamilies
    delete spec.ipFamilyPolicy
  }
}
