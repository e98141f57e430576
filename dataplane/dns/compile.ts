// Answers prepared ahead: the zone is encoded once per API change, per owner
// name and query type, so answering is one Map lookup plus a header write
// (wire.ts buildReply). Owner names are pointers to the question, which keeps
// the client's spelling of the name (case-insensitive matching, answers in
// the question's case) at no cost.

import type { Answer } from 'dns-packet'
import { encodeRecord, prepareWire, QTYPE, RCODE, wireKey, type Compiled } from './wire.ts'
import type { Zone, ZoneName } from './zone.ts'

export interface CompiledName {
  byType: Map<number, Compiled>
  /** The answer for any type the name lacks: NODATA, or the CNAME of an ExternalName. */
  other: Compiled
  any: Compiled
}

export interface CompiledZone {
  origin: string
  originKey: string
  ttl: number
  names: Map<string, CompiledName>
  nxdomain: Compiled
  nodata: Compiled
  /** Number of records, for metrics and the debug output. */
  records: number
}

const typeNumber: Record<string, number> = { A: QTYPE.A, NS: QTYPE.NS, CNAME: QTYPE.CNAME, SOA: QTYPE.SOA, PTR: QTYPE.PTR, TXT: QTYPE.TXT, AAAA: QTYPE.AAAA, SRV: QTYPE.SRV }

function positive(records: Answer[], additional: Answer[]): Compiled {
  const targets = new Set(records.filter((r) => r.type === 'SRV').map((r) => (r as any).data.target))
  const glue = additional.filter((g) => targets.has(g.name))
  const body = Buffer.concat([...records.map((r) => encodeRecord(r, true)), ...glue.map((g) => encodeRecord(g, false))])
  return { rcode: RCODE.NOERROR, aa: true, an: records.length, ns: 0, ar: glue.length, body }
}

function negative(rcode: number, soa: Answer | undefined): Compiled {
  const body = soa ? encodeRecord(soa, false) : Buffer.alloc(0)
  return { rcode, aa: true, an: 0, ns: soa ? 1 : 0, ar: 0, body }
}

function compileName(name: string, e: ZoneName, zone: Zone, inZone: boolean): CompiledName {
  const nodata = negative(RCODE.NOERROR, inZone ? zone.soa : undefined)
  if (e.cname) return compileCname(e, zone)
  const groups = new Map<number, Answer[]>()
  for (const r of e.records) {
    const t = typeNumber[r.type]
    if (t === undefined) continue
    groups.set(t, [...(groups.get(t) ?? []), r])
  }
  const byType = new Map<number, Compiled>()
  for (const [t, rs] of groups) byType.set(t, positive(rs, e.additional))
  // ANY: one type needs no second encoding.
  const any = byType.size === 1 ? [...byType.values()][0]! : e.records.length ? positive(e.records, e.additional) : nodata
  return { byType, other: nodata, any }
}

/**
 * An ExternalName whose target is in the zone answers, like CoreDNS, the
 * CNAME plus what the target has for the asked type (following further
 * in-zone CNAMEs, up to 8, loops cut), so a stub resolver that does not chase
 * CNAMEs itself (libc in a pod) still gets an address. An out-of-zone target
 * or a type the target lacks: the CNAME chain alone (the client resolves on).
 */
export function cnameAnswers(zone: Zone, e: ZoneName): { chain: Answer[]; byType: Map<number, Answer[]> } {
  const chain = [...e.records]
  const seen = new Set<string>([String(e.records[0]?.name ?? '')])
  let target = String((e.records[0] as any)?.data ?? '')
  for (let hops = 0; hops < 8 && !seen.has(target); hops++) {
    seen.add(target)
    const t = zone.names.get(target)
    if (!t) break
    if (t.cname) {
      chain.push(...t.records)
      target = String((t.records[0] as any)?.data ?? '')
      continue
    }
    const byType = new Map<number, Answer[]>()
    for (const r of t.records) {
      const n = typeNumber[r.type]
      if (n !== undefined && n !== QTYPE.CNAME) byType.set(n, [...(byType.get(n) ?? []), r])
    }
    return { chain, byType }
  }
  return { chain, byType: new Map() }
}

function compileCname(e: ZoneName, zone: Zone): CompiledName {
  const { chain, byType } = cnameAnswers(zone, e)
  // The first CNAME's owner is the question (a pointer); the records after it carry their own names.
  const encode = (rs: Answer[]): Compiled => {
    const body = Buffer.concat(rs.map((r, i) => encodeRecord(r, i === 0)))
    return { rcode: RCODE.NOERROR, aa: true, an: rs.length, ns: 0, ar: 0, body }
  }
  const c = encode(chain)
  const compiled = new Map<number, Compiled>([[QTYPE.CNAME, encode(chain.slice(0, 1))]])
  for (const [t, rs] of byType) compiled.set(t, encode([...chain, ...rs]))
  return { byType: compiled, other: c, any: c }
}

export function compileZone(zone: Zone): CompiledZone {
  const names = new Map<string, CompiledName>()
  let records = 0
  const suffix = '.' + zone.origin
  for (const [name, e] of zone.names) {
    const key = wireKey(name)
    const c = compileName(name, e, zone, name === zone.origin || name.endsWith(suffix))
    // The whole reply to a plain query, prepared once per answer (the question is the name + type + class).
    for (const x of new Set([...c.byType.values(), c.other, c.any])) prepareWire(x, key.length + 4)
    names.set(key, c)
    records += e.records.length
  }
  return {
    origin: zone.origin, originKey: wireKey(zone.origin), ttl: zone.ttl, names, records,
    nxdomain: negative(RCODE.NXDOMAIN, zone.soa),
    nodata: negative(RCODE.NOERROR, zone.soa),
  }
}

/** Is a wire-form key at or under the origin (label-aligned, not just a string suffix)? */
export function keyInZone(key: string, originKey: string): boolean {
  if (!key.endsWith(originKey)) return false
  const start = key.length - originKey.length
  let pos = 0
  while (pos < start) pos += key.charCodeAt(pos) + 1
  return pos === start
}
