// A work queue of keys, like client-go's rate-limited workqueue. Contract:
//  - add(key) while the key waits is a no-op (bursts coalesce into one run);
//    add(key) while it is being processed runs it once more afterwards, so a
//    change that arrives mid-reconcile is never lost.
//  - A handler that throws is retried with exponential backoff per key
//    (base..max); a handler that succeeds resets the key's backoff.
//  - At most `workers` keys are processed at once; one key never twice at once.

import type { Logger } from '../../lib/log.ts'

export interface WorkQueueOptions {
  name: string
  logger: Logger
  workers?: number
  baseDelayMs?: number
  maxDelayMs?: number
}

export class WorkQueue {
  #opts: Required<Omit<WorkQueueOptions, 'logger'>> & { logger: Logger }
  #queue: string[] = []
  #waiting = new Set<string>()
  #active = new Set<string>()
  #dirty = new Set<string>()
  #failures = new Map<string, number>()
  #timers = new Set<NodeJS.Timeout>()
  #handler?: (key: string) => Promise<void>
  #running = 0
  #stopped = false
  #idle: Array<() => void> = []

  constructor(opts: WorkQueueOptions) {
    this.#opts = { workers: 1, baseDelayMs: 50, maxDelayMs: 30_000, ...opts }
  }

  start(handler: (key: string) => Promise<void>): void {
    this.#handler = handler
    this.#stopped = false
    this.#pump()
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }

  add(key: string): void {
    if (this.#stopped) return
    if (this.#active.has(key)) {
      this.#dirty.add(key)
      return
    }
    if (this.#waiting.has(key)) return
    this.#waiting.add(key)
    this.#queue.push(key)
    this.#pump()
  }

  addAfter(key: string, delayMs: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t)
      this.add(key)
    }, delayMs)
    this.#timers.add(t)
  }

  get length(): number {
    return this.#queue.length + this.#active.size
  }

  /** Resolves when nothing is queued or running (for tests and shutdown). */
  async drained(): Promise<void> {
    if (this.length === 0) return
    await new Promise<void>((r) => this.#idle.push(r))
  }

  #pump(): void {
    while (!this.#stopped && this.#handler && this.#running < this.#opts.workers) {
      const key = this.#queue.shift()
      if (key === undefined) break
      this.#waiting.delete(key)
      this.#active.add(key)
      this.#running++
      void this.#process(key)
    }
    if (this.length === 0) for (const r of this.#idle.splice(0)) r()
  }

  async #process(key: string): Promise<void> {
    try {
      await this.#handler!(key)
      this.#failures.delete(key)
    } catch (e) {
      const n = (this.#failures.get(key) ?? 0) + 1
      this.#failures.set(key, n)
      const delay = Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** (n - 1))
      this.#opts.logger.warn({ queue: this.#opts.name, key, err: (e as Error).message, attempt: n, retryInMs: delay }, 'reconcile failed; retrying')
      this.addAfter(key, delay)
    } finally {
      this.#active.delete(key)
      this.#running--
      if (this.#dirty.delete(key)) this.add(key)
      this.#pump()
    }
  }
}
