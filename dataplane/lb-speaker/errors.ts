// Errors of the LoadBalancer speaker, each with a stable code
// (SKIFF_ERR_LBSPEAKER_<WHAT>) for logs and callers.

import { CodedError } from '../../lib/errors.ts'

export const speakerErrorCodes = {
  Options: 'SKIFF_ERR_LBSPEAKER_OPTIONS',
  Interface: 'SKIFF_ERR_LBSPEAKER_INTERFACE',
  Command: 'SKIFF_ERR_LBSPEAKER_COMMAND',
  State: 'SKIFF_ERR_LBSPEAKER_STATE',
} as const

export type SpeakerErrorReason = keyof typeof speakerErrorCodes

export class SpeakerError extends CodedError<SpeakerErrorReason> {
  constructor(reason: SpeakerErrorReason, message: string, options?: { cause?: unknown }) {
    super({ name: 'SpeakerError', codes: speakerErrorCodes, reason, message, prefix: true, cause: options?.cause })
  }
}
