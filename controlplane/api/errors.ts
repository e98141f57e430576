// One catalogue of API errors. Every error the apiserver returns is an
// ApiError, rendered as a Kubernetes `Status` with the matching HTTP code, and
// carries a stable Skiff code (SKIFF_ERR_<AREA>_<WHAT>) for logs and the CLI.

import type { Status, StatusCause } from './types.ts'

export const errorCodes = {
  NotFound: { http: 404, code: 'SKIFF_ERR_API_NOT_FOUND' },
  AlreadyExists: { http: 409, code: 'SKIFF_ERR_API_ALREADY_EXISTS' },
  Conflict: { http: 409, code: 'SKIFF_ERR_API_CONFLICT' },
  Invalid: { http: 422, code: 'SKIFF_ERR_API_INVALID' },
  BadRequest: { http: 400, code: 'SKIFF_ERR_API_BAD_REQUEST' },
  Unauthorized: { http: 401, code: 'SKIFF_ERR_API_UNAUTHORIZED' },
  Forbidden: { http: 403, code: 'SKIFF_ERR_API_FORBIDDEN' },
  MethodNotAllowed: { http: 405, code: 'SKIFF_ERR_API_METHOD_NOT_ALLOWED' },
  Gone: { http: 410, code: 'SKIFF_ERR_API_GONE' },
  Expired: { http: 410, code: 'SKIFF_ERR_API_EXPIRED' },
  RequestEntityTooLarge: { http: 413, code: 'SKIFF_ERR_API_TOO_LARGE' },
  UnsupportedMediaType: { http: 415, code: 'SKIFF_ERR_API_UNSUPPORTED_MEDIA_TYPE' },
  NotAcceptable: { http: 406, code: 'SKIFF_ERR_API_NOT_ACCEPTABLE' },
  Timeout: { http: 504, code: 'SKIFF_ERR_API_TIMEOUT' },
  TooManyRequests: { http: 429, code: 'SKIFF_ERR_API_TOO_MANY_REQUESTS' },
  ServiceUnavailable: { http: 503, code: 'SKIFF_ERR_API_UNAVAILABLE' },
  InternalError: { http: 500, code: 'SKIFF_ERR_API_INTERNAL' },
  NotImplemented: { http: 501, code: 'SKIFF_ERR_API_NOT_IMPLEMENTED' },
} as const

export type Reason = keyof typeof errorCodes

export interface ErrorDetails {
  name?: string
  group?: string
  kind?: string
  causes?: StatusCause[]
  retryAfterSeconds?: number
}

export class ApiError extends Error {
  readonly reason: Reason
  readonly status: number
  readonly code: string
  readonly details?: ErrorDetails

  constructor(reason: Reason, message: string, details?: ErrorDetails) {
    super(message)
    this.name = 'ApiError'
    this.reason = reason
    this.status = errorCodes[reason].http
    this.code = errorCodes[reason].code
    this.details = details
  }

  toStatus(): Status {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.status,
    }
  }
}

/** `pods "web" not found` / `deployments.apps "web" not found` */
export function notFound(qualified: string, name: string, kind?: string): ApiError {
  return new ApiError('NotFound', `${qualified} "${name}" not found`, { name, kind: kind ?? qualified })
}

export function alreadyExists(qualified: string, name: string): ApiError {
  return new ApiError('AlreadyExists', `${qualified} "${name}" already exists`, { name, kind: qualified })
}

export function conflict(qualified: string, name: string): ApiError {
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${qualified} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: qualified },
  )
}

/** 422 with one cause per field: `The Service "web" is invalid: spec.ports[0].port: Invalid value: 0: ...` */
export function invalid(kind: string, name: string, causes: StatusCause[]): ApiError {
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(', ')
  return new ApiError('Invalid', `${kind} "${name}" is invalid: ${text}`, { name, kind, causes })
}

export function isApiError(e: unknown, reason?: Reason): e is ApiError {
  return e instanceof ApiError && (reason === undefined || e.reason === reason)
}
