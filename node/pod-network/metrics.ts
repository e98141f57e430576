// The pod network's Prometheus metrics, in the registry the agent gives (or
// one of its own).

import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry } from '../../lib/metrics.ts'

export interface PodNetworkMetrics {
  registry: Registry
  routes: Gauge
  peers: Gauge<'state'>
  problems: Gauge<'reason'>
  changes: Counter<'kind' | 'op'>
  reconciles: Counter
  reconcileErrors: Counter
  lastReconcile: Gauge
  reconcileDuration: Histogram
}

export function createPodNetworkMetrics(registry: Registry = createRegistry()): PodNetworkMetrics {
  const registers = [registry]
  return {
    registry,
    routes: new Gauge({ name: 'skiff_pod_network_routes', help: 'Routes to other nodes\' podCIDRs installed by the pod network (proto 152)', registers }),
    peers: new Gauge({ name: 'skiff_pod_network_peers', help: 'Other nodes by outcome: routed, skipped (not Ready, no podCIDR yet, ...) or refused (a problem to fix)', labelNames: ['state'], registers }),
    problems: new Gauge({ name: 'skiff_pod_network_peer_problems', help: 'Peers refused by reason (not-on-link: host-gw cannot reach them, use vxlan)', labelNames: ['reason'], registers }),
    changes: new Counter({ name: 'skiff_pod_network_kernel_changes_total', help: 'Routes, neighbour and FDB entries written or deleted', labelNames: ['kind', 'op'], registers }),
    reconciles: new Counter({ name: 'skiff_pod_network_reconciles_total', help: 'Reconciles run (each change of the Nodes, and every resync period)', registers }),
    reconcileErrors: new Counter({ name: 'skiff_pod_network_reconcile_errors_total', help: 'Reconciles in which a command failed', registers }),
    lastReconcile: new Gauge({ name: 'skiff_pod_network_last_reconcile_timestamp_seconds', help: 'When the last reconcile finished (Unix time)', registers }),
    reconcileDuration: new Histogram({ name: 'skiff_pod_network_reconcile_duration_seconds', help: 'Duration of one reconcile', buckets: latencyBuckets, registers }),
  }
}
