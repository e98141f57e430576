// The controller contract. A controller is a module with start(ctx)/stop():
// it registers handlers on shared informers that only enqueue keys, and a
// WorkQueue worker that re-reads the object from the informer cache,
// computes the desired state with pure functions, and writes through the
// API (every write guarded by resourceVersion; every reconcile idempotent).
// Controllers run only while their process holds the leader Lease
// (manager.ts), but leadership is not fencing: correctness comes from
// resourceVersion preconditions, never from being the only writer.

import type { ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { ApiClient } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import type { Logger } from '../../lib/log.ts'
import type { Registry as MetricsRegistry } from '../../lib/metrics.ts'

export interface InformerFactory {
  /** The shared informer of a resource (all namespaces), created on first use. */
  for<T extends KubeObject = KubeObject>(info: ResourceInfo): Informer<T>
  /** Start every informer asked for so far; resolves when all have synced. */
  start(): Promise<void>
  stop(): void
}

export interface EventRecorder {
  /** Record a Kubernetes Event about `obj` (type Normal or Warning). Never throws. */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void
}

export interface ControllerContext {
  client: ApiClient
  informers: InformerFactory
  events: EventRecorder
  logger: Logger
  metrics: MetricsRegistry
  /** Settings with defaults; see controllers/README.md. */
  config: ControllerConfig
}

export interface ControllerConfig {
  /** A node whose Lease is older than this is NotReady (Kubernetes: 40 s). */
  nodeMonitorGracePeriodMs: number
  /** Pods of a NotReady node are evicted after this (Kubernetes: 300 s). */
  podEvictionTimeoutMs: number
  /** How often node lifecycle checks Lease ages: silence is the signal, so it polls (Kubernetes: 5 s). Optional so older config literals still type-check. */
  nodeMonitorPeriodMs?: number
  /** How often expired bootstrap tokens are deleted (kubeadm's token cleaner); optional like nodeMonitorPeriodMs. */
  tokenCleanupPeriodMs?: number
  /** After this long without every serving node applying a Service's or an Ingress's change, a RoutingNotApplied Warning (routing-events; 10 s, the endpoint withdrawal's default timeout). */
  routingWarnAfterMs?: number
  /** Endpoints per EndpointSlice (Kubernetes' --max-endpoints-per-slice: 100). */
  maxEndpointsPerSlice?: number
  /** How often pod garbage collection looks for pods on deleted nodes (Kubernetes: 20 s). */
  podGCPeriodMs?: number
  /** How long a node must be seen missing before its pods are deleted (Kubernetes' quarantine: 40 s). */
  podGCQuarantineMs?: number
  /** The pod network; each node gets one /24 from it as spec.podCIDR. */
  clusterCIDR: string
  nodeCIDRMaskSize: number
  /** LoadBalancer addresses: CIDRs, a-b ranges or single IPv4 addresses (outside the service and pod ranges). */
  loadBalancerPool?: string[]
  /** Job: first delay before a failed pod is replaced, doubled per failure in a row (Kubernetes: 10 s). */
  jobBackoffBaseMs?: number
  /** Job: the largest such delay (Kubernetes: 6 min). */
  jobBackoffMaxMs?: number
  /** CronJob: the clock schedules are read on (default: the wall clock); see clock.ts. */
  cronJobClock?: ControllerClock
  /** How often each HorizontalPodAutoscaler is reconciled (Kubernetes' --horizontal-pod-autoscaler-sync-period: 15 s). */
  hpaSyncPeriodMs?: number
}

/** A clock for controllers that act at wall-clock times (CronJob). */
export interface ControllerClock {
  /** Now, in epoch milliseconds. */
  now(): number
  /** How many real milliseconds to wait for `ms` to pass on this clock. */
  realDelayMs(ms: number): number
}

export const defaultControllerConfig: ControllerConfig = {
  nodeMonitorGracePeriodMs: 40_000,
  podEvictionTimeoutMs: 60_000,
  nodeMonitorPeriodMs: 5_000,
  tokenCleanupPeriodMs: 60_000,
  maxEndpointsPerSlice: 100,
  clusterCIDR: '10.244.0.0/16',
  nodeCIDRMaskSize: 24,
  loadBalancerPool: ['10.112.0.0/24'],
}

export interface Controller {
  readonly name: string
  start(ctx: ControllerContext): Promise<void>
  stop(): Promise<void>
}
