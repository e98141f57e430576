// Leader election through a coordination.k8s.io/v1 Lease, like client-go's
// leaderelection package. Every candidate tries to acquire or renew the Lease
// every retryPeriod; writes carry the Lease's resourceVersion, so of two
// candidates racing for a free Lease exactly one wins (the other gets 409 and
// re-reads).
//
// Expiry uses the time at which this candidate last saw the Lease record
// change, on its own monotonic clock (../client/lease-observer.ts), not the
// holder's renewTime: neither clock skew between machines nor a step of
// either wall clock can make a live holder look expired (client-go does the
// same). A holder that cannot renew within renewDeadline (also measured on
// the monotonic clock) stops leading on its own, before the others may take
// over (renewDeadline < leaseDuration). Written times (acquireTime,
// renewTime) are wall-clock time, for people.
//
// Leadership is not fencing: two leaders can briefly overlap, so controllers
// stay correct through resourceVersion preconditions (types.ts).

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, type ApiClient } from '../client/client.ts'
import { LeaseObserver, leaseRecordKey } from '../client/lease-observer.ts'
import type { Logger } from '../../lib/log.ts'

const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!

export interface LeaderElectorOptions {
  client: ApiClient
  logger: Logger
  /** Lease name, e.g. `skiff-controller-manager`. */
  name: string
  namespace?: string
  /** Unique per process: `<host>_<uuid>`. */
  identity: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  /** Called when this candidate becomes leader; not awaited (the renew loop keeps running). */
  onStartedLeading(): void | Promise<void>
  /** Called at once when leadership ends (lost or stop()); awaited before trying to lead again. */
  onStoppedLeading(): void | Promise<void>
}

export interface LeaseRecord {
  holderIdentity: string
  leaseDurationSeconds: number
  acquireTime?: string
  renewTime?: string
  leaseTransitions: number
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z')
}

/**
 * The Lease spec this candidate writes, or undefined when someone else holds
 * an unexpired lease. `observedAtMs` is when the current record was first seen
 * changed, and `monotonicNow` now, both on the observer's monotonic clock;
 * `now` is the wall clock, used only for the times written. Without
 * `monotonicNow`, `observedAtMs` is taken to be on the wall clock (`now`).
 */
export function planLeaseWrite(opts: { current: LeaseRecord | undefined; identity: string; leaseDurationMs: number; now: number; observedAtMs: number; monotonicNow?: number }): LeaseRecord | undefined {
  const { current, identity, now } = opts
  const seconds = Math.max(1, Math.ceil(opts.leaseDurationMs / 1000))
  const nowText = microTime(now)
  if (!current) return { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: nowText, renewTime: nowText, leaseTransitions: 0 }
  const mine = current.holderIdentity === identity
  const held = current.holderIdentity !== '' && !mine
  if (held && opts.observedAtMs + current.leaseDurationSeconds * 1000 > (opts.monotonicNow ?? now)) return undefined
  return {
    holderIdentity: identity,
    leaseDurationSeconds: seconds,
    acquireTime: mine ? current.acquireTime ?? nowText : nowText,
    renewTime: nowText,
    leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
  }
}

/** A Lease's spec as a LeaseRecord, with Kubernetes' defaults for missing fields. */
export function recordOf(lease: KubeObject): LeaseRecord {
  const s = lease.spec ?? {}
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 15,
    acquireTime: s.acquireTime ?? undefined,
    renewTime: s.renewTime ?? undefined,
    leaseTransitions: s.leaseTransitions ?? 0,
  }
}

export class LeaderElector {
  #o: Required<Omit<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading'>> & Pick<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading'>
  #log: Logger
  #leading = false
  #stopped = true
  #loop?: Promise<void>
  #wake?: () => void
  #timer?: NodeJS.Timeout
  /** Monotonic ms of the last successful renewal. */
  #lastRenewMs = 0
  #observer = new LeaseObserver()

  constructor(opts: LeaderElectorOptions) {
    // `??` per field: an option passed as undefined still gets its default.
    this.#o = {
      ...opts,
      namespace: opts.namespace ?? 'kube-system',
      leaseDurationMs: opts.leaseDurationMs ?? 15_000,
      renewDeadlineMs: opts.renewDeadlineMs ?? 10_000,
      retryPeriodMs: opts.retryPeriodMs ?? 2_000,
    }
    if (this.#o.renewDeadlineMs >= this.#o.leaseDurationMs) throw new Error('leader election: renewDeadlineMs must be less than leaseDurationMs')
    this.#log = opts.logger.child({ lease: `${this.#o.namespace}/${this.#o.name}`, identity: opts.identity })
  }

  get isLeader(): boolean {
    return this.#leading
  }

  get identity(): string {
    return this.#o.identity
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#loop = this.#run()
  }

  /** Stop trying; when leading, stop leading (callback awaited) and release the Lease. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#wake?.()
    await this.#loop
    if (this.#leading) {
      await this.#stopLeading('stopped')
      await this.#release()
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const outcome = await this.#tryAcquireOrRenew()
      if (this.#stopped) break
      const now = this.#observer.now()
      if (outcome === 'held') {
        this.#lastRenewMs = now
        if (!this.#leading) this.#startLeading()
      } else if (this.#leading && (outcome === 'lost' || now - this.#lastRenewMs > this.#o.renewDeadlineMs)) {
        await this.#stopLeading(outcome === 'lost' ? 'lease taken by another candidate' : 'renew deadline passed')
      }
      await this.#sleep(this.#o.retryPeriodMs)
    }
  }

  #startLeading(): void {
    this.#leading = true
    this.#log.info('started leading')
    Promise.resolve()
      .then(() => this.#o.onStartedLeading())
      .catch((e) => this.#log.error({ err: (e as Error).message }, 'onStartedLeading failed'))
  }

  async #stopLeading(why: string): Promise<void> {
    this.#leading = false
    this.#log.info({ why }, 'stopped leading')
    try {
      await this.#o.onStoppedLeading()
    } catch (e) {
      this.#log.error({ err: (e as Error).message }, 'onStoppedLeading failed')
    }
  }

  /** 'held' when we hold the lease now, 'other' when someone else does (or the API failed), 'lost' when a write showed someone else took it. */
  async #tryAcquireOrRenew(): Promise<'held' | 'other' | 'lost'> {
    const { client, namespace, name, identity } = this.#o
    let lease: KubeObject | undefined
    try {
      lease = await this.#bounded(client.get(leases, namespace, name))
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 404)) return this.#failed(e)
    }
    const current = lease ? recordOf(lease) : undefined
    const observedAtMs = this.#observer.observe(name, leaseRecordKey(lease))
    const spec = planLeaseWrite({ current, identity, leaseDurationMs: this.#o.leaseDurationMs, now: Date.now(), observedAtMs, monotonicNow: this.#observer.now() })
    if (!spec) return this.#leading ? 'lost' : 'other'
    try {
      const write = lease ? client.update(leases, { ...lease, spec: { ...lease.spec, ...spec } }) : client.create(leases, namespace, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec })
      this.#observer.observe(name, leaseRecordKey(await this.#bounded(write)))
      return 'held'
    } catch (e) {
      // 409: someone else wrote the lease since we read it; read again next round.
      if (e instanceof ApiClientError && e.status === 409) return this.#leading ? 'lost' : 'other'
      return this.#failed(e)
    }
  }

  /** A hung apiserver must not keep a leader believing in its lease past the renew deadline. */
  async #bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const limit = Math.max(1, Math.floor(this.#o.renewDeadlineMs / 2))
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lease request took longer than ${limit} ms`)), limit)
    })
    try {
      return await Promise.race([p, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  #failed(e: unknown): 'other' {
    this.#log.warn({ err: (e as Error).message }, 'leader election: lease read or write failed')
    return 'other'
  }

  /** Clear holderIdentity so another candidate can take over without waiting for expiry. */
  async #release(): Promise<void> {
    const { client, namespace, name, identity } = this.#o
    try {
      const lease = await client.get(leases, namespace, name)
      if (lease.spec?.holderIdentity !== identity) return
      const now = microTime(Date.now())
      await client.update(leases, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now } })
      this.#log.info('released lease')
    } catch (e) {
      this.#log.warn({ err: (e as Error).message }, 'could not release lease; the others take over once it expires')
    }
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#wake = resolve
      this.#timer = setTimeout(resolve, ms)
    })
    this.#wake = undefined
  }
}
