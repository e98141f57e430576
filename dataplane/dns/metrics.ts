// DNS metrics. Per-query counts are kept in a plain Map and handed to
// prom-client when scraped (collect()), so the hot path pays for one Map
// update rather than prom-client's label hashing.

import { Counter, Gauge, Histogram, Registry, latencyBuckets } from '../../lib/metrics.ts'

export interface DnsMetrics {
  registry: Registry
  query(type: string, rcode: string, seconds: number): void
  cache(hit: boolean): void
  zoneBuilt(seconds: number, records: number): void
}

const fine = [0.00005, 0.0001, 0.00025, ...latencyBuckets]

export function createDnsMetrics(opts: { registry?: Registry } = {}): DnsMetrics {
  const registry = opts.registry ?? new Registry()
  const counts = new Map<string, number>()
  let hits = 0
  let misses = 0
  new Counter({
    name: 'skiff_dns_queries_total', help: 'DNS queries answered, by query type and rcode', labelNames: ['type', 'rcode'], registers: [registry],
    collect() {
      this.reset()
      for (const [k, n] of counts) {
        const [type, rcode] = k.split('|')
        this.inc({ type, rcode }, n)
      }
    },
  })
  const latency = new Histogram({ name: 'skiff_dns_request_duration_seconds', help: 'Time from a query received to its reply sent', buckets: fine, registers: [registry] })
  new Counter({ name: 'skiff_dns_cache_hits_total', help: 'Forwarded names answered from the cache', registers: [registry], collect() { this.reset(); this.inc(hits) } })
  new Counter({ name: 'skiff_dns_cache_misses_total', help: 'Forwarded names sent upstream', registers: [registry], collect() { this.reset(); this.inc(misses) } })
  const build = new Histogram({ name: 'skiff_dns_zone_build_duration_seconds', help: 'Time to rebuild and precompile the cluster zone', buckets: latencyBuckets, registers: [registry] })
  const size = new Gauge({ name: 'skiff_dns_zone_records', help: 'Records in the cluster zone', registers: [registry] })
  return {
    registry,
    query(type, rcode, seconds) {
      const k = `${type}|${rcode}`
      counts.set(k, (counts.get(k) ?? 0) + 1)
      latency.observe(seconds)
    },
    cache(hit) {
      if (hit) hits++
      else misses++
    },
    zoneBuilt(seconds, records) {
      build.observe(seconds)
      size.set(records)
    },
  }
}
