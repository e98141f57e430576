// Which node announces each LoadBalancer IP: MetalLB's sha256(node#ip)
// order over the live speaker nodes, filtered for externalTrafficPolicy Local.
import { createHash } from 'node:crypto'
import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { announcedIPs, electAnnouncers, nodesWithUsableEndpoints, rankNodes, speakerCandidates } from '../../dataplane/lb-speaker/election.ts'

const node = (name: string, o: { speaker?: boolean; ready?: 'True' | 'False' | 'Unknown'; deleting?: boolean; exclude?: boolean } = {}): KubeObject => ({
  metadata: {
    name,
    labels: { ...(o.speaker !== false ? { 'skiff.dev/lb-speaker': 'eth0' } : {}), ...(o.exclude ? { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } : {}) },
    ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
  },
  status: o.ready ? { conditions: [{ type: 'Ready', status: o.ready }] } : {},
})

const svc = (name: string, ips: string[], o: { local?: boolean; type?: string; cls?: string } = {}): KubeObject => ({
  metadata: { namespace: 'default', name },
  spec: { type: o.type ?? 'LoadBalancer', ...(o.local ? { externalTrafficPolicy: 'Local' } : {}), ...(o.cls ? { loadBalancerClass: o.cls } : {}) },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } },
})

type Ep = { node: string; ready?: boolean; serving?: boolean; terminating?: boolean }
const slice = (service: string, eps: Ep[]): KubeObject => ({
  metadata: { namespace: 'default', name: `${service}-x`, labels: { 'kubernetes.io/service-name': service } },
  endpoints: eps.map((e, i) => ({
    addresses: [`10.244.0.${i + 1}`],
    nodeName: e.node,
    conditions: { ...(e.ready !== undefined ? { ready: e.ready } : {}), ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) },
  })),
})

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
/** The MetalLB order written out by hand, to check rankNodes against. */
const byHash = (ip: string, nodes: string[]) => [...nodes].sort((a, b) => (sha(`${a}#${ip}`) < sha(`${b}#${ip}`) ? -1 : 1))

t.test('rankNodes is the sha256(node#ip) order, and differs per IP', async (t) => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5']
  for (const ip of ['172.31.9.200', '172.31.9.201', '172.31.9.202']) t.same(rankNodes(ip, nodes), byHash(ip, nodes), ip)
  const firsts = new Set(Array.from({ length: 40 }, (_, i) => rankNodes(`172.31.9.${200 + i}`, nodes)[0]))
  t.ok(firsts.size > 1, 'IPs spread over nodes')
  const memo = new Map<string, string>()
  t.same(rankNodes('172.31.9.200', nodes, memo), byHash('172.31.9.200', nodes))
  t.equal(memo.size, 5, 'hashes memoised')
  t.same(rankNodes('172.31.9.200', nodes, memo), byHash('172.31.9.200', nodes), 'same order from the memo')
})

t.test('candidates: live speaker nodes, not leaving, not Ready=False, not excluded', async (t) => {
  const nodes = [
    node('a', { ready: 'True' }),
    node('b', { ready: 'Unknown' }), // the lifecycle controller's slower view; the Lease says alive
    node('c', { ready: 'False' }),
    node('d', { deleting: true }),
    node('e', { speaker: false }),
    node('f', { exclude: true }),
    node('g'),
    node('h'), // not alive
  ]
  t.same(speakerCandidates(nodes, new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g'])), ['a', 'b', 'g'])
})

t.test('usable endpoints per node: ready, else serving and terminating; not-ready ones do not count', async (t) => {
  const s = svc('web', ['172.31.9.200'], { local: true })
  const slices = [
    slice('web', [
      { node: 'a' }, // conditions missing: ready
      { node: 'b', ready: false },
      { node: 'c', ready: false, serving: true, terminating: true },
      { node: 'd', ready: false, serving: false, terminating: true },
    ]),
    slice('other', [{ node: 'e' }]),
  ]
  t.same([...nodesWithUsableEndpoints(s, slices)].sort(), ['a', 'c'])
})

t.test('which IPs a speaker announces', async (t) => {
  t.same(announcedIPs(svc('a', ['172.31.9.200', '172.31.9.200', '172.31.9.201'])), ['172.31.9.200', '172.31.9.201'])
  t.same(announcedIPs(svc('a', ['172.31.9.200'], { type: 'ClusterIP' })), [], 'not a LoadBalancer (any more)')
  t.same(announcedIPs(svc('a', ['172.31.9.200'], { cls: 'example.com/other' })), [], 'another implementation serves this class')
  t.same(announcedIPs(svc('a', ['172.31.9.200'], { cls: 'skiff.dev/lb' })), ['172.31.9.200'])
  t.same(announcedIPs({ ...svc('a', []), status: { loadBalancer: { ingress: [{ hostname: 'lb.example.com' }, { ip: 'fd00::1' }, { ip: '300.1.1.1' }] } } }), [], 'hostnames, IPv6 and garbage are skipped')
  t.same(announcedIPs({ ...svc('a', ['172.31.9.200']), metadata: { namespace: 'default', name: 'a', deletionTimestamp: 'x' } }), [], 'being deleted')
})

const ip = '172.31.9.200'
const all = ['a', 'b', 'c']

const cases: Array<{ name: string; services: KubeObject[]; slices?: KubeObject[]; nodes?: KubeObject[]; alive?: string[]; want: string | undefined; reason?: RegExp }> = [
  { name: 'Cluster policy: the first of all live speakers', services: [svc('web', [ip])], want: byHash(ip, all)[0] },
  { name: 'the first node dies: the second takes over', services: [svc('web', [ip])], alive: all.filter((n) => n !== byHash(ip, all)[0]), want: byHash(ip, all)[1] },
  { name: 'a node that is not first dies: nothing moves', services: [svc('web', [ip])], alive: all.filter((n) => n !== byHash(ip, all)[2]), want: byHash(ip, all)[0] },
  { name: 'no live speaker: nobody', services: [svc('web', [ip])], alive: [], want: undefined, reason: /no live speaker/ },
  { name: 'Cluster policy does not wait for endpoints (the proxy rejects when there are none)', services: [svc('web', [ip])], slices: [], want: byHash(ip, all)[0] },
  {
    name: 'Local policy: only nodes with a usable local endpoint',
    services: [svc('web', [ip], { local: true })],
    slices: [slice('web', [{ node: byHash(ip, all)[2]! }, { node: byHash(ip, all)[0]!, ready: false }])],
    want: byHash(ip, all)[2],
  },
  {
    name: 'Local policy: the endpoint node is dead: nobody',
    services: [svc('web', [ip], { local: true })],
    slices: [slice('web', [{ node: 'c' }])],
    alive: ['a', 'b'],
    want: undefined,
    reason: /usable local endpoint/,
  },
  {
    name: 'Local policy: an endpoint on a node without a speaker does not make it a candidate',
    services: [svc('web', [ip], { local: true })],
    slices: [slice('web', [{ node: 'x' }])],
    nodes: [...all.map((n) => node(n)), node('x', { speaker: false })],
    alive: [...all, 'x'],
    want: undefined,
  },
  { name: 'Local policy: no endpoints at all: nobody', services: [svc('web', [ip], { local: true })], slices: [], want: undefined },
  {
    name: 'Local policy: a node with only terminating-but-serving endpoints still counts',
    services: [svc('web', [ip], { local: true })],
    slices: [slice('web', [{ node: 'b', ready: false, serving: true, terminating: true }])],
    want: 'b',
  },
  {
    name: 'an IP shared by a Local and a Cluster Service: any node either could use',
    services: [svc('web', [ip], { local: true }), svc('api', [ip])],
    slices: [slice('web', [{ node: 'c' }])],
    want: byHash(ip, all)[0],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = electAnnouncers({ services: c.services, slices: c.slices ?? [], nodes: c.nodes ?? all.map((n) => node(n)), alive: new Set(c.alive ?? all) })
    t.equal(got.length, 1)
    t.equal(got[0]!.node, c.want)
    if (c.reason) t.match(got[0]!.reason, c.reason)
    if (c.want) t.equal(got[0]!.reason, undefined)
  })
}

t.test('several IPs: one assignment each, sorted by address, with their Services', async (t) => {
  const got = electAnnouncers({ services: [svc('b', ['172.31.9.210']), svc('a', ['172.31.9.9', '172.31.9.100'])], slices: [], nodes: all.map((n) => node(n)), alive: new Set(all) })
  t.same(got.map((a) => [a.ip, a.services, a.node, a.candidates]), [
    ['172.31.9.9', ['default/a'], byHash('172.31.9.9', all)[0], 3],
    ['172.31.9.100', ['default/a'], byHash('172.31.9.100', all)[0], 3],
    ['172.31.9.210', ['default/b'], byHash('172.31.9.210', all)[0], 3],
  ])
})

t.test('every speaker computes the same answer from the same cache, whatever the list order', async (t) => {
  const nodes = all.map((n) => node(n))
  const services = [svc('a', ['172.31.9.200']), svc('b', ['172.31.9.201']), svc('c', ['172.31.9.202'])]
  const one = electAnnouncers({ services, slices: [], nodes, alive: new Set(all) })
  const two = electAnnouncers({ services: [...services].reverse(), slices: [], nodes: [...nodes].reverse(), alive: new Set([...all].reverse()) })
  t.same(one, two)
})
