// Unknown and duplicate fields of a request body, found with the schema, for
// the `fieldValidation` query parameter (Ignore, Warn, Strict) as the
// apiserver applies it to built-in kinds: unknown fields are always dropped
// (Go structs have nowhere to keep them) and duplicate keys keep the last
// value; Warn reports each as a warning, Strict refuses the request.
// Paths are written as sigs.k8s.io/json writes them: spec.containers[0].foo.

import type { Field, Message } from './dsl.ts'
import { messages } from './index.ts'

type Json = Record<string, unknown>

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** JSON names of a message, with inline (embedded) fields flattened in. */
function jsonFields(m: Message, out = new Map<string, Field>()): Map<string, Field> {
  for (const f of m.fields) {
    if (f.options.inline && f.value.kind === 'message') jsonFields(messages.get(f.value.name)!, out)
    else out.set(f.name, f)
  }
  return out
}

const fieldCache = new Map<string, Map<string, Field>>()
function fieldsOf(m: Message): Map<string, Field> {
  let f = fieldCache.get(m.name)
  if (!f) fieldCache.set(m.name, (f = jsonFields(m)))
  return f
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key)

function pruneValue(f: Field, v: unknown, path: string, unknown: string[]): void {
  if (f.value.kind !== 'message') return
  const m = messages.get(f.value.name)!
  if (f.repeated) {
    if (Array.isArray(v)) v.forEach((x, i) => isObject(x) && pruneMessage(m, x, `${path}[${i}]`, unknown))
  } else if (f.map) {
    if (isObject(v)) for (const [k, x] of Object.entries(v)) if (isObject(x)) pruneMessage(m, x, `${path}[${k}]`, unknown)
  } else if (isObject(v)) pruneMessage(m, v, path, unknown)
}

function pruneMessage(m: Message, obj: Json, path: string, unknown: string[]): void {
  const fields = fieldsOf(m)
  for (const key of Object.keys(obj)) {
    const f = fields.get(key)
    if (!f) {
      unknown.push(join(path, key))
      delete obj[key]
    } else pruneValue(f, obj[key], join(path, key), unknown)
  }
}

/**
 * Deletes, in place, every field of `obj` the schema of `m` does not know,
 * and returns their paths in document order.
 */
export function pruneUnknownFields(m: Message, obj: Json): string[] {
  const unknown: string[] = []
  pruneMessage(m, obj, '', unknown)
  return unknown
}

/**
 * Paths of keys that appear twice in one JSON object of `text` (JSON.parse
 * silently keeps the last). `text` must be valid JSON; the scan follows
 * strings, objects and arrays only.
 */
export function duplicateFields(text: string): string[] {
  const dups: string[] = []
  // One frame per open object or array: the keys seen (objects) or the index (arrays).
  const stack: Array<{ path: string; keys?: Set<string>; index: number; key?: string }> = []
  const pathOfValue = (): string => {
    const top = stack[stack.length - 1]
    if (!top) return ''
    return top.keys ? join(top.path, top.key ?? '') : `${top.path}[${top.index}]`
  }
  let i = 0
  let expectKey = false
  while (i < text.length) {
    const c = text[i]!
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      const top = stack[stack.length - 1]
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (top.keys.has(key)) dups.push(join(top.path, key))
        top.keys.add(key)
        top.key = key
        expectKey = false
      }
      i = j + 1
      continue
    }
    if (c === '{') {
      stack.push({ path: pathOfValue(), keys: new Set(), index: 0 })
      expectKey = true
    } else if (c === '[') {
      stack.push({ path: pathOfValue(), index: 0 })
    } else if (c === '}' || c === ']') {
      stack.pop()
    } else if (c === ',') {
      const top = stack[stack.length - 1]
      if (top?.keys) expectKey = true
      else if (top) top.index++
    }
    i++
  }
  return dups
}

export interface ListMergeRule {
  /** The list's path, as asked. */
  path: string
  /** Field that identifies an item; absent for merged lists of primitives. */
  mergeKey?: string
}

const kindByName = new Map<string, Message>()
for (const m of messages.values()) {
  if (!m.topLevel) continue
  const name = m.name.slice(m.name.lastIndexOf('.') + 1)
  if (!kindByName.has(name)) kindByName.set(name, m)
}

/**
 * The strategic-merge rule of the list at `path` in an object of `kind`
 * (`spec.template.spec.containers[].ports`: dotted steps, `[]` into a list's
 * items, map keys with `.` written `%2E`), from the schema's patch strategy
 * and merge key. Undefined when the list is replaced whole (no merge
 * strategy, an unknown path, or a kind without a schema).
 */
export function listMergeRule(kind: string, path: string): ListMergeRule | undefined {
  const f = listFieldAt(kind, path)
  if (!f?.options.patchStrategy?.split(',').includes('merge')) return undefined
  return { path, ...(f.options.patchMergeKey ? { mergeKey: f.options.patchMergeKey } : {}) }
}

/**
 * The schema field of the list at `path` in an object of `kind` (same path
 * form as listMergeRule), for its x-kubernetes-list-type and map keys
 * (server-side apply). Undefined for an unknown path or a non-list.
 */
export function listFieldAt(kind: string, path: string): Field | undefined {
  let m = kindByName.get(kind)
  const segs = path.split('.')
  for (let i = 0; m && i < segs.length; i++) {
    const seg = segs[i]!
    const item = seg.endsWith('[]')
    const f = fieldsOf(m).get(item ? seg.slice(0, -2) : seg)
    if (!f) return undefined
    if (i === segs.length - 1) return f.repeated && !item ? f : undefined
    if (f.repeated && !item) return undefined
    if (f.map) i++ // the next step is a map key
    m = f.value.kind === 'message' ? messages.get(f.value.name) : undefined
  }
  return undefined
}
