// The watch cache: lists (and the initial state of watches) served from
// memory, as kube-apiserver's cacher does, so a list of thousands of objects
// neither runs a Lua script over them in Redis nor parses them again.
//
// One StoreCache per resource, made on the first list of that resource and
// kept by one store watch from then on. Reads follow Kubernetes' semantics
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions):
//
// - resourceVersion="0" ("any"): what the cache holds now, without asking
//   Redis anything.
// - resourceVersion unset (a consistent read) or "N": the current revision is
//   read from Redis (one GET) and the list waits until the cache has seen it,
//   so the answer is at least as new as every write acknowledged before the
//   request: the "consistent reads from cache" of Kubernetes 1.31
//   (KEP-2340). Waiting for the current revision also for "N" is stricter
//   than Kubernetes' NotOlderThan, and what the store path always did.
// - A cache that is not watching (Redis lost, relisting) or does not catch
//   up within waitMs: undefined, and the caller reads from the store.
//
// Each object is serialised once (apiVersion and kind first, as the registry
// returns it) and the JSON is kept while the object is current: lists are
// written from those strings, in chunks that yield to the event loop, and a
// watch event going to many watchers is serialised once for all of them.

import type { ServerResponse } from 'node:http'
import type { Logger } from '../../lib/log.ts'
import { qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { Store } from '../store/types.ts'
import { withTypeMeta } from './registry.ts'
import { StoreCache } from './store-cache.ts'

export interface CachedList {
  /** Sorted by namespace/name; shared with the cache: read-only. */
  items: KubeObject[]
  revision: number
}

interface Entry {
  cache: StoreCache
  started: Promise<void>
  /** namespace ('' for cluster-scoped objects) -> name -> object, kept with the cache. */
  byNamespace: Map<string, Map<string, KubeObject>>
  /** Sorted lists per namespace (all: under allKey), made on demand and dropped when that namespace changes. */
  sorted: Map<string, KubeObject[]>
}

const allKey = '\0all'

export class WatchCache {
  #store: Store
  #log: Logger
  #waitMs: number
  #caches = new Map<string, Entry>()

  constructor(opts: { store: Store; logger: Logger; waitMs?: number }) {
    this.#store = opts.store
    this.#log = opts.logger
    this.#waitMs = opts.waitMs ?? 3_000
  }

  /** Resources cached so far (the ones listed or watched from their current state). */
  get resources(): string[] {
    return [...this.#caches.keys()]
  }

  /** The objects of info (in namespace ns, or all) from the cache; undefined when the store must answer. */
  async list(info: ResourceInfo, ns: string | undefined, consistent: boolean): Promise<CachedList | undefined> {
    const resource = qualifiedResource(info)
    let entry = this.#caches.get(resource)
    if (!entry) this.#caches.set(resource, (entry = this.#make(resource)))
    const deadline = performance.now() + this.#waitMs
    if (!(await within(entry.started, this.#waitMs))) return undefined
    const want = consistent ? await this.#store.currentRevision() : 1
    const { cache } = entry
    while (cache.revision < want) {
      if (performance.now() > deadline) {
        this.#log.warn({ resource, want, at: cache.revision }, 'watch cache behind the store; listing from the store')
        return undefined
      }
      await new Promise((r) => setTimeout(r, 1))
    }
    return { items: sortedItems(entry, ns), revision: cache.revision }
  }

  #make(resource: string): Entry {
    const cache = new StoreCache({ store: this.#store, resource, logger: this.#log })
    const entry: Entry = { cache, started: Promise.resolve(), byNamespace: new Map(), sorted: new Map() }
    cache.onChange((type, obj) => {
      const ns = obj.metadata.namespace ?? ''
      let objs = entry.byNamespace.get(ns)
      if (!objs) entry.byNamespace.set(ns, (objs = new Map()))
      if (type === 'DELETED') objs.delete(obj.metadata.name!)
      else objs.set(obj.metadata.name!, obj)
      if (objs.size === 0) entry.byNamespace.delete(ns)
      entry.sorted.delete(ns)
      entry.sorted.delete(allKey)
    })
    entry.started = cache.start()
    return entry
  }

  stop(): void {
    for (const { cache } of this.#caches.values()) cache.stop()
    this.#caches.clear()
  }
}

/** The objects of one namespace (or all), sorted by namespace/name as the store lists them. */
function sortedItems(entry: Entry, ns: string | undefined): KubeObject[] {
  const at = ns ?? allKey
  let items = entry.sorted.get(at)
  if (items) return items
  if (ns !== undefined) {
    const objs = entry.byNamespace.get(ns)
    items = objs ? [...objs.keys()].sort().map((k) => objs.get(k)!) : []
  } else {
    items = [...entry.cache.items.keys()].sort().map((k) => entry.cache.items.get(k)!)
  }
  entry.sorted.set(at, items)
  return items
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))
  try {
    return await Promise.race([p.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

const serialised = new WeakMap<KubeObject, string>()

/** JSON.stringify(withTypeMeta(info, obj)), computed once per object: objects from the store are never changed, only replaced. */
export function jsonOf(info: ResourceInfo, obj: KubeObject): string {
  let s = serialised.get(obj)
  if (s === undefined) serialised.set(obj, (s = JSON.stringify(withTypeMeta(info, obj))))
  return s
}

/** Bytes of items written before the list yields to the event loop. */
const chunkBytes = 64 * 1024

/**
 * A list response written incrementally: `head` (kind, apiVersion, metadata)
 * then the items from their kept JSON, in chunks with a turn of the event
 * loop between them, so requests queued behind a long list wait for one
 * chunk, not for the whole list. Chunked transfer encoding, no Content-Length.
 */
export async function streamList(res: ServerResponse, head: Record<string, unknown>, items: KubeObject[], json: (o: KubeObject) => string): Promise<void> {
  if (res.headersSent) return
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' })
  const open = JSON.stringify({ ...head, items: [] })
  let chunk = open.slice(0, -2)
  for (let i = 0; i < items.length; i++) {
    chunk += (i ? ',' : '') + json(items[i]!)
    if (chunk.length < chunkBytes) continue
    if (!res.write(chunk)) await drained(res)
    chunk = ''
    await new Promise((r) => setImmediate(r))
    if (res.destroyed) return
  }
  res.end(chunk + ']}')
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
