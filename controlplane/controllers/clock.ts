// Clocks for controllers that act at wall-clock times. The CronJob
// controller reads `now()` to decide which scheduled time is due and waits
// `realDelayMs(until next)` before looking again; everything it writes
// (lastScheduleTime, Job names, the scheduled-timestamp annotation) is in
// this clock's time.
//
// fastClock exists for tests: it starts at the real time and runs `factor`
// times faster, so "every minute" fires every 60/factor seconds while the
// schedule, the names and the missed-start arithmetic stay those of real
// minutes. The Jobs it starts still run on the real clock (their startTime,
// completionTime, activeDeadlineSeconds and TTLs are real).

import type { ControllerClock } from './types.ts'

export const wallClock: ControllerClock = {
  now: () => Date.now(),
  realDelayMs: (ms) => ms,
}

export function fastClock(factor: number, start = Date.now()): ControllerClock {
  if (!(factor >= 1)) throw new Error(`fastClock: factor must be at least 1, got ${factor}`)
  return {
    now: () => start + (Date.now() - start) * factor,
    realDelayMs: (ms) => Math.ceil(ms / factor),
  }
}
