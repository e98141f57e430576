// The scheduler's Prometheus metrics, named like kube-scheduler's so
// existing dashboards read them. Registered on the ControllerContext's
// registry at start; a metric left over from an earlier start in the same
// process (a new leadership term) is replaced, not re-registered.

import { Counter, Gauge, Histogram, latencyBuckets, type Registry } from '../../lib/metrics.ts'

export interface SchedulerMetrics {
  attempts: Counter<'result' | 'profile'>
  algorithm: Histogram<'profile'>
  e2e: Histogram<'profile'>
  pending: Gauge<'queue'>
}

export function createSchedulerMetrics(reg: Registry, pendingCounts: () => Record<string, number>): SchedulerMetrics {
  for (const n of ['scheduler_schedule_attempts_total', 'scheduler_scheduling_algorithm_duration_seconds', 'scheduler_e2e_scheduling_duration_seconds', 'scheduler_pending_pods']) {
    if (reg.getSingleMetric(n)) reg.removeSingleMetric(n)
  }
  return {
    attempts: new Counter({
      name: 'scheduler_schedule_attempts_total',
      help: 'Scheduling cycles by result: scheduled, unschedulable, or error (the bind failed)',
      labelNames: ['result', 'profile'],
      registers: [reg],
    }),
    algorithm: new Histogram({
      name: 'scheduler_scheduling_algorithm_duration_seconds',
      help: 'One scheduling cycle: filters and scores over the nodes, without the bind',
      labelNames: ['profile'],
      buckets: latencyBuckets,
      registers: [reg],
    }),
    e2e: new Histogram({
      name: 'scheduler_e2e_scheduling_duration_seconds',
      help: 'From a pod entering the scheduling queue to its bind being accepted, over all attempts',
      labelNames: ['profile'],
      buckets: latencyBuckets,
      registers: [reg],
    }),
    pending: new Gauge({
      name: 'scheduler_pending_pods',
      help: 'Pending pods by queue: active (waiting for a cycle), backoff, unschedulable (parked until the cluster changes)',
      labelNames: ['queue'],
      registers: [reg],
      collect() {
        for (const [queue, n] of Object.entries(pendingCounts())) this.set({ queue }, n)
      },
    }),
  }
}
