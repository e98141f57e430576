// node/pod-network: the planner (which peers get routes, which are skipped
// or refused), the diffs against the kernel, the parsers of `ip -j` output
// and the nftables table. Routes are checked by tracing a packet: where does
// a packet to this pod IP leave this host?

import t from 'tap'
import { validateSkiffAnnotations } from '../../controlplane/api/validation/skiff.ts'
import { cidrContains, parseCidr } from '../../lib/ipv4.ts'
import {
  connectedSubnets, fdbDeleteArgs, fdbReplaceArgs, neighReplaceArgs, parseAddresses, parseFdb, parseNeighbours, parseRoutes, parseVxlanLink,
  routeDeleteArgs, routeReplaceArgs,
} from '../../node/pod-network/kernel.ts'
import { renderNftTable } from '../../node/pod-network/nft.ts'
import {
  isVtepMac, nodeView, overlayProblems, planFdbChanges, planNeighChanges, planPodNetwork, planRouteChanges, podMtu, randomVtepMac,
  type ConnectedSubnet, type DesiredState, type NodeView, type PlanInput,
} from '../../node/pod-network/plan.ts'
import { underlayOf } from '../../node/pod-network/pod-network.ts'
import { vxlanDeviceAction, type VxlanDeviceSpec } from '../../node/pod-network/vxlan.ts'

const lan: ConnectedSubnet[] = [{ dev: 'eth0', cidr: '192.168.50.0/24' }, { dev: 'skiff-0a1b2c3d4', cidr: '10.244.1.0/24' }]
const self = { name: 'h1', podCIDR: '10.244.1.0/24', nodeIP: '192.168.50.11', vtepMac: '0a:00:00:00:00:01' }
const mac = (i: number) => `0a:00:00:00:00:0${i}`

function peer(i: number, o: Partial<NodeView> = {}): NodeView {
  return { name: `h${i}`, podCIDR: `10.244.${i}.0/24`, internalIP: `192.168.50.1${i}`, ready: true, deleting: false, vtepMac: mac(i), ...o }
}

function plan(nodes: NodeView[], o: Partial<PlanInput> = {}): DesiredState {
  return planPodNetwork({ mode: 'host-gw', self, clusterCIDR: '10.244.0.0/16', nodes, connected: lan, ...o })
}

/** Where a packet to `ip` leaves this host: the longest matching planned route, else a connected subnet, else nowhere. */
function trace(d: DesiredState, ip: string, connected = lan): string {
  const r = d.routes.filter((x) => cidrContains(x.dst, ip)).sort((a, b) => parseCidr(b.dst).bits - parseCidr(a.dst).bits)[0]
  if (r) return `via ${r.via} dev ${r.dev}${r.onlink ? ' onlink' : ''}`
  const c = connected.find((x) => cidrContains(x.cidr, ip))
  return c ? `local dev ${c.dev}` : 'no route'
}

t.test('host-gw: packets to pods on other hosts go to that host\'s InternalIP', async (t) => {
  const cases: Array<{ name: string; nodes: NodeView[]; dst: string; want: string }> = [
    { name: 'pod on h2', nodes: [peer(2), peer(3)], dst: '10.244.2.7', want: 'via 192.168.50.12 dev eth0' },
    { name: 'pod on h3', nodes: [peer(2), peer(3)], dst: '10.244.3.200', want: 'via 192.168.50.13 dev eth0' },
    { name: 'own pod stays local', nodes: [peer(2)], dst: '10.244.1.5', want: 'local dev skiff-0a1b2c3d4' },
    { name: 'h4 joins', nodes: [peer(2), peer(3), peer(4)], dst: '10.244.4.9', want: 'via 192.168.50.14 dev eth0' },
    { name: 'h3 left (Node deleted): no route', nodes: [peer(2)], dst: '10.244.3.9', want: 'no route' },
    { name: 'h3 NotReady: no route', nodes: [peer(2), peer(3, { ready: false })], dst: '10.244.3.9', want: 'no route' },
    { name: 'h3 being deleted: no route', nodes: [peer(2), peer(3, { deleting: true })], dst: '10.244.3.9', want: 'no route' },
    { name: 'h3 Ready again', nodes: [peer(2), peer(3)], dst: '10.244.3.9', want: 'via 192.168.50.13 dev eth0' },
    { name: 'h3 got a new podCIDR: the old range is gone', nodes: [peer(3, { podCIDR: '10.244.30.0/24' })], dst: '10.244.3.9', want: 'no route' },
    { name: 'h3 got a new podCIDR: the new range goes to h3', nodes: [peer(3, { podCIDR: '10.244.30.0/24' })], dst: '10.244.30.9', want: 'via 192.168.50.13 dev eth0' },
    { name: 'h3 moved to another address', nodes: [peer(3, { internalIP: '192.168.50.99' })], dst: '10.244.3.9', want: 'via 192.168.50.99 dev eth0' },
    { name: 'outside the cluster: not ours', nodes: [peer(2)], dst: '8.8.8.8', want: 'no route' },
  ]
  for (const c of cases) t.equal(trace(plan(c.nodes), c.dst), c.want, c.name)
})

t.test('vxlan: flannel\'s three entries per peer, on the overlay device', async (t) => {
  const d = plan([peer(3), peer(2)], { mode: 'vxlan' })
  t.same(d.routes, [
    { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'skiff.1', onlink: true },
    { dst: '10.244.3.0/24', via: '10.244.3.0', dev: 'skiff.1', onlink: true },
  ])
  t.same(d.neighbours, [{ ip: '10.244.2.0', mac: mac(2), dev: 'skiff.1' }, { ip: '10.244.3.0', mac: mac(3), dev: 'skiff.1' }])
  t.same(d.fdb, [{ mac: mac(2), dst: '192.168.50.12', dev: 'skiff.1' }, { mac: mac(3), dst: '192.168.50.13', dev: 'skiff.1' }])
  t.equal(trace(d, '10.244.3.4'), 'via 10.244.3.0 dev skiff.1 onlink')
  // A peer on another segment is fine for vxlan: only its UDP has to get there.
  const far = plan([peer(2, { internalIP: '172.20.0.5' })], { mode: 'vxlan' })
  t.same(far.fdb, [{ mac: mac(2), dst: '172.20.0.5', dev: 'skiff.1' }])
  t.same(far.problems, [])
})

t.test('peer outcomes: skipped for now, or refused with a problem to fix', async (t) => {
  const cases: Array<{ name: string; nodes: NodeView[]; mode?: 'host-gw' | 'vxlan'; want: Record<string, string> }> = [
    { name: 'not ready', nodes: [peer(2, { ready: false })], want: { h2: 'skipped not-ready' } },
    { name: 'no podCIDR yet', nodes: [peer(2, { podCIDR: undefined })], want: { h2: 'skipped no-pod-cidr' } },
    { name: 'no InternalIP yet', nodes: [peer(2, { internalIP: undefined })], want: { h2: 'skipped no-internal-ip' } },
    { name: 'vxlan peer without a VTEP MAC yet', mode: 'vxlan', nodes: [peer(2, { vtepMac: undefined })], want: { h2: 'skipped no-vtep-mac' } },
    { name: 'host-gw does not need a MAC', nodes: [peer(2, { vtepMac: undefined })], want: { h2: 'routed' } },
    { name: 'host-gw peer behind a router', nodes: [peer(2), peer(5, { internalIP: '172.20.0.5' })], want: { h2: 'routed', h5: 'refused not-on-link' } },
    { name: 'podCIDR outside the cluster CIDR', nodes: [peer(2, { podCIDR: '10.99.2.0/24' })], want: { h2: 'refused pod-cidr-conflict' } },
    { name: 'podCIDR overlapping ours', nodes: [peer(2, { podCIDR: '10.244.1.0/24' })], want: { h2: 'refused pod-cidr-conflict' } },
    { name: 'two peers with one podCIDR: neither', nodes: [peer(2), peer(3, { podCIDR: '10.244.2.0/24' }), peer(4)], want: { h2: 'refused pod-cidr-conflict', h3: 'refused pod-cidr-conflict', h4: 'routed' } },
    { name: 'our InternalIP', nodes: [peer(2, { internalIP: self.nodeIP })], want: { h2: 'refused internal-ip-conflict' } },
    { name: 'two peers on one address (the Vagrant 10.0.2.15 trap)', nodes: [peer(2, { internalIP: '192.168.50.77' }), peer(3, { internalIP: '192.168.50.77' })], want: { h2: 'refused internal-ip-conflict', h3: 'refused internal-ip-conflict' } },
    { name: 'peer in the other mode', nodes: [peer(2, { mode: 'vxlan' }), peer(3, { mode: 'host-gw' })], want: { h2: 'refused mode-mismatch', h3: 'routed' } },
    { name: 'peer with our VTEP MAC', mode: 'vxlan', nodes: [peer(2, { vtepMac: self.vtepMac })], want: { h2: 'refused vtep-mac-conflict' } },
    { name: 'peer with a multicast MAC', mode: 'vxlan', nodes: [peer(2, { vtepMac: '01:00:5e:00:00:01' })], want: { h2: 'refused vtep-mac-conflict' } },
    { name: 'this node in the list is not a peer', nodes: [peer(1), peer(2)], want: { h2: 'routed' } },
  ]
  for (const c of cases) {
    const d = plan(c.nodes, { mode: c.mode ?? 'host-gw' })
    const got = Object.fromEntries(d.peers.map((p) => [p.node, [p.state, p.reason].filter(Boolean).join(' ')]))
    t.same(got, c.want, c.name)
    // Only routed peers have routes; every refused one is a problem with a code and what to do.
    t.equal(d.routes.length, d.peers.filter((p) => p.state === 'routed').length, `${c.name}: one route per routed peer`)
    t.same(d.problems.map((p) => p.node), d.peers.filter((p) => p.state === 'refused').map((p) => p.node), `${c.name}: refused = problems`)
  }
})

t.test('a peer that is not on-link is refused with a message that says to use vxlan', async (t) => {
  const d = plan([peer(5, { internalIP: '172.20.0.5' })])
  t.same(d.routes, [])
  t.equal(d.problems.length, 1)
  t.equal(d.problems[0]!.code, 'SKIFF_ERR_PODNET_NOT_ON_LINK')
  t.match(d.problems[0]!.message, /^SKIFF_ERR_PODNET_NOT_ON_LINK: node h5's InternalIP 172\.20\.0\.5 is not in a subnet this host is directly connected to \(192\.168\.50\.0\/24, 10\.244\.1\.0\/24\); .*use --pod-network vxlan/)
  // The longest prefix decides the device.
  const two = plan([peer(2)], { connected: [{ dev: 'eth1', cidr: '192.168.0.0/16' }, { dev: 'eth0', cidr: '192.168.50.0/24' }] })
  t.equal(two.routes[0]!.dev, 'eth0')
})

t.test('nodeView reads the Node as the API serves it', async (t) => {
  const node = {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: 'h2', annotations: { 'skiff.dev/pod-network': 'vxlan', 'skiff.dev/vtep-mac': mac(2) } },
    spec: { podCIDR: '10.244.2.0/24' },
    status: { addresses: [{ type: 'Hostname', address: 'h2' }, { type: 'InternalIP', address: '192.168.50.12' }], conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status: 'True' }] },
  }
  t.same(nodeView(node), { name: 'h2', podCIDR: '10.244.2.0/24', internalIP: '192.168.50.12', ready: true, deleting: false, mode: 'vxlan', vtepMac: mac(2) })
  t.equal(nodeView({ ...node, status: { ...node.status, conditions: [{ type: 'Ready', status: 'Unknown' }] } }).ready, false, 'Ready=Unknown (lease expired) is not ready')
  t.equal(nodeView({ ...node, status: { ...node.status, conditions: [{ type: 'Ready', status: 'False' }] } }).ready, false)
  t.equal(nodeView({ ...node, status: {} }).ready, false, 'no conditions: not ready')
  t.equal(nodeView({ ...node, spec: { podCIDRs: ['10.244.9.0/24'] } }).podCIDR, '10.244.9.0/24')
  t.equal(nodeView({ ...node, metadata: { ...node.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }).deleting, true)
})

t.test('route diff: add missing, replace wrong, delete stale, leave right ones alone', async (t) => {
  const want = [
    { dst: '10.244.2.0/24', via: '192.168.50.12', dev: 'eth0', onlink: false },
    { dst: '10.244.3.0/24', via: '192.168.50.13', dev: 'eth0', onlink: false },
    { dst: '10.244.4.0/24', via: '192.168.50.14', dev: 'eth0', onlink: false },
  ]
  const have = [
    { dst: '10.244.2.0/24', via: '192.168.50.12', dev: 'eth0', onlink: false },
    { dst: '10.244.3.0/24', via: '192.168.50.99', dev: 'eth0', onlink: false },
    { dst: '10.244.9.0/24', via: '192.168.50.19', dev: 'eth0', onlink: false },
    { dst: '10.244.2.0/24', via: '192.168.50.12', dev: 'eth0', onlink: false, metric: 50 },
  ]
  const d = planRouteChanges(want, have)
  t.same(d.replace.map((r) => r.dst), ['10.244.3.0/24', '10.244.4.0/24'])
  t.same(d.remove.map((r) => `${r.dst}${r.metric ? ` metric ${r.metric}` : ''}`), ['10.244.2.0/24 metric 50', '10.244.9.0/24'])
  t.same(planRouteChanges(want, want), { replace: [], remove: [] }, 'in sync: nothing to do')
  // host-gw -> vxlan: every route is rewritten onto the device.
  const vx = want.map((r) => ({ ...r, via: r.dst.replace('/24', ''), dev: 'skiff.1', onlink: true }))
  t.equal(planRouteChanges(vx, want).replace.length, 3)
})

t.test('neighbour and FDB diffs', async (t) => {
  const n = planNeighChanges([{ ip: '10.244.2.0', mac: mac(2), dev: 'skiff.1' }, { ip: '10.244.3.0', mac: mac(3), dev: 'skiff.1' }], [{ ip: '10.244.2.0', mac: mac(9) }, { ip: '10.244.7.0', mac: mac(7) }])
  t.same(n.replace.map((x) => x.ip), ['10.244.2.0', '10.244.3.0'])
  t.same(n.remove, [{ ip: '10.244.7.0', mac: mac(7) }])
  const f = planFdbChanges([{ mac: mac(2), dst: '192.168.50.12', dev: 'skiff.1' }, { mac: mac(3), dst: '192.168.50.13', dev: 'skiff.1' }], [{ mac: mac(2), dst: '192.168.50.12' }, { mac: mac(3), dst: '192.168.50.99' }, { mac: mac(7), dst: '192.168.50.17' }])
  t.same(f.replace.map((x) => x.mac), [mac(3)])
  t.same(f.remove, [{ mac: mac(3), dst: '192.168.50.99' }, { mac: mac(7), dst: '192.168.50.17' }], 'a MAC pointing at an old address goes, or it would be flooded to both')
})

t.test('parsers of ip -j / bridge -j output', async (t) => {
  const addrs = parseAddresses([
    { ifname: 'lo', mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'eth0', mtu: 1500, addr_info: [{ family: 'inet', local: '192.168.50.11', prefixlen: 24 }] },
    { ifname: 'skiff.1', mtu: 1450, addr_info: [{ family: 'inet', local: '10.244.1.0', prefixlen: 32 }] },
  ])
  t.same(connectedSubnets(addrs, ['skiff.1']), [{ dev: 'eth0', cidr: '192.168.50.0/24' }])
  t.same(underlayOf('192.168.50.11', addrs), { dev: 'eth0', ip: '192.168.50.11', prefixlen: 24, mtu: 1500 })
  t.throws(() => underlayOf('192.168.50.200', addrs), /SKIFF_ERR_PODNET_NODE_IP: no interface of this host has the InternalIP 192\.168\.50\.200 \(it has 192\.168\.50\.11 \(eth0\), 10\.244\.1\.0 \(skiff\.1\)\); pass one of this host's addresses with --node-ip/)
  t.same(parseRoutes([{ dst: '10.244.2.0/24', gateway: '10.244.2.0', dev: 'skiff.1', flags: ['onlink'] }, { dst: '10.244.3.0/24', gateway: '192.168.50.13', dev: 'eth0', flags: ['linkdown'], metric: 20 }, { dst: '10.244.9.9', dev: 'eth0', flags: [] }]), [
    { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'skiff.1', onlink: true },
    { dst: '10.244.3.0/24', via: '192.168.50.13', dev: 'eth0', onlink: false, metric: 20 },
    { dst: '10.244.9.9/32', dev: 'eth0', onlink: false },
  ])
  t.same(parseNeighbours([{ dst: '10.244.2.0', lladdr: mac(2), state: ['PERMANENT'] }, { dst: '10.244.8.0', state: ['FAILED'] }]), [{ ip: '10.244.2.0', mac: mac(2) }])
  t.same(parseFdb([{ mac: mac(2), dst: '192.168.50.12', flags: ['self'], state: 'permanent' }, { mac: '33:33:00:00:00:01', flags: ['self'], state: 'permanent' }]), [{ mac: mac(2), dst: '192.168.50.12' }])
  const link = parseVxlanLink([{ ifname: 'skiff.1', mtu: 1450, address: mac(1), flags: ['BROADCAST', 'UP'], linkinfo: { info_kind: 'vxlan', info_data: { id: 1, local: '192.168.50.11', link: 'eth0', port: 8472, learning: false } } }])
  t.same(link, { mac: mac(1), mtu: 1450, up: true, kind: 'vxlan', vni: 1, local: '192.168.50.11', link: 'eth0', port: 8472, learning: false })
})

t.test('vxlan device: recreated when its VXLAN settings differ, updated in place for MAC and MTU', async (t) => {
  const want: VxlanDeviceSpec = { name: 'skiff.1', vni: 1, port: 8472, local: '192.168.50.11', underlay: 'eth0', mtu: 1450, mac: mac(1), address: '10.244.1.0/32' }
  const have = { mac: mac(1), mtu: 1450, up: true, kind: 'vxlan', vni: 1, local: '192.168.50.11', link: 'eth0', port: 8472, learning: false }
  t.equal(vxlanDeviceAction(undefined, want), 'create')
  t.equal(vxlanDeviceAction(have, want), 'none')
  t.equal(vxlanDeviceAction({ ...have, local: '192.168.50.99' }, want), 'recreate', 'the InternalIP changed')
  t.equal(vxlanDeviceAction({ ...have, learning: true }, want), 'recreate')
  t.equal(vxlanDeviceAction({ ...have, kind: 'bridge' }, want), 'recreate', 'someone else\'s device of that name')
  t.equal(vxlanDeviceAction({ ...have, mtu: 1500 }, want), 'update')
  t.equal(vxlanDeviceAction({ ...have, up: false }, want), 'update')
})

t.test('commands carry the route proto and flannel\'s flags', async (t) => {
  t.same(routeReplaceArgs({ dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'skiff.1', onlink: true }), ['route', 'replace', '10.244.2.0/24', 'via', '10.244.2.0', 'dev', 'skiff.1', 'onlink', 'proto', '152'])
  t.same(routeDeleteArgs({ dst: '10.244.2.0/24', via: '192.168.50.12', dev: 'eth0', onlink: false }), ['route', 'del', '10.244.2.0/24', 'proto', '152', 'via', '192.168.50.12', 'dev', 'eth0'])
  t.same(neighReplaceArgs({ ip: '10.244.2.0', mac: mac(2), dev: 'skiff.1' }), ['neigh', 'replace', '10.244.2.0', 'lladdr', mac(2), 'dev', 'skiff.1', 'nud', 'permanent'])
  t.same(fdbReplaceArgs({ mac: mac(2), dst: '192.168.50.12', dev: 'skiff.1' }), ['fdb', 'replace', mac(2), 'dev', 'skiff.1', 'dst', '192.168.50.12', 'self', 'permanent'])
  t.same(fdbDeleteArgs({ mac: mac(2), dst: '192.168.50.12' }, 'skiff.1'), ['fdb', 'del', mac(2), 'dev', 'skiff.1', 'dst', '192.168.50.12', 'self'])
})

t.test('nftables: masquerade leaving the cluster only, skip the service proxy\'s mark, forward policy accept', async (t) => {
  const s = renderNftTable({ podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', randomFully: true })
  t.match(s, /^add table ip skiff-podnet\ndelete table ip skiff-podnet\ntable ip skiff-podnet \{/, 'one transaction that replaces the table whole')
  const post = s.slice(s.indexOf('chain postrouting'), s.indexOf('chain forward'))
  const rules = post.split('\n').map((l) => l.trim()).filter((l) => /^(meta|ip) /.test(l))
  t.match(rules[0], /^meta mark & 0x00004000 == 0x00004000 return/, 'marked packets first: the service proxy masquerades them')
  t.match(rules[1], /^ip saddr 10\.244\.1\.0\/24 ip daddr 10\.244\.0\.0\/16 return/, 'pod to pod keeps its source')
  t.match(rules[2], /^ip saddr 10\.244\.1\.0\/24 ip daddr != 224\.0\.0\.0\/4 masquerade fully-random/)
  t.match(s, /type filter hook forward priority filter; policy accept;/)
  t.notMatch(s, /policy drop/, 'never a drop policy')
  t.match(s, /ip saddr 10\.244\.0\.0\/16 accept\n\s+ip daddr 10\.244\.0\.0\/16 accept/)
  t.notMatch(renderNftTable({ podCIDR: '10.244.1.0/24', clusterCIDR: '10.244.0.0/16', randomFully: false }), /fully-random/)
})

t.test('MTU, MACs and the Node annotations the API accepts', async (t) => {
  t.equal(podMtu('host-gw', 1500), 1500)
  t.equal(podMtu('vxlan', 1500), 1450)
  t.equal(podMtu('vxlan', 9000), 8950)
  for (let i = 0; i < 20; i++) {
    const m = randomVtepMac(new Uint8Array([i * 13, 1, 2, 3, 4, 255]))
    t.ok(isVtepMac(m), `${m} is unicast`)
    t.equal(parseInt(m.slice(0, 2), 16) & 2, 2, `${m} is locally administered`)
  }
  t.notOk(isVtepMac('0A:00:00:00:00:01'), 'upper case is not what ip prints')
  t.notOk(isVtepMac('00:00:00:00:00:00'))
  const node = (annotations: Record<string, string>) => ({ kind: 'Node', metadata: { name: 'h1', annotations } })
  t.same(validateSkiffAnnotations(node({ 'skiff.dev/pod-network': 'vxlan', 'skiff.dev/vtep-mac': '0a:58:0a:f4:01:01' })), [], 'what start() returns is valid on a Node')
  t.equal(validateSkiffAnnotations(node({ 'skiff.dev/pod-network': 'flannel' })).length, 1)
  t.equal(validateSkiffAnnotations(node({ 'skiff.dev/vtep-mac': '01:00:5e:00:00:01' })).length, 1)
  t.equal(validateSkiffAnnotations({ kind: 'Pod', metadata: { name: 'p', annotations: { 'skiff.dev/vtep-mac': '0a:58:0a:f4:01:01' } } }).length, 1, 'only on Nodes')
})

t.test('overlay self-check: a problem after two misses in a row, saying what to open or turn off', async (t) => {
  t.same(overlayProblems([{ node: 'h2', failures: 0 }, { node: 'h3', failures: 1, detail: 'no answer in 2000 ms' }]), [], 'one miss is allowed (the peer may not have our entries yet)')
  const p = overlayProblems([{ node: 'h3', internalIP: '192.168.50.13', failures: 2, detail: 'no answer in 2000 ms' }])
  t.equal(p.length, 1)
  t.equal(p[0]!.reason, 'overlay-unreachable')
  t.match(p[0]!.message, /^SKIFF_ERR_PODNET_OVERLAY_TCP: TCP through the overlay to node h3 gets no answer \(no answer in 2000 ms, 2 times in a row\); let UDP 8472 through between this host and 192\.168\.50\.13, .*ethtool -K skiff\.1 tx-checksum-ip-generic off/)
})
