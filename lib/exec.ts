// Running a command, optionally inside a network namespace (a simulated host):
// the one helper the pod network, the LoadBalancer speaker, the local
// cluster and the tests share. Namespaces are entered with `nsenter --net`,
// never `ip netns exec` (it remounts /sys and hides the cgroup mounts that
// dockerd needs). run() never rejects: callers turn a failure into their own
// coded error.

import { spawn } from 'node:child_process'

export interface RunResult {
  /** Exit code; 127 when the command could not be started, 128 when killed (the timeout). */
  code: number
  stdout: string
  stderr: string
}

/** The argv that runs `cmd args` in `netns` (or here). */
export function inNetns(netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=/run/netns/${netns}`, cmd, ...args]] : [cmd, [...args]]
}

export function run(cmd: string, args: readonly string[], o: { netns?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const [file, argv] = inNetns(o.netns, cmd, args)
  return new Promise((resolve) => {
    const child = spawn(file, argv, { stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: o.timeoutMs ?? 20_000 })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: `cannot run ${cmd}: ${e.message}` }))
    child.on('close', (code, signal) => resolve({ code: code ?? 128, stdout, stderr: signal ? `${stderr}${cmd} killed by ${signal} (timeout?)` : stderr }))
    if (child.stdin) {
      child.stdin.on('error', () => undefined)
      child.stdin.end(o.input)
    }
  })
}

/** run(), throwing (with stderr and where it ran) on a non-zero exit unless allowFail. */
export async function sh(cmd: string, args: readonly string[], o: { netns?: string; allowFail?: boolean; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const r = await run(cmd, args, o)
  if (r.code === 127 && !o.allowFail) throw new Error(`${r.stderr} (is it installed? npm start installs what is missing)`)
  if (r.code !== 0 && !o.allowFail) throw new Error(`${[cmd, ...args].join(' ')}${o.netns ? ` (in ${o.netns})` : ''} failed: ${r.stderr.trim()}`)
  return r
}
