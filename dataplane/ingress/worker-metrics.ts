// The metrics of one ingress worker (prom-client, own Registry). The pool
// asks each worker for getMetricsAsJSON() and merges them with
// AggregatorRegistry.aggregate: counters and gauges sum, except the route
// generation, which takes the minimum (the generation every worker serves).
// Labels are bounded: host is the matched rule host ('_' when nothing
// matched), never the raw Host header.

import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry } from '../../lib/metrics.ts'

export interface WorkerMetrics {
  registry: Registry
  requests: Counter<'class' | 'host' | 'status' | 'upstream'>
  duration: Histogram<'class'>
  upstreamErrors: Counter<'class' | 'reason'>
  activeConnections: Gauge<'class'>
  websockets: Gauge<'class'>
  generation: Gauge<'class'>
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = createRegistry()
  const registers = [registry]
  return {
    registry,
    requests: new Counter({ name: 'skiff_ingress_requests_total', help: 'Requests answered, by matched host, status and upstream (ip:port, or "-" when none)', labelNames: ['class', 'host', 'status', 'upstream'], registers }),
    duration: new Histogram({ name: 'skiff_ingress_request_duration_seconds', help: 'Time from request start to the end of the response', labelNames: ['class'], buckets: latencyBuckets, registers }),
    upstreamErrors: new Counter({ name: 'skiff_ingress_upstream_errors_total', help: 'Failed upstream attempts by reason (connect, reset, timeout, ...)', labelNames: ['class', 'reason'], registers }),
    activeConnections: new Gauge({ name: 'skiff_ingress_active_connections', help: 'Open client connections', labelNames: ['class'], registers }),
    websockets: new Gauge({ name: 'skiff_ingress_websockets_open', help: 'Open proxied WebSockets', labelNames: ['class'], registers }),
    generation: new Gauge({ name: 'skiff_ingress_route_generation', help: 'Snapshot generation in use (aggregated: the lowest over workers)', labelNames: ['class'], registers, aggregator: 'min' }),
  }
}
