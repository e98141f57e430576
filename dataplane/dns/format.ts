// Records in zone-file syntax: what the unit test tables compare and what
// the debug dump prints (`web.default.svc.cluster.local. 5 IN A 10.96.0.12`).

import type { Answer } from 'dns-packet'
import type { Zone } from './zone.ts'

const fq = (n: string) => (n === '.' || n.endsWith('.') ? n : n + '.')

export function rrLine(rr: Answer): string {
  const d = (rr as any).data
  let data: string
  switch (rr.type) {
    case 'A':
    case 'AAAA':
      data = d
      break
    case 'CNAME':
    case 'PTR':
    case 'NS':
      data = fq(d)
      break
    case 'SRV':
      data = `${d.priority ?? 0} ${d.weight ?? 0} ${d.port} ${fq(d.target)}`
      break
    case 'TXT':
      data = (Array.isArray(d) ? d : [d]).map((x: Buffer | string) => JSON.stringify(x.toString())).join(' ')
      break
    case 'SOA':
      data = `${fq(d.mname)} ${fq(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`
      break
    default:
      data = JSON.stringify(d)
  }
  return `${fq(rr.name)} ${(rr as any).ttl} IN ${rr.type} ${data}`
}

/** The whole zone, sorted: the debug endpoint's body. */
export function zoneText(z: Zone): string {
  const lines: string[] = []
  for (const e of z.names.values()) for (const r of e.records) lines.push(rrLine(r))
  return lines.sort().join('\n') + '\n'
}
