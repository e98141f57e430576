// `skiff up` on this machine: how long a new 3-host cluster takes to be ready
// (images already built, as after the first `npm start`), how long a stopped
// one takes to resume, and what each simulated host costs in memory (RSS of
// its dockerd, containerd, shims, agent and ingress workers, idle, with the
// demo running), next to the control plane's (supervisor, Redis, server).
//
//   node bench/skiff-up.ts            (BENCH_NODES=3, BENCH_ROUNDS=2)

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { names } from '../cli/cluster-spec.ts'
import { readSpecIfAny } from '../cli/cluster.ts'
import { ensureImages } from '../node/images/build.ts'
import { log } from './harness.ts'

const skiff = fileURLToPath(new URL('../cli/skiff.ts', import.meta.url))
const nodes = Number(process.env.BENCH_NODES ?? 3)
const rounds = Number(process.env.BENCH_ROUNDS ?? 2)

function run(stateDir: string, args: string[]): Promise<{ code: number; ms: number; err: string }> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [skiff, '--state-dir', stateDir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    c.stderr.on('data', (d) => (err += d))
    c.on('close', (code) => resolve({ code: code ?? -1, ms: performance.now() - t0, err }))
  })
}

/** pid → [ppid, rss KiB, cmdline] of every process. */
function processes(): Map<number, { ppid: number; rssKiB: number; cmd: string }> {
  const out = new Map<number, { ppid: number; rssKiB: number; cmd: string }>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1] ?? 0)
      out.set(Number(d), { ppid, rssKiB: rss, cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ') })
    } catch {
      // gone
    }
  }
  return out
}

/** RSS (MiB) of the processes whose command line contains any marker, and of all their descendants. */
function treeRss(all: ReturnType<typeof processes>, markers: string[]): number {
  const roots = [...all].filter(([, p]) => markers.some((m) => p.cmd.includes(m))).map(([pid]) => pid)
  const tree = new Set(roots)
  for (let grew = true; grew; ) {
    grew = false
    for (const [pid, p] of all) if (tree.has(p.ppid) && !tree.has(pid)) (tree.add(pid), (grew = true))
  }
  let kib = 0
  for (const pid of tree) kib += all.get(pid)?.rssKiB ?? 0
  return kib / 1024
}

await ensureImages({ progress: null })
const rows: string[] = []
for (let r = 1; r <= rounds; r++) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-up-'))
  try {
    log(`round ${r}: skiff up --nodes ${nodes} --demo`)
    const up = await run(dir, ['up', '--port', '0', '--nodes', String(nodes), '--cluster-cidr', '10.42.0.0/16', '--demo'])
    if (up.code !== 0) throw new Error(`skiff up failed: ${up.err}`)
    await new Promise((res) => setTimeout(res, 10_000)) // idle: start-up work done
    const spec = readSpecIfAny(dir)!
    const all = processes()
    // Per host: the agent (with its ingress workers), the Engine (dockerd, containerd), the pods (shims and containers).
    const perHost = spec.hosts.map((h) => {
      const agent = treeRss(all, [`${names.hostRoot(dir, h)} agent`])
      const pods = treeRss(all, [`-address ${names.execRoot(spec, h)}`])
      const engine = treeRss(all, [names.dockerSock(spec, h)])
      return { agent, engine, pods, all: agent + engine + pods }
    })
    const control = treeRss(all, [`${dir}/redis/redis.conf`, `${dir} server`]) + (all.get([...all].find(([, p]) => p.cmd.includes(`${dir} supervise`))?.[0] ?? -1)?.rssKiB ?? 0) / 1024
    const stop = await run(dir, ['stop'])
    const resume = await run(dir, ['up'])
    if (resume.code !== 0) throw new Error(`skiff up (resume) failed: ${resume.err}`)
    const avg = (k: 'agent' | 'engine' | 'pods' | 'all') => (perHost.reduce((a, b) => a + b[k], 0) / perHost.length).toFixed(0)
    rows.push(`| ${r} | ${(up.ms / 1000).toFixed(1)} s | ${(stop.ms / 1000).toFixed(1)} s | ${(resume.ms / 1000).toFixed(1)} s | ${avg('all')} MiB (agent ${avg('agent')}, Engine ${avg('engine')}, pods ${avg('pods')}) | ${control.toFixed(0)} MiB |`)
    log(rows.at(-1)!)
  } finally {
    await run(dir, ['down'])
    rmSync(dir, { recursive: true, force: true })
  }
}
process.stdout.write(`\n| round | up (new, --demo, until ready) | stop | up (resume) | RSS per host, mean of ${nodes} | RSS control plane (supervisor, Redis, server) |\n| --- | --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`)
