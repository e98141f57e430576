// `?watch=true` streams: newline-delimited {"type","object"} JSON, chunked.
// From resourceVersion R: every later event of the resource exactly once, in
// order (the store guarantees it); "" or "0": synthetic ADDED events for the
// current state first. Selector transitions follow Kubernetes: an object that
// stops matching is DELETED for this watcher, one that starts matching ADDED.
// A revision that is gone ends the stream with an ERROR event holding a 410
// Expired Status, after which an informer lists again.

import type { ServerResponse } from 'node:http'
import { ApiError } from '../api/errors.ts'
import { printTable } from '../api/printers.ts'
import type { PrintContext } from '../api/printers/types.ts'
import { qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject, WatchEventType } from '../api/types.ts'
import type { StoreEvent } from '../store/types.ts'
import { matches, type ObjectFilter } from './filters.ts'
import type { TableRequest } from './http-util.ts'
import type { Registry } from './registry.ts'
import { withTypeMeta } from './registry.ts'
import { jsonOf, type WatchCache } from './watch-cache.ts'

export interface WatchRequest {
  info: ResourceInfo
  filter: ObjectFilter
  resourceVersion?: string
  timeoutSeconds?: number
  bookmarks: boolean
  table?: TableRequest
  print?: PrintContext
  /** Extra per-object authorization (e.g. a node reading only its own objects). */
  visible?: (obj: KubeObject) => boolean
  /** The initial state of "" and "0" watches comes from here when it can (watch-cache.ts). */
  cache?: WatchCache
}

const maxBufferedBytes = 16 * 1024 * 1024
/**
 * A BOOKMARK goes out at most this often, and only when the watch's progress
 * moved past what the client last heard: informers then know within a second
 * that they have seen everything up to a revision, which is what the data
 * plane reports as applied (a quiet cluster sends nothing).
 */
const bookmarkMs = 1_000

/** How a store event looks to a watcher with this filter; undefined when it does not see it. */
export function translate(req: WatchRequest, ev: StoreEvent): WatchEventType | undefined {
  const seen = (o: KubeObject | undefined) => !!o && matches(req.filter, req.info, o) && (req.visible?.(o) ?? true)
  const now = seen(ev.object)
  const before = seen(ev.prev)
  if (ev.type === 'ADDED') return now ? 'ADDED' : undefined
  if (ev.type === 'DELETED') return now || before ? 'DELETED' : undefined
  if (now && before) return 'MODIFIED'
  if (now) return 'ADDED'
  if (before) return 'DELETED'
  return undefined
}

export async function serveWatch(res: ServerResponse, registry: Registry, req: WatchRequest, onCount: (d: number) => void): Promise<void> {
  const { info } = req
  const rv = req.resourceVersion
  let from: number
  let initial: KubeObject[] = []
  if (!rv || rv === '0') {
    const list = (await req.cache?.list(info, req.filter.namespace, rv !== '0')) ?? (await registry.list(info, req.filter.namespace))
    initial = list.items.filter((o) => matches(req.filter, info, o) && (req.visible?.(o) ?? true))
    from = list.revision
  } else {
    from = Number(rv)
    if (!Number.isInteger(from) || from < 0) throw new ApiError('BadRequest', `invalid resourceVersion: ${rv}`)
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' })
  res.flushHeaders()
  let last = from
  let closed = false
  const write = (line: string) => {
    if (closed) return
    res.write(line)
    if (res.writableLength > maxBufferedBytes) finish('slow watcher')
  }
  const send = (type: WatchEventType, object: unknown) => write(JSON.stringify({ type, object }) + '\n')
  // The object's JSON is made once for every watcher of the resource (jsonOf keeps it); a Table is per watcher.
  const sendObject = (type: WatchEventType, obj: KubeObject) => (req.table ? send(type, render(obj)) : write(`{"type":"${type}","object":${jsonOf(info, obj)}}\n`))
  const render = (obj: KubeObject) =>
    req.table ? printTable(info, [withTypeMeta(info, obj)], { includeObject: req.table.includeObject, now: new Date(), resourceVersion: obj.metadata.resourceVersion ?? String(last), context: req.print }) : withTypeMeta(info, obj)
  for (const o of initial) sendObject('ADDED', o)
  onCount(1)
  const timers: NodeJS.Timeout[] = []
  const handle = registry.store.watch(
    { resource: qualifiedResource(info), fromRevision: from },
    (ev) => {
      last = ev.revision
      const type = translate(req, ev)
      if (type) sendObject(type, ev.object)
    },
    (err) => {
      if (err) {
        const reason = err.code === 'gone' ? new ApiError('Expired', `too old resource version: ${from} (${err.message})`) : new ApiError('InternalError', `watch ended: ${err.message}`)
        send('ERROR', reason.toStatus())
      }
      finish('store')
    },
  )
  function finish(_why: string) {
    if (closed) return
    closed = true
    handle.stop()
    for (const t of timers) clearInterval(t)
    onCount(-1)
    res.end()
  }
  if (req.timeoutSeconds && req.timeoutSeconds > 0) timers.push(setTimeout(() => finish('timeout'), req.timeoutSeconds * 1000))
  if (req.bookmarks) {
    const bookmark = { kind: info.kind, apiVersion: withTypeMeta(info, { metadata: {} }).apiVersion }
    let told = from
    timers.push(
      setInterval(() => {
        const at = Math.max(last, handle.progress())
        if (at <= told) return
        told = at
        send('BOOKMARK', { ...bookmark, metadata: { resourceVersion: String(at) } })
      }, bookmarkMs),
    )
  }
  res.on('close', () => finish('client'))
}
