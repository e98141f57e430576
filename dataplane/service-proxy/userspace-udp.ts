// UDP listener of the userspace backend: one socket per service address and
// port; per client ip:port a session with its own upstream socket towards the
// chosen endpoint, whose replies go back to the client from the service
// address. Sessions end after `udpIdleMs` without traffic, and when their
// endpoint leaves the set (dropStale): the userspace analogue of flushing
// stale UDP conntrack entries, so the client's next datagram picks a live one.

import dgram from 'node:dgram'
import { endpointKey, type ListenerSpec } from './userspace-plan.ts'
import type { ListenerContext, ProxyListener } from './userspace-tcp.ts'

interface Session {
  upstream: dgram.Socket
  endpoint: string
  /** performance.now(): the idle timeout survives wall-clock steps. */
  lastSeen: number
  /** The port id when the session opened: apply() may re-label the listener in place. */
  service: string
}

/** Bound on sessions per listener, so a flood of source ports cannot exhaust file descriptors. */
const maxSessions = 4096

export class UdpListener implements ProxyListener {
  spec: ListenerSpec
  readonly #ctx: ListenerContext
  readonly #socket: dgram.Socket
  readonly #sessions = new Map<string, Session>()
  #sweep: NodeJS.Timeout | undefined

  constructor(spec: ListenerSpec, ctx: ListenerContext) {
    this.spec = spec
    this.#ctx = ctx
    this.#socket = dgram.createSocket({ type: spec.ip.includes(':') ? 'udp6' : 'udp4', reuseAddr: false, reusePort: true })
    this.#socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo))
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e)
      this.#socket.once('error', onError)
      this.#socket.bind({ address: this.spec.ip, port: this.spec.port }, () => {
        this.#socket.off('error', onError)
        this.#socket.on('error', (e) => this.#ctx.log.warn({ err: e, listener: this.spec.key }, 'udp listener error'))
        resolve()
      })
    })
    const every = Math.max(100, Math.floor(this.#ctx.udpIdleMs / 3))
    this.#sweep = setInterval(() => this.#expire(), every).unref()
  }

  async close(_opts: { destroy: boolean }): Promise<void> {
    // A UDP session has no connection to keep: closing the address closes its sessions too.
    clearInterval(this.#sweep)
    for (const key of [...this.#sessions.keys()]) this.#end(key)
    await new Promise<void>((resolve) => {
      try {
        this.#socket.close(() => resolve())
      } catch {
        resolve()
      }
    })
  }

  dropStale(): void {
    const live = this.#ctx.live(this.spec)
    for (const [key, s] of this.#sessions) if (!live.has(s.endpoint)) this.#end(key)
  }

  #receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`
    let s = this.#sessions.get(key)
    if (!s) {
      if (this.#sessions.size >= maxSessions) this.#expire(true)
      s = this.#open(key, rinfo)
      if (!s) return
    }
    s.lastSeen = performance.now()
    const [ip, port] = splitKey(s.endpoint)
    this.#ctx.metrics.bytes.inc({ service: this.spec.portId, direction: 'in' }, msg.length)
    s.upstream.send(msg, port, ip)
  }

  #open(key: string, client: dgram.RemoteInfo): Session | undefined {
    const ep = this.#ctx.choose(this.spec, client.address)
    if (!ep) {
      this.#ctx.metrics.rejected.inc({ service: this.spec.portId })
      return undefined
    }
    const upstream = dgram.createSocket(ep.ip.includes(':') ? 'udp6' : 'udp4')
    const s: Session = { upstream, endpoint: endpointKey(ep), lastSeen: performance.now(), service: this.spec.portId }
    upstream.on('message', (reply, from) => {
      if (from.address !== ep.ip || from.port !== ep.port) return
      s.lastSeen = performance.now()
      this.#ctx.metrics.bytes.inc({ service: this.spec.portId, direction: 'out' }, reply.length)
      this.#socket.send(reply, client.port, client.address)
    })
    upstream.on('error', () => {
      this.#ctx.metrics.connectErrors.inc({ service: this.spec.portId })
      this.#end(key)
    })
    this.#sessions.set(key, s)
    this.#ctx.metrics.active.inc({ service: this.spec.portId, protocol: 'UDP' })
    return s
  }

  #end(key: string): void {
    const s = this.#sessions.get(key)
    if (!s) return
    this.#sessions.delete(key)
    this.#ctx.metrics.active.dec({ service: s.service, protocol: 'UDP' })
    try {
      s.upstream.close()
    } catch {}
  }

  /** End idle sessions; with `oldest`, also the least recently used one to make room. */
  #expire(oldest = false): void {
    const cutoff = performance.now() - this.#ctx.udpIdleMs
    let lru: [string, number] | undefined
    for (const [key, s] of this.#sessions) {
      if (s.lastSeen <= cutoff) this.#end(key)
      else if (!lru || s.lastSeen < lru[1]) lru = [key, s.lastSeen]
    }
    if (oldest && this.#sessions.size >= maxSessions && lru) this.#end(lru[0])
  }

  get connections(): number {
    return 0
  }

  /** Sessions currently open (for tests and the debug table). */
  get sessions(): number {
    return this.#sessions.size
  }
}

function splitKey(k: string): [string, number] {
  const i = k.lastIndexOf(':')
  const host = k.slice(0, i)
  return [host.startsWith('[') ? host.slice(1, -1) : host, Number(k.slice(i + 1))]
}
