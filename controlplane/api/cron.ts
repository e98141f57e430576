// CronJob schedules: the syntax Kubernetes accepts (robfig/cron's
// ParseStandard: five fields, or @yearly/@annually/@monthly/@weekly/@daily/
// @midnight/@hourly, or @every <duration>) evaluated in an IANA time zone.
// The five-field matching and time-zone arithmetic are croner's (package.json
// says why); this file only shapes the input and the errors the way
// Kubernetes reports them, and is shared by validation and the controller.

import { Cron } from 'croner'

export interface CronSchedule {
  /** The first scheduled time strictly after `afterMs` (epoch ms), or undefined when there is none. */
  next(afterMs: number): number | undefined
}

const macros: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

/** Go's time.ParseDuration for the units a schedule needs (h, m, s, ms); undefined when it does not parse. */
function goDurationMs(s: string): number | undefined {
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(s)) return undefined
  let total = 0
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(m[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[m[2] as 'h']
  return total
}

/** Parse a schedule; throws an Error whose message is what Kubernetes puts after `spec.schedule: Invalid value: "...":`. */
export function parseSchedule(expr: string, timeZone?: string): CronSchedule {
  const spec = expr.trim()
  if (spec.startsWith('@every ')) {
    const ms = goDurationMs(spec.slice(7).trim())
    if (ms === undefined) throw new Error(`failed to parse duration ${spec}: time: invalid duration "${spec.slice(7).trim()}"`)
    // robfig's ConstantDelaySchedule: whole seconds, at least one.
    const every = Math.max(1000, Math.floor(ms / 1000) * 1000)
    return { next: (after) => Math.floor(after / 1000) * 1000 + every }
  }
  let pattern = spec
  if (spec.startsWith('@')) {
    const m = macros[spec]
    if (!m) throw new Error(`unrecognized descriptor: ${spec}`)
    pattern = m
  } else {
    const fields = spec.split(/\s+/).filter(Boolean)
    if (fields.length !== 5) throw new Error(`expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]`)
  }
  let cron: Cron
  try {
    cron = new Cron(pattern, { paused: true, ...(timeZone ? { timezone: timeZone } : {}) })
  } catch (e) {
    throw new Error((e as Error).message.replace(/^CronPattern: /, ''))
  }
  return {
    next(after) {
      const d = cron.nextRun(new Date(after))
      return d ? d.getTime() : undefined
    },
  }
}

/** Why `tz` is not a usable time zone (Kubernetes' messages), or undefined when it is one. */
export function timeZoneError(tz: string): string | undefined {
  if (tz === '') return 'timeZone must be nil or non-empty string'
  if (tz.toLowerCase() === 'local') return 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones'
  if (!/^[A-Za-z.\-_0-9+/]+$/.test(tz)) return 'unknown time zone ' + tz
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return undefined
  } catch {
    return `unknown time zone ${tz}`
  }
}

/** RFC 3339 with the zone's offset (Go's time.RFC3339 in that location): 2026-12-04T18:00:00+01:00. */
export function rfc3339InZone(ms: number, timeZone?: string): string {
  const tz = timeZone || 'UTC'
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  )
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
  const offsetMin = Math.round((local - Math.floor(ms / 1000) * 1000) / 60_000)
  const date = `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`
  if (offsetMin === 0) return `${date}Z`
  const sign = offsetMin < 0 ? '-' : '+'
  const abs = Math.abs(offsetMin)
  return `${date}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
}
