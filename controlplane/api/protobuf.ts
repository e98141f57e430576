// Decoding of the protobuf request bodies that kubectl's typed clients send.
//
// `kubectl create deployment|service|namespace|configmap|secret` POST their
// object as `application/vnd.kubernetes.protobuf`, and kubectl does not retry
// with JSON when the server refuses it (reference/kubectl-surface.md §7). So
// the apiserver decodes these few kinds into the same JSON shape kubectl would
// have sent, and everything after that point sees only JSON.
//
// Wire format: the 4-byte magic "k8s\0", then a runtime.Unknown
//   { 1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType }
// whose `raw` is the object, encoded per k8s.io/api generated.proto. The
// field tables below follow those files (core/v1, apps/v1, meta/v1, intstr,
// resource) and cover every field the create commands can set, plus the
// common pod-template fields a hand-built client might send.
//
// gogo/protobuf (proto2) writes every non-pointer Go field, zero or not, so a
// zero scalar or an empty message means "unset", like JSON omitempty. A Go
// pointer field (`pointer: true`: replicas, maxSurge, immutable, ...) is only
// written when set, so its zero is kept. Server-owned fields (status,
// timestamps, managedFields) are skipped, as are unknown field numbers.

import protobuf from 'protobufjs/minimal.js'
import { ApiError } from './errors.ts'
import type { KubeObject } from './types.ts'

type Reader = protobuf.Reader
type Scalar = 'string' | 'int32' | 'int64' | 'bool' | 'bytes'
type ValueType = Scalar | 'intOrString' | 'quantity' | Message

interface Field {
  name: string
  type: ValueType
  /** repeated field: every element is kept, zero or not */
  list?: boolean
  /** map<string, type>, on the wire a repeated {1 key, 2 value} */
  map?: boolean
  /** Go pointer field: present on the wire means set, even when zero */
  pointer?: boolean
  /** embedded Go struct whose fields JSON puts in the parent object */
  inline?: boolean
}

/** A message is its fields by field number. */
interface Message {
  [fieldNumber: number]: Field
}

type Json = Record<string, unknown>

const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf'
const MAGIC = Buffer.from('k8s\0', 'latin1')

// ---- field table helpers -------------------------------------------------

const opt = (pointer: boolean) => (pointer ? { pointer } : {})
const str = (name: string): Field => ({ name, type: 'string' })
const int = (name: string, pointer = false): Field => ({ name, type: 'int32', ...opt(pointer) })
const int64 = (name: string, pointer = false): Field => ({ name, type: 'int64', ...opt(pointer) })
const bool = (name: string, pointer = false): Field => ({ name, type: 'bool', ...opt(pointer) })
const strs = (name: string): Field => ({ name, type: 'string', list: true })
const map = (name: string, type: ValueType): Field => ({ name, type, map: true })
const msg = (name: string, type: ValueType, extra: Partial<Field> = {}): Field => ({ name, type, ...extra })
const list = (name: string, type: Message): Field => ({ name, type, list: true })

// ---- k8s.io/apimachinery meta/v1 ----------------------------------------

const ownerReference: Message = {
  1: str('kind'), 3: str('name'), 4: str('uid'), 5: str('apiVersion'),
  6: bool('controller', true), 7: bool('blockOwnerDeletion', true),
}

// Server-owned fields (selfLink 4, timestamps 8/9, deletionGracePeriodSeconds
// 10, managedFields 17) are left out on purpose: the server sets them.
const objectMeta: Message = {
  1: str('name'), 2: str('generateName'), 3: str('namespace'), 5: str('uid'),
  6: str('resourceVersion'), 7: int64('generation'),
  11: map('labels', 'string'), 12: map('annotations', 'string'),
  13: list('ownerReferences', ownerReference), 14: strs('finalizers'),
}

const labelSelector: Message = {
  1: map('matchLabels', 'string'),
  2: list('matchExpressions', { 1: str('key'), 2: str('operator'), 3: strs('values') }),
}

// ---- k8s.io/api core/v1: pod template -----------------------------------

const localObjectReference: Message = { 1: str('name') }
const inlineName = msg('localObjectReference', localObjectReference, { inline: true })
const keySelector: Message = { 1: inlineName, 2: str('key'), 3: bool('optional', true) }
const envSource: Message = { 1: inlineName, 2: bool('optional', true) }

const envVarSource: Message = {
  1: msg('fieldRef', { 1: str('apiVersion'), 2: str('fieldPath') }),
  2: msg('resourceFieldRef', { 1: str('containerName'), 2: str('resource'), 3: msg('divisor', 'quantity') }),
  3: msg('configMapKeyRef', keySelector),
  4: msg('secretKeyRef', keySelector),
}

const container: Message = {
  1: str('name'), 2: str('image'), 3: strs('command'), 4: strs('args'), 5: str('workingDir'),
  6: list('ports', { 1: str('name'), 2: int('hostPort'), 3: int('containerPort'), 4: str('protocol'), 5: str('hostIP') }),
  7: list('env', { 1: str('name'), 2: str('value'), 3: msg('valueFrom', envVarSource) }),
  8: msg('resources', { 1: map('limits', 'quantity'), 2: map('requests', 'quantity') }),
  9: list('volumeMounts', {
    1: str('name'), 2: bool('readOnly'), 3: str('mountPath'), 4: str('subPath'),
    5: str('mountPropagation'), 6: str('subPathExpr'),
  }),
  13: str('terminationMessagePath'), 14: str('imagePullPolicy'),
  16: bool('stdin'), 17: bool('stdinOnce'), 18: bool('tty'),
  19: list('envFrom', { 1: str('prefix'), 2: msg('configMapRef', envSource), 3: msg('secretRef', envSource) }),
  20: str('terminationMessagePolicy'), 24: str('restartPolicy'),
}

const podSpec: Message = {
  2: list('containers', container), 3: str('restartPolicy'),
  4: int64('terminationGracePeriodSeconds', true), 5: int64('activeDeadlineSeconds', true),
  6: str('dnsPolicy'), 7: map('nodeSelector', 'string'), 8: str('serviceAccountName'),
  9: str('serviceAccount'), 10: str('nodeName'), 11: bool('hostNetwork'),
  15: list('imagePullSecrets', localObjectReference), 16: str('hostname'), 17: str('subdomain'),
  19: str('schedulerName'), 20: list('initContainers', container),
  21: bool('automountServiceAccountToken', true), 24: str('priorityClassName'),
  30: bool('enableServiceLinks', true),
}

const podTemplateSpec: Message = { 1: msg('metadata', objectMeta), 2: msg('spec', podSpec) }

// ---- apps/v1 Deployment -------------------------------------------------

const deploymentStrategy: Message = {
  1: str('type'),
  2: msg('rollingUpdate', {
    1: msg('maxUnavailable', 'intOrString', { pointer: true }),
    2: msg('maxSurge', 'intOrString', { pointer: true }),
  }),
}

const deployment: Message = {
  1: msg('metadata', objectMeta),
  2: msg('spec', {
    1: int('replicas', true), 2: msg('selector', labelSelector), 3: msg('template', podTemplateSpec),
    4: msg('strategy', deploymentStrategy), 5: int('minReadySeconds'),
    6: int('revisionHistoryLimit', true), 7: bool('paused'), 9: int('progressDeadlineSeconds', true),
  }),
}

// ---- core/v1 Service, Namespace, ConfigMap, Secret ------------------------

const servicePort: Message = {
  1: str('name'), 2: str('protocol'), 3: int('port'), 4: msg('targetPort', 'intOrString'),
  5: int('nodePort'), 6: str('appProtocol'),
}

const service: Message = {
  1: msg('metadata', objectMeta),
  2: msg('spec', {
    1: list('ports', servicePort), 2: map('selector', 'string'), 3: str('clusterIP'), 4: str('type'),
    5: strs('externalIPs'), 7: str('sessionAffinity'), 8: str('loadBalancerIP'),
    9: strs('loadBalancerSourceRanges'), 10: str('externalName'), 11: str('externalTrafficPolicy'),
    12: int('healthCheckNodePort'), 13: bool('publishNotReadyAddresses'),
    14: msg('sessionAffinityConfig', { 1: msg('clientIP', { 1: int('timeoutSeconds', true) }) }),
    17: str('ipFamilyPolicy'), 18: strs('clusterIPs'), 19: strs('ipFamilies'),
    20: bool('allocateLoadBalancerNodePorts', true), 21: str('loadBalancerClass'),
    22: str('internalTrafficPolicy'), 23: str('trafficDistribution'),
  }),
}

const namespace: Message = { 1: msg('metadata', objectMeta), 2: msg('spec', { 1: strs('finalizers') }) }

const configMap: Message = {
  1: msg('metadata', objectMeta), 2: map('data', 'string'), 3: map('binaryData', 'bytes'),
  4: bool('immutable', true),
}

const secret: Message = {
  1: msg('metadata', objectMeta), 2: map('data', 'bytes'), 3: str('type'),
  4: map('stringData', 'string'), 5: bool('immutable', true),
}

const kinds: Record<string, { apiVersion: string; message: Message }> = {
  Deployment: { apiVersion: 'apps/v1', message: deployment },
  Service: { apiVersion: 'v1', message: service },
  Namespace: { apiVersion: 'v1', message: namespace },
  ConfigMap: { apiVersion: 'v1', message: configMap },
  Secret: { apiVersion: 'v1', message: secret },
}

// ---- wire decoding ------------------------------------------------------

/** A decoding failure, with the field path where it happened. */
class WireError extends Error {}

function wireTypeOf(f: Field): number {
  if (f.map || typeof f.type === 'object') return 2
  return f.type === 'string' || f.type === 'bytes' || f.type === 'intOrString' || f.type === 'quantity' ? 2 : 0
}

function toNumber(v: number | protobuf.Long): number {
  return typeof v === 'number' ? v : v.high * 2 ** 32 + (v.low >>> 0)
}

function base64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}

/** Reads one value of `type`; bytes become base64, as in Kubernetes JSON. */
function readValue(r: Reader, type: ValueType, path: string): unknown {
  switch (type) {
    case 'string': return r.string()
    case 'int32': return r.int32()
    case 'int64': return toNumber(r.int64())
    case 'bool': return r.bool()
    case 'bytes': return base64(r.bytes())
    case 'quantity': return (decodeMessage(r.bytes(), { 1: str('string') }, path).string as string | undefined) ?? ''
    case 'intOrString': {
      const v = decodeMessage(r.bytes(), { 1: int64('type'), 2: int('intVal'), 3: str('strVal') }, path)
      return v.type === 1 ? (v.strVal ?? '') : (v.intVal ?? 0)
    }
    default: return decodeMessage(r.bytes(), type, path)
  }
}

function isZero(v: unknown): boolean {
  if (v === '' || v === 0 || v === false) return true
  return typeof v === 'object' && v !== null && Object.keys(v).length === 0
}

/** A map entry {1 key, 2 value}; a missing value is the type's zero value. */
function readMapEntry(bytes: Uint8Array, f: Field, path: string): [string, unknown] {
  const r = protobuf.Reader.create(bytes)
  let key = ''
  let value: unknown = f.type === 'int32' || f.type === 'int64' ? 0 : f.type === 'bool' ? false : ''
  while (r.pos < r.len) {
    const tag = r.uint32()
    if (tag === (1 << 3 | 2)) key = r.string()
    else if (tag === (2 << 3 | wireTypeOf({ name: '', type: f.type }))) value = readValue(r, f.type, `${path}[value]`)
    else r.skipType(tag & 7)
  }
  return [key, value]
}

function readField(r: Reader, f: Field, out: Json, path: string): void {
  if (f.map) {
    const [key, value] = readMapEntry(r.bytes(), f, path)
    const m = (out[f.name] ??= {}) as Json
    m[key] = value
    return
  }
  const value = readValue(r, f.type, path)
  if (f.list) {
    ;((out[f.name] ??= []) as unknown[]).push(value)
  } else if (f.pointer || !isZero(value)) {
    if (f.inline) Object.assign(out, value)
    else out[f.name] = value
  }
}

function decodeMessage(bytes: Uint8Array, message: Message, path: string): Json {
  const r = protobuf.Reader.create(bytes)
  const out: Json = {}
  while (r.pos < r.len) {
    const tag = r.uint32()
    const fieldNumber = tag >>> 3
    const wireType = tag & 7
    if (fieldNumber === 0) throw new WireError(`${path}: field number 0 at offset ${r.pos}`)
    const f = message[fieldNumber]
    if (!f) {
      r.skipType(wireType)
      continue
    }
    const at = `${path}.${f.name}`
    if (wireType !== wireTypeOf(f)) throw new WireError(`${at}: wire type ${wireType}, expected ${wireTypeOf(f)}`)
    readField(r, f, out, at)
  }
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
      const typeMeta = decodeMessage(r.bytes(), { 1: str('apiVersion'), 2: str('kind') }, 'typeMeta')
      u.apiVersion = (typeMeta.apiVersion as string | undefined) ?? ''
      u.kind = (typeMeta.kind as string | undefined) ?? ''
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

/** The kinds decodeProtobufObject understands, as `apiVersion/kind`. */
export const protobufKinds: readonly string[] = Object.entries(kinds).map(([kind, k]) => `${k.apiVersion}/${kind}`)

function checkEnvelope(u: Unknown): Message {
  const known = kinds[u.kind]
  if (!known || known.apiVersion !== u.apiVersion) {
    throw new ApiError('UnsupportedMediaType',
      `protobuf bodies are supported only for ${protobufKinds.join(', ')}, not ${u.apiVersion}/${u.kind || '(no kind)'}; send JSON instead`)
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
