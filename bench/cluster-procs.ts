// The processes of one `skiff up` cluster on this machine, by category, read
// from /proc: found by the cluster's state folder or run folder in their
// command line or working folder (redis-server rewrites its title, so its
// working folder, the data dir, names it). bench/density.ts sums their memory,
// bench/pod-startup.ts their CPU time over a phase.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { names } from '../cli/cluster-spec.ts'

export const categories = ['skiff server', 'skiff agents', 'redis', 'dockerd + containerd', 'containerd-shim', 'containers'] as const
export type Category = (typeof categories)[number]

export interface ClusterProcess {
  pid: number
  category: Category
}

const clockTicks = 100 // USER_HZ on Linux

/** Every live process of the cluster in `stateDir`; a shim's descendants are its containers' processes. */
export function clusterProcesses(stateDir: string): ClusterProcess[] {
  const runDir = names.runDir(JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')))
  const ours = (cmd: string) => cmd.includes(stateDir) || cmd.includes(`${runDir}/`)
  const children = new Map<number, number[]>()
  const cmds = new Map<number, string>()
  for (const d of readdirSync('/proc')) {
    const pid = Number(d)
    if (!Number.isInteger(pid)) continue
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
      let cwd = ''
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`)
      } catch {
        // no access, or gone
      }
      cmds.set(pid, cwd.startsWith(stateDir) ? `${cmd} (cwd ${cwd})` : cmd)
      children.set(ppid, [...(children.get(ppid) ?? []), pid])
    } catch {
      // gone, or a kernel thread
    }
  }
  const subtree = (pid: number): number[] => [pid, ...(children.get(pid) ?? []).flatMap(subtree)]
  const out: ClusterProcess[] = []
  for (const [pid, cmd] of cmds) {
    if (!ours(cmd)) continue
    const exe = cmd.split(' ')[0]!.split('/').pop()!
    if (cmd.includes('skiff.ts') && / server( |$)/.test(cmd)) out.push({ pid, category: 'skiff server' })
    else if (cmd.includes('skiff.ts') && / agent( |$)/.test(cmd)) out.push({ pid, category: 'skiff agents' })
    else if (exe === 'redis-server') out.push({ pid, category: 'redis' })
    else if (exe === 'dockerd' || exe === 'containerd') out.push({ pid, category: 'dockerd + containerd' })
    else if (exe.startsWith('containerd-shim')) {
      out.push({ pid, category: 'containerd-shim' })
      for (const c of subtree(pid).slice(1)) out.push({ pid: c, category: 'containers' })
    }
  }
  return out
}

/** PSS of a process in KiB (shared pages split among the processes that map them); 0 once it is gone. */
export function pssKiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** CPU seconds (user + system) a process has used, its waited-for children included; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces) start at state; utime..cstime are fields 14-17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clockTicks
  } catch {
    return undefined
  }
}

/** The whole machine's busy CPU seconds (all but idle and iowait) and its core count, from /proc/stat. */
export function machineCpu(): { busy: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  const f = lines[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: (total - f[3]! - f[4]!) / clockTicks, cores: lines.filter((l) => /^cpu\d/.test(l)).length }
}

/**
 * CPU seconds by category between this call and the returned function's
 * call, for the processes alive at the end (one that came and went between,
 * such as runc, falls into "other"). "other" is the machine's busy
 * time that none of the cluster's long-lived processes account for.
 */
export function cpuOver(stateDir: string): () => Record<Category | 'other' | 'machine', number> {
  const at0 = new Map(clusterProcesses(stateDir).map((p) => [p.pid, cpuSeconds(p.pid) ?? 0]))
  const m0 = machineCpu()
  return () => {
    const out = Object.fromEntries([...categories, 'other', 'machine'].map((c) => [c, 0])) as Record<Category | 'other' | 'machine', number>
    for (const p of clusterProcesses(stateDir)) {
      const now = cpuSeconds(p.pid)
      if (now !== undefined) out[p.category] += now - (at0.get(p.pid) ?? 0)
    }
    const m1 = machineCpu()
    out.machine = m1.busy - m0.busy
    out.other = out.machine - categories.reduce((s, c) => s + out[c], 0)
    return out
  }
}
