// Scheduler throughput: 1,000 simulated nodes (Node objects, Ready, their
// Leases in kube-node-lease renewed every 10 s by this process) and 10,000
// pods from 100 owners, created through the API; the Scheduler with every
// filter and score plugin runs in this process, the apiserver in a child
// process (startServer, so both get a core), on a real redis-server (AOF,
// fsync always).
//
//   node bench/scheduler.ts
//   BENCH_NODES=1000 BENCH_PODS=10000 BENCH_OWNERS=100 BENCH_CONCURRENCY=64 BENCH_PROFILE=default BENCH_TIMEOUT_S=170 node bench/scheduler.ts
//   BENCH_EVENT_CONCURRENCY=64 BENCH_INFLIGHT_BINDS=256 node bench/scheduler.ts   # Event writes and binds in flight
//   BENCH_PROFILE_DIR=/tmp/prof node bench/scheduler.ts   # + CPU profiles of both processes over the pod phase
//   node bench/cpuprofile-summary.ts /tmp/prof/apiserver.cpuprofile
//
// Pods/s is measured from the first pod create to the last bind seen
// through a watch (creates and binds overlap, as in kube-scheduler's
// scheduler_perf); per-second samples of binds give the SchedulingThroughput
// style average and percentiles.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ApiClient, resourcePath } from '../controlplane/client/client.ts'
import { ApiEventRecorder, SharedInformers } from '../controlplane/controllers/informers.ts'
import { defaultControllerConfig } from '../controlplane/controllers/types.ts'
import { Scheduler } from '../controlplane/scheduler/scheduler.ts'
import { makeNode, makePod } from '../controlplane/scheduler/testing.ts'
import { adminToken, ensureTokens, startServer } from '../controlplane/server.ts'
import { createLogger } from '../lib/log.ts'
import { createRegistry } from '../lib/metrics.ts'
import { startRedis } from '../test/harness/redis.ts'
import { isProfileName, profiles } from '../controlplane/scheduler/framework.ts'
import { SchedulerCache } from '../controlplane/scheduler/cache.ts'
import { runCycle } from '../controlplane/scheduler/cycle.ts'
import { startCpuProfile } from './cpuprofile.ts'

const env = (k: string, d: number) => Number(process.env[k] ?? d)
const cfg = {
  nodes: env('BENCH_NODES', 1000),
  pods: env('BENCH_PODS', 10_000),
  owners: env('BENCH_OWNERS', 100),
  concurrency: env('BENCH_CONCURRENCY', 64),
  timeoutMs: env('BENCH_TIMEOUT_S', 170) * 1000,
  leaseRenewMs: env('BENCH_LEASE_S', 10) * 1000,
  profile: process.env.BENCH_PROFILE ?? 'default',
  /** CPU profiles of the bench process and the apiserver child over the pod phase (create to last bind). */
  profileDir: process.env.BENCH_PROFILE_DIR,
  /** Event writes in flight (the controller manager's recorder, which the in-process scheduler uses, has 64). */
  eventConcurrency: env('BENCH_EVENT_CONCURRENCY', 64),
  /** The scheduler's maxInflightBinds. */
  inflightBinds: env('BENCH_INFLIGHT_BINDS', 256),
}
const ns = 'bench-sched'
const R = (r: string, g = '', v = 'v1') => lookupResource(g, v, r)!
const [podsR, nodesR, nsR, leasesR, cmR] = [R('pods'), R('nodes'), R('namespaces'), R('leases', 'coordination.k8s.io'), R('configmaps')]
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)
const now = () => performance.now()

/** Run `fn` for 0..n-1 with at most `limit` in flight; resolves when all are done. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<unknown>, deadline = Infinity): Promise<number> {
  let next = 0
  let errors = 0
  const worker = async () => {
    while (next < n && Date.now() < deadline) {
      const i = next++
      await fn(i).catch(() => void errors++)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
  return errors
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

const microTime = () => new Date().toISOString().replace('Z', '000Z')

// --- the apiserver child ----------------------------------------------------

async function apiserverChild(): Promise<void> {
  const stateDir = process.env.BENCH_STATE_DIR!
  const redis = JSON.parse(readFileSync(join(stateDir, 'redis.json'), 'utf8'))
  // The apiserver alone: no in-server scheduler competing with the one under test.
  // The 30 s garbage-collection sweep lists every object; it is not the scheduler's cost, so it is pushed out of the run.
  const server = await startServer({ stateDir, redis, port: 0, logger: createLogger({ level: 'warn', destination: 2 }), gcSweepIntervalMs: 3_600_000, controllers: false })
  process.stdout.write(JSON.stringify({ url: server.url }) + '\n')
  // SIGUSR2 starts a CPU profile (BENCH_PROFILE_DIR); SIGTERM writes it before the exit.
  let profile: { stop(): Promise<string> } | undefined
  process.on('SIGUSR2', () => void startCpuProfile(join(cfg.profileDir!, 'apiserver.cpuprofile')).then((p) => (profile = p)))
  process.once('SIGTERM', () => void (profile?.stop() ?? Promise.resolve()).then(() => server.stop()).finally(() => process.exit(0)))
  // Never outlive the benchmark: exit when the parent is gone.
  const parent = Number(process.env.BENCH_PARENT_PID)
  setInterval(() => {
    try {
      process.kill(parent, 0)
    } catch {
      process.exit(1)
    }
  }, 1000)
}

async function startApiserver(redis: { host: string; port: number; password: string }): Promise<{ child: ChildProcess; url: string; stateDir: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-sched-'))
  ensureTokens(stateDir)
  writeFileSync(join(stateDir, 'redis.json'), JSON.stringify(redis), { mode: 0o600 })
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_ROLE: 'apiserver', BENCH_STATE_DIR: stateDir, BENCH_PARENT_PID: String(process.pid) } })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('apiserver child did not start in 30 s')), 30_000)
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer)
      resolve(JSON.parse(l).url)
    })
    child.once('exit', (code) => reject(new Error(`apiserver child exited ${code}`)))
  })
  return { child, url, stateDir }
}

// --- the simulated cluster --------------------------------------------------

async function createNodes(client: ApiClient): Promise<string[]> {
  const names = Array.from({ length: cfg.nodes }, (_, i) => `node-${String(i).padStart(5, '0')}`)
  const errors = await pool(names.length, cfg.concurrency, async (i) => {
    const name = names[i]!
    await client.create(nodesR, undefined, makeNode(name, { cpu: '4', memory: '32Gi', pods: '110' }))
    await client.create(leasesR, 'kube-node-lease', { metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() } })
  })
  if (errors) throw new Error(`${errors} nodes could not be created`)
  return names
}

/**
 * Renew every node's Lease each period, as agents do. A round still running
 * when the next tick comes skips that tick; a round gives up after 3 periods
 * (node lifecycle's 40 s grace is 4). Bounded by stop().
 */
function heartbeat(client: ApiClient, names: string[]) {
  let busy = false
  let rounds = 0
  let errors = 0
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    const renewTime = microTime()
    void pool(names.length, 32, (i) => client.patch(leasesR, 'kube-node-lease', names[i]!, { spec: { renewTime } }, 'application/merge-patch+json'), Date.now() + 3 * cfg.leaseRenewMs)
      .then((e) => {
        errors += e
        rounds++
      })
      .finally(() => (busy = false))
  }, cfg.leaseRenewMs)
  return { stop: () => clearInterval(timer), stats: () => ({ rounds, errors }) }
}

/** Bind times (ms, performance.now) per pod name, from a watch on the namespace. */
function watchBinds(client: ApiClient, rv: string) {
  const boundAt = new Map<string, number>()
  const w = client.watch(resourcePath(podsR, ns), { resourceVersion: rv }, (ev) => {
    const o = ev.object as KubeObject
    if ((ev.type === 'MODIFIED' || ev.type === 'ADDED') && o.spec?.nodeName && !boundAt.has(o.metadata.name!)) boundAt.set(o.metadata.name!, now())
  }, (err) => err && log(`watch ended: ${err.message}`))
  return { boundAt, stop: () => w.stop() }
}

/**
 * The same placements with no API at all: cycles plus assume on an in-memory
 * cache. The ceiling the scheduler itself puts on throughput.
 */
function inMemoryPodsPerSecond(): number {
  if (!isProfileName(cfg.profile)) throw new Error('BENCH_PROFILE must be default or bin-packing')
  const cache = new SchedulerCache()
  for (let i = 0; i < cfg.nodes; i++) cache.upsertNode(makeNode(`node-${String(i).padStart(5, '0')}`, { cpu: '4', memory: '32Gi', pods: '110' }))
  let start = 0
  const t0 = now()
  for (let i = 0; i < cfg.pods; i++) {
    const pod = makePod(`pod-${i}`, { namespace: ns, owner: `owner-${i % cfg.owners}`, cpu: '100m', memory: '500Mi' })
    const r = runCycle({ pod, nodes: cache.nodeInfos(), profile: profiles[cfg.profile], startIndex: start })
    start = r.nextStartIndex
    if ('node' in r) cache.assume(pod, r.node)
  }
  return cfg.pods / ((now() - t0) / 1000)
}

// --- the run ----------------------------------------------------------------

/** apiserver_request_total by verb and resource, from the apiserver's /metrics. */
async function requestCounts(client: ApiClient): Promise<Map<string, number>> {
  const text = String((await client.request('GET', '/metrics', { accept: 'text/plain' })).body)
  const counts = new Map<string, number>()
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\d+)/gm)) {
    const l = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    const k = `${l.verb} ${l.resource}`
    counts.set(k, (counts.get(k) ?? 0) + Number(m[2]))
  }
  return counts
}

async function run(client: ApiClient, schedClient: ApiClient, child: ChildProcess) {
  await client.create(nsR, undefined, { metadata: { name: ns } })
  log(`creating ${cfg.nodes} nodes and their leases`)
  const names = await createNodes(client)
  const hb = heartbeat(client, names)
  // Owners: ConfigMaps stand in for ReplicaSets (nothing acts on them; the GC sees live owners).
  const owners: string[] = []
  for (let i = 0; i < cfg.owners; i++) owners.push((await client.create(cmR, ns, { metadata: { name: `owner-${i}` } })).metadata.uid!)

  const logger = createLogger({ level: 'warn', destination: 2 })
  const informers = new SharedInformers({ client: schedClient, logger })
  const metrics = createRegistry()
  if (!isProfileName(cfg.profile)) throw new Error('BENCH_PROFILE must be default or bin-packing')
  const scheduler = new Scheduler({ profile: cfg.profile, maxInflightBinds: cfg.inflightBinds })
  await scheduler.start({ client: schedClient, informers, events: new ApiEventRecorder({ client: schedClient, logger, component: 'default-scheduler', concurrency: cfg.eventConcurrency }), logger, metrics, config: defaultControllerConfig })
  const watch = watchBinds(client, (await client.list(podsR, ns, { limit: '1' })).metadata.resourceVersion)
  try {
    log(`creating ${cfg.pods} pods (${cfg.concurrency} at a time) from ${cfg.owners} owners`)
    const deadline = Date.now() + cfg.timeoutMs
    const createdAt = new Map<string, number>()
    const requestsBefore = await requestCounts(client)
    const profile = cfg.profileDir ? await startCpuProfile(join(cfg.profileDir, 'bench.cpuprofile')) : undefined
    if (cfg.profileDir) child.kill('SIGUSR2')
    const t0 = now()
    const createErrors = await pool(cfg.pods, cfg.concurrency, (i) => {
      const name = `pod-${i}`
      createdAt.set(name, now())
      return client.create(podsR, ns, makePod(name, { namespace: ns, owner: owners[i % owners.length], ownerKind: 'ConfigMap', ownerName: `owner-${i % owners.length}`, cpu: '100m', memory: '500Mi' }))
    }, deadline)
    const createdMs = now() - t0
    log(`created in ${(createdMs / 1000).toFixed(1)} s; waiting for binds`)
    while (watch.boundAt.size < createdAt.size - createErrors && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    if (profile) log(`profile written: ${await profile.stop()}`)
    // Writes the pods cost: every non-read request on pods and events, by verb, once the
    // recorder has written what it queued (no new Event write for 1 s; at most 60 s).
    let requestsAfter = await requestCounts(client)
    let eventsDone = now()
    for (let quiet = 0; quiet < 2 && now() - eventsDone < 60_000; ) {
      await new Promise((r) => setTimeout(r, 500))
      const next = await requestCounts(client)
      const changed = next.get('POST events') !== requestsAfter.get('POST events') || next.get('PATCH events') !== requestsAfter.get('PATCH events')
      quiet = changed ? 0 : quiet + 1
      if (changed) eventsDone = now()
      requestsAfter = next
    }
    const writes = [...requestsAfter].filter(([k]) => /^(POST|PUT|PATCH|DELETE) (pods|events)$/.test(k)).map(([k, n]) => [k, n - (requestsBefore.get(k) ?? 0)] as const)
    return { t0, createdMs, createErrors, createdAt, boundAt: watch.boundAt, scheduler, metrics, heartbeat: hb.stats(), writes, eventsDone }
  } finally {
    watch.stop()
    hb.stop()
    await scheduler.stop()
    informers.stop()
  }
}

async function report(r: Awaited<ReturnType<typeof run>>): Promise<string> {
  const binds = [...r.boundAt.values()].sort((a, b) => a - b)
  const [first, last] = [binds[0]!, binds[binds.length - 1]!]
  const total = binds.length / ((last - r.t0) / 1000)
  const bindOnly = binds.length / ((last - first) / 1000)
  const perSecond: number[] = []
  for (const b of binds) perSecond[Math.floor((b - first) / 1000)] = (perSecond[Math.floor((b - first) / 1000)] ?? 0) + 1
  const samples = Array.from(perSecond, (n) => n ?? 0)
  const avg = samples.reduce((a, b) => a + b, 0) / samples.length
  const latency = [...r.boundAt].map(([name, t]) => t - r.createdAt.get(name)!)
  const algo = (await r.metrics.getSingleMetric('scheduler_scheduling_algorithm_duration_seconds')!.get()).values
  const algoSum = algo.find((v) => (v as { metricName?: string }).metricName?.endsWith('_sum'))?.value ?? 0
  const algoCount = algo.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count'))?.value ?? 1
  const attempts = (await r.metrics.getSingleMetric('scheduler_schedule_attempts_total')!.get()).values.map((v) => `${v.labels.result} ${v.value}`).join(', ')
  const perNode = r.scheduler.cache.nodeInfos().map((n) => n.pods.size)
  let ownerMax = 0
  for (const n of r.scheduler.cache.nodeInfos()) for (const c of n.controllerPods.values()) ownerMax = Math.max(ownerMax, c)
  const f = (x: number, d = 0) => x.toFixed(d)
  return `Scheduler throughput, ${cfg.nodes} nodes, ${cfg.pods} pods from ${cfg.owners} owners, profile ${cfg.profile}, all plugins:

| nodes | pods bound | pods/s (first create to last bind) | pods/s (first to last bind) | per-second samples: avg / p50 / p90 / max | create to bound p50 / p99 | cycle mean | pods per node | max per owner per node |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| ${cfg.nodes} | ${binds.length}/${r.createdAt.size} | ${f(total)} | ${f(bindOnly)} | ${f(avg)} / ${f(pct(samples, 50))} / ${f(pct(samples, 90))} / ${f(Math.max(...samples))} | ${f(pct(latency, 50))} / ${f(pct(latency, 99))} ms | ${f((algoSum / algoCount) * 1000, 2)} ms | ${Math.min(...perNode)}..${Math.max(...perNode)} | ${ownerMax} |

The same cycles on an in-memory cache, no API: ${f(inMemoryPodsPerSecond())} pods/s.
Scheduled Events written: ${r.writes.find(([k]) => k === 'POST events')?.[1] ?? 0} of ${binds.length} (the recorder drops what does not fit its 1,000-event queue), the last one ${f((r.eventsDone - last) / 1000, 1)} s after the last bind: ${f(binds.length / ((Math.max(r.eventsDone, last) - r.t0) / 1000))} pods/s counting the Events.
Writes per bound pod: ${f(r.writes.reduce((a, [, n]) => a + n, 0) / binds.length, 2)} (${r.writes.map(([k, n]) => `${k} ${n}`).join(', ')}; POST pods counts creates and bindings); load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}.
Creates took ${f(r.createdMs / 1000, 1)} s (${f(r.createdAt.size / (r.createdMs / 1000))} pods/s offered, ${r.createErrors} errors); attempts: ${attempts}; lease renewals: ${r.heartbeat.rounds} rounds, ${r.heartbeat.errors} errors.
`
}

async function main(): Promise<void> {
  const loadStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  log(`load average at the start: ${loadStart}; starting redis-server and the apiserver`)
  const redis = await startRedis()
  let srv: Awaited<ReturnType<typeof startApiserver>> | undefined
  const clients: ApiClient[] = []
  try {
    srv = await startApiserver({ host: redis.host, port: redis.port, password: redis.password })
    const mk = () => {
      const c = new ApiClient({ server: srv!.url, caPem: readFileSync(join(srv!.stateDir, 'pki', 'ca.crt'), 'utf8'), token: adminToken(srv!.stateDir), timeoutMs: 60_000 })
      clients.push(c)
      return c
    }
    const r = await run(mk(), mk(), srv.child)
    process.stdout.write(`Load average at the start: ${loadStart}.\n` + (await report(r)))
  } finally {
    for (const c of clients) c.close()
    if (srv) {
      const exited = new Promise((r) => srv!.child.once('exit', r))
      srv.child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
      if (srv.child.exitCode === null) srv.child.kill('SIGKILL')
      rmSync(srv.stateDir, { recursive: true, force: true })
    }
    await redis.stop()
  }
}

if (process.env.BENCH_ROLE === 'apiserver') await apiserverChild()
else await main()
