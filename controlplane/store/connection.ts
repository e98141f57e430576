// Redis connections for the store, set up so that a command never has an
// unknown fate hidden from the caller.
//
// ioredis by default queues commands while disconnected and re-sends the ones
// in flight after a reconnect. Neither is safe for writes: a re-sent create
// would answer 'exists' for the object it just created, and a queued write
// could land long after its caller was told it failed. So the offline queue
// and re-send are off, and maxRetriesPerRequest is 0, which makes ioredis
// reject the commands in flight as soon as the connection closes. (With
// re-send off and a higher limit, ioredis drops those commands without ever
// settling them, and the auto-pipeline waiting for them stalls every later
// command.) The guard below does the same for our own bookkeeping. Either
// way the caller sees 'unavailable', as with any other lost request.
//
// Under Sentinel the same rules hold; ioredis asks the sentinels for the
// primary on every (re)connect and checks with INFO that the server it
// reached is a primary (role master), so after a failover it finds the new
// one by itself. See sentinelConnectionOptions.

import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { SentinelOptions } from './preflight.ts'
import { StoreError } from './types.ts'

/**
 * ioredis options for the primary of a Sentinel group: `base` carries the
 * Redis password (and username, tls, ...); its host and port are dropped.
 * `retryAllSentinels()` tells whether to keep retrying when every sentinel is
 * unreachable (false while starting, so start() fails instead of hanging).
 */
export function sentinelConnectionOptions(base: RedisOptions, s: SentinelOptions, retryAllSentinels: () => boolean): RedisOptions {
  const { host: _host, port: _port, path: _path, ...rest } = base
  return {
    ...rest,
    sentinels: s.sentinels.map((e) => ({ host: e.host, port: e.port })),
    name: s.name,
    sentinelPassword: s.password,
    sentinelUsername: s.username,
    role: 'master',
    // A failover takes a few seconds; poll for the new primary every second at most.
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
    sentinelRetryStrategy: (times: number) => (retryAllSentinels() ? Math.min(100 * times, 1000) : null),
    connectTimeout: base.connectTimeout ?? 3000,
    sentinelCommandTimeout: 2000,
    // The store listens to +switch-master itself (failover-watch.ts) and drops
    // only connections that are not on the new primary.
    failoverDetector: false,
    // A primary demoted under us answers writes with READONLY: reconnect
    // (through the sentinels) and fail that command, never re-send it.
    reconnectOnError: (err: Error) => /^(READONLY|MASTERDOWN)/.test(err.message),
  }
}

export function openConnection(base: RedisOptions, name: string, log: Logger, pipelining: boolean): Redis {
  const conn = new Redis({
    ...base,
    connectionName: name,
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: pipelining,
  })
  // Without a listener ioredis prints every failed reconnect to stderr.
  conn.on('error', (err: Error) => log.debug({ err, connection: name }, 'store: redis connection error'))
  return conn
}

/** Rejects in-flight commands with 'unavailable' when their connection closes. */
export class InflightGuard {
  private readonly rejects = new Set<(err: Error) => void>()

  run<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.rejects.add(reject)
      p.then(
        (v) => {
          this.rejects.delete(reject)
          resolve(v)
        },
        (err) => {
          this.rejects.delete(reject)
          reject(toStoreError(err))
        },
      )
    })
  }

  failAll(reason: string): void {
    const err = new StoreError('unavailable', reason)
    for (const reject of this.rejects) reject(err)
    this.rejects.clear()
  }
}

/** Anything Redis or the client throws becomes 'unavailable' (a retryable 503). */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err
  const e = new StoreError('unavailable', `redis: ${(err as Error)?.message ?? String(err)}`)
  e.cause = err
  return e
}

/** Connect, or fail with 'unavailable' saying why (e.g. WRONGPASS, ECONNREFUSED). */
export async function connect(conn: Redis, what: string): Promise<void> {
  let cause: Error | undefined
  const onError = (err: Error) => {
    cause ??= err
  }
  conn.on('error', onError)
  try {
    await conn.connect()
  } catch (err) {
    conn.disconnect()
    const { host = '127.0.0.1', port = 6379, sentinels, name } = conn.options
    const why = (cause ?? (err as Error)).message
    const where = sentinels?.length
      ? `the primary of ${JSON.stringify(name)} through the sentinels ${sentinels.map((e) => `${e.host}:${e.port}`).join(', ')}`
      : `Redis at ${host}:${port}`
    throw new StoreError('unavailable', `cannot connect to ${where} (${what} connection): ${why}`)
  } finally {
    conn.off('error', onError)
  }
}

/** Resolves on the connection's next 'ready' (at once if it is ready now). */
export function nextReady(conn: Redis): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => conn.once('ready', () => resolve()))
}
