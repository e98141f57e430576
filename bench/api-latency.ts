// API latency and watch fan-out against a real `skiff server` process on a
// real redis-server. Open-loop load (requests start on a fixed schedule, so a
// slow server cannot slow the load down and hide its own latency).
//
//   node bench/api-latency.ts            (or: npm run bench)
//   BENCH_SECONDS=10 BENCH_RATES=20,100,500 BENCH_WATCHERS=100 node bench/api-latency.ts
//
// Reference in the same run: the direct path, the same write (INCR, HSET,
// XADD in one Lua script) sent straight to Redis from the bench process.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient, resourcePath } from '../controlplane/client/client.ts'
import { adminToken, ensureTokens } from '../controlplane/server.ts'
import { eventually, freePort } from '../lib/net.ts'
import { startRedis } from '../test/harness/redis.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const rates = (process.env.BENCH_RATES ?? '20,100,500').split(',').map(Number)
const watchers = Number(process.env.BENCH_WATCHERS ?? 100)
const cms = lookupResource('', 'v1', 'configmaps')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

const fmt = (ms: number) => (Number.isNaN(ms) ? 'n/a' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1))
const now = () => performance.now()
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

async function startServerProcess(redis: { port: number; password: string }) {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-'))
  ensureTokens(stateDir)
  writeFileSync(join(stateDir, 'redis-password'), redis.password, { mode: 0o600 })
  const port = await freePort()
  const entry = fileURLToPath(new URL('../cli/skiff.ts', import.meta.url))
  const child = spawn(process.execPath, [entry, 'server', '--state-dir', stateDir, '--port', String(port), '--redis-port', String(redis.port), '--redis-password-file', join(stateDir, 'redis-password')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SKIFF_LOG_LEVEL: 'warn' },
  })
  const server = `https://127.0.0.1:${port}`
  const client = await eventually(async () => {
    const c = new ApiClient({ server, caPem: readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8'), token: adminToken(stateDir) })
    const r = await c.request('GET', '/readyz')
    if (r.status === 200) return c
    c.close()
    return undefined
  }, { timeout: 30_000, what: 'skiff server' })
  const stop = async () => {
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await exited
    rmSync(stateDir, { recursive: true, force: true })
  }
  return { client, stop }
}

/** Fire `fn` at `rate` per second for `seconds`, open loop; collect latencies in ms. */
async function openLoop(rate: number, secs: number, fn: (i: number) => Promise<void>): Promise<{ lat: number[]; errors: number }> {
  const lat: number[] = []
  let errors = 0
  const total = Math.round(rate * secs)
  const start = now()
  const inflight: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate
    const wait = due - now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    inflight.push(fn(i).then(() => void lat.push(now() - due), () => void errors++))
  }
  await Promise.all(inflight)
  return { lat, errors }
}

async function phase(client: ApiClient, rate: number, direct: Redis) {
  const ns = `bench-${rate}`
  await client.create(nsInfo, undefined, { metadata: { name: ns } })
  const sent = new Map<string, number>()
  const delivery: number[] = []
  const w = client.watch(resourcePath(cms, ns), { resourceVersion: '0' }, (ev) => {
    const t0 = sent.get(ev.object.metadata?.name ?? '')
    if (ev.type === 'ADDED' && t0 !== undefined) delivery.push(now() - t0)
  }, () => {})
  const [creates, gets, lists, raw] = await Promise.all([
    openLoop(rate, seconds, async (i) => {
      sent.set(`c${i}`, now())
      await client.create(cms, ns, { metadata: { name: `c${i}` }, data: { i: String(i) } })
    }),
    openLoop(rate, seconds, async (i) => {
      await client.get(cms, 'bench-list', `l${i % 1000}`)
    }),
    openLoop(1, seconds, async () => {
      const l = await client.list(cms, 'bench-list')
      if (l.items.length !== 1000) throw new Error(`list returned ${l.items.length}`)
    }),
    openLoop(rate, seconds, async (i) => {
      await direct.eval(
        "local r = redis.call('INCR', KEYS[1]); redis.call('HSET', KEYS[2] .. ARGV[1], 'rv', r, 'v', ARGV[2]); redis.call('XADD', KEYS[3], r .. '-0', 't', 'ADDED', 'o', ARGV[2]); return r",
        3, 'bench:rev', 'bench:o:', 'bench:events', `${rate}-${i}`, JSON.stringify({ metadata: { name: `c${i}` }, data: { i: String(i) } }),
      )
    }),
  ])
  await eventually(() => delivery.length >= creates.lat.length, { timeout: 10_000, what: 'watch deliveries' }).catch(() => {})
  w.stop()
  return { rate, creates, gets, lists, raw, delivery }
}

async function fanout(client: ApiClient): Promise<number[]> {
  const ns = 'bench-fanout'
  await client.create(nsInfo, undefined, { metadata: { name: ns } })
  const sent = new Map<string, number>()
  const lat: number[] = []
  const handles = Array.from({ length: watchers }, () =>
    client.watch(resourcePath(cms, ns), { resourceVersion: '0' }, (ev) => {
      const t0 = sent.get(ev.object.metadata?.name ?? '')
      if (ev.type === 'ADDED' && t0 !== undefined) lat.push(now() - t0)
    }, () => {}),
  )
  await new Promise((r) => setTimeout(r, 1000))
  const writes = 50
  for (let i = 0; i < writes; i++) {
    sent.set(`f${i}`, now())
    await client.create(cms, ns, { metadata: { name: `f${i}` } })
    await new Promise((r) => setTimeout(r, 50))
  }
  await eventually(() => lat.length >= writes * watchers, { timeout: 15_000, what: 'fan-out deliveries' }).catch(() => {})
  for (const h of handles) h.stop()
  if (lat.length < writes * watchers) log(`fan-out: only ${lat.length}/${writes * watchers} deliveries arrived`)
  return lat
}

async function main() {
  log('starting redis-server and skiff server')
  const redis = await startRedis()
  const srv = await startServerProcess(redis)
  const direct = new Redis({ ...redis.options, enableAutoPipelining: true })
  try {
    const client = srv.client
    await client.create(nsInfo, undefined, { metadata: { name: 'bench-list' } })
    log('creating 1000 objects to list')
    for (let i = 0; i < 1000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => client.create(cms, 'bench-list', { metadata: { name: `l${i + j}` }, data: { x: 'y'.repeat(200) } })))
    const rows: string[] = []
    for (const rate of rates) {
      log(`${rate} writes/s for ${seconds} s`)
      const r = await phase(client, rate, direct)
      const errs = r.creates.errors + r.gets.errors + r.lists.errors
      rows.push(
        `| ${rate} | ${fmt(pct(r.creates.lat, 50))} / ${fmt(pct(r.creates.lat, 99))} | ${fmt(pct(r.gets.lat, 50))} / ${fmt(pct(r.gets.lat, 99))} | ${fmt(pct(r.lists.lat, 50))} / ${fmt(pct(r.lists.lat, 99))} | ${fmt(pct(r.delivery, 50))} / ${fmt(pct(r.delivery, 99))} | ${fmt(pct(r.raw.lat, 50))} / ${fmt(pct(r.raw.lat, 99))} | ${(pct(r.creates.lat, 50) / pct(r.raw.lat, 50)).toFixed(1)}x | ${errs} |`,
      )
    }
    log(`watch fan-out: ${watchers} watchers, 50 writes`)
    const f = await fanout(client)
    process.stdout.write(`API latency, ms (p50 / p99), ${seconds} s per rate, open loop, server and Redis on this machine:

| writes/s | create | get | list 1000 | watch delivery | direct Redis write | create p50 vs direct |  errors |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Watch fan-out: one write reaching ${watchers} watchers, ${f.length} deliveries: p50 ${fmt(pct(f, 50))} ms, p99 ${fmt(pct(f, 99))} ms.
`)
  } finally {
    direct.disconnect()
    srv.client.close()
    await srv.stop()
    await redis.stop()
  }
}

await main()
