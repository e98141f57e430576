// Endpoint picking and passive outlier ejection. State (round-robin cursors,
// in-flight counts, failure streaks, ejections) lives outside the snapshot,
// keyed by backend key and endpoint id, so it survives snapshot swaps: an
// endpoint that stays keeps its counters; one that leaves is forgotten by
// `retain`. The clock is injected so ejection expiry is unit-testable.

import { createHash } from 'node:crypto'
import type { Endpoint } from './state.ts'
import type { LoadBalance } from './options.ts'

export const affinityCookie = 'SKIFF_AFFINITY'
export const ejectAfterFailures = 5
export const ejectionMs = 30_000

export interface PickRequest {
  backend: string
  endpoints: readonly Endpoint[]
  policy: LoadBalance
  /** The SKIFF_AFFINITY cookie value, for policy 'cookie'. */
  affinity?: string
  /** Endpoint ids already tried for this request (retry goes elsewhere). */
  exclude?: readonly string[]
}

export interface Pick {
  endpoint: Endpoint
  /** Set for policy 'cookie' when the client has to be (re)pinned. */
  setAffinity?: string
}

/** Hashed so the cookie does not reveal pod addresses. */
export function affinityValue(endpointId: string): string {
  return createHash('sha256').update(endpointId).digest('hex').slice(0, 16)
}

export class Balancer {
  private readonly now: () => number
  private readonly cursors = new Map<string, number>()
  private readonly inflight = new Map<string, number>()
  private readonly streaks = new Map<string, number>()
  private readonly ejectedUntil = new Map<string, number>()

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now
  }

  /** undefined only when `endpoints` is empty or every one is excluded. */
  pick(req: PickRequest): Pick | undefined {
    const exclude = req.exclude ?? []
    const open = req.endpoints.filter((e) => !exclude.includes(e.id))
    if (open.length === 0) return undefined
    const healthy = open.filter((e) => !this.isEjected(e.id))
    // Never leave a backend without endpoints: when all are ejected, use them all.
    const candidates = healthy.length > 0 ? healthy : open
    if (req.policy === 'cookie') {
      const pinned = req.affinity ? candidates.find((e) => affinityValue(e.id) === req.affinity) : undefined
      if (pinned) return { endpoint: pinned }
      const endpoint = this.roundRobin(req.backend, candidates)
      return { endpoint, setAffinity: affinityValue(endpoint.id) }
    }
    if (req.policy === 'least-request') return { endpoint: this.leastRequest(req.backend, candidates) }
    return { endpoint: this.roundRobin(req.backend, candidates) }
  }

  private roundRobin(backend: string, eps: readonly Endpoint[]): Endpoint {
    const i = this.cursors.get(backend) ?? 0
    this.cursors.set(backend, (i + 1) % 1_000_000_007)
    return eps[i % eps.length]!
  }

  private leastRequest(backend: string, eps: readonly Endpoint[]): Endpoint {
    const min = Math.min(...eps.map((e) => this.inflight.get(e.id) ?? 0))
    const fewest = eps.filter((e) => (this.inflight.get(e.id) ?? 0) === min)
    return this.roundRobin(backend, fewest)
  }

  /** Call when a request to the endpoint starts; the returned function ends it. */
  begin(id: string): () => void {
    this.inflight.set(id, (this.inflight.get(id) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const n = (this.inflight.get(id) ?? 1) - 1
      if (n <= 0) this.inflight.delete(id)
      else this.inflight.set(id, n)
    }
  }

  inFlight(id: string): number {
    return this.inflight.get(id) ?? 0
  }

  isEjected(id: string): boolean {
    const until = this.ejectedUntil.get(id)
    if (until === undefined) return false
    if (this.now() < until) return true
    this.ejectedUntil.delete(id)
    return false
  }

  /** A response came back: the failure streak ends. */
  recordSuccess(id: string): void {
    this.streaks.delete(id)
  }

  /**
   * A connect failure or a socket error without a response. After
   * `ejectAfterFailures` in a row the endpoint is ejected for `ejectionMs`,
   * unless it is the backend's last one not ejected. Returns true on ejection.
   */
  recordFailure(id: string, backendEndpoints: readonly Endpoint[]): boolean {
    const n = (this.streaks.get(id) ?? 0) + 1
    this.streaks.set(id, n)
    if (n < ejectAfterFailures || this.isEjected(id)) return false
    const others = backendEndpoints.filter((e) => e.id !== id && !this.isEjected(e.id))
    if (others.length === 0) return false
    this.ejectedUntil.set(id, this.now() + ejectionMs)
    this.streaks.delete(id)
    return true
  }

  /** Forget endpoints and backends no longer in the state. */
  retain(backends: ReadonlySet<string>, endpointIds: ReadonlySet<string>): void {
    for (const k of this.cursors.keys()) if (!backends.has(k)) this.cursors.delete(k)
    for (const m of [this.streaks, this.ejectedUntil]) for (const k of m.keys()) if (!endpointIds.has(k)) m.delete(k)
  }
}
