// The shape of Skiff's coded errors outside the API layer: a reason (a key of
// the package's catalogue) and its stable code `SKIFF_ERR_<AREA>_<WHAT>`, for
// logs, metrics and callers that branch on it. Each package keeps its own
// catalogue and subclass (images, pod network, LoadBalancer speaker, ...).

export class CodedError<R extends string = string> extends Error {
  readonly reason: R
  readonly code: string

  /** `prefix`: start the message with the code (what a log line or the CLI shows first). */
  constructor(o: { name: string; codes: Readonly<Record<R, string>>; reason: R; message: string; prefix?: boolean; cause?: unknown }) {
    super(o.prefix ? `${o.codes[o.reason]}: ${o.message}` : o.message, o.cause === undefined ? undefined : { cause: o.cause })
    this.name = o.name
    this.reason = o.reason
    this.code = o.codes[o.reason]
  }
}
