// Label and field selectors as the apiserver evaluates them for `?labelSelector=`
// and `?fieldSelector=`, and as controllers evaluate an object's
// `spec.selector`. The grammar, error wording and evaluation follow
// apimachinery's labels and fields packages, since kubectl sends whatever the
// user typed and shows the server's error message as it is.

import type { KubeObject } from './types.ts'

/** A selector that cannot be parsed or is not allowed here (the apiserver answers 400). */
export class SelectorError extends Error {
  readonly code = 'SKIFF_ERR_SELECTOR_INVALID'

  constructor(message: string) {
    super(message)
    this.name = 'SelectorError'
  }
}

// ---------------------------------------------------------------------------
// Label syntax

const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** Why `key` is not a valid label key (qualified name, optional DNS subdomain prefix), or undefined. */
export function labelKeyError(key: string): string | undefined {
  const parts = key.split('/')
  if (parts.length > 2) return "a qualified name must be a name with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
  const name = parts[parts.length - 1]
  if (parts.length === 2) {
    const prefix = parts[0]
    if (prefix === '') return 'prefix part must be non-empty'
    if (prefix.length > 253) return 'prefix part must be no more than 253 characters'
    if (!dnsSubdomain.test(prefix)) {
      return "prefix part must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character"
    }
  }
  if (name === '') return 'name part must be non-empty'
  if (name.length > 63) return 'name part must be no more than 63 characters'
  if (!qualifiedNamePart.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

/** Why `value` is not a valid label value, or undefined. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters'
  if (!labelValuePattern.test(value)) {
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Label selectors

export type LabelOperator = 'Equals' | 'NotEquals' | 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'GreaterThan' | 'LessThan'

export interface Requirement {
  key: string
  operator: LabelOperator
  /** Sorted and unique. One value for Equals/NotEquals/GreaterThan/LessThan, none for Exists/DoesNotExist. */
  values: string[]
}

/** All requirements must hold (AND). No requirements selects everything. Sorted by key, as Kubernetes does. */
export interface LabelSelector {
  requirements: Requirement[]
}

const anyValues = (n: number) => n > 0
const oneValue = (n: number) => n === 1
const noValues = (n: number) => n === 0
const setMsg = "for 'in', 'notin' operators, values set can't be empty"
const exactMsg = 'exact-match compatibility requires one single value'
const existsMsg = 'values set must be empty for exists and does not exist'
const intMsg = "for 'gt', 'lt' operators, the value must be an integer"

/** How many values each operator takes, and Kubernetes' message when the count is wrong. */
const arity: Record<LabelOperator, [(n: number) => boolean, string]> = {
  In: [anyValues, setMsg],
  NotIn: [anyValues, setMsg],
  Equals: [oneValue, exactMsg],
  NotEquals: [oneValue, exactMsg],
  Exists: [noValues, existsMsg],
  DoesNotExist: [noValues, existsMsg],
  GreaterThan: [oneValue, intMsg],
  LessThan: [oneValue, intMsg],
}

/** Check and normalise one requirement. */
function requirement(key: string, operator: LabelOperator, values: string[]): Requirement {
  const keyErr = labelKeyError(key)
  if (keyErr) throw new SelectorError(`invalid label key "${key}": ${keyErr}`)
  const unique = [...new Set(values)].sort()
  const [countOk, countMsg] = arity[operator]
  if (!countOk(unique.length)) throw new SelectorError(`${countMsg} (key "${key}")`)
  const numeric = operator === 'GreaterThan' || operator === 'LessThan'
  if (numeric && !/^-?\d+$/.test(unique[0])) throw new SelectorError(`${intMsg} (key "${key}")`)
  for (const v of unique) {
    const valueErr = labelValueError(v)
    if (valueErr) throw new SelectorError(`invalid label value "${v}" for key "${key}": ${valueErr}`)
  }
  return { key, operator, values: unique }
}

function sortedSelector(requirements: Requirement[]): LabelSelector {
  return { requirements: requirements.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) }
}

// --- The `-l` text grammar ---------------------------------------------------

type TokenKind = 'ident' | '!' | '!=' | '=' | '==' | '>' | '<' | '(' | ')' | ',' | 'end'

interface Token {
  kind: TokenKind
  text: string
}

// Longest first, so `!=` and `==` win over `!` and `=`.
const symbols: readonly TokenKind[] = ['!=', '==', '!', '=', '>', '<', '(', ')', ',']
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n'
const isSymbolChar = (c: string) => '!=()<>,'.includes(c)

/** apimachinery's lexer: an identifier is any run of characters that is neither space nor a symbol. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < text.length) {
    if (isSpace(text[i])) {
      i++
      continue
    }
    const symbol = symbols.find((s) => text.startsWith(s, i))
    if (symbol) {
      tokens.push({ kind: symbol, text: symbol })
      i += symbol.length
      continue
    }
    let j = i
    while (j < text.length && !isSpace(text[j]) && !isSymbolChar(text[j])) j++
    tokens.push({ kind: 'ident', text: text.slice(i, j) })
    i = j
  }
  tokens.push({ kind: 'end', text: 'end of string' })
  return tokens
}

interface TokenStream {
  peek(): Token
  /** Consumes a token; the final `end` token is returned forever. */
  next(): Token
}

function tokenStream(tokens: Token[]): TokenStream {
  let pos = 0
  return {
    peek: () => tokens[pos],
    next: () => tokens[tokens[pos].kind === 'end' ? pos : pos++],
  }
}

const found = (t: Token, expected: string) => new SelectorError(`found '${t.text}', expected: ${expected}`)

/**
 * Parse a label selector as typed after `kubectl get -l`: `a=b`, `a==b`,
 * `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by commas.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const s = tokenStream(tokenize(text))
  const requirements: Requirement[] = []
  if (s.peek().kind === 'end') return { requirements }
  for (;;) {
    const start = s.peek()
    if (start.kind !== 'ident' && start.kind !== '!') throw found(start, "!, identifier, or 'end of string'")
    try {
      requirements.push(parseRequirement(s))
    } catch (err) {
      if (err instanceof SelectorError) throw new SelectorError(`unable to parse requirement: ${err.message}`)
      throw err
    }
    const after = s.next()
    if (after.kind === 'end') return sortedSelector(requirements)
    if (after.kind !== ',') throw found(after, "',' or 'end of string'")
    const following = s.peek()
    if (following.kind !== 'ident' && following.kind !== '!') throw found(following, "identifier after ','")
  }
}

// Keyed by token text; a Map so that identifiers like `constructor` are not operators.
const binaryOperators = new Map<string, LabelOperator>([
  ['in', 'In'],
  ['notin', 'NotIn'],
  ['=', 'Equals'],
  ['==', 'Equals'],
  ['!=', 'NotEquals'],
  ['>', 'GreaterThan'],
  ['<', 'LessThan'],
])

function parseRequirement(s: TokenStream): Requirement {
  const negated = s.peek().kind === '!'
  if (negated) s.next()
  const key = s.next()
  if (key.kind !== 'ident') throw found(key, 'identifier')
  if (negated) return requirement(key.text, 'DoesNotExist', [])
  const ahead = s.peek().kind
  if (ahead === 'end' || ahead === ',') return requirement(key.text, 'Exists', [])
  // `in`/`notin` are plain identifiers to the lexer (`a in (in)` is valid); they are operators only here.
  const opToken = s.next()
  const operator = binaryOperators.get(opToken.text)
  if (!operator) throw found(opToken, 'in, notin, =, ==, !=, gt, lt')
  const values = operator === 'In' || operator === 'NotIn' ? parseValueSet(s) : parseExactValue(s)
  return requirement(key.text, operator, values)
}

/** `(a,b)`. Empty members are allowed and mean the empty value, as in Kubernetes: `()`, `(a,)`. */
function parseValueSet(s: TokenStream): string[] {
  const open = s.next()
  if (open.kind !== '(') throw found(open, "'('")
  const values: string[] = []
  let expectValue = true
  for (;;) {
    const t = s.next()
    if (t.kind === 'ident') {
      if (!expectValue) throw found(t, "',' or ')'")
      values.push(t.text)
      expectValue = false
    } else if (t.kind === ',' || t.kind === ')') {
      if (expectValue) values.push('')
      if (t.kind === ')') return values
      expectValue = true
    } else {
      throw found(t, expectValue ? "',', ')' or identifier" : "',' or ')'")
    }
  }
}

/** The value after `=`, `==`, `!=`, `>`, `<`; nothing at all means the empty value (`a=`). */
function parseExactValue(s: TokenStream): string[] {
  const ahead = s.peek().kind
  if (ahead === 'end' || ahead === ',') return ['']
  const t = s.next()
  if (t.kind !== 'ident') throw found(t, 'identifier')
  return [t.text]
}

// --- The object form (spec.selector) ---------------------------------------

export interface LabelSelectorObject {
  matchLabels?: Record<string, string> | null
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] | null }> | null
}

const expressionOperators = new Map<string, LabelOperator>([
  ['In', 'In'],
  ['NotIn', 'NotIn'],
  ['Exists', 'Exists'],
  ['DoesNotExist', 'DoesNotExist'],
])

/**
 * A metav1.LabelSelector as a LabelSelector. An empty object selects
 * everything; callers decide what a missing selector means (Kubernetes: nothing).
 */
export function labelSelectorFromObject(sel: LabelSelectorObject): LabelSelector {
  const requirements: Requirement[] = []
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) {
    requirements.push(requirement(key, 'Equals', [String(value)]))
  }
  for (const expr of sel.matchExpressions ?? []) {
    const operator = expressionOperators.get(expr.operator)
    if (!operator) throw new SelectorError(`"${expr.operator}" is not a valid label selector operator`)
    requirements.push(requirement(expr.key, operator, expr.values ?? []))
  }
  return sortedSelector(requirements)
}

function requirementMatches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key)
  const value = labels[r.key]
  switch (r.operator) {
    case 'Exists':
      return has
    case 'DoesNotExist':
      return !has
    case 'Equals':
    case 'In':
      return has && r.values.includes(value)
    case 'NotEquals':
    case 'NotIn':
      return !has || !r.values.includes(value)
    case 'GreaterThan':
    case 'LessThan': {
      // Kubernetes compares as integers and never matches a label that is not one.
      if (!has || !/^-?\d+$/.test(value)) return false
      const [a, b] = [BigInt(value), BigInt(r.values[0])]
      return r.operator === 'GreaterThan' ? a > b : a < b
    }
  }
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined | null): boolean {
  return selector.requirements.every((r) => requirementMatches(r, labels ?? {}))
}

/** The canonical text form, as in a Scale's status.selector: `app=web,tier in (a,b)`. */
export function selectorToString(selector: LabelSelector): string {
  return selector.requirements.map(requirementToString).join(',')
}

const formats: Record<LabelOperator, (key: string, values: string[]) => string> = {
  Exists: (k) => k,
  DoesNotExist: (k) => `!${k}`,
  Equals: (k, v) => `${k}=${v[0]}`,
  NotEquals: (k, v) => `${k}!=${v[0]}`,
  GreaterThan: (k, v) => `${k}>${v[0]}`,
  LessThan: (k, v) => `${k}<${v[0]}`,
  In: (k, v) => `${k} in (${v.join(',')})`,
  NotIn: (k, v) => `${k} notin (${v.join(',')})`,
}

function requirementToString(r: Requirement): string {
  return formats[r.operator](r.key, r.values)
}

// ---------------------------------------------------------------------------
// Field selectors

export interface FieldRequirement {
  field: string
  /** `==` is read as `=`. */
  op: '=' | '!='
  value: string
}

export interface FieldSelector {
  requirements: FieldRequirement[]
}

/** Parse `f=v`, `f==v`, `f!=v` joined by commas. `\,` `\=` `\\` escape those characters in values. */
export function parseFieldSelector(text: string): FieldSelector {
  const requirements: FieldRequirement[] = []
  for (const term of splitUnescaped(text, ',')) {
    if (term.trim() === '') continue
    // Like apimachinery: the first position where `!=`, `==` or `=` starts splits the term.
    const at = operatorIndex(term)
    if (at < 0) throw new SelectorError(`invalid selector: '${text}'; can't understand '${term}'`)
    const op = term.startsWith('!=', at) ? '!=' : term.startsWith('==', at) ? '==' : '='
    const field = term.slice(0, at).trim()
    if (field === '') throw new SelectorError(`invalid selector: '${text}'; no field name in '${term}'`)
    const value = unescapeFieldValue(term.slice(at + op.length).trim(), text)
    requirements.push({ field, op: op === '!=' ? '!=' : '=', value })
  }
  return { requirements }
}

function operatorIndex(term: string): number {
  for (let i = 0; i < term.length; i++) if (term[i] === '=' || term.startsWith('!=', i)) return i
  return -1
}

function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = []
  let start = 0
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++
    else if (text[i] === sep) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts
}

function unescapeFieldValue(raw: string, text: string): string {
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    if (c === '\\') {
      const next = raw[++i]
      if (next !== '\\' && next !== ',' && next !== '=') {
        throw new SelectorError(`invalid selector: '${text}'; invalid escape sequence '\\${next ?? ''}'`)
      }
      out += next
    } else if (c === '=' || c === ',') {
      throw new SelectorError(`invalid selector: '${text}'; unescaped '${c}' in value '${raw}'`)
    } else {
      out += c
    }
  }
  return out
}

type FieldGetter = (o: any) => unknown

const everyKindFields: Record<string, FieldGetter> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
}

// The per-kind field labels Kubernetes registers (its GetAttrs/field label conversion funcs).
const kindFields: Record<string, Record<string, FieldGetter>> = {
  Event: {
    ...Object.fromEntries(
      ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((f) => [
        `involvedObject.${f}`,
        (o: any) => o.involvedObject?.[f],
      ]),
    ),
    reason: (o) => o.reason,
    reportingComponent: (o) => o.reportingComponent,
    source: (o) => o.source?.component,
    type: (o) => o.type,
  },
  Pod: {
    'spec.nodeName': (o) => o.spec?.nodeName,
    'spec.restartPolicy': (o) => o.spec?.restartPolicy,
    'spec.schedulerName': (o) => o.spec?.schedulerName,
    'spec.serviceAccountName': (o) => o.spec?.serviceAccountName,
    'spec.hostNetwork': (o) => Boolean(o.spec?.hostNetwork),
    'status.phase': (o) => o.status?.phase,
    'status.podIP': (o) => o.status?.podIP,
    'status.nominatedNodeName': (o) => o.status?.nominatedNodeName,
  },
  Secret: { type: (o) => o.type },
  Node: { 'spec.unschedulable': (o) => Boolean(o.spec?.unschedulable) },
  Namespace: { 'status.phase': (o) => o.status?.phase },
  ReplicaSet: { 'status.replicas': (o) => o.status?.replicas ?? 0 },
}

function fieldGetter(field: string, kind: string): FieldGetter | undefined {
  // hasOwn: a field named `constructor` must not find Object.prototype's.
  if (Object.hasOwn(everyKindFields, field)) return everyKindFields[field]
  const forKind = Object.hasOwn(kindFields, kind) ? kindFields[kind] : undefined
  return forKind && Object.hasOwn(forKind, field) ? forKind[field] : undefined
}

export function fieldSelectorSupported(field: string, kind: string): boolean {
  return fieldGetter(field, kind) !== undefined
}

/** Throws `field label not supported: x` (a 400 in Kubernetes) for the first field `kind` does not index. */
export function validateFieldSelector(selector: FieldSelector, kind: string): void {
  const bad = selector.requirements.find((r) => !fieldSelectorSupported(r.field, kind))
  if (bad) throw new SelectorError(`field label not supported: ${bad.field}`)
}

/** Field values compare as Kubernetes renders them: missing is '', booleans and numbers as text. */
export function matchesFields(selector: FieldSelector, obj: KubeObject, kind: string): boolean {
  return selector.requirements.every((r) => {
    const get = fieldGetter(r.field, kind)
    if (!get) return false // unsupported fields are rejected up front by validateFieldSelector
    const raw = get(obj)
    const value = raw === undefined || raw === null ? '' : String(raw)
    return r.op === '=' ? value === r.value : value !== r.value
  })
}
