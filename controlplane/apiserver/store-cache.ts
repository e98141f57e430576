// A small list+watch cache over the Store, for the apiserver's own needs
// (authorization graph, garbage collection). Relists when its watch ends
// ('gone' or a lost connection), so it converges after any outage.

import type { KubeObject } from '../api/types.ts'
import type { Store, StoreEvent, WatchHandle } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'

export type CacheListener = (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject, prev?: KubeObject) => void

export class StoreCache {
  readonly resource: string
  readonly items = new Map<string, KubeObject>()
  #store: Store
  #log: Logger
  #watch?: WatchHandle
  #stopped = false
  #listeners: CacheListener[] = []
  #synced = false
  #namespace?: string
  #filter: (o: KubeObject) => boolean
  /** The revision of the last list or event applied; 0 while the cache is not watching. */
  #revision = 0
  #live = false

  /** namespace and filter keep only the objects a user needs (the credential Secrets, not every Secret). */
  constructor(opts: { store: Store; resource: string; logger: Logger; namespace?: string; filter?: (o: KubeObject) => boolean }) {
    this.#store = opts.store
    this.resource = opts.resource
    this.#log = opts.logger
    this.#namespace = opts.namespace
    this.#filter = opts.filter ?? (() => true)
  }

  #keeps(o: KubeObject): boolean {
    return (!this.#namespace || o.metadata.namespace === this.#namespace) && this.#filter(o)
  }

  onChange(fn: CacheListener): void {
    this.#listeners.push(fn)
  }

  get synced(): boolean {
    return this.#synced
  }

  /**
   * The revision the cache is known to reflect: every write up to it is in
   * (writes to other resources move it too, through the watch's progress).
   * 0 while the watch is down (between its end and the relist).
   */
  get revision(): number {
    return this.#live ? Math.max(this.#revision, this.#watch?.progress() ?? 0) : 0
  }

  async start(): Promise<void> {
    this.#stopped = false
    await this.#relist()
  }

  stop(): void {
    this.#stopped = true
    this.#live = false
    this.#watch?.stop()
  }

  async #relist(): Promise<void> {
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        const { items, revision } = await this.#store.list(this.resource, this.#namespace ? { namespace: this.#namespace } : undefined)
        const fresh = new Map(items.filter((o) => this.#keeps(o)).map((o) => [keyOf(o), o]))
        for (const [k, old] of this.items) if (!fresh.has(k)) this.#emit('DELETED', old, old)
        for (const [k, o] of fresh) this.#emit(this.items.has(k) ? 'MODIFIED' : 'ADDED', o, this.items.get(k))
        this.items.clear()
        for (const [k, o] of fresh) this.items.set(k, o)
        this.#synced = true
        this.#revision = revision
        this.#live = true
        this.#watch = this.#store.watch(
          { resource: this.resource, fromRevision: revision },
          (ev) => this.#apply(ev),
          (err) => {
            this.#live = false
            if (this.#stopped) return
            this.#log.warn({ resource: this.resource, err: err?.message }, 'cache watch ended; relisting')
            setTimeout(() => void this.#relist(), 200)
          },
        )
        return
      } catch (e) {
        this.#log.warn({ resource: this.resource, err: (e as Error).message, attempt }, 'cache list failed; retrying')
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)))
      }
    }
  }

  #apply(ev: StoreEvent): void {
    this.#revision = ev.revision
    const had = this.items.get(ev.key)
    if (ev.type !== 'DELETED' && this.#keeps(ev.object)) {
      this.items.set(ev.key, ev.object)
      this.#emit(had ? 'MODIFIED' : 'ADDED', ev.object, had)
    } else if (had) {
      // Deleted, or no longer one of ours: either way it leaves the cache.
      this.items.delete(ev.key)
      this.#emit('DELETED', ev.type === 'DELETED' ? ev.object : had, had)
    }
  }

  #emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject, prev?: KubeObject): void {
    for (const fn of this.#listeners) fn(type, obj, prev)
  }
}

export function keyOf(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!
}
