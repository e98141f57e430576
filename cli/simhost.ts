// Simulated hosts: the effects that turn a ClusterSpec into machines on this
// one machine. Each host is a network namespace with one leg (eth0) on the
// cluster's LAN bridge, its own dockerd (own data-root, exec-root, socket,
// pidfile, and so its own containerd), entered with `nsenter --net` (never
// `ip netns exec`: it remounts /sys and hides the cgroup mounts dockerd needs).
// Everything here is idempotent: `up` calls it on every start and resume.

import { spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { readdir, readFile, readlink } from 'node:fs/promises'
import type { ClusterSpec, HostSpec } from './cluster-spec.ts'
import { names } from './cluster-spec.ts'
import { sh } from '../lib/exec.ts'


export { sh }

/** CIDRs this machine already uses (its addresses and routes), so a new LAN collides with none. */
export async function usedCIDRs(): Promise<string[]> {
  const out: string[] = []
  const addrs = JSON.parse((await sh('ip', ['-j', '-4', 'addr'])).stdout) as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>
  for (const l of addrs) for (const a of l.addr_info ?? []) out.push(`${a.local}/${a.prefixlen}`)
  const routes = JSON.parse((await sh('ip', ['-j', '-4', 'route'])).stdout) as Array<{ dst: string }>
  for (const r of routes) if (r.dst && r.dst !== 'default') out.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
  return out
}

const linkExists = async (name: string, netns?: string) => (await sh('ip', ['link', 'show', name], { netns, allowFail: true })).code === 0
/** Does the named network namespace exist (/run/netns/<name>)? */
export const netnsExists = (name: string) => {
  try {
    statSync(`/run/netns/${name}`)
    return true
  } catch {
    return false
  }
}

const lanRuleComment = (s: ClusterSpec) => `skiff-lan:${s.id}`

/**
 * The LAN: a bridge with this machine's address on it. Docker sets the
 * FORWARD policy to DROP and, with br_netfilter, bridged frames pass through
 * it too; an ACCEPT for the bridge at the top of DOCKER-USER (or FORWARD)
 * lets the hosts talk to each other.
 */
export async function ensureLan(s: ClusterSpec): Promise<void> {
  const br = s.lan.bridge
  if (!(await linkExists(br))) await sh('ip', ['link', 'add', br, 'type', 'bridge'])
  const have = (await sh('ip', ['-j', '-4', 'addr', 'show', 'dev', br])).stdout
  if (!have.includes(`"${s.lan.hostIP}"`)) await sh('ip', ['addr', 'add', `${s.lan.hostIP}/24`, 'dev', br])
  await sh('ip', ['link', 'set', br, 'up'])
  const chain = (await sh('iptables', ['-w', '10', '-S', 'DOCKER-USER'], { allowFail: true })).code === 0 ? 'DOCKER-USER' : 'FORWARD'
  const rule = ['-i', br, '-o', br, '-m', 'comment', '--comment', lanRuleComment(s), '-j', 'ACCEPT']
  if ((await sh('iptables', ['-w', '10', '-C', chain, ...rule], { allowFail: true })).code !== 0) await sh('iptables', ['-w', '10', '-I', chain, ...rule])
}

export async function removeLan(s: ClusterSpec): Promise<void> {
  for (const chain of ['DOCKER-USER', 'FORWARD']) {
    const listing = await sh('iptables', ['-w', '10', '-S', chain], { allowFail: true })
    for (const line of listing.stdout.split('\n')) {
      if (!line.includes(lanRuleComment(s))) continue
      const args = line.trim().split(/\s+/).slice(2).map((a) => a.replace(/^"(.*)"$/, '$1'))
      await sh('iptables', ['-w', '10', '-D', chain, ...args], { allowFail: true })
    }
  }
  if (await linkExists(s.lan.bridge)) await sh('ip', ['link', 'del', s.lan.bridge], { allowFail: true })
}

/** A host: its namespace, its leg on the LAN with its addresses and default route, forwarding on. */
export async function ensureHost(s: ClusterSpec, h: HostSpec): Promise<void> {
  const ns = names.netns(s, h)
  const veth = names.veth(s, h)
  if (!netnsExists(ns)) await sh('ip', ['netns', 'add', ns])
  if (!(await linkExists('eth0', ns))) {
    if (await linkExists(veth)) await sh('ip', ['link', 'del', veth])
    await sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
  }
  await sh('ip', ['link', 'set', veth, 'master', s.lan.bridge, 'up'])
  // Forwarding before dockerd starts: a dockerd that turns it on itself also sets FORWARD to DROP.
  await sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1'], { netns: ns })
  await sh('ip', ['link', 'set', 'lo', 'up'], { netns: ns })
  await sh('ip', ['link', 'set', 'eth0', 'up'], { netns: ns })
  const have = (await sh('ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0'], { netns: ns })).stdout
  for (const ip of [h.ip, ...(h.externalIP ? [h.externalIP] : [])]) {
    if (!have.includes(`"${ip}"`)) await sh('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0'], { netns: ns })
  }
  await sh('ip', ['route', 'replace', 'default', 'via', s.lan.hostIP, 'dev', 'eth0', 'src', h.ip], { netns: ns })
}

/** The host's leg down (a dead machine: nothing answers its addresses) or up again. */
export async function setHostLink(s: ClusterSpec, h: HostSpec, up: boolean): Promise<void> {
  await sh('ip', ['link', 'set', names.veth(s, h), up ? 'up' : 'down'], { allowFail: !up })
}

/** Remove a host's namespace (its leg goes with it). Its processes must be gone first. */
export async function removeHost(s: ClusterSpec, h: HostSpec): Promise<void> {
  if (netnsExists(names.netns(s, h))) await sh('ip', ['netns', 'del', names.netns(s, h)], { allowFail: true })
  if (await linkExists(names.veth(s, h))) await sh('ip', ['link', 'del', names.veth(s, h)], { allowFail: true })
}

/** dockerd for a host (run inside its namespace): every path its own, so Engines never share state. */
export function dockerdArgs(s: ClusterSpec, h: HostSpec, stateDir: string): string[] {
  return [
    '--data-root', `${names.hostRoot(stateDir, h)}/docker`,
    '--exec-root', names.execRoot(s, h),
    '-H', `unix://${names.dockerSock(s, h)}`,
    '--pidfile', `${names.runDir(s)}/${h.name}/docker.pid`,
  ]
}

/** Images of the machine's Engine missing from (or different in) a host's Engine, loaded with `docker save | docker load`. */
export async function loadImages(s: ClusterSpec, h: HostSpec, images: string[]): Promise<string[]> {
  const id = async (image: string, host?: string) => (await sh('docker', [...(host ? ['-H', host] : []), 'image', 'inspect', '-f', '{{.Id}}', image], { allowFail: true })).stdout.trim()
  const hostSock = `unix://${names.dockerSock(s, h)}`
  const missing: string[] = []
  for (const image of images) {
    const want = await id(image)
    if (!want) throw new Error(`SKIFF_ERR_UP_IMAGE: ${image} is not in this machine's Docker Engine; run: npm run skiff -- images build`)
    if ((await id(image, hostSock)) !== want) missing.push(image)
  }
  if (!missing.length) return []
  await new Promise<void>((resolve, reject) => {
    const save = spawn('docker', ['save', ...missing], { stdio: ['ignore', 'pipe', 'pipe'] })
    const load = spawn('docker', ['-H', hostSock, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    save.stderr.on('data', (d) => (err += d))
    load.stderr.on('data', (d) => (err += d))
    save.stdout.pipe(load.stdin)
    save.on('error', reject)
    load.on('error', reject)
    load.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker load into ${h.name} failed: ${err.trim()}`))))
  })
  return missing
}

/**
 * Routes on this machine to every node's podCIDR via its InternalIP, so pod IPs
 * answer from here as they do from any host of the LAN. Only routes through
 * the LAN bridge are touched; removing the bridge removes them all.
 */
export async function syncHostRoutes(s: ClusterSpec, nodes: Array<{ podCIDR: string; ip: string }>): Promise<void> {
  const current = JSON.parse((await sh('ip', ['-j', '-4', 'route', 'show', 'dev', s.lan.bridge])).stdout) as Array<{ dst: string; gateway?: string }>
  const want = new Map(nodes.map((n) => [n.podCIDR, n.ip]))
  for (const r of current) {
    if (!r.gateway || r.dst === s.lan.cidr) continue
    if (want.get(r.dst) !== r.gateway) await sh('ip', ['route', 'del', r.dst, 'dev', s.lan.bridge], { allowFail: true })
  }
  for (const [dst, via] of want) {
    if (!current.some((r) => r.dst === dst && r.gateway === via)) await sh('ip', ['route', 'replace', dst, 'via', via, 'dev', s.lan.bridge], { allowFail: true })
  }
}

/** PIDs of every process in a namespace (compared by the namespace file's inode). */
export async function pidsInNetns(ns: string): Promise<number[]> {
  let ino: number
  try {
    ino = statSync(`/run/netns/${ns}`).ino
  } catch {
    return []
  }
  const out: number[] = []
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if ((await readlink(`/proc/${d}/ns/net`)) === `net:[${ino}]`) out.push(Number(d))
    } catch {
      // gone, or not ours to read
    }
  }
  return out
}

/** The container processes a host's Engine runs (children of its containerd shims). */
export async function shimTrees(s: ClusterSpec, h: HostSpec): Promise<number[]> {
  const marker = names.execRoot(s, h)
  const shims: number[] = []
  const parent = new Map<number, number>()
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = await readFile(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
      const cmd = (await readFile(`/proc/${d}/cmdline`, 'utf8')).replaceAll('\0', ' ')
      if (cmd.includes('containerd-shim') && cmd.includes(marker)) shims.push(Number(d))
    } catch {
      // gone
    }
  }
  const tree = new Set(shims)
  for (let grew = true; grew; ) {
    grew = false
    for (const [pid, ppid] of parent) if (tree.has(ppid) && !tree.has(pid)) (tree.add(pid), (grew = true))
  }
  return [...tree]
}
