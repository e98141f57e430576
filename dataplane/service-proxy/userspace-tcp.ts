// TCP listener of the userspace backend: accept, choose an endpoint, connect,
// pipe both ways (pipe() gives backpressure), try one other endpoint when the
// first connect fails, and reset the client when none is left. Half-close is
// passed through (allowHalfOpen), so request/response protocols that shut
// down their write side still get the answer.

import net from 'node:net'
import type { Logger } from '../../lib/log.ts'
import type { ProxyMetrics } from './userspace-metrics.ts'
import type { Endpoint } from './types.ts'
import { endpointKey, type ListenerSpec } from './userspace-plan.ts'

export interface ListenerContext {
  /**
   * The endpoint for a new connection or session from `clientIP`, never one
   * in `exclude`; undefined: reset it. Asked per connection, so an apply()
   * that swaps endpoint sets affects only new connections.
   */
  choose: (spec: ListenerSpec, clientIP: string, exclude?: ReadonlySet<string>) => Endpoint | undefined
  /** Endpoint keys the listener's service port still has: UDP sessions to any other are stale. */
  live: (spec: ListenerSpec) => ReadonlySet<string>
  metrics: ProxyMetrics
  log: Logger
  connectTimeoutMs: number
  udpIdleMs: number
}

export interface ProxyListener {
  spec: ListenerSpec
  listen(): Promise<void>
  /** Stop accepting; with `destroy`, also end every connection or session it carries. */
  close(opts: { destroy: boolean }): Promise<void>
  /** UDP: close sessions whose endpoint is no longer in the listener's set. */
  dropStale(): void
  /** Open TCP connections (UDP: 0, its sessions end with the listener). */
  readonly connections: number
}

/** Connect attempts per client connection: the first choice and one other (kube-proxy's userspace mode retried too). */
const maxAttempts = 2

export class TcpListener implements ProxyListener {
  spec: ListenerSpec
  readonly #ctx: ListenerContext
  readonly #server: net.Server
  readonly #open = new Set<net.Socket>()
  #closed = false

  constructor(spec: ListenerSpec, ctx: ListenerContext) {
    this.spec = spec
    this.#ctx = ctx
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.#accept(s))
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e)
      this.#server.once('error', onError)
      // reusePort: several agents on one host each listen on the same ClusterIP:port.
      this.#server.listen({ host: this.spec.ip, port: this.spec.port, reusePort: true }, () => {
        this.#server.off('error', onError)
        this.#server.on('error', (e) => this.#ctx.log.warn({ err: e, listener: this.spec.key }, 'listener error'))
        resolve()
      })
    })
  }

  async close(opts: { destroy: boolean }): Promise<void> {
    // close() stops accepting at once; its callback would wait for every open
    // connection to end, which apply() must not do (they keep flowing).
    if (!this.#closed) this.#server.close()
    this.#closed = true
    if (opts.destroy) for (const s of this.#open) s.destroy()
  }

  dropStale(): void {}

  get connections(): number {
    return this.#open.size
  }

  #accept(client: net.Socket): void {
    const id = this.spec.portId
    const m = this.#ctx.metrics
    this.#open.add(client)
    m.active.inc({ service: id, protocol: 'TCP' })
    client.setNoDelay(true)
    let upstream: net.Socket | undefined
    client.on('error', () => upstream?.destroy())
    client.on('close', () => {
      this.#open.delete(client)
      m.active.dec({ service: id, protocol: 'TCP' })
      upstream?.destroy()
    })
    const failed = new Set<string>()
    const attempt = () => {
      const ep = failed.size < maxAttempts ? this.#ctx.choose(this.spec, client.remoteAddress ?? '', failed) : undefined
      if (!ep || client.destroyed) {
        m.rejected.inc({ service: id })
        if (!client.destroyed) client.resetAndDestroy()
        return
      }
      const up = net.connect({ host: ep.ip, port: ep.port, allowHalfOpen: true, noDelay: true, timeout: this.#ctx.connectTimeoutMs })
      upstream = up
      const onFail = () => {
        up.destroy()
        m.connectErrors.inc({ service: id })
        failed.add(endpointKey(ep))
        attempt()
      }
      up.once('timeout', onFail)
      up.once('error', onFail)
      up.once('connect', () => {
        up.off('timeout', onFail).off('error', onFail).setTimeout(0)
        this.#pipe(client, up)
      })
    }
    attempt()
  }

  #pipe(client: net.Socket, up: net.Socket): void {
    const m = this.#ctx.metrics
    const inBytes = m.bytes.labels({ service: this.spec.portId, direction: 'in' })
    const outBytes = m.bytes.labels({ service: this.spec.portId, direction: 'out' })
    // An endpoint reset is passed on as a reset, so the client sees what a direct connection would.
    up.on('error', () => (client.destroyed ? undefined : client.resetAndDestroy()))
    up.on('close', () => client.destroySoon())
    client.on('data', (d: Buffer) => inBytes.inc(d.length))
    up.on('data', (d: Buffer) => outBytes.inc(d.length))
    client.pipe(up)
    up.pipe(client)
    client.resume()
  }
}
