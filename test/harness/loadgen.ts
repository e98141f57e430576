// An open-loop HTTP load generator for the fault tests, run as its own
// process so it can live inside a simulated host's network namespace
// (`nsenter --net=... node loadgen.ts '<config JSON>'`), where ClusterIPs
// exist. Each target gets `rps` requests a second on a fixed schedule, sent
// whether or not earlier ones answered (a slow path shows up as failures and
// latency, not as a lower rate). It stops at `durationMs`, or earlier when
// its stdin closes, and prints one JSON line: every request's send time (ms
// since start), latency and outcome.
//
// Outcome: the HTTP status, or an error code (ECONNREFUSED, ECONNRESET,
// TIMEOUT, ...). `fresh` targets open a new connection per request (what a
// ClusterIP sees from short-lived clients); others keep connections alive.

import http from 'node:http'

export interface LoadTarget {
  name: string
  url: string
  /** Host header (ingress routing). */
  host?: string
  fresh?: boolean
}

export interface LoadConfig {
  targets: LoadTarget[]
  rps: number
  durationMs: number
  timeoutMs: number
}

/** [sent at ms, latency ms, status or error code] */
export type Sample = [number, number, number | string]

export interface LoadResult {
  startedAt: number
  samples: Record<string, Sample[]>
}

function once(t: LoadTarget, agent: http.Agent | false, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    let done = false
    const finish = (v: number | string) => {
      if (!done) {
        done = true
        clearTimeout(timer)
        resolve(v)
      }
    }
    const req = http.get(t.url, { agent, headers: t.host ? { host: t.host } : {} }, (res) => {
      res.on('data', () => {})
      res.on('end', () => finish(res.statusCode ?? 0))
      res.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message))
    })
    req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message))
    const timer = setTimeout(() => {
      // The local port names the connection in conntrack (where its DNAT sent it).
      const port = req.socket?.localPort
      finish(port ? `TIMEOUT:${port}` : 'TIMEOUT')
      req.destroy()
    }, timeoutMs)
  })
}

export async function runLoad(cfg: LoadConfig, stop: Promise<void>): Promise<LoadResult> {
  const startedAt = Date.now()
  const t0 = performance.now()
  const samples: Record<string, Sample[]> = {}
  const pending = new Set<Promise<void>>()
  let stopped = false
  void stop.then(() => (stopped = true))
  const timers = cfg.targets.map((t) => {
    samples[t.name] = []
    const agent = t.fresh ? false : new http.Agent({ keepAlive: true, maxSockets: 64 })
    let n = 0
    const tick = () => {
      if (stopped || performance.now() - t0 >= cfg.durationMs) return
      const at = performance.now() - t0
      const p = once(t, agent, cfg.timeoutMs).then((out) => {
        samples[t.name]!.push([Math.round(at), Math.round(performance.now() - t0 - at), out])
      })
      pending.add(p)
      void p.finally(() => pending.delete(p))
      n++
      // Schedule against the start so a late timer does not lower the rate.
      setTimeout(tick, Math.max(0, t0 + (n * 1000) / cfg.rps - performance.now()))
    }
    return setTimeout(tick, 0)
  })
  await Promise.race([stop, new Promise((r) => setTimeout(r, cfg.durationMs))])
  stopped = true
  for (const t of timers) clearTimeout(t)
  await Promise.allSettled([...pending])
  for (const s of Object.values(samples)) s.sort((a, b) => a[0] - b[0])
  return { startedAt, samples }
}

if (import.meta.main) {
  const cfg = JSON.parse(process.argv[2] ?? '') as LoadConfig
  const stop = new Promise<void>((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
  })
  const result = await runLoad(cfg, stop)
  // Exit only once the whole result is out: stdout to a pipe is asynchronous
  // here, and process.exit() right after write() cut a 146 KB result short
  // (node-faults failed in CI on "exited 0" with half a JSON document).
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}
