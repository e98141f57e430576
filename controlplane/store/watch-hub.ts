// One reader of the event stream per store, fanned out to every watcher.
//
// The hub reads the stream with a blocking XREAD on its own connection and
// hands each entry to the watchers of its resource, decoding it once however
// many watchers there are. A new watcher first catches up from the stream
// with XRANGE on the main connection while the hub buffers the live events
// it reads meanwhile; the two meet without a gap or a duplicate because the
// hub reads the stream contiguously (the revisions of consecutive entries
// differ by one) and both sides are merged by revision.
//
// Whenever an event a watcher needs cannot be delivered (trimmed away, or the
// counter jumped past it), the watcher ends with 'gone'. Ending a watcher
// never affects the others.

import type { Logger } from 'pino'
import { StoreError, type StoreEvent, type WatchHandle, type WatchOptions } from './types.ts'

type Entry = [id: string, fields: string[]]

const PAGE = 1000

export interface HubSource {
  /** Block until entries after `rev` exist (or a timeout); null on timeout. */
  readAfter(rev: number): Promise<Entry[] | null>
  /** Up to `count` entries from revision `rev` on (main connection). */
  range(rev: number, count: number): Promise<Entry[]>
  floor(): Promise<number>
  decode(id: string, fields: string[]): StoreEvent
  /** The revision may be served once this settles (see RevisionMark). */
  cover(rev: number): Promise<void> | undefined
  /** Connected and checked; false while Redis is unreachable. */
  available(): boolean
  /** Resolves once the hub's connection is usable again (or the store stops). */
  waitReady(): Promise<void>
}

interface Watcher {
  resource?: string
  /** Only revisions above this are delivered; moves when catch-up ends. */
  from: number
  live: boolean
  /** Matching live events read while catching up. */
  buffer: StoreEvent[]
  /** First revision the hub read after this watcher registered. */
  firstSeen?: number
  ended: boolean
  onEvent: (ev: StoreEvent) => void
  onEnd: (err?: StoreError) => void
}

export function revisionOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')))
}

function resourceOf(fields: string[]): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'r') return fields[i + 1]
  return undefined
}

export class WatchHub {
  private readonly src: HubSource
  private readonly log: Logger
  /** Revision of the last entry the hub dispatched. */
  private lastRev = 0
  private readonly byResource = new Map<string, Set<Watcher>>()
  private readonly everything = new Set<Watcher>()
  private readonly catching = new Set<Watcher>()
  private stopped = false
  private loopDone: Promise<void> = Promise.resolve()

  constructor(src: HubSource, log: Logger) {
    this.src = src
    this.log = log
  }

  /** Start reading after `rev` (the counter when the store started). */
  start(rev: number): void {
    this.lastRev = rev
    this.loopDone = this.loop()
  }

  /** End every watcher without an error (a normal end) and stop reading. */
  async stop(): Promise<void> {
    this.stopped = true
    this.failAll(undefined)
    await this.loopDone
  }

  get size(): number {
    let n = this.everything.size
    for (const set of this.byResource.values()) n += set.size
    return n
  }

  watch(opts: WatchOptions, onEvent: (ev: StoreEvent) => void, onEnd: (err?: StoreError) => void): WatchHandle {
    const w: Watcher = { resource: opts.resource, from: opts.fromRevision, live: false, buffer: [], ended: false, onEvent, onEnd }
    const handle = {
      stop: () => this.end(w, undefined, false),
      // Live watchers get every event as the hub dispatches it, so the hub's
      // position is theirs; a catching-up watcher has only reached w.from.
      progress: () => (w.live ? Math.max(w.from, this.lastRev) : w.from),
    }
    if (this.stopped || !this.src.available()) {
      // onEnd must not run before the caller has its handle.
      queueMicrotask(() => this.end(w, new StoreError('unavailable', 'store is not connected to Redis')))
      return handle
    }
    this.setFor(w).add(w)
    this.catching.add(w)
    void this.catchUp(w)
    return handle
  }

  /** End every watcher, e.g. when the connection to Redis is lost. */
  failAll(err: StoreError | undefined): void {
    for (const w of [...this.everything, ...[...this.byResource.values()].flatMap((s) => [...s])]) this.end(w, err)
  }

  private setFor(w: Watcher): Set<Watcher> {
    if (w.resource === undefined) return this.everything
    let set = this.byResource.get(w.resource)
    if (!set) this.byResource.set(w.resource, (set = new Set()))
    return set
  }

  private end(w: Watcher, err: StoreError | undefined, notify = true): void {
    if (w.ended) return
    w.ended = true
    w.buffer = []
    this.catching.delete(w)
    const set = this.setFor(w)
    set.delete(w)
    if (set.size === 0 && w.resource !== undefined) this.byResource.delete(w.resource)
    if (!notify) return
    try {
      w.onEnd(err)
    } catch (e) {
      this.log.error({ err: e }, 'store: watch onEnd handler threw')
    }
  }

  private deliver(w: Watcher, ev: StoreEvent): void {
    try {
      w.onEvent(ev)
    } catch (e) {
      this.log.error({ err: e }, 'store: watch onEvent handler threw; ending that watch')
      this.end(w, new StoreError('unavailable', `watch handler failed: ${(e as Error).message}`))
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const entries = await this.src.readAfter(this.lastRev)
        if (entries && entries.length > 0) await this.dispatchBatch(entries)
      } catch (err) {
        if (this.stopped) return
        this.log.warn({ err }, 'store: event stream read failed; ending all watches')
        this.failAll(new StoreError('unavailable', `lost the event stream: ${(err as Error).message}`))
        await this.src.waitReady()
      }
    }
  }

  private async dispatchBatch(entries: Entry[]): Promise<void> {
    const pending = this.src.cover(revisionOf(entries[entries.length - 1]![0]))
    if (pending) await pending
    for (const [id, fields] of entries) {
      if (this.stopped) return
      this.dispatch(id, fields)
    }
  }

  private dispatch(id: string, fields: string[]): void {
    const rev = revisionOf(id)
    if (rev <= this.lastRev) return
    if (rev !== this.lastRev + 1) this.onSkip(this.lastRev, rev)
    for (const w of this.catching) w.firstSeen ??= rev
    const resource = resourceOf(fields)
    let ev: StoreEvent | undefined
    const offer = (set: Set<Watcher> | undefined) => {
      if (!set) return
      for (const w of set) {
        if (rev <= w.from) continue
        try {
          ev ??= this.src.decode(id, fields)
        } catch (err) {
          this.log.error({ err, rev }, 'store: cannot decode event; ending the watches that need it')
          this.end(w, new StoreError('unavailable', `cannot decode event at revision ${rev}`))
          continue
        }
        if (w.live) this.deliver(w, ev)
        else w.buffer.push(ev)
      }
    }
    if (resource !== undefined) offer(this.byResource.get(resource))
    offer(this.everything)
    this.lastRev = rev
  }

  /**
   * Revisions a+1 .. b-1 are not in the stream: trimmed before the hub read
   * them, or the counter jumped. Watchers that may need them end with 'gone'.
   */
  private onSkip(a: number, b: number): void {
    this.log.warn({ after: a, next: b }, 'store: event stream skips revisions; ending watches that needed them')
    const gone = new StoreError('gone', `events after revision ${a} are no longer available`)
    for (const w of [...this.everything, ...[...this.byResource.values()].flatMap((s) => [...s])]) {
      if (w.live ? Math.max(w.from, a) < b - 1 : w.firstSeen !== undefined) this.end(w, gone)
    }
  }

  private async catchUp(w: Watcher): Promise<void> {
    try {
      const floor = await this.src.floor()
      if (w.from < floor) {
        return this.end(w, new StoreError('gone', `revision ${w.from} is older than the oldest kept (${floor})`))
      }
      const last = await this.replay(w)
      if (last === undefined || w.ended) return
      if (w.firstSeen !== undefined && last < w.firstSeen - 1) {
        return this.end(w, new StoreError('gone', `events after revision ${last} are no longer available`))
      }
      for (const ev of w.buffer) {
        if (ev.revision > last) this.deliver(w, ev)
        if (w.ended) return
      }
      // From here the hub delivers directly; skip what replay already sent.
      w.from = Math.max(last, this.lastRev, w.from)
      w.buffer = []
      w.live = true
      this.catching.delete(w)
    } catch (err) {
      this.end(w, new StoreError('unavailable', `watch catch-up failed: ${(err as Error).message}`))
    }
  }

  /**
   * Deliver stored events after w.from until the live buffer takes over.
   * Returns the revision of the last stream entry read, or undefined if the
   * watcher ended.
   */
  private async replay(w: Watcher): Promise<number | undefined> {
    let last = w.from
    for (;;) {
      if (w.firstSeen !== undefined && last >= w.firstSeen - 1) return last
      const page = await this.src.range(last + 1, PAGE)
      if (w.ended) return undefined
      if (page.length === 0) return last
      if (revisionOf(page[0]![0]) !== last + 1) {
        this.end(w, new StoreError('gone', `events after revision ${last} are no longer available`))
        return undefined
      }
      const pending = this.src.cover(revisionOf(page[page.length - 1]![0]))
      if (pending) await pending
      for (const [id, fields] of page) {
        if (w.resource === undefined || resourceOf(fields) === w.resource) this.deliver(w, this.src.decode(id, fields))
        if (w.ended) return undefined
        last = revisionOf(id)
      }
      if (page.length < PAGE) return last
    }
  }
}
