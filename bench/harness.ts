// Small helpers shared by the benchmarks.

import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Histogram } from '../lib/metrics.ts'

export const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

/** A tap-like `t` for the test harness outside tap: teardown functions run last-in first-out by run(). */
export function teardowns() {
  const fns: Array<() => unknown> = []
  return {
    teardown(fn: () => unknown) {
      fns.push(fn)
    },
    async run() {
      while (fns.length) await Promise.resolve().then(fns.pop()!).catch((e) => log(`teardown: ${(e as Error).message}`))
    },
  }
}

/**
 * Ctrl-C and SIGTERM still clean up (networks, nft tables, redis-server):
 * `cleanup` runs once, on a signal (then the process exits 130) or when the
 * returned function is called on the normal path, which also drops the handlers.
 */
export function cleanupOnSignal(cleanup: () => Promise<unknown>): () => Promise<void> {
  let done: Promise<void> | undefined
  const once = () => (done ??= (async () => {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    await cleanup()
  })())
  const onSignal = () => void once().finally(() => process.exit(130))
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal)
  return once
}

const skiffCli = fileURLToPath(new URL('../cli/skiff.ts', import.meta.url))

/** The real skiff CLI against a state folder (`skiff up`, `skiff down` of a benchmark's cluster); its stderr shows. */
export function skiffCmd(stateDir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [skiffCli, '--state-dir', stateDir, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`skiff ${args.join(' ')} exited ${code}`))))
  })
}

/** The p-th percentile of xs (nearest rank). */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

/** In batches of `width` concurrent calls. */
export async function inBatches(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += width) await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)))
}

/** Cumulative histogram state, to diff two moments. */
export async function snap(h: Histogram) {
  const v = (await h.get()).values
  const buckets = v.filter((x) => x.metricName?.endsWith('_bucket')).map((x) => ({ le: Number(x.labels.le), n: x.value }))
  return { count: v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0, sum: v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0, buckets }
}

export type Snap = Awaited<ReturnType<typeof snap>>

/** The bucket bound holding the p-th percentile of what was observed between a and b. */
export function bucketPct(a: Snap, b: Snap, p: number): number {
  const total = b.count - a.count
  const want = Math.ceil((p / 100) * total)
  for (let i = 0; i < b.buckets.length; i++) if (b.buckets[i]!.n - (a.buckets[i]?.n ?? 0) >= want) return b.buckets[i]!.le
  return Infinity
}

/** Wall time of `nft -f file` in ms. */
export async function timeNft(file: string): Promise<number> {
  const t0 = performance.now()
  await promisify(execFile)('nft', ['-f', file], { maxBuffer: 1 << 26 })
  return performance.now() - t0
}

/** The wrk load of the ClusterIP throughput benchmarks (service-proxy-throughput.ts, netpol-throughput.ts), from the environment. */
export const wrkLoad = (() => {
  /** The page busybox httpd serves (a small response, like most API calls). */
  const body = 'skiff-throughput-ok'
  const largeKiB = Number(process.env.BENCH_LARGE_KIB ?? 1024)
  return {
    body,
    largeKiB,
    seconds: Number(process.env.BENCH_SECONDS ?? 6),
    /** Two loads: small responses (connection and request rate) and large ones (bytes through the path). */
    sizes: [[`${body.length + 1} B`, ''], [`${largeKiB} KiB`, 'large']] as Array<[string, string]>,
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    // busybox httpd listens with a backlog of 9: more concurrent connections overflow its accept queue and the
    // dropped SYNs wait a second for their retransmission. wrk starts its clock after connecting, so that wait
    // is invisible on the direct and nftables paths, but a userspace proxy accepts at once and waits for its own
    // connect inside wrk's latency (a 1 s p99 with 16 connections). 8 keeps every path below the backlog.
    connections: Number(process.env.BENCH_CONNECTIONS ?? 8),
  }
})()

/** The container that serves wrkLoad: busybox httpd (C, a process per connection, no keep-alive) from skiff/pause:local on 8080. */
export function httpdContainer() {
  return {
    name: 'httpd', image: 'skiff/pause:local', ports: [{ name: 'http', containerPort: 8080 }],
    command: ['sh', '-c', `mkdir -p /tmp/www && echo ${wrkLoad.body} > /tmp/www/index.html && head -c ${wrkLoad.largeKiB * 1024} /dev/zero > /tmp/www/large && exec busybox httpd -f -p 8080 -h /tmp/www`],
    readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
  }
}

export interface WrkResult { rps: number; p50: number; p99: number; errors: number }

/** wrk's duration text (`812.00us`, `1.23ms`, `2.01s`) in ms. */
function ms(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s)
  if (!m) return NaN
  return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[m[2]!]!
}

/** Requests/s, p50 and p99 (ms, from --latency) and errors (socket errors + non-2xx/3xx) of one wrk run. */
export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const p50 = ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '')
  const p99 = ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '')
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const errors = non2xx + (err ? err.slice(1).reduce((a, b) => a + Number(b), 0) : 0)
  return { rps, p50, p99, errors }
}
