// Names outside the cluster zone go to the node's upstream resolvers, with a
// cache that honours TTLs (positive answers up to 3600 s, negative ones up to
// 1800 s from the SOA, as CoreDNS's cache does). The client's query bytes are
// sent as they are (EDNS and flags intact) under a fresh ID; upstreams are
// tried in order, each with a timeout; all failing is SERVFAIL.

import { createSocket, type Socket } from 'node:dgram'
import { connect } from 'node:net'
import { readFileSync } from 'node:fs'
import dnsPacket, { type DecodedPacket } from 'dns-packet'
import type { Logger } from '../../lib/log.ts'
import { RCODE, rcodeReply, type Query } from './wire.ts'

export interface Upstream {
  host: string
  port: number
}

export interface ForwarderOptions {
  upstreams: Upstream[]
  logger: Logger
  timeoutMs?: number
  cacheSize?: number
  onCache?(hit: boolean): void
}

/** Times on the monotonic clock (performance.now()): a wall-clock step neither stretches nor flushes the TTLs. */
interface CacheEntry {
  packet: DecodedPacket
  storedAt: number
  expiresAt: number
}

const maxPending = 4096

/** Nameservers of a resolv.conf, minus the cluster DNS itself and our own listeners (no loops). */
export function readUpstreams(opts: { path?: string; exclude?: string[] } = {}): Upstream[] {
  let text = ''
  try {
    text = readFileSync(opts.path ?? '/etc/resolv.conf', 'utf8')
  } catch {
    return []
  }
  const out: Upstream[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    if (m && /^\d+\.\d+\.\d+\.\d+$/.test(m[1]!) && !(opts.exclude ?? []).includes(m[1]!)) out.push({ host: m[1]!, port: 53 })
  }
  return out
}

/** Seconds a reply may be cached, or 0 (SERVFAIL, truncated, no TTL to honour). */
export function cacheSeconds(p: DecodedPacket): number {
  if (p.flags !== undefined && p.flags & dnsPacket.TRUNCATED_RESPONSE) return 0
  const rcode = (p.flags ?? 0) & 0xf
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return 0
  const answers = (p.answers ?? []).filter((a) => a.type !== 'OPT')
  if (answers.length) return Math.min(3600, ...answers.map((a) => a.ttl ?? 0))
  const soa = (p.authorities ?? []).find((a) => a.type === 'SOA') as any
  if (!soa) return 0
  return Math.min(1800, soa.ttl ?? 0, soa.data?.minimum ?? 0)
}

export class Forwarder {
  #o: ForwarderOptions
  #socket?: Socket
  #pending = new Map<number, { resolve(b: Buffer | undefined): void; upstream: Upstream }>()
  #cache = new Map<string, CacheEntry>()

  constructor(opts: ForwarderOptions) {
    this.#o = opts
  }

  close(): void {
    for (const p of this.#pending.values()) p.resolve(undefined)
    this.#pending.clear()
    this.#socket?.close()
    this.#socket = undefined
  }

  async resolve(q: Query): Promise<Buffer> {
    const ck = `${q.key}|${q.qtype}|${q.qclass}`
    const hit = this.#cache.get(ck)
    if (hit && hit.expiresAt > performance.now()) {
      this.#o.onCache?.(true)
      return fitUdp(q, fromCache(q, hit))
    }
    this.#o.onCache?.(false)
    for (const up of this.#o.upstreams) {
      let reply = await this.#udp(q.msg, up)
      if (reply && q.transport === 'tcp' && reply.length > 3 && reply[2]! & 0x02) reply = await tcpExchange(q.msg, up, this.#o.timeoutMs ?? 2000)
      if (!reply) continue
      reply.writeUInt16BE(q.id, 0)
      this.#store(ck, reply)
      return fitUdp(q, reply)
    }
    return rcodeReply(q, RCODE.SERVFAIL)
  }

  #store(key: string, reply: Buffer): void {
    let packet: DecodedPacket
    try {
      packet = dnsPacket.decode(reply)
    } catch {
      return
    }
    const secs = cacheSeconds(packet)
    if (secs <= 0) return
    if (this.#cache.size >= (this.#o.cacheSize ?? 9984)) this.#cache.delete(this.#cache.keys().next().value!)
    this.#cache.set(key, { packet, storedAt: performance.now(), expiresAt: performance.now() + secs * 1000 })
  }

  #ensureSocket(): Socket {
    if (this.#socket) return this.#socket
    const s = createSocket('udp4')
    s.on('message', (msg, rinfo) => {
      if (msg.length < 12) return
      const p = this.#pending.get(msg.readUInt16BE(0))
      if (!p || p.upstream.host !== rinfo.address || p.upstream.port !== rinfo.port) return
      p.resolve(msg)
    })
    s.on('error', (e) => this.#o.logger.warn({ err: e.message }, 'upstream socket error'))
    s.unref()
    this.#socket = s
    return s
  }

  async #udp(msg: Buffer, up: Upstream): Promise<Buffer | undefined> {
    if (this.#pending.size >= maxPending) return undefined
    const sock = this.#ensureSocket()
    let id = (Math.random() * 0x10000) | 0
    for (let i = 0; this.#pending.has(id) && i < 100; i++) id = (Math.random() * 0x10000) | 0
    if (this.#pending.has(id)) return undefined
    const out = Buffer.from(msg)
    out.writeUInt16BE(id, 0)
    return await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), this.#o.timeoutMs ?? 2000)
      const done = (b: Buffer | undefined) => {
        clearTimeout(timer)
        this.#pending.delete(id)
        resolve(b)
      }
      this.#pending.set(id, { resolve: done, upstream: up })
      sock.send(out, up.port, up.host, (err) => err && done(undefined))
    })
  }
}

/** A cached reply with the asker's ID and spelling, TTLs lowered by the time spent in the cache. */
function fromCache(q: Query, e: CacheEntry): Buffer {
  const age = Math.floor((performance.now() - e.storedAt) / 1000)
  const qname = (dnsPacket as any).name.decode(q.question, 0) as string
  const lower = qname.toLowerCase()
  const fix = (rs: any[] | undefined) =>
    (rs ?? []).map((r) => (r.type === 'OPT' ? r : { ...r, name: r.name.toLowerCase() === lower ? qname : r.name, ttl: Math.max(0, (r.ttl ?? 0) - age) }))
  return dnsPacket.encode({
    ...e.packet, id: q.id,
    questions: (e.packet.questions ?? []).map((x) => ({ ...x, name: qname })),
    answers: fix(e.packet.answers), authorities: fix(e.packet.authorities), additionals: fix(e.packet.additionals),
  })
}

/** Over UDP a reply larger than the client accepts becomes header + question with TC. */
function fitUdp(q: Query, reply: Buffer): Buffer {
  if (q.transport !== 'udp' || reply.length <= q.udpSize) return reply
  const out = Buffer.alloc(12 + q.question.length)
  reply.copy(out, 0, 0, 4)
  out.writeUInt16BE(out.readUInt16BE(2) | 0x0200, 2)
  out.writeUInt16BE(1, 4)
  q.question.copy(out, 12)
  return out
}

async function tcpExchange(msg: Buffer, up: Upstream, timeoutMs: number): Promise<Buffer | undefined> {
  return await new Promise((resolve) => {
    const sock = connect({ host: up.host, port: up.port })
    let buf = Buffer.alloc(0)
    const finish = (b: Buffer | undefined) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(b)
    }
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    sock.on('connect', () => {
      const len = Buffer.alloc(2)
      len.writeUInt16BE(msg.length)
      sock.write(Buffer.concat([len, msg]))
    })
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(buf.subarray(2, 2 + buf.readUInt16BE(0)))
    })
    sock.on('error', () => finish(undefined))
    sock.on('close', () => finish(undefined))
  })
}
