// The pod network's desired state, a pure function of (this node, the Node
// objects, the mode, this host's connected subnets): which peers get routes,
// which are skipped (not Ready, no podCIDR yet, ...) and which are refused
// with a problem the operator must fix (not on-link for host-gw, podCIDR or
// address conflicts, a peer in another mode). Then the diffs from what the
// kernel holds to what it should hold. No I/O here: pod-network.ts reads the
// kernel, calls these, and applies the result.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { cidrContains, cidrsOverlap, formatCidr, intToIp, parseCidr } from '../../lib/ipv4.ts'
import { podNetworkErrorCodes } from './errors.ts'

export const podNetworkModes = ['host-gw', 'vxlan'] as const
export type PodNetworkMode = (typeof podNetworkModes)[number]

/** Node annotations the module publishes (pod-network.ts start() returns them) and reads from peers. */
export const podNetworkAnnotations = {
  mode: 'skiff.dev/pod-network',
  vtepMac: 'skiff.dev/vtep-mac',
} as const

/** flannel's values: VNI 1, the Linux kernel's VXLAN port, 50 bytes of outer headers (IPv4 + UDP + VXLAN + Ethernet). */
export const vxlanDefaults = { vni: 1, port: 8472, overhead: 50, device: 'skiff.1' } as const

/** The `proto` of every route the module installs, so it finds (and removes) its own routes and nobody else's. */
export const routeProto = 152

export interface NodeView {
  name: string
  podCIDR?: string
  internalIP?: string
  ready: boolean
  deleting: boolean
  /** What the node publishes (annotations), if anything. */
  mode?: string
  vtepMac?: string
}

/** The parts of a Node the pod network reads. Ready means the Ready condition is True. */
export function nodeView(node: KubeObject): NodeView {
  const conditions: any[] = Array.isArray(node.status?.conditions) ? node.status.conditions : []
  const addresses: any[] = Array.isArray(node.status?.addresses) ? node.status.addresses : []
  const ann = node.metadata?.annotations ?? {}
  const podCIDR = node.spec?.podCIDR ?? (Array.isArray(node.spec?.podCIDRs) ? node.spec.podCIDRs[0] : undefined)
  return {
    name: node.metadata?.name ?? '',
    podCIDR: typeof podCIDR === 'string' && podCIDR ? podCIDR : undefined,
    internalIP: addresses.find((a) => a?.type === 'InternalIP' && typeof a.address === 'string')?.address,
    ready: conditions.some((c) => c?.type === 'Ready' && c.status === 'True'),
    deleting: !!node.metadata?.deletionTimestamp,
    mode: typeof ann[podNetworkAnnotations.mode] === 'string' ? ann[podNetworkAnnotations.mode] : undefined,
    vtepMac: typeof ann[podNetworkAnnotations.vtepMac] === 'string' ? ann[podNetworkAnnotations.vtepMac] : undefined,
  }
}

const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/** A unicast MAC in lower case (what `ip` prints); multicast and all-zero MACs cannot be a VTEP. */
export function isVtepMac(mac: string): boolean {
  return macPattern.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00'
}

/** A random locally administered unicast MAC (the kernel's random MACs have the same shape). */
export function randomVtepMac(bytes: Uint8Array): string {
  const b = [...bytes.slice(0, 6)]
  b[0] = (b[0]! & 0xfe) | 0x02
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** The MTU pods must use: the underlay's, less the VXLAN headers in vxlan mode. */
export function podMtu(mode: PodNetworkMode, underlayMtu: number): number {
  return mode === 'vxlan' ? underlayMtu - vxlanDefaults.overhead : underlayMtu
}

/** An IPv4 subnet this host is directly connected to (an address with its prefix on an interface). */
export interface ConnectedSubnet {
  dev: string
  cidr: string
}

export interface RouteSpec {
  dst: string
  via: string
  dev: string
  onlink: boolean
}

export interface NeighSpec {
  ip: string
  mac: string
  dev: string
}

export interface FdbSpec {
  mac: string
  dst: string
  dev: string
}

export type SkipReason = 'deleting' | 'not-ready' | 'no-pod-cidr' | 'no-internal-ip' | 'no-vtep-mac'
export type RefuseReason = 'not-on-link' | 'pod-cidr-conflict' | 'internal-ip-conflict' | 'mode-mismatch' | 'vtep-mac-conflict'

export interface PeerPlan {
  node: string
  podCIDR?: string
  internalIP?: string
  state: 'routed' | 'skipped' | 'refused'
  reason?: SkipReason | RefuseReason
  /** For refused peers: what is wrong and what to do, prefixed with its SKIFF_ERR code. */
  message?: string
}

export interface Problem {
  node: string
  /** overlay-unreachable: routed, but the overlay self-check gets no answer (probe.ts). */
  reason: RefuseReason | 'overlay-unreachable'
  code: string
  message: string
}

export interface DesiredState {
  routes: RouteSpec[]
  neighbours: NeighSpec[]
  fdb: FdbSpec[]
  peers: PeerPlan[]
  problems: Problem[]
}

export interface PlanInput {
  mode: PodNetworkMode
  self: { name: string; podCIDR: string; nodeIP: string; vtepMac?: string }
  clusterCIDR: string
  nodes: NodeView[]
  /** host-gw: this host's connected subnets (the overlay device left out). */
  connected: ConnectedSubnet[]
  /** vxlan: the overlay device (default skiff.1). */
  vxlanDevice?: string
}

const codeOf: Record<RefuseReason, string> = {
  'not-on-link': podNetworkErrorCodes.NotOnLink,
  'pod-cidr-conflict': podNetworkErrorCodes.PodCIDRConflict,
  'internal-ip-conflict': podNetworkErrorCodes.NodeIPConflict,
  'mode-mismatch': podNetworkErrorCodes.ModeMismatch,
  'vtep-mac-conflict': podNetworkErrorCodes.VtepMacConflict,
}

function validCidr(c: string): boolean {
  try {
    parseCidr(c)
    return /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c)
  } catch {
    return false
  }
}

function validIp(ip: string): boolean {
  return validCidr(`${ip}/32`)
}

/** The connected subnet holding `ip`, longest prefix first; undefined when `ip` is only reachable through a router. */
export function onLinkSubnet(ip: string, connected: ConnectedSubnet[]): ConnectedSubnet | undefined {
  return connected
    .filter((s) => parseCidr(s.cidr).bits < 32 && cidrContains(s.cidr, ip))
    .sort((a, b) => parseCidr(b.cidr).bits - parseCidr(a.cidr).bits || a.dev.localeCompare(b.dev))[0]
}

interface Candidate {
  peer: PeerPlan
  view: NodeView
  podCIDR: string
  internalIP: string
  dev?: string
}

type Verdict = { skip: SkipReason } | { refuse: [RefuseReason, string] } | { route: { dev?: string } }

/** One peer on its own: skipped for now, refused (with what to fix), or routable (host-gw: through which interface). */
function judgePeer(v: NodeView, i: PlanInput): Verdict {
  const selfCIDR = formatCidr(parseCidr(i.self.podCIDR))
  if (v.deleting) return { skip: 'deleting' }
  if (!v.ready) return { skip: 'not-ready' }
  if (!v.podCIDR) return { skip: 'no-pod-cidr' }
  if (!v.internalIP) return { skip: 'no-internal-ip' }
  if (!validCidr(v.podCIDR)) return { refuse: ['pod-cidr-conflict', `node ${v.name} has podCIDR ${JSON.stringify(v.podCIDR)}, which is not an IPv4 CIDR; fix the Node's spec.podCIDR`] }
  if (!validIp(v.internalIP)) return { refuse: ['internal-ip-conflict', `node ${v.name} has InternalIP ${JSON.stringify(v.internalIP)}, which is not an IPv4 address; check its agent's --node-ip`] }
  if (!cidrContains(i.clusterCIDR, intToIp(parseCidr(v.podCIDR).base)) || parseCidr(v.podCIDR).bits < parseCidr(i.clusterCIDR).bits) {
    return { refuse: ['pod-cidr-conflict', `node ${v.name} has podCIDR ${v.podCIDR}, outside the cluster CIDR ${i.clusterCIDR}; every node must use the same --cluster-cidr`] }
  }
  if (cidrsOverlap(v.podCIDR, selfCIDR)) return { refuse: ['pod-cidr-conflict', `node ${v.name} has podCIDR ${v.podCIDR}, which overlaps this node's ${selfCIDR}; two nodes were given the same range: delete one of the Nodes so it gets a new one`] }
  if (v.internalIP === i.self.nodeIP) return { refuse: ['internal-ip-conflict', `node ${v.name} has this node's InternalIP ${v.internalIP}; give each node its own address (--node-ip)`] }
  if (v.mode !== undefined && v.mode !== i.mode) return { refuse: ['mode-mismatch', `node ${v.name} runs the ${v.mode} pod network and this node ${i.mode}; every node must use the same --pod-network`] }
  if (i.mode === 'vxlan') {
    if (!v.vtepMac) return { skip: 'no-vtep-mac' }
    if (!isVtepMac(v.vtepMac) || v.vtepMac === i.self.vtepMac) {
      return { refuse: ['vtep-mac-conflict', `node ${v.name} publishes VTEP MAC ${JSON.stringify(v.vtepMac)}, ${isVtepMac(v.vtepMac) ? "this node's own" : 'not a unicast MAC'}; remove vtep-mac from that agent's state dir and restart it`] }
    }
    return { route: {} }
  }
  const dev = onLinkSubnet(v.internalIP, i.connected)?.dev
  if (dev) return { route: { dev } }
  const nets = i.connected.map((s) => s.cidr).join(', ') || 'none'
  return { refuse: ['not-on-link', `node ${v.name}'s InternalIP ${v.internalIP} is not in a subnet this host is directly connected to (${nets}); host-gw needs every node on one layer-2 segment: use --pod-network vxlan`] }
}

/** What the kernel should hold for these nodes. Peers are listed by name; the order of every list is stable. */
export function planPodNetwork(i: PlanInput): DesiredState {
  const device = i.vxlanDevice ?? vxlanDefaults.device
  const out: DesiredState = { routes: [], neighbours: [], fdb: [], peers: [], problems: [] }
  const refuse = (p: PeerPlan, [reason, message]: [RefuseReason, string]) => {
    Object.assign(p, { state: 'refused', reason, message: `${codeOf[reason]}: ${message}` })
    out.problems.push({ node: p.node, reason, code: codeOf[reason], message: p.message! })
  }
  // 1. Each peer on its own.
  const candidates: Candidate[] = []
  for (const v of [...i.nodes].filter((n) => n.name !== i.self.name).sort((a, b) => a.name.localeCompare(b.name))) {
    const p: PeerPlan = { node: v.name, state: 'skipped', ...(v.podCIDR ? { podCIDR: v.podCIDR } : {}), ...(v.internalIP ? { internalIP: v.internalIP } : {}) }
    out.peers.push(p)
    const verdict = judgePeer(v, i)
    if ('skip' in verdict) p.reason = verdict.skip
    else if ('refuse' in verdict) refuse(p, verdict.refuse)
    else candidates.push({ peer: p, view: v, podCIDR: formatCidr(parseCidr(v.podCIDR!)), internalIP: v.internalIP!, dev: verdict.route.dev })
  }
  // 2. Conflicts between peers: neither wins (the API holds an ambiguity only an operator can settle).
  const bad = new Set<Candidate>()
  for (const a of candidates) {
    const why = candidates.map((b) => (a === b ? undefined : conflict(a, b, i.mode))).find(Boolean)
    if (!why) continue
    bad.add(a)
    refuse(a.peer, why)
  }
  // 3. The entries: one route per peer (host-gw), or flannel's route, neighbour and FDB entry (vxlan).
  for (const c of candidates.filter((x) => !bad.has(x))) {
    c.peer.state = 'routed'
    if (i.mode === 'host-gw') {
      out.routes.push({ dst: c.podCIDR, via: c.internalIP, dev: c.dev!, onlink: false })
    } else {
      const gw = intToIp(parseCidr(c.podCIDR).base)
      out.routes.push({ dst: c.podCIDR, via: gw, dev: device, onlink: true })
      out.neighbours.push({ ip: gw, mac: c.view.vtepMac!, dev: device })
      out.fdb.push({ mac: c.view.vtepMac!, dst: c.internalIP, dev: device })
    }
  }
  return out
}

function conflict(a: Candidate, b: Candidate, mode: PodNetworkMode): [RefuseReason, string] | undefined {
  const pair = `nodes ${a.view.name} and ${b.view.name}`
  if (cidrsOverlap(a.podCIDR, b.podCIDR)) return ['pod-cidr-conflict', `${pair} have overlapping podCIDRs (${a.podCIDR}, ${b.podCIDR}); delete one of the Nodes so it gets a new range`]
  if (a.internalIP === b.internalIP) return ['internal-ip-conflict', `${pair} have the same InternalIP ${a.internalIP}; give each node its own address (--node-ip)`]
  if (mode === 'vxlan' && a.view.vtepMac === b.view.vtepMac) return ['vtep-mac-conflict', `${pair} publish the same VTEP MAC ${a.view.vtepMac}; remove vtep-mac from one agent's state dir and restart it`]
  return undefined
}

// --- diffs: what the kernel holds -> what it should hold ---

export interface ActualRoute {
  dst: string
  via?: string
  dev: string
  onlink: boolean
  metric?: number
}

export interface RouteChanges {
  /** `ip route replace` each (adds a missing one, rewrites a wrong one). */
  replace: RouteSpec[]
  /** Routes of ours that no peer wants any more (or duplicates). */
  remove: ActualRoute[]
}

const normDst = (dst: string) => formatCidr(parseCidr(dst.includes('/') ? dst : `${dst}/32`))

export function planRouteChanges(desired: RouteSpec[], actual: ActualRoute[]): RouteChanges {
  const want = new Map(desired.map((r) => [normDst(r.dst), r]))
  const seen = new Set<string>()
  const out: RouteChanges = { replace: [], remove: [] }
  const byDst = new Map<string, ActualRoute[]>()
  for (const a of actual) {
    const k = normDst(a.dst)
    byDst.set(k, [...(byDst.get(k) ?? []), a])
  }
  for (const [k, list] of byDst) {
    const w = want.get(k)
    if (!w) {
      out.remove.push(...list)
      continue
    }
    // `replace` rewrites the metric-0 route; any other of ours for the same destination goes.
    const main = list.find((a) => !a.metric) ?? list[0]!
    out.remove.push(...list.filter((a) => a !== main && a.metric))
    if (main.metric || main.via !== w.via || main.dev !== w.dev || main.onlink !== w.onlink) out.replace.push(w)
    seen.add(k)
  }
  for (const [k, w] of want) if (!seen.has(k)) out.replace.push(w)
  out.replace.sort((a, b) => a.dst.localeCompare(b.dst))
  return out
}

export interface ActualNeigh {
  ip: string
  mac: string
}

export function planNeighChanges(desired: NeighSpec[], actual: ActualNeigh[]): { replace: NeighSpec[]; remove: ActualNeigh[] } {
  const have = new Map(actual.map((a) => [a.ip, a]))
  const want = new Set(desired.map((d) => d.ip))
  return {
    replace: desired.filter((d) => have.get(d.ip)?.mac !== d.mac),
    remove: actual.filter((a) => !want.has(a.ip)),
  }
}

export interface ActualFdb {
  mac: string
  dst: string
}

export function planFdbChanges(desired: FdbSpec[], actual: ActualFdb[]): { replace: FdbSpec[]; remove: ActualFdb[] } {
  const want = new Map(desired.map((d) => [d.mac, d]))
  const ok = (a: ActualFdb) => want.get(a.mac)?.dst === a.dst
  return {
    replace: desired.filter((d) => !actual.some((a) => a.mac === d.mac && a.dst === d.dst)),
    // An entry for a wanted MAC with another destination goes too: a MAC with two remotes would flood both.
    remove: actual.filter((a) => !ok(a)),
  }
}

// --- the overlay self-check (probe.ts) ---

export interface OverlayCheck {
  node: string
  internalIP?: string
  /** Failed probes in a row. */
  failures: number
  detail?: string
}

/**
 * Peers whose overlay probe failed twice in a row: one miss is allowed,
 * since a peer that has just joined may not have this node's entries yet.
 */
export function overlayProblems(checks: OverlayCheck[]): Problem[] {
  return checks
    .filter((c) => c.failures >= 2)
    .sort((a, b) => a.node.localeCompare(b.node))
    .map((c) => ({
      node: c.node,
      reason: 'overlay-unreachable' as const,
      code: podNetworkErrorCodes.OverlayTcp,
      message: `${podNetworkErrorCodes.OverlayTcp}: TCP through the overlay to node ${c.node} gets no answer (${c.detail ?? 'failed'}, ${c.failures} times in a row); let UDP ${vxlanDefaults.port} through between this host and ${c.internalIP ?? 'it'}, and if plain UDP does get through, turn TX checksum offload off (disableTxChecksumOffload, or ethtool -K ${vxlanDefaults.device} tx-checksum-ip-generic off)`,
    }))
}
