// One container of a pod spec: name, image, ports, env, mounts, probes and
// resources, following pkg/apis/core/validation (validateContainerCommon).

import { duplicate, forbidden, invalid, invalidEach, isRecord, items, keyPath, nonNegative, notFound, notSupported, required, text } from './field.ts'
import type { Causes } from './field.ts'
import { isConfigMapKey, isDNS1123Label, isDNS1123Subdomain, isEnvVarName, isValidPortName, isValidPortNum } from './names.ts'
import { parseQuantity, quantityFormatMsg } from './quantity.ts'

export const portProtocols = ['SCTP', 'TCP', 'UDP']
const pullPolicies = ['Always', 'IfNotPresent', 'Never']
const messagePolicies = ['FallbackToLogsOnError', 'File']

export interface ContainerScope {
  /** Volume names declared by the pod, for volumeMounts. */
  volumes: ReadonlySet<string>
  /** Container names seen so far across containers and initContainers. */
  names: Set<string>
  /** Probes are meaningless on (non-sidecar) init containers. */
  init: boolean
}

export function validateContainer(c: unknown, path: string, scope: ContainerScope): Causes {
  if (!isRecord(c)) return [invalid(path, c, 'must be an object')]
  const out: Causes = [...validateContainerName(c.name, `${path}.name`, scope.names)]
  if (typeof c.image !== 'string' || c.image === '') out.push(required(`${path}.image`))
  else if (c.image.trim() !== c.image) out.push(invalid(`${path}.image`, c.image, 'must not have leading or trailing whitespace'))
  if (c.imagePullPolicy !== undefined && !pullPolicies.includes(c.imagePullPolicy))
    out.push(notSupported(`${path}.imagePullPolicy`, c.imagePullPolicy, pullPolicies))
  if (c.terminationMessagePolicy !== undefined && !messagePolicies.includes(c.terminationMessagePolicy))
    out.push(notSupported(`${path}.terminationMessagePolicy`, c.terminationMessagePolicy, messagePolicies))
  out.push(...validateContainerPorts(c.ports, `${path}.ports`))
  out.push(...validateEnv(c.env, `${path}.env`))
  out.push(...validateEnvFrom(c.envFrom, `${path}.envFrom`))
  out.push(...validateVolumeMounts(c.volumeMounts, `${path}.volumeMounts`, scope.volumes))
  out.push(...validateResources(c.resources, `${path}.resources`))
  out.push(...validateProbes(c, path, scope.init && c.restartPolicy !== 'Always'))
  return out
}

function validateContainerName(name: unknown, path: string, names: Set<string>): Causes {
  if (typeof name !== 'string' || name === '') return [required(path)]
  const out = invalidEach(path, name, isDNS1123Label(name))
  if (names.has(name)) out.push(duplicate(path, name))
  names.add(name)
  return out
}

export function validateContainerPorts(ports: unknown, path: string): Causes {
  const out: Causes = []
  const names = new Set<string>()
  const seen = new Set<string>()
  items(ports).forEach((p, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(p)) return void out.push(invalid(at, p, 'must be an object'))
    if (typeof p.name === 'string' && p.name !== '') {
      const msgs = isValidPortName(p.name)
      if (msgs.length) out.push(...invalidEach(`${at}.name`, p.name, msgs))
      else if (names.has(p.name)) out.push(duplicate(`${at}.name`, p.name))
      names.add(p.name)
    }
    if (p.containerPort === undefined || p.containerPort === 0) out.push(required(`${at}.containerPort`))
    else out.push(...invalidEach(`${at}.containerPort`, p.containerPort, isValidPortNum(p.containerPort)))
    if (p.hostPort !== undefined && p.hostPort !== 0) out.push(...invalidEach(`${at}.hostPort`, p.hostPort, isValidPortNum(p.hostPort)))
    if (p.protocol === undefined || p.protocol === '') out.push(required(`${at}.protocol`))
    else if (!portProtocols.includes(p.protocol)) out.push(notSupported(`${at}.protocol`, p.protocol, portProtocols))
    // Ports are merged by containerPort in strategic merge patch, so a repeat would be lost.
    const key = `${text(p.containerPort)}/${text(p.protocol ?? 'TCP')}`
    if (seen.has(key)) out.push(duplicate(`${at}.containerPort`, key))
    seen.add(key)
  })
  return out
}

function validateEnv(env: unknown, path: string): Causes {
  const out: Causes = []
  items(env).forEach((e, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(e)) return void out.push(invalid(at, e, 'must be an object'))
    if (typeof e.name !== 'string' || e.name === '') out.push(required(`${at}.name`))
    else out.push(...invalidEach(`${at}.name`, e.name, isEnvVarName(e.name)))
    if (e.valueFrom !== undefined && e.valueFrom !== null) out.push(...validateValueFrom(e, `${at}.valueFrom`))
  })
  return out
}

const fieldRefPaths = ['metadata.annotations', 'metadata.labels', 'metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs']

function validateValueFrom(e: Record<string, any>, path: string): Causes {
  const vf = isRecord(e.valueFrom) ? e.valueFrom : {}
  const out: Causes = []
  const sources = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'].filter((k) => isRecord(vf[k]))
  if (isRecord(vf.fieldRef)) {
    const fp = vf.fieldRef.fieldPath
    const subscript = typeof fp === 'string' && /^metadata\.(labels|annotations)\['[^']+'\]$/.test(fp)
    if (typeof fp !== 'string' || fp === '') out.push(required(`${path}.fieldRef.fieldPath`))
    else if (!subscript && !fieldRefPaths.includes(fp)) out.push(notSupported(`${path}.fieldRef.fieldPath`, fp, fieldRefPaths))
  }
  for (const ref of ['configMapKeyRef', 'secretKeyRef']) {
    const r = vf[ref]
    if (!isRecord(r)) continue
    const name = typeof r.name === 'string' ? r.name : ''
    out.push(...invalidEach(`${path}.${ref}.name`, name, isDNS1123Subdomain(name)))
    if (typeof r.key !== 'string' || r.key === '') out.push(required(`${path}.${ref}.key`))
    else out.push(...invalidEach(`${path}.${ref}.key`, r.key, isConfigMapKey(r.key)))
  }
  if (sources.length === 0) out.push(invalid(path, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'))
  else if (typeof e.value === 'string' && e.value !== '') out.push(invalid(path, '', 'may not be specified when `value` is not empty'))
  else if (sources.length > 1) out.push(invalid(path, '', 'may not have more than one field specified at a time'))
  return out
}

function validateEnvFrom(envFrom: unknown, path: string): Causes {
  const out: Causes = []
  items(envFrom).forEach((e, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(e)) return void out.push(invalid(at, e, 'must be an object'))
    if (typeof e.prefix === 'string' && e.prefix !== '') out.push(...invalidEach(`${at}.prefix`, e.prefix, isEnvVarName(e.prefix)))
    const refs = ['configMapRef', 'secretRef'].filter((k) => isRecord(e[k]))
    if (refs.length === 0) out.push(invalid(at, '', 'must specify one of: `configMapRef` or `secretRef`'))
    else if (refs.length > 1) out.push(invalid(at, '', 'may not have more than one field specified at a time'))
    for (const k of refs) {
      const name = typeof e[k].name === 'string' ? e[k].name : ''
      out.push(...invalidEach(`${at}.${k}.name`, name, isDNS1123Subdomain(name)))
    }
  })
  return out
}

function validateVolumeMounts(mounts: unknown, path: string, volumes: ReadonlySet<string>): Causes {
  const out: Causes = []
  const points = new Set<string>()
  items(mounts).forEach((m, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(m)) return void out.push(invalid(at, m, 'must be an object'))
    if (typeof m.name !== 'string' || m.name === '') out.push(required(`${at}.name`))
    if (!volumes.has(m.name)) out.push(notFound(`${at}.name`, m.name ?? ''))
    if (typeof m.mountPath !== 'string' || m.mountPath === '') out.push(required(`${at}.mountPath`))
    else if (points.has(m.mountPath)) out.push(invalid(`${at}.mountPath`, m.mountPath, 'must be unique'))
    points.add(m.mountPath)
    if (typeof m.subPath === 'string' && (m.subPath.startsWith('/') || m.subPath.split('/').includes('..')))
      out.push(invalid(`${at}.subPath`, m.subPath, "must be a relative path without '..'"))
  })
  return out
}

const containerResources = new Set(['cpu', 'memory', 'ephemeral-storage'])

function validateResources(res: unknown, path: string): Causes {
  if (!isRecord(res)) return []
  const out: Causes = []
  const values: Record<string, Record<string, number>> = { limits: {}, requests: {} }
  for (const kind of ['limits', 'requests'] as const) {
    const list = res[kind]
    if (list === undefined || list === null) continue
    if (!isRecord(list)) {
      out.push(invalid(`${path}.${kind}`, list, 'must be a map of resource names to quantities'))
      continue
    }
    for (const [name, q] of Object.entries(list)) {
      const at = keyPath(`${path}.${kind}`, name)
      if (!name.includes('/') && !containerResources.has(name) && !name.startsWith('hugepages-'))
        out.push(invalid(at, name, 'must be a standard resource for containers'))
      const n = parseQuantity(q)
      if (n === undefined) out.push(invalid(at, q, quantityFormatMsg))
      else if (n < 0) out.push(invalid(at, q, 'must be greater than or equal to 0'))
      else values[kind][name] = n
    }
  }
  for (const [name, req] of Object.entries(values.requests)) {
    const lim = values.limits[name]
    if (lim !== undefined && req > lim)
      out.push(invalid(`${path}.requests`, text(res.requests[name]), `must be less than or equal to ${name} limit of ${res.limits[name]}`))
  }
  return out
}

function validateProbes(c: Record<string, any>, path: string, isInit: boolean): Causes {
  const out: Causes = []
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    if (c[probe] === undefined || c[probe] === null) continue
    if (isInit) {
      out.push(forbidden(`${path}.${probe}`, 'may not be set for init containers without restartPolicy=Always'))
      continue
    }
    out.push(...validateProbe(c[probe], `${path}.${probe}`))
    if (probe !== 'readinessProbe' && c[probe]?.successThreshold !== undefined && c[probe].successThreshold !== 1)
      out.push(invalid(`${path}.${probe}.successThreshold`, c[probe].successThreshold, 'must be 1'))
  }
  for (const hook of ['postStart', 'preStop']) {
    const h = isRecord(c.lifecycle) ? c.lifecycle[hook] : undefined
    if (h !== undefined && h !== null) out.push(...validateHandler(h, `${path}.lifecycle.${hook}`, ['exec', 'httpGet', 'tcpSocket', 'sleep']))
  }
  return out
}

function validateProbe(p: unknown, path: string): Causes {
  if (!isRecord(p)) return [invalid(path, p, 'must be an object')]
  const out = validateHandler(p, path, ['exec', 'httpGet', 'tcpSocket', 'grpc'])
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'])
    out.push(...nonNegative(`${path}.${f}`, p[f]))
  return out
}

/** Exactly one handler; the second one found is the one reported, as Kubernetes does. */
function validateHandler(h: unknown, path: string, kinds: string[]): Causes {
  if (!isRecord(h)) return [invalid(path, h, 'must be an object')]
  const present = kinds.filter((k) => h[k] !== undefined && h[k] !== null)
  if (present.length === 0) return [required(path, 'must specify a handler type')]
  const out: Causes = present.slice(1).map((k) => forbidden(`${path}.${k}`, 'may not specify more than 1 handler type'))
  const [kind] = present
  const at = `${path}.${kind}`
  const a = isRecord(h[kind]) ? h[kind] : {}
  if (kind === 'exec' && items(a.command).length === 0) out.push(required(`${at}.command`))
  if (kind === 'httpGet') {
    if (a.path === undefined || a.path === '') out.push(required(`${at}.path`))
    if (a.scheme !== undefined && !['HTTP', 'HTTPS'].includes(a.scheme)) out.push(notSupported(`${at}.scheme`, a.scheme, ['HTTP', 'HTTPS']))
  }
  if (kind === 'httpGet' || kind === 'tcpSocket') out.push(...validatePortNumOrName(a.port, `${at}.port`))
  if (kind === 'grpc') out.push(...invalidEach(`${at}.port`, a.port, isValidPortNum(a.port)))
  if (kind === 'sleep') out.push(...nonNegative(`${at}.seconds`, a.seconds))
  return out
}

/** An IntOrString port: a number 1-65535 or an IANA service name. */
export function validatePortNumOrName(port: unknown, path: string): Causes {
  if (typeof port === 'number') return invalidEach(path, port, isValidPortNum(port))
  if (typeof port === 'string') return invalidEach(path, port, isValidPortName(port))
  return [required(path)]
}
