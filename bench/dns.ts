// Cluster DNS queries/s and latency with dnsperf, against dnsmasq serving the
// same records on the same machine, in the same run.
//
//   node bench/dns.ts
//   BENCH_SECONDS=10 BENCH_SERVICES=1000 BENCH_LATENCY_QPS=10000 BENCH_ROUNDS=2 BENCH_CLIENTS=8 node bench/dns.ts
//   BENCH_DNS_WORKERS=0 node bench/dns.ts        (answer in the main thread, the layout before worker threads)
//   node --cpu-prof --cpu-prof-dir=/tmp/dns-prof bench/dns.ts   (a V8 CPU profile per thread, workers included)
//
// Two phases per server: throughput (dnsperf at full speed, default 100
// outstanding queries, for BENCH_SECONDS) and latency (dnsperf -v at a fixed
// BENCH_LATENCY_QPS for 5 s; p50/p99/max from the per-query latencies, since
// dnsperf 2.10 prints only average and max). Skiff's ClusterDns runs in this
// process (its queries answered by BENCH_DNS_WORKERS worker threads, default
// one per core), fed by a real apiserver (test harness) holding
// BENCH_SERVICES Services; dnsmasq gets the same names in an addn-hosts file.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ClusterDns } from '../dataplane/dns/server.ts'
import { silentLogger } from '../lib/log.ts'
import { eventually, freePort } from '../lib/net.ts'
import { startTestCluster } from '../test/harness/cluster.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const nServices = Number(process.env.BENCH_SERVICES ?? 1000)
const latencyQps = Number(process.env.BENCH_LATENCY_QPS ?? 10000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
// dnsperf -c: clients, each its own socket (source port). SO_REUSEPORT spreads
// flows, not packets, so one client's queries all reach one worker thread;
// stub resolvers use a fresh source port per query, so several clients are
// the realistic load. Both servers get the same option.
const clients = Number(process.env.BENCH_CLIENTS ?? 8)
const workers = process.env.BENCH_DNS_WORKERS === undefined ? undefined : Number(process.env.BENCH_DNS_WORKERS)
const svcs = lookupResource('', 'v1', 'services')!
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

interface PerfResult {
  qps: number
  avgMs: number
  maxMs: number
  lost: number
  completed: number
  /** CPU seconds the server used during the run (all its threads). */
  cpuS?: number
  p50Ms?: number
  p99Ms?: number
}

async function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    p.stdout.on('data', (d) => chunks.push(d))
    p.stderr.on('data', (d) => chunks.push(d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('error', (e) => reject(new Error(`cannot run ${cmd} (apt-get install ${cmd}): ${e.message}`)))
    p.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString())
    })
  })
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

async function dnsperf(host: string, port: number, queryFile: string, verbose: boolean): Promise<PerfResult> {
  const args = ['-s', host, '-p', String(port), '-d', queryFile, '-l', String(verbose ? 5 : seconds), '-t', '2', '-c', String(clients)]
  if (verbose) args.push('-v', '-Q', String(latencyQps))
  const out = await run('dnsperf', args, (seconds + 30) * 1000)
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN)
  const r: PerfResult = {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    maxMs: num(/max ([\d.]+)\)/) * 1000,
    lost: num(/Queries lost:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
  }
  if (verbose) {
    // "> NOERROR s1.default.svc.cluster.local A 0.000123"
    const lat = [...out.matchAll(/^> \w+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000)
    r.p50Ms = pct(lat, 50)
    r.p99Ms = pct(lat, 99)
  }
  return r
}

/** CPU seconds (user + system) of a process so far, every thread: /proc/<pid>/stat utime + stime. */
function procCpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100 // fields 14 and 15, in clock ticks (USER_HZ 100)
}

async function startDnsmasq(hostsFile: string, port: number): Promise<{ stop(): void; pid: number }> {
  const p = spawn('dnsmasq', ['-k', '-C', '/dev/null', `--port=${port}`, '--listen-address=127.0.0.3', '--bind-interfaces', '--no-resolv', '--no-hosts',
    `--addn-hosts=${hostsFile}`, '--local-ttl=5', '--user=root', '--pid-file='], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr.on('data', (d) => (err += d))
  p.on('error', (e) => log(`cannot run dnsmasq (apt-get install dnsmasq-base): ${e.message}`))
  const stop = () => p.kill('SIGTERM')
  await eventually(async () => (await run('dig', ['@127.0.0.3', '-p', String(port), '+short', '+tries=1', '+time=1', 's0.default.svc.cluster.local'], 5000)).trim() !== '' || (err && Promise.reject(new Error(err))), { timeout: 15_000, what: 'dnsmasq' }).catch((e) => {
    stop()
    throw e
  })
  return { stop, pid: p.pid! }
}

const teardowns: Array<() => unknown> = []
async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-dns-'))
  teardowns.push(() => rmSync(dir, { recursive: true, force: true }))
  const c = await startTestCluster({ teardown: (fn) => teardowns.push(fn) })
  log(`creating ${nServices} Services`)
  const ips: string[] = []
  for (let i = 0; i < nServices; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, nServices - i) }, (_, j) => c.client.create(svcs, 'default', { metadata: { name: `s${i + j}` }, spec: { ports: [{ name: 'http', port: 80 }] } })))
    for (const s of batch) ips.push(s.spec.clusterIP)
  }
  const names = ips.map((_, i) => `s${i}.default.svc.cluster.local`)
  const queryFile = join(dir, 'queries.txt')
  writeFileSync(queryFile, names.map((n) => `${n} A\n`).join(''))
  const hostsFile = join(dir, 'hosts')
  writeFileSync(hostsFile, names.map((n, i) => `${ips[i]} ${n}\n`).join(''))

  const port = await freePort()
  const dns = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port }], upstreams: [], workers })
  teardowns.push(() => dns.stop())
  await dns.start()
  await dns.whenSynced()
  const dmPort = await freePort('127.0.0.3')
  const dnsmasq = await startDnsmasq(hostsFile, dmPort)
  teardowns.push(dnsmasq.stop)
  // Both from /proc (this process: the apiserver and the test harness too, idle meanwhile).
  const cpuOf = { dnsmasq: () => procCpuSeconds(dnsmasq.pid), skiff: () => procCpuSeconds(process.pid) }

  // Rounds alternate the two servers so a noisy neighbour on a shared
  // machine hits both alike; the table keeps every round.
  const rows: Array<{ round: number; name: string; tput: PerfResult; lat: PerfResult }> = []
  for (let round = 1; round <= rounds; round++) {
    for (const [name, host, p] of [['dnsmasq', '127.0.0.3', dmPort], ['skiff', '127.0.0.1', port]] as const) {
      log(`round ${round} ${name}: throughput ${seconds} s, then latency at ${latencyQps} q/s for 5 s`)
      const cpu0 = cpuOf[name]()
      const tput = await dnsperf(host, p, queryFile, false)
      tput.cpuS = cpuOf[name]() - cpu0
      rows.push({ round, name, tput, lat: await dnsperf(host, p, queryFile, true) })
    }
  }
  const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(3))
  console.log(`\nDNS, ${nServices} Services, skiff with ${dns.workers?.size ?? 0} worker threads (0: in the main thread), dnsperf -c ${clients} ${seconds} s full speed (100 outstanding) + 5 s at ${latencyQps} q/s; ${availableParallelism()} cores`)
  console.log('round | server   | q/s      | avg ms (full) | max ms (full) | lost | CPU µs/query (full) | p50 ms | p99 ms | max ms (fixed rate)')
  for (const r of rows) {
    const cpuUs = ((r.tput.cpuS ?? NaN) * 1e6) / r.tput.completed
    console.log(`${String(r.round).padEnd(5)} | ${r.name.padEnd(8)} | ${r.tput.qps.toFixed(0).padEnd(8)} | ${f(r.tput.avgMs).padEnd(13)} | ${f(r.tput.maxMs).padEnd(13)} | ${String(r.tput.lost).padEnd(4)} | ${cpuUs.toFixed(1).padEnd(19)} | ${f(r.lat.p50Ms).padEnd(6)} | ${f(r.lat.p99Ms).padEnd(6)} | ${f(r.lat.maxMs)}`)
  }
  const best = (name: string) => Math.max(...rows.filter((r) => r.name === name).map((r) => r.tput.qps))
  console.log(`ratio skiff/dnsmasq q/s (best round each): ${(best('skiff') / best('dnsmasq')).toFixed(2)}x`)
}

try {
  await main()
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
