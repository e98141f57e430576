// The PolicyTable as one nft transaction that replaces the node's table
// `inet skiff-np-<9 hex of sha256(node)>` atomically (add; delete; define:
// no moment without rules, kube-router's lesson), and `trace`, the same
// semantics evaluated in JavaScript for the table tests. Pure.
//
//   forward (filter - 5) and input (filter - 5), policy accept:
//     ct state established,related accept      replies and allowed flows
//     ip saddr vmap @egress-pods                egress-isolated local pods (forward and input)
//     ip daddr vmap @ingress-pods               ingress-isolated local pods (forward only)
//   eg-<h>: each Allow → return (on to the ingress check); else drop
//   in-<h>: the node's addresses → accept; each Allow → accept; else drop
//   set ips-<h>: a peer address list more than one rule uses, declared once
// Only drops are final across base chains (another table's accept is not),
// which is all this table needs: it never accepts what another would drop.

import { createHash } from 'node:crypto'
import { cidrContains, formatCidr, parseCidr } from '../../lib/ipv4.ts'
import type { Allow, L4, Packet, PodRules, PolicyTable, PortMatch } from './types.ts'

export function netpolTableName(node: string): string {
  return `skiff-np-${createHash('sha256').update(node).digest('hex').slice(0, 9)}`
}

function portsText(ports: PortMatch[]): string[] {
  const byProto = new Map<L4, PortMatch[]>()
  for (const p of ports) byProto.set(p.protocol, [...(byProto.get(p.protocol) ?? []), p])
  return [...byProto].map(([proto, list]) => {
    if (list.some((p) => p.port === undefined)) return `meta l4proto ${proto}`
    const items = [...new Set(list.map((p) => (p.endPort && p.endPort > p.port! ? `${p.port}-${p.endPort}` : String(p.port))))]
    return `${proto} dport { ${items.join(', ')} }`
  })
}

/** The match texts of one Allow (several when it spans protocols); none when it can match nothing on IPv4. */
export function allowMatches(a: Allow, field: 'saddr' | 'daddr', sets?: Map<string, string>): string[] {
  let peer = ''
  if (a.peers && 'ips' in a.peers) {
    const named = sets?.get(a.peers.ips.join(','))
    peer = named ? `ip ${field} @${named} ` : `ip ${field} { ${a.peers.ips.join(', ')} } `
  }
  else if (a.peers) {
    if (a.peers.cidr.includes(':')) return []
    const ex = a.peers.except.filter((e) => !e.includes(':')).map((e) => formatCidr(parseCidr(e)))
    peer = `ip ${field} ${formatCidr(parseCidr(a.peers.cidr))} ${ex.length ? `ip ${field} != { ${ex.join(', ')} } ` : ''}`
  }
  if (!a.ports) return [peer.trim()]
  return portsText(a.ports).map((p) => `${peer}${p}`)
}

function chainLines(r: PodRules, dir: 'in' | 'eg', nodeIPs: string[], sets: Map<string, string>): string[] {
  const field = dir === 'in' ? 'saddr' : 'daddr'
  const verdict = dir === 'in' ? 'accept' : 'return'
  const lines: string[] = []
  if (dir === 'in' && nodeIPs.length) lines.push(`ip saddr { ${nodeIPs.join(', ')} } accept comment "the pod's own node"`)
  for (const a of r.allows) for (const m of allowMatches(a, field, sets)) lines.push(`${m} ${verdict} comment "${a.policy}"`.replace(/^ /, ''))
  lines.push(`counter drop comment "${r.pod}"`)
  return lines
}

/**
 * Peer address lists of two or more addresses that more than one rule uses, as named sets (`ips-<12 hex of
 * sha256>`), declared once: a namespace's pods are the peers of every pod a policy selects, and inline they
 * were repeated in each pod's chain (at 1,000 policies 16x the elements, and nft's time grows with them).
 */
function sharedSets(t: PolicyTable): Map<string, string> {
  const uses = new Map<string, number>()
  for (const r of [...t.ingress, ...t.egress]) for (const a of r.allows) if (a.peers && 'ips' in a.peers && a.peers.ips.length > 1) {
    const key = a.peers.ips.join(',')
    uses.set(key, (uses.get(key) ?? 0) + 1)
  }
  return new Map([...uses].filter(([, n]) => n > 1).map(([key]) => [key, `ips-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`]))
}

function setLines(sets: Map<string, string>): string[] {
  return [...sets].flatMap(([key, name]) => [`  set ${name} {`, '    type ipv4_addr', `    elements = { ${key.split(',').join(', ')} }`, '  }'])
}

function vmap(name: string, rules: PodRules[]): string[] {
  const elements = rules.map((r) => `${r.ip} : jump ${r.chain}`)
  return [`  map ${name} {`, '    type ipv4_addr : verdict', ...(elements.length ? [`    elements = { ${elements.join(', ')} }`] : []), '  }']
}

/** The whole table as one atomic nft script; `rules`: how many rules it holds (metrics). */
export function renderNetpol(t: PolicyTable, tableName = netpolTableName(t.node)): { script: string; rules: number } {
  let rules = 0
  const chain = (name: string, body: string[]) => {
    rules += body.filter((l) => !l.startsWith('type ')).length
    return [`  chain ${name} {`, ...body.map((l) => `    ${l}`), '  }']
  }
  const base = ['policy accept;', 'ct state established,related accept']
  const sets = sharedSets(t)
  const script = [
    `add table inet ${tableName}`,
    `delete table inet ${tableName}`,
    `table inet ${tableName} {`,
    ...vmap('ingress-pods', t.ingress),
    ...vmap('egress-pods', t.egress),
    ...setLines(sets),
    ...t.egress.flatMap((r) => chain(r.chain, chainLines(r, 'eg', t.nodeIPs, sets))),
    ...t.ingress.flatMap((r) => chain(r.chain, chainLines(r, 'in', t.nodeIPs, sets))),
    ...chain('forward', ['type filter hook forward priority filter - 5; ' + base[0], base[1]!, 'ip saddr vmap @egress-pods', 'ip daddr vmap @ingress-pods']),
    ...chain('input', ['type filter hook input priority filter - 5; ' + base[0], base[1]!, 'ip saddr vmap @egress-pods']),
    '}',
    '',
  ].join('\n')
  return { script, rules }
}

function allowMatchesPacket(a: Allow, peer: string, p: Packet): boolean {
  if (a.peers && 'ips' in a.peers && !a.peers.ips.includes(peer)) return false
  if (a.peers && 'cidr' in a.peers) {
    if (a.peers.cidr.includes(':') || !cidrContains(a.peers.cidr, peer)) return false
    if (a.peers.except.some((e) => !e.includes(':') && cidrContains(e, peer))) return false
  }
  if (!a.ports) return true
  return a.ports.some((m) => m.protocol === p.protocol && (m.port === undefined || (p.port >= m.port && p.port <= (m.endPort ?? m.port))))
}

/** The verdict the table gives the first packet of a new connection (the nft chains' semantics, in JavaScript). */
export function trace(t: PolicyTable, p: Packet): 'accept' | 'drop' {
  const eg = t.egress.find((r) => r.ip === p.src)
  if (eg && !eg.allows.some((a) => allowMatchesPacket(a, p.dst, p))) return 'drop'
  const ing = t.ingress.find((r) => r.ip === p.dst)
  if (ing && !t.nodeIPs.includes(p.src) && !ing.allows.some((a) => allowMatchesPacket(a, p.src, p))) return 'drop'
  return 'accept'
}
