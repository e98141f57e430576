// Which node announces each LoadBalancer IP: MetalLB's stateless layer-2
// election, computed the same way by every speaker from the same cache, so
// they agree without talking to each other.
//
// For each IP in status.loadBalancer.ingress of a Service we serve:
//  1. candidates: the speaker nodes (label skiff.dev/lb-speaker) that are
//     alive (liveness.ts), not being deleted, not Ready=False, and not
//     labelled node.kubernetes.io/exclude-from-external-load-balancers;
//     with externalTrafficPolicy Local, only those with a usable endpoint of
//     the Service on them (ready; or, when none on that node is ready, serving
//     and terminating: the endpoints the node's service proxy would use);
//  2. sorted by sha256(node + "#" + ip) (byte order, as MetalLB);
//  3. the first announces. No candidate: nobody announces.
// Removing a node that does not announce moves nothing; adding one moves an
// IP only where the new node sorts first.

import { createHash } from 'node:crypto'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { servedByUs } from '../../controlplane/controllers/loadbalancer-plan.ts'
import { ipToInt } from '../../lib/ipv4.ts'

/** The Node label a running speaker puts on its Node (value: its LAN interface). */
export const speakerLabel = 'skiff.dev/lb-speaker'
/** Kubernetes' well-known label: never send external load-balancer traffic to this node. */
export const excludeLabel = 'node.kubernetes.io/exclude-from-external-load-balancers'
export const serviceNameLabel = 'kubernetes.io/service-name'

export interface Assignment {
  ip: string
  /** namespace/name of the Service(s) holding the IP, sorted. */
  services: string[]
  /** The node that announces it; undefined: nobody. */
  node?: string
  candidates: number
  /** Why nobody announces, when nobody does. */
  reason?: string
}

export interface ElectionInput {
  services: readonly KubeObject[]
  slices: readonly KubeObject[]
  nodes: readonly KubeObject[]
  alive: ReadonlySet<string>
  /** Memo of sha256(node#ip) (optional; speeds up repeated elections). */
  hashes?: Map<string, string>
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`

/** Nodes that may announce at all: live speakers, not leaving, not NotReady, not excluded. Sorted. */
export function speakerCandidates(nodes: readonly KubeObject[], alive: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const n of nodes) {
    const name = n.metadata.name
    const labels = n.metadata.labels ?? {}
    if (!name || !(speakerLabel in labels) || excludeLabel in labels || n.metadata.deletionTimestamp || !alive.has(name)) continue
    const ready = (n.status?.conditions ?? []).find((c: any) => c?.type === 'Ready')
    if (ready?.status === 'False') continue
    out.push(name)
  }
  return out.sort()
}

/** `nodes` in MetalLB's order for `ip`: by sha256(node + "#" + ip). */
export function rankNodes(ip: string, nodes: readonly string[], hashes?: Map<string, string>): string[] {
  const hash = (n: string): string => {
    const k = `${n}#${ip}`
    let h = hashes?.get(k)
    if (h === undefined) {
      h = createHash('sha256').update(k).digest('hex')
      if (hashes && hashes.size < 100_000) hashes.set(k, h)
    }
    return h
  }
  return [...nodes].map((n) => ({ n, h: hash(n) })).sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.n < b.n ? -1 : 1)).map((x) => x.n)
}

/** The IPv4 addresses of status.loadBalancer.ingress of a Service this speaker serves. */
export function announcedIPs(svc: KubeObject): string[] {
  if (!servedByUs(svc) || svc.metadata.deletionTimestamp) return []
  const list = svc.status?.loadBalancer?.ingress
  if (!Array.isArray(list)) return []
  return [...new Set(list.flatMap((i: any) => (isIPv4(i?.ip) ? [i.ip] : [])))]
}

function isIPv4(ip: unknown): ip is string {
  try {
    return typeof ip === 'string' && ipToInt(ip) >= 0
  } catch {
    return false
  }
}

/** Nodes with an endpoint of the Service that their service proxy would use (eTP Local). */
export function nodesWithUsableEndpoints(svc: KubeObject, slices: readonly KubeObject[]): Set<string> {
  const byNode = new Map<string, { ready: boolean; servingTerminating: boolean }>()
  for (const s of slices) {
    if (s.metadata.namespace !== svc.metadata.namespace || s.metadata.labels?.[serviceNameLabel] !== svc.metadata.name) continue
    for (const e of s.endpoints ?? []) {
      if (typeof e?.nodeName !== 'string' || !Array.isArray(e.addresses) || e.addresses.length === 0) continue
      const c = e.conditions ?? {}
      const ready = c.ready !== false // API semantics: a missing `ready` means ready
      const serving = c.serving ?? ready
      const cur = byNode.get(e.nodeName) ?? { ready: false, servingTerminating: false }
      byNode.set(e.nodeName, { ready: cur.ready || ready, servingTerminating: cur.servingTerminating || (serving && c.terminating === true) })
    }
  }
  return new Set([...byNode].filter(([, v]) => v.ready || v.servingTerminating).map(([n]) => n))
}

/** One Assignment per IP, sorted by IP. */
export function electAnnouncers(input: ElectionInput): Assignment[] {
  const speakers = speakerCandidates(input.nodes, input.alive)
  const byIP = new Map<string, KubeObject[]>()
  for (const svc of input.services) for (const ip of announcedIPs(svc)) byIP.set(ip, [...(byIP.get(ip) ?? []), svc])
  const out: Assignment[] = []
  for (const [ip, svcs] of byIP) {
    // An IP shared by several Services may be announced by a node any of them could use.
    const eligible = new Set<string>()
    for (const svc of svcs) {
      if (svc.spec?.externalTrafficPolicy === 'Local') {
        const local = nodesWithUsableEndpoints(svc, input.slices)
        for (const n of speakers) if (local.has(n)) eligible.add(n)
      } else {
        for (const n of speakers) eligible.add(n)
      }
    }
    const ranked = rankNodes(ip, [...eligible], input.hashes)
    const services = svcs.map(keyOf).sort()
    const a: Assignment = { ip, services, candidates: ranked.length }
    if (ranked[0]) a.node = ranked[0]
    else a.reason = speakers.length === 0 ? 'no live speaker node' : 'no live speaker node with a usable local endpoint (externalTrafficPolicy Local)'
    out.push(a)
  }
  return out.sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip))
}
