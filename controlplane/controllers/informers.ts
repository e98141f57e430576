// Shared informers (one list+watch per resource for every controller in the
// process) and the Event recorder.

import { lookupResource, qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import type { ApiClient } from '../client/client.ts'
import { Informer } from '../client/informer.ts'
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

export class ApiEventRecorder implements EventRecorder {
  #client: ApiClient
  #log: Logger
  #component: string
  #seq = 0

  constructor(opts: { client: ApiClient; logger: Logger; component: string }) {
    this.#client = opts.client
    this.#log = opts.logger
    this.#component = opts.component
  }

  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const ns = obj.metadata.namespace ?? 'default'
    // client-go's naming: <object>.<unix nanoseconds in hex> (a generateName may not end in '.')
    const name = `${obj.metadata.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.#seq++ % 1_000_000)).toString(16)}`
    const ev = eventObject(obj, { name, type, reason, message, component: this.#component })
    this.#client.create(eventsInfo, ns, ev).catch((e) => this.#log.debug({ err: (e as Error).message, reason }, 'event not recorded'))
  }
}
