// Recording Events the way client-go's record package does: each event goes
// through the correlator (event-correlator.ts), then to the API, one at a
// time in order: a new one is created; a repeat PATCHes the existing
// Event's count, lastTimestamp and message; a patch that finds the Event
// gone (deleted by TTL or by hand) creates it again. The server's answer
// updates the correlator. A bounded queue (client-go: 1000) drops what
// does not fit. Never throws: events are best effort.
// With `concurrency` > 1 (a scheduler: one Event per pod bound, hundreds a
// second) the queue is split into that many lanes written in parallel; an
// object's events always take the same lane, so everything the correlator
// relates (same object, reason, type) is still written one at a time in order.

import { randomBytes } from 'node:crypto'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { Logger } from '../../lib/log.ts'
import { ApiClientError, type ApiClient } from './client.ts'
import { EventCorrelator, type CoreEvent, type CorrelatorOptions, type EventSource } from './event-correlator.ts'

const eventsInfo = lookupResource('', 'v1', 'events')!
const queueLimit = 1000

export interface RecorderOptions {
  client: ApiClient
  logger: Logger
  /** source.component and reportingComponent; source.host for the kubelet. */
  source: EventSource
  reportingInstance?: string
  correlator?: Partial<CorrelatorOptions>
  /** Wall clock for timestamps (tests). */
  now?: () => Date
  /** Writes in flight at most (lanes by involved object); default 1. */
  concurrency?: number
}

/** Seconds precision, as the API stores and kubectl shows Event timestamps. */
export function eventTimestamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z')
}

/** A fresh core/v1 Event about `obj` (count 1, client-go's name: <object>.<hex>). */
export function newEvent(obj: KubeObject, e: { type: 'Normal' | 'Warning'; reason: string; message: string; source: EventSource; reportingInstance?: string; at: Date; fieldPath?: string }): CoreEvent {
  const ts = eventTimestamp(e.at)
  const ns = obj.metadata.namespace ?? 'default'
  const unique = (BigInt(e.at.getTime()) * 1_000_000n + BigInt(randomBytes(3).readUIntBE(0, 3) % 1_000_000)).toString(16)
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${obj.metadata.name}.${unique}`, namespace: ns },
    involvedObject: {
      apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace,
      uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion, ...(e.fieldPath ? { fieldPath: e.fieldPath } : {}),
    },
    reason: e.reason,
    message: e.message,
    type: e.type,
    source: e.source.host ? { component: e.source.component, host: e.source.host } : { component: e.source.component },
    reportingComponent: e.source.component,
    ...(e.reportingInstance ? { reportingInstance: e.reportingInstance } : {}),
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  }
}

/** The lane of an object's events: a hash of its namespace and name (FNV-1a), the same for every event about it. */
export function laneOf(obj: KubeObject, lanes: number): number {
  if (lanes <= 1) return 0
  const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return (h >>> 0) % lanes
}

export class CorrelatingEventRecorder {
  readonly #o: RecorderOptions
  readonly #correlator: EventCorrelator
  #lanes: CoreEvent[][]
  #draining: boolean[]
  #queued = 0

  constructor(opts: RecorderOptions) {
    this.#o = opts
    this.#correlator = new EventCorrelator(opts.correlator)
    const n = Math.max(1, Math.floor(opts.concurrency ?? 1))
    this.#lanes = Array.from({ length: n }, () => [])
    this.#draining = Array.from({ length: n }, () => false)
  }

  /** `ref.fieldPath` names a part of the object (the kubelet's `spec.containers{NAME}`). */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, ref?: { fieldPath?: string }): void {
    if (this.#queued >= queueLimit) return this.#o.logger.debug({ reason }, 'event queue full; event dropped')
    const at = (this.#o.now ?? (() => new Date()))()
    const lane = laneOf(obj, this.#lanes.length)
    this.#lanes[lane]!.push(newEvent(obj, { type, reason, message, source: this.#o.source, reportingInstance: this.#o.reportingInstance, at, fieldPath: ref?.fieldPath }))
    this.#queued++
    if (!this.#draining[lane]) void this.#drain(lane)
  }

  async #drain(lane: number): Promise<void> {
    this.#draining[lane] = true
    const q = this.#lanes[lane]!
    try {
      for (let ev = q.shift(); ev; ev = q.shift()) {
        this.#queued--
        await this.#record(ev)
      }
    } finally {
      this.#draining[lane] = false
    }
  }

  async #record(ev: CoreEvent): Promise<void> {
    // Correlated here, in write order, so the server's answers and the cache never cross.
    const c = this.#correlator.correlate(ev, performance.now())
    if (c.action === 'skip') return
    const ns = c.event.metadata.namespace
    try {
      let written: KubeObject | undefined
      if (c.action === 'patch') {
        try {
          written = await this.#o.client.patch(eventsInfo, ns, c.event.metadata.name, c.patch, 'application/merge-patch+json')
        } catch (e) {
          if (!(e instanceof ApiClientError && e.status === 404)) throw e
        }
      }
      if (!written) {
        const { resourceVersion: _, ...metadata } = c.event.metadata
        written = await this.#o.client.create(eventsInfo, ns, { ...c.event, metadata })
      }
      this.#correlator.update(written as unknown as CoreEvent)
    } catch (e) {
      this.#o.logger.debug({ err: (e as Error).message, reason: ev.reason }, 'event not recorded')
    }
  }
}
