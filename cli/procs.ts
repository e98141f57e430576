// Finding and stopping the processes of a local cluster. A process belongs to
// a cluster when its command line names the cluster's state or run folder (an
// absolute --state-dir, a data-root, a config file), when it is a skiff
// process whose relative or default --state-dir resolves there from its
// working folder, or when SKIFF_STATE_DIR points there. That covers an agent
// a user started by hand, which `stop` and `down` must stop too.

import { readFileSync, readlinkSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'

/** Is pid alive and running the expected program (so a reused pid is not killed)? */
export function processMatches(pid: number | undefined, needle: string): boolean {
  if (!pid) return false
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
    return cmd.includes(needle) && !isZombie(pid)
  } catch {
    return false
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z'
  } catch {
    return true
  }
}

/** The state folder a skiff command line uses, resolved against its working folder (pure). */
export function stateDirOf(argv: string[], cwd: string, env: Record<string, string | undefined>): string | undefined {
  if (!argv.some((a) => a.endsWith('skiff.ts') || a.endsWith('/skiff'))) return undefined
  const i = argv.findIndex((a) => a === '--state-dir' || a.startsWith('--state-dir='))
  if (i >= 0) return resolve(cwd, argv[i]!.includes('=') ? argv[i]!.slice('--state-dir='.length) : (argv[i + 1] ?? ''))
  return resolve(cwd, env.SKIFF_STATE_DIR ?? '.skiff')
}

export interface ProcInfo {
  pid: number
  argv: string[]
}

/** Every process (but this one) whose command line or state folder is under one of `dirs`. */
export function processesUsing(dirs: string[]): ProcInfo[] {
  const out: ProcInfo[] = []
  const mine = ancestors()
  const under = (p: string) => dirs.some((d) => p === d || p.startsWith(d + '/'))
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || mine.has(Number(d))) continue
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean)
      if (!argv.length || isZombie(Number(d))) continue
      const named = argv.some((a) => dirs.some((dir) => a.includes(dir)))
      let uses = named
      if (!uses && argv.some((a) => a.endsWith('skiff.ts'))) {
        const env = Object.fromEntries(readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
        const dir = stateDirOf(argv, readlinkSync(`/proc/${d}/cwd`), env)
        uses = !!dir && under(dir)
      }
      if (uses) out.push({ pid: Number(d), argv })
    } catch {
      // gone meanwhile, or not readable
    }
  }
  return out
}

/** This process and its ancestors (the npm or shell that started it): never ours to stop. */
function ancestors(): Set<number> {
  const out = new Set<number>()
  for (let pid = process.pid; pid > 1 && !out.has(pid); ) {
    out.add(pid)
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    } catch {
      break
    }
  }
  return out
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return !isZombie(pid)
  } catch {
    return false
  }
}

/** Processes (but this one and its ancestors) whose command line, joined by spaces, contains `needle`. */
export function pidsMatching(needle: string): number[] {
  const mine = ancestors()
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || mine.has(Number(d))) continue
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle)) out.push(Number(d))
    } catch {
      // gone
    }
  }
  return out
}

/** SIGTERM, then SIGKILL after graceMs for whatever is still there. Resolves when all are gone. */
export async function stopPids(pids: number[], graceMs = 10_000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  const hard = Date.now() + 5_000
  while (pids.some(alive) && Date.now() < hard) await new Promise((r) => setTimeout(r, 50))
}

export function killNow(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

export { alive as pidAlive }
