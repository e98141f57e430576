// The node's pod network on Docker: one bridge network `skiff-<node>` whose
// subnet is the node's podCIDR (Docker's IPAM hands out pod IPs from it; the
// gateway, the podCIDR's first address, is the node's InternalIP), with IP
// masquerading off so pod-to-pod traffic keeps pod source IPs. Docker's
// isolation chains drop traffic between two of its bridges, so the agent
// inserts ACCEPT rules for the cluster CIDR at the top of DOCKER-USER (which
// Docker evaluates first), tagged `skiff:<node>` so clean-up finds them.

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import type Dockerode from 'dockerode'
import type { Logger } from '../lib/log.ts'
import { firstAddress, formatCidr, parseCidr } from '../lib/ipv4.ts'
import { labels, networkName } from './labels.ts'

export const ruleChain = 'DOCKER-USER'

/** Linux interface names have at most 15 characters: `skiff-` and 9 hex digits of the node name's hash. */
export function bridgeName(node: string): string {
  return `skiff-${createHash('sha256').update(node).digest('hex').slice(0, 9)}`
}

export function ruleComment(node: string): string {
  return `skiff:${node}`
}

/** The DOCKER-USER rules for a node (pure): its pods to the cluster CIDR and back. */
export function planIptablesRules(node: string, podCIDR: string, clusterCIDR: string): string[][] {
  const tag = ['-m', 'comment', '--comment', ruleComment(node), '-j', 'ACCEPT']
  return [
    ['-s', podCIDR, '-d', clusterCIDR, ...tag],
    ['-s', clusterCIDR, '-d', podCIDR, ...tag],
  ]
}

/** `iptables -S DOCKER-USER` lines of a node, turned into `-D` argument lists (pure). */
export function rulesToDelete(listing: string, node: string): string[][] {
  const out: string[][] = []
  for (const line of listing.split('\n')) {
    const args = line.trim().split(/\s+/).map((a) => a.replace(/^"(.*)"$/, '$1'))
    if (args[0] !== '-A' || args[1] !== ruleChain) continue
    const i = args.indexOf('--comment')
    if (i < 0 || args[i + 1] !== ruleComment(node)) continue
    out.push(args.slice(2))
  }
  return out
}

export async function iptables(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return await new Promise((resolve, reject) => {
    execFile('iptables', ['-w', '10', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') reject(new Error(`cannot run iptables (install the iptables package): ${err.message}`))
      else resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr })
    })
  })
}

export interface NodeNetworkInfo {
  name: string
  subnet: string
  gateway: string
  bridge: string
}

export interface NodeNetworkOptions {
  docker: Dockerode
  nodeName: string
  podCIDR: string
  clusterCIDR: string
  logger: Logger
  /** The pods' MTU (com.docker.network.driver.mtu), as the pod network asks (node/pod-network: the underlay's, less 50 for vxlan); default: Docker's. */
  mtu?: number
}

export const mtuOption = 'com.docker.network.driver.mtu'

/** Create (or adopt) the node network and its rules. Idempotent. */
export async function ensureNodeNetwork(o: NodeNetworkOptions): Promise<NodeNetworkInfo> {
  const subnet = formatCidr(parseCidr(o.podCIDR))
  const info: NodeNetworkInfo = { name: networkName(o.nodeName), subnet, gateway: firstAddress(subnet), bridge: bridgeName(o.nodeName) }
  const existing = await inspectNetwork(o.docker, info.name)
  const current = existing?.IPAM?.Config?.[0]?.Subnet
  const inUse = Object.keys(existing?.Containers ?? {}).length > 0
  let recreate = !!existing && current !== subnet
  if (recreate && inUse) throw new Error(`network ${info.name} has subnet ${current}, not the node's podCIDR ${subnet}, and containers still use it`)
  const mtuNow = existing?.Options?.[mtuOption]
  if (existing && !recreate && o.mtu !== undefined && mtuNow !== String(o.mtu)) {
    // A running pod keeps the MTU it has; the network is made again once no pod uses it.
    if (inUse) o.logger.warn({ network: info.name, from: mtuNow ?? 'default', to: o.mtu }, 'the pod network needs another MTU, but pods still use the node network; they keep the old one until they are recreated')
    else recreate = true
  }
  if (recreate) {
    o.logger.info({ network: info.name, subnet: [current, subnet], mtu: [mtuNow, o.mtu] }, 'podCIDR or MTU changed: recreating the node network')
    await o.docker.getNetwork(info.name).remove()
  }
  if (!existing || recreate) {
    await o.docker.createNetwork({
      Name: info.name,
      Driver: 'bridge',
      CheckDuplicate: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: info.gateway }] },
      Options: {
        'com.docker.network.bridge.enable_ip_masquerade': 'false',
        'com.docker.network.bridge.name': info.bridge,
        ...(o.mtu !== undefined ? { [mtuOption]: String(o.mtu) } : {}),
      },
      Labels: { [labels.node]: o.nodeName },
    })
  }
  for (const rule of planIptablesRules(o.nodeName, subnet, o.clusterCIDR)) {
    if ((await iptables(['-C', ruleChain, ...rule])).code === 0) continue
    const r = await iptables(['-I', ruleChain, ...rule])
    if (r.code !== 0) throw new Error(`iptables -I ${ruleChain} failed: ${r.stderr.trim()}`)
  }
  return info
}

async function inspectNetwork(docker: Dockerode, name: string): Promise<any | undefined> {
  try {
    return await docker.getNetwork(name).inspect()
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined
    throw e
  }
}

/** Remove the node's DOCKER-USER rules and its network (after its containers are gone). */
export async function removeNodeNetwork(o: { docker: Dockerode; nodeName: string; logger?: Logger }): Promise<void> {
  const listing = await iptables(['-S', ruleChain])
  for (const rule of rulesToDelete(listing.stdout, o.nodeName)) await iptables(['-D', ruleChain, ...rule])
  const nets = await o.docker.listNetworks({ filters: { label: [`${labels.node}=${o.nodeName}`] } })
  for (const n of nets) {
    try {
      await o.docker.getNetwork(n.Id).remove()
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) o.logger?.warn({ network: n.Name, err: (e as Error).message }, 'cannot remove the node network')
    }
  }
}

/**
 * Hairpin mode on every port of the node bridge, so a pod reaching itself
 * through a Service (DNAT back to its own address, decided while the frame is
 * bridged) gets the frame back out the port it came in on (kubelet's
 * hairpin-veth). Idempotent; called after each sandbox starts.
 */
export async function enableHairpin(bridge: string): Promise<void> {
  const dir = `/sys/class/net/${bridge}/brif`
  let ports: string[]
  try {
    ports = await readdir(dir)
  } catch {
    return // no bridge (yet): nothing to do
  }
  await Promise.all(ports.map((p) => writeFile(`${dir}/${p}/hairpin_mode`, '1').catch(() => undefined)))
}
