// Property-based fuzzing (fast-check, fixed seed and run counts) of the
// cluster DNS's message handling: the whole handler chain (metrics, ready,
// kubernetes, recursion, forward) on a compiled zone, fed with arbitrary
// bytes, with mangled real queries, and with well-formed queries for odd
// names, types, classes, flags and EDNS sizes. Every message is dropped or
// answered; no handler throws (that would be a logged SERVFAIL); every
// answer carries the query's ID with QR set, and a well-formed query's
// answer decodes, repeats the question as asked and fits the UDP size.

import t from 'tap'
import fc from 'fast-check'
import dnsPacket from 'dns-packet'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildChain } from '../../dataplane/dns/chain.ts'
import { compileZone } from '../../dataplane/dns/compile.ts'
import { answerWith } from '../../dataplane/dns/listen.ts'
import { createDnsMetrics } from '../../dataplane/dns/metrics.ts'
import { parseQuery, rcodeName, rcodeReply, RCODE, type Query } from '../../dataplane/dns/wire.ts'
import { buildZone } from '../../dataplane/dns/zone.ts'

/** Fixed, so CI runs the same cases every time; SKIFF_FUZZ_SEED explores others locally. */
const seed = Number(process.env.SKIFF_FUZZ_SEED ?? 20261104)
const runs = { seed, numRuns: 4000 }

const unhandled: unknown[] = []
process.on('unhandledRejection', (e) => void unhandled.push(e))

const svc = (name: string, spec: object): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name }, spec })
const services = [
  svc('web', { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
  svc('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }),
  svc('ext', { type: 'ExternalName', externalName: `${'a'.repeat(63)}.example.com` }),
]
const slice: KubeObject = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', metadata: { namespace: 'default', name: 'db-1', labels: { 'kubernetes.io/service-name': 'db' } },
  ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
  endpoints: Array.from({ length: 40 }, (_, i) => ({ addresses: [`10.244.1.${i + 10}`], conditions: { ready: true }, ...(i === 0 ? { hostname: 'db-0' } : {}) })),
}
const zone = compileZone(buildZone({ services, slices: [slice], pods: [] }))
/** The forwarder's stand-in: answers SERVFAIL (as the real one does when every upstream fails), sometimes later. */
const forwarder = { resolve: async (q: Query) => rcodeReply(q, RCODE.SERVFAIL) }
const handlerErrors: unknown[] = []
const chain = buildChain({ origin: 'cluster.local', metrics: createDnsMetrics(), synced: () => true, zone: () => zone, allowRecursion: ['127.0.0.0/8'], forwarder })
const answer = answerWith(chain, (e) => handlerErrors.push(e))

const transport = fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp')
const client = fc.constantFrom('127.0.0.1', '10.244.1.5', '192.0.2.1')

/** Dropped (null) or a reply that carries the query's ID with QR set. */
function wellFormedReply(msg: Uint8Array, r: Buffer | null): boolean {
  if (r === null) return true
  if (!Buffer.isBuffer(r) || r.length < 12) return false
  return r.readUInt16BE(0) === Buffer.from(msg).readUInt16BE(0) && (r[2]! & 0x80) !== 0
}

t.test('arbitrary bytes: dropped or answered with the same ID, never a throw', async (t) => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 600 }), transport, client, async (bytes, tr, c) => {
    const r = await answer(Buffer.from(bytes), tr, c)
    if (bytes.length < 12) return r === null
    return wellFormedReply(bytes, r)
  }), runs)
  t.same(handlerErrors, [], 'no handler threw')
})

// Names: the zone's own, their neighbours, and odd ones (long labels, dots and escapes inside labels, the root, reverse names).
const label = fc.oneof(fc.constantFrom('web', 'db', 'db-0', 'ext', 'default', 'svc', 'cluster', 'local', 'pod', '_http', '_tcp', '*', 'in-addr', 'arpa', '10', '244', 'WeB', 'x'.repeat(63)),
  fc.string({ unit: fc.constantFrom(...'abcdwebWEB019-_*'), minLength: 1, maxLength: 20 }), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 20 }))
const name = fc.oneof(
  fc.constantFrom('web.default.svc.cluster.local', 'DB.Default.SVC.cluster.local', 'db-0.db.default.svc.cluster.local', '_pg._tcp.db.default.svc.cluster.local', 'ext.default.svc.cluster.local',
    '10-244-1-5.default.pod.cluster.local', '20.0.96.10.in-addr.arpa', 'cluster.local', 'svc.cluster.local', 'nope.default.svc.cluster.local', 'example.com', '.'),
  fc.array(label, { minLength: 1, maxLength: 8 }).map((ls) => ls.join('.')),
)
// Type and class numbers (A 1, NS 2, CNAME 5, SOA 6, PTR 12, TXT 16, AAAA 28, SRV 33, OPT 41, AXFR 252, ANY 255; IN 1, CH 3, ANY 255), or any.
const qtype = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(1, 2, 5, 6, 12, 16, 28, 33, 41, 252, 255) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }) })
const qclass = fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(3, 4, 255) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }) })
const query = fc.record({
  id: fc.integer({ min: 0, max: 65535 }),
  rd: fc.boolean(), cd: fc.boolean(), opcode: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2, 4, 5, 15) }),
  name, qtype, qclass,
  edns: fc.option(fc.integer({ min: 0, max: 65535 }), { freq: 2 }),
})

/** A query as a stub resolver would send it; undefined when dns-packet cannot encode the name (too long, a label over 63). */
type QuerySpec = typeof query extends fc.Arbitrary<infer Q> ? Q : never
function encode(q: QuerySpec): Buffer | undefined {
  const flags = (q.rd ? dnsPacket.RECURSION_DESIRED : 0) | (q.cd ? dnsPacket.CHECKING_DISABLED : 0) | (q.opcode << 11)
  const additionals = q.edns === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: q.edns, flags: 0, options: [] }]
  try {
    const b = dnsPacket.encode({ type: 'query', id: q.id, flags, questions: [{ name: q.name, type: 'A', class: 'IN' }], additionals } as any)
    // dns-packet encodes named types only: write the numbers in place (the question ends before the OPT record).
    const end = b.length - (q.edns === null ? 0 : 11)
    b.writeUInt16BE(q.qtype, end - 4)
    b.writeUInt16BE(q.qclass, end - 2)
    return b.length <= 12 + 255 + 4 + 11 ? b : undefined
  } catch {
    return undefined
  }
}

t.test('well-formed queries of any name, type, class, flags and EDNS size: a reply that decodes, with the question as asked', async (t) => {
  const rcodes = new Map<string, number>()
  await fc.assert(fc.asyncProperty(query, transport, client, async (q, tr, c) => {
    const msg = encode(q)
    if (!msg) return true
    const parsed = parseQuery(msg, tr, c)
    const r = await answer(msg, tr, c)
    if (!wellFormedReply(msg, r)) return false
    if (r === null) return false // a query (QR clear) is never dropped
    dnsPacket.decode(r) // throws on a reply that does not decode
    const rcode = rcodeName[r[3]! & 0xf] ?? String(r[3]! & 0xf)
    rcodes.set(rcode, (rcodes.get(rcode) ?? 0) + 1)
    if (rcode === 'FORMERR' || rcode === 'NOTIMP') return 'reply' in parsed
    if (!('query' in parsed)) return false
    const asked = parsed.query.question
    if (!r.subarray(12, 12 + asked.length).equals(asked)) return false // the client's question, its case kept
    const limit = Math.max(512, q.edns ?? 512)
    return tr === 'tcp' || r.length <= limit
  }), runs)
  t.comment(`rcodes: ${JSON.stringify([...rcodes].sort())}`)
  t.ok((rcodes.get('NOERROR') ?? 0) > 0 && (rcodes.get('NXDOMAIN') ?? 0) > 0, 'answers and negative answers both')
  t.same(handlerErrors, [], 'no handler threw')
})

t.test('mangled real queries (bytes flipped, cut, or appended): dropped or answered with the same ID', async (t) => {
  const mangled = fc.tuple(query, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 40 }))
    .map(([q, flips, cut, tail]) => {
      const b = encode(q) ?? Buffer.alloc(12)
      for (const [at, v] of flips) b[at % b.length] = v
      const kept = cut === null ? b : b.subarray(0, cut % (b.length + 1))
      return Buffer.concat([kept, Buffer.from(tail)])
    })
  await fc.assert(fc.asyncProperty(mangled, transport, client, async (msg, tr, c) => {
    const r = await answer(msg, tr, c)
    return msg.length < 12 ? r === null : wellFormedReply(msg, r)
  }), runs)
  t.same(handlerErrors, [], 'no handler threw')
})

t.test('no unhandled rejection', async (t) => {
  t.same(unhandled, [])
})
