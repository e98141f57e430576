// Redis under Sentinel for one test: a primary, two replicas (replicaof +
// masterauth) and three sentinels (quorum 2), all on 127.0.0.1 on free
// ports, in one temp dir, with AOF fsync always (harness/redis.ts) and
// passwords on Redis and on the sentinels. Sentinels notice a dead primary
// after 1 s (down-after-milliseconds), so a failover takes a few seconds.
//
// `withRedisSentinel(t)` registers the cleanup (sentinels first, so they do
// not fail over while the servers stop; every process killed by pid; the dir
// removed), also when the test fails. Sentinels run as `redis-server
// <conf> --sentinel`, the same binary as the Debian redis-sentinel package.

import { randomBytes } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { AddressInUse, findRedisServer, freePort, killAndWait, spawnRedisProcess, startRedis, type RedisHandle } from './redis.ts'

const HOST = '127.0.0.1'

export interface StartSentinelOptions {
  /** Master group name. Default 'skiff'. */
  name?: string
  /** Sentinel down-after-milliseconds. Default 1000. */
  downAfterMs?: number
  /** Sentinel failover-timeout. Default 5000. */
  failoverTimeoutMs?: number
  /** Extra arguments for every Redis (primary and replicas). */
  redisArgs?: string[]
}

export interface SentinelProcess {
  host: string
  port: number
  pid: number
  kill9(): Promise<void>
  /** Start again with its (rewritten) config; resolves once it answers PING. */
  restart(): Promise<void>
  stop(): Promise<void>
}

export interface SentinelGroup {
  name: string
  /** Password of the primary and the replicas. */
  password: string
  /** Password of the sentinels. */
  sentinelPassword: string
  dir: string
  /** The three Redis servers: [0] was the primary at start. */
  nodes: RedisHandle[]
  sentinels: SentinelProcess[]
  /** RedisStoreOptions.sentinel / StoreRedisConfig.sentinel for this group. */
  sentinelOptions: { sentinels: { host: string; port: number }[]; name: string; password: string }
  /** The node the sentinels name as the primary now (asks the first that answers). */
  primary(): Promise<RedisHandle>
  /** The nodes that are not the primary. */
  replicas(): Promise<RedisHandle[]>
  /** Wait until the sentinels name a primary other than `old` and it says it is one. */
  waitForFailover(old: RedisHandle, timeoutMs?: number): Promise<RedisHandle>
  /** Wait until every sentinel agrees on one primary that has `replicas` connected replicas. */
  waitSettled(replicas?: number, timeoutMs?: number): Promise<RedisHandle>
  /** A plain authenticated ioredis connection to one node (closed at teardown). */
  connect(node: RedisHandle): Redis
  stop(): Promise<void>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Start the group for one tap test and stop it when the test ends, pass or fail. */
export async function withRedisSentinel(t: Teardown, opts: StartSentinelOptions = {}): Promise<SentinelGroup> {
  const group = await startRedisSentinel(opts)
  t.teardown(() => group.stop())
  return group
}

export async function startRedisSentinel(opts: StartSentinelOptions = {}): Promise<SentinelGroup> {
  const name = opts.name ?? 'skiff'
  const password = randomBytes(18).toString('base64url')
  const sentinelPassword = randomBytes(18).toString('base64url')
  const dir = await mkdtemp(join(tmpdir(), 'skiff-sentinel-'))
  const nodes: RedisHandle[] = []
  const sentinels: SentinelProcess[] = []
  const conns: Redis[] = []
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    for (const c of conns) c.disconnect()
    await Promise.all(sentinels.map((s) => s.stop()))
    await Promise.all(nodes.map((n) => n.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 3; i++) {
      const nodeDir = join(dir, `redis-${i}`)
      await mkdir(nodeDir)
      const configFile = join(nodeDir, 'redis.conf')
      await writeFile(configFile, '')
      const replicaOf = i === 0 ? [] : ['--replicaof', HOST, String(nodes[0]!.port)]
      nodes.push(
        await startRedis({
          dir: nodeDir,
          password,
          configFile,
          // masterauth on every node: after a failover the old primary is a replica.
          args: ['--masterauth', password, ...replicaOf, ...(opts.redisArgs ?? [])],
        }),
      )
    }
    const bin = findRedisServer()
    for (let i = 0; i < 3; i++) {
      const sdir = join(dir, `sentinel-${i}`)
      await mkdir(sdir)
      sentinels.push(await startSentinel(bin, sdir, dir, { name, password, sentinelPassword, primaryPort: nodes[0]!.port, ...opts }))
    }
    const group: SentinelGroup = {
      name,
      password,
      sentinelPassword,
      dir,
      nodes,
      sentinels,
      sentinelOptions: { sentinels: sentinels.map((s) => ({ host: s.host, port: s.port })), name, password: sentinelPassword },
      async primary() {
        const port = await askPrimary(sentinels, name, sentinelPassword)
        const node = nodes.find((n) => n.port === port)
        if (!node) throw new Error(`the sentinels name port ${port} as primary, not one of ours`)
        return node
      },
      async replicas() {
        const p = await group.primary()
        return nodes.filter((n) => n !== p)
      },
      async waitForFailover(old, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          try {
            const p = await group.primary()
            if (p !== old && (await roleOf(p, password)) === 'master') return p
          } catch {
            // sentinels busy or the candidate not up yet
          }
          if (Date.now() > deadline) throw new Error(`no failover away from port ${old.port} within ${timeoutMs} ms`)
          await sleep(100)
        }
      },
      async waitSettled(replicas = 2, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs
        let last = ''
        for (;;) {
          try {
            const ports = new Set<number>()
            for (const s of sentinels) ports.add(await askPrimary([s], name, sentinelPassword))
            if (ports.size === 1) {
              const node = nodes.find((n) => n.port === [...ports][0])
              if (node) {
                const info = await infoOf(node, password)
                const connected = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0)
                const online = (info.match(/state=online/g) ?? []).length
                if (/role:master/.test(info) && connected >= replicas && online >= replicas) return node
                last = `primary ${node.port} has ${online}/${connected} replicas online`
              }
            } else last = `sentinels disagree: ${[...ports].join(', ')}`
          } catch (err) {
            last = (err as Error).message
          }
          if (Date.now() > deadline) throw new Error(`sentinel group did not settle within ${timeoutMs} ms: ${last}`)
          await sleep(100)
        }
      },
      connect(node) {
        const c = new Redis({ host: HOST, port: node.port, password, maxRetriesPerRequest: 1, lazyConnect: false })
        c.on('error', () => {})
        conns.push(c)
        return c
      },
      stop,
    }
    await waitSentinelsReady(sentinels, name, sentinelPassword)
    await group.waitSettled(2)
    return group
  } catch (err) {
    await stop()
    throw err
  }
}

interface SentinelConf {
  name: string
  password: string
  sentinelPassword: string
  primaryPort: number
  downAfterMs?: number
  failoverTimeoutMs?: number
}

async function startSentinel(bin: string, sdir: string, rootDir: string, c: SentinelConf): Promise<SentinelProcess> {
  const conf = join(sdir, 'sentinel.conf')
  let child: ChildProcess | undefined
  let port = 0
  for (let attempt = 0; !child; attempt++) {
    port = await freePort()
    await writeFile(
      conf,
      [
        `port ${port}`,
        `bind ${HOST}`,
        'daemonize no',
        'logfile ""',
        `dir ${sdir}`,
        `requirepass ${c.sentinelPassword}`,
        // Sentinels authenticate to each other with this.
        `sentinel sentinel-pass ${c.sentinelPassword}`,
        `sentinel announce-ip ${HOST}`,
        `sentinel monitor ${c.name} ${HOST} ${c.primaryPort} 2`,
        `sentinel auth-pass ${c.name} ${c.password}`,
        `sentinel down-after-milliseconds ${c.name} ${c.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${c.name} ${c.failoverTimeoutMs ?? 5000}`,
        `sentinel parallel-syncs ${c.name} 2`,
        '',
      ].join('\n'),
    )
    try {
      child = await spawnRedisProcess({ bin, args: [conf, '--sentinel'], port, password: c.sentinelPassword, readyTimeoutMs: 15_000, removeDir: rootDir })
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt >= 5) throw err
    }
  }
  let current: ChildProcess = child
  let stopped = false
  const handle: SentinelProcess = {
    host: HOST,
    port,
    pid: current.pid!,
    async kill9() {
      await killAndWait(current)
    },
    async restart() {
      await killAndWait(current)
      current = await spawnRedisProcess({ bin, args: [conf, '--sentinel'], port, password: c.sentinelPassword, readyTimeoutMs: 15_000, removeDir: rootDir })
      handle.pid = current.pid!
    },
    async stop() {
      if (stopped) return
      stopped = true
      await killAndWait(current)
    },
  }
  return handle
}

async function withConn<T>(port: number, password: string, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ host: HOST, port, password, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 2000, commandTimeout: 2000, protocol: 2 })
  c.on('error', () => {})
  try {
    await c.connect()
    return await fn(c)
  } finally {
    c.disconnect()
  }
}

async function askPrimary(sentinels: SentinelProcess[], name: string, sentinelPassword: string): Promise<number> {
  let last: unknown
  for (const s of sentinels) {
    try {
      const r = (await withConn(s.port, sentinelPassword, (c) => c.call('SENTINEL', 'get-master-addr-by-name', name))) as [string, string] | null
      if (r) return Number(r[1])
    } catch (err) {
      last = err
    }
  }
  throw new Error(`no sentinel named a primary: ${(last as Error | undefined)?.message ?? 'none answered'}`)
}

function infoOf(node: RedisHandle, password: string): Promise<string> {
  return withConn(node.port, password, async (c) => String(await c.info('replication')))
}

async function roleOf(node: RedisHandle, password: string): Promise<string | undefined> {
  return /role:(\w+)/.exec(await infoOf(node, password))?.[1]
}

/** Every sentinel knows the two replicas and the two other sentinels (else no quorum for a failover). */
async function waitSentinelsReady(sentinels: SentinelProcess[], name: string, sentinelPassword: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (const s of sentinels) {
    for (;;) {
      try {
        const raw = (await withConn(s.port, sentinelPassword, (c) => c.call('SENTINEL', 'master', name))) as string[]
        const f: Record<string, string> = {}
        for (let i = 0; i + 1 < raw.length; i += 2) f[raw[i]!] = raw[i + 1]!
        if (f['num-slaves'] === '2' && f['num-other-sentinels'] === '2' && f.flags === 'master') break
        last = `sentinel ${s.port}: ${f['num-slaves']} replicas, ${f['num-other-sentinels']} other sentinels, flags ${f.flags}`
      } catch (err) {
        last = (err as Error).message
      }
      if (Date.now() > deadline) throw new Error(`sentinels not ready within ${timeoutMs} ms: ${last}`)
      await sleep(100)
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
