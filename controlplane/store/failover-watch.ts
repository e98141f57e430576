// Listens to the sentinels' +switch-master announcements so the store leaves
// an old primary that is still reachable (a partition, or a failover done on
// purpose) instead of waiting for that connection to break. A kill -9 of the
// primary needs none of this: the connection closes and ioredis asks the
// sentinels again.
//
// ioredis has a failoverDetector of its own, but it drops the connection on
// every +switch-master, also when the connection already reached the new
// primary (ioredis asks the sentinels before they announce the switch), and
// each such drop fails the commands in flight. Here the announcement names
// the new primary, and only connections elsewhere are dropped.

import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { Endpoint, SentinelOptions } from './preflight.ts'

const CHANNEL = '+switch-master'

/** `<name> <old ip> <old port> <new ip> <new port>` -> the new primary, if it is this group's. */
export function parseSwitchMaster(message: string, name: string): Endpoint | undefined {
  const parts = message.trim().split(/\s+/)
  if (parts.length !== 5 || parts[0] !== name) return undefined
  const port = Number(parts[4])
  return Number.isInteger(port) && port > 0 ? { host: parts[3]!, port } : undefined
}

export class FailoverWatch {
  private readonly subscribers: Redis[] = []
  private readonly sentinel: SentinelOptions
  private readonly onSwitch: (primary: Endpoint) => void
  private readonly log: Logger

  constructor(sentinel: SentinelOptions, onSwitch: (primary: Endpoint) => void, log: Logger) {
    this.sentinel = sentinel
    this.onSwitch = onSwitch
    this.log = log
  }

  start(): void {
    for (const ep of this.sentinel.sentinels) {
      const sub = new Redis({
        host: ep.host,
        port: ep.port,
        password: this.sentinel.password,
        username: this.sentinel.username,
        connectionName: 'skiff-store-failover-watch',
        // A sentinel that is down is retried every few seconds, for ever.
        retryStrategy: (times: number) => Math.min(200 * times, 5_000),
        maxRetriesPerRequest: null,
        enableReadyCheck: false,
        protocol: 2,
      } as RedisOptions)
      sub.on('error', (err: Error) => this.log.debug({ err, sentinel: `${ep.host}:${ep.port}` }, 'store: sentinel subscription error'))
      sub.on('message', (channel: string, message: string) => {
        if (channel !== CHANNEL) return
        const primary = parseSwitchMaster(message, this.sentinel.name)
        if (primary) this.onSwitch(primary)
      })
      sub.subscribe(CHANNEL).catch(() => {
        // resubscribed by ioredis on reconnect
      })
      this.subscribers.push(sub)
    }
  }

  stop(): void {
    for (const sub of this.subscribers.splice(0)) sub.disconnect()
  }
}
