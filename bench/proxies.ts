// What the ingress benchmarks (ingress.ts, ingress-routing.ts) share: the
// tools they need, daemons stopped at teardown, nginx configuration files,
// waiting for a URL to answer, one wrk run and the medians of rounds.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { eventually } from '../lib/net.ts'
import { parseWrk, type teardowns, type WrkResult } from './harness.ts'

export const run = promisify(execFile)

export async function need(cmd: string, args: string[], pkg: string): Promise<void> {
  await run(cmd, args).catch((e: any) => {
    if (e.code === 'ENOENT') throw new Error(`${cmd} not found: apt-get install ${pkg}`)
  })
}

export function daemon(t: ReturnType<typeof teardowns>, cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGTERM')
  })
  return p
}

/** Curl's -H arguments for a header list. */
const headerArgs = (headers: readonly string[]) => headers.flatMap((h) => ['-H', h])

export async function listening(url: string, headers: readonly string[]): Promise<void> {
  const status = () => run('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', ...headerArgs(headers), url]).then((r) => Number(r.stdout), () => 0)
  await eventually(async () => (await status()) === 200, { timeout: 15_000, what: `${url} answering 200 with ${headers.join(', ')}` })
}

export async function nginxConf(dir: string, name: string, body: string): Promise<string> {
  const file = join(dir, `${name}.conf`)
  await writeFile(file, `daemon off; worker_processes ${availableParallelism()}; pid ${dir}/${name}.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-f; uwsgi_temp_path ${dir}/${name}-u; scgi_temp_path ${dir}/${name}-s;
  ${body} }
`)
  return file
}

export async function wrk(url: string, o: { connections: number; seconds: number; headers: readonly string[]; threads?: number }): Promise<WrkResult> {
  const { stdout } = await run('wrk', [`-t${o.threads ?? 2}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', ...headerArgs(o.headers), url], { timeout: (o.seconds + 30) * 1000 })
  return parseWrk(stdout)
}

export interface Summary { name: string; rps: number; p50: number; p99: number; errors: number }

/** Per target, the median req/s, p50 and p99 of its rounds and the sum of errors. */
export function medians(names: readonly string[], rows: ReadonlyArray<{ name: string; r: WrkResult }>): Summary[] {
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return names.map((name) => {
    const mine = rows.filter((x) => x.name === name).map((x) => x.r)
    return { name, rps: median(mine.map((r) => r.rps)), p50: median(mine.map((r) => r.p50)), p99: median(mine.map((r) => r.p99)), errors: mine.reduce((a, r) => a + r.errors, 0) }
  })
}

export async function loadAverage(): Promise<string> {
  return (await run('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')
}
