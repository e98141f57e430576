// API latency and watch fan-out against a real `skiff server` process on a
// real redis-server. Open-loop load (requests start on a fixed schedule, so a
// slow server cannot slow the load down and hide its own latency).
//
//   node bench/api-latency.ts            (or: npm run bench)
//   BENCH_SECONDS=10 BENCH_RATES=20,100,500 BENCH_WATCHERS=100 node bench/api-latency.ts
//   BENCH_PODS=10000 BENCH_RATES= node bench/api-latency.ts   (only the server's memory at 10,000 Pods)
//   BENCH_WATCH_CACHE=off: the server runs with --no-watch-cache (lists from Redis), to compare.
//   BENCH_PROFILE_DIR=dir: the server runs under --cpu-prof and leaves its profile in dir.
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
const rates = (process.env.BENCH_RATES ?? '20,100,500').split(',').filter(Boolean).map(Number)
const pods = Number(process.env.BENCH_PODS ?? 0)
const watchCache = process.env.BENCH_WATCH_CACHE !== 'off'
const watchers = Number(process.env.BENCH_WATCHERS ?? 100)
const cms = lookupResource('', 'v1', 'configmaps')!
const podsInfo = lookupResource('', 'v1', 'pods')!
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
  // BENCH_PROFILE_DIR: the server runs under --cpu-prof and writes its profile there when it stops.
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR] : []
  const child = spawn(process.execPath, [...profile, entry, 'server', '--state-dir', stateDir, '--port', String(port), '--redis-port', String(redis.port), '--redis-password-file', join(stateDir, 'redis-password'), ...(watchCache ? [] : ['--no-watch-cache'])], {
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
  return { client, stop, pid: child.pid! }
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
    inflight.push(fn(i).then(() => void lat.push(now() - due), (e) => {
      if (errors++ === 0) log(`first error: ${(e as Error).message}`)
    }))
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
      // 1000 and the namespace's kube-root-ca.crt
      if (l.items.filter((o) => o.metadata.name!.startsWith('l')).length !== 1000) throw new Error(`list returned ${l.items.length}`)
    }),
    openLoop(rate, seconds, async (i) => {
      await direct.eval(
        "local r = redis.call('INCR', KEYS[1]); redis.call('HSET', KEYS[2] .. ARGV[1], 'rv', r, 'v', ARGV[2]); redis.call('XADD', KEYS[3], r .. '-0', 't', 'ADDED', 'o', ARGV[2]); return r",
        3, 'bench:rev', 'bench:o:', 'bench:events', `${rate}-${i}`, JSON.stringify({ metadata: { name: `c${i}` }, data: { i: String(i) } }),
      )
    }),
  ])
  const load = loadavg()
  await eventually(() => delivery.length >= creates.lat.length, { timeout: 10_000, what: 'watch deliveries' }).catch(() => {})
  w.stop()
  return { rate, creates, gets, lists, raw, delivery, load }
}

/** The 1-minute load average of the machine (/proc/loadavg). */
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!

/** The server process's resident set (VmRSS) and its peak (VmHWM) in MiB, and its V8 heap in use (from /metrics). */
async function serverMemory(client: ApiClient, pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  const metrics = String((await client.request('GET', '/metrics')).body)
  const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN)
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0)
  return { rss: mib(kib('VmRSS') * 1024), hwm: mib(kib('VmHWM') * 1024), heap: mib(heap) }
}

/** The server's memory before and after `n` Pods created through the API (and after listing them), and what a list of them takes. */
async function memory(client: ApiClient, pid: number, n: number): Promise<string> {
  const ns = 'bench-pods'
  await client.create(nsInfo, undefined, { metadata: { name: ns } })
  const rows: string[] = []
  const row = async (what: string) => {
    const m = await serverMemory(client, pid)
    rows.push(`| ${what} | ${m.rss} | ${m.hwm} | ${m.heap} |`)
  }
  await row('before the Pods (1,000 ConfigMaps stored)')
  const t0 = now()
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => client.create(podsInfo, ns, {
      metadata: { name: `p${i + j}`, labels: { app: 'bench', shard: String((i + j) % 10) } },
      // A scheduler nobody runs: the Pods stay Pending and nothing else writes them.
      spec: { schedulerName: 'bench-unscheduled', containers: [{ name: 'app', image: 'skiff/echo:local', ports: [{ containerPort: 8080 }], resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
    })))
  }
  const createS = (now() - t0) / 1000
  await row(`${n.toLocaleString('en')} Pods created (${(n / createS).toFixed(0)} creates/s)`)
  const lat: number[] = []
  for (let i = 0; i < 5; i++) {
    const t = now()
    const l = await client.list(podsInfo, ns)
    lat.push(now() - t)
    if (l.items.length !== n) throw new Error(`pod list returned ${l.items.length}`)
  }
  await row(`after 5 lists of them`)
  return `Server memory (MiB), ${n.toLocaleString('en')} Pods, watch cache ${watchCache ? 'on' : 'off'}, load ${loadavg()}:

| moment | RSS | peak RSS | V8 heap used |
| --- | --- | --- | --- |
${rows.join('\n')}

A list of the ${n.toLocaleString('en')} Pods: p50 ${fmt(pct(lat, 50))} ms, max ${fmt(Math.max(...lat))} ms (5 lists, one at a time).
`
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
        `| ${rate} | ${fmt(pct(r.creates.lat, 50))} / ${fmt(pct(r.creates.lat, 99))} | ${fmt(pct(r.gets.lat, 50))} / ${fmt(pct(r.gets.lat, 99))} | ${fmt(pct(r.lists.lat, 50))} / ${fmt(pct(r.lists.lat, 99))} | ${fmt(pct(r.delivery, 50))} / ${fmt(pct(r.delivery, 99))} | ${fmt(pct(r.raw.lat, 50))} / ${fmt(pct(r.raw.lat, 99))} | ${(pct(r.creates.lat, 50) / pct(r.raw.lat, 50)).toFixed(1)}x | ${errs} | ${r.load} |`,
      )
    }
    if (rates.length) {
      log(`watch fan-out: ${watchers} watchers, 50 writes`)
      const f = await fanout(client)
      process.stdout.write(`API latency, ms (p50 / p99), ${seconds} s per rate, open loop, server and Redis on this machine, watch cache ${watchCache ? 'on' : 'off'}:

| writes/s | create | get | list 1000 | watch delivery | direct Redis write | create p50 vs direct | errors | load (1 min) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Watch fan-out: one write reaching ${watchers} watchers, ${f.length} deliveries: p50 ${fmt(pct(f, 50))} ms, p99 ${fmt(pct(f, 99))} ms (load ${loadavg()}).
`)
    }
    if (pods > 0) {
      log(`server memory: creating ${pods} Pods`)
      process.stdout.write(`\n${await memory(client, srv.pid, pods)}`)
    }
  } finally {
    direct.disconnect()
    srv.client.close()
    await srv.stop()
    await redis.stop()
  }
}

await main()
