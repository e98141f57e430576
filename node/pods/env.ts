// Container environment as Kubernetes builds it (pure): envFrom first, then
// env entries in order, later names overriding earlier ones; `$(VAR)`
// references to variables defined before, or to a service variable, are
// expanded (`$$` escapes); then the service variables the container did not
// set itself (the kubelet's docker-links style variables: every Service of
// the pod's namespace with a cluster IP while enableServiceLinks, and always
// default/kubernetes, so KUBERNETES_SERVICE_HOST/PORT lead to the API). A
// missing ConfigMap, Secret or key that is not optional is a
// ContainerConfigError, shown as CreateContainerConfigError.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { parseQuantity } from '../../controlplane/api/validation.ts'

export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError'
}

export interface EnvSources {
  /** Fetched objects by name; null when the API said NotFound. */
  configMaps: ReadonlyMap<string, KubeObject | null>
  secrets: ReadonlyMap<string, KubeObject | null>
  podIP?: string
  hostIP: string
  /** Node allocatable, for resourceFieldRef of a resource without a limit. */
  allocatable: { cpu: number; memory: number }
  /** Services whose variables the container gets (serviceEnv picks which). */
  services?: readonly KubeObject[]
}

/**
 * The kubelet's service variables for a pod in `namespace`: every Service of
 * that namespace with a cluster IP (not headless, not ExternalName) while
 * `enableServiceLinks`, and default/kubernetes always (it wins over a
 * `kubernetes` Service of the pod's own namespace).
 */
export function serviceEnv(services: readonly KubeObject[], namespace: string, enableServiceLinks: boolean): Map<string, string> {
  const linkable = services.filter((svc) => svc.spec?.clusterIP && svc.spec.clusterIP !== 'None' && svc.spec.type !== 'ExternalName')
  const chosen = new Map<string, KubeObject>()
  if (enableServiceLinks) for (const svc of linkable) if (svc.metadata.namespace === namespace) chosen.set(svc.metadata.name!, svc)
  const api = linkable.find((svc) => svc.metadata.namespace === 'default' && svc.metadata.name === 'kubernetes')
  if (api) chosen.set('kubernetes', api)
  const env = new Map<string, string>()
  for (const svc of [...chosen.values()].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))) {
    const prefix = svc.metadata.name!.toUpperCase().replaceAll('-', '_')
    const ip = String(svc.spec.clusterIP)
    const ports: any[] = Array.isArray(svc.spec.ports) ? svc.spec.ports : []
    if (ports.length === 0) continue
    env.set(`${prefix}_SERVICE_HOST`, ip)
    env.set(`${prefix}_SERVICE_PORT`, String(ports[0].port))
    for (const p of ports) if (p.name) env.set(`${prefix}_SERVICE_PORT_${String(p.name).toUpperCase().replaceAll('-', '_')}`, String(p.port))
    const proto = (p: any) => String(p.protocol ?? 'TCP').toLowerCase()
    env.set(`${prefix}_PORT`, `${proto(ports[0])}://${ip}:${ports[0].port}`)
    for (const p of ports) {
      const base = `${prefix}_PORT_${p.port}_${proto(p).toUpperCase()}`
      env.set(base, `${proto(p)}://${ip}:${p.port}`)
      env.set(`${base}_PROTO`, proto(p))
      env.set(`${base}_PORT`, String(p.port))
      env.set(`${base}_ADDR`, ip)
    }
  }
  return env
}

/** `$(VAR)` expansion as in Kubernetes: undefined references stay as written. */
export function expandVars(s: string, env: ReadonlyMap<string, string>): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]
    if (ch !== '$' || i + 1 >= s.length) {
      out += ch
      continue
    }
    const next = s[i + 1]
    if (next === '$') {
      out += '$'
      i++
    } else if (next === '(') {
      const close = s.indexOf(')', i + 2)
      if (close < 0) {
        out += s.slice(i)
        break
      }
      const name = s.slice(i + 2, close)
      out += env.has(name) ? env.get(name) : `$(${name})`
      i = close
    } else out += ch
  }
  return out
}

function configMapData(cm: KubeObject): Map<string, string> {
  const out = new Map<string, string>(Object.entries(cm.data ?? {}))
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(String(v), 'base64').toString('utf8'))
  return out
}

function secretData(s: KubeObject): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(s.data ?? {})) out.set(k, Buffer.from(String(v), 'base64').toString('utf8'))
  for (const [k, v] of Object.entries(s.stringData ?? {})) out.set(k, String(v))
  return out
}

function source(kind: 'configmap' | 'secret', name: string, src: EnvSources): Map<string, string> | undefined {
  const obj = (kind === 'configmap' ? src.configMaps : src.secrets).get(name)
  if (!obj) return undefined
  return kind === 'configmap' ? configMapData(obj) : secretData(obj)
}

function keyRef(kind: 'configmap' | 'secret', ref: any, ns: string, src: EnvSources): string | undefined {
  const data = source(kind, ref.name, src)
  const label = kind === 'configmap' ? 'configmap' : 'secret'
  if (!data) {
    if (ref.optional) return undefined
    throw new ContainerConfigError(`${label} "${ref.name}" not found`)
  }
  if (!data.has(ref.key)) {
    if (ref.optional) return undefined
    throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${ns}/${ref.name}`)
  }
  return data.get(ref.key)
}

export function fieldValue(pod: KubeObject, path: string, src: EnvSources): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path)
  if (m) return (pod.metadata[m[1] as 'labels' | 'annotations'] as Record<string, string> | undefined)?.[m[2]!] ?? ''
  switch (path) {
    case 'metadata.name': return pod.metadata.name ?? ''
    case 'metadata.namespace': return pod.metadata.namespace ?? ''
    case 'metadata.uid': return pod.metadata.uid ?? ''
    case 'spec.nodeName': return pod.spec?.nodeName ?? ''
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? ''
    case 'status.podIP': case 'status.podIPs': return src.podIP ?? ''
    case 'status.hostIP': case 'status.hostIPs': return src.hostIP
    default: throw new ContainerConfigError(`unsupported fieldRef fieldPath ${path}`)
  }
}

export function resourceValue(container: any, ref: any, src: EnvSources): string {
  const [kind, res] = String(ref.resource).split('.')
  const raw = container.resources?.[kind === 'requests' ? 'requests' : 'limits']?.[res!]
  const fallback = res === 'cpu' ? src.allocatable.cpu : src.allocatable.memory
  const value = raw === undefined ? (kind === 'limits' ? fallback : 0) : (parseQuantity(raw) ?? 0)
  const divisor = parseQuantity(ref.divisor ?? '1') || 1
  return String(Math.ceil(value / divisor))
}

function entryValue(pod: KubeObject, container: any, e: any, env: Map<string, string>, src: EnvSources): string | undefined {
  const ns = pod.metadata.namespace ?? 'default'
  const vf = e.valueFrom
  if (!vf) return expandVars(String(e.value ?? ''), env)
  if (vf.configMapKeyRef) return keyRef('configmap', vf.configMapKeyRef, ns, src)
  if (vf.secretKeyRef) return keyRef('secret', vf.secretKeyRef, ns, src)
  if (vf.fieldRef) return fieldValue(pod, vf.fieldRef.fieldPath, src)
  if (vf.resourceFieldRef) return resourceValue(container, vf.resourceFieldRef, src)
  throw new ContainerConfigError(`env ${e.name}: unsupported valueFrom`)
}

/** The container's environment, in Kubernetes' order and precedence. */
export function resolveEnv(pod: KubeObject, container: any, src: EnvSources): Map<string, string> {
  const env = new Map<string, string>()
  for (const from of container.envFrom ?? []) {
    const kind = from.configMapRef ? 'configmap' : 'secret'
    const ref = from.configMapRef ?? from.secretRef
    if (!ref) continue
    const data = source(kind, ref.name, src)
    if (!data) {
      if (ref.optional) continue
      throw new ContainerConfigError(`${kind} "${ref.name}" not found`)
    }
    for (const [k, v] of data) if (!k.includes('=')) env.set(`${from.prefix ?? ''}${k}`, v)
  }
  const services = serviceEnv(src.services ?? [], pod.metadata.namespace ?? 'default', pod.spec?.enableServiceLinks !== false)
  for (const e of container.env ?? []) {
    // $(VAR) sees the variables defined so far, then the service variables.
    const v = entryValue(pod, container, e, new Map([...services, ...env]), src)
    if (v !== undefined) env.set(e.name, v)
  }
  for (const [k, v] of services) if (!env.has(k)) env.set(k, v)
  return env
}

/** command and args with `$(VAR)` expanded from the container's environment. */
export function expandCommand(container: any, env: ReadonlyMap<string, string>): { command?: string[]; args?: string[] } {
  const ex = (list: unknown) => (Array.isArray(list) ? list.map((s) => expandVars(String(s), env)) : undefined)
  return { command: ex(container.command), args: ex(container.args) }
}
