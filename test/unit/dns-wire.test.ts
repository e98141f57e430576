// The wire edge of the cluster DNS (pure): malformed messages are FORMERR or
// dropped and never throw; EDNS0 sizes; UDP truncation vs TCP; the recursion
// ACL; what the forwarder may cache and for how long.

import t from 'tap'
import dnsPacket from 'dns-packet'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildChain, runChain } from '../../dataplane/dns/chain.ts'
import { compileZone } from '../../dataplane/dns/compile.ts'
import { cacheSeconds, Forwarder } from '../../dataplane/dns/forward.ts'
import { allowed, parseCidr } from '../../dataplane/dns/handlers/recursion.ts'
import { createDnsMetrics } from '../../dataplane/dns/metrics.ts'
import { parseQuery, type ParseResult } from '../../dataplane/dns/wire.ts'
import { buildZone } from '../../dataplane/dns/zone.ts'
import { silentLogger } from '../../lib/log.ts'

const header = (id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0) => {
  const b = Buffer.alloc(12)
  ;[id, flags, qd, an, ns, ar].forEach((v, i) => b.writeUInt16BE(v, i * 2))
  return b
}
const rcodeOf = (r: ParseResult) => ('reply' in r ? r.reply[3]! & 0xf : -1)

t.test('malformed messages: FORMERR or drop, never a throw', async (t) => {
  t.ok('drop' in parseQuery(Buffer.alloc(11), 'udp', '127.0.0.1'), 'an 11-byte packet is dropped')
  t.ok('drop' in parseQuery(Buffer.alloc(0), 'udp', '127.0.0.1'), 'an empty packet is dropped')
  t.ok('drop' in parseQuery(header(1, 0x8000, 1), 'udp', '127.0.0.1'), 'a response is never answered')
  t.equal(rcodeOf(parseQuery(header(7, 0x0100, 0), 'udp', '127.0.0.1')), 1, 'zero questions: FORMERR')
  t.equal(rcodeOf(parseQuery(header(7, 0x0100, 2), 'udp', '127.0.0.1')), 1, 'two questions: FORMERR')
  const selfPtr = Buffer.concat([header(8, 0x0100, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])])
  t.equal(rcodeOf(parseQuery(selfPtr, 'udp', '127.0.0.1')), 1, 'a pointer to itself: FORMERR')
  const pastEnd = Buffer.concat([header(9, 0x0100, 1), Buffer.from([0xc0, 0xff, 0, 1, 0, 1])])
  t.equal(rcodeOf(parseQuery(pastEnd, 'udp', '127.0.0.1')), 1, 'a pointer past the end: FORMERR')
  const longLabel = Buffer.concat([header(10, 0x0100, 1), Buffer.from([63, 1, 2])])
  t.equal(rcodeOf(parseQuery(longLabel, 'udp', '127.0.0.1')), 1, 'a label past the end: FORMERR')
  const noType = Buffer.concat([header(11, 0x0100, 1), Buffer.from([3, 0x77, 0x77, 0x77, 0, 0])])
  t.equal(rcodeOf(parseQuery(noType, 'udp', '127.0.0.1')), 1, 'a question without type/class: FORMERR')
  const tooLong = Buffer.concat([header(12, 0x0100, 1), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from([0, 0, 1, 0, 1])])
  t.equal(rcodeOf(parseQuery(tooLong, 'udp', '127.0.0.1')), 1, 'a name over 255 bytes: FORMERR')
  const notimp = header(13, 0x2800, 1)
  t.equal(rcodeOf(parseQuery(notimp, 'udp', '127.0.0.1')), 4, 'opcode UPDATE: NOTIMP')
  const r = parseQuery(selfPtr, 'udp', '127.0.0.1')
  t.equal('reply' in r && r.reply.readUInt16BE(0), 8, 'FORMERR carries the query ID')
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: 12 + ((i * 7) % 40) }, (_, j) => (i * 31 + j * 17) & 0xff))
    junk[2] = junk[2]! & 0x7f
    parseQuery(junk, 'udp', '127.0.0.1')
  }
  t.pass('2000 junk packets parsed without a throw')
})

const many = Array.from({ length: 60 }, (_, i) => ({ addresses: [`10.244.1.${i + 10}`], conditions: { ready: true } }))
const big: KubeObject[] = [
  { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name: 'big' }, spec: { clusterIP: 'None' } },
]
const bigSlice: KubeObject = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', metadata: { namespace: 'default', name: 'big-1', labels: { 'kubernetes.io/service-name': 'big' } }, endpoints: many }
const zone = compileZone(buildZone({ services: big, slices: [bigSlice], pods: [] }))
const forwarder = new Forwarder({ upstreams: [], logger: silentLogger() })
const chain = buildChain({ origin: 'cluster.local', metrics: createDnsMetrics(), synced: () => true, zone: () => zone, allowRecursion: ['10.244.0.0/16'], forwarder })

async function serve(msg: Buffer, transport: 'udp' | 'tcp', client = '10.244.1.2') {
  const p = parseQuery(msg, transport, client)
  if (!('query' in p)) throw new Error('did not parse')
  const reply = (await runChain(chain, p.query))!
  return { bytes: reply.length, packet: dnsPacket.decode(reply) }
}
const query = (udpPayloadSize?: number) =>
  dnsPacket.encode({
    type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'big.default.svc.cluster.local', type: 'A' }],
    additionals: udpPayloadSize ? [{ type: 'OPT', name: '.', udpPayloadSize, flags: 0, options: [] } as any] : [],
  })

t.test('UDP truncation, EDNS0 and TCP', async (t) => {
  const small = await serve(query(), 'udp')
  t.ok(small.packet.flag_tc, 'no EDNS: 60 A records do not fit 512 bytes, TC set')
  t.equal(small.packet.answers?.length, 0)
  t.ok(small.bytes <= 512)
  const edns = await serve(query(4096), 'udp')
  t.notOk(edns.packet.flag_tc, 'EDNS 4096: it fits')
  t.equal(edns.packet.answers?.length, 60)
  const opt = edns.packet.additionals?.find((a) => a.type === 'OPT') as any
  t.equal(opt?.udpPayloadSize, 1232, 'the reply carries our OPT')
  const tiny = await serve(query(600), 'udp')
  t.ok(tiny.packet.flag_tc, 'EDNS 600: still too big, TC')
  t.ok(tiny.packet.additionals?.some((a) => a.type === 'OPT'), 'a truncated reply keeps the OPT')
  const tcp = await serve(query(), 'tcp')
  t.notOk(tcp.packet.flag_tc, 'TCP: the full answer')
  t.equal(tcp.packet.answers?.length, 60)
  t.notOk(tcp.packet.additionals?.some((a) => a.type === 'OPT'), 'no OPT when the client sent none')
})

t.test('recursion only for clients inside the cluster', async (t) => {
  const cidrs = ['127.0.0.0/8', '10.244.0.0/16', '192.168.5.7/32'].map(parseCidr)
  t.ok(allowed(cidrs, '127.0.0.1'))
  t.ok(allowed(cidrs, '10.244.200.3'))
  t.ok(allowed(cidrs, '::ffff:10.244.1.1'), 'IPv4-mapped TCP peers')
  t.ok(allowed(cidrs, '192.168.5.7'))
  t.notOk(allowed(cidrs, '192.168.5.8'))
  t.notOk(allowed(cidrs, '8.8.8.8'))
  t.throws(() => parseCidr('10.0.0.0/33'))
  const ext = dnsPacket.encode({ type: 'query', id: 5, questions: [{ name: 'example.com', type: 'A' }] })
  t.equal(((await serve(ext, 'udp', '203.0.113.9')).packet as any).rcode, 'REFUSED', 'an outside client may not recurse')
  t.equal(((await serve(query(), 'tcp', '203.0.113.9')).packet as any).rcode, 'NOERROR', 'but gets cluster names')
  t.equal(((await serve(ext, 'udp', '10.244.1.2')).packet as any).rcode, 'SERVFAIL', 'a pod may recurse (no upstreams here: SERVFAIL)')
})

t.test('what the forwarder caches, and for how long', async (t) => {
  const pkt = (flags: number, answers: any[], authorities: any[] = []) => dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 1, flags, questions: [{ name: 'a.example', type: 'A' }], answers, authorities }))
  const a = (ttl: number) => ({ name: 'a.example', type: 'A', ttl, data: '192.0.2.1' })
  const soaRR = { name: 'example', type: 'SOA', ttl: 900, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 } }
  t.equal(cacheSeconds(pkt(0, [a(300), a(30)])), 30, 'the smallest answer TTL')
  t.equal(cacheSeconds(pkt(0, [a(86400)])), 3600, 'capped at 3600')
  t.equal(cacheSeconds(pkt(3, [], [soaRR])), 60, 'NXDOMAIN: the SOA minimum')
  t.equal(cacheSeconds(pkt(0, [], [soaRR])), 60, 'NODATA: the SOA minimum')
  t.equal(cacheSeconds(pkt(3, [])), 0, 'NXDOMAIN without SOA: not cached')
  t.equal(cacheSeconds(pkt(2, [a(300)])), 0, 'SERVFAIL: not cached')
  t.equal(cacheSeconds(pkt(0x0200, [a(300)])), 0, 'truncated: not cached')
})
