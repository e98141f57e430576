// WorkerPool: forks and supervises the ingress worker processes of one class
// on one node. All workers listen on the same ports (SO_REUSEPORT). The pool
// keeps the last snapshot and sends it to every worker, including one
// restarted after a crash (backoff 250 ms doubling to 30 s), so a restart
// never serves an old or empty table for longer than it takes to compile.
// `appliedGeneration` is the lowest generation all live workers reported.

import { fork, type ChildProcess } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { AggregatorRegistry } from 'prom-client'
import type { Logger } from '../../lib/log.ts'
import type { FromWorker, IngressSnapshot, ToWorker, WorkerConfig } from './snapshot.ts'

export interface WorkerPoolOptions {
  config: Omit<WorkerConfig, 'index'>
  /** Default: os.availableParallelism(). */
  workers?: number
  logger: Logger
  /** SKIFF_LOG_LEVEL of the workers (access logs are 'info'); default: inherited. */
  logLevel?: string
}

interface Slot {
  index: number
  child?: ChildProcess
  listening: boolean
  applied: number
  restarts: number
  timer?: NodeJS.Timeout
}

const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url))
const maxBackoffMs = 30_000
const killGraceMs = 5_000

export class WorkerPool {
  private readonly opts: WorkerPoolOptions
  private readonly slots: Slot[]
  private readonly log: Logger
  private last: IngressSnapshot | undefined
  private stopping = false
  private nextMetricsId = 1
  private readonly pendingMetrics = new Map<number, (m: unknown[]) => void>()
  private readonly waiters = new Set<() => void>()

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts
    this.log = opts.logger.child({ component: 'ingress-pool', class: opts.config.className })
    const n = Math.max(1, opts.workers ?? availableParallelism())
    this.slots = Array.from({ length: n }, (_, index) => ({ index, listening: false, applied: 0, restarts: 0 }))
  }

  /** Resolves when every worker listens; rejects with a worker's 'fatal' message (EADDRINUSE, EADDRNOTAVAIL...) after stopping the others. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((s) => this.spawn(s)))
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /** Sends the snapshot to every worker; kept for workers started later. */
  apply(snapshot: IngressSnapshot): void {
    this.last = snapshot
    for (const s of this.slots) if (s.listening) this.send(s, { type: 'snapshot', snapshot })
  }

  get lastSnapshot(): IngressSnapshot | undefined {
    return this.last
  }

  /** The lowest generation every live worker has applied (0 before any). */
  get appliedGeneration(): number {
    const live = this.slots.filter((s) => s.child && s.child.exitCode === null)
    return live.length === 0 ? 0 : Math.min(...live.map((s) => s.applied))
  }

  get pids(): number[] {
    return this.slots.flatMap((s) => (s.child?.pid !== undefined && s.child.exitCode === null ? [s.child.pid] : []))
  }

  async waitForGeneration(generation: number, timeoutMs: number): Promise<void> {
    if (this.appliedGeneration >= generation) return
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.appliedGeneration < generation) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`ingress workers did not apply generation ${generation} within ${timeoutMs} ms (applied: ${this.appliedGeneration})`))
      }, timeoutMs)
      this.waiters.add(check)
    })
  }

  /** Every worker's metrics, merged (AggregatorRegistry) into Prometheus text. */
  async metrics(timeoutMs = 5_000): Promise<string> {
    const live = this.slots.filter((s) => s.listening && s.child?.connected)
    const parts = await Promise.all(live.map((s) => this.askMetrics(s, timeoutMs)))
    return await AggregatorRegistry.aggregate(parts.filter((p) => p.length > 0) as any).metrics()
  }

  private askMetrics(s: Slot, timeoutMs: number): Promise<unknown[]> {
    const id = this.nextMetricsId++
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingMetrics.delete(id)
        resolve([])
      }, timeoutMs)
      this.pendingMetrics.set(id, (m) => {
        clearTimeout(timer)
        resolve(m)
      })
      this.send(s, { type: 'metrics', id })
    })
  }

  /** Workers stop accepting, finish in-flight requests and exit; SIGKILL after drainMs + 5 s. No restarts afterwards. */
  async drain(drainMs: number): Promise<void> {
    this.stopping = true
    for (const s of this.slots) clearTimeout(s.timer)
    await Promise.all(this.slots.map((s) => {
      const c = s.child
      if (!c || c.exitCode !== null || c.signalCode !== null) return undefined
      this.send(s, { type: 'drain', drainMs })
      const kill = setTimeout(() => c.kill('SIGKILL'), drainMs + killGraceMs)
      return exited(c).finally(() => clearTimeout(kill))
    }))
  }

  /** Kills every worker now (SIGKILL) and waits for the exits. */
  async stop(): Promise<void> {
    this.stopping = true
    for (const s of this.slots) clearTimeout(s.timer)
    await Promise.all(this.slots.map((s) => {
      const c = s.child
      if (!c || c.exitCode !== null || c.signalCode !== null) return undefined
      c.kill('SIGKILL')
      return exited(c)
    }))
  }

  private send(s: Slot, msg: ToWorker): void {
    if (s.child?.connected) s.child.send(msg, (err) => err && this.log.debug({ err, worker: s.index }, 'ingress worker IPC send failed'))
  }

  private spawn(s: Slot): Promise<void> {
    const config: WorkerConfig = { ...this.opts.config, index: s.index }
    const env = this.opts.logLevel ? { ...process.env, SKIFF_LOG_LEVEL: this.opts.logLevel } : process.env
    const child = fork(workerPath, [JSON.stringify(config)], { execPath: process.execPath, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env })
    s.child = child
    s.listening = false
    s.applied = 0
    return new Promise((resolve, reject) => {
      let settled = false
      child.on('message', (msg: FromWorker) => {
        if (msg.type === 'listening') {
          s.listening = true
          s.restarts = 0
          if (this.last) this.send(s, { type: 'snapshot', snapshot: this.last })
          settled = true
          resolve()
        } else if (msg.type === 'fatal') {
          this.log.error({ worker: s.index, message: msg.message }, 'ingress worker cannot start')
          if (!settled) reject(new Error(msg.message))
          settled = true
        } else if (msg.type === 'applied') {
          s.applied = Math.max(s.applied, msg.generation)
          for (const w of [...this.waiters]) w()
        } else if (msg.type === 'metrics') {
          this.pendingMetrics.get(msg.id)?.(msg.metrics)
          this.pendingMetrics.delete(msg.id)
        }
      })
      child.once('exit', (code, signal) => {
        s.listening = false
        for (const w of [...this.waiters]) w()
        if (!settled) {
          settled = true
          reject(new Error(`ingress worker ${s.index} exited before listening (code ${code}, signal ${signal})`))
          return
        }
        if (this.stopping) return
        const delay = Math.min(maxBackoffMs, 250 * 2 ** s.restarts)
        s.restarts++
        this.log.warn({ worker: s.index, code, signal, restartInMs: delay }, 'ingress worker died; restarting')
        s.timer = setTimeout(() => {
          if (!this.stopping) this.spawn(s).catch((err) => this.log.error({ err, worker: s.index }, 'ingress worker restart failed'))
        }, delay)
      })
    })
  }
}

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => c.once('exit', () => resolve()))
}
