// API objects → IngressSnapshot (snapshot.ts), pure. The supervisor calls
// buildSnapshot with whatever its informers hold (every Service and
// EndpointSlice of the cluster, the Secrets it watches) and this keeps only
// what the class's Ingresses need, so a worker never sees anything else.

import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { readSkiffAnnotation } from '../../controlplane/api/validation/skiff.ts'
import { byAge, ingressInClass, ingressKey, isDefaultIngressClass } from './routes.ts'
import type { CertificateInfo, ClassSettings, EndpointInfo, IngressSnapshot, ServiceInfo } from './snapshot.ts'
import type { GatewayBuild } from './gateway-build.ts'

export { ingressPoolLabel } from '../../controlplane/api/bootstrap-token.ts'
export const serviceNameLabel = 'kubernetes.io/service-name'
/** The certificate for unknown SNI, issued from the cluster CA. */
export const defaultCertificateSecret = { namespace: 'kube-system', name: 'skiff-ingress-default-tls' }
/** ACME HTTP-01 tokens of a class (data: token → key authorization). */
export function challengesConfigMapName(className: string): string {
  return `skiff-ingress-${className}-acme-challenges`
}

export interface SnapshotInputs {
  generation: number
  className: string
  ingressClasses: KubeObject[]
  /** Every Ingress (any class); the class's are picked here. */
  ingresses: KubeObject[]
  services: KubeObject[]
  endpointSlices: KubeObject[]
  /** The Secrets named in spec.tls that exist (others count as missing). */
  secrets: KubeObject[]
  /** kube-system/skiff-ingress-default-tls, when it exists. */
  defaultCertificate?: KubeObject
  challenges?: Record<string, string>
  /** Every Node: endpoints on those that are not Ready are cut at once (unreachableNodes). */
  nodes?: KubeObject[]
  /** The class's Gateway API routing (buildGatewayRouting): its Services and listener Secrets are added. */
  gateway?: GatewayBuild
}

/** Whether the IngressClass named `className` is the default class. */
export function isDefaultClass(ingressClasses: KubeObject[], className: string): boolean {
  return isDefaultIngressClass(ingressClasses.find((c) => c.metadata?.name === className))
}

/** The class's Ingresses, oldest first. */
export function classIngresses(ingresses: KubeObject[], opts: { className: string; isDefaultClass: boolean }): KubeObject[] {
  return ingresses.filter((i) => ingressInClass(i, opts)).sort(byAge)
}

/** 'namespace/name' of every Secret named in spec.tls of these Ingresses (already filtered by class). */
export function namedSecrets(ingresses: KubeObject[]): Set<string> {
  const out = new Set<string>()
  for (const ing of ingresses) {
    for (const tls of asArray(ing.spec?.tls)) {
      if (typeof tls?.secretName === 'string' && tls.secretName !== '') out.add(`${ing.metadata?.namespace ?? ''}/${tls.secretName}`)
    }
  }
  return out
}

/** 'namespace/name' of every Service these Ingresses route to (defaultBackend and paths). */
export function namedServices(ingresses: KubeObject[]): Set<string> {
  const out = new Set<string>()
  for (const ing of ingresses) {
    const ns = ing.metadata?.namespace ?? ''
    const add = (b: any) => {
      if (typeof b?.service?.name === 'string' && b.service.name !== '') out.add(`${ns}/${b.service.name}`)
    }
    add(ing.spec?.defaultBackend)
    for (const rule of asArray(ing.spec?.rules)) for (const p of asArray(rule?.http?.paths)) add(p?.backend)
  }
  return out
}

/** Only what routing reads: a worker never sees status, managedFields or resourceVersions. */
export function stripIngress(ing: KubeObject): KubeObject {
  const m = ing.metadata ?? {}
  const metadata: KubeObject['metadata'] = { name: m.name, namespace: m.namespace, uid: m.uid, creationTimestamp: m.creationTimestamp, annotations: m.annotations ?? {}, generation: m.generation }
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata, spec: ing.spec ?? {} }
}

export function serviceInfo(svc: KubeObject): ServiceInfo {
  const ports = asArray(svc.spec?.ports).map((p: any) => ({ name: String(p?.name ?? ''), port: Number(p?.port), protocol: String(p?.protocol ?? 'TCP') }))
  const info: ServiceInfo = { type: String(svc.spec?.type ?? 'ClusterIP'), ports }
  if (typeof svc.spec?.externalName === 'string') info.externalName = svc.spec.externalName
  return info
}

/**
 * The endpoints of one Service from its slices, with Kubernetes' defaults for
 * absent conditions (ready unknown = ready, serving = ready, terminating =
 * false). An address listed by two slices (possible during a slice rewrite)
 * appears once, its ports merged. FQDN slices are ignored.
 */
export function endpointsOf(slices: KubeObject[]): EndpointInfo[] {
  const byIp = new Map<string, EndpointInfo>()
  for (const slice of slices) {
    if (slice.addressType !== undefined && slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue
    const ports: Record<string, number> = {}
    for (const p of asArray(slice.ports)) if (typeof p?.port === 'number') ports[String(p.name ?? '')] = p.port
    for (const ep of asArray(slice.endpoints)) {
      const c = ep?.conditions ?? {}
      const ready = c.ready ?? true
      const serving = c.serving ?? ready
      const terminating = c.terminating ?? false
      for (const ip of asArray(ep?.addresses)) {
        if (typeof ip !== 'string') continue
        const seen = byIp.get(ip)
        if (seen) {
          Object.assign(seen.ports, ports)
          continue
        }
        const info: EndpointInfo = { ip, ports: { ...ports }, ready: !!ready, serving: !!serving, terminating: !!terminating }
        if (typeof ep.nodeName === 'string') info.nodeName = ep.nodeName
        if (typeof ep.targetRef?.name === 'string') info.pod = ep.targetRef.name
        byIp.set(ip, info)
      }
    }
  }
  return [...byIp.values()]
}

/** 'namespace/name' → '' when the Secret holds a usable pair, else why not (buildGatewayRouting's certificateProblems). */
export function certificateProblems(secrets: KubeObject[], keys: Iterable<string>): Record<string, string> {
  const byKey = new Map(secrets.map((s) => [ingressKey(s), s]))
  const out: Record<string, string> = {}
  for (const key of keys) {
    const c = decodeCertificate(key, byKey.get(key))
    out[key] = 'error' in c ? c.error : ''
  }
  return out
}

/** A kubernetes.io/tls Secret's PEM pair, or why it cannot be served. */
export function decodeCertificate(key: string, secret: KubeObject | undefined): CertificateInfo {
  if (!secret) return { error: `secret ${key} not found` }
  if (secret.type !== 'kubernetes.io/tls') return { error: `secret ${key} has type ${JSON.stringify(secret.type ?? 'Opaque')}, not kubernetes.io/tls` }
  const cert = decode(secret.data?.['tls.crt'])
  const tlsKey = decode(secret.data?.['tls.key'])
  if (!cert || !tlsKey) return { error: `secret ${key} lacks ${!cert ? 'tls.crt' : 'tls.key'}` }
  if (!cert.includes('-----BEGIN') || !tlsKey.includes('-----BEGIN')) return { error: `secret ${key}: tls.crt and tls.key must be PEM` }
  const mismatch = pairProblem(cert, tlsKey)
  if (mismatch) return { error: `secret ${key}: ${mismatch}` }
  return { cert, key: tlsKey }
}

/** Results of pairProblem by content hash: a snapshot is built on every change, the pair parsed once. */
const pairChecks = new Map<string, string>()

/** Why tls.crt and tls.key cannot be served together ('' when they can): unparsable, or the key is not the certificate's. */
function pairProblem(cert: string, key: string): string {
  const hash = createHash('sha256').update(cert).update('\0').update(key).digest('hex')
  let problem = pairChecks.get(hash)
  if (problem !== undefined) return problem
  try {
    problem = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)) ? '' : 'tls.key does not match the certificate in tls.crt'
  } catch (e) {
    problem = `tls.crt or tls.key does not parse (${(e as Error).message})`
  }
  if (pairChecks.size >= 1000) pairChecks.clear()
  pairChecks.set(hash, problem)
  return problem
}

export function classSettings(ingressClass: KubeObject | undefined): ClassSettings {
  const settings: ClassSettings = { trustedProxies: [] }
  if (!ingressClass) return settings
  settings.trustedProxies = readSkiffAnnotation(ingressClass, 'skiff.dev/trusted-proxies') ?? []
  const ranges = readSkiffAnnotation(ingressClass, 'skiff.dev/allow-source-ranges')
  if (ranges) settings.defaultAllowSourceRanges = ranges
  return settings
}

/** Everything one class's workers need, from the cluster's objects. */
export function buildSnapshot(input: SnapshotInputs): IngressSnapshot {
  const { className } = input
  const isDefault = isDefaultClass(input.ingressClasses, className)
  const mine = classIngresses(input.ingresses, { className, isDefaultClass: isDefault })
  const wantedServices = namedServices(mine)
  for (const key of input.gateway?.services ?? []) wantedServices.add(key)
  const services: Record<string, ServiceInfo> = {}
  for (const svc of input.services) {
    const key = ingressKey(svc)
    if (wantedServices.has(key)) services[key] = serviceInfo(svc)
  }
  const slicesBySvc = new Map<string, KubeObject[]>()
  for (const slice of input.endpointSlices) {
    const svc = slice.metadata?.labels?.[serviceNameLabel]
    const key = `${slice.metadata?.namespace ?? ''}/${svc ?? ''}`
    if (!svc || !wantedServices.has(key)) continue
    slicesBySvc.set(key, [...(slicesBySvc.get(key) ?? []), slice])
  }
  const endpoints: Record<string, EndpointInfo[]> = {}
  for (const key of [...slicesBySvc.keys()].sort()) endpoints[key] = endpointsOf(slicesBySvc.get(key)!)
  const secretsByKey = new Map(input.secrets.map((s) => [ingressKey(s), s]))
  const certificates: Record<string, CertificateInfo> = {}
  for (const key of [...new Set([...namedSecrets(mine), ...(input.gateway?.secrets ?? [])])].sort()) certificates[key] = decodeCertificate(key, secretsByKey.get(key))
  const snapshot: IngressSnapshot = {
    generation: input.generation,
    className,
    isDefaultClass: isDefault,
    ingresses: mine.map(stripIngress),
    services,
    endpoints,
    certificates,
    challenges: { ...(input.challenges ?? {}) },
    settings: classSettings(input.ingressClasses.find((c) => c.metadata?.name === className)),
  }
  const hosting = new Set(Object.values(endpoints).flatMap((eps) => eps.map((e) => e.nodeName).filter((n): n is string => !!n)))
  const unreachable = (input.nodes ?? [])
    .filter((n) => hosting.has(n.metadata?.name ?? '') && !(n.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c?.status === 'True'))
    .map((n) => n.metadata.name!)
    .sort()
  if (unreachable.length) snapshot.unreachableNodes = unreachable
  if (input.gateway && (input.gateway.snapshot.listeners.length || input.gateway.snapshot.routes.length)) snapshot.gateway = input.gateway.snapshot
  const def = input.defaultCertificate && decodeCertificate(ingressKey(input.defaultCertificate), input.defaultCertificate)
  if (def && 'cert' in def) snapshot.defaultCertificate = def
  return snapshot
}

function decode(b64: unknown): string | undefined {
  if (typeof b64 !== 'string' || b64 === '') return undefined
  const text = Buffer.from(b64, 'base64').toString('utf8')
  return text === '' ? undefined : text
}

function asArray(v: unknown): any[] {
  return Array.isArray(v) ? v : []
}
