// Server-side apply (pure): field ownership as Kubernetes' structured-merge-diff
// keeps it in `metadata.managedFields`, the merge of an applied configuration
// into the live object, conflicts, and the ownership an ordinary update takes.
//
// A field set is FieldsV1, the wire form kubectl and client-go read:
// `{"f:spec": {"f:replicas": {}, "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}`.
// `f:` names a field of a struct or a key of a map, `k:` an item of an
// associative list by its key fields, `v:` an item of a set, and `.` the item
// itself. Internally a set is a set of leaf paths, each path the list of
// those elements; a list's semantics (atomic, set, map with keys) come from
// a ListTypes lookup (the schema's, listTypesFromSchema), so the same code
// serves any schema.

import { listFieldAt } from './schema/fields.ts'

export type FieldsV1 = { [element: string]: FieldsV1 }

export interface ManagedFieldsEntry {
  manager: string
  operation: 'Apply' | 'Update'
  apiVersion: string
  time?: string
  fieldsType: 'FieldsV1'
  fieldsV1: FieldsV1
  subresource?: string
}

/** A map's `defaults` fill a key field an item leaves out (protocol: TCP), so `{containerPort: 80}` and the stored, defaulted item are one item. */
export type ListType = { type: 'atomic' } | { type: 'set' } | { type: 'map'; keys: string[]; defaults?: Record<string, unknown> }
/** The semantics of the list at `path` (dotted, `[]` for list items: `spec.template.spec.containers[].ports`). */
export type ListTypes = (path: string) => ListType

/** A leaf path: FieldsV1 elements from the root. */
type Path = string[]

const key = (p: Path) => JSON.stringify(p)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Fields the server owns: never tracked, never applied from a configuration. */
const untrackedMeta = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'generateName'])

function childPath(path: string, k: string): string {
  return path ? `${path}.${k}` : k
}

/** The element naming an item of an associative list: `k:{"containerPort":80,"protocol":"TCP"}` (keys sorted). */
function itemElement(item: unknown, lt: { keys: string[]; defaults?: Record<string, unknown> }): string {
  const o: Record<string, unknown> = {}
  for (const k of [...lt.keys].sort()) {
    const v = isObject(item) && item[k] !== undefined ? item[k] : lt.defaults?.[k]
    if (v !== undefined) o[k] = v
  }
  return `k:${JSON.stringify(o)}`
}

/** Every leaf path of a value (an object's fields; `root` skips apiVersion, kind and server-owned metadata). */
export function leafPaths(value: unknown, listTypes: ListTypes, root = true): Path[] {
  const out: Path[] = []
  walk(value, '', [], listTypes, out, root)
  return out
}

function walk(value: unknown, path: string, prefix: Path, listTypes: ListTypes, out: Path[], root: boolean): void {
  if (!isObject(value)) return
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue
    if (root && path === '' && (k === 'apiVersion' || k === 'kind')) continue
    if (root && path === 'metadata' && untrackedMeta.has(k)) continue
    const here = [...prefix, `f:${k}`]
    const p = childPath(path, k)
    if (isObject(v) && Object.keys(v).length > 0) {
      const before = out.length
      walk(v, p, here, listTypes, out, root)
      if (out.length === before) out.push(here) // only untracked children: the field itself
    } else if (Array.isArray(v) && v.length > 0) {
      const lt = listTypes(p)
      if (lt.type === 'atomic') out.push(here)
      else if (lt.type === 'set') for (const item of v) out.push([...here, `v:${JSON.stringify(item)}`])
      else
        for (const item of v) {
          const el = [...here, itemElement(item, lt)]
          out.push([...el, '.'])
          walk(item, `${p}[]`, el, listTypes, out, false)
        }
    } else out.push(here)
  }
}

/** FieldsV1 from leaf paths. */
export function toFieldsV1(paths: Iterable<Path>): FieldsV1 {
  const root: FieldsV1 = {}
  for (const p of paths) {
    let node = root
    for (const el of p) node = node[el] ??= {}
  }
  return root
}

/** Leaf paths from FieldsV1 (a node without children is a leaf; `.` marks an item owned as a whole). */
export function fromFieldsV1(f: FieldsV1 | undefined): Path[] {
  const out: Path[] = []
  const rec = (node: FieldsV1, prefix: Path) => {
    const entries = Object.entries(node ?? {})
    if (entries.length === 0 && prefix.length) out.push(prefix)
    for (const [el, child] of entries) rec(child, [...prefix, el])
  }
  rec(f ?? {}, [])
  return out
}

/** The value at a leaf path, or undefined; a `.` step is the item itself. */
export function valueAt(obj: unknown, path: Path, listTypes: ListTypes): unknown {
  let cur: unknown = obj
  let dotted = ''
  for (const el of path) {
    if (el === '.') return cur
    if (el.startsWith('f:')) {
      if (!isObject(cur)) return undefined
      const k = el.slice(2)
      cur = cur[k]
      dotted = childPath(dotted, k)
      continue
    }
    if (!Array.isArray(cur)) return undefined
    const lt = listTypes(dotted)
    if (el.startsWith('v:')) {
      const want = el.slice(2)
      cur = cur.find((x) => JSON.stringify(x) === want)
    } else if (el.startsWith('k:') && lt.type === 'map') {
      cur = cur.find((x) => itemElement(x, lt) === el)
    } else return undefined
    dotted = `${dotted}[]`
  }
  return cur
}

/** `.spec.replicas`, `.spec.containers[name="web"].image`: the path as kubectl prints it in a conflict. */
export function describePath(path: Path): string {
  let s = ''
  for (const el of path) {
    if (el === '.') continue
    if (el.startsWith('f:')) s += `.${el.slice(2)}`
    else if (el.startsWith('v:')) s += `[${el.slice(2)}]`
    else if (el.startsWith('k:')) s += `[${Object.entries(JSON.parse(el.slice(2)) as Record<string, unknown>).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`
  }
  return s
}

// ---------------------------------------------------------------------------
// Merge and removal

/** The configuration merged into the live object: maps and structs by field, associative lists by key, sets as a union, the rest replaced. */
export function mergeApplied(live: unknown, config: unknown, listTypes: ListTypes, path = ''): unknown {
  if (isObject(config)) {
    const out: Record<string, unknown> = isObject(live) ? { ...live } : {}
    for (const [k, v] of Object.entries(config)) {
      if (v === undefined) continue
      out[k] = v === null ? null : mergeApplied(out[k], v, listTypes, childPath(path, k))
    }
    return out
  }
  if (Array.isArray(config) && Array.isArray(live)) {
    const lt = listTypes(path)
    if (lt.type === 'set') return [...live, ...config.filter((x) => !live.some((y) => JSON.stringify(y) === JSON.stringify(x)))]
    if (lt.type === 'map') {
      const out = [...live]
      for (const item of config) {
        const el = itemElement(item, lt)
        const at = out.findIndex((x) => itemElement(x, lt) === el)
        if (at >= 0) out[at] = mergeApplied(out[at], item, listTypes, `${path}[]`)
        else out.push(item)
      }
      return out
    }
  }
  return config
}

/** Remove the field at a leaf path (an item for `.`), and containers left empty by it. */
export function removePath(obj: unknown, path: Path, listTypes: ListTypes): void {
  const steps: Array<{ parent: unknown; el: string; dotted: string }> = []
  let cur: unknown = obj
  let dotted = ''
  for (const el of path) {
    if (el === '.') break
    steps.push({ parent: cur, el, dotted })
    if (el.startsWith('f:')) {
      cur = isObject(cur) ? cur[el.slice(2)] : undefined
      dotted = childPath(dotted, el.slice(2))
    } else {
      const lt = listTypes(dotted)
      cur = Array.isArray(cur) ? cur.find((x) => (el.startsWith('v:') ? JSON.stringify(x) === el.slice(2) : lt.type === 'map' && itemElement(x, lt) === el)) : undefined
      dotted = `${dotted}[]`
    }
    if (cur === undefined) return
  }
  for (let i = steps.length - 1; i >= 0; i--) {
    const { parent, el, dotted: at } = steps[i]!
    if (isObject(parent) && el.startsWith('f:')) delete parent[el.slice(2)]
    else if (Array.isArray(parent)) {
      const lt = listTypes(at)
      const idx = parent.findIndex((x) => (el.startsWith('v:') ? JSON.stringify(x) === el.slice(2) : lt.type === 'map' && itemElement(x, lt) === el))
      if (idx >= 0) parent.splice(idx, 1)
    }
    // Stop unless the container this step removed from is now empty (then remove it from its own parent).
    const left = isObject(parent) ? Object.keys(parent).length : Array.isArray(parent) ? parent.length : 1
    if (left > 0 || i === 0) return
  }
}

// ---------------------------------------------------------------------------
// Apply and update

export interface Conflict {
  manager: string
  path: string
}

export class ApplyConflict extends Error {
  readonly conflicts: Conflict[]
  constructor(conflicts: Conflict[]) {
    const lines = conflicts.map((c) => `conflict with "${c.manager}": ${c.path}`)
    super(`Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${lines.join('\n')}`)
    this.conflicts = conflicts
  }
}

export interface ApplyInput {
  /** The stored object, or undefined when apply creates it. */
  live: Record<string, any> | undefined
  /** The applied configuration (the request body). */
  config: Record<string, any>
  manager: string
  force: boolean
  listTypes: ListTypes
  apiVersion: string
  now: string
  subresource?: string
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * The object after applying `config` as `manager`, with its managedFields.
 * Throws ApplyConflict when another manager owns a field the configuration
 * sets to another value (unless `force`: ownership moves to this manager).
 * Fields this manager applied before and no longer applies are removed,
 * unless another manager owns them too.
 */
export function apply(input: ApplyInput): Record<string, any> {
  const { live, config, manager, listTypes } = input
  const entries: ManagedFieldsEntry[] = structuredClone(live?.metadata?.managedFields ?? [])
  const mine = (e: ManagedFieldsEntry) => e.manager === manager && e.operation === 'Apply' && (e.subresource ?? '') === (input.subresource ?? '')
  const applied = leafPaths(config, listTypes)
  const appliedKeys = new Set(applied.map(key))
  const conflicts: Conflict[] = []
  const conflicting = new Set<string>()
  for (const e of entries) {
    if (mine(e)) continue
    for (const p of fromFieldsV1(e.fieldsV1)) {
      if (!appliedKeys.has(key(p))) continue
      if (live && !sameValue(valueAt(live, p, listTypes), valueAt(config, p, listTypes))) {
        conflicts.push({ manager: e.manager, path: describePath(p) })
        conflicting.add(key(p))
      }
    }
  }
  if (conflicts.length && !input.force) throw new ApplyConflict(conflicts)

  const merged = mergeApplied(structuredClone(live ?? {}), structuredClone(config), listTypes) as Record<string, any>
  // What this manager applied before and no longer does goes, unless someone else still owns it.
  const previous = entries.find(mine)
  const ownedByOthers = new Set(entries.filter((e) => !mine(e)).flatMap((e) => fromFieldsV1(e.fieldsV1).map(key)))
  for (const p of fromFieldsV1(previous?.fieldsV1)) {
    if (!appliedKeys.has(key(p)) && !ownedByOthers.has(key(p)) && !isAncestorOfAny(p, appliedKeys)) removePath(merged, p, listTypes)
  }
  // Forced: the conflicting fields leave their other owners.
  const next = entries
    .filter((e) => !mine(e))
    .map((e) => (conflicting.size ? { ...e, fieldsV1: toFieldsV1(fromFieldsV1(e.fieldsV1).filter((p) => !conflicting.has(key(p)))) } : e))
  next.push({ manager, operation: 'Apply', apiVersion: input.apiVersion, time: input.now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(applied), ...(input.subresource ? { subresource: input.subresource } : {}) })
  merged.metadata = { ...(merged.metadata ?? {}), managedFields: next.filter((e) => Object.keys(e.fieldsV1).length > 0) }
  return merged
}

/** An item path (`...k:{..}/.`) stays while any field under that item is still applied. */
function isAncestorOfAny(p: Path, keys: Set<string>): boolean {
  if (p[p.length - 1] !== '.') return false
  const prefix = JSON.stringify(p.slice(0, -1)).slice(0, -1)
  for (const k of keys) if (k.startsWith(prefix + ',')) return true
  return false
}

/**
 * The managedFields after an ordinary write (create, update, patch) by
 * `manager`: the fields it changed (or, on create, every field) become its
 * Update entry's and leave every other manager, as Kubernetes records them.
 */
export function recordUpdate(input: { old: Record<string, any> | undefined; next: Record<string, any>; manager: string; listTypes: ListTypes; apiVersion: string; now: string; subresource?: string }): ManagedFieldsEntry[] {
  const { old, next, manager, listTypes } = input
  const entries: ManagedFieldsEntry[] = structuredClone(old?.metadata?.managedFields ?? [])
  const nextPaths = leafPaths(next, listTypes)
  const oldKeys = new Set(old ? leafPaths(old, listTypes).map(key) : [])
  const changed = nextPaths.filter((p) => !oldKeys.has(key(p)) || !sameValue(valueAt(old, p, listTypes), valueAt(next, p, listTypes)))
  const nextKeys = new Set(nextPaths.map(key))
  const changedKeys = new Set(changed.map(key))
  const sub = input.subresource ?? ''
  const mineIdx = entries.findIndex((e) => e.manager === manager && e.operation === 'Update' && (e.subresource ?? '') === sub)
  const out: ManagedFieldsEntry[] = []
  for (const [i, e] of entries.entries()) {
    if (i === mineIdx) continue
    // Fields that were removed or changed by this write leave their other owners.
    const kept = fromFieldsV1(e.fieldsV1).filter((p) => nextKeys.has(key(p)) && !changedKeys.has(key(p)))
    if (kept.length) out.push({ ...e, fieldsV1: toFieldsV1(kept) })
  }
  const previous = mineIdx >= 0 ? fromFieldsV1(entries[mineIdx]!.fieldsV1).filter((p) => nextKeys.has(key(p))) : []
  const mine = new Map([...previous, ...changed].map((p) => [key(p), p]))
  if (mine.size) out.push({ manager, operation: 'Update', apiVersion: input.apiVersion, time: input.now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(mine.values()), ...(input.subresource ? { subresource: input.subresource } : {}) })
  return out
}

/**
 * List semantics from the schema (schema/fields.ts): x-kubernetes-list-type
 * and its map keys; a list the schema leaves untyped is atomic, unless it
 * merges by a patch merge key (a map on that key) or merges without one (a
 * set), as structured-merge-diff reads the Go tags. A map key named
 * `protocol` defaults to TCP, as the API defaults it.
 */
const byKind = new Map<string, ListTypes>()

/** One lookup per kind for the process (every write to an applied object asks again). */
export function listTypesFromSchema(kind: string): ListTypes {
  let lookup = byKind.get(kind)
  if (!lookup) byKind.set(kind, (lookup = newListTypes(kind)))
  return lookup
}

function newListTypes(kind: string): ListTypes {
  const cache = new Map<string, ListType>()
  return (path) => {
    let lt = cache.get(path)
    if (!lt) cache.set(path, (lt = schemaListType(kind, path)))
    return lt
  }
}

function schemaListType(kind: string, path: string): ListType {
  const f = listFieldAt(kind, path)
  const o = f?.options
  const keys = o?.listMapKeys?.length ? [...o.listMapKeys] : o?.patchMergeKey && o.patchStrategy?.split(',').includes('merge') ? [o.patchMergeKey] : undefined
  const type = o?.listType ?? (keys ? 'map' : o?.patchStrategy?.split(',').includes('merge') ? 'set' : 'atomic')
  if (type === 'map' && keys) return { type, keys, ...(keys.includes('protocol') ? { defaults: { protocol: 'TCP' } } : {}) }
  if (type === 'set') return { type }
  return { type: 'atomic' }
}
