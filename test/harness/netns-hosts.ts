// Simulated hosts for the pod network tests and benchmark, all in network
// namespaces of their own (nothing is added to this machine's namespace but
// the /run/netns entries):
//
//   <id>-lan   the LAN: bridge br0 (lan.cidr, router .1) and, with
//              `routed` hosts, a second segment br1 (lan2.cidr, .1) that
//              this namespace routes to; it plays "outside the cluster".
//   <id>-hN    host N: eth0 on the LAN (InternalIP .10+N), default route via
//              the router, forwarding on, a bridge cbr0 with the podCIDR's
//              first address (what the Docker node network is) and
//   <id>-hNpM  pod M of host N: eth0 on cbr0, default route via the gateway.
//
// Everything is entered with `nsenter --net` (never `ip netns exec`), and
// remove() deletes every namespace (their links, routes and tables go with
// them). Names and the LAN range are new per run, so runs never collide.

import { sh } from '../../lib/exec.ts'
import { netnsExists } from '../../cli/simhost.ts'
import { randomBytes } from 'node:crypto'
import { cidrsOverlap, intToIp, parseCidr } from '../../lib/ipv4.ts'
import { planIptablesRules } from '../../node/network.ts'

export { sh }
export type { RunResult as Result } from '../../lib/exec.ts'

export interface SimPod {
  ns: string
  ip: string
}

export interface SimHost {
  name: string
  ns: string
  /** InternalIP. */
  ip: string
  podCIDR: string
  gateway: string
  pods: SimPod[]
  /** On the second, routed segment (not L2-adjacent to the others). */
  routed: boolean
}

export interface SimNet {
  id: string
  clusterCIDR: string
  lan: { ns: string; cidr: string; routerIP: string }
  lan2?: { cidr: string; routerIP: string }
  hosts: SimHost[]
  /** Set the pods' MTU (and their host-side veths'), as Docker does from the network's MTU. */
  setPodMtu(mtu: number): Promise<void>
  remove(): Promise<void>
}

export interface SimNetOptions {
  /** Hosts on the LAN segment. */
  hosts: number
  /** Hosts on a second segment, reachable only through the LAN namespace's routing. */
  routed?: number
  podsPerHost: number
  clusterCIDR?: string
  /** Host 1 gets Docker's filter rules: FORWARD policy DROP, DOCKER-USER with node/network.ts's accepts, Docker's egress accepts for cbr0. */
  dockerRulesOnFirstHost?: boolean
}

/** CIDRs this machine's own namespace uses (addresses and routes). */
async function usedCIDRs(): Promise<string[]> {
  const out: string[] = []
  for (const l of JSON.parse((await sh('ip', ['-j', '-4', 'addr'])).stdout)) for (const a of l.addr_info ?? []) out.push(`${a.local}/${a.prefixlen}`)
  for (const r of JSON.parse((await sh('ip', ['-j', '-4', 'route'])).stdout)) if (r.dst && r.dst !== 'default') out.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
  return out
}

/** Free /24s of 10.123.0.0/16 (none of this machine's addresses or routes overlaps them). */
async function freeLans(n: number, avoid: string[]): Promise<string[]> {
  const used = [...(await usedCIDRs()), ...avoid]
  const out: string[] = []
  const start = randomBytes(1)[0]!
  for (let i = 0; i < 256 && out.length < n; i++) {
    const cidr = `10.123.${(start + i) % 256}.0/24`
    if (!used.some((u) => cidrsOverlap(u, cidr))) out.push(cidr)
  }
  if (out.length < n) throw new Error('no free /24 in 10.123.0.0/16 for the simulated LAN')
  return out
}

const exists = netnsExists

/** Build the namespaces. On any failure what was made is removed before the error is thrown. */
export async function createSimNet(o: SimNetOptions): Promise<SimNet> {
  const id = `pn${randomBytes(3).toString('hex')}`
  const clusterCIDR = o.clusterCIDR ?? '10.244.0.0/16'
  const [lanCidr, lan2Cidr] = await freeLans(o.routed ? 2 : 1, [clusterCIDR])
  const at = (cidr: string, n: number) => intToIp(parseCidr(cidr).base + n)
  const made: string[] = []
  const addNs = async (ns: string) => {
    await sh('ip', ['netns', 'add', ns])
    made.push(ns)
    await sh('ip', ['link', 'set', 'lo', 'up'], { netns: ns })
  }
  const net: SimNet = {
    id, clusterCIDR,
    lan: { ns: `${id}-lan`, cidr: lanCidr!, routerIP: at(lanCidr!, 1) },
    ...(lan2Cidr ? { lan2: { cidr: lan2Cidr, routerIP: at(lan2Cidr, 1) } } : {}),
    hosts: [],
    async setPodMtu(mtu) {
      for (const h of net.hosts) {
        for (const [j, p] of h.pods.entries()) {
          await sh('ip', ['link', 'set', 'eth0', 'mtu', String(mtu)], { netns: p.ns })
          await sh('ip', ['link', 'set', `v${j + 1}`, 'mtu', String(mtu)], { netns: h.ns })
        }
      }
    },
    async remove() {
      for (const ns of [...made].reverse()) if (exists(ns)) await sh('ip', ['netns', 'del', ns], { allowFail: true })
    },
  }
  try {
    const lan = net.lan.ns
    await addNs(lan)
    await sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1'], { netns: lan })
    for (const [br, cidr] of [['br0', lanCidr], ['br1', lan2Cidr]] as const) {
      if (!cidr) continue
      await sh('ip', ['link', 'add', br, 'type', 'bridge'], { netns: lan })
      await sh('ip', ['addr', 'add', `${at(cidr, 1)}/24`, 'dev', br], { netns: lan })
      await sh('ip', ['link', 'set', br, 'up'], { netns: lan })
    }
    const total = o.hosts + (o.routed ?? 0)
    for (let i = 1; i <= total; i++) {
      const routed = i > o.hosts
      const seg = routed ? lan2Cidr! : lanCidr!
      const podCIDR = `${intToIp(parseCidr(clusterCIDR).base + i * 256)}/24`
      const h: SimHost = { name: `${id}-h${i}`, ns: `${id}-h${i}`, ip: at(seg, 10 + i), podCIDR, gateway: at(podCIDR, 1), pods: [], routed }
      await addNs(h.ns)
      await sh('ip', ['link', 'add', `h${i}`, 'netns', lan, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns])
      await sh('ip', ['link', 'set', `h${i}`, 'master', routed ? 'br1' : 'br0', 'up'], { netns: lan })
      await sh('ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0'], { netns: h.ns })
      await sh('ip', ['link', 'set', 'eth0', 'up'], { netns: h.ns })
      await sh('ip', ['route', 'add', 'default', 'via', at(seg, 1), 'dev', 'eth0'], { netns: h.ns })
      await sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1'], { netns: h.ns })
      await sh('ip', ['link', 'add', 'cbr0', 'type', 'bridge'], { netns: h.ns })
      await sh('ip', ['addr', 'add', `${h.gateway}/24`, 'dev', 'cbr0'], { netns: h.ns })
      await sh('ip', ['link', 'set', 'cbr0', 'up'], { netns: h.ns })
      for (let j = 1; j <= o.podsPerHost; j++) {
        const p: SimPod = { ns: `${id}-h${i}p${j}`, ip: at(podCIDR, 1 + j) }
        await addNs(p.ns)
        await sh('ip', ['link', 'add', `v${j}`, 'netns', h.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns])
        await sh('ip', ['link', 'set', `v${j}`, 'master', 'cbr0', 'up'], { netns: h.ns })
        await sh('ip', ['addr', 'add', `${p.ip}/24`, 'dev', 'eth0'], { netns: p.ns })
        await sh('ip', ['link', 'set', 'eth0', 'up'], { netns: p.ns })
        await sh('ip', ['route', 'add', 'default', 'via', h.gateway], { netns: p.ns })
        h.pods.push(p)
      }
      if (i === 1 && o.dockerRulesOnFirstHost) await dockerFilterRules(h, clusterCIDR)
      net.hosts.push(h)
    }
  } catch (e) {
    await net.remove()
    throw e
  }
  return net
}

/** The filter rules a Docker Engine (20.10, iptables) leaves in its namespace for one bridge network, plus node/network.ts's DOCKER-USER accepts. */
async function dockerFilterRules(h: SimHost, clusterCIDR: string): Promise<void> {
  const ipt = (args: string[]) => sh('iptables', ['-w', '10', ...args], { netns: h.ns })
  await ipt(['-P', 'FORWARD', 'DROP'])
  await ipt(['-N', 'DOCKER-USER'])
  await ipt(['-A', 'DOCKER-USER', '-j', 'RETURN'])
  await ipt(['-A', 'FORWARD', '-j', 'DOCKER-USER'])
  await ipt(['-A', 'FORWARD', '-o', 'cbr0', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'])
  await ipt(['-A', 'FORWARD', '-i', 'cbr0', '!', '-o', 'cbr0', '-j', 'ACCEPT'])
  await ipt(['-A', 'FORWARD', '-i', 'cbr0', '-o', 'cbr0', '-j', 'ACCEPT'])
  for (const rule of planIptablesRules(h.name, h.podCIDR, clusterCIDR)) await ipt(['-I', 'DOCKER-USER', ...rule])
}
