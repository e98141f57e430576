// `skiff server` and `skiff agent` as long-running child processes of a
// test, with an environment of the test's choosing (a stepped wall clock:
// faketime.ts), their output in a log file, and stopped by pid (SIGTERM,
// then SIGKILL after a grace period) at teardown, also when the test fails.
// The short-lived CLI runs are skiff-up.ts's runSkiff.

import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { skiffCli } from './skiff-up.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface SkiffProcess {
  name: string
  pid: number
  log: string
  /** Resolves with the exit code (or the signal) when the process ends. */
  exited: Promise<string>
  alive(): boolean
  /** SIGTERM, then SIGKILL after graceMs; resolves once it is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>
  /** The last lines of its log, for a failure message. */
  tail(lines?: number): string
}

/** `skiff --state-dir <stateDir> <args...>` in the background; logs to <logDir>/<name>.log. */
export function spawnSkiff(t: Teardown, o: { name: string; stateDir: string; args: string[]; logDir: string; env?: Record<string, string> }): SkiffProcess {
  const log = join(o.logDir, `${o.name}.log`)
  const fd = openSync(log, 'a')
  const child = spawn(process.execPath, [skiffCli, '--state-dir', o.stateDir, ...o.args], { stdio: ['ignore', fd, fd], env: { ...process.env, ...o.env } })
  closeSync(fd)
  let running = true
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => {
    running = false
    resolve(signal ?? `code ${code}`)
  }))
  const p: SkiffProcess = {
    name: o.name,
    pid: child.pid!,
    log,
    exited,
    alive: () => running,
    async stop(graceMs = 20_000) {
      if (!running) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => running && child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
    tail(lines = 30) {
      try {
        return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
      } catch {
        return ''
      }
    },
  }
  t.teardown(() => p.stop())
  return p
}
