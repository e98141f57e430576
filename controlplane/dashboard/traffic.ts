// The pure core of the dashboard's traffic rates: the ingress workers count
// every answered request in skiff_ingress_requests_total{class, host, status,
// upstream} (dataplane/ingress/worker-metrics.ts), and each agent serves its
// ingress controller's metrics on its kubelet's /metrics. A scrape of one
// ingress node becomes a set of counters; two scrapes of the same node become
// request and error rates per host (the Ingress or HTTPRoute hostname) and
// per upstream (the endpoint ip:port, which is a pod). Errors are 5xx answers,
// the ingress's own 502/503/504 included.

import { parseLine } from '../apiserver/metrics/points.ts'

export interface IngressCounter {
  class: string
  host: string
  status: string
  upstream: string
  value: number
}

export interface NodeCounters {
  node: string
  atMs: number
  counters: IngressCounter[]
}

export interface Rate {
  rps: number
  errorRps: number
}

export interface TrafficRates {
  /** The ingress nodes with two scrapes, and the window their rates cover. */
  nodes: Array<{ node: string; class: string; windowSeconds: number }>
  /** By `${class} ${host}`: what the ingress answered for that hostname ('-' when no host matched). */
  hosts: Array<Rate & { class: string; host: string }>
  /** By upstream ip:port, summed over every ingress node and host. */
  upstreams: Array<Rate & { upstream: string }>
}

const requestsTotal = 'skiff_ingress_requests_total'

/** The request counters of one scrape of a node's /metrics. Pure. */
export function parseIngressCounters(node: string, text: string, atMs: number): NodeCounters {
  const counters: IngressCounter[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith(requestsTotal)) continue
    const p = parseLine(line)
    if (!p || p.name !== requestsTotal) continue
    const { class: cls = '', host = '', status = '', upstream = '' } = p.labels
    counters.push({ class: cls, host, status, upstream, value: p.value })
  }
  return { node, atMs, counters }
}

const key = (c: IngressCounter) => `${c.class}\u0000${c.host}\u0000${c.status}\u0000${c.upstream}`

/**
 * Rates between the previous and the latest scrape of every node. A counter
 * that went back (the ingress restarted) counts from zero; a series new in the
 * latest scrape counts all of its value (it started within the window). Pure.
 */
export function trafficRates(scrapes: Array<{ prev?: NodeCounters; last: NodeCounters }>): TrafficRates {
  const hosts = new Map<string, Rate & { class: string; host: string }>()
  const upstreams = new Map<string, Rate & { upstream: string }>()
  const nodes: TrafficRates['nodes'] = []
  for (const { prev, last } of scrapes) {
    if (!prev || last.atMs <= prev.atMs) continue
    const seconds = (last.atMs - prev.atMs) / 1000
    const before = new Map(prev.counters.map((c) => [key(c), c.value]))
    const classes = new Set<string>()
    for (const c of last.counters) {
      classes.add(c.class)
      const old = before.get(key(c)) ?? 0
      const delta = c.value >= old ? c.value - old : c.value
      if (delta === 0) continue
      const rps = delta / seconds
      const errorRps = c.status.startsWith('5') ? rps : 0
      const h = hosts.get(`${c.class} ${c.host}`) ?? { class: c.class, host: c.host, rps: 0, errorRps: 0 }
      h.rps += rps
      h.errorRps += errorRps
      hosts.set(`${c.class} ${c.host}`, h)
      if (c.upstream && c.upstream !== '-') {
        const u = upstreams.get(c.upstream) ?? { upstream: c.upstream, rps: 0, errorRps: 0 }
        u.rps += rps
        u.errorRps += errorRps
        upstreams.set(c.upstream, u)
      }
    }
    for (const cls of classes) nodes.push({ node: last.node, class: cls, windowSeconds: seconds })
  }
  const round = <T extends Rate>(r: T): T => ({ ...r, rps: Math.round(r.rps * 100) / 100, errorRps: Math.round(r.errorRps * 100) / 100 })
  return {
    nodes: nodes.sort((a, b) => a.node.localeCompare(b.node)),
    hosts: [...hosts.values()].map(round).sort((a, b) => a.class.localeCompare(b.class) || a.host.localeCompare(b.host)),
    upstreams: [...upstreams.values()].map(round).sort((a, b) => a.upstream.localeCompare(b.upstream)),
  }
}
