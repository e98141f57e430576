// The hot path's view of a DNS message. Records are encoded by dns-packet
// (compile.ts); here we only read a query's header and question, which is
// what a lookup needs, and splice precomputed sections behind it.
//
// Why a question scanner rather than dnsPacket.decode per query: decoding and
// re-encoding every packet halves throughput (issue 4 measured 0.48x of
// dnsmasq). The scan is bounded (one pass over at most 255 name bytes) and
// strict: a compression pointer in the question (legal but never sent by
// real stub resolvers; and the self-pointer / past-the-end attack) is
// FORMERR, as is a message without exactly one question.

import dnsPacket from 'dns-packet'

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const
export const rcodeName = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED']

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const

const FLAG_QR = 0x8000
const FLAG_AA = 0x0400
const FLAG_TC = 0x0200
const FLAG_RD = 0x0100
const FLAG_RA = 0x0080

/** Our advertised EDNS0 UDP size (the DNS flag day 2020 value). */
export const ourUdpSize = 1232

export interface Query {
  /** The raw message (ID included). */
  msg: Buffer
  id: number
  flags: number
  qtype: number
  qclass: number
  /** Lookup key: the question name in wire form, lower-cased (latin1). */
  key: string
  /** The question as received (name + type + class): copied into replies, so the case is the client's. */
  question: Buffer
  edns: boolean
  /** Largest UDP reply the client accepts. */
  udpSize: number
  transport: 'udp' | 'tcp'
  client: string
}

export type ParseResult = { query: Query } | { reply: Buffer } | { drop: true }

/** A reply without question: for messages whose question cannot be read. */
function headerOnly(msg: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12)
  out.writeUInt16BE(msg.readUInt16BE(0), 0)
  out.writeUInt16BE(FLAG_QR | (msg.readUInt16BE(2) & (0x7800 | FLAG_RD)) | rcode, 2)
  return out
}

export function parseQuery(msg: Buffer, transport: 'udp' | 'tcp', client: string): ParseResult {
  if (msg.length < 12) return { drop: true }
  const flags = msg.readUInt16BE(2)
  if (flags & FLAG_QR) return { drop: true } // never answer a response (reflection loops)
  if (((flags >> 11) & 0xf) !== 0) return { reply: headerOnly(msg, RCODE.NOTIMP) }
  if (msg.readUInt16BE(4) !== 1) return { reply: headerOnly(msg, RCODE.FORMERR) }
  let pos = 12
  for (let labels = 0; ; labels++) {
    if (pos >= msg.length || labels > 127) return { reply: headerOnly(msg, RCODE.FORMERR) }
    const len = msg[pos]!
    if (len === 0) break
    if (len & 0xc0) return { reply: headerOnly(msg, RCODE.FORMERR) }
    pos += len + 1
  }
  const nameEnd = pos + 1
  if (nameEnd - 12 > 255 || nameEnd + 4 > msg.length) return { reply: headerOnly(msg, RCODE.FORMERR) }
  const query: Query = {
    msg, id: msg.readUInt16BE(0), flags,
    qtype: msg.readUInt16BE(nameEnd), qclass: msg.readUInt16BE(nameEnd + 2),
    key: msg.toString('latin1', 12, nameEnd).toLowerCase(),
    question: msg.subarray(12, nameEnd + 4),
    edns: false, udpSize: 512, transport, client,
  }
  readEdns(query, nameEnd + 4)
  return { query }
}

/** EDNS0: an OPT record as the first additional record (what every resolver sends). */
function readEdns(q: Query, pos: number): void {
  const m = q.msg
  if (m.readUInt16BE(10) === 0 || m.readUInt16BE(6) !== 0 || m.readUInt16BE(8) !== 0) return
  if (pos + 11 > m.length || m[pos] !== 0 || m.readUInt16BE(pos + 1) !== QTYPE.OPT) return
  q.edns = true
  q.udpSize = Math.max(512, Math.min(m.readUInt16BE(pos + 3), 65535))
}

/** A precomputed answer: everything after the question. */
export interface Compiled {
  rcode: number
  aa: boolean
  an: number
  ns: number
  ar: number
  body: Buffer
  /**
   * The whole reply to a plain query (no EDNS) for one owner name, prepared
   * ahead: header (ID 0, RD clear, no OPT) + a question-sized gap + body.
   * Only names' own answers have one (the question length is the name's).
   */
  wire?: Buffer
}

/** The prepared reply for an answer whose question is `questionLength` bytes; `body` becomes a view into it. */
export function prepareWire(c: Compiled, questionLength: number): void {
  const wire = Buffer.alloc(12 + questionLength + c.body.length)
  wire.writeUInt16BE(FLAG_QR | (c.aa ? FLAG_AA : 0) | FLAG_RA | c.rcode, 2)
  wire.writeUInt16BE(1, 4)
  wire.writeUInt16BE(c.an, 6)
  wire.writeUInt16BE(c.ns, 8)
  wire.writeUInt16BE(c.ar, 10)
  c.body.copy(wire, 12 + questionLength)
  c.wire = wire
  c.body = wire.subarray(12 + questionLength)
}

/** A Compiled read back from its prepared reply (the zone as workers receive it, zone-wire.ts). */
export function fromWire(wire: Buffer, questionLength: number): Compiled {
  const flags = wire.readUInt16BE(2)
  return {
    rcode: flags & 0xf, aa: (flags & FLAG_AA) !== 0,
    an: wire.readUInt16BE(6), ns: wire.readUInt16BE(8), ar: wire.readUInt16BE(10),
    body: wire.subarray(12 + questionLength), wire,
  }
}

const optRecord: Buffer = (() => {
  const opt = { type: 'OPT', name: '.', udpPayloadSize: ourUdpSize, flags: 0, options: [] }
  const a = (dnsPacket as any).answer
  return Buffer.from(a.encode(opt, Buffer.alloc(a.encodingLength(opt))))
})()

/** Header + the client's question + precomputed sections (+ OPT), truncated for small UDP. */
export function buildReply(q: Query, c: Compiled): Buffer {
  const w = c.wire
  // Plain query: the prepared reply with only the ID, RD and the question (its case) patched.
  if (w !== undefined && !q.edns && w.length === 12 + q.question.length + c.body.length && (q.transport === 'tcp' || w.length <= 512)) {
    const out = Buffer.allocUnsafe(w.length)
    w.copy(out, 0)
    out[0] = q.id >> 8
    out[1] = q.id & 0xff
    out[2] = out[2]! | ((q.flags & FLAG_RD) >> 8)
    q.question.copy(out, 12)
    return out
  }
  const opt = q.edns ? optRecord.length : 0
  const full = 12 + q.question.length + c.body.length + opt
  const tc = q.transport === 'udp' && full > q.udpSize
  const out = Buffer.allocUnsafe(tc ? 12 + q.question.length + opt : full)
  out.writeUInt16BE(q.id, 0)
  out.writeUInt16BE(FLAG_QR | (c.aa ? FLAG_AA : 0) | (tc ? FLAG_TC : 0) | (q.flags & FLAG_RD) | FLAG_RA | c.rcode, 2)
  out.writeUInt16BE(1, 4)
  out.writeUInt16BE(tc ? 0 : c.an, 6)
  out.writeUInt16BE(tc ? 0 : c.ns, 8)
  out.writeUInt16BE((tc ? 0 : c.ar) + (q.edns ? 1 : 0), 10)
  let pos = 12 + q.question.copy(out, 12)
  if (!tc) pos += c.body.copy(out, pos)
  if (opt) optRecord.copy(out, pos)
  return out
}

/** A reply with only an rcode (SERVFAIL before the first sync, REFUSED, ...). */
export function rcodeReply(q: Query, rcode: number): Buffer {
  return buildReply(q, { rcode, aa: false, an: 0, ns: 0, ar: 0, body: Buffer.alloc(0) })
}

const answerCodec = (dnsPacket as any).answer as { encode(rr: unknown, buf: Buffer, off?: number): Buffer; encodingLength(rr: unknown): number }

/** Encode one record; `atQuestion` writes the owner as a pointer to the question name (offset 12). */
export function encodeRecord(rr: dnsPacket.Answer, atQuestion: boolean): Buffer {
  if (!atQuestion) return Buffer.from(answerCodec.encode(rr, Buffer.alloc(answerCodec.encodingLength(rr))))
  const root = { ...rr, name: '.' }
  const enc = answerCodec.encode(root, Buffer.alloc(answerCodec.encodingLength(root)))
  // The root owner is one zero byte; swap it for the pointer 0xC00C.
  return Buffer.concat([Buffer.from([0xc0, 0x0c]), enc.subarray(1)])
}

/** The question name as a dotted lower-case string (for forwarding, pods, logs). */
export function queryName(q: Query): string {
  const n = (dnsPacket as any).name.decode(q.question, 0) as string
  return n.toLowerCase()
}

/** Wire form of a dotted name, lower-cased: the same key parseQuery computes. */
export function wireKey(name: string): string {
  const n = (dnsPacket as any).name
  const buf = Buffer.alloc(n.encodingLength(name))
  n.encode(name, buf, 0)
  return buf.toString('latin1').toLowerCase()
}

const typeNames = new Map<number, string>(Object.entries(QTYPE).map(([k, v]) => [v, k]))
/** A bounded label for metrics: the common types by name, the rest as 'other'. */
export const qtypeName = (t: number): string => typeNames.get(t) ?? 'other'
