// What the workload controllers share besides pod templates: the queue loop
// (wait for the informers' first list, then one worker draining a WorkQueue
// of `namespace/name` keys, with per-sync metrics and requeue-after), and
// expectations, like client-go's ControllerExpectations: after asking for N
// creations or some deletions, a controller does not act on that key again
// until its informer has seen them, so a burst of events never makes it
// create twice.

import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { Histogram, latencyBuckets, type Registry } from '../../lib/metrics.ts'
import type { ControllerContext } from './types.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor } from '../client/informer.ts'

const syncMetricName = 'skiff_workload_controller_sync_duration_seconds'

function syncHistogram(registry: Registry): Histogram<'controller' | 'result'> {
  const existing = registry.getSingleMetric(syncMetricName)
  if (existing) return existing as Histogram<'controller' | 'result'>
  return new Histogram({
    name: syncMetricName,
    help: 'Time of one reconcile of a ReplicaSet, Deployment or DaemonSet, by controller and result',
    labelNames: ['controller', 'result'],
    buckets: latencyBuckets,
    registers: [registry],
  })
}

export interface SyncLoopOptions {
  name: string
  ctx: ControllerContext
  /** The worker starts once all of these have listed. */
  informers: Informer<any>[]
  /** Reconcile one key; a number is a delay after which the key is synced again. */
  sync(key: string): Promise<number | undefined | void>
  /** Keys reconciled at once (never one key twice at once). */
  workers?: number
}

export class SyncLoop {
  readonly queue: WorkQueue
  #o: SyncLoopOptions
  #hist: Histogram<'controller' | 'result'>
  #waiter?: NodeJS.Timeout
  #stopped = false

  constructor(o: SyncLoopOptions) {
    this.#o = o
    this.queue = new WorkQueue({ name: o.name, logger: o.ctx.logger, workers: o.workers ?? 2 })
    this.#hist = syncHistogram(o.ctx.metrics)
  }

  /** Keys added before the informers synced wait in the queue. */
  start(): void {
    const ready = () => {
      if (this.#stopped) return
      if (!this.#o.informers.every((i) => i.hasSynced)) {
        this.#waiter = setTimeout(ready, 50)
        return
      }
      this.queue.start((key) => this.#run(key))
    }
    ready()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#waiter)
    this.queue.stop()
  }

  enqueue(key: string): void {
    this.queue.add(key)
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms)
  }

  async #run(key: string): Promise<void> {
    const end = this.#hist.startTimer({ controller: this.#o.name })
    try {
      const after = await this.#o.sync(key)
      end({ result: 'success' })
      if (typeof after === 'number' && after >= 0 && !this.#stopped) this.queue.addAfter(key, after)
    } catch (e) {
      end({ result: 'error' })
      throw e
    }
  }
}

interface Expectation {
  adds: number
  dels: Set<string>
  at: number
}

/** Pending creations and deletions per controller key; expired after ttlMs (Kubernetes: 5 minutes) on the monotonic clock. */
export class Expectations {
  #m = new Map<string, Expectation>()
  #ttlMs: number

  constructor(ttlMs = 5 * 60_000) {
    this.#ttlMs = ttlMs
  }

  /** True when nothing is pending (or what is pending is too old to wait for). */
  satisfied(key: string, now = performance.now()): boolean {
    const e = this.#m.get(key)
    if (!e) return true
    return (e.adds <= 0 && e.dels.size === 0) || now - e.at > this.#ttlMs
  }

  #entry(key: string): Expectation {
    let e = this.#m.get(key)
    if (!e || this.satisfied(key)) {
      e = { adds: 0, dels: new Set(), at: performance.now() }
      this.#m.set(key, e)
    }
    e.at = performance.now()
    return e
  }

  expectCreations(key: string, n: number): void {
    this.#entry(key).adds += n
  }

  creationObserved(key: string): void {
    const e = this.#m.get(key)
    if (e) e.adds--
  }

  expectDeletions(key: string, podKeys: string[]): void {
    const e = this.#entry(key)
    for (const k of podKeys) e.dels.add(k)
  }

  deletionObserved(key: string, podKey: string): void {
    this.#m.get(key)?.dels.delete(podKey)
  }

  forget(key: string): void {
    this.#m.delete(key)
  }
}

/**
 * Run `count` calls of fn in batches of 1, 2, 4, ... (controller.slowStartBatch):
 * a systematic failure (quota, a bad template) costs one call, not hundreds.
 * Stops at the first batch with a failure; returns how many succeeded and
 * how many were never tried.
 */
export async function slowStartBatch(count: number, fn: () => Promise<void>): Promise<{ succeeded: number; skipped: number; error?: Error }> {
  let remaining = count
  let succeeded = 0
  for (let batch = Math.min(1, remaining); batch > 0; batch = Math.min(2 * batch, remaining)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => fn()))
    remaining -= batch
    const failed = results.find((r) => r.status === 'rejected')
    succeeded += results.filter((r) => r.status === 'fulfilled').length
    if (failed) return { succeeded, skipped: remaining, error: failed.reason as Error }
  }
  return { succeeded, skipped: 0 }
}

const podsResource = lookupResource('', 'v1', 'pods')!

/** Create one pod for `owner`; a failed create is no longer expected (no pod will appear for it). */
export async function createOwnedPod(ctx: ControllerContext, exp: Expectations, key: string, owner: KubeObject, pod: KubeObject): Promise<void> {
  try {
    const created = await ctx.client.create(podsResource, owner.metadata.namespace, pod)
    ctx.events.event(owner, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`)
  } catch (e) {
    exp.creationObserved(key)
    ctx.events.event(owner, 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`)
    throw e
  }
}

/** Delete one pod of `owner` (guarded by its uid); returns an error message, or undefined. */
export async function deleteOwnedPod(ctx: ControllerContext, exp: Expectations, key: string, owner: KubeObject, pod: KubeObject): Promise<string | undefined> {
  const path = resourcePath(podsResource, pod.metadata.namespace, pod.metadata.name)
  try {
    await ctx.client.call('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: pod.metadata.uid } } })
    ctx.events.event(owner, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`)
    return undefined
  } catch (e) {
    exp.deletionObserved(key, keyFor(pod))
    if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return undefined
    ctx.events.event(owner, 'Warning', 'FailedDelete', `Error deleting: ${(e as Error).message}`)
    return (e as Error).message
  }
}
