// The scheduler's error catalogue (SKIFF_ERR_SCHEDULER_<WHAT>). Options are
// checked once, when the Scheduler is constructed.

export const schedulerErrorCodes = {
  UnknownProfile: 'SKIFF_ERR_SCHEDULER_UNKNOWN_PROFILE',
  InvalidOption: 'SKIFF_ERR_SCHEDULER_INVALID_OPTION',
} as const

export class SchedulerError extends Error {
  readonly code: string
  constructor(what: keyof typeof schedulerErrorCodes, message: string) {
    super(`${schedulerErrorCodes[what]}: ${message}`)
    this.name = 'SchedulerError'
    this.code = schedulerErrorCodes[what]
  }
}
