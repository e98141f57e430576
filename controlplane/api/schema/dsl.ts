// The schema DSL: every served kind is described once, as data, and the
// OpenAPI v3 documents, protobuf decoding, unknown-field pruning and strategic
// merge patch keys are all derived from that one description (README.md).
//
// A package is a record of types; a type is a description plus fields; a field
// is a tuple `[protobuf field number, type, description, options?]`. The type
// is written as in Go, which is also how it travels on the wire:
//
//   'string' | 'int32' | 'int64' | 'bool' | 'bytes' | 'double'   scalars
//   'Quantity' | 'IntOrString' | 'Time' | 'MicroTime' | 'RawExtension' |
//   'FieldsV1' | 'ExtraValue'                                      special wire types
//   'Container', 'meta.ObjectMeta'                                 messages (own package, or `alias.Name`)
//   '[]T'  repeated,  'map[T]'  map with string keys,  '*T'  a Go pointer
//
// A Go pointer matters for protobuf only: gogo writes every non-pointer field
// (zero or not), so a non-pointer zero means "unset", while a pointer's zero
// on the wire is a real value (`replicas: 0`).

export type Scalar = 'string' | 'int32' | 'int64' | 'bool' | 'bytes' | 'double'
export type Special = 'Quantity' | 'IntOrString' | 'Time' | 'MicroTime' | 'RawExtension' | 'FieldsV1' | 'ExtraValue'

export interface FieldOptions {
  /** The field must be present (OpenAPI `required`). */
  required?: true
  enum?: readonly string[]
  /** x-kubernetes-list-type */
  listType?: 'atomic' | 'set' | 'map'
  /** x-kubernetes-list-map-keys (with listType 'map') */
  listMapKeys?: readonly string[]
  /** x-kubernetes-patch-strategy */
  patchStrategy?: 'merge' | 'retainKeys' | 'merge,retainKeys' | 'replace'
  /** x-kubernetes-patch-merge-key */
  patchMergeKey?: string
  /** x-kubernetes-map-type */
  mapType?: 'atomic' | 'granular'
  /** An embedded Go struct: its fields appear in the parent JSON object. */
  inline?: true
  /** OpenAPI `format` of a string field (`date-time` comes from Time itself). */
  format?: string
}

export type FieldTuple =
  | readonly [number, string, string]
  | readonly [number, string, string, FieldOptions]

export interface TypeDef {
  description: string
  fields: Record<string, FieldTuple>
  /** +structType=atomic */
  structType?: 'atomic' | 'granular'
  /** A top-level object with apiVersion and kind (made by `object`). */
  topLevel?: true
}

/** A package: its OpenAPI prefix (`io.k8s.api.core.v1`) and its types by Go name. */
export interface PackageDef {
  alias: string
  prefix: string
  types: Record<string, TypeDef>
}

/** Describe one type; `fields` keys are JSON names. */
export function type(description: string, fields: Record<string, FieldTuple>, opts: { structType?: 'atomic' | 'granular' } = {}): TypeDef {
  return { description, fields, ...opts }
}

// apiVersion and kind travel in the protobuf envelope (runtime.Unknown), not
// in the message: field number 0 means "JSON only".
const typeMeta: Record<string, FieldTuple> = {
  apiVersion: [0, 'string', 'Versioned schema of this representation (group/version).'],
  kind: [0, 'string', 'Kind of object this representation is (CamelCase).'],
}

/** A top-level object (a kind, its List, a review): apiVersion and kind come first. */
export function object(description: string, fields: Record<string, FieldTuple>): TypeDef {
  return { description, fields: { ...typeMeta, ...fields }, topLevel: true }
}

/** The List of a kind: metadata and items, as every List is. */
export function listOf(kind: string): TypeDef {
  return object(`A list of ${kind} objects.`, {
    metadata: [1, 'meta.ListMeta', 'List metadata: resourceVersion and continue token.'],
    items: [2, `[]${kind}`, `The ${kind} objects.`, { required: true }],
  })
}

export function definePackage(alias: string, prefix: string, types: Record<string, TypeDef>): PackageDef {
  return { alias, prefix, types }
}

// ---- resolved form ------------------------------------------------------

export type ValueType =
  | { kind: 'scalar'; scalar: Scalar }
  | { kind: 'special'; special: Special }
  | { kind: 'message'; name: string } // full OpenAPI name

export interface Field {
  name: string
  number: number
  description: string
  value: ValueType
  repeated: boolean
  map: boolean
  pointer: boolean
  options: FieldOptions
}

export interface Message {
  /** io.k8s.api.core.v1.Container */
  name: string
  description: string
  structType?: 'atomic' | 'granular'
  topLevel: boolean
  /** In declaration order. */
  fields: Field[]
  byNumber: Map<number, Field>
  byJson: Map<string, Field>
}

const scalars = new Set<string>(['string', 'int32', 'int64', 'bool', 'bytes', 'double'])
const specials = new Set<string>(['Quantity', 'IntOrString', 'Time', 'MicroTime', 'RawExtension', 'FieldsV1', 'ExtraValue'])

/** Parses a Go-like type expression; message names come back qualified. */
export function parseType(expr: string, pkg: PackageDef, aliases: Map<string, string>): Omit<Field, 'name' | 'number' | 'description' | 'options'> {
  let rest = expr
  let pointer = false
  let repeated = false
  let map = false
  if (rest.startsWith('*')) { pointer = true; rest = rest.slice(1) }
  if (rest.startsWith('[]')) { repeated = true; rest = rest.slice(2) }
  else if (rest.startsWith('map[') && rest.endsWith(']')) { map = true; rest = rest.slice(4, -1) }
  let value: ValueType
  if (scalars.has(rest)) value = { kind: 'scalar', scalar: rest as Scalar }
  else if (specials.has(rest)) value = { kind: 'special', special: rest as Special }
  else {
    const dot = rest.indexOf('.')
    if (dot < 0) value = { kind: 'message', name: `${pkg.prefix}.${rest}` }
    else {
      const prefix = aliases.get(rest.slice(0, dot))
      if (!prefix) throw new Error(`schema: unknown package alias in type "${expr}" (${pkg.alias})`)
      value = { kind: 'message', name: `${prefix}.${rest.slice(dot + 1)}` }
    }
  }
  return { value, repeated, map, pointer }
}

/** Resolves every package into messages by full name; throws on a dangling reference or a duplicate number. */
export function resolve(packages: readonly PackageDef[]): Map<string, Message> {
  const aliases = new Map(packages.map((p) => [p.alias, p.prefix]))
  const out = new Map<string, Message>()
  for (const pkg of packages) {
    for (const [goName, def] of Object.entries(pkg.types)) {
      const name = `${pkg.prefix}.${goName}`
      const fields: Field[] = Object.entries(def.fields).map(([json, tuple]) => ({
        name: json,
        number: tuple[0],
        description: tuple[2],
        options: tuple[3] ?? {},
        ...parseType(tuple[1], pkg, aliases),
      }))
      const byNumber = new Map<number, Field>()
      for (const f of fields) {
        if (f.number === 0) continue
        if (byNumber.has(f.number)) throw new Error(`schema: ${name} uses field number ${f.number} twice`)
        byNumber.set(f.number, f)
      }
      out.set(name, { name, description: def.description, structType: def.structType, topLevel: def.topLevel === true, fields, byNumber, byJson: new Map(fields.map((f) => [f.name, f])) })
    }
  }
  for (const m of out.values()) {
    for (const f of m.fields) {
      if (f.value.kind === 'message' && !out.has(f.value.name)) throw new Error(`schema: ${m.name}.${f.name} refers to unknown type ${f.value.name}`)
    }
  }
  return out
}
