// The smaller kinds: ConfigMap, Secret, Namespace, Node, Lease, Endpoints,
// EndpointSlice, Event and ServiceAccount.

import { canonical, duplicate, forbidden, immutableMsg, invalid, invalidEach, isRecord, items, keyPath, notSupported, required, text, tooLong, tooMany } from './field.ts'
import type { Causes } from './field.ts'
import { validateFinalizers } from './meta.ts'
import { portProtocols } from './container.ts'
import {
  isConfigMapKey, isDNS1123Label, isDNS1123Subdomain, isFullyQualifiedDomainName, isValidCIDR, isValidIP, isValidIPv4, isValidIPv6, isValidPortNum,
} from './names.ts'
import type { KubeObject } from '../types.ts'

/** ConfigMaps and Secrets share etcd's (and Redis') comfortable object size. */
export const maxDataSize = 1024 * 1024

function validateKeys(data: unknown, path: string): Causes {
  if (data === undefined || data === null) return []
  if (!isRecord(data)) return [invalid(path, data, 'must be a map of keys to values')]
  return Object.keys(data).flatMap((k) => invalidEach(keyPath(path, k), k, isConfigMapKey(k)))
}

/** `immutable: true` freezes the data and the flag itself. */
function immutableData(obj: KubeObject, old?: KubeObject): Causes {
  if (!old || old.immutable !== true) return []
  const out: Causes = []
  if (obj.immutable !== true) out.push(forbidden('immutable', 'field is immutable when `immutable` is set'))
  for (const f of ['data', 'binaryData'])
    if (canonical(obj[f] ?? {}) !== canonical(old[f] ?? {})) out.push(forbidden(f, 'field is immutable when `immutable` is set'))
  return out
}

export function validateConfigMap(obj: KubeObject, old?: KubeObject): Causes {
  const out = [...validateKeys(obj.data, 'data'), ...validateKeys(obj.binaryData, 'binaryData')]
  const data = isRecord(obj.data) ? obj.data : {}
  const binary = isRecord(obj.binaryData) ? obj.binaryData : {}
  let size = 0
  for (const [k, v] of Object.entries(data)) {
    if (Object.hasOwn(binary, k)) out.push(invalid(keyPath('data', k), k, 'duplicate of key present in binaryData'))
    if (typeof v !== 'string') out.push(invalid(keyPath('data', k), v, 'must be a string'))
    size += text(v).length
  }
  for (const v of Object.values(binary)) size += decodedLength(v) ?? 0
  if (size > maxDataSize) out.push(tooLong('data', maxDataSize))
  return [...out, ...immutableData(obj, old)]
}

const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Byte length of a base64 value (Go's decoder ignores line breaks), or undefined if it is not base64. */
function decodedLength(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined
  const s = v.replace(/[\r\n]/g, '')
  return base64Re.test(s) ? Buffer.from(s, 'base64').length : undefined
}

/** Keys each built-in Secret type must carry. */
const secretTypeKeys: Record<string, string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
}

export function validateSecret(obj: KubeObject, old?: KubeObject): Causes {
  const out = [...validateKeys(obj.data, 'data'), ...validateKeys(obj.stringData, 'stringData')]
  const data = isRecord(obj.data) ? obj.data : {}
  const strings = isRecord(obj.stringData) ? obj.stringData : {}
  let size = 0
  for (const [k, v] of Object.entries(data)) {
    const n = decodedLength(v)
    if (n === undefined) out.push(invalid(keyPath('data', k), '<secret contents redacted>', 'must be a base64-encoded string'))
    size += n ?? 0
  }
  for (const v of Object.values(strings)) size += Buffer.byteLength(text(v))
  if (size > maxDataSize) out.push(tooLong('data', maxDataSize))
  const type = obj.type ?? 'Opaque'
  const has = (k: string) => Object.hasOwn(data, k) || Object.hasOwn(strings, k)
  for (const k of (typeof type === 'string' && Object.hasOwn(secretTypeKeys, type) ? secretTypeKeys[type] : undefined) ?? []) if (!has(k)) out.push(required(keyPath('data', k)))
  if (type === 'kubernetes.io/basic-auth' && !has('username') && !has('password')) out.push(required('data[username]'), required('data[password]'))
  if (type === 'kubernetes.io/service-account-token' && !obj.metadata?.annotations?.['kubernetes.io/service-account.name'])
    out.push(required('metadata.annotations[kubernetes.io/service-account.name]'))
  if (old && (old.type ?? 'Opaque') !== type) out.push(invalid('type', type, immutableMsg))
  return [...out, ...immutableData(obj, old)]
}

export function validateNamespace(obj: KubeObject): Causes {
  return isRecord(obj.spec) ? validateFinalizers(obj.spec.finalizers, 'spec.finalizers') : []
}

export function validateNode(obj: KubeObject): Causes {
  const spec = isRecord(obj.spec) ? obj.spec : {}
  const out: Causes = []
  if (typeof spec.podCIDR === 'string' && spec.podCIDR !== '') out.push(...invalidEach('spec.podCIDR', spec.podCIDR, isValidCIDR(spec.podCIDR)))
  items(spec.podCIDRs).forEach((c, i) => out.push(...invalidEach(`spec.podCIDRs[${i}]`, c, isValidCIDR(text(c)))))
  return out
}

export function validateLease(obj: KubeObject): Causes {
  const spec = isRecord(obj.spec) ? obj.spec : {}
  const out: Causes = []
  const d = spec.leaseDurationSeconds
  if (d !== undefined && d !== null && !(Number.isInteger(d) && d > 0)) out.push(invalid('spec.leaseDurationSeconds', d, 'must be greater than 0'))
  const t = spec.leaseTransitions
  if (t !== undefined && t !== null && !(Number.isInteger(t) && t >= 0)) out.push(invalid('spec.leaseTransitions', t, 'must be greater than or equal to 0'))
  return out
}

const addressTypes = ['FQDN', 'IPv4', 'IPv6']
const addressRules: Record<string, (v: string) => string[]> = { IPv4: isValidIPv4, IPv6: isValidIPv6, FQDN: isFullyQualifiedDomainName }

export function validateEndpointSlice(obj: KubeObject, old?: KubeObject): Causes {
  const out: Causes = []
  const type = obj.addressType
  if (type === undefined || type === '') out.push(required('addressType'))
  else if (!addressTypes.includes(type)) out.push(notSupported('addressType', type, addressTypes))
  const endpoints = items(obj.endpoints)
  if (endpoints.length > 1000) out.push(tooMany('endpoints', endpoints.length, 1000))
  // Own keys only: an addressType of `toString` must not find Object.prototype's (it threw).
  const rule = typeof type === 'string' && Object.hasOwn(addressRules, type) ? addressRules[type] : undefined
  endpoints.forEach((e, i) => out.push(...validateSliceEndpoint(e, `endpoints[${i}]`, rule)))
  out.push(...validateSlicePorts(obj.ports))
  if (old && old.addressType !== type) out.push(invalid('addressType', type, immutableMsg))
  return out
}

function validateSliceEndpoint(e: unknown, path: string, rule?: (v: string) => string[]): Causes {
  if (!isRecord(e)) return [invalid(path, e, 'must be an object')]
  const out: Causes = []
  const addrs = items(e.addresses)
  if (addrs.length === 0) out.push(required(`${path}.addresses`, 'must contain at least 1 address'))
  else if (addrs.length > 100) out.push(tooMany(`${path}.addresses`, addrs.length, 100))
  if (rule) addrs.forEach((a, i) => out.push(...invalidEach(`${path}.addresses[${i}]`, a, rule(text(a)))))
  if (typeof e.nodeName === 'string') out.push(...invalidEach(`${path}.nodeName`, e.nodeName, isDNS1123Subdomain(e.nodeName)))
  if (typeof e.hostname === 'string') out.push(...invalidEach(`${path}.hostname`, e.hostname, isDNS1123Label(e.hostname)))
  return out
}

function validateSlicePorts(ports: unknown): Causes {
  const out: Causes = []
  const names = new Set<string>()
  items(ports).forEach((p, i) => {
    const at = `ports[${i}]`
    if (!isRecord(p)) return void out.push(invalid(at, p, 'must be an object'))
    const name = typeof p.name === 'string' ? p.name : ''
    if (name !== '') out.push(...invalidEach(`${at}.name`, name, isDNS1123Label(name)))
    if (names.has(name)) out.push(duplicate(`${at}.name`, name))
    names.add(name)
    if (p.protocol === undefined || p.protocol === null) out.push(required(`${at}.protocol`))
    else if (!portProtocols.includes(p.protocol)) out.push(notSupported(`${at}.protocol`, p.protocol, portProtocols))
    if (p.port !== undefined && p.port !== null) out.push(...invalidEach(`${at}.port`, p.port, isValidPortNum(p.port)))
  })
  return out
}

export function validateEndpoints(obj: KubeObject): Causes {
  const out: Causes = []
  items(obj.subsets).forEach((s, i) => {
    const at = `subsets[${i}]`
    for (const list of ['addresses', 'notReadyAddresses'])
      items(s?.[list]).forEach((a, j) => out.push(...invalidEach(`${at}.${list}[${j}].ip`, a?.ip ?? '', isValidIP(text(a?.ip ?? '')))))
    const ports = items(s?.ports)
    ports.forEach((p, j) => {
      const pp = `${at}.ports[${j}]`
      if (ports.length > 1 && !p?.name) out.push(required(`${pp}.name`))
      if (p?.name) out.push(...invalidEach(`${pp}.name`, p.name, isDNS1123Label(text(p.name))))
      out.push(...invalidEach(`${pp}.port`, p?.port, isValidPortNum(p?.port)))
      if (p?.protocol !== undefined && !portProtocols.includes(p.protocol)) out.push(notSupported(`${pp}.protocol`, p.protocol, portProtocols))
    })
  })
  return out
}

/**
 * Events about cluster-scoped objects (Nodes) live in `default`; otherwise
 * the event's namespace is its object's.
 */
export function validateEvent(obj: KubeObject): Causes {
  const io = obj.involvedObject
  if (!isRecord(io)) return [required('involvedObject')]
  const ns = obj.metadata?.namespace ?? ''
  const ions = typeof io.namespace === 'string' ? io.namespace : ''
  const ok = ions === '' ? ns === '' || ns === 'default' : ns === ions
  return ok ? [] : [invalid('involvedObject.namespace', ions, 'does not match event.namespace')]
}

export function validateServiceAccount(obj: KubeObject): Causes {
  const out: Causes = []
  items(obj.secrets).forEach((s, i) => {
    if (typeof s?.name === 'string' && s.name !== '') out.push(...invalidEach(`secrets[${i}].name`, s.name, isDNS1123Subdomain(s.name)))
  })
  return out
}
