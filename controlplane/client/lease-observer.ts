// Judging a Lease that another process renews, by this process's own clock,
// as client-go's leaderelection (observedTime) and Kubernetes' node lifecycle
// controller (probeTimestamp) do:
//  - a Lease is renewed when its record (holder, renewTime, acquireTime,
//    transitions, duration, uid) is seen to change;
//  - it stays fresh for leaseDurationSeconds after that moment, measured on
//    this process's monotonic clock (performance.now());
//  - a Lease seen for the first time counts as renewed at that moment: a
//    starting observer gives every holder one full duration.
// The writer's renewTime is never compared with this machine's wall clock,
// so a wall clock that steps (NTP, a resumed VM, a person) on either
// machine, or a writer whose clock runs ahead or behind, neither expires a
// live holder early nor keeps a dead one alive. renewTime itself stays
// wall-clock time, for people reading the Lease.
//
// The same bookkeeping ("since when has this been so, by our clock") serves
// other judgements that must survive clock steps: observe(key, state).

import type { KubeObject } from '../api/types.ts'
import { keyFor, type InformerHandlers } from './informer.ts'

/** This process's monotonic clock (ms): for durations and deadlines measured here, never for times written out. */
export const monotonicMs = (): number => performance.now()

/** A Lease's renewal record: any change of it is a renewal ('' for no Lease). */
export function leaseRecordKey(lease: KubeObject | undefined): string {
  if (!lease) return ''
  const s = lease.spec ?? {}
  return JSON.stringify([lease.metadata?.uid ?? '', s.holderIdentity ?? '', s.renewTime ?? '', s.acquireTime ?? '', s.leaseTransitions ?? 0, s.leaseDurationSeconds ?? 0])
}

export class LeaseObserver {
  readonly now: () => number
  #seen = new Map<string, { state: string; atMs: number }>()

  /** now: the clock, monotonic by default (tests pass their own). */
  constructor(o: { now?: () => number } = {}) {
    this.now = o.now ?? monotonicMs
  }

  /** Since when (this clock) `key` has been in `state`: now when the state is new or changed. */
  observe(key: string, state: string, nowMs = this.now()): number {
    const seen = this.#seen.get(key)
    if (seen && seen.state === state) return seen.atMs
    this.#seen.set(key, { state, atMs: nowMs })
    return nowMs
  }

  /** When this Lease's current record was first seen (this clock). */
  observedAt(lease: KubeObject, nowMs = this.now()): number {
    return this.observe(keyFor(lease), leaseRecordKey(lease), nowMs)
  }

  /** When the Lease stops being fresh unless renewed (this clock); -Infinity without a positive duration. */
  expiresAt(lease: KubeObject, nowMs = this.now()): number {
    const seconds = Number(lease.spec?.leaseDurationSeconds ?? 0)
    const at = this.observedAt(lease, nowMs)
    return Number.isFinite(seconds) && seconds > 0 ? at + seconds * 1000 : -Infinity
  }

  /** Seen renewed within its leaseDurationSeconds. */
  fresh(lease: KubeObject, nowMs = this.now()): boolean {
    return this.expiresAt(lease, nowMs) > nowMs
  }

  forget(key: string): void {
    this.#seen.delete(key)
  }

  /** For an informer of Leases: note each change when it arrives (a later look would date it late). */
  handlers(): InformerHandlers<KubeObject> {
    return {
      onAdd: (l) => void this.observedAt(l),
      onUpdate: (_old, l) => void this.observedAt(l),
      onDelete: (l) => this.forget(keyFor(l)),
    }
  }
}
