// The nftables rendering of one node's RoutingTable, in two steps, both pure:
//  - buildNftModel(table): what Skiff's table of the node should hold, as data
//    (chain name → rule lines, set/map name → elements);
//  - renderFull(model, tableName): ONE `nft -f -` script that replaces the
//    table atomically (`add table; delete table; table { ... }` is a single
//    transaction: the kernel never shows a half-built table);
//  - planNftSync(prev, next): the partial transaction that turns the
//    previously applied model into the new one, touching only what changed
//    (kube-proxy's partial syncs), or the full script when that is required.
// Nothing outside the node's own table is ever named.
//
// Layout (modelled on kube-proxy's nftables mode). Chain names are stable:
// <h> is a hash of the ServicePort identity (namespace/name/portName/protocol),
// <e> the endpoint's address and port in hex, so a change to one Service
// renames nothing anywhere else and a partial sync touches only that Service.
//   nat-prerouting  pods of this node → cluster-ips map; anyone → external map
//   nat-output      the host → host-ips map (ClusterIPs, own NodePorts, LB IPs)
//   nat-postrouting masquerade what carries the mark bit, and hairpin
//                   traffic: DNATed with source = destination (set hairpin)
//   svc-<h> / loc-<h>  endpoint choice over all / local endpoints. Without
//                   affinity one rule, DNAT through a map, no chain per
//                   endpoint: `dnat to numgen random mod K map { k : ip . port }`
//                   (nft's cache fetch before every transaction grows with
//                   the chains: 2,000 instead of 12,000 at 10,000 endpoints);
//                   with ClientIP affinity: the affinity sets first, then
//                   `numgen random mod K vmap` to the endpoint chains
//   ep-<h>-<e>      affinity only, one endpoint: hairpin mark, affinity update, DNAT
//   masq-<h>        mark for masquerade, then svc-<h> (eTP Cluster, the host)
//   ext-<h>         externalTrafficPolicy Local entry: pods short-circuit to
//                   svc-<h>, others to loc-<h>, or drop without local endpoints
//   filter-*        reject (TCP reset, ICMP port-unreachable) what is
//                   addressed to a Service without any endpoint
// The cluster DNS address (10.96.0.10:53) is DNATed to the node's own DNS
// server (NodeView.dns), before any Service rule.

import { createHash } from 'node:crypto'
import { ipNum } from './table.ts'
import type { Endpoint, RoutingTable, ServicePort } from './types.ts'

/** The mark bit asking nat-postrouting to masquerade (kube-proxy uses the same one). */
export const masqMark = 0x4000

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

/** `skiff-` and 9 hex digits of the node name's hash (like the node's bridge name). */
export function nftTableName(nodeName: string): string {
  return `skiff-${sha(nodeName).slice(0, 9)}`
}

/** The stable part of every chain name of one ServicePort. */
export function servicePortHash(sp: Pick<ServicePort, 'namespace' | 'service' | 'portName' | 'protocol'>): string {
  return sha(`${sp.namespace}/${sp.service}/${sp.portName}/${sp.protocol}`).slice(0, 10)
}

/** The chooser chain of a ServicePort (svc-<h>). */
export const serviceChainName = (sp: ServicePort) => `svc-${servicePortHash(sp)}`

const endpointSuffix = (e: { ip: string; port: number }) => `${ipNum(e.ip).toString(16).padStart(8, '0')}-${e.port.toString(16)}`

export interface NftChain {
  /** Base chains: `type ... hook ...; policy ...;`. */
  head?: string
  rules: string[]
}

export interface NftSet {
  kind: 'map' | 'set'
  /** Declaration lines (`type ...`, `flags ...`, `timeout ...`). */
  decl: string[]
  /** Element key → element text (`key : verdict` for maps); undefined: filled by the kernel (dynamic). */
  elements?: Map<string, string>
}

/** What the node's table holds. Insertion order is render order (sets first, chains in dependency order). */
export interface NftModel {
  comment: string
  sets: Map<string, NftSet>
  chains: Map<string, NftChain>
}

export interface Rendered {
  script: string
  /** Rules plus map elements: the size of what the kernel holds. */
  rules: number
}

const proto = (p: string) => p.toLowerCase()
const hex = (n: number) => `0x${n.toString(16)}`
const keyType = 'ipv4_addr . inet_proto . inet_service'

/** Every endpoint of the port, cluster ones first, local-only ones after (terminating fallbacks). */
function endpointUnion(sp: ServicePort): Endpoint[] {
  const seen = new Set(sp.clusterEndpoints.map((e) => `${e.ip}:${e.port}`))
  return [...sp.clusterEndpoints, ...sp.localEndpoints.filter((e) => !seen.has(`${e.ip}:${e.port}`))]
}

/** What one ServicePort contributes: its chains and sets, and its entries in the shared maps and sets. Immutable once built. */
interface Fragment {
  chains: Array<[string, NftChain]>
  sets: Array<[string, NftSet]>
  clusterIPs: string[]
  hostIPs: string[]
  external: string[]
  noEndpointsInternal: string[]
  noEndpointsExternal: string[]
  /** `ip . ip` of every endpoint chosen through a DNAT map (no per-endpoint chain to mark hairpin traffic). */
  hairpin: string[]
}

/**
 * Fragments of the previous build, by ServicePort content: an unchanged port
 * reuses its fragment (the same chain objects, so planNftSync skips them by
 * identity), which keeps a sync's JavaScript cost near the size of the change.
 */
export interface ModelCache {
  nodeKey?: string
  fragments: Map<string, Fragment>
  /** The content key of each ServicePort object seen (the incremental table hands unchanged ports over as the same objects). */
  keys?: WeakMap<ServicePort, string>
}

export function buildNftModel(table: RoutingTable, cache?: ModelCache): NftModel {
  const { node } = table
  const m: NftModel = { comment: `skiff service proxy of node ${node.name}`, sets: new Map(), chains: new Map() }
  const all = emptyFragment()
  // Maps and sets first: their content is only known after the ports, but they must render before the chains.
  for (const name of ['cluster-ips', 'host-ips', 'external']) m.sets.set(name, { kind: 'map', decl: [`type ${keyType} : verdict`] })
  for (const name of ['no-endpoints-internal', 'no-endpoints-external']) m.sets.set(name, { kind: 'set', decl: [`type ${keyType}`] })
  m.sets.set('hairpin', { kind: 'set', decl: ['type ipv4_addr . ipv4_addr'] })
  // A port's fragment depends on the port and on the node's addresses and cluster CIDR only.
  const nodeKey = `${node.addresses.join(',')} ${node.clusterCIDR}`
  const before = cache && cache.nodeKey === nodeKey ? cache.fragments : new Map<string, Fragment>()
  const now = new Map<string, Fragment>()
  const keys = cache ? (cache.keys ??= new WeakMap()) : undefined
  for (const sp of table.ports) {
    let key = keys?.get(sp) ?? ''
    if (keys && !key) keys.set(sp, (key = JSON.stringify(sp)))
    const f = before.get(key) ?? renderPort(sp, table)
    if (cache) now.set(key, f)
    for (const [name, ch] of f.chains) m.chains.set(name, ch)
    for (const [name, set] of f.sets) m.sets.set(name, set)
    for (const k of ['clusterIPs', 'hostIPs', 'external', 'noEndpointsInternal', 'noEndpointsExternal', 'hairpin'] as const) for (const e of f[k]) all[k].push(e)
  }
  if (cache) { cache.nodeKey = nodeKey; cache.fragments = now }
  m.sets.get('cluster-ips')!.elements = mapElements(all.clusterIPs)
  m.sets.get('host-ips')!.elements = mapElements(all.hostIPs)
  m.sets.get('external')!.elements = mapElements(all.external)
  m.sets.get('no-endpoints-internal')!.elements = new Map(all.noEndpointsInternal.map((e) => [e, e]))
  m.sets.get('no-endpoints-external')!.elements = new Map(all.noEndpointsExternal.map((e) => [e, e]))
  m.sets.get('hairpin')!.elements = new Map(all.hairpin.map((e) => [e, e]))
  baseChains(m, table)
  return m
}

function baseChains(m: NftModel, table: RoutingTable): void {
  const { node } = table
  const chain = (name: string, head: string | undefined, rules: string[]) => m.chains.set(name, head ? { head, rules } : { rules })
  const key = 'ip daddr . meta l4proto . th dport'
  const fromPods = node.podCIDR ? [`ip saddr ${node.podCIDR} ${key} vmap @cluster-ips`] : []
  // The cluster DNS address goes to this node's DNS server (node-local DNS); the
  // host's own queries go to whichever node's table sees them first.
  const dns = node.dns ? `ip daddr ${node.dns.ip} meta l4proto { tcp, udp } th dport 53 dnat to ${node.dns.target}:${node.dns.port}` : undefined
  const podDns = dns && node.podCIDR ? [`ip saddr ${node.podCIDR} ${dns}`] : []
  chain('nat-prerouting', 'type nat hook prerouting priority dstnat; policy accept;', [...podDns, ...fromPods, `${key} vmap @external`])
  chain('nat-output', 'type nat hook output priority -100; policy accept;', [...(dns ? [dns] : []), `${key} vmap @host-ips`])
  chain('nat-postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [
    `meta mark & ${hex(masqMark)} == ${hex(masqMark)} meta mark set meta mark ^ ${hex(masqMark)} masquerade`,
    // Hairpin of map-chosen endpoints: a pod DNATed back to itself (after DNAT, source = destination).
    'ct status dnat ip saddr . ip daddr @hairpin masquerade',
  ])
  chain('reject-svc', undefined, ['meta l4proto tcp reject with tcp reset', 'reject'])
  const fwd = node.podCIDR ? [`ip saddr ${node.podCIDR} ${key} @no-endpoints-internal jump reject-svc`] : []
  chain('filter-forward', 'type filter hook forward priority filter - 10; policy accept;', [...fwd, `${key} @no-endpoints-external jump reject-svc`])
  chain('filter-output', 'type filter hook output priority filter - 10; policy accept;', [`${key} @no-endpoints-internal jump reject-svc`, `${key} @no-endpoints-external jump reject-svc`])
  chain('filter-input', 'type filter hook input priority filter - 10; policy accept;', [`${key} @no-endpoints-external jump reject-svc`])
}

/** Map elements by key. A key twice (two Services claiming one address and port) would fail the whole transaction: first wins. */
function mapElements(all: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const e of all) {
    const k = e.slice(0, e.indexOf(' : '))
    if (!out.has(k)) out.set(k, e)
  }
  return out
}

/** Rules plus managed set/map elements of a model. */
export function modelSize(m: NftModel): number {
  let n = 0
  for (const c of m.chains.values()) n += c.rules.length
  for (const s of m.sets.values()) n += s.elements?.size ?? 0
  return n
}

/** The whole-table replacement transaction. */
export function renderFull(m: NftModel, tableName: string): string {
  const lines = [`add table ip ${tableName}`, `delete table ip ${tableName}`, `table ip ${tableName} {`, `  comment "${m.comment}"`]
  for (const [name, s] of m.sets) {
    lines.push(`  ${s.kind} ${name} {`, ...s.decl.map((d) => `    ${d}`))
    if (s.elements?.size) lines.push(`    elements = { ${[...s.elements.values()].join(', ')} }`)
    lines.push('  }')
  }
  for (const [name, ch] of m.chains) lines.push(`  chain ${name} {`, ...(ch.head ? [`    ${ch.head}`] : []), ...ch.rules.map((r) => `    ${r}`), '  }')
  return [...lines, '}', ''].join('\n')
}

/** The table as one full-replacement script (what the first sync and every fallback apply). */
export function renderNftables(table: RoutingTable, tableName: string): Rendered {
  const m = buildNftModel(table)
  return { script: renderFull(m, tableName), rules: modelSize(m) }
}

const emptyFragment = (): Fragment => ({ chains: [], sets: [], clusterIPs: [], hostIPs: [], external: [], noEndpointsInternal: [], noEndpointsExternal: [], hairpin: [] })

function renderPort(sp: ServicePort, table: RoutingTable): Fragment {
  const c = emptyFragment()
  const p = proto(sp.protocol)
  if (sp.protocol === 'SCTP') return c // not supported: no rules rather than wrong ones
  const vips = [...sp.loadBalancerIPs, ...sp.externalIPs]
  const nodePortKeys = sp.nodePort ? table.node.addresses.map((a) => `${a} . ${p} . ${sp.nodePort}`) : []
  const vipKeys = vips.map((ip) => `${ip} . ${p} . ${sp.port}`)
  const clusterKey = sp.clusterIP ? `${sp.clusterIP} . ${p} . ${sp.port}` : undefined
  if (sp.clusterEndpoints.length === 0) {
    if (clusterKey) c.noEndpointsInternal.push(clusterKey)
    c.noEndpointsExternal.push(...nodePortKeys, ...vipKeys)
    return c
  }
  const h = servicePortHash(sp)
  // Per-endpoint chains only where affinity needs them (a set per endpoint); otherwise DNAT through a map.
  if (sp.affinitySeconds > 0) for (const e of endpointUnion(sp)) endpointChain(c, sp, h, e)
  else c.hairpin.push(...endpointUnion(sp).map((e) => `${e.ip} . ${e.ip}`))
  chooserChain(c, sp, `svc-${h}`, h, sp.clusterEndpoints)
  const hasLocal = sp.localEndpoints.length > 0
  const needLocal = hasLocal && (sp.internalTrafficPolicy === 'Local' || sp.externalTrafficPolicy === 'Local')
  if (needLocal) chooserChain(c, sp, `loc-${h}`, h, sp.localEndpoints)
  c.chains.push([`masq-${h}`, { rules: [`meta mark set meta mark | ${hex(masqMark)}`, `goto svc-${h}`] }])
  if (clusterKey) {
    const internal = sp.internalTrafficPolicy === 'Cluster' ? `goto svc-${h}` : hasLocal ? `goto loc-${h}` : 'drop'
    c.clusterIPs.push(`${clusterKey} : ${internal}`)
    c.hostIPs.push(`${clusterKey} : goto masq-${h}`)
  }
  // The host reaching a NodePort or LB address: every endpoint, masqueraded (kube-proxy).
  c.hostIPs.push(...[...nodePortKeys, ...vipKeys].map((k) => `${k} : goto masq-${h}`))
  if (sp.externalTrafficPolicy === 'Cluster') {
    c.external.push(...[...nodePortKeys, ...vipKeys].map((k) => `${k} : goto masq-${h}`))
    return c
  }
  c.chains.push([`ext-${h}`, { rules: [`ip saddr ${table.node.clusterCIDR} goto svc-${h}`, hasLocal ? `goto loc-${h}` : 'drop'] }])
  c.external.push(...nodePortKeys.map((k) => `${k} : goto ext-${h}`))
  // A shared LB address without local endpoints: leave it to a node that has some.
  if (hasLocal) c.external.push(...vipKeys.map((k) => `${k} : goto ext-${h}`))
  return c
}

function chooserChain(c: Fragment, sp: ServicePort, name: string, h: string, eps: Endpoint[]): void {
  const rules: string[] = []
  const ep = (e: Endpoint) => `ep-${h}-${endpointSuffix(e)}`
  if (sp.affinitySeconds === 0) {
    const p = `meta l4proto ${proto(sp.protocol)}`
    if (eps.length === 1) rules.push(`${p} dnat to ${eps[0]!.ip}:${eps[0]!.port}`)
    else rules.push(`${p} dnat to numgen random mod ${eps.length} map { ${eps.map((e, k) => `${k} : ${e.ip} . ${e.port}`).join(', ')} }`)
    c.chains.push([name, { rules }])
    return
  }
  for (const e of eps) rules.push(`ip saddr @aff-${h}-${endpointSuffix(e)} goto ${ep(e)}`)
  if (eps.length === 1) rules.push(`goto ${ep(eps[0]!)}`)
  else rules.push(`numgen random mod ${eps.length} vmap { ${eps.map((e, k) => `${k} : goto ${ep(e)}`).join(', ')} }`)
  c.chains.push([name, { rules }])
}

function endpointChain(c: Fragment, sp: ServicePort, h: string, e: Endpoint): void {
  const suffix = `${h}-${endpointSuffix(e)}`
  const rules = [`ip saddr ${e.ip} meta mark set meta mark | ${hex(masqMark)}`]
  if (sp.affinitySeconds > 0) {
    // Dynamic: the kernel fills it; a sync never touches its elements (affinity survives partial syncs).
    c.sets.push([`aff-${suffix}`, { kind: 'set', decl: ['type ipv4_addr', 'flags dynamic,timeout', `timeout ${sp.affinitySeconds}s`] }])
    rules.push(`update @aff-${suffix} { ip saddr }`)
  }
  rules.push(`meta l4proto ${proto(sp.protocol)} dnat to ${e.ip}:${e.port}`)
  c.chains.push([`ep-${suffix}`, { rules }])
}

export type SyncMode = 'full' | 'partial'

export interface SyncModeInputs {
  /** A model is known to be in the kernel (a previous apply succeeded since the last full one). */
  applied: boolean
  /** The last apply failed, or the table went missing: the kernel state is not known. */
  lastFailed: boolean
  lastFullAt: number
  now: number
  /** Replace the whole table at least this often when something changes (repairs drift in our table). */
  fullSyncIntervalMs: number
}

/** Full replacement on the first sync, after a failure, and periodically; partial otherwise. Pure. */
export function chooseSyncMode(o: SyncModeInputs): SyncMode {
  if (!o.applied || o.lastFailed) return 'full'
  return o.now - o.lastFullAt >= o.fullSyncIntervalMs ? 'full' : 'partial'
}

export interface NftPlan {
  /** none: nothing changed, no nft call at all. */
  mode: 'full' | 'partial' | 'none'
  script: string
  /** Commands in a partial transaction (the full one counts as 1). */
  ops: number
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i])

/** A declaration that cannot be changed in place (a set's type or timeout, a base chain's hook): only a full sync can. */
function declarationsChanged(prev: NftModel, next: NftModel): boolean {
  for (const [name, s] of next.sets) {
    const old = prev.sets.get(name)
    if (old === s) continue
    if (old && (old.kind !== s.kind || !sameList(old.decl, s.decl) || !old.elements !== !s.elements)) return true
  }
  for (const [name, ch] of next.chains) {
    const old = prev.chains.get(name)
    if ((old ? old.head : undefined) !== ch.head && (old || ch.head)) return true
  }
  for (const [name, ch] of prev.chains) if (ch.head && !next.chains.has(name)) return true
  return false
}

/**
 * The one transaction that turns the applied model `prev` into `next`. Order
 * matters to nft: new sets and chains first (so rules and elements can name
 * them), then removed/changed map elements, changed chains flushed and
 * re-filled, new/changed elements, and last the chains and sets nothing
 * refers to any more (flushed first, so chains that jump to each other can go
 * together). Full replacement when asked, without `prev`, or when a
 * declaration changed. Pure.
 */
export function planNftSync(o: { prev?: NftModel; next: NftModel; tableName: string; mode: SyncMode }): NftPlan {
  const { prev, next } = o
  if (o.mode === 'full' || !prev || declarationsChanged(prev, next)) return { mode: 'full', script: renderFull(next, o.tableName), ops: 1 }
  const T = `ip ${o.tableName}`
  const head: string[] = []
  const delElements: string[] = []
  const rules: string[] = []
  const addElements: string[] = []
  const tail: string[] = []
  for (const [name, s] of next.sets) if (!prev.sets.has(name)) head.push(`add ${s.kind} ${T} ${name} { ${s.decl.join('; ')}; }`)
  for (const [name, s] of next.sets) {
    if (!s.elements) continue
    const old = prev.sets.get(name)?.elements ?? new Map<string, string>()
    const gone = [...old.keys()].filter((k) => s.elements!.get(k) !== old.get(k))
    const come = [...s.elements].filter(([k, v]) => old.get(k) !== v).map(([, v]) => v)
    if (gone.length) delElements.push(`delete element ${T} ${name} { ${gone.join(', ')} }`)
    if (come.length) addElements.push(`add element ${T} ${name} { ${come.join(', ')} }`)
  }
  for (const [name, ch] of next.chains) {
    const old = prev.chains.get(name)
    if (old && (old === ch || sameList(old.rules, ch.rules))) continue
    if (old) rules.push(`flush chain ${T} ${name}`)
    else head.push(`add chain ${T} ${name}`)
    for (const r of ch.rules) rules.push(`add rule ${T} ${name} ${r}`)
  }
  const goneChains = [...prev.chains.keys()].filter((n) => !next.chains.has(n))
  tail.push(...goneChains.map((n) => `flush chain ${T} ${n}`), ...goneChains.map((n) => `delete chain ${T} ${n}`))
  for (const [name, s] of prev.sets) if (!next.sets.has(name)) tail.push(`delete ${s.kind} ${T} ${name}`)
  const all = [...head, ...delElements, ...rules, ...addElements, ...tail]
  return all.length === 0 ? { mode: 'none', script: '', ops: 0 } : { mode: 'partial', script: all.join('\n') + '\n', ops: all.length }
}
