// The compiled zone as one flat byte block, for the worker threads
// (workers.ts): the main thread builds and compiles the zone once, writes it
// into one SharedArrayBuffer and posts that same block to every worker (no
// copy per worker); a worker reads it back into a CompiledZone whose prepared
// replies are views into the shared block. The block is never written after
// it is posted: a new zone is a new block.
//
// Layout (big endian):
//   u32 version | u32 ttl | u32 records | u8 origin length | origin (ASCII)
//   nxdomain, nodata: u8 rcode | u8 aa | u16 an | u16 ns | u16 ar | u32 body length | body
//   u32 names, then per name:
//     u8 key length | key (wire form, lower case) | u8 n | n × (u32 length | prepared reply)
//     u8 types | types × (u16 qtype | u8 reply index) | u8 other index | u8 any index

import type { CompiledName, CompiledZone } from './compile.ts'
import { fromWire, prepareWire, wireKey, type Compiled } from './wire.ts'

const version = 1

export function encodeZone(z: CompiledZone): SharedArrayBuffer {
  const parts: Buffer[] = []
  const u8 = (n: number) => parts.push(Buffer.from([n]))
  const u16 = (n: number) => {
    const b = Buffer.allocUnsafe(2)
    b.writeUInt16BE(n)
    parts.push(b)
  }
  const u32 = (n: number) => {
    const b = Buffer.allocUnsafe(4)
    b.writeUInt32BE(n)
    parts.push(b)
  }
  const negative = (c: Compiled) => {
    u8(c.rcode)
    u8(c.aa ? 1 : 0)
    u16(c.an)
    u16(c.ns)
    u16(c.ar)
    u32(c.body.length)
    parts.push(c.body)
  }
  u32(version)
  u32(z.ttl)
  u32(z.records)
  u8(z.origin.length)
  parts.push(Buffer.from(z.origin, 'latin1'))
  negative(z.nxdomain)
  negative(z.nodata)
  u32(z.names.size)
  for (const [key, n] of z.names) {
    const unique = [...new Set([...n.byType.values(), n.other, n.any])]
    u8(key.length)
    parts.push(Buffer.from(key, 'latin1'))
    u8(unique.length)
    for (const c of unique) {
      if (!c.wire) prepareWire(c, key.length + 4)
      u32(c.wire!.length)
      parts.push(c.wire!)
    }
    u8(n.byType.size)
    for (const [t, c] of n.byType) {
      u16(t)
      u8(unique.indexOf(c))
    }
    u8(unique.indexOf(n.other))
    u8(unique.indexOf(n.any))
  }
  const total = parts.reduce((a, p) => a + p.length, 0)
  const sab = new SharedArrayBuffer(total)
  const out = Buffer.from(sab)
  let pos = 0
  for (const p of parts) pos += p.copy(out, pos)
  return sab
}

export function decodeZone(sab: SharedArrayBuffer): CompiledZone {
  const b = Buffer.from(sab)
  let pos = 0
  const u8 = () => b[pos++]!
  const u16 = () => ((pos += 2), b.readUInt16BE(pos - 2))
  const u32 = () => ((pos += 4), b.readUInt32BE(pos - 4))
  const bytes = (n: number) => ((pos += n), b.subarray(pos - n, pos))
  const negative = (): Compiled => ({ rcode: u8(), aa: u8() === 1, an: u16(), ns: u16(), ar: u16(), body: bytes(u32()) })
  if (u32() !== version) throw new Error('SKIFF_ERR_DNS_ZONE_VERSION: unknown zone block version')
  const ttl = u32()
  const records = u32()
  const origin = bytes(u8()).toString('latin1')
  const nxdomain = negative()
  const nodata = negative()
  const names = new Map<string, CompiledName>()
  for (let i = u32(); i > 0; i--) {
    const key = bytes(u8()).toString('latin1')
    const replies: Compiled[] = []
    for (let j = u8(); j > 0; j--) replies.push(fromWire(bytes(u32()), key.length + 4))
    const byType = new Map<number, Compiled>()
    for (let j = u8(); j > 0; j--) {
      const t = u16()
      byType.set(t, replies[u8()]!)
    }
    const other = replies[u8()]!
    names.set(key, { byType, other, any: replies[u8()]! })
  }
  return { origin, originKey: wireKey(origin), ttl, names, nxdomain, nodata, records }
}
