// DNS metrics. Per-query counts live in a plain `DnsStats` (no prom-client on
// the hot path: one Map update and one bucket increment per query), one per
// thread that answers queries: the main thread in in-process mode, and each
// worker thread (workers.ts). The main thread's registry reads them when
// scraped: its own stats plus every source added with addSource() (the
// workers' cumulative snapshots, fetched on scrape).

import { Counter, Gauge, Histogram, Registry, latencyBuckets } from '../../lib/metrics.ts'

/** What the chain's metrics handler and the forwarder need: the worker threads implement it with DnsStats alone. */
export interface DnsCounters {
  query(type: string, rcode: string, seconds: number): void
  cache(hit: boolean): void
}

export interface DnsMetrics extends DnsCounters {
  registry: Registry
  zoneBuilt(seconds: number, records: number): void
  /** Counts kept elsewhere (worker threads), read and summed on every scrape. */
  addSource(read: () => Promise<StatsSnapshot>): void
}

/** Cumulative counts of one thread, as posted between threads (plain data). */
export interface StatsSnapshot {
  /** `type|rcode` → queries. */
  queries: Record<string, number>
  /** Latency histogram: one count per bucket of `durationBuckets` (not cumulative), then the +Inf overflow. */
  buckets: number[]
  sum: number
  count: number
  cacheHits: number
  cacheMisses: number
}

export const durationBuckets = [0.00005, 0.0001, 0.00025, ...latencyBuckets]

export function emptySnapshot(): StatsSnapshot {
  return { queries: {}, buckets: new Array(durationBuckets.length + 1).fill(0), sum: 0, count: 0, cacheHits: 0, cacheMisses: 0 }
}

/** Add b into a (a is changed and returned). */
export function addSnapshot(a: StatsSnapshot, b: StatsSnapshot): StatsSnapshot {
  for (const [k, n] of Object.entries(b.queries)) a.queries[k] = (a.queries[k] ?? 0) + n
  for (let i = 0; i < a.buckets.length; i++) a.buckets[i]! += b.buckets[i] ?? 0
  a.sum += b.sum
  a.count += b.count
  a.cacheHits += b.cacheHits
  a.cacheMisses += b.cacheMisses
  return a
}

/** The counters of one thread. */
export class DnsStats implements DnsCounters {
  #queries = new Map<string, number>()
  #buckets = new Float64Array(durationBuckets.length + 1)
  #sum = 0
  #count = 0
  #hits = 0
  #misses = 0

  query(type: string, rcode: string, seconds: number): void {
    const k = type + '|' + rcode
    this.#queries.set(k, (this.#queries.get(k) ?? 0) + 1)
    let i = 0
    while (i < durationBuckets.length && seconds > durationBuckets[i]!) i++
    this.#buckets[i]!++
    this.#sum += seconds
    this.#count++
  }

  cache(hit: boolean): void {
    if (hit) this.#hits++
    else this.#misses++
  }

  snapshot(): StatsSnapshot {
    return { queries: Object.fromEntries(this.#queries), buckets: [...this.#buckets], sum: this.#sum, count: this.#count, cacheHits: this.#hits, cacheMisses: this.#misses }
  }
}

export function createDnsMetrics(opts: { registry?: Registry } = {}): DnsMetrics {
  const registry = opts.registry ?? new Registry()
  const local = new DnsStats()
  const sources: Array<() => Promise<StatsSnapshot>> = []
  // One read of every source per scrape, shared by the metrics below.
  let reading: Promise<StatsSnapshot> | undefined
  const read = (): Promise<StatsSnapshot> => {
    reading ??= Promise.all(sources.map((s) => s().catch(() => emptySnapshot())))
      .then((xs) => xs.reduce(addSnapshot, addSnapshot(emptySnapshot(), local.snapshot())))
      .finally(() => setImmediate(() => (reading = undefined)))
    return reading
  }
  new Counter({
    name: 'skiff_dns_queries_total', help: 'DNS queries answered, by query type and rcode', labelNames: ['type', 'rcode'], registers: [registry],
    async collect() {
      const s = await read()
      this.reset()
      for (const [k, n] of Object.entries(s.queries)) {
        const [type, rcode] = k.split('|')
        this.inc({ type, rcode }, n)
      }
    },
  })
  registry.registerMetric(durationHistogram('skiff_dns_request_duration_seconds', 'Time from a query received to its reply sent', read) as any)
  new Counter({ name: 'skiff_dns_cache_hits_total', help: 'Forwarded names answered from the cache', registers: [registry], async collect() { const s = await read(); this.reset(); this.inc(s.cacheHits) } })
  new Counter({ name: 'skiff_dns_cache_misses_total', help: 'Forwarded names sent upstream', registers: [registry], async collect() { const s = await read(); this.reset(); this.inc(s.cacheMisses) } })
  const build = new Histogram({ name: 'skiff_dns_zone_build_duration_seconds', help: 'Time to rebuild and precompile the cluster zone', buckets: latencyBuckets, registers: [registry] })
  const size = new Gauge({ name: 'skiff_dns_zone_records', help: 'Records in the cluster zone', registers: [registry] })
  return {
    registry,
    query: (type, rcode, seconds) => local.query(type, rcode, seconds),
    cache: (hit) => local.cache(hit),
    zoneBuilt(seconds, records) {
      build.observe(seconds)
      size.set(records)
    },
    addSource(s) {
      sources.push(s)
    },
  }
}

/**
 * A histogram whose buckets are summed from snapshots, in the shape prom-client
 * exports (`_bucket{le}` cumulative, `_sum`, `_count`): prom-client's own
 * Histogram can only observe single values.
 */
function durationHistogram(name: string, help: string, read: () => Promise<StatsSnapshot>) {
  const get = async () => {
    const s = await read()
    let acc = 0
    const values = durationBuckets.map((le, i) => {
      acc += s.buckets[i]!
      return { metricName: `${name}_bucket`, labels: { le }, value: acc }
    })
    values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' as unknown as number }, value: s.count })
    values.push({ metricName: `${name}_sum`, labels: {} as { le: number }, value: s.sum }, { metricName: `${name}_count`, labels: {} as { le: number }, value: s.count })
    return { name, help, type: 'histogram', values, aggregator: 'sum' }
  }
  return { name, help, type: 'histogram', aggregator: 'sum', get, reset() {} }
}
