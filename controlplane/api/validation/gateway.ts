// gateway.networking.k8s.io validation: the OpenAPI and CEL rules of the
// Gateway API CRDs (standard channel, apis/v1/*_types.go markers), with the
// field paths and messages the apiextensions apiserver gives:
// - OpenAPI bounds: `<path>: Invalid value: 0: <path> in body should be greater than or equal to 1`,
//   maxItems as `Too many: N: must have at most M items`, enums as `Unsupported value`;
// - CEL rules at the path of the object that carries them: `Invalid value: "object": <message>`
//   (`"array"` for list-level rules, `"string"` for string rules).

import type { KubeObject } from '../types.ts'
import { invalid, isRecord, items, notSupported, raw, required, tooLong, tooMany, type Causes } from './field.ts'

const obj = raw('"object"')
const array = raw('"array"')

const controllerNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/
const hostnamePattern = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const sectionNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const headerNamePattern = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/
const protocolPattern = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/
const pathChars = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/
export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const
export const filterTypes = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'] as const
const filterFields: Record<string, string> = {
  RequestHeaderModifier: 'requestHeaderModifier', ResponseHeaderModifier: 'responseHeaderModifier', RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect', URLRewrite: 'urlRewrite', ExtensionRef: 'extensionRef', CORS: 'cors',
}
export const limits = { hostnames: 16, parentRefs: 32, rules: 16, matchesPerRule: 64, matchesPerRoute: 128, headers: 16, queryParams: 16, filters: 16, backendRefs: 16, listeners: 64, certificateRefs: 64, grantEntries: 16, maxWeight: 1_000_000 }

function pattern(path: string, v: unknown, re: RegExp): Causes {
  if (typeof v !== 'string') return [invalid(path, v, 'must be a string')]
  return re.test(v) ? [] : [invalid(path, v, `${path} in body should match '${re.source}'`)]
}
function length(path: string, v: unknown, min: number, max: number): Causes {
  if (typeof v !== 'string') return v === undefined ? [] : [invalid(path, v, 'must be a string')]
  if (v.length < min) return [invalid(path, v, `${path} in body should be at least ${min} chars long`)]
  return v.length > max ? [tooLong(path, max)] : []
}
function intRange(path: string, v: unknown, min: number, max: number): Causes {
  if (v === undefined || v === null) return []
  if (typeof v !== 'number' || !Number.isInteger(v)) return [invalid(path, v, `${path} in body must be of type integer`)]
  if (v < min) return [invalid(path, v, `${path} in body should be greater than or equal to ${min}`)]
  return v > max ? [invalid(path, v, `${path} in body should be less than or equal to ${max}`)] : []
}
function maxItems(path: string, v: unknown, max: number): Causes {
  return Array.isArray(v) && v.length > max ? [tooMany(path, v.length, max)] : []
}
function enumOf(path: string, v: unknown, values: readonly string[]): Causes {
  return v === undefined || values.includes(v as string) ? [] : [notSupported(path, v, values)]
}
function hostname(path: string, v: unknown): Causes {
  const len = length(path, v, 1, 253)
  return len.length ? len : pattern(path, v, hostnamePattern)
}

export function validateGatewayClass(o: KubeObject, old?: KubeObject): Causes {
  const spec = o.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  if (spec.controllerName === undefined || spec.controllerName === '') out.push(required('spec.controllerName'))
  else out.push(...length('spec.controllerName', spec.controllerName, 1, 253), ...pattern('spec.controllerName', spec.controllerName, controllerNamePattern))
  if (old && old.spec?.controllerName !== undefined && old.spec.controllerName !== spec.controllerName) out.push(invalid('spec.controllerName', spec.controllerName, 'Value is immutable'))
  out.push(...length('spec.description', spec.description, 0, 64))
  return out
}

export function validateGateway(o: KubeObject): Causes {
  const spec = o.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  if (spec.gatewayClassName === undefined || spec.gatewayClassName === '') out.push(required('spec.gatewayClassName'))
  else out.push(...length('spec.gatewayClassName', spec.gatewayClassName, 1, 253))
  const listeners = items(spec.listeners)
  if (listeners.length === 0) out.push(required('spec.listeners'))
  out.push(...maxItems('spec.listeners', spec.listeners, limits.listeners))
  const names = new Set<string>()
  const triples = new Set<string>()
  let dupName = false
  let dupTriple = false
  for (const [i, l] of listeners.entries()) {
    const p = `spec.listeners[${i}]`
    if (!isRecord(l)) { out.push(invalid(p, l, 'must be an object')); continue }
    if (!l.name) out.push(required(`${p}.name`))
    else out.push(...length(`${p}.name`, l.name, 1, 253), ...pattern(`${p}.name`, l.name, sectionNamePattern))
    if (l.hostname !== undefined) out.push(...hostname(`${p}.hostname`, l.hostname))
    if (l.port === undefined) out.push(required(`${p}.port`))
    else out.push(...intRange(`${p}.port`, l.port, 1, 65535))
    if (!l.protocol) out.push(required(`${p}.protocol`))
    else out.push(...length(`${p}.protocol`, l.protocol, 1, 255), ...pattern(`${p}.protocol`, l.protocol, protocolPattern))
    if (isRecord(l.tls)) {
      out.push(...enumOf(`${p}.tls.mode`, l.tls.mode, ['Terminate', 'Passthrough']), ...maxItems(`${p}.tls.certificateRefs`, l.tls.certificateRefs, limits.certificateRefs))
      if ((l.tls.mode ?? 'Terminate') === 'Terminate' && items(l.tls.certificateRefs).length === 0 && !isRecord(l.tls.options))
        out.push(invalid(`${p}.tls`, obj, 'certificateRefs or options must be specified when mode is Terminate'))
      for (const [j, ref] of items(l.tls.certificateRefs).entries()) if (!ref?.name) out.push(required(`${p}.tls.certificateRefs[${j}].name`))
    }
    if (isRecord(l.allowedRoutes)) {
      const ns = l.allowedRoutes.namespaces
      if (isRecord(ns)) out.push(...enumOf(`${p}.allowedRoutes.namespaces.from`, ns.from, ['All', 'Selector', 'Same']))
      out.push(...maxItems(`${p}.allowedRoutes.kinds`, l.allowedRoutes.kinds, 8))
    }
    if (typeof l.name === 'string') { if (names.has(l.name)) dupName = true; names.add(l.name) }
    const triple = `${l.port}/${l.protocol}/${l.hostname ?? ''}`
    if (triples.has(triple)) dupTriple = true
    triples.add(triple)
  }
  if (listeners.some((l) => ['HTTP', 'TCP', 'UDP'].includes(l?.protocol) && l?.tls != null)) out.push(invalid('spec.listeners', array, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"))
  if (listeners.some((l) => l?.protocol === 'HTTPS' && isRecord(l?.tls) && (l.tls.mode ?? 'Terminate') !== 'Terminate')) out.push(invalid('spec.listeners', array, 'tls mode must be Terminate for protocol HTTPS'))
  if (listeners.some((l) => ['TCP', 'UDP'].includes(l?.protocol) && l?.hostname != null && l.hostname !== '')) out.push(invalid('spec.listeners', array, "hostname must not be specified for protocols ['TCP', 'UDP']"))
  if (dupName) out.push(invalid('spec.listeners', array, 'Listener name must be unique within the Gateway'))
  if (dupTriple) out.push(invalid('spec.listeners', array, 'Combination of port, protocol and hostname must be unique for each listener'))
  for (const [i, a] of items(spec.addresses).entries()) if (isRecord(a)) out.push(...length(`spec.addresses[${i}].value`, a.value, 1, 253))
  return out
}

export function validateHTTPRoute(o: KubeObject): Causes {
  const spec = o.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  out.push(...maxItems('spec.hostnames', spec.hostnames, limits.hostnames))
  for (const [i, h] of items(spec.hostnames).entries()) out.push(...hostname(`spec.hostnames[${i}]`, h))
  out.push(...maxItems('spec.parentRefs', spec.parentRefs, limits.parentRefs), ...parentRefs(items(spec.parentRefs)))
  const rules = items(spec.rules)
  out.push(...maxItems('spec.rules', spec.rules, limits.rules))
  let total = 0
  for (const [i, rule] of rules.entries()) {
    const p = `spec.rules[${i}]`
    if (!isRecord(rule)) { out.push(invalid(p, rule, 'must be an object')); continue }
    const matches = items(rule.matches)
    total += Math.max(1, matches.length)
    out.push(...maxItems(`${p}.matches`, rule.matches, limits.matchesPerRule))
    for (const [j, m] of matches.entries()) out.push(...match(`${p}.matches[${j}]`, m))
    out.push(...filters(`${p}.filters`, rule.filters, matches))
    out.push(...maxItems(`${p}.backendRefs`, rule.backendRefs, limits.backendRefs))
    for (const [j, b] of items(rule.backendRefs).entries()) {
      const bp = `${p}.backendRefs[${j}]`
      out.push(...backendObjectRef(bp, b), ...intRange(`${bp}.weight`, b?.weight, 0, limits.maxWeight), ...filters(`${bp}.filters`, b?.filters, matches))
    }
  }
  if (total > limits.matchesPerRoute) out.push(invalid('spec.rules', array, 'While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128'))
  return out
}

function parentRefs(refs: any[]): Causes {
  const out: Causes = []
  for (const [i, r] of refs.entries()) {
    if (!r?.name) out.push(required(`spec.parentRefs[${i}].name`))
    out.push(...intRange(`spec.parentRefs[${i}].port`, r?.port, 1, 65535))
  }
  const key = (r: any) => `${r?.kind ?? 'Gateway'}/${r?.group ?? 'gateway.networking.k8s.io'}/${r?.namespace ?? ''}/${r?.name}`
  const groups = new Map<string, any[]>()
  for (const r of refs) groups.set(key(r), [...(groups.get(key(r)) ?? []), r])
  for (const same of groups.values()) {
    if (same.length < 2) continue
    if (same.some((r) => r?.sectionName == null && r?.port == null)) out.push(invalid('spec.parentRefs', array, 'sectionName or port must be specified when parentRefs includes 2 or more references to the same parent'))
    else if (new Set(same.map((r) => `${r.sectionName ?? ''}/${r.port ?? ''}`)).size < same.length) out.push(invalid('spec.parentRefs', array, 'sectionName or port must be unique when parentRefs includes 2 or more references to the same parent'))
  }
  return out
}

function match(p: string, m: any): Causes {
  if (!isRecord(m)) return [invalid(p, m, 'must be an object')]
  const out: Causes = []
  if (isRecord(m.path)) out.push(...pathMatch(`${p}.path`, m.path))
  out.push(...enumOf(`${p}.method`, m.method, httpMethods))
  for (const [field, max, valueMax] of [['headers', limits.headers, 4096], ['queryParams', limits.queryParams, 1024]] as const) {
    out.push(...maxItems(`${p}.${field}`, m[field], max))
    const seen = new Set<string>()
    for (const [k, h] of items(m[field]).entries()) {
      const hp = `${p}.${field}[${k}]`
      out.push(...enumOf(`${hp}.type`, h?.type, ['Exact', 'RegularExpression']))
      if (!h?.name) out.push(required(`${hp}.name`))
      else out.push(...length(`${hp}.name`, h.name, 1, 256), ...pattern(`${hp}.name`, h.name, headerNamePattern))
      if (h?.value === undefined || h.value === '') out.push(required(`${hp}.value`))
      else out.push(...length(`${hp}.value`, h.value, 1, valueMax))
      if (h?.type === 'RegularExpression' && typeof h.value === 'string' && !compiles(h.value)) out.push(invalid(`${hp}.value`, h.value, 'must be a valid regular expression'))
      const name = field === 'headers' ? String(h?.name ?? '').toLowerCase() : String(h?.name ?? '')
      if (seen.has(name)) out.push(invalid(`${p}.${field}`, array, `${field === 'headers' ? 'header' : 'query param'} name must be unique within a match`))
      seen.add(name)
    }
  }
  return out
}

/** The HTTPPathMatch CEL rules. */
function pathMatch(p: string, m: Record<string, any>): Causes {
  const type = m.type ?? 'PathPrefix'
  const v = m.value ?? '/'
  const out: Causes = [...enumOf(`${p}.type`, m.type, ['Exact', 'PathPrefix', 'RegularExpression']), ...length(`${p}.value`, m.value, 0, 1024)]
  if (type === 'RegularExpression') {
    if (typeof v === 'string' && !compiles(v)) out.push(invalid(`${p}.value`, v, 'must be a valid regular expression'))
    return out
  }
  if (type !== 'Exact' && type !== 'PathPrefix' || typeof v !== 'string') return out
  const types = "when type one of ['Exact', 'PathPrefix']"
  if (!v.startsWith('/')) out.push(invalid(p, obj, `value must be an absolute path and start with '/' ${types}`))
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#']) if (v.includes(bad)) out.push(invalid(p, obj, `must not contain '${bad}' ${types}`))
  for (const end of ['/..', '/.']) if (v.endsWith(end)) out.push(invalid(p, obj, `must not end with '${end}' ${types}`))
  if (!pathChars.test(v)) out.push(invalid(p, obj, `must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']`))
  return out
}

function compiles(re: string): boolean {
  try {
    new RegExp(re)
    return true
  } catch {
    return false
  }
}

function backendObjectRef(p: string, b: any): Causes {
  if (!isRecord(b)) return [invalid(p, b, 'must be an object')]
  const out: Causes = []
  if (!b.name) out.push(required(`${p}.name`))
  else out.push(...length(`${p}.name`, b.name, 1, 253))
  out.push(...intRange(`${p}.port`, b.port, 1, 65535))
  if ((b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.port == null) out.push(invalid(p, obj, 'Must have port for Service reference'))
  return out
}

function filters(p: string, list: unknown, matches: any[]): Causes {
  const fs = items(list)
  const out: Causes = [...maxItems(p, list, limits.filters)]
  for (const [i, f] of fs.entries()) {
    const fp = `${p}[${i}]`
    if (!isRecord(f)) { out.push(invalid(fp, f, 'must be an object')); continue }
    if (!f.type) { out.push(required(`${fp}.type`)); continue }
    if (!filterTypes.includes(f.type)) { out.push(notSupported(`${fp}.type`, f.type, filterTypes)); continue }
    for (const [type, field] of Object.entries(filterFields)) {
      if (type === f.type && f[field] == null) out.push(invalid(fp, obj, `filter.${field} must be specified for ${type} filter.type`))
      if (type !== f.type && f[field] != null) out.push(invalid(fp, obj, `filter.${field} must be nil if the filter.type is not ${type}`))
    }
    const hm = f.type === 'RequestHeaderModifier' ? f.requestHeaderModifier : f.type === 'ResponseHeaderModifier' ? f.responseHeaderModifier : undefined
    if (isRecord(hm)) out.push(...headerFilter(`${fp}.${filterFields[f.type]}`, hm))
    if (f.type === 'RequestRedirect' && isRecord(f.requestRedirect)) {
      const r = f.requestRedirect
      const rp = `${fp}.requestRedirect`
      out.push(...enumOf(`${rp}.scheme`, r.scheme, ['http', 'https']), ...intRange(`${rp}.port`, r.port, 1, 65535))
      if (r.statusCode !== undefined && ![301, 302, 303, 307, 308].includes(r.statusCode)) out.push(notSupported(`${rp}.statusCode`, r.statusCode, ['301', '302', '303', '307', '308']))
      if (r.hostname !== undefined) out.push(...hostname(`${rp}.hostname`, r.hostname))
      if (isRecord(r.path)) out.push(...pathModifier(`${rp}.path`, r.path))
    }
    if (f.type === 'URLRewrite' && isRecord(f.urlRewrite)) {
      if (f.urlRewrite.hostname !== undefined) out.push(...hostname(`${fp}.urlRewrite.hostname`, f.urlRewrite.hostname))
      if (isRecord(f.urlRewrite.path)) out.push(...pathModifier(`${fp}.urlRewrite.path`, f.urlRewrite.path))
    }
    if (f.type === 'RequestMirror' && isRecord(f.requestMirror)) out.push(...backendObjectRef(`${fp}.requestMirror.backendRef`, f.requestMirror.backendRef))
  }
  const count = (t: string) => fs.filter((f) => f?.type === t).length
  if (count('RequestRedirect') > 0 && count('URLRewrite') > 0) out.push(invalid(p, array, 'May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both'))
  for (const t of ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite']) if (count(t) > 1) out.push(invalid(p, array, `${t} filter cannot be repeated`))
  const prefixOnly = matches.length === 1 && (matches[0]?.path?.type ?? 'PathPrefix') === 'PathPrefix'
  for (const [t, field, name] of [['RequestRedirect', 'requestRedirect', 'RequestRedirect'], ['URLRewrite', 'urlRewrite', 'URLRewrite']] as const) {
    if (fs.some((f) => f?.type === t && f?.[field]?.path?.type === 'ReplacePrefixMatch') && !prefixOnly)
      out.push(invalid(p, array, `When using ${name} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified`))
  }
  return out
}

function headerFilter(p: string, hm: Record<string, any>): Causes {
  const out: Causes = []
  for (const field of ['set', 'add'] as const) {
    out.push(...maxItems(`${p}.${field}`, hm[field], 16))
    for (const [i, h] of items(hm[field]).entries()) {
      if (!h?.name) out.push(required(`${p}.${field}[${i}].name`))
      else out.push(...length(`${p}.${field}[${i}].name`, h.name, 1, 256), ...pattern(`${p}.${field}[${i}].name`, h.name, headerNamePattern))
      if (typeof h?.value !== 'string') out.push(required(`${p}.${field}[${i}].value`))
      else out.push(...length(`${p}.${field}[${i}].value`, h.value, 1, 4096))
    }
  }
  out.push(...maxItems(`${p}.remove`, hm.remove, 16))
  return out
}

function pathModifier(p: string, m: Record<string, any>): Causes {
  const out: Causes = [...enumOf(`${p}.type`, m.type, ['ReplaceFullPath', 'ReplacePrefixMatch'])]
  if (!m.type) out.push(required(`${p}.type`))
  if (m.type === 'ReplaceFullPath' && m.replaceFullPath == null) out.push(invalid(p, obj, "replaceFullPath must be specified when type is set to 'ReplaceFullPath'"))
  if (m.replaceFullPath != null && m.type !== 'ReplaceFullPath') out.push(invalid(p, obj, "type must be 'ReplaceFullPath' when replaceFullPath is set"))
  if (m.type === 'ReplacePrefixMatch' && m.replacePrefixMatch == null) out.push(invalid(p, obj, "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'"))
  if (m.replacePrefixMatch != null && m.type !== 'ReplacePrefixMatch') out.push(invalid(p, obj, "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set"))
  for (const f of ['replaceFullPath', 'replacePrefixMatch']) if (typeof m[f] === 'string') out.push(...length(`${p}.${f}`, m[f], 0, 1024))
  return out
}

export function validateReferenceGrant(o: KubeObject): Causes {
  const spec = o.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  for (const side of ['from', 'to'] as const) {
    const list = items(spec[side])
    if (list.length === 0) out.push(required(`spec.${side}`))
    out.push(...maxItems(`spec.${side}`, spec[side], limits.grantEntries))
    for (const [i, e] of list.entries()) {
      const p = `spec.${side}[${i}]`
      if (typeof e?.group !== 'string') out.push(required(`${p}.group`))
      if (!e?.kind) out.push(required(`${p}.kind`))
      if (side === 'from' && !e?.namespace) out.push(required(`${p}.namespace`))
    }
  }
  return out
}

