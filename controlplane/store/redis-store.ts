// The Store (types.ts) on Redis. See README.md for the key layout and the
// reasoning; in short:
//  - writes are one Lua script each (scripts.ts), so the precondition check,
//    the revision, the object, the claims and the event are one atomic step;
//  - watches share one stream reader (watch-hub.ts);
//  - revisions never go backwards: a high-water mark on local disk
//    (revision-mark.ts) and the highest revision seen in memory are checked
//    against the Redis counter, which is jumped ahead if Redis lost data;
//  - encrypted resources are sealed before they leave the process (crypto.ts);
//  - under Sentinel (or with minReplicas > 0) a write is acknowledged only
//    after WAIT says enough replicas have it, and watchers get an event only
//    after the same confirmation;
//  - a Redis or sentinel that answers without a password, or sits inside
//    forbiddenCIDRs, is refused (preflight.ts, address-policy.ts);
//  - writes are refused (503) while the disk under Redis is nearly full, so
//    Redis never meets ENOSPC (disk-guard.ts).

import { randomBytes } from 'node:crypto'
import { setImmediate as nextTick, setTimeout as delay } from 'node:timers/promises'
import type { Redis, RedisOptions } from 'ioredis'
import { pino, type Logger } from 'pino'
import type { KubeObject } from '../api/types.ts'
import type { Registry as MetricsRegistry } from '../../lib/metrics.ts'
import { parseCIDRs, checkAddress, type CIDR } from './address-policy.ts'
import { InflightGuard, connect, nextReady, openConnection, sentinelConnectionOptions } from './connection.ts'
import { Codec } from './crypto.ts'
import { DiskFullError, diskMetrics, isLoopback, startDiskGuard, type DiskGuard, type DiskGuardSettings } from './disk-guard.ts'
import { FailoverWatch } from './failover-watch.ts'
import { preflight, probeRefusal, probeWithoutPassword, type Endpoint, type SentinelOptions } from './preflight.ts'
import { RevisionMark } from './revision-mark.ts'
import { defineScripts, parseWriteReply, writeCommandArgs, type ScriptedRedis, type WriteArgs } from './scripts.ts'
import {
  StoreError,
  type ListResult,
  type Store,
  type StoreEvent,
  type StoreEventType,
  type WatchHandle,
  type WatchOptions,
  type WriteOptions,
} from './types.ts'
import { WatchHub, revisionOf, type HubSource } from './watch-hub.ts'

export type { SentinelOptions } from './preflight.ts'

export interface RedisStoreOptions {
  /**
   * Connection options (host, port, password, ...). The password is
   * required. Under Sentinel these are the options of the primary and the
   * replicas (password, username, tls); host and port are not used.
   */
  redis: RedisOptions
  /** Reach the primary through Redis Sentinel (README.md, "Sentinel"). */
  sentinel?: SentinelOptions
  /**
   * Replicas that must confirm a write (WAIT) before it is acknowledged, and
   * an event before watchers get it. Default 1 under Sentinel, 0 otherwise.
   */
  minReplicas?: number
  /** How long to wait for those confirmations; then 'unavailable' (503). Default 2000. */
  replicaAckTimeoutMs?: number
  /**
   * Address ranges where Redis and the sentinels must not be (the pod and
   * service CIDRs): the store refuses to use a Redis there.
   */
  forbiddenCIDRs?: string[]
  /** Prefix of every key; several clusters can share one Redis. Default 'skiff'. */
  prefix?: string
  /** Local directory for the revision high-water mark. One store per directory. */
  stateDir: string
  /** 32-byte AES-256 key; required when encryptedResources is not empty. */
  encryptionKey?: Buffer
  /** Resources sealed with AES-GCM before they reach Redis. Default ['secrets']. */
  encryptedResources?: string[]
  /** Approximate number of events kept for watches. Default 100000. */
  streamMaxLen?: number
  /**
   * Refuse writes while a directory holding Redis data has less than a
   * reserve free (README.md, "Disk full"). Without dirs, a single Redis on
   * this machine is asked for its dir.
   */
  diskGuard?: DiskGuardSettings
  logger?: Logger
}

/**
 * What `skiff server` is given: one Redis (host, port) or a Sentinel group,
 * plus the replica and address rules. See storeRedisOptions.
 */
export interface StoreRedisConfig {
  /** The single Redis (not used with sentinel). Default 127.0.0.1:6379. */
  host?: string
  port?: number
  /** Redis's password (the primary's and the replicas' under Sentinel). */
  password: string
  sentinel?: SentinelOptions
  minReplicas?: number
  replicaAckTimeoutMs?: number
  forbiddenCIDRs?: string[]
  /** Directories holding Redis data (every Redis of a Sentinel group on this machine), for the disk guard. */
  dataDirs?: string[]
  /** Writes are refused while one of them has less than this free; default 64 MiB, 0 turns the guard off. */
  diskReserveBytes?: number
}

/** The RedisStoreOptions fields for a StoreRedisConfig. */
export function storeRedisOptions(
  cfg: StoreRedisConfig,
): Pick<RedisStoreOptions, 'redis' | 'sentinel' | 'minReplicas' | 'replicaAckTimeoutMs' | 'forbiddenCIDRs' | 'diskGuard'> {
  return {
    redis: cfg.sentinel ? { password: cfg.password } : { host: cfg.host ?? '127.0.0.1', port: cfg.port ?? 6379, password: cfg.password },
    sentinel: cfg.sentinel,
    minReplicas: cfg.minReplicas,
    replicaAckTimeoutMs: cfg.replicaAckTimeoutMs,
    forbiddenCIDRs: cfg.forbiddenCIDRs,
    ...(cfg.dataDirs?.length || cfg.diskReserveBytes !== undefined ? { diskGuard: { dirs: cfg.dataDirs, reserveBytes: cfg.diskReserveBytes } } : {}),
  }
}

/** How long one XREAD blocks; bounded so a stopped store is never stuck. */
const BLOCK_MS = 5_000
const READ_BATCH = 1_000

export class RedisStore implements Store {
  private readonly prefix: string
  private readonly streamMaxLen: number
  private readonly redisOptions: RedisOptions
  private readonly sentinel?: SentinelOptions
  private readonly minReplicas: number
  private readonly replicaAckTimeoutMs: number
  private readonly forbidden: CIDR[]
  private readonly codec: Codec
  private readonly mark: RevisionMark
  private readonly log: Logger
  private readonly diskSettings?: DiskGuardSettings
  /** Set by start() when there are dirs to guard. */
  private disk?: DiskGuard
  private readonly diskMetrics = diskMetrics(() => this.disk?.read())
  private redis?: ScriptedRedis
  /** Dedicated to the hub's blocking XREAD. */
  private blocking?: Redis
  private hub?: WatchHub
  private readonly guard = new InflightGuard()
  private readonly hubGuard = new InflightGuard()
  /** The highest revision this process has returned or seen. */
  private maxObserved = 0
  /** Connected, and the counter checked since the last reconnect. */
  private ready = false
  private stopped = false
  private generation = 0
  private recovering = false
  private recoverAgain = false
  /** Bumped when the main connection closes: a WAIT must run on the connection of its write. */
  private mainGeneration = 0
  /** The WAIT that will follow every write sent so far in this turn (see replicaAck). */
  private ackBatch?: Promise<number>
  /** start() finished: from now on keep looking for sentinels however long it takes. */
  private started = false
  /** Set while the connected Redis fails a check (forbidden address, no password); every call fails with it. */
  private refusal?: string
  /** The primary (address:port) that passed the password probe last. */
  private checkedPeer?: string
  private failoverWatch?: FailoverWatch
  private resolveStopped!: () => void
  private readonly stoppedSignal = new Promise<void>((resolve) => (this.resolveStopped = resolve))

  constructor(opts: RedisStoreOptions) {
    if (!opts.stateDir) throw new Error('store: stateDir is required (it holds the revision high-water mark)')
    this.prefix = opts.prefix ?? 'skiff'
    this.streamMaxLen = opts.streamMaxLen ?? 100_000
    if (!Number.isSafeInteger(this.streamMaxLen) || this.streamMaxLen < 1) {
      throw new Error(`store: streamMaxLen must be a positive integer, got ${opts.streamMaxLen}`)
    }
    if (!opts.redis.password) {
      throw new Error(
        'store: Redis must require a password: set `requirepass` (and `masterauth` on replicas) and pass it as redis.password',
      )
    }
    if ((opts.redis as { sentinels?: unknown }).sentinels) {
      throw new Error('store: pass Sentinel settings as the sentinel option, not inside redis')
    }
    if (opts.sentinel) {
      const s = opts.sentinel
      if (!s.sentinels?.length) throw new Error('store: sentinel.sentinels must list at least one sentinel (host and port)')
      if (!s.name) throw new Error('store: sentinel.name (the master group name of `sentinel monitor`) is required')
      if (!s.password) {
        throw new Error(
          'store: sentinel.password is required: set `requirepass` (and `sentinel sentinel-pass`) in every sentinel.conf; ' +
            'an open sentinel can be told to hand out another Redis as the primary',
        )
      }
    }
    this.sentinel = opts.sentinel
    this.minReplicas = opts.minReplicas ?? (opts.sentinel ? 1 : 0)
    if (!Number.isSafeInteger(this.minReplicas) || this.minReplicas < 0) {
      throw new Error(`store: minReplicas must be a non-negative integer, got ${opts.minReplicas}`)
    }
    this.replicaAckTimeoutMs = opts.replicaAckTimeoutMs ?? 2_000
    if (!Number.isSafeInteger(this.replicaAckTimeoutMs) || this.replicaAckTimeoutMs < 1) {
      throw new Error(`store: replicaAckTimeoutMs must be a positive integer, got ${opts.replicaAckTimeoutMs}`)
    }
    this.forbidden = parseCIDRs(opts.forbiddenCIDRs)
    this.redisOptions = opts.sentinel ? sentinelConnectionOptions(opts.redis, opts.sentinel, () => this.started) : opts.redis
    this.codec = new Codec({ encryptionKey: opts.encryptionKey, encryptedResources: opts.encryptedResources ?? ['secrets'] })
    this.log = opts.logger ?? pino({ name: 'skiff-store' })
    this.diskSettings = opts.diskGuard
    this.mark = new RevisionMark(opts.stateDir, (err) =>
      this.log.error({ err }, 'store: cannot write the revision high-water mark'),
    )
  }

  private readonly k = {
    object: (resource: string, key: string) => `${this.prefix}:o:${resource}:${key}`,
    index: (resource: string) => `${this.prefix}:i:${resource}`,
    pool: (pool: string) => `${this.prefix}:c:${pool}`,
    counter: () => `${this.prefix}:rev`,
    events: () => `${this.prefix}:events`,
    meta: () => `${this.prefix}:meta`,
    /** A channel nobody listens to: a PUBLISH there is a write to WAIT for (see confirmSeen). */
    sync: () => `${this.prefix}:sync`,
  }

  async start(): Promise<void> {
    if (this.redis || this.stopped) throw new Error('store: start() may be called once')
    await this.mark.load()
    const topology = await preflight({
      redis: this.sentinel ? undefined : { host: this.redisOptions.host ?? '127.0.0.1', port: this.redisOptions.port ?? 6379 },
      sentinel: this.sentinel,
      tls: this.redisOptions.tls,
      ranges: this.forbidden,
      log: this.log,
    })
    const redis = defineScripts(openConnection(this.redisOptions, 'skiff-store', this.log, true))
    const blocking = openConnection(this.redisOptions, 'skiff-store-watch', this.log, false)
    try {
      await Promise.all([connect(redis, 'main'), connect(blocking, 'watch')])
      this.redis = redis
      this.blocking = blocking
      const peers = await this.checkPeers()
      if (peers.mismatch) throw new StoreError('unavailable', `store: ${peers.mismatch}; try again`)
      if (peers.refusal) throw new Error(`store: refusing to start: ${peers.refusal}`)
    } catch (err) {
      this.redis = undefined
      this.blocking = undefined
      redis.disconnect()
      blocking.disconnect()
      throw err
    }
    if (topology) {
      this.log.info(
        { primary: `${topology.primary.host}:${topology.primary.port}`, replicas: topology.replicas.map((r) => `${r.host}:${r.port}`), minReplicas: this.minReplicas },
        'store: Redis under Sentinel',
      )
    }
    await this.checkDurability()
    this.disk = await startDiskGuard({
      settings: this.diskSettings,
      localRedis: !this.sentinel && (!!this.redisOptions.path || isLoopback((redis.stream as { remoteAddress?: string } | undefined)?.remoteAddress)),
      redisDir: async () => ((await this.conn().config('GET', 'dir')) as string[])[1],
      logger: this.log,
      metrics: this.diskMetrics,
    })
    await this.checkReplicas()
    const counter = await this.reconcileEpoch(this.mark.reserved, 'start')
    this.hub = new WatchHub(this.hubSource(), this.log)
    this.hub.start(counter)
    this.watchConnection(redis, this.guard)
    this.watchConnection(blocking, this.hubGuard)
    if (this.sentinel) {
      this.failoverWatch = new FailoverWatch(this.sentinel, (p) => this.onSwitchMaster(p), this.log)
      this.failoverWatch.start()
    }
    this.ready = true
    this.started = true
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.ready = false
    this.resolveStopped()
    this.failoverWatch?.stop()
    if (!this.redis) return
    const hubDone = this.hub?.stop()
    this.blocking?.disconnect()
    await hubDone
    // QUIT lets replies already on their way arrive; do not wait on it forever.
    await Promise.race([this.redis.quit().catch(() => {}), delay(2_000)])
    this.redis.disconnect()
    // Let the continuations of replies that already arrived record their
    // revisions before the high-water mark is settled to the exact value.
    await nextTick()
    await this.mark.settle(this.maxObserved)
  }

  create(resource: string, key: string, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    return this.write('c', resource, key, obj, opts)
  }

  update(resource: string, key: string, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    return this.write('u', resource, key, obj, opts)
  }

  delete(resource: string, key: string, opts?: WriteOptions): Promise<KubeObject> {
    return this.write('d', resource, key, undefined, opts)
  }

  async get(resource: string, key: string): Promise<KubeObject | undefined> {
    const [rv, v] = await this.guard.run(this.conn().hmget(this.k.object(resource, key), 'rv', 'v'))
    if (rv == null || v == null) return undefined
    const revision = Number(rv)
    await this.observe(revision)
    return this.codec.open(resource, key, v, revision)
  }

  async list(resource: string, opts: { namespace?: string } = {}): Promise<ListResult> {
    const want = opts.namespace ? `${opts.namespace}/` : ''
    const reply = await this.retryBehind(async () => {
      const r = await this.guard.run(
        this.conn().skiffList(this.k.index(resource), this.k.counter(), this.k.object(resource, ''), want, this.maxObserved),
      )
      return r[0] === 'behind' ? 'behind' : r
    })
    const revision = Number(reply[1])
    const rows: [string, number, string][] = []
    for (let i = 2; i < reply.length; i += 3) rows.push([reply[i]!, Number(reply[i + 1]), reply[i + 2]!])
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const items = rows.map(([key, rv, v]) => this.codec.open(resource, key, v, rv))
    await this.observe(revision)
    return { items, revision }
  }

  async currentRevision(): Promise<number> {
    const revision = Number((await this.guard.run(this.conn().get(this.k.counter()))) ?? 0)
    await this.observe(revision)
    return revision
  }

  async floor(): Promise<number> {
    return Number((await this.guard.run(this.conn().hget(this.k.meta(), 'floor'))) ?? 0)
  }

  async claims(pool: string): Promise<Map<string, string>> {
    const held = await this.guard.run(this.conn().hgetall(this.k.pool(pool)))
    return new Map(Object.entries(held))
  }

  watch(opts: WatchOptions, onEvent: (ev: StoreEvent) => void, onEnd: (err?: StoreError) => void): WatchHandle {
    if (!this.hub) throw new Error('store: watch() before start()')
    if (!Number.isSafeInteger(opts.fromRevision) || opts.fromRevision < 0) {
      throw new TypeError(`store: fromRevision must be a non-negative integer, got ${opts.fromRevision}`)
    }
    return this.hub.watch(opts, onEvent, onEnd)
  }

  /** Serve the store's metrics (the disk guard's) from this registry. */
  registerMetrics(registry: MetricsRegistry): void {
    for (const m of Object.values(this.diskMetrics)) registry.registerMetric(m)
  }

  /** Number of active watchers (for metrics and tests). */
  get watcherCount(): number {
    return this.hub?.size ?? 0
  }

  private conn(): ScriptedRedis {
    if (this.stopped) throw new StoreError('unavailable', 'store is stopped')
    if (!this.redis) throw new Error('store: used before start()')
    if (this.refusal) throw new StoreError('unavailable', this.refusal)
    return this.redis
  }

  private async write(
    op: 'c' | 'u' | 'd',
    resource: string,
    key: string,
    obj: KubeObject | undefined,
    opts: WriteOptions = {},
  ): Promise<KubeObject> {
    if (!resource || !key) throw new TypeError('store: resource and key are required')
    if (op !== 'd' && !obj?.metadata) throw new TypeError(`store: ${resource} ${key} has no metadata`)
    const json = obj ? this.codec.toJSON(obj) : ''
    const w: WriteArgs = {
      op,
      keys: {
        object: this.k.object(resource, key),
        index: this.k.index(resource),
        counter: this.k.counter(),
        stream: this.k.events(),
        meta: this.k.meta(),
      },
      poolKey: this.k.pool,
      resource,
      key,
      value: obj ? this.codec.seal(resource, key, json) : '',
      expectedRV: opts.expectedRV,
      streamMaxLen: this.streamMaxLen,
      minRev: 0,
      claims: opts.claims ?? [],
      releases: opts.releases ?? [],
    }
    const out = await this.retryBehind(async () => {
      this.disk?.check(`${resource} ${key}`)
      w.minRev = this.maxObserved
      const conn = this.conn()
      const generation = this.mainGeneration
      const sent = this.guard.run(conn.skiffWrite(...writeCommandArgs(w)))
      // Queued right behind the write on the same connection, so it counts it.
      const ack = this.minReplicas > 0 ? this.replicaAck(conn) : undefined
      const result = parseWriteReply(await sent, w)
      if (result.kind === 'behind') return 'behind'
      if (ack) await this.confirmWrite(ack, generation, result.revision, `${resource} ${key}`)
      return result
    })
    await this.observe(out.revision)
    return this.codec.open(resource, key, op === 'd' ? out.prev! : json, out.revision)
  }

  /**
   * A WAIT for every command sent on the main connection so far. WAIT counts
   * all earlier writes of its connection, so one WAIT queued after the
   * writes of this turn of the event loop covers all of them: the first
   * caller queues it in a microtask (behind the others' commands in the same
   * auto-pipeline), later callers join it; a caller after that gets a new one.
   */
  private replicaAck(conn: ScriptedRedis): Promise<number> {
    if (this.ackBatch) return this.ackBatch
    const batch = new Promise<number>((resolve, reject) => {
      queueMicrotask(() => {
        this.ackBatch = undefined
        try {
          this.guard.run(conn.wait(this.minReplicas, this.replicaAckTimeoutMs)).then(resolve, reject)
        } catch (err) {
          reject(err)
        }
      })
    })
    batch.catch(() => {}) // each caller handles the outcome
    this.ackBatch = batch
    return batch
  }

  /** Acknowledge a write only when its WAIT, on its own connection, counted enough replicas. */
  private async confirmWrite(ack: Promise<number>, generation: number, revision: number, what: string): Promise<void> {
    let acked = -1
    let failure = ''
    try {
      acked = await ack
    } catch (err) {
      failure = (err as Error).message
    }
    if (acked >= this.minReplicas && generation === this.mainGeneration) return
    // Served or not, it may exist: a later revision must not reuse it.
    await this.observe(revision)
    const why = failure
      ? `the replicas' confirmation failed (${failure})`
      : generation !== this.mainGeneration
        ? 'the connection was lost before the replicas confirmed it'
        : `only ${acked} of the ${this.minReplicas} replica(s) required confirmed it within ${this.replicaAckTimeoutMs} ms`
    throw new StoreError(
      'unavailable',
      `${what}: Redis applied the write (revision ${revision}) but ${why}; it may or may not have been kept ` +
        '(a failover before a replica has it loses it): read it back before retrying',
    )
  }

  /**
   * Make sure everything this connection has read so far is on minReplicas
   * replicas: a PUBLISH (a write, replicated) after the read, then WAIT for
   * it. Watchers get only events that a failover keeps.
   */
  private async confirmSeen(conn: Redis, guard: InflightGuard, upTo: number): Promise<void> {
    const published = guard.run(conn.publish(this.k.sync(), String(upTo)))
    const acked = conn === this.redis ? this.replicaAck(this.redis) : guard.run(conn.wait(this.minReplicas, this.replicaAckTimeoutMs))
    // Both settle, whichever fails first (a lost connection rejects both).
    const [, n] = await Promise.all([published, acked])
    if (n < this.minReplicas) {
      throw new StoreError(
        'unavailable',
        `events up to revision ${upTo} are confirmed by ${n} of the ${this.minReplicas} replica(s) required after ${this.replicaAckTimeoutMs} ms; ` +
          'watches resume once the replicas catch up',
      )
    }
  }

  /** Run a script; when it finds the counter behind, jump it and run again. */
  private async retryBehind<T>(fn: () => Promise<T | 'behind'>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await fn()
      if (result !== 'behind') return result
      await this.reconcileEpoch(this.maxObserved, 'the counter is below a revision already served')
    }
    throw new StoreError('unavailable', 'the Redis revision counter keeps falling behind')
  }

  /** Record a revision as served; waits only when it needs a new reservation. */
  private observe(rev: number): Promise<void> | undefined {
    if (rev > this.maxObserved) this.maxObserved = rev
    return this.mark.cover(rev)
  }

  /**
   * Make sure the counter is not below `threshold`; if it is, Redis lost
   * writes, so jump past everything this process may have served and start a
   * new epoch. Returns the counter.
   */
  private async reconcileEpoch(threshold: number, why: string): Promise<number> {
    const target = Math.max(threshold, this.mark.reserved)
    // The script writes only to start an epoch or jump; on a nearly full disk it answers 2 instead.
    const noSpace = this.disk?.refusal('the revision counter')
    const [jumped, counterText, epoch, floor] = await this.guard.run(
      this.conn().skiffEpoch(this.k.counter(), this.k.meta(), threshold, target, randomBytes(8).toString('hex'), noSpace ? 0 : 1),
    )
    if (Number(jumped) === 2) this.disk!.refuse(noSpace!)
    const counter = Number(counterText)
    if (Number(jumped) === 1) {
      this.log.warn(
        { why, threshold, counter, epoch, floor: Number(floor) },
        'store: the Redis revision counter went backwards (Redis lost data or was restored from an older file); ' +
          'jumped ahead into a new epoch; watches from older revisions get 410 Gone and clients re-list',
      )
    }
    if (epoch !== this.mark.epoch) await this.mark.setEpoch(epoch)
    await this.observe(counter)
    return counter
  }

  private async checkDurability(): Promise<void> {
    let aof: string | undefined
    let fsync: string | undefined
    try {
      const [a, f] = (await Promise.all([
        this.conn().config('GET', 'appendonly'),
        this.conn().config('GET', 'appendfsync'),
      ])) as [string[], string[]]
      aof = a[1]
      fsync = f[1]
    } catch (err) {
      this.log.info(
        { err: (err as Error).message },
        'store: cannot read Redis persistence settings (CONFIG denied?); ' +
          'writes are only durable with appendonly yes and appendfsync always',
      )
      return
    }
    if (aof !== 'yes') {
      this.log.warn('store: Redis appendonly is off: a Redis crash loses every acknowledged write since the last snapshot')
    } else if (fsync === 'everysec') {
      this.log.warn('store: Redis appendfsync is everysec: a crash of the Redis host can lose up to ~1 s of acknowledged writes')
    } else if (fsync !== 'always') {
      this.log.warn(`store: Redis appendfsync is ${fsync}: a crash of the Redis host can lose ~30 s of acknowledged writes`)
    }
  }

  /** Warn when fewer replicas are connected than writes need. */
  private async checkReplicas(): Promise<void> {
    if (this.minReplicas === 0) return
    let connected: number
    try {
      const info = String(await this.conn().info('replication'))
      connected = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0)
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'store: cannot read INFO replication')
      return
    }
    if (connected < this.minReplicas) {
      this.log.warn(
        { connected, minReplicas: this.minReplicas },
        'store: fewer replicas are connected to the Redis primary than each write must reach; writes answer 503 until they are back',
      )
    }
  }

  /**
   * Check where the connections went: both to the same server (under
   * Sentinel, so the hub reads the primary the writes go to), not inside
   * forbiddenCIDRs, and a primary not checked before must refuse PING
   * without a password.
   */
  private async checkPeers(): Promise<{ refusal?: string; mismatch?: string }> {
    const peer = (c: Redis | undefined) => {
      const s = c?.stream as { remoteAddress?: string; remotePort?: number } | undefined
      return s?.remoteAddress ? { host: s.remoteAddress, port: s.remotePort ?? 0 } : undefined
    }
    const main = peer(this.redis)
    const watch = peer(this.blocking)
    if (!main || !watch) return {}
    const key = (p: { host: string; port: number }) => `${p.host}:${p.port}`
    if (this.sentinel && key(main) !== key(watch)) {
      return { mismatch: `the store's connections reached two different primaries (${key(main)} and ${key(watch)}), a failover in progress` }
    }
    for (const [what, p] of [['Redis primary', main], ['Redis primary (watch connection)', watch]] as const) {
      const refusal = checkAddress(what, p.host, this.forbidden)
      if (refusal) return { refusal }
    }
    if (this.checkedPeer !== key(main)) {
      const refusal = probeRefusal('Redis primary', main, await probeWithoutPassword(main, { tls: this.redisOptions.tls }))
      if (refusal) return { refusal }
      this.checkedPeer = key(main)
    }
    return {}
  }

  /** The sentinels announced a new primary: leave any other server (ioredis then asks them again). */
  private onSwitchMaster(primary: Endpoint): void {
    for (const conn of [this.redis, this.blocking]) {
      const s = conn?.stream as { remoteAddress?: string; remotePort?: number } | undefined
      if (!conn || conn.status !== 'ready' || !s?.remoteAddress) continue
      const host = s.remoteAddress.replace(/^::ffff:/, '')
      if (host === primary.host && s.remotePort === primary.port) continue
      this.log.warn(
        { from: `${host}:${s.remotePort}`, to: `${primary.host}:${primary.port}` },
        'store: the sentinels switched the Redis primary; reconnecting (commands in flight on the old one fail with 503)',
      )
      conn.disconnect(true)
    }
  }

  /** A lost connection ends every watch; a reconnect re-checks the counter first. */
  private watchConnection(conn: Redis, guard: InflightGuard): void {
    conn.on('close', () => {
      guard.failAll('connection to Redis lost')
      if (conn === this.redis) this.mainGeneration++
      this.generation++
      if (this.ready) this.log.warn('store: connection to Redis lost; watches end until it is back')
      this.ready = false
      this.hub?.failAll(new StoreError('unavailable', 'connection to Redis lost'))
    })
    conn.on('ready', () => void this.recover())
  }

  private async recover(): Promise<void> {
    if (this.stopped) return
    if (this.recovering) {
      this.recoverAgain = true
      return
    }
    if (this.redis?.status !== 'ready' || this.blocking?.status !== 'ready') return
    this.recovering = true
    const generation = this.generation
    try {
      const peers = await this.checkPeers()
      if (peers.mismatch) {
        // Reconnecting asks the sentinels again; both, since either may be on the stale one.
        this.log.info(peers.mismatch)
        this.redis.disconnect(true)
        this.blocking.disconnect(true)
        return
      }
      if (peers.refusal) {
        if (this.refusal !== peers.refusal) this.log.error(`store: not using this Redis: ${peers.refusal}`)
        this.refusal = peers.refusal
        this.hub?.failAll(new StoreError('unavailable', peers.refusal))
        return
      }
      this.refusal = undefined
      await this.reconcileEpoch(this.maxObserved, 'reconnect')
      if (generation === this.generation && !this.stopped) {
        this.ready = true
        this.log.info('store: reconnected to Redis')
      }
    } catch (err) {
      if (err instanceof DiskFullError) {
        // No reconnect is coming to retry it: try again once space may be back (the guard logged the cause).
        this.log.debug(err.message)
        setTimeout(() => void this.recover(), 1_000).unref()
      } else this.log.warn({ err }, 'store: check after reconnecting failed; retrying on the next reconnect')
    } finally {
      this.recovering = false
      if (this.recoverAgain) {
        this.recoverAgain = false
        void this.recover()
      }
    }
  }

  private hubSource(): HubSource {
    return {
      readAfter: async (rev) => {
        const reply = (await this.hubGuard.run(
          this.blocking!.xread('COUNT', READ_BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.k.events(), `${rev}-0`),
        )) as [string, [string, string[]][]][] | null
        const entries = reply ? reply[0]![1] : null
        if (entries?.length && this.minReplicas > 0) {
          await this.confirmSeen(this.blocking!, this.hubGuard, revisionOf(entries[entries.length - 1]![0]))
        }
        return entries
      },
      range: async (rev, count) => {
        const page = await this.guard.run(this.conn().xrange(this.k.events(), `${rev}-0`, '+', 'COUNT', count))
        if (page.length && this.minReplicas > 0) await this.confirmSeen(this.conn(), this.guard, revisionOf(page[page.length - 1]![0]))
        return page
      },
      floor: () => this.floor(),
      decode: (id, fields) => this.decodeEvent(id, fields),
      cover: (rev) => this.observe(rev),
      available: () => this.ready,
      waitReady: async () => {
        // A failure on a live connection (not a disconnect): back off a little.
        if (this.blocking!.status === 'ready') await delay(200)
        else await Promise.race([nextReady(this.blocking!), this.stoppedSignal])
      },
    }
  }

  private decodeEvent(id: string, fields: string[]): StoreEvent {
    const f: Record<string, string> = {}
    for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
    const revision = revisionOf(id)
    const ev: StoreEvent = {
      type: f.t as StoreEventType,
      resource: f.r!,
      key: f.k!,
      revision,
      object: this.codec.open(f.r!, f.k!, f.o!, revision),
    }
    if (f.p !== undefined) ev.prev = this.codec.open(f.r!, f.k!, f.p, Number(f.pr))
    return ev
  }
}
