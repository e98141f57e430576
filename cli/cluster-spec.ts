// What a local cluster is made of, decided once by `skiff up` and kept in
// <state-dir>/cluster.json so that every later `up` resumes the same cluster
// (same ports, addresses, names) instead of inventing a new one. Pure: the
// effects live in simhost.ts (namespaces, bridge, Engines) and supervisor.ts.
//
// One machine, the architecture of many: each node is a simulated host, a
// network namespace with one leg (eth0) on a LAN bridge, its own dockerd and
// its own `skiff agent`; the control plane (Redis, `skiff server`) stays in
// the machine's own namespace, on the LAN's first address.
//   LAN 172.31.X.0/24  .1 this machine (apiserver)   .11.. node i (InternalIP)
//                      .101.. ExternalIPs of external ingress nodes
//                      .200-.239 the LoadBalancer pool (answered by one node each)

import { createHash, randomBytes } from 'node:crypto'
import { cidrsOverlap, formatCidr, intToIp, parseCidr } from '../lib/ipv4.ts'

export type PodNetworkMode = 'host-gw' | 'vxlan'

export interface HostSpec {
  name: string
  /** 1-based position: the host's addresses and interface names derive from it. */
  index: number
  /** InternalIP: the host's address on the LAN. */
  ip: string
  /** ExternalIP (external ingress nodes): a second address on the same leg. */
  externalIP?: string
  /** Ingress class whose controller the node runs. */
  pool?: 'external' | 'internal'
}

export interface ClusterSpec {
  version: 1
  /** 6 hex digits naming this cluster's bridge, namespaces and run folder. */
  id: string
  apiPort: number
  redisPort: number
  clusterCIDR: string
  podNetwork: PodNetworkMode
  lan: { cidr: string; hostIP: string; bridge: string }
  /** LoadBalancer addresses, a range on the LAN (MetalLB layer 2). */
  loadBalancerPool: string
  hosts: HostSpec[]
  acme?: { directory: string; email?: string; caFile?: string }
  timers: { nodeMonitorGracePeriodS: number; podEvictionTimeoutS: number; heartbeatMs: number }
  /**
   * `skiff up --ha`: Redis under Sentinel and two servers (controlPlaneMachines):
   * Redis i and sentinel i on machine i (redisPort, sentinelPort), server 1 on
   * this machine, server 2 on the first host (apiPort), joined to server 1.
   */
  ha?: { sentinelPort: number; masterName: string }
  createdAt: string
}

/** Where the HA control plane runs: this machine, then the first two hosts. */
export interface ControlPlaneMachine {
  index: number
  ip: string
  /** undefined: this machine's own namespace. */
  host?: HostSpec
}

export function controlPlaneMachines(s: ClusterSpec): ControlPlaneMachine[] {
  if (!s.ha) return [{ index: 0, ip: s.lan.hostIP }]
  return [{ index: 0, ip: s.lan.hostIP }, ...s.hosts.slice(0, 2).map((h, i) => ({ index: i + 1, ip: h.ip, host: h }))]
}

export interface SpecOptions {
  stateDir: string
  apiPort: number
  redisPort: number
  nodes: number
  clusterCIDR?: string
  podNetwork?: PodNetworkMode
  /** A /24 for the LAN; default: the first free 172.31.X.0/24. */
  lanCIDR?: string
  ingress: { external: number; internal: number }
  acme?: ClusterSpec['acme']
  timers?: Partial<ClusterSpec['timers']>
  /** HA control plane: the sentinels' port (see ClusterSpec.ha). */
  ha?: { sentinelPort: number }
}

/** Node names of a local cluster: node-1, node-2, ... */
export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node-${i + 1}`)
}

/** A /24 in 172.31.0.0/16 that overlaps none of `used` (addresses and routes of this machine). */
export function chooseLanCIDR(used: string[], seed: number): string {
  for (let i = 0; i < 256; i++) {
    const cidr = `172.31.${(seed + i) % 256}.0/24`
    if (!used.some((u) => cidrsOverlap(u, cidr))) return cidr
  }
  throw new Error('SKIFF_ERR_UP_NO_LAN: every 172.31.X.0/24 is in use on this machine; pass --lan-cidr with a free private /24')
}

/** The n-th address of a /24 (n = 1 is .1). */
export function lanAddress(cidr: string, n: number): string {
  const c = parseCidr(cidr)
  if (c.bits !== 24) throw new Error(`SKIFF_ERR_UP_LAN_CIDR: the LAN must be a /24, not ${cidr}`)
  return intToIp(c.base + n)
}

export function planIngressPools(names: string[], want: { external: number; internal: number }): Map<string, 'external' | 'internal'> {
  if (want.external + want.internal > names.length) {
    throw new Error(`${want.external} external + ${want.internal} internal ingress nodes need at least ${want.external + want.internal} nodes, not ${names.length}: raise --nodes`)
  }
  const pools = new Map<string, 'external' | 'internal'>()
  names.slice(0, want.external).forEach((n) => pools.set(n, 'external'))
  names.slice(want.external, want.external + want.internal).forEach((n) => pools.set(n, 'internal'))
  return pools
}

/** 2 external + 1 internal when there are 3 nodes or more; with fewer, what fits (external first). */
export function defaultIngressPools(nodes: number): { external: number; internal: number } {
  if (nodes >= 3) return { external: 2, internal: 1 }
  return { external: Math.min(nodes, 1), internal: nodes >= 2 ? 1 : 0 }
}

/** The spec of a new cluster. `used` lists this machine's CIDRs (so the LAN collides with nothing). */
export function planCluster(o: SpecOptions, used: string[], id = randomBytes(3).toString('hex')): ClusterSpec {
  if (!Number.isInteger(o.nodes) || o.nodes < 0 || o.nodes > 80) throw new Error(`SKIFF_ERR_UP_NODES: --nodes must be a whole number from 0 to 80, not ${o.nodes}`)
  if (o.ha && o.nodes < 2) throw new Error(`SKIFF_ERR_UP_HA_NODES: --ha puts Redis replicas, sentinels and the second server on the first two hosts: it needs --nodes 2 or more, not ${o.nodes}`)
  const seed = parseInt(createHash('sha256').update(o.stateDir).digest('hex').slice(0, 2), 16)
  const lanCIDR = o.lanCIDR ? formatCidr(parseCidr(o.lanCIDR)) : chooseLanCIDR(used, seed)
  const names = nodeNames(o.nodes)
  const pools = planIngressPools(names, o.ingress)
  let ext = 0
  const hosts = names.map((name, i): HostSpec => {
    const pool = pools.get(name)
    return {
      name, index: i + 1, ip: lanAddress(lanCIDR, 11 + i),
      ...(pool === 'external' ? { externalIP: lanAddress(lanCIDR, 101 + ext++) } : {}),
      ...(pool ? { pool } : {}),
    }
  })
  return {
    version: 1,
    id,
    apiPort: o.apiPort,
    redisPort: o.redisPort,
    clusterCIDR: o.clusterCIDR ?? '10.244.0.0/16',
    podNetwork: o.podNetwork ?? 'host-gw',
    lan: { cidr: lanCIDR, hostIP: lanAddress(lanCIDR, 1), bridge: `sklan-${id}` },
    loadBalancerPool: `${lanAddress(lanCIDR, 200)}-${lanAddress(lanCIDR, 239)}`,
    hosts,
    ...(o.acme ? { acme: o.acme } : {}),
    ...(o.ha ? { ha: { sentinelPort: o.ha.sentinelPort, masterName: 'skiff' } } : {}),
    timers: { nodeMonitorGracePeriodS: 40, podEvictionTimeoutS: 60, heartbeatMs: 2_000, ...o.timers },
    createdAt: new Date().toISOString(),
  }
}

/** Names and paths of one cluster's parts on this machine. */
export const names = {
  runDir: (s: ClusterSpec) => `/run/skiff/${s.id}`,
  netns: (s: ClusterSpec, h: HostSpec) => `skiff-${s.id}-${h.name}`,
  /** Host side of the host's leg on the bridge (15 characters at most). */
  veth: (s: ClusterSpec, h: HostSpec) => `skh${s.id}-${h.index}`,
  hostRoot: (stateDir: string, h: HostSpec) => `${stateDir}/hosts/${h.name}`,
  dockerSock: (s: ClusterSpec, h: HostSpec) => `/run/skiff/${s.id}/${h.name}/docker.sock`,
  execRoot: (s: ClusterSpec, h: HostSpec) => `/run/skiff/${s.id}/${h.name}/exec`,
  controlSock: (s: ClusterSpec) => `/run/skiff/${s.id}/supervisor.sock`,
}

/** Why an existing cluster ignores a flag given to `up` (it keeps what it was created with). */
export function ignoredFlags(spec: ClusterSpec, o: Partial<SpecOptions>): string[] {
  const out: string[] = []
  if (o.nodes !== undefined && o.nodes !== spec.hosts.length) out.push(`--nodes ${o.nodes} (it has ${spec.hosts.length})`)
  if (o.clusterCIDR && o.clusterCIDR !== spec.clusterCIDR) out.push(`--cluster-cidr ${o.clusterCIDR} (it has ${spec.clusterCIDR})`)
  if (o.podNetwork && o.podNetwork !== spec.podNetwork) out.push(`--pod-network ${o.podNetwork} (it has ${spec.podNetwork})`)
  if (o.lanCIDR && formatCidr(parseCidr(o.lanCIDR)) !== spec.lan.cidr) out.push(`--lan-cidr ${o.lanCIDR} (it has ${spec.lan.cidr})`)
  return out
}
