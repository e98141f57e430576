// A wall clock a test can step, for one child process: libfaketime (Debian
// package faketime) preloaded, reading the offset from a file at every call
// (FAKETIME_NO_CACHE), with the monotonic clock left alone
// (FAKETIME_DONT_FAKE_MONOTONIC) and file times not faked (NO_FAKE_STAT).
// That is what a real step of the system clock does to a process: Date.now()
// jumps, performance.now() and timers go on. The multithreaded build, as
// Node runs threads. A missing libfaketime fails the test, never skips it.

import { existsSync } from 'node:fs'
import { rename, rm, writeFile } from 'node:fs/promises'
import { arch } from 'node:os'
import { join } from 'node:path'

interface Teardown {
  teardown(fn: () => unknown): void
}

const multiarch: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }

/** The preload library, or an error saying how to install it. */
export function libfaketimePath(): string {
  const path = `/usr/lib/${multiarch[arch()] ?? `${arch()}-linux-gnu`}/faketime/libfaketimeMT.so.1`
  if (!existsSync(path)) throw new Error(`libfaketime not found at ${path}: run scripts/setup.sh test, or apt-get install faketime`)
  return path
}

export interface SteppedClock {
  /** Environment for the child process (merge into process.env). */
  env: Record<string, string>
  /** The offset now, as written: '+0', '+10m', '-10m'. */
  offset: string
  /** Step the child's wall clock to real time + offset (libfaketime syntax: +10m, -600, +0), atomically. */
  set(offset: string): Promise<void>
}

/** A clock file `<dir>/<name>.faketime`, starting at `offset`; removed at teardown. */
export async function steppedClock(t: Teardown, dir: string, name: string, offset = '+0'): Promise<SteppedClock> {
  const lib = libfaketimePath()
  const file = join(dir, `${name}.faketime`)
  const clock: SteppedClock = {
    env: { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', NO_FAKE_STAT: '1' },
    offset,
    async set(next: string) {
      if (!/^[+-]\d+[smhd]?$/.test(next)) throw new Error(`not a libfaketime offset: ${next}`)
      // A reader between truncate and write would see no offset: write aside, then rename.
      await writeFile(`${file}.tmp`, `${next}\n`)
      await rename(`${file}.tmp`, file)
      clock.offset = next
    },
  }
  t.teardown(() => rm(file, { force: true }))
  await clock.set(offset)
  return clock
}
