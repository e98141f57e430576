// Shared informers (one list+watch per resource for every controller in the
// process) and the Event recorder.

import { lookupResource, qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { ApiClient } from '../client/client.ts'
import { Informer } from '../client/informer.ts'
import { CorrelatingEventRecorder } from '../client/event-recorder.ts'
import type { Logger } from '../../lib/log.ts'
import type { EventRecorder, InformerFactory } from './types.ts'

export class SharedInformers implements InformerFactory {
  #client: ApiClient
  #log: Logger
  #informers = new Map<string, Informer<any>>()
  #started = new Set<string>()

  constructor(opts: { client: ApiClient; logger: Logger }) {
    this.#client = opts.client
    this.#log = opts.logger
  }

  for<T extends KubeObject = KubeObject>(info: ResourceInfo): Informer<T> {
    const key = qualifiedResource(info)
    let inf = this.#informers.get(key)
    if (!inf) {
      inf = new Informer<T>({ client: this.#client, info, logger: this.#log, resyncMs: 60_000 })
      this.#informers.set(key, inf)
    }
    return inf as Informer<T>
  }

  async start(): Promise<void> {
    const pending = [...this.#informers].filter(([k]) => !this.#started.has(k))
    for (const [k] of pending) this.#started.add(k)
    await Promise.all(pending.map(([, inf]) => inf.start()))
  }

  stop(): void {
    for (const inf of this.#informers.values()) inf.stop()
    this.#started.clear()
  }
}

const eventsInfo = lookupResource('', 'v1', 'events')!

/** A core/v1 Event about `obj`, counted once, stamped now (seconds, as kubectl shows them). */
export function eventObject(obj: KubeObject, e: { name: string; type: 'Normal' | 'Warning'; reason: string; message: string; component: string }): KubeObject {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  return {
    metadata: { name: e.name, namespace: obj.metadata.namespace ?? 'default' },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
    },
    reason: e.reason,
    message: e.message,
    type: e.type,
    source: { component: e.component },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    reportingComponent: e.component,
  }
}

/** Events from a controller (source.component = its name), correlated and aggregated as client-go's recorder. */
export class ApiEventRecorder extends CorrelatingEventRecorder implements EventRecorder {
  constructor(opts: { client: ApiClient; logger: Logger; component: string; concurrency?: number }) {
    super({ client: opts.client, logger: opts.logger, source: { component: opts.component }, concurrency: opts.concurrency })
  }
}
