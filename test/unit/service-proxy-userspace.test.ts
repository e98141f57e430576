// The pure part of the userspace backend: which listeners and addresses a
// table needs, how a listener set is diffed, and how endpoints are chosen
// (spread, affinity with its timeout, retry excluding a failed endpoint).

import t from 'tap'
import type { Endpoint, RoutingTable, ServicePort } from '../../dataplane/service-proxy/types.ts'
import { diffListeners, EndpointPicker, endpointKey, planUserspace, route, traceUserspace, type ListenerKind, type Source } from '../../dataplane/service-proxy/userspace-plan.ts'

const ep = (ip: string, port = 8080, nodeName = 'n1'): Endpoint => ({ ip, port, nodeName, ready: true, serving: true, terminating: false })

function sp(over: Partial<ServicePort> = {}): ServicePort {
  return {
    id: 'default/web:http', namespace: 'default', service: 'web', portName: 'http', protocol: 'TCP',
    clusterIP: '10.96.0.5', port: 80, loadBalancerIPs: [], externalIPs: [],
    clusterEndpoints: [ep('10.244.1.2'), ep('10.244.2.2', 8080, 'n2')], localEndpoints: [ep('10.244.1.2')],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', affinitySeconds: 0, ...over,
  }
}

const table = (ports: ServicePort[]): RoutingTable => ({
  node: { name: 'n1', addresses: ['10.244.1.1'], podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16' }, ports, generation: 1,
})

t.test('plan: listeners and addresses per service type', async (t) => {
  const cases: { name: string; port: ServicePort; listeners: string[]; addresses: string[] }[] = [
    { name: 'ClusterIP', port: sp(), listeners: ['TCP 10.96.0.5:80'], addresses: ['10.96.0.5'] },
    { name: 'UDP ClusterIP', port: sp({ protocol: 'UDP', port: 53 }), listeners: ['UDP 10.96.0.5:53'], addresses: ['10.96.0.5'] },
    { name: 'NodePort listens on every node address', port: sp({ nodePort: 30080 }), listeners: ['TCP 10.96.0.5:80', 'TCP 10.244.1.1:30080'], addresses: ['10.96.0.5'] },
    {
      name: 'LoadBalancer and external IPs are service addresses', port: sp({ loadBalancerIPs: ['10.200.0.1'], externalIPs: ['10.201.0.1'] }),
      listeners: ['TCP 10.96.0.5:80', 'TCP 10.200.0.1:80', 'TCP 10.201.0.1:80'], addresses: ['10.200.0.1', '10.201.0.1', '10.96.0.5'],
    },
    { name: 'no endpoints: address kept, no listener (kernel rejects)', port: sp({ clusterEndpoints: [], localEndpoints: [] }), listeners: [], addresses: ['10.96.0.5'] },
    {
      name: 'Local policies still listen (the choice is per connection)', port: sp({ internalTrafficPolicy: 'Local', localEndpoints: [], nodePort: 30080 }),
      listeners: ['TCP 10.96.0.5:80', 'TCP 10.244.1.1:30080'], addresses: ['10.96.0.5'],
    },
    { name: 'headless: nothing', port: sp({ clusterIP: undefined }), listeners: [], addresses: [] },
    { name: 'IPv6 ClusterIP', port: sp({ clusterIP: 'fd00:96::5' }), listeners: ['TCP [fd00:96::5]:80'], addresses: ['fd00:96::5'] },
  ]
  for (const c of cases) {
    const plan = planUserspace(table([c.port]))
    t.same(plan.listeners.map((l) => l.key), c.listeners, c.name)
    t.same(plan.addresses, c.addresses, `${c.name}: addresses`)
  }
})

t.test('route: endpoints by source and policy', async (t) => {
  const node = table([]).node
  const keys = (r: ReturnType<typeof route>) => (r.action === 'forward' ? r.endpoints.map(endpointKey) : r.action)
  const both = ['10.244.1.2:8080', '10.244.2.2:8080']
  const cases: { name: string; port: ServicePort; kind: ListenerKind; from: Source; want: string[] | string }[] = [
    { name: 'pod to ClusterIP', port: sp(), kind: 'cluster', from: { ip: '10.244.1.9', host: false }, want: both },
    { name: 'iTP Local, own pod', port: sp({ internalTrafficPolicy: 'Local' }), kind: 'cluster', from: { ip: '10.244.1.9', host: false }, want: ['10.244.1.2:8080'] },
    { name: 'iTP Local, another node\'s pod: its node\'s endpoints', port: sp({ internalTrafficPolicy: 'Local' }), kind: 'cluster', from: { ip: '10.244.2.9', host: false }, want: ['10.244.2.2:8080'] },
    { name: 'iTP Local, pod of a node without endpoints: drop', port: sp({ internalTrafficPolicy: 'Local' }), kind: 'cluster', from: { ip: '10.244.3.9', host: false }, want: 'drop' },
    { name: 'iTP Local, host: every endpoint', port: sp({ internalTrafficPolicy: 'Local' }), kind: 'cluster', from: { ip: '10.244.1.1', host: true }, want: both },
    { name: 'no endpoints: reject', port: sp({ clusterEndpoints: [], localEndpoints: [] }), kind: 'cluster', from: { ip: '10.244.1.9', host: false }, want: 'reject' },
    { name: 'eTP Local from outside: local endpoints', port: sp({ externalTrafficPolicy: 'Local' }), kind: 'node', from: { ip: '192.0.2.7', host: false }, want: ['10.244.1.2:8080'] },
    { name: 'eTP Local from a pod: every endpoint', port: sp({ externalTrafficPolicy: 'Local' }), kind: 'node', from: { ip: '10.244.2.9', host: false }, want: both },
    { name: 'eTP Local, NodePort without local endpoints: drop', port: sp({ externalTrafficPolicy: 'Local', localEndpoints: [] }), kind: 'node', from: { ip: '192.0.2.7', host: false }, want: 'drop' },
    { name: 'eTP Local, LB IP without local endpoints: served by all', port: sp({ externalTrafficPolicy: 'Local', localEndpoints: [] }), kind: 'external', from: { ip: '192.0.2.7', host: false }, want: both },
  ]
  for (const c of cases) t.same(keys(route(c.port, node, c.kind, c.from)), c.want, c.name)
})

t.test('plan: the node\'s cluster DNS address forwards TCP and UDP 53 to its server, before any Service', async (t) => {
  const tb = table([sp({ clusterIP: '10.96.0.10', port: 53, protocol: 'UDP' })])
  tb.node.dns = { ip: '10.96.0.10', target: '10.244.1.1', port: 5353 }
  const plan = planUserspace(tb)
  t.same(plan.listeners.map((l) => `${l.key} ${l.portId}`), ['UDP 10.96.0.10:53 cluster-dns:UDP', 'TCP 10.96.0.10:53 cluster-dns:TCP'])
  t.same(plan.addresses, ['10.96.0.10'])
  t.same(plan.skipped.map((s) => s.id), ['default/web:http'])
  const got = traceUserspace(tb, plan, { from: { ip: '10.244.1.9', host: false }, to: { ip: '10.96.0.10', port: 53, proto: 'UDP' } })
  t.same(got.action === 'forward' ? got.endpoints.map(endpointKey) : got.action, ['10.244.1.1:5353'])
})

t.test('plan: SCTP and clashing keys are reported, not served', async (t) => {
  const plan = planUserspace(table([sp({ protocol: 'SCTP' }), sp(), sp({ id: 'default/other:' })]))
  t.same(plan.listeners.map((l) => l.portId), ['default/web:http'])
  t.same(plan.skipped.map((s) => s.id), ['default/web:http', 'default/other:'])
  t.match(plan.skipped[0]!.reason, /SCTP/)
})

t.test('diff: open new, close gone, keep the rest', async (t) => {
  const plan = planUserspace(table([sp({ nodePort: 30080 }), sp({ id: 'default/dns:', protocol: 'UDP', port: 53 })]))
  const d = diffListeners(['TCP 10.96.0.5:80', 'TCP 10.96.0.9:443'], plan.listeners)
  t.same(d.open.map((l) => l.key), ['TCP 10.244.1.1:30080', 'UDP 10.96.0.5:53'])
  t.same(d.keep.map((l) => l.key), ['TCP 10.96.0.5:80'])
  t.same(d.close, ['TCP 10.96.0.9:443'])
})

function seq(values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length]!
}

t.test('picker: uniform choice over the candidates', async (t) => {
  const eps = [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')]
  const p = new EndpointPicker(0, { random: seq([0, 0.34, 0.67, 0.99]) })
  t.same([1, 2, 3, 4].map(() => p.pick('1.1.1.1', eps)!.ip), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.3'])
})

t.test('picker: a failed endpoint is excluded on retry; none left -> undefined', async (t) => {
  const eps = [ep('10.0.0.1'), ep('10.0.0.2')]
  const p = new EndpointPicker(0, { random: () => 0 })
  const failed = new Set<string>()
  const trace: string[] = []
  for (let i = 0; i < 3; i++) {
    const e = p.pick('c', eps, failed)
    trace.push(e ? `${e.ip}/refused` : 'reject')
    if (e) failed.add(endpointKey(e))
  }
  t.same(trace, ['10.0.0.1/refused', '10.0.0.2/refused', 'reject'])
  t.equal(new EndpointPicker(0).pick('c', []), undefined)
})

t.test('picker: ClientIP affinity sticks, expires, follows endpoint removal, and agrees across agents', async (t) => {
  let now = 0
  let eps = [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')]
  const p = new EndpointPicker(10, { now: () => now })
  const first = p.pick('c1', eps)!.ip
  t.same(new Set([1, 2, 3, 4, 5].map(() => p.pick('c1', eps)!.ip)), new Set([first]), 'sticks')
  const other = new EndpointPicker(10, { now: () => now })
  const clients = Array.from({ length: 30 }, (_, i) => `10.244.1.${i + 10}`)
  t.same(clients.map((c) => other.pick(c, eps)!.ip), clients.map((c) => p.pick(c, eps)!.ip), 'two agents with the same endpoints choose alike for every client')
  t.equal(new Set(clients.map((c) => p.pick(c, eps)!.ip)).size, 3, 'clients spread over every endpoint')
  // Memory wins over the hash while it lasts: a new endpoint does not move a client.
  const grown = [...eps, ep('10.0.0.4'), ep('10.0.0.5'), ep('10.0.0.6')]
  const moved = clients.filter((c) => new EndpointPicker(10).pick(c, grown)!.ip !== p.pick(c, eps)!.ip)
  t.ok(moved.length > 0, 'some clients hash elsewhere with more endpoints')
  now = 9_000
  t.same(moved.map((c) => p.pick(c, grown)!.ip), moved.map((c) => p.pick(c, eps)!.ip), 'remembered clients stay within the timeout (refreshed)')
  now = 30_000
  t.same(moved.map((c) => p.pick(c, grown)!.ip), moved.map((c) => new EndpointPicker(10).pick(c, grown)!.ip), 'expired: chosen afresh')
  eps = eps.filter((e) => e.ip !== first)
  p.update(10, eps)
  t.not(p.pick('c1', eps)!.ip, first, 'endpoint gone: affinity moves')
  const now1 = p.pick('c1', eps)!
  t.not(p.pick('c1', eps, new Set([endpointKey(now1)]))!.ip, now1.ip, 'affinity endpoint failed: another one')
})

// The shared conformance flows, traced through what the userspace backend
// does. Known differences, by design (README.md): a userspace proxy always
// hides the client's address (`snat` is not compared), and it cannot leave a
// packet it accepted to another node, so a `pass` that lands on its listener
// (agents share listeners through reusePort) must end where the owning
// node's table would send it.
t.test('conformance flows', async (t) => {
  const conf = await import('../conformance/service-proxy.ts')
  const summary = (v: { action: string; endpoints?: Array<string | Endpoint> }) =>
    v.action === 'forward' ? `forward ${(v.endpoints ?? []).map((e) => (typeof e === 'string' ? e : endpointKey(e))).sort().join(',')}` : v.action
  for (const flow of conf.flows) {
    const table = conf.tableFor(flow)
    const got = traceUserspace(table, planUserspace(table), { from: { ip: flow.from.ip, host: !!flow.from.host }, to: flow.to })
    let want = summary(flow.want)
    if (flow.want.action === 'pass' && got.action !== 'pass') {
      const other = flow.node.name === conf.node1.name ? conf.node2 : conf.node1
      want = summary(conf.trace(conf.tableFor({ ...flow, node: other }), flow))
    }
    t.equal(summary(got), want, flow.name)
  }
})
