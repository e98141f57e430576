// The load generator (loadgen.ts) as a child process in a simulated host's
// network namespace, where ClusterIPs exist; and the sums the fault tests
// make of its samples. Not a test file.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { names, type HostSpec } from '../../cli/cluster-spec.ts'
import type { LoadConfig, LoadResult, LoadTarget, Sample } from './loadgen.ts'
import type { UpCluster } from './skiff-up.ts'

const loadgen = fileURLToPath(new URL('./loadgen.ts', import.meta.url))

interface Teardown {
  teardown(fn: () => unknown): void
}

export const sampleOk = (s: Sample): boolean => typeof s[2] === 'number' && s[2] >= 200 && s[2] < 300

/** The failed samples of each target. */
export const failedSamples = (r: LoadResult): Record<string, Sample[]> => Object.fromEntries(Object.entries(r.samples).map(([k, v]) => [k, v.filter((s) => !sampleOk(s))]))

export const loadSummary = (r: LoadResult): string => Object.entries(r.samples).map(([k, v]) => `${k}: ${v.length} sent, ${v.filter((s) => !sampleOk(s)).length} failed`).join('; ')

/** `rps` requests a second to each target from `host`'s namespace, for at most maxMs; stop() returns every sample. */
export function startLoad(t: Teardown, c: UpCluster, host: HostSpec, targets: LoadTarget[], o: { rps: number; maxMs: number; timeoutMs?: number }): { stop(): Promise<LoadResult> } {
  const cfg: LoadConfig = { targets, rps: o.rps, durationMs: o.maxMs, timeoutMs: o.timeoutMs ?? 3_000 }
  const child = spawn('nsenter', [`--net=/run/netns/${names.netns(c.spec, host)}`, process.execPath, loadgen, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const done = new Promise<LoadResult>((resolve, reject) => child.on('close', (code) => {
    try {
      resolve(JSON.parse(out) as LoadResult)
    } catch {
      reject(new Error(`load generator on ${host.name} exited ${code}: ${err || out}`))
    }
  }))
  t.teardown(() => void child.kill('SIGKILL'))
  return { stop: async () => (child.stdin.end(), await done) }
}

/** Failures by whole second since `zeroAt` (a wall-clock ms), e.g. "0s:12 1s:30 4s:2": where in a fault they fell. */
export function failureTimeline(r: LoadResult, name: string, zeroAt: number): string {
  const bySecond = new Map<number, number>()
  for (const s of r.samples[name] ?? []) {
    if (sampleOk(s)) continue
    const sec = Math.floor((r.startedAt + s[0] - zeroAt) / 1000)
    bySecond.set(sec, (bySecond.get(sec) ?? 0) + 1)
  }
  return [...bySecond].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}s:${v}`).join(' ') || 'none'
}

/** Failures counted by kind (TIMEOUT, ECONNRESET, a status); a timeout's local port is left out. */
export function failureKinds(bad: Sample[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of bad) {
    const kind = String(s[2]).split(':')[0]!
    out[kind] = (out[kind] ?? 0) + 1
  }
  return out
}
