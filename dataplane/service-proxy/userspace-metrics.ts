// Metrics of the userspace backend (prom-client). A caller passes the agent's
// registry; without one the backend keeps a private registry, so several
// backends in one process (tests) never clash on metric names.

import { Counter, Gauge, Registry } from '../../lib/metrics.ts'

export interface ProxyMetrics {
  registry: Registry
  /** Open TCP connections and UDP sessions, per service port id. */
  active: Gauge<'service' | 'protocol'>
  /** Bytes relayed: `in` from clients towards endpoints, `out` back to clients. */
  bytes: Counter<'service' | 'direction'>
  /** Failed connects to an endpoint (refused, unreachable, timed out). */
  connectErrors: Counter<'service'>
  /** Connections reset because no endpoint was left to try. */
  rejected: Counter<'service'>
  listeners: Gauge<string>
}

export function createProxyMetrics(registry: Registry = new Registry()): ProxyMetrics {
  const registers = [registry]
  return {
    registry,
    active: new Gauge({ name: 'skiff_userspace_proxy_active', help: 'Open TCP connections and UDP sessions per service port', labelNames: ['service', 'protocol'], registers }),
    bytes: new Counter({ name: 'skiff_userspace_proxy_bytes_total', help: 'Bytes relayed per service port and direction (in: client to endpoint)', labelNames: ['service', 'direction'], registers }),
    connectErrors: new Counter({ name: 'skiff_userspace_proxy_connect_errors_total', help: 'Failed connects to endpoints per service port', labelNames: ['service'], registers }),
    rejected: new Counter({ name: 'skiff_userspace_proxy_rejected_total', help: 'Connections reset because no endpoint could be reached', labelNames: ['service'], registers }),
    listeners: new Gauge({ name: 'skiff_userspace_proxy_listeners', help: 'Open listening sockets', registers }),
  }
}
