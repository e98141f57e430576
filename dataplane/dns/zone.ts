// The cluster zone as data (pure): Services, EndpointSlices and Pods in, one
// map of owner name -> records out, following the Kubernetes DNS
// specification (kubernetes/dns docs/specification.md) the way CoreDNS's
// kubernetes plugin reads it. compile.ts turns this into ready-made answers.
//
// Names are lower case, without the trailing dot. A name present in `names`
// exists (NODATA for a type it lacks); any other name under the origin is
// NXDOMAIN. Reverse names (in-addr.arpa) exist only for known addresses.

import type { Answer } from 'dns-packet'
import type { KubeObject } from '../../controlplane/api/types.ts'

export interface ZoneName {
  records: Answer[]
  /** Glue for SRV targets (the additional section). */
  additional: Answer[]
  /** ExternalName: the CNAME answers every type. */
  cname?: boolean
}

export interface Zone {
  origin: string
  ttl: number
  soa: Answer
  names: Map<string, ZoneName>
}

export interface ZoneInput {
  services: KubeObject[]
  slices: KubeObject[]
  pods: KubeObject[]
  origin?: string
  ttl?: number
  /** The cluster DNS address: the A record of the apex NS target. */
  dnsIP?: string
  /** SOA serial: changes with every build so secondaries (and humans) see a new zone. */
  serial?: number
}

export const dnsSchemaVersion = '1.1.0'

const isIPv4 = (s: unknown): s is string => typeof s === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(s)

export function reverseName(ip: string): string {
  return ip.split('.').reverse().join('.') + '.in-addr.arpa'
}

/** `10.244.1.5` -> `10-244-1-5`, the pod and headless endpoint label. */
export const dashed = (ip: string) => ip.replaceAll('.', '-')

class ZoneBuilder {
  readonly names = new Map<string, ZoneName>()
  readonly origin: string
  readonly ttl: number
  #seen = new Set<string>()
  constructor(origin: string, ttl: number) {
    this.origin = origin
    this.ttl = ttl
  }

  entry(name: string): ZoneName {
    let e = this.names.get(name)
    if (!e) this.names.set(name, (e = { records: [], additional: [] }))
    return e
  }

  /** Add a record and make every ancestor inside the origin exist (empty non-terminals). */
  add(rr: Omit<Answer, 'ttl' | 'class'> & { data: unknown }, opts: { glue?: Answer[] } = {}): void {
    const name = rr.name.toLowerCase()
    const e = this.entry(name)
    const full = { ...rr, name, ttl: this.ttl, class: 'IN' } as Answer
    // Sets, not scans: a headless Service with n endpoints adds n records to one name.
    if (this.#once(`${name}|${rr.type}|${JSON.stringify(rr.data)}`)) e.records.push(full)
    for (const g of opts.glue ?? []) if (this.#once(`${name}|glue|${g.name}|${(g as any).data}`)) e.additional.push(g)
    if (name.endsWith('.' + this.origin)) {
      for (let n = name; n !== this.origin; n = n.slice(n.indexOf('.') + 1)) this.entry(n)
    }
  }

  #once(k: string): boolean {
    if (this.#seen.has(k)) return false
    this.#seen.add(k)
    return true
  }

  a(name: string, ip: string): Answer {
    return { name, type: 'A', ttl: this.ttl, class: 'IN', data: ip }
  }
}

interface ReadyEndpoint {
  ip: string
  /** `hostname.svc.ns.svc.zone` (hostname, else the dashed IP, as CoreDNS does). */
  fqdn: string
}

function readyEndpoints(slices: KubeObject[], svcDomain: string): Array<{ ep: ReadyEndpoint; ports: any[] }> {
  const out: Array<{ ep: ReadyEndpoint; ports: any[] }> = []
  for (const s of slices) {
    if (s.addressType !== undefined && s.addressType !== 'IPv4') continue
    for (const e of (s.endpoints as any[]) ?? []) {
      // ready unset means ready (EndpointSlice API contract).
      if (e?.conditions?.ready === false) continue
      for (const ip of e.addresses ?? []) {
        if (!isIPv4(ip)) continue
        const host = typeof e.hostname === 'string' && e.hostname ? e.hostname.toLowerCase() : dashed(ip)
        out.push({ ep: { ip, fqdn: `${host}.${svcDomain}` }, ports: (s.ports as any[]) ?? [] })
      }
    }
  }
  return out
}

function addService(b: ZoneBuilder, svc: KubeObject, slices: KubeObject[], ptrs: Map<string, string>): void {
  const ns = svc.metadata.namespace!.toLowerCase()
  const name = `${svc.metadata.name!.toLowerCase()}.${ns}.svc.${b.origin}`
  const spec = svc.spec ?? {}
  if (spec.type === 'ExternalName') {
    if (typeof spec.externalName === 'string' && spec.externalName) {
      b.add({ name, type: 'CNAME', data: spec.externalName.replace(/\.$/, '').toLowerCase() })
      b.entry(name).cname = true
    }
    return
  }
  const ips: string[] = (Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [spec.clusterIP]).filter(isIPv4)
  const headless = spec.clusterIP === 'None' || ips.length === 0
  if (!headless) {
    for (const ip of ips) {
      b.add({ name, type: 'A', data: ip })
      ptrs.set(ip, name)
    }
    for (const p of (spec.ports as any[]) ?? []) {
      if (!p?.name) continue // unnamed ports have no SRV (spec 2.4.1)
      const proto = String(p.protocol ?? 'TCP').toLowerCase()
      const glue = ips.map((ip) => b.a(name, ip))
      b.add({ name: `_${p.name.toLowerCase()}._${proto}.${name}`, type: 'SRV', data: { priority: 0, weight: 100, port: p.port, target: name } }, { glue })
    }
    return
  }
  const eps = readyEndpoints(slices, name)
  // No ready endpoint: the name does not exist (NXDOMAIN), as in CoreDNS.
  if (eps.length === 0) return
  const weight = Math.floor(100 / eps.length)
  for (const { ep, ports } of eps) {
    b.add({ name, type: 'A', data: ep.ip })
    b.add({ name: ep.fqdn, type: 'A', data: ep.ip })
    ptrs.set(ep.ip, ep.fqdn)
    for (const p of ports) {
      if (!p?.name || typeof p.port !== 'number') continue
      const proto = String(p.protocol ?? 'TCP').toLowerCase()
      b.add({ name: `_${p.name.toLowerCase()}._${proto}.${name}`, type: 'SRV', data: { priority: 0, weight, port: p.port, target: ep.fqdn } }, { glue: [b.a(ep.fqdn, ep.ip)] })
    }
  }
}

/** Build the whole zone (forward and reverse names) from the API objects. */
export function buildZone(input: ZoneInput): Zone {
  const origin = (input.origin ?? 'cluster.local').replace(/\.$/, '').toLowerCase()
  const ttl = input.ttl ?? 5
  const b = new ZoneBuilder(origin, ttl)
  const soa: Answer = {
    name: origin, type: 'SOA', ttl, class: 'IN',
    data: { mname: `ns.dns.${origin}`, rname: `hostmaster.${origin}`, serial: (input.serial ?? 1) >>> 0, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl },
  }
  b.entry(origin).records.push(soa)
  b.add({ name: origin, type: 'NS', data: `ns.dns.${origin}` })
  if (input.dnsIP) b.add({ name: `ns.dns.${origin}`, type: 'A', data: input.dnsIP })
  b.add({ name: `dns-version.${origin}`, type: 'TXT', data: dnsSchemaVersion })
  b.entry(`svc.${origin}`)
  b.entry(`pod.${origin}`)

  const slicesBySvc = new Map<string, KubeObject[]>()
  for (const s of input.slices) {
    const svc = s.metadata.labels?.['kubernetes.io/service-name']
    if (!svc) continue
    const k = `${s.metadata.namespace}/${svc}`
    slicesBySvc.set(k, [...(slicesBySvc.get(k) ?? []), s])
  }
  // PTR targets: services and headless endpoints win over the generic pod name.
  const ptrs = new Map<string, string>()
  for (const p of input.pods) {
    const ip = p.status?.podIP
    if (isIPv4(ip) && !p.spec?.hostNetwork) ptrs.set(ip, `${dashed(ip)}.${p.metadata.namespace!.toLowerCase()}.pod.${origin}`)
  }
  const services = [...input.services].sort((x, y) => `${x.metadata.namespace}/${x.metadata.name}`.localeCompare(`${y.metadata.namespace}/${y.metadata.name}`))
  for (const svc of services) addService(b, svc, slicesBySvc.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [], ptrs)
  for (const [ip, target] of ptrs) b.add({ name: reverseName(ip), type: 'PTR', data: target })
  return { origin, ttl, soa, names: b.names }
}

/** Pods in `insecure` mode (CoreDNS, kubeadm default): `a-b-c-d.ns.pod.zone` answers the encoded address. */
export function podAddress(name: string, origin: string): string | undefined {
  const suffix = `.pod.${origin}`
  if (!name.endsWith(suffix)) return undefined
  const labels = name.slice(0, -suffix.length).split('.')
  if (labels.length !== 2) return undefined
  const parts = labels[0]!.split('-')
  if (parts.length !== 4 || !parts.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255)) return undefined
  return parts.map(Number).join('.')
}
