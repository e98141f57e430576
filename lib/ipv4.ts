// IPv4 addresses and CIDRs: the one home for this arithmetic (pod network,
// node addresses, LAN ranges). IPv6 is not supported yet.

export interface Cidr {
  base: number // network address as an unsigned 32-bit number
  bits: number
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`)
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export function parseCidr(cidr: string): Cidr {
  const [ip, len] = cidr.split('/')
  const bits = Number(len)
  if (!ip || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`)
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return { base: (ipToInt(ip) & mask) >>> 0, bits }
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.bits}`
}

/** The first host address (the bridge gateway and the node's InternalIP): 10.244.1.0/24 -> 10.244.1.1. */
export function firstAddress(cidr: string): string {
  return intToIp(parseCidr(cidr).base + 1)
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr)
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0
  return ((ipToInt(ip) & mask) >>> 0) === c.base
}

export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a)
  const y = parseCidr(b)
  const bits = Math.min(x.bits, y.bits)
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0)
}
