// Prometheus metrics (prom-client). Each component owns one Registry so a test
// can start several components in one process without name clashes; a
// process serves its registries on /metrics.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export { Counter, Gauge, Histogram, Registry }

export function createRegistry(opts: { defaultMetrics?: boolean; prefix?: string } = {}): Registry {
  const reg = new Registry()
  if (opts.defaultMetrics) collectDefaultMetrics({ register: reg, prefix: opts.prefix })
  return reg
}

/** Latency buckets in seconds, from 0.5 ms to 30 s. */
export const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
