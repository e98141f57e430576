// The three PATCH body formats the apiserver accepts: RFC 7386 merge patch,
// RFC 6902 JSON patch, and Kubernetes strategic merge patch (what kubectl
// apply/edit/patch send for built-in kinds). All pure: the target and the
// patch are never mutated, and the result never aliases either.
//
// Strategic merge follows apimachinery's strategicpatch package as the
// apiserver runs it (MergeParallelList and IgnoreUnmatchedNulls on). Where the
// Go code reads patch strategies from struct tags, Skiff reads them from the
// schema (schema/fields.ts listMergeRule), by the field's path in the object.

import jsonpatch from 'fast-json-patch'
import type { Operation } from 'fast-json-patch'
import { listMergeRule, type ListMergeRule } from './schema/fields.ts'

/** A patch that cannot be applied. `status` is the HTTP code Kubernetes uses for it. */
export class PatchError extends Error {
  readonly status: 400 | 422
  readonly code: string

  constructor(message: string, status: 400 | 422, code: string) {
    super(message)
    this.name = 'PatchError'
    this.status = status
    this.code = code
  }
}

/** The patch body itself is badly formed (Kubernetes answers 400). */
function malformed(message: string): PatchError {
  return new PatchError(message, 400, 'SKIFF_ERR_PATCH_MALFORMED')
}

/** The patch is well formed but does not apply to this object (422). */
function invalid(message: string, code = 'SKIFF_ERR_PATCH_INVALID'): PatchError {
  return new PatchError(message, 422, code)
}

type JsonMap = Record<string, unknown>

function isMap(v: unknown): v is JsonMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

// ---------------------------------------------------------------------------
// RFC 7386 JSON merge patch

/** RFC 7386: objects merge recursively, `null` deletes a key, anything else (arrays too) replaces. */
export function applyMergePatch<T>(target: T, patch: unknown): T {
  return mergePatchValue(structuredClone(target), patch) as T
}

function mergePatchValue(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch)
  const out = isMap(target) ? target : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatchValue(out[k], v)
  }
  return out
}

// ---------------------------------------------------------------------------
// RFC 6902 JSON patch

// fast-json-patch error names that mean the operation list itself is wrong;
// Kubernetes answers those with 400 and everything else (a failing test, a
// path that does not exist in this object) with 422.
const malformedJsonPatch = new Set([
  'SEQUENCE_NOT_AN_ARRAY',
  'OPERATION_NOT_AN_OBJECT',
  'OPERATION_OP_INVALID',
  'OPERATION_PATH_INVALID',
  'OPERATION_FROM_REQUIRED',
  'OPERATION_VALUE_REQUIRED',
  'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
])

/** RFC 6902 on a copy of `target`. Throws PatchError on a failing `test` or a path that does not resolve. */
export function applyJsonPatch<T>(target: T, ops: unknown): T {
  if (!Array.isArray(ops)) throw malformed('a JSON patch must be a JSON array of operations')
  const doc = structuredClone(target)
  try {
    return jsonpatch.applyPatch(doc, ops as Operation[], true, true).newDocument as T
  } catch (err) {
    throw jsonPatchError(err, doc)
  }
}

function jsonPatchError(err: unknown, doc: unknown): PatchError {
  if (!(err instanceof jsonpatch.JsonPatchError)) {
    return invalid(`json patch failed: ${err instanceof Error ? err.message : String(err)}`)
  }
  // fast-json-patch appends the whole document to its message; keep the first line.
  const summary = err.message.split('\n')[0]
  const op = err.operation as Partial<Operation> | undefined
  const where = `json patch operation ${err.index ?? 0} (${op?.op ?? '?'} ${op?.path ?? '?'})`
  if (malformedJsonPatch.has(err.name)) return malformed(`${where}: ${summary}`)
  if (err.name === 'TEST_OPERATION_FAILED' && op?.op === 'test') {
    const found = valueAt(doc, op.path ?? '')
    return invalid(
      `${where}: test failed: value at ${op.path} is ${found}, expected ${JSON.stringify(op.value)}`,
      'SKIFF_ERR_PATCH_TEST_FAILED',
    )
  }
  return invalid(`${where}: ${summary}`, 'SKIFF_ERR_PATCH_PATH')
}

/** The value a failed `test` saw, for the error message (the document is mutated up to the failing op). */
function valueAt(doc: unknown, pointer: string): string {
  try {
    const v: unknown = jsonpatch.getValueByPointer(doc, pointer)
    return v === undefined ? 'missing' : JSON.stringify(v)
  } catch {
    return 'missing'
  }
}

// ---------------------------------------------------------------------------
// Strategic merge patch: which lists merge, and by what

export type MergeListRule = ListMergeRule

/**
 * The merge rule for the list at `path` (as built by the patcher:
 * `spec.template.spec.containers[].ports`): the schema's patch strategy and
 * merge key (schema/), the same table server-side apply will read. A list
 * without `patchStrategy: merge` (tolerations, Node taints, Ingress rules,
 * ServiceAccount imagePullSecrets, ...) is replaced whole.
 */
export function mergeRuleFor(kind: string, path: string): MergeListRule | undefined {
  return listMergeRule(kind, path)
}

// Map keys may contain dots (label keys); escape them so they never read as path steps.
function childPath(path: string, key: string): string {
  const seg = key.includes('.') ? key.replaceAll('.', '%2E') : key
  return path ? `${path}.${seg}` : seg
}

// ---------------------------------------------------------------------------
// Strategic merge patch: the merge

const DIRECTIVE = '$patch'
const RETAIN_KEYS = '$retainKeys'
const SET_ORDER = '$setElementOrder/'
const DELETE_PRIMITIVES = '$deleteFromPrimitiveList/'
/** What merging a map returns for `$patch: delete`: the caller drops the key. */
const DELETED = Symbol('deleted')

interface Ctx {
  kind: string
}

/** Kubernetes strategic merge patch of `patch` (a JSON object) onto a copy of `target`. */
export function applyStrategicMergePatch<T extends object>(target: T, patch: unknown, kind: string): T {
  if (!isMap(patch)) throw malformed('a strategic merge patch must be a JSON object')
  const base: JsonMap = isMap(target) ? structuredClone(target) : {}
  const out = mergeMap(base, patch, '', { kind })
  return (out === DELETED ? {} : out) as T
}

/** Merge `patch` into `original` in place (original is always the patcher's own copy). */
function mergeMap(original: JsonMap, patch: JsonMap, path: string, ctx: Ctx): JsonMap | typeof DELETED {
  if (DIRECTIVE in patch) return mapDirective(patch, path, ctx)
  applyRetainKeys(original, patch, path)
  deleteFromPrimitiveLists(original, patch)
  const orders: Array<{ field: string; order: unknown; before: unknown[] }> = []
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER)) continue
    const field = k.slice(SET_ORDER.length)
    if (!field || !Array.isArray(v)) throw malformed('invalid patch format of setElementOrder list')
    const before = original[field]
    orders.push({ field, order: v, before: Array.isArray(before) ? before : [] })
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === RETAIN_KEYS || k.startsWith(SET_ORDER) || k.startsWith(DELETE_PRIMITIVES)) continue
    mergeField(original, k, v, childPath(path, k), ctx)
  }
  for (const o of orders) applyElementOrder(original, o.field, o.order as unknown[], o.before, patch[o.field], childPath(path, o.field), ctx)
  return original
}

function mapDirective(patch: JsonMap, path: string, ctx: Ctx): JsonMap | typeof DELETED {
  const directive = patch[DIRECTIVE]
  if (directive === 'delete') return DELETED
  if (directive === 'replace') {
    const rest = { ...patch }
    delete rest[DIRECTIVE]
    return mergeMap({}, rest, path, ctx) // merging onto nothing drops nulls and directives
  }
  throw malformed(`unknown patch type: ${JSON.stringify(directive)} in map at ${path || '<root>'}`)
}

function mergeField(original: JsonMap, key: string, value: unknown, path: string, ctx: Ctx): void {
  if (value === null) {
    delete original[key]
    return
  }
  const current = original[key]
  let next: unknown = value
  if (isMap(value)) next = mergeMap(isMap(current) ? current : {}, value, path, ctx)
  else if (Array.isArray(value)) next = mergeList(current, value, path, ctx)
  if (next === DELETED) delete original[key]
  else original[key] = next
}

/** A value taken from the patch with nothing to merge onto, minus nulls and directives. */
function fromPatch(value: unknown, path: string, ctx: Ctx): unknown {
  if (isMap(value)) return mergeMap({}, value, path, ctx)
  if (Array.isArray(value)) return mergeList(undefined, value, path, ctx)
  return value
}

function mergeList(current: unknown, patchList: unknown[], path: string, ctx: Ctx): unknown[] {
  const rule = mergeRuleFor(ctx.kind, path)
  if (!rule) {
    return patchList.map((item) => fromPatch(item, `${path}[]`, ctx)).filter((item) => item !== DELETED)
  }
  const base = Array.isArray(current) ? current : []
  if (rule.mergeKey === undefined) return mergePrimitiveList(base, patchList, path)
  return mergeKeyedList(base, patchList, rule.mergeKey, path, ctx)
}

function mergePrimitiveList(base: unknown[], patchList: unknown[], path: string): unknown[] {
  for (const v of patchList) {
    if (v !== null && typeof v === 'object') throw invalid(`${path}: expected a list of primitives, found ${JSON.stringify(v)}`)
  }
  const merged = [...new Set([...base, ...patchList])]
  return orderItems(merged, patchList, base, (v) => v)
}

function mergeKeyedList(base: unknown[], patchList: unknown[], key: string, path: string, ctx: Ctx): unknown[] {
  const itemPath = `${path}[]`
  const keyOf = (v: unknown): unknown => (isMap(v) ? v[key] : undefined)
  let list = [...base]
  const plain: JsonMap[] = []
  let replace = false
  for (const item of patchList) {
    if (!isMap(item)) throw invalid(`${path}: expected a list of objects merged by ${key}, found ${JSON.stringify(item)}`)
    if (!(DIRECTIVE in item)) plain.push(item)
    else if (item[DIRECTIVE] === 'replace') replace = true
    else if (item[DIRECTIVE] === 'delete') list = list.filter((o) => keyOf(o) !== requireKey(item, key, path))
    else if (item[DIRECTIVE] === 'merge') throw invalid(`${path}: merging lists cannot yet be specified in the patch`)
    else throw malformed(`unknown patch type: ${JSON.stringify(item[DIRECTIVE])} in list item at ${path}`)
  }
  if (replace) return plain.map((item) => fromPatch(item, itemPath, ctx)).filter((item) => item !== DELETED)
  for (const item of plain) {
    const k = requireKey(item, key, path)
    const i = list.findIndex((o) => isMap(o) && o[key] === k)
    if (i < 0) list.push(fromPatch(item, itemPath, ctx))
    else list[i] = mergeMap(list[i] as JsonMap, item, itemPath, ctx)
  }
  return orderItems(list, plain, base, keyOf)
}

function requireKey(item: JsonMap, key: string, path: string): unknown {
  if (!(key in item)) throw invalid(`${path}: map: ${JSON.stringify(item)} does not contain declared merge key: ${key}`)
  return item[key]
}

function applyRetainKeys(original: JsonMap, patch: JsonMap, path: string): void {
  if (!(RETAIN_KEYS in patch)) return
  const keys = patch[RETAIN_KEYS]
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw malformed('invalid patch format of retainKeys')
  const keep = new Set(keys as string[])
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || k === RETAIN_KEYS || k.startsWith(SET_ORDER) || k.startsWith(DELETE_PRIMITIVES)) continue
    if (!keep.has(k)) throw malformed(`invalid patch format of retainKeys: ${path || '<root>'}.${k} is set but not listed in $retainKeys`)
  }
  for (const k of Object.keys(original)) if (!keep.has(k)) delete original[k]
}

function deleteFromPrimitiveLists(original: JsonMap, patch: JsonMap): void {
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_PRIMITIVES)) continue
    const field = k.slice(DELETE_PRIMITIVES.length)
    if (!field || !Array.isArray(v)) throw malformed('invalid patch format of primitive list')
    const current = original[field]
    if (!Array.isArray(current)) continue
    const drop = new Set(v)
    original[field] = current.filter((x) => !drop.has(x))
  }
}

// ---------------------------------------------------------------------------
// Strategic merge patch: list order ($setElementOrder and patch order)

function applyElementOrder(
  original: JsonMap,
  field: string,
  order: unknown[],
  before: unknown[],
  patchList: unknown,
  path: string,
  ctx: Ctx,
): void {
  const list = original[field]
  const rule = mergeRuleFor(ctx.kind, path)
  // kubectl only sends an order for merging lists; a replaced list already has the patch's order.
  if (!Array.isArray(list) || !rule) return
  const key = rule.mergeKey
  const keyOf = key === undefined ? (v: unknown) => v : (v: unknown) => (isMap(v) ? v[key] : undefined)
  if (key !== undefined) for (const o of order) if (!isMap(o)) throw malformed('invalid patch format of setElementOrder list')
  if (key !== undefined) for (const o of order) requireKey(o as JsonMap, key, `${path} ($setElementOrder)`)
  checkOrderMatchesPatch(patchList, order, keyOf, path)
  original[field] = orderItems(list, order, before, keyOf)
}

/** Kubernetes rejects a patch list whose items are not in $setElementOrder's relative order. */
function checkOrderMatchesPatch(patchList: unknown, order: unknown[], keyOf: (v: unknown) => unknown, path: string): void {
  if (!Array.isArray(patchList)) return
  const keys = patchList.filter((v) => !(isMap(v) && DIRECTIVE in v)).map(keyOf)
  let matched = 0
  for (const o of order) if (matched < keys.length && keyOf(o) === keys[matched]) matched++
  if (matched < keys.length) throw malformed(`${path}: the order of the patch list does not match its $setElementOrder list`)
}

/**
 * apimachinery's normalizeElementOrder: items named in `order` are sorted by
 * it, the others ("server-only") keep their live order, and the two are
 * interleaved: a server-only item goes before a patch item only when the live
 * list had it earlier. So new items without a $setElementOrder land first, as
 * in Kubernetes.
 */
function orderItems(merged: unknown[], order: unknown[], live: unknown[], keyOf: (v: unknown) => unknown): unknown[] {
  const orderIndex = indexByKey(order, keyOf)
  const liveIndex = indexByKey(live, keyOf)
  const patched = sortByIndex(merged.filter((v) => orderIndex.has(keyOf(v))), orderIndex, keyOf)
  const serverOnly = sortByIndex(merged.filter((v) => !orderIndex.has(keyOf(v))), liveIndex, keyOf)
  const out: unknown[] = []
  let i = 0
  let j = 0
  while (i < serverOnly.length || j < patched.length) {
    const li = i < serverOnly.length ? liveIndex.get(keyOf(serverOnly[i])) : undefined
    const ri = j < patched.length ? liveIndex.get(keyOf(patched[j])) : undefined
    const takeServer = j >= patched.length || (li !== undefined && ri !== undefined && li < ri)
    out.push(takeServer ? serverOnly[i++] : patched[j++])
  }
  return out
}

function indexByKey(list: unknown[], keyOf: (v: unknown) => unknown): Map<unknown, number> {
  const index = new Map<unknown, number>()
  list.forEach((v, i) => {
    const k = keyOf(v)
    if (!index.has(k)) index.set(k, i)
  })
  return index
}

function sortByIndex(list: unknown[], index: Map<unknown, number>, keyOf: (v: unknown) => unknown): unknown[] {
  const pos = (v: unknown) => index.get(keyOf(v)) ?? Number.MAX_SAFE_INTEGER
  return list.sort((a, b) => pos(a) - pos(b)) // Array#sort is stable
}
