// Events about pods, as the kubelet records them (source component
// `kubelet`, host = node). The same reason and message for the same pod is
// recorded at most once a minute, so a pod retried every few seconds (a
// missing ConfigMap, an image that cannot be pulled) does not flood the API.
// Never throws: events are best effort.

import { randomBytes } from 'node:crypto'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import type { Logger } from '../lib/log.ts'

const eventsInfo = lookupResource('', 'v1', 'events')!

export class NodeEventRecorder {
  #o: { client: ApiClient; logger: Logger; nodeName: string; dedupeMs: number }
  #recent = new Map<string, number>()

  constructor(opts: { client: ApiClient; logger: Logger; nodeName: string; dedupeMs?: number }) {
    this.#o = { dedupeMs: 60_000, ...opts }
  }

  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    // The dedupe window on the monotonic clock (a wall-clock step back must not mute events); the stamp on the wall clock.
    const now = performance.now()
    const key = `${obj.metadata.uid}\0${reason}\0${message}`
    if (now - (this.#recent.get(key) ?? -Infinity) < this.#o.dedupeMs) return
    this.#recent.set(key, now)
    if (this.#recent.size > 5_000) for (const [k, at] of this.#recent) if (now - at >= this.#o.dedupeMs) this.#recent.delete(k)
    const ts = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const ns = obj.metadata.namespace ?? 'default'
    const ev = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
      involvedObject: { apiVersion: 'v1', kind: obj.kind ?? 'Pod', name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
      reason,
      message,
      type,
      source: { component: 'kubelet', host: this.#o.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.#o.nodeName,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    }
    this.#o.client.create(eventsInfo, ns, ev).catch((e) => this.#o.logger.debug({ err: (e as Error).message, reason }, 'event not recorded'))
  }
}
