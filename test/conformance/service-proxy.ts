// The service-proxy conformance suite: a table of flows and a pure tracer
// that says what a packet meets in one node's RoutingTable. Both backends
// (nftables, userspace) implement exactly these semantics; their unit tests
// trace every flow here, and their integration tests send real traffic for
// the same cases. STYLE.md: test the data plane by tracing traffic.
//
// One machine, many nodes: all agents share the host's network namespace,
// so a packet meets every node's rules. Each node only claims the packets in
// its scope (types.ts): ClusterIP traffic from its podCIDR (prerouting) or
// from the host (output), NodePorts on its own addresses, LoadBalancer /
// external IPs when it can serve them. Anything else is `pass` for that node:
// it leaves the packet alone for another node's table.
//
// Verdicts (kube-proxy semantics, pkg/proxy/nftables/proxier.go):
//  - forward: DNAT to one of `endpoints` (ip:port, chosen evenly at random,
//    or sticky per client IP for `affinitySeconds`); `snat` says whether the
//    source is masqueraded (true), kept (false), or masqueraded only when
//    the pod reaches itself ('hairpin');
//  - reject: the Service has no usable endpoint at all: TCP reset / ICMP
//    port-unreachable at once, never a timeout;
//  - drop: a Local traffic policy with no local endpoint on this node
//    (internalTrafficPolicy Local for pods; externalTrafficPolicy Local for
//    this node's NodePorts): kube-proxy drops, it does not fall back;
//  - pass: not this node's packet.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildRoutingTable, endpointKey, inCIDR, serviceNameLabel } from '../../dataplane/service-proxy/table.ts'
import type { Endpoint, NodeView, Protocol, RoutingTable, ServicePort } from '../../dataplane/service-proxy/types.ts'

export type Verdict =
  | { action: 'forward'; endpoints: string[]; snat: boolean | 'hairpin'; affinitySeconds: number }
  | { action: 'reject' }
  | { action: 'drop' }
  | { action: 'pass' }

export interface FlowSource {
  ip: string
  /** Sent by the host itself (output hook); otherwise it arrives from a pod or from outside (prerouting). */
  host?: boolean
}

export interface FlowTarget {
  ip: string
  port: number
  proto: Protocol
}

export interface Flow {
  name: string
  /** The inputs of buildRoutingTable for the node whose rules are traced. */
  services: KubeObject[]
  slices: KubeObject[]
  node: NodeView
  from: FlowSource
  to: FlowTarget
  want: Verdict
}

/** The table a flow is traced through. */
export function tableFor(flow: Flow, generation = 1): RoutingTable {
  return buildRoutingTable(flow.services, flow.slices, flow.node, generation)
}

/** What `packet` meets in `table` (one node's rules). Pure. */
export function trace(table: RoutingTable, packet: { from: FlowSource; to: FlowTarget }): Verdict {
  const { node } = table
  const { from, to } = packet
  const fromPod = !from.host && inCIDR(from.ip, node.podCIDR)
  const fromCluster = !from.host && inCIDR(from.ip, node.clusterCIDR)
  for (const sp of table.ports) {
    if (sp.protocol !== to.proto) continue
    if (sp.clusterIP === to.ip && sp.port === to.port) {
      if (!fromPod && !from.host) continue
      return internal(sp, from)
    }
    if (sp.nodePort === to.port && node.addresses.includes(to.ip)) return external(sp, { from, fromCluster, isNodePort: true })
    if (sp.port === to.port && (sp.loadBalancerIPs.includes(to.ip) || sp.externalIPs.includes(to.ip))) {
      return external(sp, { from, fromCluster, isNodePort: false })
    }
  }
  return { action: 'pass' }
}

function forward(sp: ServicePort, eps: Endpoint[], snat: boolean | 'hairpin'): Verdict {
  return { action: 'forward', endpoints: eps.map(endpointKey), snat, affinitySeconds: sp.affinitySeconds }
}

/** ClusterIP traffic from this node's pods or from the host. */
function internal(sp: ServicePort, from: FlowSource): Verdict {
  if (sp.clusterEndpoints.length === 0) return { action: 'reject' }
  // The host is shared by every node of a one-machine cluster, so it belongs
  // to none: its connections use every endpoint (internalTrafficPolicy Local
  // would make node tables contradict each other), masqueraded so replies
  // come back whatever source address the host picked.
  if (from.host) return forward(sp, sp.clusterEndpoints, true)
  const eps = sp.internalTrafficPolicy === 'Local' ? sp.localEndpoints : sp.clusterEndpoints
  if (eps.length === 0) return { action: 'drop' }
  return forward(sp, eps, eps.some((e) => e.ip === from.ip) ? 'hairpin' : false)
}

/** NodePort, LoadBalancer and external IP traffic. */
function external(sp: ServicePort, o: { from: FlowSource; fromCluster: boolean; isNodePort: boolean }): Verdict {
  if (sp.clusterEndpoints.length === 0) return { action: 'reject' }
  if (sp.externalTrafficPolicy === 'Cluster') return forward(sp, sp.clusterEndpoints, true)
  // Local policy. Pods are short-circuited to every endpoint, unmasqueraded;
  // the host's own connections are masqueraded to every endpoint (kube-proxy).
  if (o.fromCluster) return forward(sp, sp.clusterEndpoints, sp.clusterEndpoints.some((e) => e.ip === o.from.ip) ? 'hairpin' : false)
  if (o.from.host) return forward(sp, sp.clusterEndpoints, true)
  if (sp.localEndpoints.length > 0) return forward(sp, sp.localEndpoints, false)
  // This node's own port: drop. A shared LoadBalancer IP: leave it to a node that has local endpoints.
  return o.isNodePort ? { action: 'drop' } : { action: 'pass' }
}

// ---- fixtures -------------------------------------------------------------

export const cluster = '10.244.0.0/16'
export const node1: NodeView = { name: 'n1', addresses: ['10.244.1.1'], podCIDR: '10.244.1.0/24', clusterCIDR: cluster }
export const node2: NodeView = { name: 'n2', addresses: ['10.244.2.1'], podCIDR: '10.244.2.0/24', clusterCIDR: cluster }

export function service(name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', sessionAffinity: 'None', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }], ...spec },
    ...(status ? { status } : {}),
  }
}

export interface EndpointFixture {
  ip: string
  node?: string
  ready?: boolean
  serving?: boolean
  terminating?: boolean
}

export function slice(svc: string, endpoints: EndpointFixture[], ports: Array<{ name?: string; port: number; protocol?: Protocol }> = [{ name: 'http', port: 8080 }], suffix = 'a'): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${svc}-${suffix}`, namespace: 'default', labels: { [serviceNameLabel]: svc } },
    ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      ...(e.node ? { nodeName: e.node } : {}),
    })),
  }
}

const fwd = (endpoints: string[], snat: boolean | 'hairpin' = false, affinitySeconds = 0): Verdict => ({ action: 'forward', endpoints, snat, affinitySeconds })
const tcp80 = (ip = '10.96.0.20'): FlowTarget => ({ ip, port: 80, proto: 'TCP' })
const pod1 = { ip: '10.244.1.50' }
const pod2 = { ip: '10.244.2.50' }
const outside = { ip: '192.0.2.7' }
const three: EndpointFixture[] = [
  { ip: '10.244.1.5', node: 'n1' },
  { ip: '10.244.1.6', node: 'n1' },
  { ip: '10.244.2.5', node: 'n2' },
]
const threeKeys = ['10.244.1.5:8080', '10.244.1.6:8080', '10.244.2.5:8080']
const web = (spec: Record<string, unknown> = {}, status?: Record<string, unknown>) => service('web', { clusterIP: '10.96.0.20', ...spec }, status)
const np = (spec: Record<string, unknown> = {}) => web({ type: 'NodePort', externalTrafficPolicy: 'Cluster', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }], ...spec })
const lbStatus = { loadBalancer: { ingress: [{ ip: '10.250.0.9' }] } }
const lb = (spec: Record<string, unknown> = {}) =>
  web({ type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30081 }], ...spec }, lbStatus)

export const flows: Flow[] = [
  { name: 'pod to ClusterIP reaches every ready endpoint', services: [web()], slices: [slice('web', three)], node: node1, from: pod1, to: tcp80(), want: fwd(threeKeys) },
  { name: 'host to ClusterIP is masqueraded', services: [web()], slices: [slice('web', three)], node: node1, from: { ip: '10.244.1.1', host: true }, to: tcp80(), want: fwd(threeKeys, true) },
  { name: 'ClusterIP traffic from another node\'s pod is that node\'s', services: [web()], slices: [slice('web', three)], node: node1, from: pod2, to: tcp80(), want: { action: 'pass' } },
  { name: 'no endpoints: reject (TCP)', services: [web()], slices: [slice('web', [])], node: node1, from: pod1, to: tcp80(), want: { action: 'reject' } },
  { name: 'no slice at all: reject', services: [web()], slices: [], node: node1, from: pod1, to: tcp80(), want: { action: 'reject' } },
  {
    name: 'no endpoints: reject (UDP)',
    services: [web({ ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }] })], slices: [slice('web', [], [{ name: 'dns', port: 5353, protocol: 'UDP' }])],
    node: node1, from: pod1, to: { ip: '10.96.0.20', port: 53, proto: 'UDP' }, want: { action: 'reject' },
  },
  {
    name: 'UDP ClusterIP reaches the UDP endpoints',
    services: [web({ ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }] })], slices: [slice('web', three, [{ name: 'dns', port: 5353, protocol: 'UDP' }])],
    node: node1, from: pod1, to: { ip: '10.96.0.20', port: 53, proto: 'UDP' }, want: fwd(['10.244.1.5:5353', '10.244.1.6:5353', '10.244.2.5:5353']),
  },
  { name: 'TCP to a UDP-only port: not a service', services: [web({ ports: [{ name: 'dns', protocol: 'UDP', port: 80 }] })], slices: [], node: node1, from: pod1, to: tcp80(), want: { action: 'pass' } },
  {
    name: 'not-ready endpoints get no traffic',
    services: [web()], slices: [slice('web', [{ ip: '10.244.1.5', node: 'n1' }, { ip: '10.244.1.6', node: 'n1', ready: false, serving: false }])],
    node: node1, from: pod1, to: tcp80(), want: fwd(['10.244.1.5:8080']),
  },
  {
    name: 'terminating-but-serving endpoints are used when none is ready',
    services: [web()],
    slices: [slice('web', [{ ip: '10.244.1.5', ready: false, serving: true, terminating: true }, { ip: '10.244.1.6', ready: false, serving: false, terminating: true }])],
    node: node1, from: pod1, to: tcp80(), want: fwd(['10.244.1.5:8080']),
  },
  {
    name: 'terminating endpoints are not used while one is ready',
    services: [web()], slices: [slice('web', [{ ip: '10.244.1.5', ready: false, serving: true, terminating: true }, { ip: '10.244.2.5' }])],
    node: node1, from: pod1, to: tcp80(), want: fwd(['10.244.2.5:8080']),
  },
  {
    name: 'endpoints from two slices are merged',
    services: [web()], slices: [slice('web', three.slice(0, 2)), slice('web', three.slice(2), undefined, 'b')], node: node1, from: pod1, to: tcp80(), want: fwd(threeKeys),
  },
  {
    name: 'multi-port: each Service port reaches its own target port by name',
    services: [web({ ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'admin', protocol: 'TCP', port: 9000 }] })],
    slices: [slice('web', [{ ip: '10.244.1.5' }], [{ name: 'http', port: 8080 }, { name: 'admin', port: 9090 }])],
    node: node1, from: pod1, to: { ip: '10.96.0.20', port: 9000, proto: 'TCP' }, want: fwd(['10.244.1.5:9090']),
  },
  { name: 'hairpin: a pod reaching itself is masqueraded', services: [web()], slices: [slice('web', three)], node: node1, from: { ip: '10.244.1.5' }, to: tcp80(), want: fwd(threeKeys, 'hairpin') },
  { name: 'internalTrafficPolicy Local: only this node\'s endpoints', services: [web({ internalTrafficPolicy: 'Local' })], slices: [slice('web', three)], node: node1, from: pod1, to: tcp80(), want: fwd(['10.244.1.5:8080', '10.244.1.6:8080']) },
  {
    name: 'internalTrafficPolicy Local without local endpoints: drop, no fallback',
    services: [web({ internalTrafficPolicy: 'Local' })], slices: [slice('web', three.slice(0, 2))], node: node2, from: pod2, to: tcp80(), want: { action: 'drop' },
  },
  {
    name: 'internalTrafficPolicy Local from the host: every endpoint (the host belongs to no single node)',
    services: [web({ internalTrafficPolicy: 'Local' })], slices: [slice('web', three.slice(0, 2))], node: node2, from: { ip: '10.244.2.1', host: true }, to: tcp80(), want: fwd(['10.244.1.5:8080', '10.244.1.6:8080'], true),
  },
  { name: 'NodePort on this node\'s address (Cluster policy, SNAT)', services: [np()], slices: [slice('web', three)], node: node1, from: outside, to: { ip: '10.244.1.1', port: 30080, proto: 'TCP' }, want: fwd(threeKeys, true) },
  { name: 'NodePort from the host', services: [np()], slices: [slice('web', three)], node: node2, from: { ip: '10.244.2.1', host: true }, to: { ip: '10.244.2.1', port: 30080, proto: 'TCP' }, want: fwd(threeKeys, true) },
  { name: 'NodePort on another node\'s address is that node\'s', services: [np()], slices: [slice('web', three)], node: node1, from: outside, to: { ip: '10.244.2.1', port: 30080, proto: 'TCP' }, want: { action: 'pass' } },
  { name: 'NodePort without endpoints: reject', services: [np()], slices: [], node: node1, from: outside, to: { ip: '10.244.1.1', port: 30080, proto: 'TCP' }, want: { action: 'reject' } },
  { name: 'ClusterIP Service has no NodePort', services: [web({ ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] })], slices: [slice('web', three)], node: node1, from: outside, to: { ip: '10.244.1.1', port: 30080, proto: 'TCP' }, want: { action: 'pass' } },
  {
    name: 'externalTrafficPolicy Local: local endpoints, source kept',
    services: [np({ externalTrafficPolicy: 'Local' })], slices: [slice('web', three)], node: node1, from: outside, to: { ip: '10.244.1.1', port: 30080, proto: 'TCP' }, want: fwd(['10.244.1.5:8080', '10.244.1.6:8080']),
  },
  {
    name: 'externalTrafficPolicy Local on a node without local endpoints: drop',
    services: [np({ externalTrafficPolicy: 'Local' })], slices: [slice('web', three.slice(0, 2))], node: node2, from: outside, to: { ip: '10.244.2.1', port: 30080, proto: 'TCP' }, want: { action: 'drop' },
  },
  {
    name: 'externalTrafficPolicy Local from a pod: short-circuit to every endpoint, source kept',
    services: [np({ externalTrafficPolicy: 'Local' })], slices: [slice('web', three.slice(0, 2))], node: node2, from: pod1, to: { ip: '10.244.2.1', port: 30080, proto: 'TCP' }, want: fwd(['10.244.1.5:8080', '10.244.1.6:8080']),
  },
  { name: 'LoadBalancer IP (Cluster policy)', services: [lb()], slices: [slice('web', three)], node: node2, from: outside, to: { ip: '10.250.0.9', port: 80, proto: 'TCP' }, want: fwd(threeKeys, true) },
  { name: 'LoadBalancer Service also has its NodePort', services: [lb()], slices: [slice('web', three)], node: node2, from: outside, to: { ip: '10.244.2.1', port: 30081, proto: 'TCP' }, want: fwd(threeKeys, true) },
  {
    name: 'LoadBalancer IP with Local policy: a node with local endpoints keeps the source',
    services: [lb({ externalTrafficPolicy: 'Local' })], slices: [slice('web', three)], node: node2, from: outside, to: { ip: '10.250.0.9', port: 80, proto: 'TCP' }, want: fwd(['10.244.2.5:8080']),
  },
  {
    name: 'LoadBalancer IP with Local policy: a node without local endpoints leaves it to one that has them',
    services: [lb({ externalTrafficPolicy: 'Local' })], slices: [slice('web', three.slice(0, 2))], node: node2, from: outside, to: { ip: '10.250.0.9', port: 80, proto: 'TCP' }, want: { action: 'pass' },
  },
  { name: 'a pending LoadBalancer (no ingress IP) only has its ClusterIP', services: [lb()].map((s) => ({ ...s, status: {} })), slices: [slice('web', three)], node: node2, from: outside, to: { ip: '10.250.0.9', port: 80, proto: 'TCP' }, want: { action: 'pass' } },
  { name: 'sessionAffinity ClientIP keeps its timeout', services: [web({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })], slices: [slice('web', three)], node: node1, from: pod1, to: tcp80(), want: fwd(threeKeys, false, 60) },
  { name: 'headless Service: nothing to proxy', services: [web({ clusterIP: 'None' })], slices: [slice('web', three)], node: node1, from: pod1, to: tcp80(), want: { action: 'pass' } },
  { name: 'ExternalName Service: nothing to proxy', services: [service('web', { type: 'ExternalName', externalName: 'example.com' })], slices: [], node: node1, from: pod1, to: tcp80(), want: { action: 'pass' } },
  { name: 'unknown address: not a service', services: [web()], slices: [slice('web', three)], node: node1, from: pod1, to: tcp80('10.96.0.21'), want: { action: 'pass' } },
]
