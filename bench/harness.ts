// Small helpers shared by the benchmarks.

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
