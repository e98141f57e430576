// compileNetworkPolicy: NetworkPolicies + Pods + Namespaces + this node →
// the node's PolicyTable (types.ts). Pure. Semantics as Kubernetes'
// (k8s.io/api networking/v1 types.go, the network-policies concept page):
//  - a pod is isolated for a direction only when some policy of its
//    namespace selects it (spec.podSelector) with that direction in
//    policyTypes; unisolated directions get no rules (all allowed);
//  - allowed = the union of the rules of every selecting policy; a selecting
//    policy without rules adds nothing (default deny);
//  - a rule matches ports AND peers; missing/empty ports or peers match all;
//  - a peer with podSelector only: pods of the policy's namespace; with
//    namespaceSelector only: every pod of the matching namespaces; both in
//    one peer: AND; ipBlock: the cidr minus except, matched against any
//    address (pod addresses included, as the upstream e2e tests need);
//  - a named port is resolved against the destination pod's container
//    ports (name and protocol): the local pod itself for ingress, each
//    candidate destination pod for egress (an ipBlock peer has no names:
//    only pods whose address is in the block count).
// Only pods with an address and not on the host network take part, as
// selected pods and as peers (hostNetwork pods are node traffic).

import { createHash } from 'node:crypto'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { selectorMatches } from '../../controlplane/api/validation.ts'
import { cidrContains } from '../../lib/ipv4.ts'
import type { Allow, L4, PeerMatch, PodRules, PolicyTable, PortMatch } from './types.ts'

export interface CompileInput {
  node: string
  nodeIPs: string[]
  policies: KubeObject[]
  pods: KubeObject[]
  namespaces: KubeObject[]
}

interface PodView {
  key: string
  namespace: string
  ip: string
  node: string
  labels: Record<string, string>
  /** name/protocol → port */
  named: Map<string, number>
}

const metadataName = 'kubernetes.io/metadata.name'

export function chainName(direction: 'in' | 'eg', podKey: string): string {
  return `${direction}-${createHash('sha256').update(podKey).digest('hex').slice(0, 12)}`
}

function podView(p: KubeObject): PodView | undefined {
  const ip = p.status?.podIP
  if (!ip || ip.includes(':') || p.spec?.hostNetwork) return undefined
  if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return undefined
  const named = new Map<string, number>()
  for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]) {
    for (const port of c.ports ?? []) if (port.name) named.set(`${port.name}/${(port.protocol ?? 'TCP').toLowerCase()}`, port.containerPort)
  }
  return { key: `${p.metadata.namespace}/${p.metadata.name}`, namespace: p.metadata.namespace!, ip, node: p.spec?.nodeName ?? '', labels: p.metadata.labels ?? {}, named }
}

function nsLabels(namespaces: KubeObject[]): Map<string, Record<string, string>> {
  return new Map(namespaces.map((n) => [n.metadata.name!, { [metadataName]: n.metadata.name!, ...(n.metadata.labels ?? {}) }]))
}

function protocolOf(p: any): L4 {
  return String(p?.protocol ?? 'TCP').toLowerCase() as L4
}

/** The pods a peer (without ipBlock) selects. */
function peerPods(peer: any, policyNs: string, pods: PodView[], namespaces: Map<string, Record<string, string>>): PodView[] {
  return pods.filter((p) => {
    if (peer.namespaceSelector) {
      if (!selectorMatches(peer.namespaceSelector, namespaces.get(p.namespace) ?? { [metadataName]: p.namespace })) return false
    } else if (p.namespace !== policyNs) return false
    return peer.podSelector ? selectorMatches(peer.podSelector, p.labels) : true
  })
}

function inBlock(ip: string, block: { cidr: string; except?: string[] }): boolean {
  if (block.cidr.includes(':')) return false
  return cidrContains(block.cidr, ip) && !(block.except ?? []).some((e) => !e.includes(':') && cidrContains(e, ip))
}

interface RuleCtx {
  policy: string
  policyNs: string
  pods: PodView[]
  namespaces: Map<string, Record<string, string>>
  /** Per compile: the sorted addresses each (non-ipBlock) peer object selects; a peer's pods do not depend on the selected pod. */
  peerIps: Map<object, string[]>
  /** Per compile: the pods of each namespace (a peer without namespaceSelector looks only there). */
  podsByNs: Map<string, PodView[]>
}

function cachedPeerIps(peer: any, c: RuleCtx): string[] {
  let ips = c.peerIps.get(peer)
  if (!ips) {
    // peerPods' semantics, namespaces first: the selector is matched once per namespace, not once per pod.
    const inNs = peer.namespaceSelector ? [...c.podsByNs.keys()].filter((ns) => selectorMatches(peer.namespaceSelector, c.namespaces.get(ns) ?? { [metadataName]: ns })) : [c.policyNs]
    const selected = inNs.flatMap((ns) => c.podsByNs.get(ns) ?? []).filter((p) => !peer.podSelector || selectorMatches(peer.podSelector, p.labels))
    ips = [...new Set(selected.map((p) => p.ip))].sort()
    c.peerIps.set(peer, ips)
  }
  return ips
}

/**
 * The Allows of one rule. `target`: the local pod for ingress (named ports
 * resolve against it); undefined for egress (they resolve against each
 * destination pod).
 */
function ruleAllows(rule: any, peersField: 'from' | 'to', target: PodView | undefined, c: RuleCtx): Allow[] {
  const peersSpec: any[] = rule?.[peersField] ?? []
  const portsSpec: any[] = rule?.ports ?? []
  const numeric: PortMatch[] = []
  const named: Array<{ name: string; protocol: L4 }> = []
  for (const p of portsSpec) {
    if (typeof p.port === 'string') named.push({ name: p.port, protocol: protocolOf(p) })
    else numeric.push({ protocol: protocolOf(p), ...(p.port !== undefined && p.port !== null ? { port: p.port } : {}), ...(p.endPort ? { endPort: p.endPort } : {}) })
  }
  if (target) {
    // Ingress: the names are the local pod's own.
    for (const n of named) {
      const port = target.named.get(`${n.name}/${n.protocol}`)
      if (port !== undefined) numeric.push({ protocol: n.protocol, port })
    }
  }
  const portsAll = portsSpec.length === 0
  const peerList: PeerMatch[] | undefined = peersSpec.length === 0 ? undefined : peersSpec.flatMap((peer): PeerMatch[] => {
    if (peer.ipBlock) return [{ cidr: peer.ipBlock.cidr, except: peer.ipBlock.except ?? [] }]
    const ips = cachedPeerIps(peer, c)
    return ips.length ? [{ ips }] : []
  })
  const out: Allow[] = []
  const emit = (ports: PortMatch[] | undefined) => {
    if (peerList === undefined) out.push({ policy: c.policy, ...(ports ? { ports } : {}) })
    else for (const peers of peerList) out.push({ policy: c.policy, peers, ...(ports ? { ports } : {}) })
  }
  if (portsAll) emit(undefined)
  else if (numeric.length) emit(numeric)
  if (!target && named.length) {
    // Egress named ports: per destination pod among the peers (ipBlock peers: pods inside the block).
    const candidates = c.pods.filter((p) => peersSpec.length === 0 || peersSpec.some((peer) => (peer.ipBlock ? inBlock(p.ip, peer.ipBlock) : peerPods(peer, c.policyNs, [p], c.namespaces).length > 0)))
    const byPort = new Map<string, { ports: PortMatch; ips: string[] }>()
    for (const n of named) {
      for (const p of candidates) {
        const port = p.named.get(`${n.name}/${n.protocol}`)
        if (port === undefined) continue
        const k = `${n.protocol}/${port}`
        if (!byPort.has(k)) byPort.set(k, { ports: { protocol: n.protocol, port }, ips: [] })
        byPort.get(k)!.ips.push(p.ip)
      }
    }
    for (const { ports, ips } of byPort.values()) out.push({ policy: c.policy, peers: { ips: [...new Set(ips)].sort() }, ports: [ports] })
  }
  return out
}

function policyTypesOf(np: KubeObject): string[] {
  const t = np.spec?.policyTypes
  if (Array.isArray(t) && t.length) return t
  return (np.spec?.egress ?? []).length ? ['Ingress', 'Egress'] : ['Ingress']
}

export function compileNetworkPolicy(input: CompileInput): PolicyTable {
  const pods = input.pods.map(podView).filter((p): p is PodView => !!p)
  const namespaces = nsLabels(input.namespaces)
  // One pod per address (a vmap key); the first by key wins if two claim one (a pod that left without its status catching up).
  const seen = new Set<string>()
  const local = pods.filter((p) => p.node === input.node).sort((a, b) => (a.key < b.key ? -1 : 1)).filter((p) => !seen.has(p.ip) && !!seen.add(p.ip))
  const policies = [...input.policies].sort((a, b) => (`${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}` ? -1 : 1))
  const peerIps = new Map<object, string[]>()
  const podsByNs = new Map<string, PodView[]>()
  for (const p of pods) (podsByNs.get(p.namespace) ?? podsByNs.set(p.namespace, []).get(p.namespace)!).push(p)
  const table: PolicyTable = { node: input.node, nodeIPs: [...new Set(input.nodeIPs)].sort(), ingress: [], egress: [], policies: policies.length }
  for (const pod of local) {
    const selecting = policies.filter((np) => np.metadata.namespace === pod.namespace && selectorMatches(np.spec?.podSelector ?? {}, pod.labels))
    for (const [dir, field, peers, list] of [['Ingress', 'ingress', 'from', table.ingress], ['Egress', 'egress', 'to', table.egress]] as const) {
      const applying = selecting.filter((np) => policyTypesOf(np).includes(dir))
      if (!applying.length) continue
      const rules: PodRules = { pod: pod.key, ip: pod.ip, chain: chainName(dir === 'Ingress' ? 'in' : 'eg', pod.key), allows: [] }
      for (const np of applying) {
        const c: RuleCtx = { policy: `${np.metadata.namespace}/${np.metadata.name}`, policyNs: np.metadata.namespace!, pods, namespaces, peerIps, podsByNs }
        for (const rule of np.spec?.[field] ?? []) rules.allows.push(...ruleAllows(rule, peers, dir === 'Ingress' ? pod : undefined, c))
      }
      list.push(rules)
    }
  }
  return table
}
