// CPU profiles for the benchmarks, taken in-process over the phase that is
// measured (node:inspector's Profiler; the same .cpuprofile format as
// `node --cpu-prof`, readable by Chrome DevTools and cpuprofile-summary.ts).

import { Session } from 'node:inspector/promises'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Start profiling this process; stop() writes `path` and returns it. */
export async function startCpuProfile(path: string, intervalUs = 500): Promise<{ stop(): Promise<string> }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.post('Profiler.start')
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, JSON.stringify(profile))
      return path
    },
  }
}
