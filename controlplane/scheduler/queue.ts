// The scheduling queue, on top of the controllers' WorkQueue (one worker:
// cycles run one at a time, like kube-scheduler's). Three places a pending
// pod can be, as in kube-scheduler:
//  - active: in the WorkQueue, waiting for a cycle;
//  - backoff: a timer will put it back (after a failure, 1 s doubling to
//    10 s per attempt by default);
//  - unschedulable: it fit nowhere; it waits for a cluster change that may
//    help (moveAllToActive: a node added or changed, a pod deleted) or the
//    periodic flush, and then still honours its backoff.
// forget() drops a pod's attempts when it is bound or deleted.

import { WorkQueue } from '../client/workqueue.ts'
import type { Logger } from '../../lib/log.ts'

export interface BackoffOptions {
  initialMs: number
  maxMs: number
}

/** The wait before attempt n+1 after n failed attempts: initial * 2^(n-1), capped; 0 before any failure. */
export function backoffMs(attempts: number, o: BackoffOptions): number {
  if (attempts <= 0) return 0
  return Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempts - 1, 30))
}

interface Attempts {
  count: number
  lastMs: number
}

export class SchedulingQueue {
  readonly work: WorkQueue
  #backoff: BackoffOptions
  #now: () => number
  #attempts = new Map<string, Attempts>()
  #unschedulable = new Set<string>()
  #timers = new Map<string, NodeJS.Timeout>()

  constructor(opts: { logger: Logger; backoff: BackoffOptions; now?: () => number }) {
    this.work = new WorkQueue({ name: 'scheduler', logger: opts.logger, workers: 1, baseDelayMs: opts.backoff.initialMs, maxDelayMs: opts.backoff.maxMs })
    this.#backoff = opts.backoff
    this.#now = opts.now ?? Date.now
  }

  start(handler: (key: string) => Promise<void>): void {
    this.work.start(handler)
  }

  stop(): void {
    this.work.stop()
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }

  /** A new or changed pending pod: schedule it as soon as its backoff allows. */
  activate(key: string): void {
    this.#unschedulable.delete(key)
    const a = this.#attempts.get(key)
    const wait = a ? a.lastMs + backoffMs(a.count, this.#backoff) - this.#now() : 0
    if (wait <= 0) {
      this.#clearTimer(key)
      this.work.add(key)
    } else if (!this.#timers.has(key)) {
      const t = setTimeout(() => {
        this.#timers.delete(key)
        this.work.add(key)
      }, wait)
      this.#timers.set(key, t)
    }
  }

  /** The pod fit nowhere: park it until something changes. */
  markUnschedulable(key: string): void {
    this.#recordAttempt(key)
    this.#unschedulable.add(key)
  }

  /** A transient failure (a bind that did not go through): retry after the backoff. */
  retryLater(key: string): void {
    this.#recordAttempt(key)
    this.activate(key)
  }

  /** Something changed that may let parked pods fit. */
  moveAllToActive(): void {
    for (const key of [...this.#unschedulable]) this.activate(key)
  }

  forget(key: string): void {
    this.#attempts.delete(key)
    this.#unschedulable.delete(key)
    this.#clearTimer(key)
  }

  attempts(key: string): number {
    return this.#attempts.get(key)?.count ?? 0
  }

  get counts(): { active: number; backoff: number; unschedulable: number } {
    return { active: this.work.length, backoff: this.#timers.size, unschedulable: this.#unschedulable.size }
  }

  #recordAttempt(key: string): void {
    const a = this.#attempts.get(key)
    this.#attempts.set(key, { count: (a?.count ?? 0) + 1, lastMs: this.#now() })
  }

  #clearTimer(key: string): void {
    const t = this.#timers.get(key)
    if (t) clearTimeout(t)
    this.#timers.delete(key)
  }
}
