// Ingress and IngressClass (pkg/apis/networking/validation). Hosts are DNS
// names (RFC 1123: labels of at most 63 characters) or `*.` wildcards of
// exactly one leftmost label, never IPs or host:port. Paths of every
// pathType follow RFC 3986's absolute-path grammar (names.ts isHTTPPath):
// Skiff serves ImplementationSpecific as Prefix, so the same grammar holds.
// Every string field must be a string, and no string anywhere in the object
// holds a control character (strings.ts).

import { isIP } from 'node:net'
import { canonical, immutableMsg, invalid, invalidEach, isRecord, items, notSupported, raw, required, stringField, tooLong } from './field.ts'
import type { Causes } from './field.ts'
import { encodedSlashMsg, isDNS1035Label, isDNS1123Subdomain, isHTTPPath, isIngressHost, isRFC1123Hostname, isValidIP, isValidPortName, isValidPortNum, regexError } from './names.ts'
import { validateLoadBalancerStatus } from './service.ts'
import { controlCharacterErrors } from './strings.ts'
import type { KubeObject } from '../types.ts'

const pathTypes = ['Exact', 'ImplementationSpecific', 'Prefix']
const invalidPathSequences = ['//', '/./', '/../', '%2f', '%2F']
const invalidPathSuffixes = ['/..', '/.']

export function validateIngress(obj: KubeObject): Causes {
  return [...validateIngressSpec(obj.spec), ...validateLoadBalancerStatus(obj.status), ...controlCharacterErrors(obj)]
}

function validateIngressSpec(spec: unknown): Causes {
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  const rules = items(spec.rules)
  if (rules.length === 0 && spec.defaultBackend == null)
    out.push(invalid('spec', raw('[]networking.IngressRule(nil)'), 'either `defaultBackend` or `rules` must be specified'))
  if (spec.ingressClassName != null) out.push(...stringField('spec.ingressClassName', spec.ingressClassName, isDNS1123Subdomain))
  if (spec.defaultBackend != null) out.push(...validateBackend(spec.defaultBackend, 'spec.defaultBackend'))
  rules.forEach((r, i) => out.push(...validateRule(r, `spec.rules[${i}]`)))
  items(spec.tls).forEach((t, i) => out.push(...validateTLS(t, `spec.tls[${i}]`)))
  return out
}

/** A rule host: an RFC 1123 host name, or `*.` followed by one; not an IP. */
export function hostErrors(host: string): string[] {
  const errs: string[] = []
  if (isIP(host)) errs.push('must be a DNS name, not an IP address')
  errs.push(...isIngressHost(host))
  return errs
}

function validateRule(rule: unknown, path: string): Causes {
  if (!isRecord(rule)) return [invalid(path, rule, 'must be an object')]
  const out: Causes = []
  if (rule.host != null && rule.host !== '') out.push(...stringField(`${path}.host`, rule.host, hostErrors))
  if (rule.http == null) return out
  const paths = isRecord(rule.http) ? items(rule.http.paths) : []
  if (paths.length === 0) out.push(required(`${path}.http.paths`))
  paths.forEach((p, i) => out.push(...validatePath(p, `${path}.http.paths[${i}]`)))
  return out
}

function validatePath(p: unknown, path: string): Causes {
  if (!isRecord(p)) return [invalid(path, p, 'must be an object')]
  if (p.pathType === undefined || p.pathType === null || p.pathType === '') return [required(`${path}.pathType`, 'pathType must be specified')]
  const out: Causes = []
  if (p.path != null && typeof p.path !== 'string') out.push(invalid(`${path}.path`, p.path, 'must be a string'))
  const value = typeof p.path === 'string' ? p.path : ''
  if (p.pathType === 'Exact' || p.pathType === 'Prefix') {
    if (!value.startsWith('/')) out.push(invalid(`${path}.path`, value, 'must be an absolute path'))
    for (const seq of invalidPathSequences) if (value.includes(seq)) out.push(invalid(`${path}.path`, value, `must not contain '${seq}'`))
    for (const suf of invalidPathSuffixes) if (value.endsWith(suf)) out.push(invalid(`${path}.path`, value, `cannot end with '${suf}'`))
    if (value.startsWith('/')) out.push(...invalidEach(`${path}.path`, value, isHTTPPath(value).filter((m) => m !== encodedSlashMsg)))
  } else if (p.pathType === 'ImplementationSpecific') {
    if (value !== '' && !value.startsWith('/')) out.push(invalid(`${path}.path`, value, 'must be an absolute path'))
    else if (value !== '') out.push(...invalidEach(`${path}.path`, value, isHTTPPath(value)))
  } else out.push(notSupported(`${path}.pathType`, p.pathType, pathTypes))
  out.push(...validateBackend(p.backend, `${path}.backend`))
  return out
}

/** Exactly one of a Service (by name, with a port number or name) or a typed resource. */
export function validateBackend(b: unknown, path: string): Causes {
  if (!isRecord(b)) return [invalid(path, '', 'resource or service backend is required')]
  const hasService = b.service != null
  const hasResource = b.resource != null
  if (hasService && hasResource) return [invalid(path, '', 'cannot set both resource and service backends')]
  if (hasResource) return validateResourceRef(b.resource, `${path}.resource`)
  if (!hasService) return [invalid(path, '', 'resource or service backend is required')]
  const svc = isRecord(b.service) ? b.service : {}
  const out: Causes = []
  if (svc.name === undefined || svc.name === null || svc.name === '') out.push(required(`${path}.service.name`))
  else out.push(...stringField(`${path}.service.name`, svc.name, isDNS1035Label))
  const port = isRecord(svc.port) ? svc.port : {}
  const hasName = port.name !== undefined && port.name !== null && port.name !== ''
  const hasNumber = port.number !== undefined && port.number !== null && port.number !== 0
  if (hasName && hasNumber) out.push(invalid(path, '', 'cannot set both port name & port number'))
  else if (hasName) out.push(...stringField(`${path}.service.port.name`, port.name, isValidPortName))
  else if (hasNumber) out.push(...invalidEach(`${path}.service.port.number`, port.number, isValidPortNum(port.number)))
  else out.push(required(path, 'port name or number is required'))
  return out
}

function validateResourceRef(r: unknown, path: string): Causes {
  if (!isRecord(r)) return [invalid(path, r, 'must be an object')]
  const out: Causes = []
  if (typeof r.kind !== 'string' || r.kind === '') out.push(required(`${path}.kind`))
  if (typeof r.name !== 'string' || r.name === '') out.push(required(`${path}.name`))
  else out.push(...invalidEach(`${path}.name`, r.name, isDNS1123Subdomain(r.name)))
  if (r.apiGroup != null && r.apiGroup !== '') out.push(...stringField(`${path}.apiGroup`, r.apiGroup, isDNS1123Subdomain))
  return out
}

function validateTLS(t: unknown, path: string): Causes {
  if (!isRecord(t)) return [invalid(path, t, 'must be an object')]
  const out: Causes = []
  // TLS hosts are names on a certificate, so IPs are not rejected here (as in Kubernetes).
  items(t.hosts).forEach((h, i) => out.push(...stringField(`${path}.hosts[${i}]`, h, isIngressHost)))
  if (t.secretName != null && t.secretName !== '') out.push(...stringField(`${path}.secretName`, t.secretName, isDNS1123Subdomain))
  return out
}

const maxControllerLength = 250
const httpPathFmt = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"

export function validateIngressClass(obj: KubeObject, old?: KubeObject): Causes {
  return [...validateIngressClassSpec(obj, old), ...controlCharacterErrors(obj)]
}

function validateIngressClassSpec(obj: KubeObject, old?: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec.controller')]
  const out = validateController(spec.controller, 'spec.controller')
  const params = spec.parameters
  if (params != null) {
    const p = isRecord(params) ? params : {}
    if (typeof p.kind !== 'string' || p.kind === '') out.push(required('spec.parameters.kind'))
    if (typeof p.name !== 'string' || p.name === '') out.push(required('spec.parameters.name'))
    if (p.scope !== undefined && p.scope !== 'Cluster' && p.scope !== 'Namespace') out.push(notSupported('spec.parameters.scope', p.scope, ['Cluster', 'Namespace']))
    if (p.scope === 'Namespace' && !p.namespace) out.push(required('spec.parameters.namespace', '`parameters.scope` is set to "Namespace"'))
  }
  if (old && canonical(old.spec?.controller) !== canonical(spec.controller)) out.push(invalid('spec.controller', spec.controller, immutableMsg))
  return out
}

/** A domain-prefixed path such as `skiff.dev/ingress-external`. */
function validateController(c: unknown, path: string): Causes {
  if (typeof c !== 'string' || c === '') return [required(path)]
  const out: Causes = c.length > maxControllerLength ? [tooLong(path, maxControllerLength)] : []
  const slash = c.indexOf('/')
  if (slash <= 0 || slash === c.length - 1) return [...out, invalid(path, c, 'must be a domain-prefixed path (such as "acme.io/foo")')]
  const host = c.slice(0, slash)
  const rest = c.slice(slash + 1)
  out.push(...invalidEach(path, host, isDNS1123Subdomain(host)))
  if (!new RegExp(`^${httpPathFmt}$`).test(rest)) out.push(invalid(path, rest, regexError('Invalid path', httpPathFmt)))
  return out
}
