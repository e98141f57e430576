// DnsWorkers: the cluster DNS answered by N worker threads (node:worker_threads),
// each with its own UDP and TCP sockets on the same address and port
// (SO_REUSEPORT: the kernel spreads queries across them) and its own event
// loop, so neither the main thread's other work (the service proxy's nft
// syncs run in the same agent process) nor the one-socket ceiling of a
// Node.js event loop limits answering.
//
// The main thread keeps the informers and builds and compiles the zone once
// per change (zone-sync.ts); the compiled zone goes to every worker as one
// SharedArrayBuffer (zone-wire.ts). Names for the upstream resolvers come
// back to the main thread, which owns the one Forwarder (one cache per node,
// as before) and sends the reply back to the worker that owns the client's
// socket. A worker that dies is started again (backoff 250 ms doubling to
// 30 s) with the current zone; its counts so far are kept.

import { Worker } from 'node:worker_threads'
import type { Logger } from '../../lib/log.ts'
import type { ListenAddress } from './listen.ts'
import { addSnapshot, emptySnapshot, type StatsSnapshot } from './metrics.ts'
import type { Reply } from './types.ts'

/** workerData of a DNS worker. Ports are concrete for every worker after the first (port 0 is resolved by the first). */
export interface WorkerSetup {
  index: number
  listen: Array<{ host: string; udp: number; tcp: number }>
  origin: string
  allowRecursion: string[]
}

export type ToWorker =
  | { type: 'zone'; zone: SharedArrayBuffer; serial: number }
  | { type: 'forwarded'; id: number; reply: Uint8Array | null }
  | { type: 'stats'; id: number }
  | { type: 'stop' }

export interface BoundAddress {
  host: string
  port: number
  transport: 'udp' | 'tcp'
}

export type FromWorker =
  | { type: 'listening'; addresses: BoundAddress[] }
  | { type: 'fatal'; message: string; code?: string }
  | { type: 'forward'; id: number; msg: Uint8Array; transport: 'udp' | 'tcp'; client: string }
  | { type: 'stats'; id: number; stats: StatsSnapshot }
  | { type: 'zoneApplied'; serial: number }
  | { type: 'log'; level: 'warn' | 'error'; msg: string; fields: Record<string, unknown> }
  | { type: 'stopped' }

export interface DnsWorkersOptions {
  workers: number
  listen: ListenAddress[]
  origin: string
  allowRecursion: string[]
  logger: Logger
  /** A query the chain passed to the forwarder, answered in the main thread. */
  forward(msg: Buffer, transport: 'udp' | 'tcp', client: string): Promise<Reply>
}

interface Slot {
  index: number
  worker?: Worker
  listening: boolean
  applied: number
  last: StatsSnapshot
  restarts: number
  timer?: NodeJS.Timeout
}

const workerUrl = new URL('./worker.ts', import.meta.url)
const maxBackoffMs = 30_000
const statsTimeoutMs = 1_000
const stopGraceMs = 2_000

export class DnsWorkers {
  #o: DnsWorkersOptions
  #log: Logger
  #slots: Slot[]
  #listen: WorkerSetup['listen']
  #addresses: BoundAddress[] = []
  #zone?: { zone: SharedArrayBuffer; serial: number }
  #retired = emptySnapshot()
  #stopping = false
  #nextId = 1
  #statsWaiters = new Map<number, (s: StatsSnapshot | undefined) => void>()
  #appliedWaiters = new Set<() => void>()

  constructor(opts: DnsWorkersOptions) {
    this.#o = opts
    this.#log = opts.logger
    this.#slots = Array.from({ length: Math.max(1, opts.workers) }, (_, index) => ({ index, listening: false, applied: 0, last: emptySnapshot(), restarts: 0 }))
    this.#listen = opts.listen.map((l) => ({ host: l.host, udp: l.port, tcp: l.port }))
  }

  /** Where the first worker bound (every worker binds the same). */
  get addresses(): BoundAddress[] {
    return this.#addresses
  }

  get size(): number {
    return this.#slots.length
  }

  /** The worker threads' ids (tests). */
  get threadIds(): number[] {
    return this.#slots.flatMap((s) => (s.worker ? [s.worker.threadId] : []))
  }

  /** Resolves when every worker listens; rejects (after stopping the others) with the first failure (EADDRINUSE...). */
  async start(): Promise<void> {
    this.#stopping = false
    try {
      // The first worker resolves port 0; the others bind what it got.
      this.#addresses = await this.#spawn(this.#slots[0]!)
      const udp = this.#addresses.filter((a) => a.transport === 'udp')
      const tcp = this.#addresses.filter((a) => a.transport === 'tcp')
      this.#listen = this.#listen.map((l, i) => ({ host: l.host, udp: udp[i]!.port, tcp: tcp[i]!.port }))
      await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s)))
    } catch (e) {
      await this.stop()
      throw e
    }
  }

  /** Hand a new compiled zone (zone-wire.ts block) to every worker, and to any started later. */
  setZone(zone: SharedArrayBuffer): void {
    this.#zone = { zone, serial: (this.#zone?.serial ?? 0) + 1 }
    for (const s of this.#slots) if (s.listening) this.#post(s, { type: 'zone', ...this.#zone })
  }

  /** Resolves when every live worker answers from the latest zone given to setZone. */
  whenApplied(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.#stopping || !this.#zone || this.#slots.every((s) => !s.listening || s.applied >= this.#zone!.serial)) {
          this.#appliedWaiters.delete(check)
          resolve()
        }
      }
      this.#appliedWaiters.add(check)
      check()
    })
  }

  /** Every worker's counts (fresh, or the last known when a worker does not answer within 1 s), plus those of workers that died. */
  async stats(): Promise<StatsSnapshot> {
    return (await this.statsEach()).reduce(addSnapshot, addSnapshot(emptySnapshot(), this.#retired))
  }

  /** Each worker's counts, in worker order (tests: the kernel spreads flows). */
  statsEach(): Promise<StatsSnapshot[]> {
    return Promise.all(this.#slots.map((s) => this.#readStats(s)))
  }

  async stop(): Promise<void> {
    this.#stopping = true
    for (const w of this.#appliedWaiters) w()
    await Promise.all(this.#slots.map(async (s) => {
      clearTimeout(s.timer)
      const w = s.worker
      if (!w) return
      s.listening = false
      const gone = new Promise<void>((r) => w.once('exit', () => r()))
      w.postMessage({ type: 'stop' } satisfies ToWorker)
      const timer = setTimeout(() => void w.terminate(), stopGraceMs)
      await gone
      clearTimeout(timer)
    }))
    for (const done of this.#statsWaiters.values()) done(undefined)
  }

  #post(s: Slot, m: ToWorker): void {
    s.worker?.postMessage(m)
  }

  #readStats(s: Slot): Promise<StatsSnapshot> {
    if (!s.worker || !s.listening) return Promise.resolve(s.last)
    const id = this.#nextId++
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), statsTimeoutMs)
      const done = (x: StatsSnapshot | undefined) => {
        clearTimeout(timer)
        this.#statsWaiters.delete(id)
        if (x) s.last = x
        resolve(s.last)
      }
      this.#statsWaiters.set(id, done)
      this.#post(s, { type: 'stats', id })
    })
  }

  #spawn(s: Slot): Promise<BoundAddress[]> {
    const setup: WorkerSetup = { index: s.index, listen: this.#listen, origin: this.#o.origin, allowRecursion: this.#o.allowRecursion }
    const w = new Worker(workerUrl, { workerData: setup, name: `skiff-dns-${s.index}` })
    s.worker = w
    s.listening = false
    s.applied = 0
    return new Promise((resolve, reject) => {
      let settled = false
      w.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'listening':
            s.listening = true
            if (this.#zone) this.#post(s, { type: 'zone', ...this.#zone })
            settled = true
            resolve(m.addresses)
            break
          case 'fatal': {
            const err = Object.assign(new Error(`cluster DNS worker ${s.index}: ${m.message}`), { code: m.code })
            if (!settled) {
              settled = true
              reject(err)
            } else this.#log.error({ err: err.message }, 'DNS worker failed')
            void w.terminate()
            break
          }
          case 'forward':
            void this.#o.forward(Buffer.from(m.msg.buffer, m.msg.byteOffset, m.msg.byteLength), m.transport, m.client)
              .catch(() => null)
              .then((reply) => this.#post(s, { type: 'forwarded', id: m.id, reply: reply ? new Uint8Array(reply) : null }))
            break
          case 'stats':
            this.#statsWaiters.get(m.id)?.(m.stats)
            break
          case 'zoneApplied':
            s.applied = Math.max(s.applied, m.serial)
            for (const check of [...this.#appliedWaiters]) check()
            break
          case 'log':
            this.#log[m.level](m.fields, m.msg)
            break
          case 'stopped':
            break
        }
      })
      w.on('error', (e) => {
        this.#log.error({ err: e.message, worker: s.index }, 'DNS worker crashed')
        if (!settled) {
          settled = true
          reject(e)
        }
      })
      w.on('exit', (code) => {
        if (s.worker !== w) return
        s.worker = undefined
        s.listening = false
        // Its counts stay in the totals; a restarted worker counts from zero.
        addSnapshot(this.#retired, s.last)
        s.last = emptySnapshot()
        for (const check of [...this.#appliedWaiters]) check()
        if (!settled) {
          settled = true
          reject(new Error(`cluster DNS worker ${s.index} exited (${code}) before listening`))
        }
        if (this.#stopping) return
        const delay = Math.min(maxBackoffMs, 250 * 2 ** s.restarts++)
        this.#log.error({ worker: s.index, code, restartInMs: delay }, 'DNS worker exited; restarting')
        s.timer = setTimeout(() => this.#spawn(s).then(
          () => void (s.restarts = 0),
          (e: Error) => this.#log.error({ err: e.message, worker: s.index }, 'DNS worker restart failed'),
        ), delay)
      })
    })
  }
}
