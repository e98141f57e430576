// Garbage collection through ownerReferences, and namespace termination,
// without finalizers on the owners: kubectl's `propagationPolicy` is honoured
// by deleting dependents after the owner (Background), before it
// (Foreground), or by removing the owner reference (Orphan). A periodic sweep
// repairs anything a crash left behind: dependents whose owners are all gone,
// and namespaces still Terminating.

import { lookupKind, resources, type ResourceInfo } from '../api/resources.ts'
import { isApiError } from '../api/errors.ts'
import { clone, type KubeObject } from '../api/types.ts'
import type { Registry } from './registry.ts'
import type { Logger } from '../../lib/log.ts'

const namespaced = resources.filter((r) => r.namespaced)
const nsInfo = resources.find((r) => r.resource === 'namespaces')!

export class GarbageCollector {
  #registry: Registry
  #log: Logger
  #sweepMs: number
  #timer?: NodeJS.Timeout
  #running = new Set<string>()
  #pending = new Set<Promise<void>>()
  #namespaceDelayMs: number

  constructor(opts: { registry: Registry; logger: Logger; sweepIntervalMs?: number; namespaceDelayMs?: number }) {
    this.#namespaceDelayMs = opts.namespaceDelayMs ?? 2000
    this.#registry = opts.registry
    this.#log = opts.logger
    this.#sweepMs = opts.sweepIntervalMs ?? 30_000
  }

  start(): void {
    this.#registry.hooks = {
      beforeDelete: (info, obj, policy) => this.#dependents(info, obj, policy),
      afterDelete: (info, obj, policy) => this.#track(policy === 'Namespace' ? this.terminateNamespace(obj.metadata.name!) : this.#dependents(info, obj, policy)),
    }
    this.#timer = setInterval(() => this.#track(this.sweep()), this.#sweepMs)
    this.#timer.unref()
    this.#track(this.sweep())
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await Promise.allSettled([...this.#pending])
  }

  #track(p: Promise<void>): void {
    const q = p.catch((e) => this.#log.warn({ err: (e as Error).message }, 'garbage collection step failed; the sweep retries'))
    this.#pending.add(q)
    void q.finally(() => this.#pending.delete(q))
  }

  /** Delete (or orphan) everything that names `owner` in its ownerReferences. */
  async #dependents(info: ResourceInfo, owner: KubeObject, policy: string): Promise<void> {
    const uid = owner.metadata.uid
    const candidates = info.namespaced ? namespaced : resources
    for (const r of candidates) {
      const { items } = await this.#registry.list(r, owner.metadata.namespace)
      for (const dep of items) {
        if (!(dep.metadata.ownerReferences ?? []).some((o) => o.uid === uid)) continue
        if (policy === 'Orphan') await this.#orphan(r, dep, uid!)
        else await this.#deleteQuietly(r, dep, policy === 'Foreground' ? 'Foreground' : 'Background')
      }
    }
  }

  async #orphan(info: ResourceInfo, dep: KubeObject, uid: string): Promise<void> {
    const next = clone(dep)
    next.metadata.ownerReferences = (next.metadata.ownerReferences ?? []).filter((o) => o.uid !== uid)
    if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences
    try {
      await this.#registry.updateFrom(info, dep, next)
    } catch (e) {
      if (!isApiError(e, 'NotFound')) throw e
    }
  }

  async #deleteQuietly(info: ResourceInfo, obj: KubeObject, policy: 'Background' | 'Foreground'): Promise<void> {
    try {
      await this.#registry.delete(info, obj.metadata.namespace, obj.metadata.name!, { propagationPolicy: policy })
    } catch (e) {
      if (!isApiError(e, 'NotFound') && !isApiError(e, 'Conflict')) throw e
    }
  }

  /** Delete everything in a Terminating namespace, then the namespace itself. */
  async terminateNamespace(name: string): Promise<void> {
    if (this.#running.has(name)) return
    this.#running.add(name)
    try {
      // A client that deletes a namespace and its contents in one go (kubectl
      // delete -f with the Namespace first) should find them still there.
      await new Promise((res) => setTimeout(res, this.#namespaceDelayMs))
      for (let round = 0; ; round++) {
        let left = 0
        for (const r of namespaced) {
          const { items } = await this.#registry.list(r, name)
          left += items.length
          for (const obj of items) if (!obj.metadata.deletionTimestamp) await this.#deleteQuietly(r, obj, 'Background')
        }
        if (left === 0) break
        await new Promise((res) => setTimeout(res, Math.min(2000, 100 * 2 ** round)))
      }
      const ns = await this.#registry.get(nsInfo, undefined, name).catch(() => undefined)
      if (ns?.metadata.deletionTimestamp) await this.#registry.finalize(nsInfo, ns)
      this.#log.info({ namespace: name }, 'namespace deleted')
    } finally {
      this.#running.delete(name)
    }
  }

  /** Repair: remove dependents whose owners are all gone; finish Terminating namespaces. */
  async sweep(): Promise<void> {
    const all: Array<[ResourceInfo, KubeObject]> = []
    for (const r of resources) for (const o of (await this.#registry.list(r, undefined)).items) all.push([r, o])
    const uids = new Set(all.map(([, o]) => o.metadata.uid))
    for (const [r, o] of all) {
      if (r.resource === 'namespaces' && o.metadata.deletionTimestamp) this.#track(this.terminateNamespace(o.metadata.name!))
      const owners = o.metadata.ownerReferences ?? []
      if (owners.length > 0 && owners.every((ref) => !uids.has(ref.uid)) && !(await this.#anyOwnerExists(o))) {
        await this.#deleteQuietly(r, o, 'Background')
      }
    }
  }

  /** A fresh look at each owner: the sweep's snapshot may predate an owner created since. */
  async #anyOwnerExists(o: KubeObject): Promise<boolean> {
    for (const ref of o.metadata.ownerReferences ?? []) {
      const info = lookupKind(ref.apiVersion, ref.kind)
      if (!info) continue
      const owner = await this.#registry.get(info, info.namespaced ? o.metadata.namespace : undefined, ref.name).catch(() => undefined)
      if (owner?.metadata.uid === ref.uid) return true
    }
    return false
  }
}
