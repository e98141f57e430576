// The disk guard: refuse writes before the disk under Redis is full, so that
// Redis never meets ENOSPC (README.md, "Disk full").
//
// With `appendfsync always`, Redis 7 exits on an AOF write error, before it
// answers: no false 2xx, but reads stop with it. Redis cannot be asked to
// refuse writes instead (7.0 has no such switch), so the store stops sending
// them: before every write (and before the epoch script when it would write)
// it reads the free space of every guarded directory with statfs, and below
// the reserve the write fails with DiskFullError (503), nothing sent. The
// next write after space returns reads again and goes through: no restart,
// no background loop.
//
// Cost: statfsSync is about 2.3 µs per directory on these machines (tmpfs
// and ext4 alike; the async statfs is ~30 µs through the thread pool), and a
// reading is reused for maxAgeMs (10 ms), so a burst of writes pays it once.

import { statfsSync } from 'node:fs'
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from '../../lib/metrics.ts'
import { StoreError } from './types.ts'

export const defaultDiskReserveBytes = 64 * 1024 * 1024
export const defaultDiskMaxAgeMs = 10

export interface DiskGuardOptions {
  /** Directories holding Redis data (AOF): every Redis whose disk a write reaches. */
  dirs: string[]
  /** Writes are refused while any dir has less than this free. */
  reserveBytes: number
  /** A reading is reused for this long. Default 10 ms. */
  maxAgeMs?: number
  logger: Logger
  metrics: DiskMetrics
  /** Free bytes of the file system holding dir (tests pass a fake). */
  freeBytes?: (dir: string) => number
  now?: () => number
}

export interface DiskReading {
  dir: string
  freeBytes: number
}

/** A write refused because the disk under Redis is nearly full (a 503, like any 'unavailable'). */
export class DiskFullError extends StoreError {
  readonly dir: string
  readonly freeBytes: number
  readonly reserveBytes: number
  constructor(what: string, low: DiskReading, reserveBytes: number) {
    super('unavailable', noSpaceMessage(what, low, reserveBytes))
    this.name = 'DiskFullError'
    this.dir = low.dir
    this.freeBytes = low.freeBytes
    this.reserveBytes = reserveBytes
  }
}

export const noSpaceCode = 'SKIFF_ERR_STORE_NO_SPACE'

export function noSpaceMessage(what: string, low: DiskReading, reserveBytes: number): string {
  return (
    `${noSpaceCode}: ${what} not written: the disk under Redis is nearly full (${low.dir} has ${formatBytes(low.freeBytes)} free, ` +
    `below the ${formatBytes(reserveBytes)} reserve); writes are refused so that Redis does not run out of space and stop, reads go on. ` +
    `Free space there: writes resume by themselves once ${formatBytes(reserveBytes)} are free`
  )
}

/** The reading that stops writes: the dir with the least free space, when that is below the reserve. */
export function lowDisk(readings: readonly DiskReading[], reserveBytes: number): DiskReading | undefined {
  let lowest: DiskReading | undefined
  for (const r of readings) if (!lowest || r.freeBytes < lowest.freeBytes) lowest = r
  return lowest && lowest.freeBytes < reserveBytes ? lowest : undefined
}

const units: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 }

/** '64Mi', '64MiB', '500M', '1Gi', '4096' (bytes) -> bytes; an Error naming the input otherwise. */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?$/i.exec(String(text).trim())
  const n = m ? Number(m[1]) * units[(m[2] ?? '').toLowerCase()]! : NaN
  if (!Number.isFinite(n) || !Number.isSafeInteger(Math.floor(n))) {
    throw new Error(`not a size: ${JSON.stringify(text)} (bytes, or a number with Ki, Mi, Gi, Ti, K, M, G, T)`)
  }
  return Math.floor(n)
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${(n / size).toFixed(1).replace(/\.0$/, '')} ${unit}`
  }
  return `${n} B`
}

/** Free bytes for an unprivileged writer (bavail: Redis usually does not run as root). */
export function statfsFreeBytes(dir: string): number {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

export interface DiskMetrics {
  free: Gauge<string>
  reserve: Gauge<string>
  refused: Counter<string>
}

/**
 * Made with the store, registered by whoever serves /metrics
 * (RedisStore.registerMetrics). `refresh` takes a reading when scraped, so
 * the gauge is fresh even when nothing writes.
 */
export function diskMetrics(refresh: () => void): DiskMetrics {
  return {
    free: new Gauge({ name: 'skiff_store_disk_free_bytes', help: 'Free bytes on each directory holding Redis data (disk guard)', labelNames: ['dir'], registers: [], collect: refresh }),
    reserve: new Gauge({ name: 'skiff_store_disk_reserve_bytes', help: 'Writes are refused while a Redis data directory has less free than this', registers: [] }),
    refused: new Counter({ name: 'skiff_store_disk_refused_writes_total', help: 'Writes refused because the disk under Redis was nearly full', labelNames: ['dir'], registers: [] }),
  }
}

export class DiskGuard {
  readonly dirs: readonly string[]
  readonly reserveBytes: number
  private readonly maxAgeMs: number
  private readonly log: Logger
  private readonly metrics: DiskMetrics
  private readonly freeBytes: (dir: string) => number
  private readonly now: () => number
  private readAt = -Infinity
  private low?: DiskReading
  /** Dirs whose statfs failed (logged once each; not counted as low). */
  private readonly unreadable = new Set<string>()

  constructor(o: DiskGuardOptions) {
    if (!o.dirs.length) throw new Error('store: the disk guard needs at least one directory')
    if (!Number.isSafeInteger(o.reserveBytes) || o.reserveBytes < 1) throw new Error(`store: the disk reserve must be a positive number of bytes, got ${o.reserveBytes}`)
    this.dirs = [...new Set(o.dirs)]
    this.reserveBytes = o.reserveBytes
    this.maxAgeMs = o.maxAgeMs ?? defaultDiskMaxAgeMs
    this.log = o.logger
    this.metrics = o.metrics
    this.freeBytes = o.freeBytes ?? statfsFreeBytes
    this.now = o.now ?? (() => performance.now())
    this.metrics.reserve.set(this.reserveBytes)
    // A missing or unreadable dir is a mistake in the flags: say so at start, not at the first write.
    for (const dir of this.dirs) {
      try {
        this.freeBytes(dir)
      } catch (err) {
        throw new Error(`store: cannot read the free space of the Redis data directory ${dir}: ${(err as Error).message}`)
      }
    }
  }

  /** Throws DiskFullError (and counts it) when a guarded dir is below the reserve; `what` names the write. */
  check(what: string): void {
    const err = this.refusal(what)
    if (err) this.refuse(err)
  }

  /** The DiskFullError a write would get now, or undefined; not counted until refuse(). */
  refusal(what: string): DiskFullError | undefined {
    if (this.now() - this.readAt > this.maxAgeMs) this.read()
    return this.low && new DiskFullError(what, this.low, this.reserveBytes)
  }

  /** Count a refused write and throw its error. */
  refuse(err: DiskFullError): never {
    this.metrics.refused.inc({ dir: err.dir })
    throw err
  }

  /** Take a fresh reading of every dir; logs once when writes stop and once when they resume. */
  read(): void {
    const readings: DiskReading[] = []
    for (const dir of this.dirs) {
      try {
        const freeBytes = this.freeBytes(dir)
        this.unreadable.delete(dir)
        readings.push({ dir, freeBytes })
        this.metrics.free.set({ dir }, freeBytes)
      } catch (err) {
        if (!this.unreadable.has(dir)) this.log.warn({ dir, err: (err as Error).message }, 'store: cannot read the free space of a Redis data directory; not guarding it until it can be read')
        this.unreadable.add(dir)
      }
    }
    this.readAt = this.now()
    const low = lowDisk(readings, this.reserveBytes)
    if (low && !this.low) {
      this.log.error(
        { dir: low.dir, freeBytes: low.freeBytes, reserveBytes: this.reserveBytes, code: noSpaceCode },
        `store: the disk under Redis is nearly full (${low.dir}: ${formatBytes(low.freeBytes)} free, reserve ${formatBytes(this.reserveBytes)}); ` +
          'refusing writes (503) until space is freed there; reads go on',
      )
    } else if (!low && this.low) {
      this.log.info({ dirs: this.dirs, freeBytes: Object.fromEntries(readings.map((r) => [r.dir, r.freeBytes])) }, 'store: disk space under Redis is back above the reserve; writes resume')
    }
    this.low = low
  }
}

export interface DiskGuardSettings {
  /** Directories holding Redis data; without them, see startDiskGuard. */
  dirs?: string[]
  /** Default 64 MiB; 0 turns the guard off. */
  reserveBytes?: number
  maxAgeMs?: number
}

/**
 * The guard for the store, or none (said in a log line): the given dirs; or,
 * for one Redis on this machine (loopback or a Unix socket), the dir Redis
 * names with CONFIG GET dir when that path exists here. Under Sentinel the
 * primary moves between machines and replicas write too, so only given dirs
 * are guarded there.
 */
export async function startDiskGuard(o: {
  settings: DiskGuardSettings | undefined
  /** One Redis (no Sentinel) reached on this machine. */
  localRedis: boolean
  /** CONFIG GET dir of the connected Redis. */
  redisDir: () => Promise<string | undefined>
  logger: Logger
  metrics: DiskMetrics
}): Promise<DiskGuard | undefined> {
  const reserveBytes = o.settings?.reserveBytes ?? defaultDiskReserveBytes
  const hint = 'pass the directories holding Redis data (skiff server --redis-data-dir) to refuse writes before its disk fills up'
  if (reserveBytes === 0) {
    o.logger.info('store: disk guard off (reserve 0): if the disk under Redis fills up, Redis stops and both writes and reads answer 503')
    return undefined
  }
  let dirs = o.settings?.dirs?.filter(Boolean) ?? []
  let source = 'configured'
  if (!dirs.length) {
    const why = !o.localRedis ? 'Redis is not on this machine (or runs under Sentinel)' : await detectable(o.redisDir)
    if (typeof why === 'string') {
      o.logger.info(`store: no disk guard: ${why}; ${hint}`)
      return undefined
    }
    dirs = [why.dir]
    source = 'CONFIG GET dir'
  }
  const guard = new DiskGuard({ dirs, reserveBytes, maxAgeMs: o.settings?.maxAgeMs, logger: o.logger, metrics: o.metrics })
  guard.read()
  o.logger.info({ dirs: guard.dirs, reserveBytes, source }, `store: disk guard on: writes are refused while a Redis data directory has less than ${formatBytes(reserveBytes)} free`)
  return guard
}

/** Redis's dir when it exists on this machine, or why not. */
async function detectable(redisDir: () => Promise<string | undefined>): Promise<{ dir: string } | string> {
  let dir: string | undefined
  try {
    dir = await redisDir()
  } catch (err) {
    return `cannot ask Redis for its dir (${(err as Error).message})`
  }
  if (!dir) return 'Redis did not name its dir'
  try {
    statfsFreeBytes(dir)
  } catch {
    return `Redis's dir ${dir} is not on this machine's file system`
  }
  return { dir }
}

export function isLoopback(address: string | undefined): boolean {
  return !!address && /^(127\.|::1$|::ffff:127\.|localhost$)/.test(address)
}
