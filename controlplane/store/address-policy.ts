// Where the store refuses to find Redis: inside address ranges that pods (or
// anything else untrusted) can reach, e.g. the cluster's pod and service
// CIDRs. A Redis there can be read and rewritten by any workload that learns
// the password, and the password is the only thing between a pod and the
// whole cluster state. Pure functions; the store applies them to the
// configured address, to what the sentinels report and to the peer of every
// connection it makes.

import { BlockList, isIP } from 'node:net'

export interface CIDR {
  /** As given, for messages. */
  text: string
  list: BlockList
}

/** Parse `a.b.c.d/n` or `x::/n` (a bare address is a /32 or /128); throws on anything else. */
export function parseCIDR(text: string): CIDR {
  const trimmed = text.trim()
  const slash = trimmed.indexOf('/')
  const addr = slash < 0 ? trimmed : trimmed.slice(0, slash)
  const family = isIP(addr)
  if (family === 0) throw new Error(`not a CIDR: ${JSON.stringify(text)} (want e.g. 10.244.0.0/16 or fd00::/8)`)
  const max = family === 4 ? 32 : 128
  const bitsText = slash < 0 ? String(max) : trimmed.slice(slash + 1)
  const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN
  if (!(bits >= 0 && bits <= max)) throw new Error(`not a CIDR: ${JSON.stringify(text)} (prefix length must be 0..${max})`)
  const list = new BlockList()
  list.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6')
  return { text: trimmed, list }
}

export function parseCIDRs(texts: readonly string[] | undefined): CIDR[] {
  return (texts ?? []).map(parseCIDR)
}

/**
 * The first range that holds `address` (an IP literal; IPv4-mapped IPv6
 * such as ::ffff:10.0.0.1 counts as its IPv4 address), or undefined. A
 * name that is not an IP literal matches nothing: resolve it first.
 */
export function forbiddenRange(address: string, ranges: readonly CIDR[]): CIDR | undefined {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const family = isIP(bare)
  if (family === 0) return undefined
  return ranges.find((r) => r.list.check(bare, family === 4 ? 'ipv4' : 'ipv6'))
}

/** The refusal message for a Redis-side address inside a forbidden range, or undefined. */
export function checkAddress(what: string, address: string, ranges: readonly CIDR[]): string | undefined {
  const hit = forbiddenRange(address, ranges)
  if (!hit) return undefined
  return (
    `${what} is at ${address}, inside ${hit.text}, a range listed in forbiddenCIDRs (pods can reach it): ` +
    'run Redis and the sentinels on addresses outside the pod and service CIDRs (e.g. the control-plane host, ' +
    'bound to its own address or 127.0.0.1) and firewall their ports from the pod network'
  )
}
