// Checks the store makes before it trusts a Redis (README.md, "Refusals"):
//  - every Redis (the primary and, under Sentinel, each replica) and every
//    sentinel must refuse a client that has not authenticated: an open one is
//    readable and writable by anything that reaches it;
//  - none of them may sit inside `forbiddenCIDRs` (the pod and service
//    ranges), where workloads reach it.
// A refusal is an Error saying what is wrong and what to do; the store does
// not start. Addresses that cannot be reached are logged and left to the
// connection (a replica that is down is not a reason to refuse).

import { lookup } from 'node:dns/promises'
import { isIP, createConnection, type Socket } from 'node:net'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import { checkAddress, type CIDR } from './address-policy.ts'

export interface SentinelOptions {
  /** Sentinels to ask for the primary: at least one (the others are learned from it). */
  sentinels: { host: string; port: number }[]
  /** The master group name, as in `sentinel monitor <name> <ip> <port> <quorum>`. */
  name: string
  /**
   * The sentinels' password (their `requirepass`). Required: a sentinel that
   * answers anyone can be told to monitor another Redis, and the store would
   * follow it there.
   */
  password: string
  /** ACL user on the sentinels, when not the default user. */
  username?: string
}

export interface Endpoint {
  host: string
  port: number
}

export type ProbeResult =
  /** Answered PING without AUTH: no password. */
  | { kind: 'open' }
  /** Answered with -DENIED: no password, saved only by protected mode. */
  | { kind: 'denied'; reply: string }
  /** Asked for authentication (-NOAUTH) or refused the user otherwise. */
  | { kind: 'protected'; reply: string }
  | { kind: 'unreachable'; reason: string }

const PING = '*1\r\n$4\r\nPING\r\n'

/** Connect without credentials and send PING; what came back says whether a password is required. */
export function probeWithoutPassword(ep: Endpoint, opts: { tls?: ConnectionOptions; timeoutMs?: number } = {}): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let sock: Socket
    let buf = ''
    let settled = false
    const done = (r: ProbeResult) => {
      if (settled) return
      settled = true
      sock.destroy()
      resolve(r)
    }
    const onConnect = () => sock.write(PING)
    sock = opts.tls
      ? tlsConnect({ ...opts.tls, host: ep.host, port: ep.port }, onConnect)
      : createConnection({ host: ep.host, port: ep.port }, onConnect)
    sock.setTimeout(opts.timeoutMs ?? 3000, () => done({ kind: 'unreachable', reason: 'no answer within the timeout' }))
    sock.on('error', (err) => done({ kind: 'unreachable', reason: err.message }))
    sock.on('close', () => done({ kind: 'unreachable', reason: 'closed without an answer' }))
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      const eol = buf.indexOf('\r\n')
      if (eol < 0) {
        if (buf.length > 4096) done({ kind: 'unreachable', reason: 'not a Redis reply' })
        return
      }
      const line = buf.slice(0, eol)
      if (line === '+PONG') done({ kind: 'open' })
      else if (line.startsWith('-DENIED')) done({ kind: 'denied', reply: line.slice(1) })
      else if (line.startsWith('-')) done({ kind: 'protected', reply: line.slice(1) })
      else done({ kind: 'unreachable', reason: `unexpected reply ${JSON.stringify(line.slice(0, 80))}` })
    })
  })
}

/** The refusal for an unauthenticated probe's result, or undefined when it is fine. */
export function probeRefusal(what: string, ep: Endpoint, r: ProbeResult): string | undefined {
  const at = `${ep.host}:${ep.port}`
  if (r.kind === 'open') {
    return (
      `${what} at ${at} answers PING without a password: anything that reaches it can read and rewrite the cluster. ` +
      (what.startsWith('sentinel')
        ? 'Set `requirepass` in every sentinel.conf (and `sentinel sentinel-pass` so they can talk to each other), then pass that password as the sentinel password.'
        : 'Set `requirepass` (and `masterauth` on replicas) in redis.conf, or use an ACL user with a password, and give the store that password.')
    )
  }
  if (r.kind === 'denied') {
    return `${what} at ${at} has no password (it answered "${r.reply.slice(0, 60)}..." only because of protected mode): set \`requirepass\` and give the store that password.`
  }
  return undefined
}

/** Every address a host name stands for (an IP literal stands for itself). */
export async function addressesOf(host: string): Promise<string[]> {
  if (isIP(host.replace(/^\[|\]$/g, ''))) return [host.replace(/^\[|\]$/g, '')]
  try {
    return (await lookup(host, { all: true })).map((a) => a.address)
  } catch {
    return []
  }
}

/** Refusals for an endpoint inside a forbidden range (by every address its name resolves to). */
export async function rangeRefusals(what: string, ep: Endpoint, ranges: readonly CIDR[]): Promise<string[]> {
  if (ranges.length === 0) return []
  const out: string[] = []
  for (const addr of await addressesOf(ep.host)) {
    const r = checkAddress(`${what} (${ep.host}:${ep.port})`, addr, ranges)
    if (r) out.push(r)
  }
  return out
}

export interface SentinelTopology {
  /** The sentinel that answered. */
  sentinel: Endpoint
  primary: Endpoint
  /** Replicas the sentinel knows, with its flags (e.g. 'slave', 's_down', 'disconnected'). */
  replicas: (Endpoint & { flags: string[] })[]
  /** Other sentinels it knows of. */
  sentinels: Endpoint[]
}

/** Ask the configured sentinels, in order, who the primary and the replicas are. */
export async function sentinelTopology(s: SentinelOptions, timeoutMs = 3000): Promise<SentinelTopology> {
  const errors: string[] = []
  for (const ep of s.sentinels) {
    const conn = new Redis({
      host: ep.host,
      port: ep.port,
      password: s.password,
      username: s.username,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      enableReadyCheck: false,
      protocol: 2,
    } as RedisOptions)
    conn.on('error', () => {})
    try {
      await conn.connect()
      const master = (await conn.call('SENTINEL', 'get-master-addr-by-name', s.name)) as [string, string] | null
      if (!master) {
        errors.push(`${ep.host}:${ep.port}: does not monitor a master named ${JSON.stringify(s.name)}`)
        continue
      }
      const replicas = ((await conn.call('SENTINEL', 'replicas', s.name)) as unknown[]).map(fields)
      const others = ((await conn.call('SENTINEL', 'sentinels', s.name)) as unknown[]).map(fields)
      return {
        sentinel: ep,
        primary: { host: master[0], port: Number(master[1]) },
        replicas: replicas.map((r) => ({ host: r.ip ?? '', port: Number(r.port), flags: (r.flags ?? '').split(',').filter(Boolean) })),
        sentinels: others.map((o) => ({ host: o.ip ?? '', port: Number(o.port) })),
      }
    } catch (err) {
      errors.push(`${ep.host}:${ep.port}: ${(err as Error).message}`)
    } finally {
      conn.disconnect()
    }
  }
  throw new Error(`store: no sentinel answered for master ${JSON.stringify(s.name)}: ${errors.join('; ')}`)
}

function fields(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  else if (reply && typeof reply === 'object') for (const [k, v] of Object.entries(reply)) out[k] = String(v)
  return out
}

export interface PreflightOptions {
  /** The single Redis, when there is no sentinel. */
  redis?: Endpoint
  sentinel?: SentinelOptions
  tls?: ConnectionOptions
  ranges: readonly CIDR[]
  log: Logger
}

/**
 * Run every check; throw one Error listing all refusals. Returns the
 * Sentinel topology (for the replica count) when there is one.
 */
export async function preflight(o: PreflightOptions): Promise<SentinelTopology | undefined> {
  const refusals: string[] = []
  const check = async (what: string, ep: Endpoint, tls: ConnectionOptions | undefined, required: boolean) => {
    refusals.push(...(await rangeRefusals(what, ep, o.ranges)))
    const r = await probeWithoutPassword(ep, { tls })
    const refusal = probeRefusal(what, ep, r)
    if (refusal) refusals.push(refusal)
    else if (r.kind === 'unreachable' && !required) o.log.warn({ what, at: `${ep.host}:${ep.port}`, reason: r.reason }, 'store: cannot reach it to check that it requires a password; checked when the store connects to it')
    return r
  }
  let topology: SentinelTopology | undefined
  if (o.sentinel) {
    let reachable = 0
    for (const ep of o.sentinel.sentinels) {
      if ((await check('sentinel', ep, undefined, false)).kind !== 'unreachable') reachable++
    }
    if (reachable === 0) {
      if (refusals.length) throw refusal(refusals)
      throw new Error(`store: none of the sentinels (${o.sentinel.sentinels.map((e) => `${e.host}:${e.port}`).join(', ')}) can be reached`)
    }
    topology = await sentinelTopology(o.sentinel)
    for (const ep of topology.sentinels) refusals.push(...(await rangeRefusals('sentinel', ep, o.ranges)))
    await check(`Redis primary of ${JSON.stringify(o.sentinel.name)}`, topology.primary, o.tls, false)
    for (const r of topology.replicas) {
      if (r.flags.some((f) => f === 's_down' || f === 'o_down' || f === 'disconnected')) {
        refusals.push(...(await rangeRefusals('Redis replica', r, o.ranges)))
        o.log.warn({ at: `${r.host}:${r.port}`, flags: r.flags }, 'store: a replica is down; it is checked when it is back and the store reconnects')
        continue
      }
      await check('Redis replica', r, o.tls, false)
    }
  } else if (o.redis) {
    await check('Redis', o.redis, o.tls, true)
  }
  if (refusals.length) throw refusal(refusals)
  return topology
}

function refusal(list: string[]): Error {
  return new Error(`store: refusing to start: ${[...new Set(list)].join(' | ')}`)
}
