// The fieldValidation query parameter of create, update and patch, applied
// with the schema as the apiserver applies it to built-in kinds:
//   Ignore  unknown fields dropped, duplicate keys keep the last value, silently;
//   Warn    the same, with one `Warning: 299 - "unknown field \"spec.foo\""` each
//           (the default when the parameter is absent, as in Kubernetes 1.27+);
//   Strict  400 BadRequest naming every unknown and duplicate field.
// Protobuf bodies are not checked (unknown field numbers are skipped while
// decoding, as the apiserver does). Kinds without a schema keep every field.

import type { ServerResponse } from 'node:http'
import { ApiError } from '../api/errors.ts'
import { groupVersion, type ResourceInfo } from '../api/resources.ts'
import { duplicateFields, pruneUnknownFields } from '../api/schema/fields.ts'
import { kindSchema } from '../api/schema/index.ts'

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict'
const directives: readonly FieldValidation[] = ['Ignore', 'Warn', 'Strict']

export type WriteVerb = 'create' | 'update' | 'patch'
const optionsKind: Record<WriteVerb, string> = { create: 'CreateOptions', update: 'UpdateOptions', patch: 'PatchOptions' }

/** The directive of a request; an unknown value is a 422 about the options, as in Kubernetes. */
export function fieldValidationOf(query: URLSearchParams, verb: WriteVerb, fallback: FieldValidation = 'Warn'): FieldValidation {
  const v = query.get('fieldValidation')
  if (v === null || v === '') return fallback
  if ((directives as readonly string[]).includes(v)) return v as FieldValidation
  const message = `fieldValidation: Unsupported value: ${JSON.stringify(v)}: supported values: "Ignore", "Warn", "Strict"`
  throw new ApiError('Invalid', `${optionsKind[verb]}.meta.k8s.io "" is invalid: ${message}`, {
    group: 'meta.k8s.io', kind: optionsKind[verb], name: '',
    causes: [{ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(v)}: supported values: "Ignore", "Warn", "Strict"`, field: 'fieldValidation' }],
  })
}

/** A Warning header value (RFC 7234 warn-code 299, the text quoted). */
function warning(text: string): string {
  return `299 - ${JSON.stringify(text)}`
}

/**
 * Drops the unknown fields of `obj` (in place) and applies the directive to
 * them and to the duplicate keys of `rawJson` (the body as sent, when it was
 * JSON). Throws BadRequest under Strict; adds Warning headers under Warn.
 */
export function enforceFieldValidation(opts: {
  info: ResourceInfo
  obj: unknown
  rawJson?: string
  directive: FieldValidation
  verb: WriteVerb
  res: ServerResponse
}): void {
  const { info, obj, directive } = opts
  const schema = kindSchema(groupVersion(info), info.kind)
  if (!schema || typeof obj !== 'object' || obj === null || Array.isArray(obj)) return
  const unknown = pruneUnknownFields(schema.message, obj as Record<string, unknown>)
  if (directive === 'Ignore') return
  const dups = opts.rawJson ? duplicateFields(opts.rawJson) : []
  const problems = [...dups.map((p) => `duplicate field "${p}"`), ...unknown.map((p) => `unknown field "${p}"`)]
  if (problems.length === 0) return
  if (directive === 'Strict') {
    const what = `strict decoding error: ${problems.join(', ')}`
    const message = opts.verb === 'patch' ? what : `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: ${what}`
    throw new ApiError('BadRequest', message)
  }
  for (const p of problems) opts.res.appendHeader('Warning', warning(p))
}
