// PodSync: keeps the pods bound to this node running on the local Docker.
//  - An informer on pods with fieldSelector spec.nodeName=<node> and a Docker
//    event stream (container died) only enqueue `namespace/name` keys.
//  - One WorkQueue; a key is never synced twice at once, so every step for a
//    pod is serialized. The worker reads Docker by labels, removes containers
//    of other UIDs with that name (the pod was deleted and recreated, or moved
//    away), then syncs or terminates the pod (worker.ts).
//  - Housekeeping at start and every 30 s enqueues every pod that still has
//    containers here, and removes volume directories of pods that are gone:
//    containers left by a stopped agent are adopted (same UID) or removed.

import type Dockerode from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { Informer, keyFor } from '../../controlplane/client/informer.ts'
import { WorkQueue } from '../../controlplane/client/workqueue.ts'
import type { Logger } from '../../lib/log.ts'
import { labels } from '../labels.ts'
import { PodWorker, type PodWorkerOptions } from './worker.ts'
import { DockerRuntime } from './runtime.ts'
import { terminateContainers } from './terminate.ts'
import type { ActualContainer } from './types.ts'

const podsInfo = lookupResource('', 'v1', 'pods')!

export interface PodSyncOptions extends Omit<PodWorkerOptions, 'requeue' | 'runtime'> {
  docker: Dockerode
  /** Informer resync: every pod is synced again this often (ConfigMap/Secret refresh, drift). */
  resyncMs?: number
  housekeepingMs?: number
  workers?: number
  /** Where the logs of removed containers go (../pod-log-store.ts); none: not kept. */
  podLogs?: { archive(id: string): Promise<void> }
}

/** Only spec, metadata or deletion changes need a sync; status-only updates are our own writes. */
export function needsSync(oldPod: KubeObject, newPod: KubeObject): boolean {
  if (oldPod === newPod) return true // periodic resync
  const { status: _a, metadata: ma, ...restA } = oldPod
  const { status: _b, metadata: mb, ...restB } = newPod
  const meta = (m: any) => JSON.stringify({ ...m, resourceVersion: undefined, managedFields: undefined })
  return meta(ma) !== meta(mb) || JSON.stringify(restA) !== JSON.stringify(restB)
}

export class PodSync {
  readonly runtime: DockerRuntime
  readonly worker: PodWorker
  #o: PodSyncOptions
  #informer: Informer
  #queue: WorkQueue
  #log: Logger
  #stopped = false
  #events?: NodeJS.ReadableStream
  #timers: NodeJS.Timeout[] = []
  #inflight = new Set<Promise<void>>()

  constructor(opts: PodSyncOptions) {
    this.#o = opts
    this.#log = opts.logger
    const podLogs = opts.podLogs
    this.runtime = new DockerRuntime({ docker: opts.docker, nodeName: opts.nodeName, network: opts.network, logger: opts.logger, beforeRemove: podLogs && ((id) => podLogs.archive(id)) })
    this.worker = new PodWorker({ ...opts, runtime: this.runtime, requeue: (key, ms) => this.#queue.addAfter(key, ms) })
    this.#informer = new Informer({ client: opts.client, info: podsInfo, logger: opts.logger, fieldSelector: `spec.nodeName=${opts.nodeName}`, resyncMs: opts.resyncMs ?? 10_000 })
    this.#queue = new WorkQueue({ name: `pods-${opts.nodeName}`, logger: opts.logger, workers: opts.workers ?? 8, baseDelayMs: 500, maxDelayMs: 30_000 })
  }

  /** Sync a pod soon (probe results, external triggers). */
  enqueue(key: string): void {
    this.#queue.add(key)
  }

  get informer(): Informer {
    return this.#informer
  }

  async start(): Promise<void> {
    const add = (p: KubeObject) => this.#queue.add(keyFor(p))
    this.#informer.addHandlers({ onAdd: add, onDelete: add, onUpdate: (o, n) => needsSync(o, n) && add(n) })
    await this.#informer.start()
    await this.#removeGone()
    this.#queue.start((key) => this.#track(this.#syncKey(key)))
    await this.#housekeep()
    void this.#watchDocker()
    const t = setInterval(() => void this.#housekeep().catch((e) => this.#log.warn({ err: (e as Error).message }, 'housekeeping failed')), this.#o.housekeepingMs ?? 30_000)
    t.unref()
    this.#timers.push(t)
  }

  /** Stop syncing; pods keep running unless removePods. Waits (bounded) for syncs in flight. */
  async stop(opts: { removePods?: boolean } = {}): Promise<void> {
    this.#stopped = true
    this.#informer.stop()
    this.#queue.stop()
    this.#o.probes.stop()
    for (const t of this.#timers) clearInterval(t)
    ;(this.#events as { destroy?: () => void } | undefined)?.destroy?.()
    await Promise.race([Promise.allSettled([...this.#inflight]), new Promise((r) => setTimeout(r, 30_000).unref())])
    if (opts.removePods) await this.removeAll()
  }

  /** Remove every container of this node and every pod directory (agent stop with removePods). */
  async removeAll(): Promise<void> {
    const all = await this.runtime.listAll()
    await Promise.all(all.map((c) => this.runtime.remove(c.id, { archive: false })))
    for (const uid of await this.#o.volumes.knownUids()) await this.#o.volumes.tearDown(uid)
  }

  async #track(p: Promise<void>): Promise<void> {
    this.#inflight.add(p)
    try {
      await p
    } finally {
      this.#inflight.delete(p)
    }
  }

  async #syncKey(key: string): Promise<void> {
    if (this.#stopped) return
    const [ns, name] = key.split('/') as [string, string]
    const pod = this.#informer.get(key)
    const mine = pod?.spec?.nodeName === this.#o.nodeName ? pod : undefined
    const all = await this.runtime.listPod(ns, name)
    const own = all.filter((c) => c.podUid === mine?.metadata.uid)
    const stale = all.filter((c) => c.podUid !== mine?.metadata.uid)
    if (stale.length) await this.#removeStale(key, stale)
    if (!mine) {
      this.#o.probes.forget(key)
      return
    }
    if (mine.metadata.deletionTimestamp) return await this.worker.terminate(mine, own)
    await this.worker.sync(key, mine, own)
  }

  /** Containers of a pod that is gone (or another UID of that name): short grace, then removed with the volumes. */
  async #removeStale(key: string, stale: ActualContainer[]): Promise<void> {
    this.#log.info({ pod: key, containers: stale.length }, 'removing containers of a pod that is no longer here')
    this.#o.probes.forget(key)
    for (const uid of new Set(stale.map((c) => c.podUid))) {
      const list = stale.filter((c) => c.podUid === uid)
      const ips = [...new Set(list.filter((c) => c.role === 'sandbox' && c.ip).map((c) => c.ip!))]
      const pseudo: KubeObject = { metadata: { name: key, uid }, status: { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } }
      // An orphan (its pod deleted while this node was cut off) may still be an endpoint in this node's own stale rules:
      // like any terminating pod it stops only once every serving node, this one included, has withdrawn it.
      if (this.#o.withdrawal && ips.length && list.some((c) => c.state === 'running' && c.role !== 'sandbox')) {
        const w = await this.#o.withdrawal.waitFor(pseudo, 30_000)
        this.#log.debug({ pod: key, outcome: w.outcome, waitedMs: Math.round(w.waitedMs) }, 'endpoint withdrawal before removing a pod that is gone')
      }
      await terminateContainers(pseudo, list, 2, { runtime: this.runtime, logger: this.#log })
      await this.#o.volumes.tearDown(uid)
      this.worker.forget(uid)
    }
  }

  /**
   * Before any pod starts: remove the containers of pods that are no longer
   * bound here (deleted or replaced while this agent was away), and wait for
   * it, so start() resolves with no stale container left (the agent reports
   * Ready after this). The queue is not running yet: nothing else touches them.
   */
  async #removeGone(): Promise<void> {
    // A pod being deleted counts as gone: one evicted while this node was off (Terminating, waiting for its
    // kubelet) is terminated here, with its grace period and final DELETE, before the node reports Ready.
    const live = new Set(this.#informer.list().filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.uid!))
    const keys = new Set((await this.runtime.listAll()).filter((c) => !live.has(c.uid)).map((c) => `${c.namespace}/${c.name}`))
    if (keys.size) this.#log.info({ pods: keys.size }, 'removing containers of pods that are gone before starting any pod')
    await Promise.all([...keys].map((key) => this.#syncKey(key)))
  }

  async #housekeep(): Promise<void> {
    if (this.#stopped) return
    const listed = await this.runtime.listAll()
    const live = new Set(this.#informer.list().map((p) => p.metadata.uid!))
    for (const c of listed) if (!live.has(c.uid)) this.#queue.add(`${c.namespace}/${c.name}`)
    const withContainers = new Set(listed.map((c) => c.uid))
    for (const uid of await this.#o.volumes.knownUids()) {
      if (!live.has(uid) && !withContainers.has(uid)) await this.#o.volumes.tearDown(uid)
    }
  }

  /** Docker events: a container that died is synced at once (restart, status). Resubscribes until stopped. */
  async #watchDocker(): Promise<void> {
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        const stream = await this.#o.docker.getEvents({ filters: { type: ['container'], event: ['die', 'oom'], label: [`${labels.node}=${this.#o.nodeName}`] } })
        this.#events = stream
        attempt = 0
        await this.#readEvents(stream)
      } catch (e) {
        this.#log.warn({ err: (e as Error).message }, 'docker event stream failed')
      }
      if (this.#stopped) return
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)).unref())
    }
  }

  async #readEvents(stream: NodeJS.ReadableStream): Promise<void> {
    let buf = ''
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8')
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim()
        buf = buf.slice(i + 1)
        if (!line) continue
        try {
          const attrs = JSON.parse(line)?.Actor?.Attributes ?? {}
          if (attrs[labels.podNamespace] && attrs[labels.podName]) this.#queue.add(`${attrs[labels.podNamespace]}/${attrs[labels.podName]}`)
        } catch {
          /* a partial or foreign line */
        }
      }
    })
    await new Promise<void>((resolve) => {
      stream.on('end', resolve)
      stream.on('close', resolve)
      stream.on('error', resolve)
    })
  }
}
