// The agent's Prometheus metrics (one Registry per agent, so tests can run
// several agents in one process).

import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry } from '../lib/metrics.ts'

export interface NodeMetrics {
  registry: Registry
  podsRunning: Gauge
  syncDuration: Histogram
  containerRestarts: Counter
}

export function createNodeMetrics(opts: { registry?: Registry; runningPods?: () => number } = {}): NodeMetrics {
  const registry = opts.registry ?? createRegistry()
  const running = opts.runningPods
  return {
    registry,
    podsRunning: new Gauge({
      name: 'skiff_node_pods_running',
      help: 'Pods in phase Running on this node',
      registers: [registry],
      collect() {
        if (running) this.set(running())
      },
    }),
    syncDuration: new Histogram({ name: 'skiff_node_pod_sync_duration_seconds', help: 'Duration of one pod sync', buckets: latencyBuckets, registers: [registry] }),
    containerRestarts: new Counter({ name: 'skiff_node_container_restarts_total', help: 'Containers started again after they exited', registers: [registry] }),
  }
}
