// Decoding of the protobuf request bodies that typed clients send.
//
// `kubectl create deployment|service|namespace|configmap|secret|ingress|
// serviceaccount|role|...` POST their object as
// `application/vnd.kubernetes.protobuf`, and kubectl does not retry with JSON
// when the server refuses it (reference/kubectl-surface.md §7). So the
// apiserver decodes every kind the schema describes (schema/) into the JSON
// shape the client would have sent, and everything after this point sees
// only JSON.
//
// Wire format: the 4-byte magic "k8s\0", then a runtime.Unknown
//   { 1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType }
// whose `raw` is the object, encoded per k8s.io/api generated.proto; the
// field numbers and types come from the schema.
//
// gogo/protobuf (proto2) writes every non-pointer Go field, zero or not, so a
// zero scalar or an empty message means "unset", like JSON omitempty. A Go
// pointer field (`*int32` in the schema: replicas, maxSurge, immutable, ...)
// is only written when set, so its zero is kept, and so is the zero of a
// required field (Go marshals those without omitempty). Unknown field numbers are
// skipped, as the apiserver's protobuf decoder skips them.

import protobuf from 'protobufjs/minimal.js'
import { ApiError } from './errors.ts'
import { kindSchema, messages, type Field, type Message } from './schema/index.ts'
import type { KubeObject } from './types.ts'

type Reader = protobuf.Reader
type Json = Record<string, unknown>

const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf'
const MAGIC = Buffer.from('k8s\0', 'latin1')

// ---- wire decoding ------------------------------------------------------

/** A decoding failure, with the field path where it happened. */
class WireError extends Error {}

/** The wire type one value of the field is written with (lists of numbers may also come packed, as 2). */
function wireTypeOf(f: Field): number {
  if (f.map) return 2
  const v = f.value
  if (v.kind !== 'scalar') return 2
  switch (v.scalar) {
    case 'string': case 'bytes': return 2
    case 'double': return 1
    default: return 0
  }
}

function toNumber(v: number | protobuf.Long): number {
  return typeof v === 'number' ? v : v.high * 2 ** 32 + (v.low >>> 0)
}

function base64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}

/** Iterates the fields of a message: calls `each(number, wireType)`, which must consume the value. */
function forFields(bytes: Uint8Array, path: string, each: (r: Reader, n: number, wire: number) => void): void {
  const r = protobuf.Reader.create(bytes)
  while (r.pos < r.len) {
    const tag = r.uint32()
    const n = tag >>> 3
    if (n === 0) throw new WireError(`${path}: field number 0 at offset ${r.pos}`)
    each(r, n, tag & 7)
  }
}

/** metav1.Time / MicroTime {1 seconds, 2 nanos} as RFC 3339; undefined for the zero time (JSON null). */
function decodeTime(bytes: Uint8Array, path: string, micro: boolean): string | undefined {
  let seconds = 0
  let nanos = 0
  forFields(bytes, path, (r, n, wire) => {
    if (n === 1 && wire === 0) seconds = toNumber(r.int64())
    else if (n === 2 && wire === 0) nanos = r.int32()
    else r.skipType(wire)
  })
  if (seconds === 0 && nanos === 0) return undefined
  const iso = new Date(seconds * 1000).toISOString().slice(0, 19)
  return micro ? `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z` : `${iso}Z`
}

/** A message of one field of raw bytes holding JSON (RawExtension, FieldsV1). */
function decodeRawJson(bytes: Uint8Array, path: string): unknown {
  let raw: Uint8Array | undefined
  forFields(bytes, path, (r, n, wire) => {
    if (n === 1 && wire === 2) raw = r.bytes()
    else r.skipType(wire)
  })
  if (!raw || raw.length === 0) return undefined
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8'))
  } catch {
    throw new WireError(`${path}: embedded object is not JSON`)
  }
}

function decodeSpecial(r: Reader, special: string, path: string): unknown {
  const bytes = r.bytes()
  switch (special) {
    case 'Quantity': {
      let q = ''
      forFields(bytes, path, (r, n, wire) => { if (n === 1 && wire === 2) q = r.string(); else r.skipType(wire) })
      return q
    }
    case 'IntOrString': {
      let type = 0
      let intVal = 0
      let strVal = ''
      forFields(bytes, path, (r, n, wire) => {
        if (n === 1 && wire === 0) type = toNumber(r.int64())
        else if (n === 2 && wire === 0) intVal = r.int32()
        else if (n === 3 && wire === 2) strVal = r.string()
        else r.skipType(wire)
      })
      return type === 1 ? strVal : intVal
    }
    case 'Time': return decodeTime(bytes, path, false)
    case 'MicroTime': return decodeTime(bytes, path, true)
    case 'RawExtension': case 'FieldsV1': return decodeRawJson(bytes, path)
    case 'ExtraValue': {
      const items: string[] = []
      forFields(bytes, path, (r, n, wire) => { if (n === 1 && wire === 2) items.push(r.string()); else r.skipType(wire) })
      return items
    }
    default: throw new WireError(`${path}: no decoder for ${special}`)
  }
}

/** Reads one value of the field; bytes become base64, as in Kubernetes JSON. */
function readValue(r: Reader, f: Field, path: string): unknown {
  const v = f.value
  if (v.kind === 'special') return decodeSpecial(r, v.special, path)
  if (v.kind === 'message') return decodeMessage(r.bytes(), messages.get(v.name)!, path)
  switch (v.scalar) {
    case 'string': return r.string()
    case 'int32': return r.int32()
    case 'int64': return toNumber(r.int64())
    case 'bool': return r.bool()
    case 'bytes': return base64(r.bytes())
    case 'double': return r.double()
  }
}

function isZero(v: unknown): boolean {
  if (v === undefined || v === '' || v === 0 || v === false) return true
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0
}

function zeroOf(f: Field): unknown {
  const v = f.value
  if (v.kind === 'message') return {}
  if (v.kind === 'special') return v.special === 'IntOrString' ? 0 : v.special === 'Quantity' ? '' : undefined
  return v.scalar === 'bool' ? false : v.scalar === 'string' || v.scalar === 'bytes' ? '' : 0
}

/** A map entry {1 key, 2 value}; a missing value is the type's zero value. */
function readMapEntry(bytes: Uint8Array, f: Field, path: string): [string, unknown] {
  let key = ''
  let value = zeroOf(f)
  forFields(bytes, path, (r, n, wire) => {
    if (n === 1 && wire === 2) key = r.string()
    else if (n === 2 && wire === wireTypeOf({ ...f, map: false })) value = readValue(r, f, `${path}[${JSON.stringify(key)}]`)
    else r.skipType(wire)
  })
  return [key, value]
}

/** A packed run of numbers (proto3 style); gogo proto2 writes them unpacked, but both are valid. */
function readPacked(r: Reader, f: Field, out: unknown[], path: string): void {
  const end = r.uint32() + r.pos
  while (r.pos < end) out.push(readValue(r, f, path))
}

function readField(r: Reader, f: Field, wire: number, out: Json, path: string): void {
  if (f.map) {
    const [key, value] = readMapEntry(r.bytes(), f, path)
    ;((out[f.name] ??= {}) as Json)[key] = value
    return
  }
  if (f.repeated) {
    const list = (out[f.name] ??= []) as unknown[]
    if (wire === 2 && wireTypeOf(f) !== 2) readPacked(r, f, list, path)
    else list.push(readValue(r, f, `${path}[${list.length}]`))
    return
  }
  const value = readValue(r, f, path)
  // Go's JSON writes required fields (no omitempty) even when zero: restartCount 0, ready false.
  if (value === undefined || (!f.pointer && !f.options.required && isZero(value))) return
  if (f.options.inline) Object.assign(out, value)
  else out[f.name] = value
}

function decodeMessage(bytes: Uint8Array, message: Message, path: string): Json {
  const out: Json = {}
  forFields(bytes, path, (r, n, wire) => {
    const f = message.byNumber.get(n)
    if (!f) return r.skipType(wire)
    const at = `${path}.${f.name}`
    const packed = f.repeated && wire === 2 && wireTypeOf(f) !== 2
    if (wire !== wireTypeOf(f) && !packed) throw new WireError(`${at}: wire type ${wire}, expected ${wireTypeOf(f)}`)
    readField(r, f, wire, out, at)
  })
  return out
}

// ---- the envelope -------------------------------------------------------

interface Unknown {
  apiVersion: string
  kind: string
  raw: Uint8Array
  contentEncoding: string
  contentType: string
}

function readUnknown(body: Uint8Array): Unknown {
  const r = protobuf.Reader.create(body)
  const u: Unknown = { apiVersion: '', kind: '', raw: new Uint8Array(0), contentEncoding: '', contentType: '' }
  while (r.pos < r.len) {
    const tag = r.uint32()
    if (tag === (1 << 3 | 2)) {
      forFields(r.bytes(), 'typeMeta', (r, n, wire) => {
        if (n === 1 && wire === 2) u.apiVersion = r.string()
        else if (n === 2 && wire === 2) u.kind = r.string()
        else r.skipType(wire)
      })
    } else if (tag === (2 << 3 | 2)) u.raw = r.bytes()
    else if (tag === (3 << 3 | 2)) u.contentEncoding = r.string()
    else if (tag === (4 << 3 | 2)) u.contentType = r.string()
    else r.skipType(tag & 7)
  }
  return u
}

/** True for `application/vnd.kubernetes.protobuf`, with or without parameters. */
export function isProtobufContentType(ct: string | undefined | null): boolean {
  if (!ct) return false
  return ct.split(';')[0].trim().toLowerCase() === PROTOBUF_MEDIA_TYPE
}

function checkEnvelope(u: Unknown): Message {
  const known = kindSchema(u.apiVersion, u.kind)
  if (!known) {
    throw new ApiError('UnsupportedMediaType',
      `protobuf bodies are decoded only for kinds with a schema in Skiff, not ${u.apiVersion}/${u.kind || '(no kind)'}; send JSON instead`)
  }
  if (u.contentEncoding !== '') {
    throw new ApiError('UnsupportedMediaType', `protobuf body has unsupported contentEncoding "${u.contentEncoding}"`)
  }
  if (u.contentType !== '' && !isProtobufContentType(u.contentType)) {
    throw new ApiError('UnsupportedMediaType', `protobuf envelope holds unsupported contentType "${u.contentType}"`)
  }
  return known.message
}

/**
 * Decodes a `k8s\0` + runtime.Unknown body into the JSON object kubectl would
 * have sent. A malformed body is an ApiError BadRequest (400); a well-formed
 * envelope holding a kind or encoding Skiff does not decode is
 * UnsupportedMediaType (415). Both are Errors with a message fit for users.
 */
export function decodeProtobufObject(body: Buffer): KubeObject {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ApiError('BadRequest', 'invalid protobuf body: it does not start with the "k8s\\0" magic prefix')
  }
  let kind = ''
  try {
    const u = readUnknown(body.subarray(MAGIC.length))
    kind = u.kind
    const { metadata = {}, ...rest } = decodeMessage(u.raw, checkEnvelope(u), u.kind)
    return { apiVersion: u.apiVersion, kind: u.kind, metadata: metadata as KubeObject['metadata'], ...rest }
  } catch (e) {
    if (e instanceof ApiError) throw e
    const what = kind ? `${kind} object` : 'runtime.Unknown envelope'
    throw new ApiError('BadRequest', `invalid protobuf body: cannot decode the ${what}: ${(e as Error).message}`)
  }
}
