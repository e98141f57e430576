// The cluster zone through the handler chain (ready + kubernetes), as CoreDNS
// tests it: a table of queries with the expected rcode and records in zone-file
// syntax. The queries are real wire messages (dns-packet) and the replies are
// decoded back, so this covers zone.ts, compile.ts and the reply builder.

import t from 'tap'
import dnsPacket from 'dns-packet'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildChain, runChain } from '../../dataplane/dns/chain.ts'
import { compileZone, type CompiledZone } from '../../dataplane/dns/compile.ts'
import { Forwarder } from '../../dataplane/dns/forward.ts'
import { rrLine } from '../../dataplane/dns/format.ts'
import { createDnsMetrics } from '../../dataplane/dns/metrics.ts'
import { parseQuery } from '../../dataplane/dns/wire.ts'
import { buildZone } from '../../dataplane/dns/zone.ts'
import { silentLogger } from '../../lib/log.ts'

const svc = (ns: string, name: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name }, spec })
const slice = (ns: string, svcName: string, ports: unknown[], endpoints: unknown[]): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: ns, name: `${svcName}-x1`, labels: { 'kubernetes.io/service-name': svcName } }, ports, endpoints,
})
const ep = (ip: string, ready: boolean, hostname?: string) => ({ addresses: [ip], conditions: { ready }, ...(hostname ? { hostname } : {}) })

const services = [
  svc('default', 'web', { type: 'ClusterIP', clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'TCP' }] }),
  svc('default', 'plain', { type: 'ClusterIP', clusterIP: '10.96.0.13', ports: [{ port: 8080, protocol: 'TCP' }] }),
  svc('default', 'db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }),
  svc('default', 'empty', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }),
  svc('default', 'ext', { type: 'ExternalName', externalName: 'www.example.com' }),
  svc('default', 'alias', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
  svc('default', 'alias2', { type: 'ExternalName', externalName: 'Alias.default.svc.cluster.local.' }),
  svc('default', 'loop1', { type: 'ExternalName', externalName: 'loop2.default.svc.cluster.local' }),
  svc('default', 'loop2', { type: 'ExternalName', externalName: 'loop1.default.svc.cluster.local' }),
  svc('kube-system', 'kube-dns', { clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
]
const slices = [
  slice('default', 'db', [{ name: 'pg', port: 5432, protocol: 'TCP' }], [ep('10.244.1.5', true, 'db-0'), ep('10.244.2.6', true), ep('10.244.1.7', false, 'db-2')]),
  slice('default', 'empty', [{ name: 'pg', port: 5432, protocol: 'TCP' }], [ep('10.244.1.8', false)]),
]
const pods: KubeObject[] = [{ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'default', name: 'lonely' }, spec: {}, status: { podIP: '10.244.1.9' } }]

const soa = 'cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5'

function chainFor(zone: CompiledZone | undefined) {
  const forwarder = new Forwarder({ upstreams: [], logger: silentLogger() })
  return buildChain({ origin: 'cluster.local', metrics: createDnsMetrics(), synced: () => !!zone, zone: () => zone, allowRecursion: [], forwarder }, ['ready', 'kubernetes'])
}

const zone = compileZone(buildZone({ services, slices, pods, serial: 1 }))
const chain = chainFor(zone)

async function ask(qname: string, qtype: string, c = chain) {
  const msg = dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: qname, type: qtype as any, class: 'IN' }] })
  const parsed = parseQuery(msg, 'tcp', '10.244.1.2')
  if (!('query' in parsed)) throw new Error('query did not parse')
  const reply = await runChain(c, parsed.query)
  const p = dnsPacket.decode(reply!)
  return {
    id: p.id, rcode: (p as any).rcode as string, aa: p.flag_aa,
    answer: (p.answers ?? []).map(rrLine), authority: (p.authorities ?? []).map(rrLine), additional: (p.additionals ?? []).map(rrLine),
  }
}

interface Case {
  qname: string
  qtype: string
  rcode: string
  answer: string[]
  authority?: string[]
  additional?: string[]
}

const cases: Case[] = [
  { qname: 'web.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['web.default.svc.cluster.local. 5 IN A 10.96.0.12'] },
  { qname: 'WeB.DeFault.SVC.cluster.LOCAL.', qtype: 'A', rcode: 'NOERROR', answer: ['WeB.DeFault.SVC.cluster.LOCAL. 5 IN A 10.96.0.12'] },
  { qname: 'web.default.svc.cluster.local.', qtype: 'AAAA', rcode: 'NOERROR', answer: [], authority: [soa] },
  { qname: 'missing.default.svc.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  { qname: 'web.nope.svc.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  {
    qname: '_http._tcp.web.default.svc.cluster.local.', qtype: 'SRV', rcode: 'NOERROR',
    answer: ['_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.'],
    additional: ['web.default.svc.cluster.local. 5 IN A 10.96.0.12'],
  },
  { qname: '_http._udp.web.default.svc.cluster.local.', qtype: 'SRV', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  { qname: '_tcp.web.default.svc.cluster.local.', qtype: 'SRV', rcode: 'NOERROR', answer: [], authority: [soa] },
  { qname: '_dns._udp.kube-dns.kube-system.svc.cluster.local.', qtype: 'SRV', rcode: 'NOERROR', answer: ['_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.'], additional: ['kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10'] },
  { qname: 'plain.default.svc.cluster.local.', qtype: 'SRV', rcode: 'NOERROR', answer: [], authority: [soa] },
  { qname: 'db.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['db.default.svc.cluster.local. 5 IN A 10.244.1.5', 'db.default.svc.cluster.local. 5 IN A 10.244.2.6'] },
  { qname: 'db-0.db.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5'] },
  { qname: '10-244-2-6.db.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['10-244-2-6.db.default.svc.cluster.local. 5 IN A 10.244.2.6'] },
  { qname: 'db-2.db.default.svc.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  {
    qname: '_pg._tcp.db.default.svc.cluster.local.', qtype: 'SRV', rcode: 'NOERROR',
    answer: ['_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.', '_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 10-244-2-6.db.default.svc.cluster.local.'],
    additional: ['db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5', '10-244-2-6.db.default.svc.cluster.local. 5 IN A 10.244.2.6'],
  },
  { qname: 'empty.default.svc.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  { qname: 'ext.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 5 IN CNAME www.example.com.'] },
  { qname: 'ext.default.svc.cluster.local.', qtype: 'CNAME', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 5 IN CNAME www.example.com.'] },
  // An in-zone target is answered in the same reply, as CoreDNS does (libc in pods does not chase CNAMEs).
  { qname: 'alias.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 5 IN A 10.96.0.12'] },
  { qname: 'ALIAS.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['ALIAS.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 5 IN A 10.96.0.12'] },
  { qname: 'alias.default.svc.cluster.local.', qtype: 'CNAME', rcode: 'NOERROR', answer: ['alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.'] },
  { qname: 'alias.default.svc.cluster.local.', qtype: 'AAAA', rcode: 'NOERROR', answer: ['alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.'] },
  { qname: 'alias2.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['alias2.default.svc.cluster.local. 5 IN CNAME alias.default.svc.cluster.local.', 'alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 5 IN A 10.96.0.12'] },
  { qname: 'loop1.default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['loop1.default.svc.cluster.local. 5 IN CNAME loop2.default.svc.cluster.local.', 'loop2.default.svc.cluster.local. 5 IN CNAME loop1.default.svc.cluster.local.'] },
  { qname: 'sub.ext.default.svc.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  { qname: '12.0.96.10.in-addr.arpa.', qtype: 'PTR', rcode: 'NOERROR', answer: ['12.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.'] },
  { qname: '5.1.244.10.in-addr.arpa.', qtype: 'PTR', rcode: 'NOERROR', answer: ['5.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local.'] },
  { qname: '9.1.244.10.in-addr.arpa.', qtype: 'PTR', rcode: 'NOERROR', answer: ['9.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-9.default.pod.cluster.local.'] },
  { qname: '9.1.244.10.in-addr.arpa.', qtype: 'A', rcode: 'NOERROR', answer: [] },
  { qname: '10-244-3-3.default.pod.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: ['10-244-3-3.default.pod.cluster.local. 5 IN A 10.244.3.3'] },
  { qname: '10-244-3-3.default.pod.cluster.local.', qtype: 'AAAA', rcode: 'NOERROR', answer: [], authority: [soa] },
  { qname: '10-244-3.default.pod.cluster.local.', qtype: 'A', rcode: 'NXDOMAIN', answer: [], authority: [soa] },
  { qname: 'dns-version.cluster.local.', qtype: 'TXT', rcode: 'NOERROR', answer: ['dns-version.cluster.local. 5 IN TXT "1.1.0"'] },
  { qname: 'default.svc.cluster.local.', qtype: 'A', rcode: 'NOERROR', answer: [], authority: [soa] },
  { qname: 'cluster.local.', qtype: 'SOA', rcode: 'NOERROR', answer: [soa] },
  { qname: 'cluster.local.', qtype: 'NS', rcode: 'NOERROR', answer: ['cluster.local. 5 IN NS ns.dns.cluster.local.'] },
]

t.test('cluster zone answers', async (t) => {
  for (const c of cases) {
    const got = await ask(c.qname, c.qtype)
    t.equal(got.id, 4242, `${c.qname} ${c.qtype}: the query's ID`)
    t.equal(got.rcode, c.rcode, `${c.qname} ${c.qtype}: rcode`)
    t.same(got.answer, c.answer, `${c.qname} ${c.qtype}: answer`)
    if (c.authority) t.same(got.authority, c.authority, `${c.qname} ${c.qtype}: authority`)
    if (c.additional) t.same(got.additional, c.additional, `${c.qname} ${c.qtype}: additional`)
    if (c.rcode !== 'REFUSED') t.ok(got.aa, `${c.qname}: authoritative`)
  }
})

t.test('names outside the zone and unknown reverse names pass on', async (t) => {
  t.equal((await ask('example.com.', 'A')).rcode, 'REFUSED', 'end of this chain')
  t.equal((await ask('4.3.2.1.in-addr.arpa.', 'PTR')).rcode, 'REFUSED', 'fallthrough in-addr.arpa')
})

t.test('SERVFAIL for cluster names until the first sync', async (t) => {
  const before = chainFor(undefined)
  t.equal((await ask('web.default.svc.cluster.local.', 'A', before)).rcode, 'SERVFAIL')
  t.equal((await ask('12.0.96.10.in-addr.arpa.', 'PTR', before)).rcode, 'SERVFAIL')
  t.equal((await ask('example.com.', 'A', before)).rcode, 'REFUSED', 'other names are not held back')
})

t.test('configurable origin and TTL', async (t) => {
  const z = compileZone(buildZone({ services, slices, pods, origin: 'skiff.test', ttl: 30, serial: 1 }))
  const forwarder = new Forwarder({ upstreams: [], logger: silentLogger() })
  const c = buildChain({ origin: 'skiff.test', metrics: createDnsMetrics(), synced: () => true, zone: () => z, allowRecursion: [], forwarder }, ['kubernetes'])
  t.same((await ask('web.default.svc.skiff.test.', 'A', c)).answer, ['web.default.svc.skiff.test. 30 IN A 10.96.0.12'])
  t.equal((await ask('web.default.svc.cluster.local.', 'A', c)).rcode, 'REFUSED', 'cluster.local is not ours any more')
})
