// The event correlator: what client-go's record.EventCorrelator decides
// before an Event reaches the API, as pure state plus a clock passed in.
//   1. aggregate: events that differ only in their message (same source,
//      object, type, reason) are counted per 10 minutes; from the 10th
//      distinct message on they become one Event "(combined from similar
//      events): <message>" keyed by the group, not the message;
//   2. observe: an event seen before under the same key is the SAME Event
//      object again: its name and firstTimestamp are kept, count is +1 and
//      the recorder PATCHes count, lastTimestamp and message;
//   3. spam filter: a token bucket per source+object (burst 25, one more
//      every 5 minutes); an event without a token is dropped (its count
//      still grew, so the next patch shows the true total).
// The caches are LRUs of 4096 entries, as client-go's.

export interface EventSource {
  component: string
  host?: string
}

/** The fields of a core/v1 Event the correlator reads and writes. */
export interface CoreEvent {
  metadata: { name: string; namespace: string; resourceVersion?: string }
  involvedObject: { kind?: string; namespace?: string; name?: string; fieldPath?: string; uid?: string; apiVersion?: string; resourceVersion?: string }
  reason: string
  message: string
  type: 'Normal' | 'Warning'
  source: EventSource
  reportingComponent?: string
  reportingInstance?: string
  firstTimestamp: string
  lastTimestamp: string
  count: number
  [k: string]: unknown
}

export interface CorrelatorOptions {
  /** Distinct messages per group and interval before they are combined (client-go: 10). */
  maxEvents: number
  /** The aggregation window (client-go: 600 s). */
  maxIntervalMs: number
  /** Events per source+object at once (client-go: 25). */
  burst: number
  /** Token refill per second (client-go: 1/300). */
  qps: number
  /** Entries per cache (client-go: 4096). */
  cacheSize: number
}

export const defaultCorrelatorOptions: CorrelatorOptions = { maxEvents: 10, maxIntervalMs: 600_000, burst: 25, qps: 1 / 300, cacheSize: 4096 }

export type Correlation =
  | { action: 'create'; event: CoreEvent }
  | { action: 'patch'; event: CoreEvent; patch: { count: number; lastTimestamp: string; message: string } }
  | { action: 'skip'; event: CoreEvent }

const sep = '\u0000'

/** One Event per key: source, object (with fieldPath), type, reason and message. */
export function eventKey(e: CoreEvent): string {
  const o = e.involvedObject
  return [e.source.component, e.source.host, o.kind, o.namespace, o.name, o.fieldPath, o.uid, o.apiVersion, e.type, e.reason, e.message].map((x) => x ?? '').join(sep)
}

/** The rate limit's key: source and object. */
export function spamKey(e: CoreEvent): string {
  const o = e.involvedObject
  return [e.source.component, e.source.host, o.kind, o.namespace, o.name, o.uid, o.apiVersion].map((x) => x ?? '').join(sep)
}

/** Similar events: everything in eventKey but the message (and fieldPath), plus the reporting controller. */
export function aggregateKey(e: CoreEvent): string {
  const o = e.involvedObject
  return [e.source.component, e.source.host, o.kind, o.namespace, o.name, o.uid, o.apiVersion, e.type, e.reason, e.reportingComponent, e.reportingInstance].map((x) => x ?? '').join(sep)
}

export const combinedPrefix = '(combined from similar events): '

/** An LRU on a Map's insertion order. */
class Lru<V> {
  #m = new Map<string, V>()
  readonly size: number
  constructor(size: number) {
    this.size = size
  }
  get(k: string): V | undefined {
    const v = this.#m.get(k)
    if (v !== undefined) {
      this.#m.delete(k)
      this.#m.set(k, v)
    }
    return v
  }
  set(k: string, v: V): void {
    this.#m.delete(k)
    this.#m.set(k, v)
    if (this.#m.size > this.size) this.#m.delete(this.#m.keys().next().value!)
  }
}

interface Aggregate { messages: Set<string>; lastMs: number }
interface Observation { count: number; firstTimestamp: string; name: string; resourceVersion?: string }
interface Bucket { tokens: number; atMs: number }

export class EventCorrelator {
  readonly #o: CorrelatorOptions
  readonly #aggregates: Lru<Aggregate>
  readonly #observed: Lru<Observation>
  readonly #buckets: Lru<Bucket>

  constructor(opts: Partial<CorrelatorOptions> = {}) {
    this.#o = { ...defaultCorrelatorOptions, ...opts }
    this.#aggregates = new Lru(this.#o.cacheSize)
    this.#observed = new Lru(this.#o.cacheSize)
    this.#buckets = new Lru(this.#o.cacheSize)
  }

  /** What to do with a new event (count 1, fresh name) at `nowMs` (monotonic or wall: only differences are used). */
  correlate(ev: CoreEvent, nowMs: number): Correlation {
    const { event: agg, key } = this.#aggregate(ev, nowMs)
    const seen = this.#observed.get(key)
    const event: CoreEvent = seen
      ? { ...agg, metadata: { ...agg.metadata, name: seen.name, ...(seen.resourceVersion ? { resourceVersion: seen.resourceVersion } : {}) }, firstTimestamp: seen.firstTimestamp, count: seen.count + 1 }
      : agg
    this.#observed.set(key, { count: event.count, firstTimestamp: event.firstTimestamp, name: event.metadata.name, resourceVersion: event.metadata.resourceVersion })
    if (!this.#take(spamKey(event), nowMs)) return { action: 'skip', event }
    if (!seen) return { action: 'create', event }
    return { action: 'patch', event, patch: { count: event.count, lastTimestamp: event.lastTimestamp, message: event.message } }
  }

  /** The server's answer to a create or patch: its name, count and resourceVersion are the truth from now on. */
  update(written: CoreEvent): void {
    this.#observed.set(eventKey(written), { count: written.count ?? 1, firstTimestamp: written.firstTimestamp, name: written.metadata.name, resourceVersion: written.metadata.resourceVersion })
  }

  #aggregate(ev: CoreEvent, nowMs: number): { event: CoreEvent; key: string } {
    const group = aggregateKey(ev)
    let rec = this.#aggregates.get(group)
    if (!rec || nowMs - rec.lastMs > this.#o.maxIntervalMs) rec = { messages: new Set(), lastMs: nowMs }
    rec.messages.add(ev.message)
    rec.lastMs = nowMs
    this.#aggregates.set(group, rec)
    if (rec.messages.size < this.#o.maxEvents) return { event: ev, key: eventKey(ev) }
    // Keep the set at its ceiling, as client-go pops one.
    rec.messages.delete(rec.messages.values().next().value!)
    const event: CoreEvent = {
      ...ev,
      metadata: { name: ev.metadata.name, namespace: ev.metadata.namespace },
      message: combinedPrefix + ev.message,
      count: 1,
      firstTimestamp: ev.lastTimestamp,
    }
    return { event, key: group }
  }

  #take(key: string, nowMs: number): boolean {
    const b = this.#buckets.get(key) ?? { tokens: this.#o.burst, atMs: nowMs }
    const tokens = Math.min(this.#o.burst, b.tokens + (Math.max(0, nowMs - b.atMs) / 1000) * this.#o.qps)
    const ok = tokens >= 1
    this.#buckets.set(key, { tokens: ok ? tokens - 1 : tokens, atMs: nowMs })
    return ok
  }
}
