// compileNetworkPolicy + trace: packets through the compiled tables of the
// source's node (egress) and the destination's node (ingress), for the
// Kubernetes semantics: isolation per direction, union of policies, default
// deny, peers (podSelector, namespaceSelector, both, ipBlock with except),
// ports by number, name (per destination pod) and range, per protocol.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { compileNetworkPolicy } from '../../dataplane/network-policy/compile.ts'
import { allowMatches, renderNetpol, trace } from '../../dataplane/network-policy/render.ts'
import type { L4 } from '../../dataplane/network-policy/types.ts'

const ns = (name: string, labels: Record<string, string> = {}): KubeObject => ({ metadata: { name, labels } })
function pod(key: string, ip: string, node: string, labels: Record<string, string> = {}, ports: Array<{ name: string; containerPort: number; protocol?: string }> = []): KubeObject {
  const [namespace, name] = key.split('/')
  return { metadata: { namespace, name, labels }, spec: { nodeName: node, containers: [{ name: 'c', ports }] }, status: { podIP: ip, phase: 'Running' } }
}
const np = (key: string, spec: Record<string, unknown>): KubeObject => {
  const [namespace, name] = key.split('/')
  return { metadata: { namespace, name }, spec: { podSelector: {}, ...spec } }
}

const namespaces = [ns('x', { team: 'a' }), ns('y', { team: 'b' }), ns('z')]
const pods = [
  pod('x/a', '10.1.1.2', 'n1', { pod: 'a' }, [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 5353, protocol: 'UDP' }]),
  pod('x/b', '10.1.1.3', 'n1', { pod: 'b' }, [{ name: 'http', containerPort: 9090 }]),
  pod('y/a', '10.1.2.2', 'n2', { pod: 'a' }),
  pod('y/b', '10.1.2.3', 'n2', { pod: 'b', role: 'client' }),
  pod('z/c', '10.1.2.4', 'n2', { pod: 'c', role: 'client' }),
]
const ip = Object.fromEntries(pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p.status.podIP]))
const nodeOf = Object.fromEntries(pods.map((p) => [p.status.podIP, p.spec.nodeName]))
const nodeIPs: Record<string, string[]> = { n1: ['10.1.1.1'], n2: ['10.1.2.1'] }

/** The verdict for a connection: the source node's table (egress), then the destination node's (ingress). */
function verdict(policies: KubeObject[], src: string, dst: string, port: number, protocol: L4 = 'tcp', podList = pods): 'accept' | 'drop' {
  const s = ip[src] ?? src
  const d = ip[dst] ?? dst
  const p = { src: s, dst: d, port, protocol }
  for (const node of new Set([nodeOf[s], nodeOf[d]].filter(Boolean))) {
    const table = compileNetworkPolicy({ node: node!, nodeIPs: nodeIPs[node!]!, policies, pods: podList, namespaces })
    if (trace(table, p) === 'drop') return 'drop'
  }
  return 'accept'
}

interface Case {
  name: string
  policies: KubeObject[]
  flows: Array<[src: string, dst: string, port: number, want: 'accept' | 'drop', protocol?: L4]>
}

const cases: Case[] = [
  { name: 'no policy: all allowed', policies: [], flows: [['y/a', 'x/a', 80, 'accept'], ['x/a', 'y/a', 80, 'accept']] },
  {
    name: 'default deny ingress in x: only x pods isolated, egress untouched',
    policies: [np('x/deny', {})],
    flows: [['y/a', 'x/a', 80, 'drop'], ['x/b', 'x/a', 80, 'drop'], ['x/a', 'y/a', 80, 'accept'], ['y/b', 'y/a', 80, 'accept'], ['10.1.1.1', 'x/a', 80, 'accept']],
  },
  {
    name: 'allow ingress: an empty rule allows everything',
    policies: [np('x/deny', {}), np('x/all', { ingress: [{}] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['203.0.113.9', 'x/b', 5, 'accept', 'udp']],
  },
  {
    name: 'namespaceSelector only: every pod of matching namespaces',
    policies: [np('x/from-b', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['y/b', 'x/a', 80, 'accept'], ['z/c', 'x/a', 80, 'drop'], ['x/b', 'x/a', 80, 'drop']],
  },
  {
    name: 'namespaceSelector by kubernetes.io/metadata.name',
    policies: [np('x/from-z', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }] }] })],
    flows: [['z/c', 'x/a', 80, 'accept'], ['y/a', 'x/a', 80, 'drop']],
  },
  {
    name: 'podSelector only: pods of the policy namespace',
    policies: [np('x/from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    flows: [['x/b', 'x/a', 80, 'accept'], ['y/b', 'x/a', 80, 'drop'], ['y/a', 'x/b', 80, 'accept']],
  },
  {
    name: 'both selectors in one peer: AND',
    policies: [np('x/and', { ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'client' } } }] }] })],
    flows: [['y/b', 'x/a', 80, 'accept'], ['z/c', 'x/a', 80, 'accept'], ['y/a', 'x/a', 80, 'drop'], ['x/b', 'x/a', 80, 'drop']],
  },
  {
    name: 'two peers: OR (namespace team=b, or local pod b)',
    policies: [np('x/or', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['x/b', 'x/a', 80, 'accept'], ['z/c', 'x/a', 80, 'drop']],
  },
  {
    name: 'ipBlock with except, matched against pod addresses too',
    policies: [np('x/block', { ingress: [{ from: [{ ipBlock: { cidr: '10.1.2.0/24', except: ['10.1.2.3/32'] } }] }] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['y/b', 'x/a', 80, 'drop'], ['z/c', 'x/a', 80, 'accept'], ['x/b', 'x/a', 80, 'drop']],
  },
  {
    name: 'ports by number, range and protocol; other protocols stay isolated',
    policies: [np('x/ports', { ingress: [{ ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 8000, endPort: 8010 }, { protocol: 'SCTP', port: 9 }] }] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['y/a', 'x/a', 8005, 'accept'], ['y/a', 'x/a', 8010, 'accept'], ['y/a', 'x/a', 8011, 'drop'], ['y/a', 'x/a', 80, 'drop', 'udp'], ['y/a', 'x/a', 9, 'accept', 'sctp'], ['y/a', 'x/a', 9, 'drop', 'tcp']],
  },
  {
    name: 'a protocol without port: every port of that protocol',
    policies: [np('x/udp', { ingress: [{ ports: [{ protocol: 'UDP' }] }] })],
    flows: [['y/a', 'x/a', 53, 'accept', 'udp'], ['y/a', 'x/a', 53, 'drop', 'tcp']],
  },
  {
    name: 'named ingress port: resolved per target pod',
    policies: [np('x/http', { ingress: [{ ports: [{ port: 'http' }] }] })],
    flows: [['y/a', 'x/a', 8080, 'accept'], ['y/a', 'x/a', 9090, 'drop'], ['y/a', 'x/b', 9090, 'accept'], ['y/a', 'x/b', 8080, 'drop']],
  },
  {
    name: 'named port with protocol: the name must have that protocol',
    policies: [np('x/dns', { ingress: [{ ports: [{ port: 'dns', protocol: 'UDP' }, { port: 'dns' }] }] })],
    flows: [['y/a', 'x/a', 5353, 'accept', 'udp'], ['y/a', 'x/a', 5353, 'drop', 'tcp']],
  },
  {
    name: 'named egress port: resolved per destination pod',
    policies: [np('y/eg', { podSelector: { matchLabels: { pod: 'b' } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { team: 'a' } } }], ports: [{ port: 'http' }] }] })],
    flows: [['y/b', 'x/a', 8080, 'accept'], ['y/b', 'x/b', 9090, 'accept'], ['y/b', 'x/a', 9090, 'drop'], ['y/b', 'y/a', 8080, 'drop'], ['y/a', 'x/a', 1, 'accept']],
  },
  {
    name: 'deny all egress except DNS (UDP 53 anywhere)',
    policies: [np('y/dns-only', { policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }] })],
    flows: [['y/a', 'x/a', 53, 'accept', 'udp'], ['y/a', '10.96.0.10', 53, 'accept', 'udp'], ['y/a', '10.96.0.10', 53, 'drop', 'tcp'], ['y/a', 'x/a', 80, 'drop'], ['x/a', 'y/a', 80, 'accept']],
  },
  {
    name: 'egress isolation needs Egress in policyTypes: Ingress-only policy leaves egress open',
    policies: [np('y/in', { policyTypes: ['Ingress'], egress: [] })],
    flows: [['y/a', 'x/a', 80, 'accept'], ['x/a', 'y/a', 80, 'drop']],
  },
  {
    name: 'both ends must allow: egress allowed, ingress denied',
    policies: [np('y/eg-all', { policyTypes: ['Egress'], egress: [{}] }), np('x/deny', {})],
    flows: [['y/a', 'x/a', 80, 'drop'], ['y/a', 'y/b', 80, 'accept']],
  },
  {
    name: 'union of policies selecting one pod',
    policies: [np('x/p1', { ingress: [{ ports: [{ port: 80 }] }] }), np('x/p2', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }] }] })],
    flows: [['z/c', 'x/a', 80, 'accept'], ['z/c', 'x/a', 81, 'drop'], ['y/a', 'x/a', 81, 'accept']],
  },
  {
    name: 'egress ipBlock with except',
    policies: [np('x/eg', { policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.1.2.0/24', except: ['10.1.2.4/32'] } }] }] })],
    flows: [['x/a', 'y/a', 80, 'accept'], ['x/a', 'z/c', 80, 'drop'], ['x/a', 'x/b', 80, 'drop']],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    for (const [src, dst, port, want, protocol] of c.flows) t.equal(verdict(c.policies, src, dst, port, protocol ?? 'tcp'), want, `${src} -> ${dst}:${port}/${protocol ?? 'tcp'}`)
  })
}

t.test('a label change flips reachability (recompiled from the new labels)', async (t) => {
  const policies = [np('x/and', { ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'client' } } }] }] })]
  t.equal(verdict(policies, 'y/a', 'x/a', 80), 'drop')
  const relabelled = pods.map((p) => (p.metadata.namespace === 'y' && p.metadata.name === 'a' ? { ...p, metadata: { ...p.metadata, labels: { role: 'client' } } } : p))
  t.equal(verdict(policies, 'y/a', 'x/a', 80, 'tcp', relabelled), 'accept')
})

t.test('only pods with an address, not on the host network, not finished take part', async (t) => {
  const extra = [
    { ...pod('x/host', '10.9.9.9', 'n1'), spec: { nodeName: 'n1', hostNetwork: true, containers: [] } },
    { ...pod('x/done', '10.1.1.9', 'n1'), status: { podIP: '10.1.1.9', phase: 'Succeeded' } },
    { ...pod('x/pending', '', 'n1') },
  ]
  const table = compileNetworkPolicy({ node: 'n1', nodeIPs: ['10.1.1.1'], policies: [np('x/deny', {})], pods: [...pods, ...extra], namespaces })
  t.same(table.ingress.map((r) => r.pod), ['x/a', 'x/b'])
  t.same(table.egress, [], 'no pod isolated for egress')
})

t.test('rendering: vmaps to per-pod chains, ranges and sets, one atomic script', async (t) => {
  const table = compileNetworkPolicy({ node: 'n1', nodeIPs: ['10.1.1.1'], pods, namespaces, policies: [np('x/p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }], ports: [{ port: 8000, endPort: 8010 }, { port: 'http' }, { protocol: 'UDP' }] }] })] })
  const { script, rules } = renderNetpol(table, 'skiff-np-test')
  t.match(script, /^add table inet skiff-np-test\ndelete table inet skiff-np-test\ntable inet skiff-np-test \{/)
  const chain = table.ingress[0]!.chain
  t.match(script, `elements = { 10.1.1.2 : jump ${chain} }`)
  t.match(script, 'ip saddr { 10.1.1.3 } tcp dport { 8000-8010, 8080 } accept comment "x/p"')
  t.match(script, 'ip saddr { 10.1.1.3 } meta l4proto udp accept')
  t.match(script, 'ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } tcp dport { 8000-8010, 8080 } accept')
  t.match(script, 'ct state established,related accept')
  t.ok(rules > 5)
  t.same(allowMatches({ policy: 'p', peers: { cidr: 'fd00::/8', except: [] } }, 'saddr'), [], 'an IPv6 block matches nothing on IPv4')
  t.same(allowMatches({ policy: 'p' }, 'saddr'), [''], 'no peers and no ports: everything')
})
