// NetworkPolicy (pkg/apis/networking/validation ValidateNetworkPolicy*):
// the pod selector, every ingress/egress port (protocol, a port number or
// name, endPort only with a numeric port and >= it), every peer (exactly
// one of ipBlock or the selectors; ipBlock's cidr valid and each except a
// strict subset of it) and policyTypes (Ingress/Egress, at most two).
// Also the defaulting (SetDefaults_NetworkPolicy / _NetworkPolicyPort).

import { isIPv4, isIPv6 } from 'node:net'
import type { KubeObject } from '../types.ts'
import { forbidden, invalid, isRecord, items, notSupported, raw, required } from './field.ts'
import type { Causes } from './field.ts'
import { validateLabelSelector } from './meta.ts'
import { isValidPortName, isValidPortNum } from './names.ts'

export const policyTypes = ['Ingress', 'Egress'] as const
export const policyProtocols = ['TCP', 'UDP', 'SCTP'] as const

const isSet = (v: unknown) => v !== undefined && v !== null

export function validateNetworkPolicyPort(port: unknown, path: string): Causes {
  if (!isRecord(port)) return [invalid(path, port, 'must be an object')]
  const out: Causes = []
  if (isSet(port.protocol) && !(policyProtocols as readonly unknown[]).includes(port.protocol)) out.push(notSupported(`${path}.protocol`, port.protocol, policyProtocols))
  if (isSet(port.port)) {
    if (typeof port.port === 'number') {
      for (const m of isValidPortNum(port.port)) out.push(invalid(`${path}.port`, port.port, m))
      if (isSet(port.endPort)) {
        if (typeof port.endPort === 'number' && port.endPort < port.port) out.push(invalid(`${path}.endPort`, port.port, 'must be greater than or equal to `port`'))
        for (const m of isValidPortNum(port.endPort)) out.push(invalid(`${path}.endPort`, port.endPort, m))
      }
    } else {
      if (isSet(port.endPort)) out.push(invalid(`${path}.endPort`, port.endPort, 'may not be specified when `port` is non-numeric'))
      for (const m of isValidPortName(String(port.port))) out.push(invalid(`${path}.port`, port.port, m))
    }
  } else if (isSet(port.endPort)) out.push(invalid(`${path}.endPort`, port.endPort, 'may not be specified when `port` is not specified'))
  return out
}

interface ParsedCidr { v6: boolean; bits: number; bytes: Buffer }

/** A CIDR as Go's net.ParseCIDR takes it (IPv4 or IPv6), or undefined. */
export function parseAnyCidr(s: unknown): ParsedCidr | undefined {
  if (typeof s !== 'string') return undefined
  const [ip, len, extra] = s.split('/')
  if (!ip || len === undefined || extra !== undefined || !/^\d+$/.test(len)) return undefined
  const bits = Number(len)
  if (isIPv4(ip)) return bits <= 32 ? { v6: false, bits, bytes: Buffer.from(ip.split('.').map(Number)) } : undefined
  if (isIPv6(ip) && bits <= 128) return { v6: true, bits, bytes: ipv6Bytes(ip) }
  return undefined
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined]
  const words = (p: string | undefined) => (p ? p.split(':') : []).flatMap((w) => (w.includes('.') ? [((Number(w.split('.')[0]) << 8) | Number(w.split('.')[1])).toString(16), ((Number(w.split('.')[2]) << 8) | Number(w.split('.')[3])).toString(16)] : [w]))
  const h = words(head)
  const t = tail === undefined ? [] : words(tail)
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const b = Buffer.alloc(16)
  all.forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), i * 2))
  return b
}

function prefixEqual(a: Buffer, b: Buffer, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const bit = (x: Buffer) => (x[i >> 3]! >> (7 - (i & 7))) & 1
    if (bit(a) !== bit(b)) return false
  }
  return true
}

const cidrMsg = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'

export function validateIPBlock(block: unknown, path: string): Causes {
  if (!isRecord(block)) return [invalid(path, block, 'must be an object')]
  if (!isSet(block.cidr) || block.cidr === '') return [required(`${path}.cidr`)]
  const cidr = parseAnyCidr(block.cidr)
  if (!cidr) return [invalid(`${path}.cidr`, block.cidr, cidrMsg)]
  const out: Causes = []
  for (const [i, e] of items(block.except).entries()) {
    const p = `${path}.except[${i}]`
    const ex = parseAnyCidr(e)
    if (!ex) return [...out, invalid(p, e, 'must be a valid CIDR')]
    if (ex.v6 !== cidr.v6 || cidr.bits >= ex.bits || !prefixEqual(cidr.bytes, ex.bytes, cidr.bits)) out.push(invalid(p, e, 'must be a strict subset of `cidr`'))
  }
  return out
}

export function validateNetworkPolicyPeer(peer: unknown, path: string): Causes {
  if (!isRecord(peer)) return [invalid(path, peer, 'must be an object')]
  const out: Causes = []
  let n = 0
  if (isSet(peer.podSelector)) { n++; out.push(...validateLabelSelector(peer.podSelector, `${path}.podSelector`)) }
  if (isSet(peer.namespaceSelector)) { n++; out.push(...validateLabelSelector(peer.namespaceSelector, `${path}.namespaceSelector`)) }
  if (isSet(peer.ipBlock)) { n++; out.push(...validateIPBlock(peer.ipBlock, `${path}.ipBlock`)) }
  if (n === 0) out.push(required(path, 'must specify a peer'))
  else if (n > 1 && isSet(peer.ipBlock)) out.push(forbidden(path, 'may not specify both ipBlock and another peer'))
  return out
}

export function validateNetworkPolicySpec(spec: unknown, path = 'spec'): Causes {
  if (!isRecord(spec)) return [required(path)]
  const out: Causes = [...validateLabelSelector(spec.podSelector, `${path}.podSelector`)]
  for (const [dir, peers] of [['ingress', 'from'], ['egress', 'to']] as const) {
    for (const [i, rule] of items(spec[dir]).entries()) {
      const rp = `${path}.${dir}[${i}]`
      if (!isRecord(rule)) { out.push(invalid(rp, rule, 'must be an object')); continue }
      for (const [j, port] of items(rule.ports).entries()) out.push(...validateNetworkPolicyPort(port, `${rp}.ports[${j}]`))
      for (const [j, peer] of items(rule[peers]).entries()) out.push(...validateNetworkPolicyPeer(peer, `${rp}.${peers}[${j}]`))
    }
  }
  const types = items(spec.policyTypes)
  if (types.length > policyTypes.length) return [...out, invalid(`${path}.policyTypes`, raw(`&[]networking.PolicyType{${types.map((x) => JSON.stringify(String(x))).join(', ')}}`), 'may not specify more than two policyTypes')]
  types.forEach((t, i) => { if (!(policyTypes as readonly unknown[]).includes(t)) out.push(notSupported(`${path}.policyTypes[${i}]`, t, policyTypes)) })
  return out
}

export function validateNetworkPolicy(obj: KubeObject): Causes {
  return validateNetworkPolicySpec(obj.spec)
}

/** SetDefaults_NetworkPolicy: protocol TCP on every port; policyTypes when empty: Ingress, and Egress when egress rules exist. */
export function defaultNetworkPolicy(o: KubeObject): void {
  if (!isRecord(o.spec)) o.spec = {}
  const spec = o.spec
  if (!isRecord(spec.podSelector)) spec.podSelector = {}
  for (const dir of ['ingress', 'egress']) for (const rule of items(spec[dir])) for (const p of items(isRecord(rule) ? rule.ports : undefined)) if (isRecord(p) && !isSet(p.protocol)) p.protocol = 'TCP'
  if (items(spec.policyTypes).length === 0) spec.policyTypes = items(spec.egress).length > 0 ? ['Ingress', 'Egress'] : ['Ingress']
}
