// ObjectMeta, labels, annotations, owner references and label selectors, as
// k8s.io/apimachinery's ValidateObjectMeta checks them for every kind.

import { forbidden, goValue, invalid, invalidEach, isRecord, items, keyPath, nonNegative, notSupported, raw, required, text } from './field.ts'
import type { Causes, Raw } from './field.ts'
import { isDNS1123Label, isQualifiedName, isValidLabelValue, maskTrailingDash } from './names.ts'

export type NameRule = (name: string) => string[]

export const totalAnnotationSizeLimit = 256 * 1024

export interface MetaOptions {
  namespaced: boolean
  nameRule: NameRule
}

export function validateObjectMeta(meta: unknown, opts: MetaOptions, path = 'metadata'): Causes {
  if (!isRecord(meta)) return [required(path)]
  return [
    ...validateNames(meta, opts.nameRule, path),
    ...validateNamespaceField(meta.namespace, opts.namespaced, `${path}.namespace`),
    ...nonNegative(`${path}.generation`, meta.generation),
    ...validateLabels(meta.labels, `${path}.labels`),
    ...validateAnnotations(meta.annotations, `${path}.annotations`),
    ...validateOwnerReferences(meta.ownerReferences, `${path}.ownerReferences`),
    ...validateFinalizers(meta.finalizers, `${path}.finalizers`),
  ]
}

function validateNames(meta: Record<string, any>, rule: NameRule, path: string): Causes {
  const out: Causes = []
  const gen = meta.generateName
  if (typeof gen === 'string' && gen !== '') out.push(...invalidEach(`${path}.generateName`, gen, rule(maskTrailingDash(gen))))
  const name = meta.name
  // The apiserver turns generateName into a name; until it has, an empty name is not an error.
  if (name === undefined || name === null || name === '') {
    if (!gen) out.push(required(`${path}.name`, 'name or generateName is required'))
  } else if (typeof name !== 'string') out.push(invalid(`${path}.name`, name, 'must be a string'))
  else out.push(...invalidEach(`${path}.name`, name, rule(name)))
  return out
}

function validateNamespaceField(ns: unknown, namespaced: boolean, path: string): Causes {
  const set = ns !== undefined && ns !== null && ns !== ''
  if (!namespaced) return set ? [forbidden(path, 'not allowed on this type')] : []
  if (!set) return [required(path)]
  return typeof ns === 'string' ? invalidEach(path, ns, isDNS1123Label(ns)) : [invalid(path, ns, 'must be a string')]
}

/** Both key and value errors are reported on the map's own path, as Kubernetes does. */
export function validateLabels(labels: unknown, path: string): Causes {
  if (labels === undefined || labels === null) return []
  if (!isRecord(labels)) return [invalid(path, labels, 'must be a map of string keys to string values')]
  const out: Causes = []
  for (const [k, v] of Object.entries(labels)) {
    out.push(...invalidEach(path, k, isQualifiedName(k)))
    if (typeof v !== 'string') out.push(invalid(path, v, 'must be a string'))
    else out.push(...invalidEach(path, v, isValidLabelValue(v)))
  }
  return out
}

export function validateAnnotations(annotations: unknown, path: string): Causes {
  if (annotations === undefined || annotations === null) return []
  if (!isRecord(annotations)) return [invalid(path, annotations, 'must be a map of string keys to string values')]
  const out: Causes = []
  let size = 0
  for (const [k, v] of Object.entries(annotations)) {
    // Annotation keys are qualified names in which case does not matter.
    out.push(...invalidEach(path, k, isQualifiedName(k.toLowerCase())))
    if (typeof v !== 'string') out.push(invalid(keyPath(path, k), v, 'must be a string'))
    size += Buffer.byteLength(k) + Buffer.byteLength(text(v))
  }
  if (size > totalAnnotationSizeLimit) out.push({ reason: 'FieldValueTooLong', field: path, message: `Too long: must have at most ${totalAnnotationSizeLimit} bytes` })
  return out
}

export function validateOwnerReferences(refs: unknown, path: string): Causes {
  if (refs === undefined || refs === null) return []
  if (!Array.isArray(refs)) return [invalid(path, refs, 'must be a list')]
  const out: Causes = []
  refs.forEach((ref, i) => out.push(...validateOwnerReference(ref, `${path}[${i}]`)))
  const controllers = refs.filter((r) => isRecord(r) && r.controller === true)
  if (controllers.length > 1) {
    const names = controllers.map((r) => `${text(r.kind)}/${text(r.name)}`).join(', ')
    out.push(invalid(path, raw(`${refs.length} references`), `Only one reference can have Controller set to true. Found "true" in references for ${names}`))
  }
  return out
}

function validateOwnerReference(ref: unknown, path: string): Causes {
  if (!isRecord(ref)) return [invalid(path, ref, 'must be an object')]
  const out: Causes = []
  const apiVersion = typeof ref.apiVersion === 'string' ? ref.apiVersion : ''
  const version = apiVersion.includes('/') ? apiVersion.split('/')[1] : apiVersion
  if (!version) out.push(invalid(`${path}.apiVersion`, apiVersion, 'version must not be empty'))
  for (const f of ['kind', 'name', 'uid'])
    if (typeof ref[f] !== 'string' || ref[f] === '') out.push(invalid(`${path}.${f}`, ref[f] ?? '', 'must not be empty'))
  return out
}

const standardFinalizers = new Set(['kubernetes', 'orphan', 'foregroundDeletion'])

export function validateFinalizers(finalizers: unknown, path: string): Causes {
  if (finalizers === undefined || finalizers === null) return []
  if (!Array.isArray(finalizers)) return [invalid(path, finalizers, 'must be a list')]
  const out: Causes = []
  finalizers.forEach((f, i) => {
    if (typeof f !== 'string') return void out.push(invalid(`${path}[${i}]`, f, 'must be a string'))
    const msgs = isQualifiedName(f)
    out.push(...invalidEach(path, f, msgs))
    if (msgs.length === 0 && !f.includes('/') && !standardFinalizers.has(f))
      out.push(invalid(path, f, 'name is neither a standard finalizer name nor is it fully qualified'))
  })
  // The garbage collector cannot both orphan and delete the dependents.
  if (finalizers.includes('orphan') && finalizers.includes('foregroundDeletion'))
    out.push(invalid(path, raw(`[]string{${finalizers.map(goValue).join(', ')}}`), 'finalizer orphan and foregroundDeletion cannot be both set'))
  return out
}

/** ValidateObjectMetaUpdate's finalizer rule: an object being deleted may lose finalizers, never gain one. */
export function validateFinalizersUpdate(finalizers: unknown, old: { deletionTimestamp?: string; finalizers?: string[] } | undefined, path: string): Causes {
  if (!old?.deletionTimestamp || !Array.isArray(finalizers)) return []
  const had = new Set(old.finalizers ?? [])
  const added = finalizers.filter((f) => !had.has(f))
  if (added.length === 0) return []
  return [forbidden(path, `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map(goValue).join(', ')}}`)]
}

// --- label selectors -------------------------------------------------------

const selectorOps = ['In', 'NotIn', 'Exists', 'DoesNotExist']

export function validateLabelSelector(sel: unknown, path: string): Causes {
  if (sel === undefined || sel === null) return []
  if (!isRecord(sel)) return [invalid(path, sel, 'must be an object')]
  const out = validateLabels(sel.matchLabels, `${path}.matchLabels`)
  items(sel.matchExpressions).forEach((req, i) => out.push(...validateRequirement(req, `${path}.matchExpressions[${i}]`)))
  return out
}

function validateRequirement(req: unknown, path: string): Causes {
  if (!isRecord(req)) return [invalid(path, req, 'must be an object')]
  const out: Causes = []
  const values = items(req.values)
  if (req.operator === 'In' || req.operator === 'NotIn') {
    if (values.length === 0) out.push(required(`${path}.values`, "must be specified when `operator` is 'In' or 'NotIn'"))
  } else if (req.operator === 'Exists' || req.operator === 'DoesNotExist') {
    if (values.length > 0) out.push(forbidden(`${path}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
  } else out.push(notSupported(`${path}.operator`, req.operator ?? '', selectorOps))
  const key = typeof req.key === 'string' ? req.key : ''
  out.push(...invalidEach(`${path}.key`, key, isQualifiedName(key)))
  values.forEach((v) => out.push(...invalidEach(`${path}.values`, v, typeof v === 'string' ? isValidLabelValue(v) : ['must be a string'])))
  return out
}

const selectorOpsMatch = { In: true, NotIn: true, Exists: true, DoesNotExist: true }

/** Does a LabelSelector match these labels? A missing selector matches nothing, an empty one everything. */
export function selectorMatches(sel: unknown, labels: unknown): boolean {
  if (!isRecord(sel)) return false
  const have: Record<string, unknown> = isRecord(labels) ? labels : {}
  const ml = isRecord(sel.matchLabels) ? sel.matchLabels : {}
  for (const [k, v] of Object.entries(ml)) if (have[k] !== v) return false
  for (const req of items(sel.matchExpressions)) {
    const present = typeof req?.key === 'string' && Object.hasOwn(have, req.key)
    const inValues = present && items(req?.values).includes(have[req.key])
    const op = typeof req?.operator === 'string' ? req.operator : ''
    const ok = Object.hasOwn(selectorOpsMatch, op) && { In: inValues, NotIn: !inValues, Exists: present, DoesNotExist: !present }[op as keyof typeof selectorOpsMatch]
    if (!ok) return false
  }
  return true
}

export function selectorIsEmpty(sel: Record<string, any>): boolean {
  const ml = isRecord(sel.matchLabels) ? Object.keys(sel.matchLabels).length : 0
  return ml + items(sel.matchExpressions).length === 0
}

/** A selector as Go's %#v prints a v1.LabelSelector, for "field is immutable" messages. */
export function goSelector(sel: unknown): Raw {
  if (!isRecord(sel)) return raw('null')
  const ml = isRecord(sel.matchLabels) ? goMap(sel.matchLabels) : 'map[string]string(nil)'
  const exprs = items(sel.matchExpressions)
  const me = exprs.length
    ? `[]v1.LabelSelectorRequirement{${exprs.map((e) => `v1.LabelSelectorRequirement{Key:${goValue(e?.key ?? '')}, Operator:${goValue(e?.operator ?? '')}, Values:[]string{${items(e?.values).map(goValue).join(', ')}}}`).join(', ')}}`
    : '[]v1.LabelSelectorRequirement(nil)'
  return raw(`v1.LabelSelector{MatchLabels:${ml}, MatchExpressions:${me}}`)
}

function goMap(m: Record<string, unknown>): string {
  return `map[string]string{${Object.keys(m).sort().map((k) => `${JSON.stringify(k)}:${goValue(text(m[k]))}`).join(', ')}}`
}
