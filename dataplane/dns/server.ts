// ClusterDns: the cluster DNS server of one node. The zone is kept current
// by ZoneSync (push model, precompiled answers; informers in the calling
// thread, the build in a builder thread when workers answer); the queries
// are answered either by worker threads (workers.ts, the default: one
// per core, each with its own SO_REUSEPORT UDP and TCP sockets and event
// loop) or in this thread (`workers: 0`, tests that need `handle()` alone or
// one thread). Names outside the cluster zone are forwarded from this thread
// in both modes (one upstream socket, one cache).
//
// Lifecycle: start() binds the listeners (errors such as EADDRINUSE reject)
// and starts the informers in the background; cluster names answer SERVFAIL
// until whenSynced() resolves (which, with workers, also waits until every
// worker holds the zone). stop() closes listeners, workers, informers and the
// upstream socket.

import type { Socket } from 'node:dgram'
import type { Server, Socket as TcpSocket } from 'node:net'
import { availableParallelism, networkInterfaces } from 'node:os'
import type { ApiClient } from '../../controlplane/client/client.ts'
import type { Logger } from '../../lib/log.ts'
import type { Registry } from '../../lib/metrics.ts'
import { buildChain } from './chain.ts'
import type { CompiledZone } from './compile.ts'
import { Forwarder, readUpstreams, type Upstream } from './forward.ts'
import { answerWith, closeListeners, listenTcp, listenUdp, type Answer, type ListenAddress } from './listen.ts'
import { createDnsMetrics, type DnsMetrics } from './metrics.ts'
import type { Reply } from './types.ts'
import { parseQuery, RCODE, rcodeReply } from './wire.ts'
import { DnsWorkers } from './workers.ts'
import { ZoneSync } from './zone-sync.ts'
import type { Zone } from './zone.ts'

export type { ListenAddress } from './listen.ts'

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
  /**
   * Worker threads answering queries (each its own SO_REUSEPORT sockets);
   * default: the number of cores. 0: answer in this thread (the zone,
   * informers and forwarder are always in this thread).
   */
  workers?: number
}

/** The host's own IPv4 addresses: the host's queries DNATed to us come from one of them. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((xs) => (xs ?? []).filter((x) => x.family === 'IPv4').map((x) => `${x.address}/32`))
}

export class ClusterDns {
  readonly metrics: DnsMetrics
  #o: ClusterDnsOptions
  #log: Logger
  #sync: ZoneSync
  #forwarder: Forwarder
  #answer: Answer
  #workers?: DnsWorkers
  #udp: Socket[] = []
  #tcp: Server[] = []
  #conns = new Set<TcpSocket>()

  constructor(opts: ClusterDnsOptions) {
    this.#o = opts
    this.#log = opts.logger.child({ component: 'cluster-dns' })
    this.metrics = createDnsMetrics({ registry: opts.metricsRegistry })
    const origin = (opts.zone ?? 'cluster.local').replace(/\.$/, '').toLowerCase()
    const dnsIP = opts.dnsIP ?? '10.96.0.10'
    const nWorkers = opts.workers ?? availableParallelism()
    this.#sync = new ZoneSync({
      client: opts.client, logger: this.#log, origin, ttl: opts.ttl ?? 5, dnsIP, metrics: this.metrics,
      // With workers the zone is built in a builder thread too, off this event loop (zone-sync.ts).
      thread: nWorkers > 0,
      onBlock: (block) => this.#workers?.setZone(block),
    })
    const own = [dnsIP, ...opts.listen.map((l) => l.host)]
    const upstreams = opts.upstreams ?? readUpstreams({ exclude: own })
    this.#forwarder = new Forwarder({ upstreams, logger: this.#log, timeoutMs: opts.upstreamTimeoutMs, onCache: (hit) => this.metrics.cache(hit) })
    const allowRecursion = ['127.0.0.0/8', ...localAddresses(), ...(opts.allowRecursion ?? [])]
    const chain = buildChain({
      origin, metrics: this.metrics, forwarder: this.#forwarder,
      synced: () => this.#sync.ready,
      zone: () => this.#sync.zone,
      allowRecursion,
    })
    this.#answer = answerWith(chain, (e) => this.#log.error({ err: (e as Error)?.message }, 'DNS handler failed'))
    if (nWorkers > 0) {
      this.#workers = new DnsWorkers({
        workers: nWorkers, listen: opts.listen, origin, allowRecursion, logger: this.#log,
        forward: (msg, transport, client) => this.#forwardFromWorker(msg, transport, client),
      })
      this.metrics.addSource(() => this.#workers!.stats())
    }
  }

  get zone(): CompiledZone | undefined {
    return this.#sync.zone
  }

  get zoneData(): Zone | undefined {
    return this.#sync.data
  }

  /** The worker threads, when queries are answered there (tests). */
  get workers(): DnsWorkers | undefined {
    return this.#workers
  }

  /** Resolves once the first zone is compiled and, with workers, every worker answers from it. */
  async whenSynced(): Promise<void> {
    await this.#sync.whenSynced()
    await this.#workers?.whenApplied()
  }

  /** The bound addresses (resolved ports), UDP first. */
  get addresses(): Array<{ host: string; port: number; transport: 'udp' | 'tcp' }> {
    if (this.#workers) return this.#workers.addresses
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
      if (this.#workers) await this.#workers.start()
      else {
        for (const l of this.#o.listen) {
          this.#udp.push(await listenUdp(l, this.#answer, { onError: (e) => this.#log.warn({ err: e.message }, 'DNS UDP socket error') }))
          this.#tcp.push(await listenTcp(l, this.#answer, { conns: this.#conns }))
        }
      }
    } catch (e) {
      await this.stop()
      throw e
    }
    this.#sync.start()
    this.#log.info({ listen: this.#o.listen, workers: this.#workers?.size ?? 0 }, 'cluster DNS listening')
  }

  async stop(): Promise<void> {
    this.#sync.stop()
    this.#forwarder.close()
    await this.#workers?.stop()
    await closeListeners(this.#udp, this.#tcp, this.#conns)
    this.#udp = []
    this.#tcp = []
  }

  /** Answer one message in this thread (also the unit tests' entry point). Never throws. */
  handle(msg: Buffer, transport: 'udp' | 'tcp', client: string): Reply | Promise<Reply> {
    return this.#answer(msg, transport, client)
  }

  /** A query a worker's chain passed to the forwarder (metrics, ready, kubernetes and recursion ran there). */
  async #forwardFromWorker(msg: Buffer, transport: 'udp' | 'tcp', client: string): Promise<Reply> {
    const parsed = parseQuery(msg, transport, client)
    if (!('query' in parsed)) return null
    const q = parsed.query
    return await this.#forwarder.resolve(q).catch(() => rcodeReply(q, RCODE.SERVFAIL))
  }
}
