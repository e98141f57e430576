// Upstream connections of one ingress worker: an undici Pool per endpoint
// (keep-alive, no pipelining, no connection cap), reused across snapshots.
// undici's HTTP/1.1 client does about twice the requests/s of node:http's
// client with an Agent (bench/README.md, "Ingress data path"), which is most
// of what a proxy spends per request. WebSockets do not come here: they stay
// on http-proxy-3 (proxy.ts).
//
// An endpoint that leaves the snapshot keeps its pool while requests are in
// flight (they finish; nothing new goes there); one on a host that is not
// Ready is cut at once (abort), in flight too, so its requests fail over.

import { Pool } from 'undici'

/** The error in-flight requests of a cut endpoint end with. */
export class EndpointCutError extends Error {
  readonly code = 'ECUT'
  constructor(id: string) {
    super(`connection to ${id} cut: its host is not Ready`)
  }
}

interface Entry { id: string; pool: Pool }

export class UpstreamPool {
  /** By endpoint id and connect timeout (a Pool has one connect timeout). */
  readonly #live = new Map<string, Entry>()
  readonly #departed = new Set<Entry>()

  get(id: string, connectTimeoutMs: number): Pool {
    const key = `${id}/${connectTimeoutMs}`
    let e = this.#live.get(key)
    if (!e) {
      e = { id, pool: new Pool(`http://${id}`, { pipelining: 1, connect: { timeout: connectTimeoutMs }, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 60_000 }) }
      this.#live.set(key, e)
    }
    return e.pool
  }

  /** Keep the pools of these endpoints; the others finish what they carry and close. */
  retain(ids: ReadonlySet<string>): void {
    for (const [key, e] of this.#live) {
      if (ids.has(e.id)) continue
      this.#live.delete(key)
      this.#departed.add(e)
      e.pool.close().catch(() => {}).finally(() => this.#departed.delete(e))
    }
  }

  /** Cut every connection to these endpoints, in flight too: their host is dead and will never answer. Returns the connections cut. */
  abort(ids: Iterable<string>): number {
    const dead = new Set(ids)
    let cut = 0
    for (const e of [...this.#live.values(), ...this.#departed]) {
      if (!dead.has(e.id)) continue
      cut += e.pool.stats.connected
      for (const [key, x] of this.#live) if (x === e) this.#live.delete(key)
      this.#departed.delete(e)
      e.pool.destroy(new EndpointCutError(e.id)).catch(() => {})
    }
    return cut
  }

  destroy(): void {
    for (const e of [...this.#live.values(), ...this.#departed]) e.pool.destroy().catch(() => {})
    this.#live.clear()
    this.#departed.clear()
  }
}
