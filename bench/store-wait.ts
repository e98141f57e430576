// What waiting for a replica (WAIT after every write, and before watchers get
// an event) costs the store. Straight against the store, no apiserver:
//
//   flock /tmp/skiff-heavy.lock node bench/store-wait.ts
//   BENCH_SERIAL=300 BENCH_CONCURRENT=2000 BENCH_CONCURRENCY=32 BENCH_ROUNDS=3 node bench/store-wait.ts
//
// Three set-ups, each round in turn so that the machine's drift hits all of
// them alike:
//   single    one redis-server, minReplicas 0 (what `skiff up` runs today)
//   sentinel0 the Sentinel group (primary, two replicas, three sentinels), minReplicas 0: no WAIT
//   sentinel1 the same group, minReplicas 1 (the default under Sentinel): WAIT
// Every Redis has AOF with fsync always. Per set-up: serial creates (one at a
// time: latency p50/p99), concurrent creates (throughput), and the delay from
// the start of a serial create to its event at a watcher.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { RedisStore, type RedisStoreOptions } from '../controlplane/store/redis-store.ts'
import { startRedis } from '../test/harness/redis.ts'
import { startRedisSentinel } from '../test/harness/redis-sentinel.ts'
import { log } from './harness.ts'

const serial = Number(process.env.BENCH_SERIAL ?? 300)
const concurrent = Number(process.env.BENCH_CONCURRENT ?? 2000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1))

interface Result {
  serial: number[]
  delivery: number[]
  perSecond: number[]
}

async function measure(store: RedisStore, tag: string, r: Result): Promise<void> {
  const obj = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'bench' }, data: { v: randomBytes(32).toString('hex') } })
  const sentAt = new Map<string, number>()
  const handle = store.watch({ fromRevision: await store.currentRevision(), resource: 'configmaps' }, (ev) => {
    const t0 = sentAt.get(ev.key)
    if (t0 !== undefined) r.delivery.push(performance.now() - t0)
  }, () => {})
  for (let i = 0; i < serial; i++) {
    const key = `bench/${tag}-s${i}`
    const t0 = performance.now()
    sentAt.set(key, t0)
    await store.create('configmaps', key, obj(`${tag}-s${i}`))
    r.serial.push(performance.now() - t0)
  }
  await new Promise((res) => setTimeout(res, 200))
  handle.stop()
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < concurrent) {
        const i = next++
        await store.create('configmaps', `bench/${tag}-c${i}`, obj(`${tag}-c${i}`))
      }
    }),
  )
  r.perSecond.push(concurrent / ((performance.now() - t0) / 1000))
}

const stateDirs: string[] = []
async function open(opts: Omit<RedisStoreOptions, 'stateDir'>): Promise<RedisStore> {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-store-'))
  stateDirs.push(stateDir)
  const store = new RedisStore({ ...opts, stateDir, encryptionKey: randomBytes(32), logger: pino({ level: 'warn' }, process.stderr) })
  await store.start()
  return store
}

const single = await startRedis()
const group = await startRedisSentinel()
const stores: Record<string, RedisStore> = {}
try {
  stores.single = await open({ redis: single.options })
  stores.sentinel0 = await open({ redis: { password: group.password }, sentinel: group.sentinelOptions, minReplicas: 0, prefix: 'nowait' })
  stores.sentinel1 = await open({ redis: { password: group.password }, sentinel: group.sentinelOptions, minReplicas: 1, prefix: 'wait' })
  const results: Record<string, Result> = {}
  for (const name of Object.keys(stores)) results[name] = { serial: [], delivery: [], perSecond: [] }
  for (let round = 0; round < rounds; round++) {
    for (const [name, store] of Object.entries(stores)) {
      log(`round ${round + 1}/${rounds}: ${name}`)
      await measure(store, `r${round}`, results[name]!)
    }
  }
  const rows = Object.entries(results).map(([name, r]) => {
    const tput = r.perSecond.sort((a, b) => a - b)[Math.floor(r.perSecond.length / 2)]!
    return `| ${name} | ${fmt(pct(r.serial, 50))} / ${fmt(pct(r.serial, 99))} | ${fmt(pct(r.delivery, 50))} / ${fmt(pct(r.delivery, 99))} | ${Math.round(tput)} |`
  })
  console.log(`serial ${serial} x ${rounds}, concurrent ${concurrent} x ${rounds} at ${concurrency} in flight (median round)`)
  console.log('| set-up | serial create ms p50 / p99 | watch delivery ms p50 / p99 | concurrent creates/s |')
  console.log('| --- | --- | --- | --- |')
  for (const row of rows) console.log(row)
} finally {
  for (const s of Object.values(stores)) await s.stop()
  await group.stop()
  await single.stop()
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true })
}
