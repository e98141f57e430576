// The apiserver's object logic between HTTP and the store: defaulting,
// validation, server-set metadata, status/spec separation, generation,
// Service allocations, finalizers and graceful pod deletion. Every write is
// one compare-and-set in the store, so nothing is ever half-stored.

import { randomUUID } from 'node:crypto'
import { qualifiedResource, type ResourceInfo, groupVersion, lookupResource } from '../api/resources.ts'
import { ApiError, alreadyExists, conflict, invalid, notFound } from '../api/errors.ts'
import { clone, objectKey, type KubeObject, type StatusCause } from '../api/types.ts'
import { applyDefaults } from '../api/defaults.ts'
import { generateJobSelector } from '../api/batch-defaults.ts'
import { admitServiceAccount } from './serviceaccount-admission.ts'
import { admitStorage, admitStorageUpdate } from './storage-admission.ts'
import { listTypesFromSchema, recordUpdate, type ManagedFieldsEntry } from '../api/apply.ts'
import { validate } from '../api/validation.ts'
import { StoreError, type Store, type WriteOptions } from '../store/types.ts'
import { defaultAllocConfig, dropTypeDependentFields, planServiceAllocations, pools, type AllocConfig } from './service-alloc.ts'
import type { Logger } from '../../lib/log.ts'

export interface RegistryOptions {
  store: Store
  logger: Logger
  alloc?: AllocConfig
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan'

export interface DeleteOptions {
  propagationPolicy?: PropagationPolicy
  /** The deprecated spelling: true is Orphan, false is Background; propagationPolicy wins. */
  orphanDependents?: boolean
  gracePeriodSeconds?: number
  preconditions?: { uid?: string; resourceVersion?: string }
  dryRun?: boolean
}

export interface DeleteHooks {
  /** An object was marked for deletion and carries a garbage-collector finalizer (foregroundDeletion, orphan). */
  deleting(info: ResourceInfo, obj: KubeObject): void
  /** An object is gone from the store (or a namespace was marked Terminating: policy 'Namespace'). */
  afterDelete(info: ResourceInfo, obj: KubeObject, policy: string): void
}

/** The finalizers through which the garbage collector implements Foreground and Orphan deletion. */
export const gcFinalizers = { foreground: 'foregroundDeletion', orphan: 'orphan' } as const

/** The finalizers an object has after a DELETE with this policy (no policy: as they are). */
export function deletionFinalizers(current: readonly string[], policy: PropagationPolicy | undefined): string[] {
  const rest = current.filter((f) => f !== gcFinalizers.foreground && f !== gcFinalizers.orphan)
  if (policy === 'Foreground') return [...rest, gcFinalizers.foreground]
  if (policy === 'Orphan') return [...rest, gcFinalizers.orphan]
  if (policy === 'Background') return rest
  return [...current]
}

function propagationOf(opts: DeleteOptions): PropagationPolicy | undefined {
  if (opts.propagationPolicy) return opts.propagationPolicy
  if (opts.orphanDependents === true) return 'Orphan'
  if (opts.orphanDependents === false) return 'Background'
  return undefined
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i])

export interface WriteFlags {
  dryRun?: boolean
  subresource?: string
  /** The manager of this write (the fieldManager parameter, else from the User-Agent), for managedFields. */
  fieldManager?: string
  /** The managedFields server-side apply computed for this write (kept as given). */
  managedFields?: ManagedFieldsEntry[]
}

const namespaceRes = lookupResource('', 'v1', 'namespaces')!
const nameChars = 'bcdfghjklmnpqrstvwxz2456789'

function randomSuffix(): string {
  let s = ''
  for (let i = 0; i < 5; i++) s += nameChars[Math.floor(Math.random() * nameChars.length)]
  return s
}

function specOf(o: KubeObject): string {
  const { apiVersion, kind, metadata, status, ...rest } = o
  return JSON.stringify(rest)
}

export class Registry {
  readonly store: Store
  readonly alloc: AllocConfig
  #log: Logger
  /** Garbage collection hooks (gc.ts). */
  hooks: DeleteHooks = { deleting: () => {}, afterDelete: () => {} }

  constructor(opts: RegistryOptions) {
    this.store = opts.store
    this.alloc = opts.alloc ?? defaultAllocConfig
    this.#log = opts.logger
  }

  async get(info: ResourceInfo, ns: string | undefined, name: string): Promise<KubeObject> {
    const obj = await this.store.get(qualifiedResource(info), objectKey(ns, name))
    if (!obj) throw notFound(qualifiedResource(info), name, info.resource)
    return withTypeMeta(info, obj)
  }

  async list(info: ResourceInfo, ns: string | undefined): Promise<{ items: KubeObject[]; revision: number }> {
    const r = await this.store.list(qualifiedResource(info), ns ? { namespace: ns } : undefined)
    return { items: r.items.map((o) => withTypeMeta(info, o)), revision: r.revision }
  }

  async create(info: ResourceInfo, ns: string | undefined, body: KubeObject, flags: WriteFlags = {}): Promise<KubeObject> {
    const obj = this.#prepareCreate(info, ns, body)
    if (flags.managedFields) obj.metadata.managedFields = flags.managedFields
    await this.#checkNamespace(info, ns)
    if (info.resource === 'pods') admitServiceAccount(obj, await this.#serviceAccountOf(obj))
    await admitStorage(this.store, info, obj)
    this.#validateOrThrow(info, obj)
    if (flags.dryRun) return obj
    const created = await this.#write(info, obj, undefined)
    if (info.resource === 'namespaces') this.onNamespaceCreated(created.metadata.name!)
    return created
  }

  /** Set by the apiserver: what every new namespace gets (its default ServiceAccount, kube-root-ca.crt). */
  onNamespaceCreated: (name: string) => void = () => {}

  async #serviceAccountOf(pod: KubeObject): Promise<KubeObject | undefined> {
    const name = pod.spec?.serviceAccountName || pod.spec?.serviceAccount || 'default'
    return (await this.store.get('serviceaccounts', objectKey(pod.metadata.namespace, name))) ?? undefined
  }

  #prepareCreate(info: ResourceInfo, ns: string | undefined, body: KubeObject): KubeObject {
    checkTypeMeta(info, body)
    const obj = applyDefaults(info, body) // a defaulted copy
    obj.apiVersion = groupVersion(info)
    obj.kind = info.kind
    const meta = (obj.metadata ??= {})
    if (info.namespaced) {
      if (meta.namespace && ns && meta.namespace !== ns) {
        throw new ApiError('BadRequest', `the namespace of the provided object (${meta.namespace}) does not match the namespace sent on the request (${ns})`)
      }
      meta.namespace = ns ?? meta.namespace ?? 'default'
    } else delete meta.namespace
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix()
    meta.uid = randomUUID()
    if (info.kind === 'Job') generateJobSelector(obj)
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    delete meta.resourceVersion
    delete meta.deletionTimestamp
    delete meta.managedFields
    if (info.hasSpec) meta.generation = 1
    resetStatusOnCreate(info, obj)
    return obj
  }

  async #checkNamespace(info: ResourceInfo, ns: string | undefined): Promise<void> {
    if (!info.namespaced || !ns) return
    const nsObj = await this.store.get('namespaces', ns)
    if (!nsObj) throw notFound('namespaces', ns)
    if (nsObj.metadata.deletionTimestamp) {
      throw new ApiError('Forbidden', `${info.resource} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`)
    }
  }

  #validateOrThrow(info: ResourceInfo, obj: KubeObject, old?: KubeObject): void {
    const causes = validate(info, obj, old)
    if (causes.length) throw invalid(info.kind, obj.metadata?.name ?? '', causes)
  }

  async update(info: ResourceInfo, ns: string | undefined, name: string, body: KubeObject, flags: WriteFlags = {}): Promise<KubeObject> {
    checkTypeMeta(info, body)
    if (body.metadata?.name && body.metadata.name !== name) {
      throw new ApiError('BadRequest', `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`)
    }
    const old = await this.get(info, ns, name)
    const expected = body.metadata?.resourceVersion
    if (expected && expected !== old.metadata.resourceVersion) throw conflict(qualifiedResource(info), name)
    const obj = this.#prepareUpdate(info, old, body, flags.subresource)
    this.#trackFields(info, old, obj, flags)
    this.#validateOrThrow(info, obj, old)
    await admitStorageUpdate(this.store, info, obj, old)
    if (flags.dryRun) return obj
    return await this.#write(info, obj, old)
  }

  /** Used by patch: the patched object is an update guarded by the RV it was computed from. */
  async updateFrom(info: ResourceInfo, old: KubeObject, next: KubeObject, flags: WriteFlags = {}): Promise<KubeObject> {
    checkTypeMeta(info, next)
    const requested = next.metadata?.resourceVersion
    if (requested && requested !== old.metadata.resourceVersion) throw conflict(qualifiedResource(info), old.metadata.name!)
    if (next.metadata?.uid && next.metadata.uid !== old.metadata.uid) {
      throw new ApiError('Conflict', `Precondition failed: UID in precondition: ${next.metadata.uid}, UID in object meta: ${old.metadata.uid}`)
    }
    const obj = this.#prepareUpdate(info, old, { ...next, metadata: { ...next.metadata, resourceVersion: old.metadata.resourceVersion } }, flags.subresource)
    this.#trackFields(info, old, obj, flags)
    this.#validateOrThrow(info, obj, old)
    await admitStorageUpdate(this.store, info, obj, old)
    if (flags.dryRun) return obj
    return await this.#write(info, obj, old)
  }

  /**
   * managedFields: as server-side apply computed them; else, once an object
   * has any (it was applied server-side), an ordinary write records the
   * fields it changed under its manager. Objects never applied server-side
   * carry none (Kubernetes records them for every object).
   */
  #trackFields(info: ResourceInfo, old: KubeObject, obj: KubeObject, flags: WriteFlags): void {
    if (flags.managedFields) {
      obj.metadata.managedFields = flags.managedFields
      return
    }
    const before = old.metadata.managedFields as ManagedFieldsEntry[] | undefined
    if (!before?.length) return
    const entries = recordUpdate({
      old, next: obj, manager: flags.fieldManager || 'unknown', listTypes: listTypesFromSchema(info.kind),
      apiVersion: groupVersion(info), now: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), subresource: flags.subresource,
    })
    if (entries.length) obj.metadata.managedFields = entries
  }

  #prepareUpdate(info: ResourceInfo, old: KubeObject, body: KubeObject, subresource?: string): KubeObject {
    let obj: KubeObject
    if (subresource === 'status') {
      obj = clone(old)
      obj.status = clone(body.status)
    } else if (subresource === 'binding') {
      obj = { ...body } // pods/binding (binding.ts, a fresh object): spec.nodeName and status.conditions in one write
    } else {
      obj = applyDefaults(info, body) // a defaulted copy
      if ((info.subresources ?? []).includes('status')) obj.status = clone(old.status)
    }
    obj.apiVersion = groupVersion(info)
    obj.kind = info.kind
    const meta = (obj.metadata ??= {})
    for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (old.metadata[k] === undefined) delete meta[k]
      else meta[k] = old.metadata[k] as never
    }
    meta.resourceVersion = old.metadata.resourceVersion
    delete meta.managedFields
    if (info.resource === 'services') dropTypeDependentFields(obj, old)
    if (info.hasSpec && specOf(obj) !== specOf(old)) meta.generation = (old.metadata.generation ?? 0) + 1
    return obj
  }

  /** One store write with allocations; auto-allocated values that lose a race are re-picked. */
  async #write(info: ResourceInfo, obj: KubeObject, old: KubeObject | undefined): Promise<KubeObject> {
    const resource = qualifiedResource(info)
    const key = objectKey(obj.metadata.namespace, obj.metadata.name!)
    // The last finalizer removed from an object being deleted completes the
    // deletion, once its grace period is over (a terminating pod stays until
    // its agent deletes it with grace 0). Other updates during a deletion,
    // e.g. a terminating pod's status, do not.
    const finalizersDone = (old?.metadata.finalizers ?? []).length > 0 && (obj.metadata.finalizers ?? []).length === 0
    if (old && old.metadata.deletionTimestamp && finalizersDone && !old.metadata.deletionGracePeriodSeconds && info.resource !== 'namespaces') {
      return await this.#finalDelete(info, old, { expectedRV: old.metadata.resourceVersion })
    }
    for (let attempt = 0; ; attempt++) {
      // Only a Service's allocation plan changes the candidate; other kinds are written as they are.
      const candidate = info.resource === 'services' ? clone(obj) : obj
      const opts: WriteOptions = old ? { expectedRV: old.metadata.resourceVersion } : {}
      let requested = new Map<string, string>()
      if (info.resource === 'services') {
        const plan = await this.#planService(candidate, old)
        if (plan.causes.length) throw invalid(info.kind, obj.metadata.name!, plan.causes)
        opts.claims = plan.claims
        opts.releases = plan.releases
        requested = plan.requested
      }
      const stored = { ...candidate, metadata: { ...candidate.metadata } }
      delete stored.metadata.resourceVersion
      try {
        return withTypeMeta(info, old ? await this.store.update(resource, key, stored, opts) : await this.store.create(resource, key, stored, opts))
      } catch (e) {
        if (!(e instanceof StoreError)) throw e
        if (e.code === 'exists') throw alreadyExists(resource, obj.metadata.name!)
        if (e.code === 'notfound') throw notFound(resource, obj.metadata.name!, info.resource)
        if (e.code === 'conflict') throw conflict(resource, obj.metadata.name!)
        if (e.code === 'claimed' && e.claim) {
          const field = requested.get(`${e.claim.pool}/${e.claim.value}`)
          if (field || attempt >= 20) throw claimedError(info, obj, e.claim, field)
          continue
        }
        throw new ApiError('ServiceUnavailable', `storage unavailable: ${e.message}`)
      }
    }
  }

  async #planService(svc: KubeObject, old: KubeObject | undefined) {
    const ports = new Set((await this.store.claims(pools.nodePort)).keys())
    return planServiceAllocations(this.alloc, svc, old, { ips: new Set(), ports })
  }

  /**
   * Without a resourceVersion precondition a concurrent write (a status
   * update, a controller's patch) is no reason to fail: read again and retry,
   * as Kubernetes' GuaranteedUpdate does. With one, the 409 is the answer.
   */
  async delete(info: ResourceInfo, ns: string | undefined, name: string, opts: DeleteOptions = {}): Promise<KubeObject> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#deleteOnce(info, ns, name, opts)
      } catch (e) {
        // A UID precondition is checked again on each attempt (a mismatch fails every time).
        const pinned = !!opts.preconditions?.resourceVersion
        if (!pinned && attempt < 10 && e instanceof ApiError && e.reason === 'Conflict') continue
        throw e
      }
    }
  }

  /**
   * As Kubernetes' graceful deletion and finalizers: an object without
   * finalizers and without a grace period (anything but a pod running on a
   * node) goes at once; otherwise it is marked (deletionTimestamp) and stays
   * until its finalizers are removed and, for a pod, its agent deletes it
   * with grace 0. Foreground and Orphan are the garbage collector's
   * finalizers `foregroundDeletion` and `orphan` (gc.ts acts on them); a
   * Background delete of an object without finalizers leaves its dependents
   * to the collector after it is gone.
   */
  async #deleteOnce(info: ResourceInfo, ns: string | undefined, name: string, opts: DeleteOptions): Promise<KubeObject> {
    const obj = await this.get(info, ns, name)
    const pre = opts.preconditions
    if (pre?.uid && pre.uid !== obj.metadata.uid) {
      throw new ApiError('Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${obj.metadata.uid}`)
    }
    if (pre?.resourceVersion && pre.resourceVersion !== obj.metadata.resourceVersion) throw conflict(qualifiedResource(info), name)
    const meta = obj.metadata
    const current = meta.finalizers ?? []
    const finalizers = deletionFinalizers(current, propagationOf(opts))
    const grace = this.#gracePeriod(info, obj, opts)
    const isNamespace = info.resource === 'namespaces'
    const marking = !meta.deletionTimestamp
    if (!isNamespace && finalizers.length === 0 && grace === 0) {
      if (opts.dryRun) return obj
      return await this.#finalDelete(info, obj, { expectedRV: meta.resourceVersion })
    }
    const marked = clone(obj)
    if (finalizers.length) marked.metadata.finalizers = finalizers
    else delete marked.metadata.finalizers
    if (marking) {
      marked.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
      marked.metadata.deletionGracePeriodSeconds = grace
      if (isNamespace) marked.status = { ...(marked.status ?? {}), phase: 'Terminating' }
    } else if (grace < (meta.deletionGracePeriodSeconds ?? 0)) {
      // A second DELETE may shorten the grace period, never lengthen it.
      marked.metadata.deletionGracePeriodSeconds = grace
    }
    if (!marking && sameList(current, finalizers) && marked.metadata.deletionGracePeriodSeconds === meta.deletionGracePeriodSeconds) return obj
    if (opts.dryRun) return marked
    const stored = await this.#store(info, marked, obj)
    if (isNamespace && marking) this.hooks.afterDelete(namespaceRes, stored, 'Namespace')
    if (finalizers.includes(gcFinalizers.foreground) || finalizers.includes(gcFinalizers.orphan)) this.hooks.deleting(info, stored)
    return stored
  }

  /** Seconds of grace: a pod bound to a node and not finished gets its termination grace period (its agent finishes the deletion); everything else 0. */
  #gracePeriod(info: ResourceInfo, obj: KubeObject, opts: DeleteOptions): number {
    if (info.resource !== 'pods' || !obj.spec?.nodeName) return 0
    const phase = obj.status?.phase
    if (phase === 'Succeeded' || phase === 'Failed') return 0
    return Math.max(0, opts.gracePeriodSeconds ?? obj.spec?.terminationGracePeriodSeconds ?? 30)
  }

  /** Remove the object for good (namespaces once emptied, objects whose finalizers are done). */
  async finalize(info: ResourceInfo, obj: KubeObject): Promise<void> {
    try {
      await this.#finalDelete(info, obj, { expectedRV: obj.metadata.resourceVersion })
    } catch (e) {
      if (!(e instanceof ApiError && e.reason === 'NotFound')) throw e
    }
  }

  async #finalDelete(info: ResourceInfo, obj: KubeObject, opts: WriteOptions): Promise<KubeObject> {
    const resource = qualifiedResource(info)
    const releases = info.resource === 'services' ? planServiceAllocations(this.alloc, { metadata: {}, spec: { type: 'ExternalName' } }, obj, { ips: new Set(), ports: new Set() }).releases : []
    try {
      const gone = await this.store.delete(resource, objectKey(obj.metadata.namespace, obj.metadata.name!), { ...opts, releases })
      this.hooks.afterDelete(info, gone, 'Background')
      return withTypeMeta(info, gone)
    } catch (e) {
      if (e instanceof StoreError && e.code === 'conflict') throw conflict(resource, obj.metadata.name!)
      if (e instanceof StoreError && e.code === 'notfound') throw notFound(resource, obj.metadata.name!, info.resource)
      throw e
    }
  }

  async #store(info: ResourceInfo, obj: KubeObject, old: KubeObject): Promise<KubeObject> {
    const stored = { ...obj, metadata: { ...obj.metadata } }
    delete stored.metadata.resourceVersion
    try {
      return withTypeMeta(info, await this.store.update(qualifiedResource(info), objectKey(obj.metadata.namespace, obj.metadata.name!), stored, { expectedRV: old.metadata.resourceVersion }))
    } catch (e) {
      if (e instanceof StoreError && e.code === 'conflict') throw conflict(qualifiedResource(info), obj.metadata.name!)
      throw e
    }
  }
}

function claimedError(info: ResourceInfo, obj: KubeObject, claim: { pool: string; value: string }, field: string | undefined): ApiError {
  const what = claim.pool === pools.clusterIP ? `failed to allocate IP ${claim.value}: provided IP is already allocated` : `provided port is already allocated`
  const value = claim.pool === pools.clusterIP ? JSON.stringify([claim.value]) : claim.value
  const cause: StatusCause = { reason: 'FieldValueInvalid', field: field ?? (claim.pool === pools.clusterIP ? 'spec.clusterIPs' : 'spec.ports'), message: `Invalid value: ${value}: ${what}` }
  return invalid(info.kind, obj.metadata.name!, [cause])
}

function checkTypeMeta(info: ResourceInfo, body: KubeObject): void {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('BadRequest', 'the request body must be a JSON object')
  if (body.kind && body.kind !== info.kind) {
    throw new ApiError('BadRequest', `the kind of the body (${body.kind}) does not match the resource ${qualifiedResource(info)} (kind ${info.kind})`)
  }
  if (body.apiVersion && body.apiVersion !== groupVersion(info)) {
    throw new ApiError('BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${groupVersion(info)})`)
  }
}

function resetStatusOnCreate(info: ResourceInfo, obj: KubeObject): void {
  if (info.resource === 'pods') {
    obj.status = { phase: 'Pending', ...(obj.status?.qosClass ? { qosClass: obj.status.qosClass } : {}) }
  } else if (info.resource === 'namespaces') {
    obj.status = { phase: 'Active' }
  } else if (info.resource === 'services' || info.resource === 'ingresses') {
    obj.status = { loadBalancer: {} }
  } else if (['deployments', 'replicasets', 'daemonsets', 'statefulsets'].includes(info.resource)) {
    obj.status = {}
  } else if (info.resource === 'poddisruptionbudgets') {
    obj.status = { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 }
  }
}

export function withTypeMeta(info: ResourceInfo, obj: KubeObject): KubeObject {
  return { apiVersion: groupVersion(info), kind: info.kind, ...obj }
}

export { namespaceRes }
