// Writes a controller made that its informer cache does not show yet. A
// sync built from a cache that lags its own last writes could act twice
// (create a second slice for the same endpoints), so a key waits until the
// cache shows every write of its previous sync, or until `visibleWithinMs`
// has passed (then the cache is trusted again). resourceVersions are
// compared numerically, which Skiff's store allows (a global revision).

export class PendingWrites {
  #visibleWithinMs: number
  /** Per sync key: object key -> resourceVersion written ('' = deleted), and when (performance.now()). */
  #pending = new Map<string, Map<string, { rv: string; at: number }>>()

  constructor(visibleWithinMs = 5_000) {
    this.#visibleWithinMs = visibleWithinMs
  }

  expect(key: string, objKey: string, rv: string): void {
    let m = this.#pending.get(key)
    if (!m) this.#pending.set(key, (m = new Map()))
    m.set(objKey, { rv, at: performance.now() })
  }

  /** Whether `cached(objKey)` shows every write recorded for `key`. */
  caughtUp(key: string, cached: (objKey: string) => { metadata: { resourceVersion?: string } } | undefined): boolean {
    const m = this.#pending.get(key)
    if (!m) return true
    for (const [objKey, w] of m) {
      const obj = cached(objKey)
      const seen = w.rv === '' ? !obj : obj !== undefined && Number(obj.metadata.resourceVersion) >= Number(w.rv)
      if (seen || performance.now() - w.at > this.#visibleWithinMs) m.delete(objKey)
    }
    if (m.size === 0) this.#pending.delete(key)
    return m.size === 0
  }

  clear(): void {
    this.#pending.clear()
  }
}
