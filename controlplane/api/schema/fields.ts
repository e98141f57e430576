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
