// recursion: only clients inside the cluster may use the node's upstream
// resolvers (pod CIDRs, node addresses, loopback); others get REFUSED, so the
// node is not an open resolver. Runs after kubernetes: cluster names are
// answered to anyone who can reach the server.

import type { Handler } from '../types.ts'
import { RCODE, rcodeReply } from '../wire.ts'

export interface Cidr {
  net: number
  mask: number
}

const ipToInt = (ip: string): number | undefined => {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(ip)
  if (!m) return undefined
  const p = m.slice(1).map(Number)
  if (p.some((x) => x > 255)) return undefined
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0
}

export function parseCidr(s: string): Cidr {
  const [ip, bits = '32'] = s.split('/')
  const n = ipToInt(ip!)
  const b = Number(bits)
  if (n === undefined || !Number.isInteger(b) || b < 0 || b > 32) throw new Error(`SKIFF_ERR_DNS_BAD_CIDR: ${s}`)
  const mask = b === 0 ? 0 : (~0 << (32 - b)) >>> 0
  return { net: (n & mask) >>> 0, mask }
}

export function allowed(cidrs: Cidr[], ip: string): boolean {
  const n = ipToInt(ip)
  if (n === undefined) return ip === '::1'
  return cidrs.some((c) => ((n & c.mask) >>> 0) === c.net)
}

export function recursionHandler(opts: { allow: string[] }): Handler {
  const cidrs = opts.allow.map(parseCidr)
  return {
    name: 'recursion',
    serve(q, next) {
      return allowed(cidrs, q.client) ? next() : rcodeReply(q, RCODE.REFUSED)
    },
  }
}
