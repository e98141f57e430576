// Recording Events the way client-go's record package does: each event goes
// through the correlator (event-correlator.ts), then to the API, one at a
// time in order: a new one is created; a repeat PATCHes the existing
// Event's count, lastTimestamp and message; a patch that finds the Event
// gone (deleted by TTL or by hand) creates it again. The server's answer
// updates the correlator. A bounded queue (client-go: 1000) drops what
// does not fit. Never throws: events are best effort.

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

export class CorrelatingEventRecorder {
  readonly #o: RecorderOptions
  readonly #correlator: EventCorrelator
  #queue: CoreEvent[] = []
  #draining = false

  constructor(opts: RecorderOptions) {
    this.#o = opts
    this.#correlator = new EventCorrelator(opts.correlator)
  }

  /** `ref.fieldPath` names a part of the object (the kubelet's `spec.containers{NAME}`). */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, ref?: { fieldPath?: string }): void {
    if (this.#queue.length >= queueLimit) return this.#o.logger.debug({ reason }, 'event queue full; event dropped')
    const at = (this.#o.now ?? (() => new Date()))()
    this.#queue.push(newEvent(obj, { type, reason, message, source: this.#o.source, reportingInstance: this.#o.reportingInstance, at, fieldPath: ref?.fieldPath }))
    if (!this.#draining) void this.#drain()
  }

  async #drain(): Promise<void> {
    this.#draining = true
    try {
      for (let ev = this.#queue.shift(); ev; ev = this.#queue.shift()) await this.#record(ev)
    } finally {
      this.#draining = false
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
