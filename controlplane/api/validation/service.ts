// Services (ValidateService / ValidateServiceUpdate in pkg/apis/core/validation).
// ClusterIP and NodePort *allocation* is the apiserver's: here a clusterIP
// is only checked for syntax and a nodePort for the configured range. Every
// string field must be a string of its grammar (externalName an RFC 1123
// host name, IPs, CIDRs, port and class names), and no string anywhere in
// the object holds a control character (strings.ts).

import { isIP, isIPv4 } from 'node:net'
import { duplicate, forbidden, invalid, invalidEach, isRecord, items, notSupported, raw, required, stringField, text } from './field.ts'
import type { Causes } from './field.ts'
import { validatePortNumOrName, portProtocols } from './container.ts'
import { validateLabels } from './meta.ts'
import { isDNS1123Label, isQualifiedName, isRFC1123Hostname, isValidCIDR, isValidIP, isValidPortNum } from './names.ts'
import { controlCharacterErrors } from './strings.ts'
import type { KubeObject } from '../types.ts'

export interface ServiceValidationOptions {
  /** Inclusive NodePort range; Kubernetes' default is 30000-32767. */
  nodePortRange?: { min: number; max: number }
}

const serviceTypes = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort']
const affinities = ['ClientIP', 'None']
const trafficPolicies = ['Cluster', 'Local']
const ipFamilyPolicies = ['PreferDualStack', 'RequireDualStack', 'SingleStack']
const maxAffinitySeconds = 86400

export function validateService(obj: KubeObject, old?: KubeObject, opts: ServiceValidationOptions = {}): Causes {
  return [...validateServiceObject(obj, old, opts), ...validateLoadBalancerStatus(obj.status), ...controlCharacterErrors(obj)]
}

function validateServiceObject(obj: KubeObject, old: KubeObject | undefined, opts: ServiceValidationOptions): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  // As text, whatever JSON it is: it is interpolated into messages below.
  const type = spec.type === undefined || spec.type === null ? 'ClusterIP' : text(spec.type)
  const out: Causes = []
  if (!serviceTypes.includes(type)) out.push(notSupported('spec.type', type, serviceTypes))
  const headless = spec.clusterIP === 'None'
  if (!Array.isArray(spec.ports) || spec.ports.length === 0) {
    if (!headless && type !== 'ExternalName') out.push(required('spec.ports'))
  }
  out.push(...validatePorts(spec, type, opts))
  out.push(...validateClusterIP(spec, type))
  out.push(...validateExternalName(spec, type))
  out.push(...validateAffinity(spec))
  out.push(...validateTrafficPolicies(spec, type))
  out.push(...validateLabels(spec.selector, 'spec.selector'))
  items(spec.externalIPs).forEach((ip, i) => out.push(...stringField(`spec.externalIPs[${i}]`, ip, isValidIP)))
  out.push(...validateLoadBalancerFields(spec))
  if (spec.allocateLoadBalancerNodePorts != null && type !== 'LoadBalancer')
    out.push(forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'"))
  if (spec.ipFamilyPolicy != null && !ipFamilyPolicies.includes(spec.ipFamilyPolicy))
    out.push(notSupported('spec.ipFamilyPolicy', spec.ipFamilyPolicy, ipFamilyPolicies))
  items(spec.ipFamilies).forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') out.push(notSupported(`spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6']))
  })
  return [...out, ...(old ? validateServiceUpdate(obj, old) : [])]
}

/** The LoadBalancer fields Skiff does not use still have to be what they say. */
function validateLoadBalancerFields(spec: Record<string, any>): Causes {
  const out: Causes = []
  if (spec.loadBalancerIP != null && spec.loadBalancerIP !== '') out.push(...stringField('spec.loadBalancerIP', spec.loadBalancerIP, isValidIP))
  items(spec.loadBalancerSourceRanges).forEach((c, i) => out.push(...stringField(`spec.loadBalancerSourceRanges[${i}]`, typeof c === 'string' ? c.trim() : c, isValidCIDR)))
  if (spec.loadBalancerClass != null) out.push(...stringField('spec.loadBalancerClass', spec.loadBalancerClass, isQualifiedName))
  return out
}

function validatePorts(spec: Record<string, any>, type: string, opts: ServiceValidationOptions): Causes {
  const out: Causes = []
  const ports = items(spec.ports)
  const names = new Set<string>()
  const seen = new Set<string>()
  const nodePorts = new Set<string>()
  const range = opts.nodePortRange ?? { min: 30000, max: 32767 }
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`
    if (!isRecord(p)) return void out.push(invalid(at, p, 'must be an object'))
    out.push(...validatePortName(p.name, `${at}.name`, ports.length > 1, names))
    out.push(...invalidEach(`${at}.port`, p.port, isValidPortNum(p.port)))
    if (p.protocol === undefined || p.protocol === '') out.push(required(`${at}.protocol`))
    else if (!portProtocols.includes(p.protocol)) out.push(notSupported(`${at}.protocol`, p.protocol, portProtocols))
    if (p.targetPort !== undefined) out.push(...validatePortNumOrName(p.targetPort, `${at}.targetPort`))
    if (p.appProtocol != null) out.push(...stringField(`${at}.appProtocol`, p.appProtocol, isQualifiedName))
    const key = `${text(p.port)}/${text(p.protocol ?? 'TCP')}`
    if (seen.has(key)) out.push(duplicate(at, raw(`core.ServicePort{Protocol:"${text(p.protocol ?? 'TCP')}", Port:${text(p.port)}}`)))
    seen.add(key)
    out.push(...validateNodePort(p, at, type, range, nodePorts))
  })
  return out
}

function validatePortName(name: unknown, path: string, requireName: boolean, names: Set<string>): Causes {
  if (name === undefined || name === null || name === '') return requireName ? [required(path)] : []
  if (typeof name !== 'string') return [invalid(path, name, 'must be a string')]
  const out = invalidEach(path, name, isDNS1123Label(name))
  if (names.has(name)) out.push(duplicate(path, name))
  names.add(name)
  return out
}

function validateNodePort(p: Record<string, any>, at: string, type: string, range: { min: number; max: number }, seen: Set<string>): Causes {
  const np = p.nodePort
  if (np === undefined || np === null || np === 0) return []
  if (type !== 'NodePort' && type !== 'LoadBalancer') return [forbidden(`${at}.nodePort`, `may not be used when \`type\` is '${type}'`)]
  const msgs = isValidPortNum(np)
  if (msgs.length) return invalidEach(`${at}.nodePort`, np, msgs)
  if (np < range.min || np > range.max)
    return [invalid(`${at}.nodePort`, np, `provided port is not in the valid range. The range of valid ports is ${range.min}-${range.max}`)]
  const key = `${np}/${text(p.protocol ?? 'TCP')}`
  const out = seen.has(key) ? [duplicate(`${at}.nodePort`, np)] : []
  seen.add(key)
  return out
}

/** Errors are reported on clusterIPs[0] once the list exists, as Kubernetes does; else on clusterIP. */
function clusterIPPath(spec: Record<string, any>): string {
  return Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0 ? 'spec.clusterIPs[0]' : 'spec.clusterIP'
}

function validateClusterIP(spec: Record<string, any>, type: string): Causes {
  const ip = spec.clusterIP
  if (type === 'ExternalName') {
    const set = (ip !== undefined && ip !== '') || items(spec.clusterIPs).length > 0
    return set ? [forbidden(items(spec.clusterIPs).length ? 'spec.clusterIPs' : 'spec.clusterIP', 'may not be set for ExternalName services')] : []
  }
  const path = clusterIPPath(spec)
  const out: Causes = []
  items(spec.clusterIPs).forEach((ip, i) => {
    if (i > 0 || ip !== spec.clusterIP) out.push(...(ip === 'None' ? [] : stringField(`spec.clusterIPs[${i}]`, ip, isValidIP)))
  })
  const first = items(spec.clusterIPs)[0]
  if (first !== undefined && ip !== undefined && ip !== '' && first !== ip)
    out.push(invalid('spec.clusterIPs', spec.clusterIPs, 'first value must match `clusterIP`'))
  if (ip === undefined || ip === '') return out
  if (ip === 'None') {
    if (type === 'NodePort' || type === 'LoadBalancer') out.push(invalid(path, ip, `may not be set to 'None' for ${type} services`))
    return out
  }
  if (typeof ip !== 'string') return [...out, invalid(path, ip, 'must be a string')]
  const msgs = isValidIP(ip)
  if (msgs.length) return [...out, ...invalidEach(path, ip, msgs)]
  // Skiff's service network is single-stack IPv4.
  if (!isIPv4(ip)) out.push(invalid(path, ip, 'expected an IPv4 value as indicated by `ipFamilies[0]`'))
  return out
}

function validateExternalName(spec: Record<string, any>, type: string): Causes {
  if (type !== 'ExternalName') return []
  if (spec.externalName != null && typeof spec.externalName !== 'string') return [invalid('spec.externalName', spec.externalName, 'must be a string')]
  // A trailing dot marks the CNAME as fully qualified.
  const cname = typeof spec.externalName === 'string' ? spec.externalName.replace(/\.$/, '') : ''
  if (cname === '') return [required('spec.externalName')]
  // The cluster DNS answers it as a CNAME: labels over 63 characters cannot be encoded.
  return invalidEach('spec.externalName', cname, isRFC1123Hostname(cname))
}

function validateAffinity(spec: Record<string, any>): Causes {
  const aff = spec.sessionAffinity
  if (aff === undefined) return []
  if (!affinities.includes(aff)) return [notSupported('spec.sessionAffinity', aff, affinities)]
  const cfg = spec.sessionAffinityConfig
  if (aff === 'None') return cfg != null ? [forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None')] : []
  const path = 'spec.sessionAffinityConfig'
  if (!isRecord(cfg)) return [required(path, 'when session affinity type is ClientIP')]
  if (!isRecord(cfg.clientIP)) return [required(`${path}.clientIP`, 'when session affinity type is ClientIP')]
  const t = cfg.clientIP.timeoutSeconds
  if (t === undefined || t === null) return [required(`${path}.clientIP.timeoutSeconds`, 'when session affinity type is ClientIP')]
  if (!Number.isInteger(t) || t <= 0 || t > maxAffinitySeconds)
    return [invalid(`${path}.clientIP.timeoutSeconds`, t, `must be greater than 0 and less than ${maxAffinitySeconds}`)]
  return []
}

function validateTrafficPolicies(spec: Record<string, any>, type: string): Causes {
  const out: Causes = []
  const external = type === 'NodePort' || type === 'LoadBalancer' || (type === 'ClusterIP' && items(spec.externalIPs).length > 0)
  const etp = spec.externalTrafficPolicy
  if (etp !== undefined && etp !== '') {
    if (!external) out.push(invalid('spec.externalTrafficPolicy', etp, 'may only be set for externally-accessible services'))
    else if (!trafficPolicies.includes(etp)) out.push(notSupported('spec.externalTrafficPolicy', etp, trafficPolicies))
  }
  const itp = spec.internalTrafficPolicy
  if (itp !== undefined && itp !== null && type !== 'ExternalName' && !trafficPolicies.includes(itp))
    out.push(notSupported('spec.internalTrafficPolicy', itp, trafficPolicies))
  return out
}

/**
 * The ClusterIP is fixed once allocated, unless the Service moves to or from
 * ExternalName (which has none). An empty clusterIP in an update means "keep
 * it"; the apiserver copies the old value in before storing.
 */
function validateServiceUpdate(obj: KubeObject, old: KubeObject): Causes {
  const now = obj.spec ?? {}
  const before = old.spec ?? {}
  if (now.type === 'ExternalName' || before.type === 'ExternalName') return []
  const a = before.clusterIP
  const b = now.clusterIP
  if (!a || !b || a === b) return []
  return [invalid(clusterIPPath(now), b, 'may not change once set')]
}

/** `status.loadBalancer.ingress[]` of an Ingress or a Service: IPs and host names. */
export function validateLoadBalancerStatus(status: unknown): Causes {
  const lb = isRecord(status) && isRecord(status.loadBalancer) ? status.loadBalancer : {}
  const out: Causes = []
  items(lb.ingress).forEach((e, i) => {
    const at = `status.loadBalancer.ingress[${i}]`
    if (!isRecord(e)) return void out.push(invalid(at, e, 'must be an object'))
    if (e.ip != null && e.ip !== '') out.push(...stringField(`${at}.ip`, e.ip, isValidIP))
    if (e.hostname != null && e.hostname !== '') {
      out.push(...stringField(`${at}.hostname`, e.hostname, isRFC1123Hostname))
      if (typeof e.hostname === 'string' && isIP(e.hostname)) out.push(invalid(`${at}.hostname`, e.hostname, 'must be a DNS name, not an IP address'))
    }
  })
  return out
}
