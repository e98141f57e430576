// The storage contract every Skiff component above Redis depends on. Only
// the apiserver holds a Store; everything else reads through the API.
//
// Contract (each point is a test in test/integration/store-contract.test.ts):
//  - Every write (create, update, delete) is one atomic step: the expected
//    resourceVersion is checked, the global revision is bumped, the object is
//    written, and exactly one event is appended whose revision is that new
//    revision. A failed precondition writes nothing.
//  - `metadata.resourceVersion` of a returned object is the revision of the
//    write that produced it, as a decimal string. Objects are otherwise stored
//    exactly as given (the caller fills uid, timestamps, generation).
//  - Claims make allocations (ClusterIPs, NodePorts, LoadBalancer IPs) atomic
//    with the write: a value claimed by another owner fails the whole write
//    with StoreError('claimed'), naming the pool and value.
//  - watch(fromRevision) delivers every event with revision > fromRevision,
//    exactly once, in revision order, then live events as they happen. If
//    any of those events is no longer available (trimmed, or the store jumped
//    epoch), the watch ends with StoreError('gone') and delivers nothing.
//  - Revisions never go backwards, even when Redis comes back from an older
//    file: the store keeps a high-water mark outside Redis and jumps ahead.
//  - Resources listed in `encryptedResources` are encrypted with AES-256-GCM
//    before they reach Redis (values and events alike); the key never does.

import type { KubeObject } from '../api/types.ts'

export type StoreErrorCode = 'exists' | 'notfound' | 'conflict' | 'claimed' | 'gone' | 'unavailable'

export class StoreError extends Error {
  readonly code: StoreErrorCode
  /** For 'claimed': which pool and value were taken, and by whom. */
  readonly claim?: { pool: string; value: string; owner: string }
  constructor(code: StoreErrorCode, message: string, claim?: { pool: string; value: string; owner: string }) {
    super(message)
    this.name = 'StoreError'
    this.code = code
    this.claim = claim
  }
}

/** A value held in an allocation pool, e.g. {pool: 'clusterip', value: '10.96.0.12'}. */
export interface Claim {
  pool: string
  value: string
}

export interface WriteOptions {
  /** Compare-and-set: the write fails with 'conflict' unless the stored RV equals this. */
  expectedRV?: string
  /** Values to hold for this object (owner = `${resource}:${key}`); idempotent for the same owner. */
  claims?: Claim[]
  /** Values to give back; only released when this object is their owner. */
  releases?: Claim[]
}

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface StoreEvent {
  type: StoreEventType
  /** Qualified resource, e.g. 'pods', 'deployments.apps'. */
  resource: string
  /** `namespace/name` or `name`. */
  key: string
  revision: number
  /** The object after the write; for DELETED, the last state (with the delete's revision). */
  object: KubeObject
  /** The object before the write, for MODIFIED and DELETED. */
  prev?: KubeObject
}

export interface WatchOptions {
  /** Only events of this resource; all resources when omitted. */
  resource?: string
  /** Deliver events with revision strictly greater than this. */
  fromRevision: number
}

export interface WatchHandle {
  stop(): void
  /**
   * The revision up to which this watch has delivered every event it will
   * ever deliver (events of other resources included in the count): a
   * BOOKMARK may carry it. Moves even when nothing of this resource changes.
   */
  progress(): number
}

export interface ListResult {
  items: KubeObject[]
  /** The store revision the list is consistent with; watch from here for later changes. */
  revision: number
}

export interface Store {
  start(): Promise<void>
  stop(): Promise<void>

  create(resource: string, key: string, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>
  update(resource: string, key: string, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>
  delete(resource: string, key: string, opts?: WriteOptions): Promise<KubeObject>

  get(resource: string, key: string): Promise<KubeObject | undefined>
  /** All objects of a resource (optionally of one namespace), consistent with one revision. */
  list(resource: string, opts?: { namespace?: string }): Promise<ListResult>
  currentRevision(): Promise<number>

  /** onEvent is called in order; onEnd once, with an error for 'gone' or a lost connection. */
  watch(opts: WatchOptions, onEvent: (ev: StoreEvent) => void, onEnd: (err?: StoreError) => void): WatchHandle

  /** Every held value of a pool, value -> owner. */
  claims(pool: string): Promise<Map<string, string>>

  /** The lowest revision a watch may start from (older ones are 'gone'). */
  floor(): Promise<number>
}
