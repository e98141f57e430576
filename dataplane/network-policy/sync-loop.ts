// A coalescing sync loop (kube-proxy's BoundedFrequencyRunner, minus the
// maximum interval, which the owner's resync timer provides): markDirty()
// from event handlers; at most one run at a time, at most one per
// minIntervalMs; a failed run (it throws) is retried with exponential
// backoff (200 ms .. 10 s) and the dirty flag stays set.

export interface SyncLoopOptions {
  /** One sync; throws to be retried. */
  run: () => Promise<void>
  /** Whether the inputs are ready (informers synced); a sync before that is skipped, not failed. */
  ready: () => boolean
  onError: (err: Error, retryInMs: number) => void
  minIntervalMs?: number
}

export class SyncLoop {
  #o: SyncLoopOptions
  #dirty = false
  #timer?: NodeJS.Timeout
  #running = false
  #stopped = false
  #lastAt = 0
  #failures = 0

  constructor(opts: SyncLoopOptions) {
    this.#o = opts
  }

  get running(): boolean {
    return this.#running
  }

  markDirty(): void {
    this.#dirty = true
    this.#schedule(0)
  }

  /** Run now if dirty (start-up: resolves when the first sync is done or failed). */
  async runNow(): Promise<void> {
    this.#dirty = true
    await this.#sync()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    for (let i = 0; this.#running && i < 100; i++) await new Promise((r) => setTimeout(r, 20))
  }

  #schedule(extraDelayMs: number): void {
    if (this.#stopped || this.#timer || this.#running) return
    const wait = Math.max(extraDelayMs, this.#lastAt + (this.#o.minIntervalMs ?? 50) - performance.now(), 0)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#sync()
    }, wait)
  }

  async #sync(): Promise<void> {
    if (this.#stopped || !this.#dirty || this.#running || !this.#o.ready()) return
    this.#running = true
    this.#dirty = false
    let retryIn = 0
    try {
      await this.#o.run()
      this.#failures = 0
    } catch (e) {
      this.#dirty = true
      retryIn = Math.min(10_000, 200 * 2 ** this.#failures++)
      this.#o.onError(e as Error, retryIn)
    } finally {
      this.#lastAt = performance.now()
      this.#running = false
    }
    if (this.#dirty) this.#schedule(retryIn)
  }
}
