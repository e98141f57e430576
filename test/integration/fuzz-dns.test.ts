// Property-based fuzzing of a real cluster DNS server (fast-check, fixed
// seed and run counts): DnsWorkers with 2 answering threads on 127.0.0.1
// (UDP and TCP, SO_REUSEPORT), the zone handed over as in an agent, the
// forwarder's side answering SERVFAIL. Random datagrams and random TCP
// streams (length-prefixed junk, lying lengths, cut frames) are sent; each
// UDP reply carries the query's ID with QR set; after each batch a valid
// query still answers; no thread crashed or logged a handler failure; the
// process's memory grew by less than a bound.

import t from 'tap'
import fc from 'fast-check'
import { createSocket } from 'node:dgram'
import net from 'node:net'
import { Writable } from 'node:stream'
import dnsPacket from 'dns-packet'
import pino from 'pino'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { compileZone } from '../../dataplane/dns/compile.ts'
import { rcodeReply, RCODE, parseQuery } from '../../dataplane/dns/wire.ts'
import { DnsWorkers } from '../../dataplane/dns/workers.ts'
import { encodeZone } from '../../dataplane/dns/zone-wire.ts'
import { buildZone } from '../../dataplane/dns/zone.ts'

/** Fixed, so CI runs the same cases every time; SKIFF_FUZZ_SEED explores others locally. */
const seed = Number(process.env.SKIFF_FUZZ_SEED ?? 20261104)
const numRuns = 300
const rssGrowthLimitBytes = 96 * 1024 * 1024

const unhandled: unknown[] = []
process.on('unhandledRejection', (e) => void unhandled.push(e))

const logged: Array<{ level: number; msg: string }> = []
const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _e, cb) {
  for (const l of String(chunk).split('\n')) if (l) logged.push(JSON.parse(l))
  cb()
} }))

const services: KubeObject[] = [{ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'default', name: 'web' }, spec: { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } }]
const workers = new DnsWorkers({
  workers: 2, listen: [{ host: '127.0.0.1', port: 0 }], origin: 'cluster.local', allowRecursion: ['127.0.0.0/8'], logger,
  forward: async (msg, transport, client) => {
    const p = parseQuery(msg, transport, client)
    return 'query' in p ? rcodeReply(p.query, RCODE.SERVFAIL) : null
  },
})
t.teardown(() => workers.stop())
await workers.start()
workers.setZone(encodeZone(compileZone(buildZone({ services, slices: [], pods: [] }))))
await workers.whenApplied()
const udpPort = workers.addresses.find((a) => a.transport === 'udp')!.port
const tcpPort = workers.addresses.find((a) => a.transport === 'tcp')!.port

const sock = createSocket('udp4')
await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r))
t.teardown(() => sock.close())
const replies = new Map<number, Buffer[]>()
sock.on('message', (m) => {
  if (m.length >= 2) replies.set(m.readUInt16BE(0), [...(replies.get(m.readUInt16BE(0)) ?? []), m])
})

const validQuery = (id: number): Buffer => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'web.default.svc.cluster.local', type: 'A', class: 'IN' }] })

/** A valid UDP query answers with the ClusterIP within `ms`. */
async function stillAnswers(id: number, ms = 3000): Promise<boolean> {
  sock.send(validQuery(id), udpPort, '127.0.0.1')
  const until = Date.now() + ms
  while (Date.now() < until) {
    const r = replies.get(id)?.find((m) => m.length > 12)
    if (r) {
      replies.delete(id)
      const p = dnsPacket.decode(r)
      return (p.answers ?? []).some((a) => a.type === 'A' && a.data === '10.96.0.20')
    }
    await new Promise((res) => setTimeout(res, 5))
  }
  return false
}

/** Sends `stream` on a fresh TCP connection, half-closes, and resolves with what came back once the server closes (or after `ms`). */
function tcpExchange(stream: Buffer, ms = 2000): Promise<{ data: Buffer; timedOut: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(tcpPort, '127.0.0.1', () => c.end(stream))
    const chunks: Buffer[] = []
    c.on('data', (d) => chunks.push(d))
    c.on('error', () => undefined)
    const timer = setTimeout(() => {
      c.destroy()
      resolve({ data: Buffer.concat(chunks), timedOut: true })
    }, ms)
    c.on('close', () => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), timedOut: false })
    })
  })
}

/** A TCP reply stream is whole frames, each at least a header with QR set. */
function framesOk(data: Buffer): boolean {
  let pos = 0
  while (pos + 2 <= data.length) {
    const len = data.readUInt16BE(pos)
    if (pos + 2 + len > data.length) return false
    if (len < 12 || (data[pos + 2 + 2]! & 0x80) === 0) return false
    pos += 2 + len
  }
  return pos === data.length
}

const startRss = process.memoryUsage().rss

const frame = (m: Uint8Array, lie = 0): Buffer => {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(Math.max(0, Math.min(65535, m.length + lie)))
  return Buffer.concat([len, m])
}

t.test(`${numRuns} random UDP datagrams: each answered with its ID or dropped; valid queries keep answering`, async (t) => {
  const threads = workers.threadIds
  let id = 0
  await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 0, maxLength: 700 }), { minLength: 1, maxLength: 8 }), async (batch) => {
    // Distinct IDs so each reply can be matched (the first two bytes are the ID).
    const sent = batch.map((b) => {
      const m = Buffer.from(b)
      if (m.length >= 2) m.writeUInt16BE((id = (id % 60000) + 1), 0)
      return m
    })
    for (const m of sent) sock.send(m, udpPort, '127.0.0.1')
    if (!(await stillAnswers(60001 + (id % 5000)))) return false
    for (const m of sent) {
      if (m.length < 2) continue
      for (const r of replies.get(m.readUInt16BE(0)) ?? []) if (r.length < 12 || (r[2]! & 0x80) === 0) return false
      replies.delete(m.readUInt16BE(0))
    }
    return true
  }), { seed, numRuns })
  t.same(workers.threadIds, threads, 'no answering thread died')
})

t.test(`${numRuns / 3} random TCP streams: whole reply frames only, then a valid query still answers`, async (t) => {
  const threads = workers.threadIds
  const junk = fc.uint8Array({ maxLength: 300 })
  const stream = fc.array(fc.oneof(
    junk.map((m) => frame(m)),
    fc.tuple(junk, fc.integer({ min: -20, max: 20 })).map(([m, lie]) => frame(m, lie)),
    junk.map((m) => Buffer.from(m)),
    fc.integer({ min: 0, max: 65535 }).map((id) => frame(validQuery(id))),
  ), { minLength: 1, maxLength: 6 }).map((parts) => Buffer.concat(parts))
  let timeouts = 0
  await fc.assert(fc.asyncProperty(stream, async (s) => {
    const { data, timedOut } = await tcpExchange(s)
    if (timedOut) timeouts++
    return framesOk(data) && (await stillAnswers(65000))
  }), { seed, numRuns: numRuns / 3 })
  t.ok(timeouts <= numRuns / 30, `few streams left the server waiting (${timeouts})`)
  t.same(workers.threadIds, threads, 'no answering thread died')
})

t.test('a TCP client that sends queries and never reads is cut once 1 MiB of replies waits', async (t) => {
  const c = net.connect(tcpPort, '127.0.0.1')
  c.pause()
  await new Promise<void>((r) => c.once('connect', () => r()))
  const closed = new Promise<void>((r) => c.once('close', () => r()))
  c.on('error', () => undefined)
  const batch = Buffer.concat(Array.from({ length: 2000 }, (_, i) => frame(validQuery(i))))
  let sent = 0
  // Kernel buffers on both sides absorb some megabytes first; keep writing until the server cuts.
  const cut = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000)
    void closed.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
    const pump = (): void => {
      while (!c.destroyed && sent < 400) {
        sent++
        if (!c.write(batch)) return void c.once('drain', pump)
      }
    }
    pump()
  })
  c.destroy()
  t.ok(cut, `the server closed the connection (after ${sent} batches of 2,000 queries)`)
  t.ok(await stillAnswers(64000), 'and answers others')
})

t.test('nothing logged as a handler failure or a crash; memory bounded', async (t) => {
  t.same(logged.filter((l) => /failed|crash|exited/i.test(l.msg)), [], 'no handler failure, crash or exit')
  const rss = process.memoryUsage().rss
  t.ok(rss < rssGrowthLimitBytes + startRss, `rss ${Math.round(rss / 1048576)} MiB, grew ${Math.round((rss - startRss) / 1048576)} MiB`)
  t.same(unhandled, [], 'no unhandled rejection')
})

