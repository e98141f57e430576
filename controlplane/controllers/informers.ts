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
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const ns = obj.metadata.namespace ?? 'default'
    const ev = {
      // client-go's naming: <object>.<unix nanoseconds in hex> (a generateName may not end in '.')
      metadata: { name: `${obj.metadata.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.#seq++ % 1_000_000)).toString(16)}`, namespace: ns },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      source: { component: this.#component },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      reportingComponent: this.#component,
    }
    this.#client.create(eventsInfo, ns, ev).catch((e) => this.#log.debug({ err: (e as Error).message, reason }, 'event not recorded'))
  }
}
