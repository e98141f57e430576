// Informer: a list+watch cache of one resource through the apiserver, like
// client-go's shared informer. Contract:
//  - start() resolves once the first complete list is in the cache (synced);
//    handlers then see ADDED for every listed object, in list order.
//  - Afterwards handlers see each change once, in resourceVersion order:
//    onAdd(obj), onUpdate(old, new), onDelete(obj).
//  - When the watch ends (timeout, 410 Expired, lost connection) the informer
//    lists again and reconciles the cache: objects that vanished meanwhile
//    get onDelete, changed ones onUpdate. Nothing is silently lost.
//  - Cached objects are shared: handlers and readers must never mutate them.
//  - A periodic resync (resyncMs) replays onUpdate(obj, obj) for every object,
//    so level-based controllers repair drift even without changes.

import type { ResourceInfo } from '../api/resources.ts'
import type { KubeObject, WatchEvent } from '../api/types.ts'
import type { Logger } from '../../lib/log.ts'
import { resourcePath, type ApiClient } from './client.ts'

export interface InformerHandlers<T> {
  onAdd?(obj: T): void
  onUpdate?(oldObj: T, newObj: T): void
  onDelete?(obj: T): void
}

export interface InformerOptions {
  client: ApiClient
  info: ResourceInfo
  logger: Logger
  namespace?: string
  labelSelector?: string
  fieldSelector?: string
  resyncMs?: number
}

export function keyFor(o: { metadata: { namespace?: string; name?: string } }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly info: ResourceInfo
  #opts: InformerOptions
  #cache = new Map<string, T>()
  #handlers: InformerHandlers<T>[] = []
  #watch?: { stop(): void }
  #stopped = true
  #synced = false
  #rv = ''
  #resync?: NodeJS.Timeout

  constructor(opts: InformerOptions) {
    this.#opts = opts
    this.info = opts.info
  }

  addHandlers(h: InformerHandlers<T>): void {
    this.#handlers.push(h)
  }

  /**
   * The revision this cache is complete up to: every change of the resource
   * at or below it has reached the handlers (0 while listing again). Watch
   * bookmarks move it on when other resources change.
   */
  get revision(): number {
    return this.#rv ? Number(this.#rv) || 0 : 0
  }

  get hasSynced(): boolean {
    return this.#synced
  }

  get(key: string): T | undefined {
    return this.#cache.get(key)
  }

  list(filter?: (o: T) => boolean): T[] {
    const all = [...this.#cache.values()]
    return filter ? all.filter(filter) : all
  }

  async start(): Promise<void> {
    this.#stopped = false
    await this.#relist(0)
    if (this.#opts.resyncMs) {
      this.#resync = setInterval(() => {
        for (const o of this.#cache.values()) for (const h of this.#handlers) h.onUpdate?.(o, o)
      }, this.#opts.resyncMs)
      this.#resync.unref()
    }
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#resync)
    this.#watch?.stop()
  }

  #query(): Record<string, string | undefined> {
    return { labelSelector: this.#opts.labelSelector, fieldSelector: this.#opts.fieldSelector }
  }

  async #relist(attempt: number): Promise<void> {
    while (!this.#stopped) {
      try {
        const list = await this.#opts.client.list(this.info, this.#opts.namespace, this.#query())
        this.#replace(list.items as T[])
        this.#rv = list.metadata.resourceVersion
        this.#synced = true
        this.#startWatch()
        return
      } catch (e) {
        const delay = Math.min(10_000, 200 * 2 ** attempt++)
        this.#opts.logger.warn({ resource: this.info.resource, err: (e as Error).message, retryInMs: delay }, 'informer list failed')
        await new Promise((r) => setTimeout(r, delay))
      }
    }
  }

  #replace(items: T[]): void {
    const fresh = new Map(items.map((o) => [keyFor(o), o]))
    for (const [k, old] of this.#cache) {
      if (!fresh.has(k)) {
        this.#cache.delete(k)
        for (const h of this.#handlers) h.onDelete?.(old)
      }
    }
    for (const [k, o] of fresh) {
      const old = this.#cache.get(k)
      this.#cache.set(k, o)
      if (!old) for (const h of this.#handlers) h.onAdd?.(o)
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) for (const h of this.#handlers) h.onUpdate?.(old, o)
    }
  }

  #startWatch(): void {
    const path = resourcePath(this.info, this.#opts.namespace)
    this.#watch = this.#opts.client.watch(
      path,
      { ...this.#query(), resourceVersion: this.#rv, allowWatchBookmarks: 'true', timeoutSeconds: String(300 + Math.floor(Math.random() * 300)) },
      (ev) => this.#apply(ev as WatchEvent<T>),
      (err) => {
        if (this.#stopped) return
        if (err) this.#opts.logger.debug({ resource: this.info.resource, err: err.message }, 'informer watch ended; relisting')
        // A clean end (timeout) resumes from the last RV; an error lists again.
        if (!err && this.#rv) this.#startWatch()
        else setTimeout(() => void this.#relist(0), 100)
      },
    )
  }

  #apply(ev: WatchEvent<T>): void {
    if (ev.type === 'ERROR') {
      // 410 Expired or any error: drop the RV so the end handler relists.
      this.#rv = ''
      this.#watch?.stop()
      if (!this.#stopped) setTimeout(() => void this.#relist(0), 50)
      return
    }
    const obj = ev.object
    this.#rv = obj.metadata.resourceVersion ?? this.#rv
    if (ev.type === 'BOOKMARK') return
    const key = keyFor(obj)
    const old = this.#cache.get(key)
    if (ev.type === 'DELETED') {
      this.#cache.delete(key)
      for (const h of this.#handlers) h.onDelete?.(old ?? obj)
      return
    }
    this.#cache.set(key, obj)
    if (old) for (const h of this.#handlers) h.onUpdate?.(old, obj)
    else for (const h of this.#handlers) h.onAdd?.(obj)
  }
}
