// renderNftables: one node's RoutingTable as ONE `nft -f -` script that
// replaces Skiff's table of that node (`table ip skiff-<hash>`) atomically:
// `add table; delete table; table { ... }` is a single transaction, so the
// kernel switches from the old rules to the new ones at once and never shows
// a half-built table. Nothing outside that table is touched. Pure.
//
// Layout (modelled on kube-proxy's nftables mode):
//   nat-prerouting  pods of this node → cluster-ips map; anyone → external map
//   nat-output      the host → host-ips map (ClusterIPs, own NodePorts, LB IPs)
//   nat-postrouting masquerade what carries the mark bit
//   svc-N / loc-N   endpoint choice for ServicePort N over all / local endpoints:
//                   affinity sets first, then `numgen random mod K vmap`
//   ep-N-I          one endpoint: hairpin mark, affinity update, DNAT
//   masq-N          mark for masquerade, then svc-N (eTP Cluster, the host)
//   ext-N           externalTrafficPolicy Local entry: pods short-circuit to
//                   svc-N, others to loc-N, or drop without local endpoints
//   filter-*        reject (TCP reset, ICMP port-unreachable) what is
//                   addressed to a Service without any endpoint
// The cluster DNS address (10.96.0.10:53) is DNATed to the node's own DNS
// server (NodeView.dns), before any Service rule.

import { createHash } from 'node:crypto'
import type { Endpoint, RoutingTable, ServicePort } from './types.ts'

/** The mark bit asking nat-postrouting to masquerade (kube-proxy uses the same one). */
export const masqMark = 0x4000

/** `skiff-` and 9 hex digits of the node name's hash (like the node's bridge name). */
export function nftTableName(nodeName: string): string {
  return `skiff-${createHash('sha256').update(nodeName).digest('hex').slice(0, 9)}`
}

export interface Rendered {
  script: string
  /** Rules plus map elements: the size of what the kernel holds. */
  rules: number
}

const proto = (p: string) => p.toLowerCase()

/** Every endpoint of the port, cluster ones first, local-only ones after (terminating fallbacks). */
function endpointUnion(sp: ServicePort): Endpoint[] {
  const seen = new Set(sp.clusterEndpoints.map((e) => `${e.ip}:${e.port}`))
  return [...sp.clusterEndpoints, ...sp.localEndpoints.filter((e) => !seen.has(`${e.ip}:${e.port}`))]
}

interface Ctx {
  lines: string[]
  rules: number
  clusterIPs: string[]
  hostIPs: string[]
  external: string[]
  noEndpointsInternal: string[]
  noEndpointsExternal: string[]
}

export function renderNftables(table: RoutingTable, tableName: string): Rendered {
  const { node } = table
  const c: Ctx = { lines: [], rules: 0, clusterIPs: [], hostIPs: [], external: [], noEndpointsInternal: [], noEndpointsExternal: [] }
  table.ports.forEach((sp, n) => renderPort(c, sp, n, table))
  const chain = (name: string, head: string | undefined, rules: string[]) => {
    c.rules += rules.length
    c.lines.push(`  chain ${name} {`, ...(head ? [`    ${head}`] : []), ...rules.map((r) => `    ${r}`), '  }')
  }
  const key = 'ip daddr . meta l4proto . th dport'
  const fromPods = node.podCIDR ? [`ip saddr ${node.podCIDR} ${key} vmap @cluster-ips`] : []
  // The cluster DNS address goes to this node's DNS server (node-local DNS); the
  // host's own queries go to whichever node's table sees them first.
  const dns = node.dns ? `ip daddr ${node.dns.ip} meta l4proto { tcp, udp } th dport 53 dnat to ${node.dns.target}:${node.dns.port}` : undefined
  const podDns = dns && node.podCIDR ? [`ip saddr ${node.podCIDR} ${dns}`] : []
  chain('nat-prerouting', 'type nat hook prerouting priority dstnat; policy accept;', [...podDns, ...fromPods, `${key} vmap @external`])
  chain('nat-output', 'type nat hook output priority -100; policy accept;', [...(dns ? [dns] : []), `${key} vmap @host-ips`])
  chain('nat-postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [`meta mark & ${hex(masqMark)} == ${hex(masqMark)} meta mark set meta mark ^ ${hex(masqMark)} masquerade`])
  chain('reject-svc', undefined, ['meta l4proto tcp reject with tcp reset', 'reject'])
  const fwd = node.podCIDR ? [`ip saddr ${node.podCIDR} ${key} @no-endpoints-internal jump reject-svc`] : []
  chain('filter-forward', 'type filter hook forward priority filter - 10; policy accept;', [...fwd, `${key} @no-endpoints-external jump reject-svc`])
  chain('filter-output', 'type filter hook output priority filter - 10; policy accept;', [`${key} @no-endpoints-internal jump reject-svc`, `${key} @no-endpoints-external jump reject-svc`])
  chain('filter-input', 'type filter hook input priority filter - 10; policy accept;', [`${key} @no-endpoints-external jump reject-svc`])
  const head = [
    `add table ip ${tableName}`,
    `delete table ip ${tableName}`,
    `table ip ${tableName} {`,
    `  comment "skiff service proxy of node ${node.name}, generation ${table.generation}"`,
    ...map(c, 'cluster-ips', c.clusterIPs),
    ...map(c, 'host-ips', c.hostIPs),
    ...map(c, 'external', c.external),
    ...set(c, 'no-endpoints-internal', c.noEndpointsInternal),
    ...set(c, 'no-endpoints-external', c.noEndpointsExternal),
  ]
  return { script: [...head, ...c.lines, '}', ''].join('\n'), rules: c.rules }
}

const hex = (n: number) => `0x${n.toString(16)}`
const keyType = 'ipv4_addr . inet_proto . inet_service'

function map(c: Ctx, name: string, all: string[]): string[] {
  // A key twice (two Services claiming one address and port) would fail the whole transaction: first wins.
  const seen = new Set<string>()
  const elements = all.filter((e) => { const k = e.split(' : ')[0]!; return seen.has(k) ? false : (seen.add(k), true) })
  c.rules += elements.length
  const els = elements.length ? [`    elements = { ${elements.join(', ')} }`] : []
  return [`  map ${name} {`, `    type ${keyType} : verdict`, ...els, '  }']
}

function set(c: Ctx, name: string, all: string[]): string[] {
  const elements = [...new Set(all)]
  c.rules += elements.length
  const els = elements.length ? [`    elements = { ${elements.join(', ')} }`] : []
  return [`  set ${name} {`, `    type ${keyType}`, ...els, '  }']
}

function renderPort(c: Ctx, sp: ServicePort, n: number, table: RoutingTable): void {
  const p = proto(sp.protocol)
  if (sp.protocol === 'SCTP') return // not supported: no rules rather than wrong ones
  const vips = [...sp.loadBalancerIPs, ...sp.externalIPs]
  const nodePortKeys = sp.nodePort ? table.node.addresses.map((a) => `${a} . ${p} . ${sp.nodePort}`) : []
  const vipKeys = vips.map((ip) => `${ip} . ${p} . ${sp.port}`)
  const clusterKey = sp.clusterIP ? `${sp.clusterIP} . ${p} . ${sp.port}` : undefined
  if (sp.clusterEndpoints.length === 0) {
    if (clusterKey) c.noEndpointsInternal.push(clusterKey)
    c.noEndpointsExternal.push(...nodePortKeys, ...vipKeys)
    return
  }
  const all = endpointUnion(sp)
  const index = new Map(all.map((e, i) => [`${e.ip}:${e.port}`, i]))
  all.forEach((e, i) => endpointChain(c, sp, n, i, e))
  chooserChain(c, sp, `svc-${n}`, n, sp.clusterEndpoints.map((e) => index.get(`${e.ip}:${e.port}`)!))
  const hasLocal = sp.localEndpoints.length > 0
  const needLocal = hasLocal && (sp.internalTrafficPolicy === 'Local' || sp.externalTrafficPolicy === 'Local')
  if (needLocal) chooserChain(c, sp, `loc-${n}`, n, sp.localEndpoints.map((e) => index.get(`${e.ip}:${e.port}`)!))
  addChain(c, `masq-${n}`, [`meta mark set meta mark | ${hex(masqMark)}`, `goto svc-${n}`])
  if (clusterKey) {
    const internal = sp.internalTrafficPolicy === 'Cluster' ? `goto svc-${n}` : hasLocal ? `goto loc-${n}` : 'drop'
    c.clusterIPs.push(`${clusterKey} : ${internal}`)
    c.hostIPs.push(`${clusterKey} : goto masq-${n}`)
  }
  // The host reaching a NodePort or LB address: every endpoint, masqueraded (kube-proxy).
  c.hostIPs.push(...[...nodePortKeys, ...vipKeys].map((k) => `${k} : goto masq-${n}`))
  if (sp.externalTrafficPolicy === 'Cluster') {
    c.external.push(...[...nodePortKeys, ...vipKeys].map((k) => `${k} : goto masq-${n}`))
    return
  }
  addChain(c, `ext-${n}`, [`ip saddr ${table.node.clusterCIDR} goto svc-${n}`, hasLocal ? `goto loc-${n}` : 'drop'])
  c.external.push(...nodePortKeys.map((k) => `${k} : goto ext-${n}`))
  // A shared LB address without local endpoints: leave it to a node that has some.
  if (hasLocal) c.external.push(...vipKeys.map((k) => `${k} : goto ext-${n}`))
}

function addChain(c: Ctx, name: string, rules: string[]): void {
  c.rules += rules.length
  c.lines.push(`  chain ${name} {`, ...rules.map((r) => `    ${r}`), '  }')
}

function chooserChain(c: Ctx, sp: ServicePort, name: string, n: number, eps: number[]): void {
  const rules: string[] = []
  if (sp.affinitySeconds > 0) for (const i of eps) rules.push(`ip saddr @aff-${n}-${i} goto ep-${n}-${i}`)
  if (eps.length === 1) rules.push(`goto ep-${n}-${eps[0]}`)
  else rules.push(`numgen random mod ${eps.length} vmap { ${eps.map((i, k) => `${k} : goto ep-${n}-${i}`).join(', ')} }`)
  addChain(c, name, rules)
}

function endpointChain(c: Ctx, sp: ServicePort, n: number, i: number, e: Endpoint): void {
  const rules = [`ip saddr ${e.ip} meta mark set meta mark | ${hex(masqMark)}`]
  if (sp.affinitySeconds > 0) {
    c.lines.push(`  set aff-${n}-${i} {`, '    type ipv4_addr', '    flags dynamic,timeout', `    timeout ${sp.affinitySeconds}s`, '  }')
    rules.push(`update @aff-${n}-${i} { ip saddr }`)
  }
  rules.push(`meta l4proto ${proto(sp.protocol)} dnat to ${e.ip}:${e.port}`)
  addChain(c, `ep-${n}-${i}`, rules)
}
