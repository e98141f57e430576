// ClusterDns: the cluster DNS server of one node. UDP and TCP listeners on
// each listen address feed every query through the handler chain (chain.ts);
// the zone is kept current by ZoneSync (push model, precompiled answers).
//
// Lifecycle: start() binds the listeners (errors such as EADDRINUSE reject)
// and starts the informers in the background; cluster names answer SERVFAIL
// until whenSynced() resolves. stop() closes listeners, informers and the
// upstream socket.
//
// Bounded work: a UDP packet is handled in one bounded pass (wire.ts); TCP
// connections are capped in number, idle time and message size (64 KiB).

import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server, type Socket as TcpSocket } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { ApiClient } from '../../controlplane/client/client.ts'
import type { Logger } from '../../lib/log.ts'
import type { Registry } from '../../lib/metrics.ts'
import { buildChain, runChain } from './chain.ts'
import type { CompiledZone } from './compile.ts'
import { Forwarder, readUpstreams, type Upstream } from './forward.ts'
import { createDnsMetrics, type DnsMetrics } from './metrics.ts'
import type { Handler, Reply } from './types.ts'
import { parseQuery, RCODE, rcodeReply } from './wire.ts'
import { ZoneSync } from './zone-sync.ts'
import type { Zone } from './zone.ts'

export interface ListenAddress {
  host: string
  /** 0 picks a free port (the same one for UDP and TCP is not guaranteed then; tests pass a port). */
  port: number
}

export interface ClusterDnsOptions {
  client: ApiClient
  logger: Logger
  listen: ListenAddress[]
  /** The cluster domain (default cluster.local). */
  zone?: string
  /** TTL of cluster records and negative answers, seconds (default 5). */
  ttl?: number
  /** Upstream resolvers; default: the nameservers of /etc/resolv.conf (minus our own addresses). */
  upstreams?: Upstream[]
  /** Clients allowed to recurse (CIDRs) besides loopback and the host's own addresses (always allowed): pass the cluster CIDR. */
  allowRecursion?: string[]
  /** The cluster DNS Service address (the apex NS glue); default 10.96.0.10. */
  dnsIP?: string
  metricsRegistry?: Registry
  /** Upstream timeout per attempt (default 2000 ms). */
  upstreamTimeoutMs?: number
}

const maxTcpConnections = 512

/** The host's own IPv4 addresses: the host's queries DNATed to us come from one of them. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((xs) => (xs ?? []).filter((x) => x.family === 'IPv4').map((x) => `${x.address}/32`))
}
const tcpIdleMs = 10_000

export class ClusterDns {
  readonly metrics: DnsMetrics
  #o: ClusterDnsOptions
  #log: Logger
  #sync: ZoneSync
  #forwarder: Forwarder
  #chain: Handler[]
  #udp: Socket[] = []
  #tcp: Server[] = []
  #conns = new Set<TcpSocket>()

  constructor(opts: ClusterDnsOptions) {
    this.#o = opts
    this.#log = opts.logger.child({ component: 'cluster-dns' })
    this.metrics = createDnsMetrics({ registry: opts.metricsRegistry })
    const origin = (opts.zone ?? 'cluster.local').replace(/\.$/, '').toLowerCase()
    const dnsIP = opts.dnsIP ?? '10.96.0.10'
    this.#sync = new ZoneSync({ client: opts.client, logger: this.#log, origin, ttl: opts.ttl ?? 5, dnsIP, metrics: this.metrics })
    const own = [dnsIP, ...opts.listen.map((l) => l.host)]
    const upstreams = opts.upstreams ?? readUpstreams({ exclude: own })
    this.#forwarder = new Forwarder({ upstreams, logger: this.#log, timeoutMs: opts.upstreamTimeoutMs, onCache: (hit) => this.metrics.cache(hit) })
    this.#chain = buildChain({
      origin, metrics: this.metrics, forwarder: this.#forwarder,
      synced: () => this.#sync.zone !== undefined,
      zone: () => this.#sync.zone,
      allowRecursion: ['127.0.0.0/8', ...localAddresses(), ...(opts.allowRecursion ?? [])],
    })
  }

  get zone(): CompiledZone | undefined {
    return this.#sync.zone
  }

  get zoneData(): Zone | undefined {
    return this.#sync.data
  }

  whenSynced(): Promise<void> {
    return this.#sync.whenSynced()
  }

  /** The bound addresses (resolved ports), UDP first. */
  get addresses(): Array<{ host: string; port: number; transport: 'udp' | 'tcp' }> {
    return [
      ...this.#udp.map((s) => ({ host: s.address().address, port: s.address().port, transport: 'udp' as const })),
      ...this.#tcp.map((s) => {
        const a = s.address() as { address: string; port: number }
        return { host: a.address, port: a.port, transport: 'tcp' as const }
      }),
    ]
  }

  async start(): Promise<void> {
    try {
      for (const l of this.#o.listen) {
        this.#udp.push(await this.#listenUdp(l))
        this.#tcp.push(await this.#listenTcp(l))
      }
    } catch (e) {
      await this.stop()
      throw e
    }
    this.#sync.start()
    this.#log.info({ listen: this.#o.listen }, 'cluster DNS listening')
  }

  async stop(): Promise<void> {
    this.#sync.stop()
    this.#forwarder.close()
    for (const s of this.#udp) s.close()
    for (const c of this.#conns) c.destroy()
    await Promise.all(this.#tcp.map((s) => new Promise((r) => s.close(r))))
    this.#udp = []
    this.#tcp = []
  }

  /** Answer one message (also the unit tests' entry point). Never throws. */
  handle(msg: Buffer, transport: 'udp' | 'tcp', client: string): Reply | Promise<Reply> {
    const parsed = parseQuery(msg, transport, client)
    if ('drop' in parsed) return null
    if ('reply' in parsed) return parsed.reply
    const q = parsed.query
    const fail = (e: unknown): Reply => {
      this.#log.error({ err: (e as Error)?.message }, 'DNS handler failed')
      return rcodeReply(q, RCODE.SERVFAIL)
    }
    try {
      const r = runChain(this.#chain, q)
      return r instanceof Promise ? r.catch(fail) : r
    } catch (e) {
      return fail(e)
    }
  }

  async #listenUdp(l: ListenAddress): Promise<Socket> {
    const sock = createSocket({ type: 'udp4' })
    sock.on('message', (msg, rinfo) => {
      const r = this.handle(msg, 'udp', rinfo.address)
      const send = (b: Reply) => b && sock.send(b, rinfo.port, rinfo.address)
      if (r instanceof Promise) void r.then(send)
      else send(r)
    })
    sock.on('error', (e) => this.#log.warn({ err: e.message }, 'DNS UDP socket error'))
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(l.port, l.host, () => {
        sock.off('error', reject)
        resolve()
      })
    })
    try {
      sock.setRecvBufferSize(4 << 20)
    } catch {
      // best effort: bounded by net.core.rmem_max
    }
    return sock
  }

  async #listenTcp(l: ListenAddress): Promise<Server> {
    const srv = createServer((c) => this.#serveTcp(c))
    srv.maxConnections = maxTcpConnections
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(l.port, l.host, () => {
        srv.off('error', reject)
        resolve()
      })
    })
    return srv
  }

  /** RFC 7766 framing (2-byte length); replies may come back out of order. */
  #serveTcp(c: TcpSocket): void {
    this.#conns.add(c)
    c.setTimeout(tcpIdleMs, () => c.destroy())
    c.on('close', () => this.#conns.delete(c))
    c.on('error', () => c.destroy())
    let buf = Buffer.alloc(0)
    const write = (b: Reply) => {
      if (!b || c.destroyed) return
      const len = Buffer.alloc(2)
      len.writeUInt16BE(b.length)
      c.write(Buffer.concat([len, b]))
    }
    c.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0))
        buf = buf.subarray(2 + msg.length)
        const r = this.handle(msg, 'tcp', c.remoteAddress ?? '')
        if (r instanceof Promise) void r.then(write)
        else write(r)
      }
    })
  }
}
