// Garbage collection through ownerReferences, and namespace termination, as
// Kubernetes' garbage collector does it:
//  - Background: the owner goes at once; afterwards its dependents are
//    deleted (a dependent that still has a live owner only loses the
//    reference to the one that went).
//  - Foreground: the owner is marked (deletionTimestamp) with the
//    `foregroundDeletion` finalizer; the collector deletes its dependents
//    (in the foreground too, so grandchildren go first) and removes the
//    finalizer once no dependent with `blockOwnerDeletion` is left, which
//    completes the owner's deletion. Controllers leave marked objects alone,
//    so nothing is recreated meanwhile.
//  - Orphan: the owner is marked with the `orphan` finalizer; the collector
//    removes the owner reference from every dependent, then the finalizer.
// The collector runs in every apiserver: the request that marks or deletes
// an object triggers it, and a periodic sweep repairs anything a crash left
// behind (dependents whose owners are all gone, marked objects, namespaces
// still Terminating). Steps are idempotent; a conflict is retried.

import { lookupKind, resources, storedResources, type ResourceInfo } from '../api/resources.ts'
import { isApiError } from '../api/errors.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { gcFinalizers, type Registry } from './registry.ts'
import type { Logger } from '../../lib/log.ts'

const namespaced = storedResources.filter((r) => r.namespaced)
const nsInfo = resources.find((r) => r.resource === 'namespaces')!
const podInfo = resources.find((r) => r.resource === 'pods')!

type Owned = { info: ResourceInfo; obj: KubeObject }

const keyOf = (info: ResourceInfo, ns: string | undefined, name: string) => `${info.resource}.${info.group}/${ns ?? ''}/${name}`
const refersTo = (dep: KubeObject, uid: string | undefined) => (dep.metadata.ownerReferences ?? []).some((o) => o.uid === uid)
const blocks = (dep: KubeObject, uid: string | undefined) => (dep.metadata.ownerReferences ?? []).some((o) => o.uid === uid && o.blockOwnerDeletion === true)

export class GarbageCollector {
  #registry: Registry
  #log: Logger
  #sweepMs: number
  #timer?: NodeJS.Timeout
  #running = new Set<string>()
  #pending = new Set<Promise<void>>()
  #namespaceDelayMs: number
  /** Marked owners being processed; a key here again while running is processed once more after. */
  #active = new Map<string, { again: boolean }>()
  /** stop() was called: a namespace waiting on pods that no agent may finish leaves it to the next server's sweep. */
  #stopped = false

  constructor(opts: { registry: Registry; logger: Logger; sweepIntervalMs?: number; namespaceDelayMs?: number }) {
    this.#namespaceDelayMs = opts.namespaceDelayMs ?? 2000
    this.#registry = opts.registry
    this.#log = opts.logger
    this.#sweepMs = opts.sweepIntervalMs ?? 30_000
  }

  start(): void {
    this.#registry.hooks = {
      deleting: (info, obj) => this.#schedule(info, obj.metadata.namespace, obj.metadata.name!),
      afterDelete: (info, obj, policy) => {
        if (policy === 'Namespace') return this.#track(this.terminateNamespace(obj.metadata.name!))
        this.#track(this.#collectDependents(info, obj))
        this.#track(this.#wakeOwners(obj))
      },
    }
    this.#timer = setInterval(() => this.#track(this.sweep()), this.#sweepMs)
    this.#timer.unref()
    this.#track(this.sweep())
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    while (this.#pending.size) await Promise.allSettled([...this.#pending])
  }

  #track(p: Promise<void>): void {
    const q = p.catch((e) => this.#log.warn({ err: (e as Error).message }, 'garbage collection step failed; the sweep retries'))
    this.#pending.add(q)
    void q.finally(() => this.#pending.delete(q))
  }

  /** Everything that names `owner` in its ownerReferences. */
  async #dependentsOf(info: ResourceInfo, owner: KubeObject): Promise<Owned[]> {
    const out: Owned[] = []
    for (const r of info.namespaced ? namespaced : storedResources) {
      const { items } = await this.#registry.list(r, info.namespaced ? owner.metadata.namespace : undefined)
      for (const obj of items) if (refersTo(obj, owner.metadata.uid)) out.push({ info: r, obj })
    }
    return out
  }

  /** After an owner is gone: delete its dependents, unless another owner of theirs is still there. */
  async #collectDependents(info: ResourceInfo, owner: KubeObject): Promise<void> {
    for (const dep of await this.#dependentsOf(info, owner)) {
      if (await this.#anyOwnerExists(dep.obj, owner.metadata.uid)) await this.#dropOwner(dep.info, dep.obj, owner.metadata.uid!)
      else await this.#deleteQuietly(dep.info, dep.obj, 'Background')
    }
  }

  /** A dependent is gone: an owner waiting for it (foregroundDeletion) may now be done. */
  async #wakeOwners(dep: KubeObject): Promise<void> {
    for (const ref of dep.metadata.ownerReferences ?? []) {
      const info = lookupKind(ref.apiVersion, ref.kind)
      if (!info) continue
      const ns = info.namespaced ? dep.metadata.namespace : undefined
      const owner = await this.#registry.get(info, ns, ref.name).catch(() => undefined)
      if (owner?.metadata.uid === ref.uid && owner.metadata.deletionTimestamp && (owner.metadata.finalizers ?? []).includes(gcFinalizers.foreground)) {
        this.#schedule(info, ns, ref.name)
      }
    }
  }

  /** Process a marked owner; one run per object at a time, repeated when asked again meanwhile. */
  #schedule(info: ResourceInfo, ns: string | undefined, name: string): void {
    const key = keyOf(info, ns, name)
    const active = this.#active.get(key)
    if (active) return void (active.again = true)
    const state = { again: false }
    this.#active.set(key, state)
    this.#track(
      (async () => {
        try {
          do {
            state.again = false
            await this.#processMarked(info, ns, name)
          } while (state.again)
        } finally {
          this.#active.delete(key)
        }
      })(),
    )
  }

  async #processMarked(info: ResourceInfo, ns: string | undefined, name: string): Promise<void> {
    const obj = await this.#registry.get(info, ns, name).catch(() => undefined)
    if (!obj?.metadata.deletionTimestamp) return
    const finalizers = obj.metadata.finalizers ?? []
    if (finalizers.includes(gcFinalizers.orphan)) {
      for (const dep of await this.#dependentsOf(info, obj)) await this.#dropOwner(dep.info, dep.obj, obj.metadata.uid!)
      await this.#removeFinalizer(info, obj, gcFinalizers.orphan)
      this.#log.info({ resource: info.resource, namespace: ns, name }, 'dependents orphaned')
    } else if (finalizers.includes(gcFinalizers.foreground)) {
      for (const dep of await this.#dependentsOf(info, obj)) {
        if (dep.obj.metadata.deletionTimestamp) continue
        // Pods own nothing: a plain delete (graceful through their agent); anything else in the foreground too.
        await this.#deleteQuietly(dep.info, dep.obj, dep.info === podInfo ? undefined : 'Foreground')
      }
      const blocking = (await this.#dependentsOf(info, obj)).filter((d) => blocks(d.obj, obj.metadata.uid))
      if (blocking.length > 0) return // each one that goes wakes this owner again (#wakeOwners)
      await this.#removeFinalizer(info, obj, gcFinalizers.foreground)
      this.#log.info({ resource: info.resource, namespace: ns, name }, 'foreground deletion: dependents gone')
    }
  }

  /** Remove one finalizer; the registry completes the deletion when it was the last. */
  async #removeFinalizer(info: ResourceInfo, obj: KubeObject, finalizer: string): Promise<void> {
    await this.#edit(info, obj, (o) => {
      if (!(o.metadata.finalizers ?? []).includes(finalizer)) return false
      o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer)
      return true
    })
  }

  async #dropOwner(info: ResourceInfo, dep: KubeObject, uid: string): Promise<void> {
    await this.#edit(info, dep, (o) => {
      if (!refersTo(o, uid)) return false
      o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid)
      if (o.metadata.ownerReferences.length === 0) delete o.metadata.ownerReferences
      return true
    })
  }

  /** Apply `change` (false: nothing to do) to a copy and store it, reading again after a conflict; gone is done. */
  async #edit(info: ResourceInfo, obj: KubeObject, change: (o: KubeObject) => boolean): Promise<void> {
    let current: KubeObject | undefined = obj
    for (let attempt = 0; current && attempt < 10; attempt++) {
      const next = clone(current)
      if (!change(next)) return
      try {
        await this.#registry.updateFrom(info, current, next)
        return
      } catch (e) {
        if (isApiError(e, 'NotFound')) return
        if (!isApiError(e, 'Conflict')) throw e
      }
      current = await this.#registry.get(info, obj.metadata.namespace, obj.metadata.name!).catch(() => undefined)
    }
  }

  async #deleteQuietly(info: ResourceInfo, obj: KubeObject, policy: 'Background' | 'Foreground' | undefined): Promise<void> {
    try {
      await this.#registry.delete(info, obj.metadata.namespace, obj.metadata.name!, { ...(policy ? { propagationPolicy: policy } : {}), preconditions: { uid: obj.metadata.uid } })
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
        if (this.#stopped) return
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
    for (const r of storedResources) for (const o of (await this.#registry.list(r, undefined)).items) all.push([r, o])
    const uids = new Set(all.map(([, o]) => o.metadata.uid))
    for (const [r, o] of all) {
      if (r.resource === 'namespaces' && o.metadata.deletionTimestamp) this.#track(this.terminateNamespace(o.metadata.name!))
      const finalizers = o.metadata.finalizers ?? []
      if (o.metadata.deletionTimestamp && (finalizers.includes(gcFinalizers.foreground) || finalizers.includes(gcFinalizers.orphan))) {
        this.#schedule(r, o.metadata.namespace, o.metadata.name!)
      }
      const owners = o.metadata.ownerReferences ?? []
      if (owners.length > 0 && owners.every((ref) => !uids.has(ref.uid)) && !(await this.#anyOwnerExists(o))) {
        await this.#deleteQuietly(r, o, 'Background')
      }
    }
  }

  /** A fresh look at each owner (but `except`): the sweep's snapshot may predate an owner created since. */
  async #anyOwnerExists(o: KubeObject, except?: string): Promise<boolean> {
    for (const ref of o.metadata.ownerReferences ?? []) {
      if (ref.uid === except) continue
      const info = lookupKind(ref.apiVersion, ref.kind)
      if (!info) continue
      const owner = await this.#registry.get(info, info.namespaced ? o.metadata.namespace : undefined, ref.name).catch(() => undefined)
      if (owner?.metadata.uid === ref.uid) return true
    }
    return false
  }
}
