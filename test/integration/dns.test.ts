// The cluster DNS against a real apiserver, queried with the real dig:
// records of every kind, NXDOMAIN vs NODATA, TCP, truncation then TCP, a
// Service change answered at once, forwarding with a cache (to a tiny
// upstream we run on 127.0.0.2, never a real resolver), and malformed
// packets that must not stop the server.

import t from 'tap'
import { spawn } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { connect } from 'node:net'
import dnsPacket from 'dns-packet'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { ClusterDns } from '../../dataplane/dns/server.ts'
import { silentLogger } from '../../lib/log.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const svcs = lookupResource('', 'v1', 'services')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!

interface Dig {
  status: string
  flags: string[]
  answer: string[]
  raw: string
}

async function dig(port: number, args: string[]): Promise<Dig> {
  const full = ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', '+nocmd', '+noall', '+comments', '+answer', ...args]
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('dig', full, { stdio: ['ignore', 'pipe', 'pipe'] })
    let s = ''
    p.stdout.on('data', (d) => (s += d))
    p.stderr.on('data', (d) => (s += d))
    p.on('error', (e) => reject(new Error(`cannot run dig (apt-get install bind9-dnsutils): ${e.message}`)))
    p.on('close', () => resolve(s))
  })
  const status = /status: (\w+)/.exec(out)?.[1] ?? 'NONE'
  const flags = (/;; flags: ([^;]*);/.exec(out)?.[1] ?? '').trim().split(/\s+/)
  const lines = out.split('\n')
  const start = lines.findIndex((l) => l.startsWith(';; ANSWER SECTION:'))
  const answer: string[] = []
  for (let i = start + 1; start >= 0 && i < lines.length && lines[i]!.trim(); i++) answer.push(lines[i]!.trim().split(/\s+/).join(' '))
  return { status, flags, answer, raw: out }
}

/** A tiny upstream: answers outside.example A 192.0.2.7 (TTL 60), NXDOMAIN otherwise; counts queries. */
async function startUpstream(t: { teardown(fn: () => unknown): void }): Promise<{ port: number; count: () => number }> {
  const sock: Socket = createSocket('udp4')
  let n = 0
  sock.on('message', (msg, rinfo) => {
    n++
    const q = dnsPacket.decode(msg)
    const name = q.questions?.[0]?.name ?? ''
    const known = name.toLowerCase() === 'outside.example'
    const reply = dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: q.questions,
      answers: known ? [{ name, type: 'A', ttl: 60, data: '192.0.2.7' }] : [],
    })
    sock.send(reply, rinfo.port, rinfo.address)
  })
  await new Promise<void>((r) => sock.bind(0, '127.0.0.2', r))
  t.teardown(() => sock.close())
  return { port: sock.address().port, count: () => n }
}

t.test('cluster DNS with dig', async (t) => {
  const c = await startTestCluster(t)
  const upstream = await startUpstream(t)
  const port = await freePort()
  const dns = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port }], upstreams: [{ host: '127.0.0.2', port: upstream.port }] })
  t.teardown(() => dns.stop())

  await c.client.create(svcs, 'default', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.7.7', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } })
  await c.client.create(svcs, 'default', { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'www.example.com' } })
  await c.client.create(svcs, 'default', { metadata: { name: 'alias' }, spec: { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' } })
  for (const name of ['db', 'empty']) await c.client.create(svcs, 'default', { metadata: { name }, spec: { clusterIP: 'None', selector: { app: name }, ports: [{ name: 'pg', port: 5432 }] } })
  const slice = (svc: string, endpoints: unknown[]) => ({
    metadata: { name: `${svc}-abc`, labels: { 'kubernetes.io/service-name': svc } }, addressType: 'IPv4', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }], endpoints,
  })
  const many = Array.from({ length: 60 }, (_, i) => ({ addresses: [`10.244.1.${i + 10}`], conditions: { ready: true }, ...(i === 0 ? { hostname: 'db-0' } : {}) }))
  await c.client.create(slicesInfo, 'default', slice('db', many))
  await c.client.create(slicesInfo, 'default', slice('empty', [{ addresses: ['10.244.2.9'], conditions: { ready: false } }]))

  await dns.start()
  await dns.whenSynced()

  const web = await dig(port, ['web.default.svc.cluster.local', 'A'])
  t.equal(web.status, 'NOERROR')
  t.ok(web.flags.includes('aa'), 'authoritative')
  t.same(web.answer, ['web.default.svc.cluster.local. 5 IN A 10.96.7.7'])
  t.same((await dig(port, ['WEB.Default.svc.cluster.local', 'A'])).answer, ['WEB.Default.svc.cluster.local. 5 IN A 10.96.7.7'], 'case-insensitive, answered in the question case')

  const nodata = await dig(port, ['web.default.svc.cluster.local', 'AAAA'])
  t.equal(nodata.status, 'NOERROR', 'a missing type: NODATA')
  t.same(nodata.answer, [])
  t.equal((await dig(port, ['nope.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN', 'a missing name')
  t.equal((await dig(port, ['empty.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN', 'headless without a ready endpoint')
  t.equal((await dig(port, ['sub.ext.default.svc.cluster.local', 'A'])).status, 'NXDOMAIN', 'a subdomain of an ExternalName')

  t.same((await dig(port, ['_http._tcp.web.default.svc.cluster.local', 'SRV'])).answer, ['_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.'])
  t.same((await dig(port, ['-x', '10.96.7.7'])).answer, ['7.7.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.'])
  t.same((await dig(port, ['ext.default.svc.cluster.local', 'CNAME'])).answer, ['ext.default.svc.cluster.local. 5 IN CNAME www.example.com.'])
  t.same(
    (await dig(port, ['alias.default.svc.cluster.local', 'A'])).answer,
    ['alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. 5 IN A 10.96.7.7'],
    'an ExternalName with an in-zone target: CNAME and the target\'s A in one answer',
  )
  t.same((await dig(port, ['db-0.db.default.svc.cluster.local', 'A', '+tcp'])).answer, ['db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.10'], 'over TCP')
  t.same((await dig(port, ['10-1-2-3.default.pod.cluster.local', 'A'])).answer, ['10-1-2-3.default.pod.cluster.local. 5 IN A 10.1.2.3'])
  t.same((await dig(port, ['dns-version.cluster.local', 'TXT'])).answer, ['dns-version.cluster.local. 5 IN TXT "1.1.0"'])

  const truncated = await dig(port, ['db.default.svc.cluster.local', 'A', '+bufsize=512', '+ignore'])
  t.ok(truncated.flags.includes('tc'), 'UDP with a 512-byte buffer: TC')
  t.same(truncated.answer, [])
  const retried = await dig(port, ['db.default.svc.cluster.local', 'A', '+bufsize=512'])
  t.equal(retried.answer.length, 60, 'dig retries over TCP and gets all 60 records')

  // Push model: a new Service answers as soon as the watch event arrives.
  await c.client.create(svcs, 'default', { metadata: { name: 'late' }, spec: { clusterIP: '10.96.7.8', ports: [{ port: 80 }] } })
  await eventually(async () => (await dig(port, ['late.default.svc.cluster.local', 'A'])).answer[0]?.endsWith('10.96.7.8'), { timeout: 30_000, what: 'the new Service in DNS' })
  await c.client.delete(svcs, 'default', 'late')
  await eventually(async () => (await dig(port, ['late.default.svc.cluster.local', 'A'])).status === 'NXDOMAIN', { timeout: 30_000, what: 'the deleted Service gone' })

  // Forwarding with a cache; recursion is allowed from loopback.
  const out1 = await dig(port, ['outside.example', 'A'])
  t.same(out1.answer, ['outside.example. 60 IN A 192.0.2.7'])
  const out2 = await dig(port, ['OUTSIDE.example', 'A'])
  t.match(out2.answer[0] ?? '', /^OUTSIDE\.example\. \d+ IN A 192\.0\.2\.7$/, 'from the cache, in the question case')
  t.equal(upstream.count(), 1, 'the second query came from the cache')
  t.equal((await dig(port, ['missing.example', 'A'])).status, 'NXDOMAIN', 'upstream NXDOMAIN passes through')

  const metrics = await dns.metrics.registry.metrics()
  t.match(metrics, /skiff_dns_queries_total\{type="A",rcode="NXDOMAIN"\} \d+/)
  t.match(metrics, /skiff_dns_cache_hits_total 1/)
})

t.test('malformed packets never stop the server', async (t) => {
  const c = await startTestCluster(t)
  const port = await freePort()
  const dns = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port }], upstreams: [] })
  t.teardown(() => dns.stop())
  await c.client.create(svcs, 'default', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.7.9', ports: [{ port: 80 }] } })
  await dns.start()
  await dns.whenSynced()

  const hdr = (id: number, qd: number) => Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, qd, 0, 0, 0, 0, 0, 0])
  const bad: Array<[string, Buffer, number | 'drop']> = [
    ['a compression pointer to itself', Buffer.concat([hdr(0x101, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 1],
    ['a pointer past the end', Buffer.concat([hdr(0x102, 1), Buffer.from([0xc0, 0xfe, 0, 1, 0, 1])]), 1],
    ['an 11-byte packet', hdr(0x103, 1).subarray(0, 11), 'drop'],
    ['a 0-question query', hdr(0x104, 0), 1],
  ]
  const sock = createSocket('udp4')
  t.teardown(() => sock.close())
  const replies = new Map<number, Buffer>()
  sock.on('message', (m) => m.length >= 12 && replies.set(m.readUInt16BE(0), m))
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r))
  for (const [what, bytes, want] of bad) {
    sock.send(bytes, port, '127.0.0.1')
    const good = await dig(port, ['web.default.svc.cluster.local', 'A'])
    t.same(good.answer, ['web.default.svc.cluster.local. 5 IN A 10.96.7.9'], `answered after ${what}`)
    if (want !== 'drop') {
      const id = bytes.readUInt16BE(0)
      const r = await eventually(() => replies.get(id), { timeout: 10_000, what: `a reply to ${what}` })
      t.equal(r[3]! & 0xf, want, `${what}: FORMERR`)
    }
  }
  // The same over TCP: bad frames on one connection, then a good query.
  const conn = connect({ host: '127.0.0.1', port })
  t.teardown(() => conn.destroy())
  await new Promise((r) => conn.once('connect', r))
  for (const [, bytes] of bad) conn.write(Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]))
  conn.write(Buffer.from([0xff, 0xff, 1, 2, 3])) // a frame announcing 64 KiB that never comes
  const tcpGood = await dig(port, ['web.default.svc.cluster.local', 'A', '+tcp'])
  t.equal(tcpGood.status, 'NOERROR', 'TCP answered after bad frames')
})

t.test('worker threads: queries from many sockets reach every worker, counts add up, a port in use fails start', async (t) => {
  const c = await startTestCluster(t)
  await c.client.create(svcs, 'default', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.7.10', ports: [{ port: 80 }] } })
  const port = await freePort()
  const dns = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port }], upstreams: [], workers: 2 })
  t.teardown(() => dns.stop())
  await dns.start()
  await dns.whenSynced()
  t.equal(dns.workers?.size, 2, 'two answering threads')

  // 40 client sockets (40 flows): SO_REUSEPORT spreads them over both workers.
  const n = 40
  const query = (id: number, name: string) => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] })
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<Buffer>((resolve, reject) => {
    const s = createSocket('udp4')
    const timer = setTimeout(() => (s.close(), reject(new Error('no reply'))), 5000)
    s.once('message', (m) => (clearTimeout(timer), s.close(), resolve(m)))
    s.send(query(i + 1, i % 2 ? 'WEB.default.svc.cluster.local' : 'web.default.svc.cluster.local'), port, '127.0.0.1')
  })))
  t.ok(replies.every((r, i) => r.readUInt16BE(0) === i + 1), 'every reply carries its ID')
  const decoded = replies.map((r) => dnsPacket.decode(r))
  t.ok(decoded.every((d) => (d.answers?.[0] as any)?.data === '10.96.7.10'), 'every reply has the A record')
  t.equal(decoded[1]!.questions![0]!.name, 'WEB.default.svc.cluster.local', 'the question case kept')
  const each = await dns.workers!.statsEach()
  t.ok(each.every((s) => s.count > 0), `both workers answered some (${each.map((s) => s.count).join(' + ')})`)
  const text = await dns.metrics.registry.metrics()
  const count = Number(/skiff_dns_queries_total\{type="A",rcode="NOERROR"\} (\d+)/.exec(text)?.[1])
  t.equal(count, n, 'the registry counts the queries answered in the workers')
  t.match(text, new RegExp(`skiff_dns_request_duration_seconds_count ${n}`), 'and their latencies')

  // Another server on the same port without SO_REUSEPORT's consent: start fails and leaves no thread.
  const blocker = createSocket('udp4')
  const busy = await freePort()
  await new Promise<void>((r) => blocker.bind(busy, '127.0.0.1', r))
  t.teardown(() => blocker.close())
  const clash = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port: busy }], upstreams: [], workers: 2 })
  await t.rejects(clash.start(), /EADDRINUSE/, 'a port in use rejects start()')
  t.same(clash.workers?.threadIds, [], 'no worker thread left running')
})
