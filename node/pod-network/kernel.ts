// The kernel side of the pod network, through iproute2 (`ip -j`, `bridge -j`)
// in the current network namespace: what is there (parsed by pure
// functions, table-tested) and the commands that change it. Every command
// has a timeout; none throws for a non-zero exit except where it says so.

import { run } from '../../lib/exec.ts'
import { formatCidr, parseCidr } from '../../lib/ipv4.ts'
import { PodNetworkError } from './errors.ts'
import { routeProto, type ActualFdb, type ActualNeigh, type ActualRoute, type ConnectedSubnet, type FdbSpec, type NeighSpec, type RouteSpec } from './plan.ts'

export { run, type RunResult } from '../../lib/exec.ts'

const hint: Record<string, string> = { ip: 'iproute2', bridge: 'iproute2', nft: 'nftables', ethtool: 'ethtool' }

/** Run and return stdout; a failure throws a coded error naming the command. */
export async function mustRun(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args)
  if (r.code === 0) return r.stdout
  const what = r.code === 127 ? `; install ${hint[cmd] ?? cmd} (scripts/setup.sh does)` : ''
  throw new PodNetworkError('Command', `${cmd} ${args.join(' ')} failed: ${r.stderr.trim().slice(0, 500)}${what}`)
}

async function json(cmd: string, args: string[]): Promise<any[]> {
  const out = (await mustRun(cmd, args)).trim()
  return out ? (JSON.parse(out) as any[]) : []
}

// --- parsers (pure) ---

export interface LocalAddress {
  dev: string
  ip: string
  prefixlen: number
  mtu: number
}

/** `ip -j -4 addr show`: every IPv4 address with its interface and that interface's MTU. */
export function parseAddresses(links: any[]): LocalAddress[] {
  const out: LocalAddress[] = []
  for (const l of links) for (const a of l.addr_info ?? []) if (a.family === 'inet' || a.family === undefined) out.push({ dev: l.ifname, ip: a.local, prefixlen: a.prefixlen, mtu: l.mtu })
  return out
}

/** The subnets behind the addresses (loopback and host routes left out). */
export function connectedSubnets(addrs: LocalAddress[], exclude: string[] = []): ConnectedSubnet[] {
  return addrs
    .filter((a) => a.dev !== 'lo' && !exclude.includes(a.dev) && a.prefixlen < 32)
    .map((a) => ({ dev: a.dev, cidr: formatCidr(parseCidr(`${a.ip}/${a.prefixlen}`)) }))
}

/** `ip -j route show proto N`. */
export function parseRoutes(routes: any[]): ActualRoute[] {
  return routes
    .filter((r) => typeof r.dst === 'string' && r.dst !== 'default' && !r.type)
    .map((r) => ({ dst: r.dst.includes('/') ? r.dst : `${r.dst}/32`, ...(r.gateway ? { via: r.gateway } : {}), dev: r.dev, onlink: (r.flags ?? []).includes('onlink'), ...(r.metric ? { metric: r.metric } : {}) }))
}

/** `ip -j neigh show dev D`: the permanent entries (the kernel's own incomplete/failed ones are not ours). */
export function parseNeighbours(entries: any[]): ActualNeigh[] {
  return entries.filter((n) => (n.state ?? []).includes('PERMANENT') && n.lladdr).map((n) => ({ ip: n.dst, mac: n.lladdr }))
}

/** `bridge -j fdb show dev D`: the remote entries (mac -> dst). */
export function parseFdb(entries: any[]): ActualFdb[] {
  return entries.filter((e) => e.mac && e.dst).map((e) => ({ mac: e.mac, dst: e.dst }))
}

export interface VxlanLink {
  mac: string
  mtu: number
  up: boolean
  kind?: string
  vni?: number
  local?: string
  /** The underlay interface name. */
  link?: string
  port?: number
  learning?: boolean
}

/** `ip -j -d link show D`. */
export function parseVxlanLink(links: any[]): VxlanLink | undefined {
  const l = links[0]
  if (!l) return undefined
  const d = l.linkinfo?.info_data ?? {}
  return {
    mac: l.address, mtu: l.mtu, up: (l.flags ?? []).includes('UP'), kind: l.linkinfo?.info_kind,
    vni: d.id, local: d.local, link: d.link, port: d.port, learning: d.learning,
  }
}

// --- reads ---

export async function readAddresses(): Promise<LocalAddress[]> {
  return parseAddresses(await json('ip', ['-j', '-4', 'addr', 'show']))
}

export async function readRoutes(): Promise<ActualRoute[]> {
  return parseRoutes(await json('ip', ['-j', '-4', 'route', 'show', 'table', 'main', 'proto', String(routeProto)]))
}

export async function linkExists(dev: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', 'dev', dev])).code === 0
}

export async function readVxlanLink(dev: string): Promise<VxlanLink | undefined> {
  if (!(await linkExists(dev))) return undefined
  return parseVxlanLink(await json('ip', ['-j', '-d', 'link', 'show', 'dev', dev]))
}

export async function readNeighbours(dev: string): Promise<ActualNeigh[]> {
  return parseNeighbours(await json('ip', ['-j', '-4', 'neigh', 'show', 'dev', dev]))
}

export async function readFdb(dev: string): Promise<ActualFdb[]> {
  return parseFdb(await json('bridge', ['-j', 'fdb', 'show', 'dev', dev]))
}

// --- changes (argument lists are pure, for the tests) ---

export function routeReplaceArgs(r: RouteSpec): string[] {
  return ['route', 'replace', r.dst, 'via', r.via, 'dev', r.dev, ...(r.onlink ? ['onlink'] : []), 'proto', String(routeProto)]
}

export function routeDeleteArgs(r: ActualRoute): string[] {
  return ['route', 'del', r.dst, 'proto', String(routeProto), ...(r.via ? ['via', r.via] : []), 'dev', r.dev, ...(r.metric ? ['metric', String(r.metric)] : [])]
}

export function neighReplaceArgs(n: NeighSpec): string[] {
  return ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', n.dev, 'nud', 'permanent']
}

export function neighDeleteArgs(n: ActualNeigh, dev: string): string[] {
  return ['neigh', 'del', n.ip, 'dev', dev]
}

export function fdbReplaceArgs(f: FdbSpec): string[] {
  return ['fdb', 'replace', f.mac, 'dev', f.dev, 'dst', f.dst, 'self', 'permanent']
}

export function fdbDeleteArgs(f: ActualFdb, dev: string): string[] {
  return ['fdb', 'del', f.mac, 'dev', dev, 'dst', f.dst, 'self']
}
