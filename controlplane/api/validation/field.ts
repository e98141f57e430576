// Field errors in apimachinery's words. kubectl prints `field: message` for
// every cause of a 422, so the message text follows
// k8s.io/apimachinery/pkg/util/validation/field (ErrorBody) exactly: users
// can search for it, and tests written against Kubernetes keep passing.

import type { StatusCause } from '../types.ts'

export type Causes = StatusCause[]

/** A bad value already rendered the way Go's %#v / Stringer would print it. */
export class Raw {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
}

export function raw(text: string): Raw {
  return new Raw(text)
}

/**
 * A JSON value as text without calling its own methods: `String(v)` throws
 * on an object whose `toString` key holds a string (`{"toString": ""}` is
 * valid JSON), so user values are turned into text only through this.
 */
export function text(v: unknown): string {
  if (typeof v === 'string') return v
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') return String(v)
  return JSON.stringify(v) ?? ''
}

/** Go's rendering of a bad value: numbers and bools bare, strings quoted. */
export function goValue(v: unknown): string {
  if (v instanceof Raw) return v.text
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return JSON.stringify(v)
}

/** `map[string]string{"a":"b"}`, keys sorted, as %#v prints a Go map. */
export function goStringMap(m: unknown): Raw {
  if (!isRecord(m)) return raw('map[string]string(nil)')
  const body = Object.keys(m)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(text(m[k]))}`)
    .join(', ')
  return raw(`map[string]string{${body}}`)
}

function withDetail(head: string, detail?: string): string {
  return detail ? `${head}: ${detail}` : head
}

export function required(field: string, detail = ''): StatusCause {
  return { reason: 'FieldValueRequired', field, message: withDetail('Required value', detail) }
}

export function invalid(field: string, value: unknown, detail = ''): StatusCause {
  return { reason: 'FieldValueInvalid', field, message: withDetail(`Invalid value: ${goValue(value)}`, detail) }
}

export function notSupported(field: string, value: unknown, supported: readonly string[]): StatusCause {
  const list = supported.map((s) => JSON.stringify(s)).join(', ')
  const detail = supported.length ? `supported values: ${list}` : ''
  return { reason: 'FieldValueNotSupported', field, message: withDetail(`Unsupported value: ${goValue(value)}`, detail) }
}

export function duplicate(field: string, value: unknown): StatusCause {
  return { reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${goValue(value)}` }
}

export function notFound(field: string, value: unknown): StatusCause {
  return { reason: 'FieldValueNotFound', field, message: `Not found: ${goValue(value)}` }
}

export function forbidden(field: string, detail = ''): StatusCause {
  return { reason: 'FieldValueForbidden', field, message: withDetail('Forbidden', detail) }
}

export function tooLong(field: string, max: number): StatusCause {
  return { reason: 'FieldValueTooLong', field, message: `Too long: must have at most ${max} bytes` }
}

export function tooMany(field: string, actual: number, max: number): StatusCause {
  return { reason: 'FieldValueTooMany', field, message: `Too many: ${actual}: must have at most ${max} items` }
}

/** One Invalid cause per message, the pattern of every `for _, msg := range IsX(v)` in Kubernetes. */
export function invalidEach(field: string, value: unknown, msgs: readonly string[]): Causes {
  return msgs.map((m) => invalid(field, value, m))
}

/** `v` must be a string to be checked by `rule`; anything else is one "must be a string" cause. */
export function stringField(path: string, v: unknown, rule: (s: string) => string[]): Causes {
  return typeof v === 'string' ? invalidEach(path, v, rule(v)) : [invalid(path, v, 'must be a string')]
}

const controls = /[\x00-\x1f\x7f-\x9f]/g

/**
 * A cause safe to print: any control character left in its field path or
 * message (a value interpolated raw into a detail) is written as `\uXXXX`,
 * as JSON would, so a 422 never carries one to a terminal or a log.
 */
export function printableCause(c: StatusCause): StatusCause {
  const esc = (s: string): string => s.replace(controls, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const field = c.field === undefined ? undefined : esc(c.field)
  const message = c.message === undefined ? undefined : esc(c.message)
  return field === c.field && message === c.message ? c : { ...c, field, message }
}

/** `path[key]` for a map entry; a key holding a control character is shown JSON-escaped, so no field path carries one raw. */
export function keyPath(path: string, key: string): string {
  return `${path}[${/[\x00-\x1f\x7f-\x9f]/.test(key) ? JSON.stringify(key) : key}]`
}

export function isRecord(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Items of a list field; a missing or mistyped list reads as empty. */
export function items(v: unknown): any[] {
  return Array.isArray(v) ? v : []
}

/** Go's zero-value test for optional scalars: '', 0, null and absent all mean "not set". */
export function isUnset(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0
}

export const immutableMsg = 'field is immutable'

/** Stable JSON with sorted keys, to compare values for immutability checks. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (isRecord(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
  }
  return JSON.stringify(v ?? null)
}

export function nonNegative(field: string, v: unknown): Causes {
  if (v === undefined || v === null) return []
  if (typeof v !== 'number' || !Number.isInteger(v)) return [invalid(field, v, 'must be an integer')]
  return v < 0 ? [invalid(field, v, 'must be greater than or equal to 0')] : []
}
