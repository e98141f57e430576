// The pod network's nftables table `ip skiff-podnet`, replaced whole in one
// `nft -f` transaction:
//   postrouting (nat, srcnat+10): packets the service proxy marked 0x4000 are
//     left to it (it masquerades them itself; kube-proxy's bit); pod to pod
//     keeps the pod source address; the node's pods to anywhere outside the
//     cluster CIDR are masqueraded to the outgoing interface's address
//     (fully-random where the kernel has it, as flannel does).
//   forward (filter): the cluster CIDR is accepted both ways. Policy accept,
//     never drop: another base chain on the same hook (Docker's FORWARD DROP
//     under iptables-nft) can still drop what this one accepts, and a drop
//     policy here would cut the node off (the flannel nftables comment).
// Priority srcnat+10 runs after the service proxy's nat-postrouting
// (srcnat), so its masquerade wins; the mark test keeps that true whatever
// the order.

import { run } from './kernel.ts'
import { PodNetworkError } from './errors.ts'

export const nftTable = 'skiff-podnet'

/** kube-proxy's and Skiff's service proxy's "masquerade this" bit. */
export const serviceMasqMark = 0x4000

export interface NftInput {
  podCIDR: string
  clusterCIDR: string
  /** `masquerade fully-random` (NF_NAT_RANGE_PROTO_RANDOM_FULLY) when the kernel supports it. */
  randomFully: boolean
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`

/** The whole table as one nft script that replaces any earlier version atomically. Pure. */
export function renderNftTable(o: NftInput): string {
  const mark = hex(serviceMasqMark)
  return [
    `add table ip ${nftTable}`,
    `delete table ip ${nftTable}`,
    `table ip ${nftTable} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat + 10; policy accept;',
    `    meta mark & ${mark} == ${mark} return comment "the service proxy masquerades these"`,
    `    ip saddr ${o.podCIDR} ip daddr ${o.clusterCIDR} return comment "pod to pod keeps its source"`,
    `    ip saddr ${o.podCIDR} ip daddr != 224.0.0.0/4 masquerade${o.randomFully ? ' fully-random' : ''} comment "pods to outside the cluster"`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    ip saddr ${o.clusterCIDR} accept`,
    `    ip daddr ${o.clusterCIDR} accept`,
    '  }',
    '}',
    '',
  ].join('\n')
}

/** Whether this kernel and nft take `masquerade fully-random` (a check-only transaction, nothing changes). */
export async function nftSupportsRandomFully(): Promise<boolean> {
  const probe = renderNftTable({ podCIDR: '10.0.0.0/24', clusterCIDR: '10.0.0.0/16', randomFully: true }).replaceAll(nftTable, `${nftTable}-probe`)
  return (await run('nft', ['-c', '-f', '-'], { input: probe })).code === 0
}

export async function applyNftTable(script: string): Promise<void> {
  const r = await run('nft', ['-f', '-'], { input: script })
  if (r.code !== 0) throw new PodNetworkError('Command', `nft -f of table ip ${nftTable} failed: ${r.stderr.trim().slice(0, 1000)}; check that nftables is installed (scripts/setup.sh) and the kernel has nf_tables`)
}

/** The table as the kernel lists it, or undefined when it does not exist. */
export async function listNftTable(): Promise<string | undefined> {
  const r = await run('nft', ['list', 'table', 'ip', nftTable])
  return r.code === 0 ? r.stdout : undefined
}

export async function deleteNftTable(): Promise<void> {
  const r = await run('nft', ['delete', 'table', 'ip', nftTable])
  if (r.code !== 0 && !/No such file|does not exist/i.test(r.stderr)) throw new PodNetworkError('Command', `nft delete table ip ${nftTable} failed: ${r.stderr.trim()}`)
}
