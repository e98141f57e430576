// Structured JSON logs for every long-running component (pino). Components
// take a logger in their options and make a child with `component`, so one
// stream can be filtered per part. Tokens, passwords and Secret data are never
// passed to a logger: redact covers the usual header names as a second guard.

import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(opts: { level?: string; component?: string; destination?: number | string } = {}): Logger {
  const level = opts.level ?? process.env.SKIFF_LOG_LEVEL ?? 'info'
  const dest = opts.destination === undefined ? 1 : opts.destination
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: ['authorization', 'req.headers.authorization', 'password', 'token'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest, sync: false }),
  )
  return opts.component ? logger.child({ component: opts.component }) : logger
}

/** A logger that drops everything: the default for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
