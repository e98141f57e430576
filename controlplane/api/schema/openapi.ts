// OpenAPI v3 component schemas generated from the schema DSL, named and shaped
// as the apiserver names and shapes them (kube-openapi): a property holding a
// message is `allOf: [{$ref}]` beside its description, lists and maps carry
// the x-kubernetes-* extensions, kinds carry x-kubernetes-group-version-kind.
// The documents per group version (paths and operations) are built in
// apiserver/openapi.ts from these.

import type { Field, Message } from './dsl.ts'
import { allKinds, messages } from './index.ts'

export type Schema = Record<string, unknown>

const APIMACHINERY = 'io.k8s.apimachinery.pkg'

/** Component names of the special wire types (they are strings or free objects in JSON). */
export const specialNames: Record<string, string> = {
  Quantity: `${APIMACHINERY}.api.resource.Quantity`,
  IntOrString: `${APIMACHINERY}.util.intstr.IntOrString`,
  Time: `${APIMACHINERY}.apis.meta.v1.Time`,
  MicroTime: `${APIMACHINERY}.apis.meta.v1.MicroTime`,
  RawExtension: `${APIMACHINERY}.runtime.RawExtension`,
  FieldsV1: `${APIMACHINERY}.apis.meta.v1.FieldsV1`,
}

const specialSchemas: Record<string, Schema> = {
  [specialNames.Quantity!]: {
    description: 'A fixed-point amount with a unit suffix: 100m, 64Mi, 1.5, 2e3. Serialized as a string.',
    oneOf: [{ type: 'string' }, { type: 'number' }],
  },
  [specialNames.IntOrString!]: {
    description: 'Either an integer or a string (a port number or name, a count or a percentage).',
    format: 'int-or-string',
    oneOf: [{ type: 'integer' }, { type: 'string' }],
  },
  [specialNames.Time!]: { description: 'A timestamp in RFC 3339 form, to the second.', type: 'string', format: 'date-time' },
  [specialNames.MicroTime!]: { description: 'A timestamp in RFC 3339 form, to the microsecond.', type: 'string', format: 'date-time' },
  [specialNames.RawExtension!]: { description: 'An embedded object of any kind.', type: 'object' },
  [specialNames.FieldsV1!]: { description: 'A set of fields as a trie of f:, k:, v: and i: keys.', type: 'object' },
}

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })

function scalarSchema(scalar: string): Schema {
  switch (scalar) {
    case 'int32': return { type: 'integer', format: 'int32' }
    case 'int64': return { type: 'integer', format: 'int64' }
    case 'bool': return { type: 'boolean' }
    case 'bytes': return { type: 'string', format: 'byte' }
    case 'double': return { type: 'number', format: 'double' }
    default: return { type: 'string' }
  }
}

/** The schema of one value of the field (an element, for lists and maps). */
function valueSchema(f: Field): Schema {
  const v = f.value
  if (v.kind === 'scalar') return scalarSchema(v.scalar)
  if (v.kind === 'special') {
    if (v.special === 'ExtraValue') return { type: 'array', items: { type: 'string' } }
    return ref(specialNames[v.special]!)
  }
  return ref(v.name)
}

function fieldSchema(f: Field): Schema {
  const o = f.options
  const ext: Schema = {}
  if (o.listType) ext['x-kubernetes-list-type'] = o.listType
  if (o.listMapKeys) ext['x-kubernetes-list-map-keys'] = [...o.listMapKeys]
  if (o.patchMergeKey) ext['x-kubernetes-patch-merge-key'] = o.patchMergeKey
  if (o.patchStrategy) ext['x-kubernetes-patch-strategy'] = o.patchStrategy
  if (o.mapType) ext['x-kubernetes-map-type'] = o.mapType
  const enumPart = o.enum ? { enum: [...o.enum] } : {}
  const formatPart = o.format ? { format: o.format } : {}
  if (f.repeated) {
    return { description: f.description, type: 'array', items: { ...valueSchema(f), ...enumPart }, ...ext }
  }
  if (f.map) return { description: f.description, type: 'object', additionalProperties: valueSchema(f), ...ext }
  const v = valueSchema(f)
  if ('$ref' in v) return { description: f.description, allOf: [v], ...ext }
  return { description: f.description, ...v, ...formatPart, ...enumPart, ...ext }
}

/** Properties and required names of a message, with inline fields flattened into it. */
function properties(m: Message): { props: Record<string, Schema>; required: string[] } {
  const props: Record<string, Schema> = {}
  const required: string[] = []
  for (const f of m.fields) {
    if (f.options.inline && f.value.kind === 'message') {
      const inner = properties(messages.get(f.value.name)!)
      Object.assign(props, inner.props)
      required.push(...inner.required)
      continue
    }
    props[f.name] = fieldSchema(f)
    if (f.options.required) required.push(f.name)
  }
  return { props, required }
}

const gvkOf = new Map(allKinds().map((k) => [k.name, { group: k.group, kind: k.kind, version: k.version }]))

export function messageSchema(m: Message): Schema {
  const { props, required } = properties(m)
  const gvk = gvkOf.get(m.name)
  return {
    description: m.description,
    type: 'object',
    properties: props,
    ...(required.length ? { required } : {}),
    ...(m.structType ? { 'x-kubernetes-map-type': m.structType } : {}),
    ...(gvk ? { 'x-kubernetes-group-version-kind': [gvk] } : {}),
  }
}

/** The component schemas reachable from `roots` (full names), sorted by name. */
export function componentSchemas(roots: Iterable<string>): Record<string, Schema> {
  const seen = new Set<string>()
  const stack = [...roots]
  while (stack.length) {
    const name = stack.pop()!
    if (seen.has(name)) continue
    seen.add(name)
    const m = messages.get(name)
    if (!m) continue
    for (const f of m.fields) {
      if (f.value.kind === 'message') stack.push(f.value.name)
      else if (f.value.kind === 'special' && specialNames[f.value.special]) stack.push(specialNames[f.value.special]!)
    }
  }
  const out: Record<string, Schema> = {}
  for (const name of [...seen].sort()) {
    const m = messages.get(name)
    if (m) out[name] = messageSchema(m)
    else if (specialSchemas[name]) out[name] = specialSchemas[name]
  }
  return out
}
