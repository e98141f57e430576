// What an Ingress names that does not resolve (pure): a backend Service that
// does not exist, a Service port it does not have, a TLS Secret that cannot
// be served (missing, wrong type, not PEM, key not matching the
// certificate). The routes are still compiled, and such a request gets 503
// or such a host the default certificate; this list is what status.ts turns
// into the `ResolvedRefs` condition and Warning Events, so the user is told
// instead of the problem going silent. The reasons are Gateway API's
// (BackendNotFound, InvalidCertificateRef), the closest standard vocabulary.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { ingressKey } from './routes.ts'
import type { IngressSnapshot } from './snapshot.ts'

export const reasonBackendNotFound = 'BackendNotFound'
export const reasonInvalidCertificateRef = 'InvalidCertificateRef'

export interface UnresolvedRef {
  /** 'namespace/name' of the Ingress. */
  ingress: string
  reason: typeof reasonBackendNotFound | typeof reasonInvalidCertificateRef
  message: string
}

function serviceBackends(ing: KubeObject): any[] {
  const spec = ing.spec ?? {}
  const out: any[] = []
  if (spec.defaultBackend?.service) out.push(spec.defaultBackend.service)
  for (const rule of Array.isArray(spec.rules) ? spec.rules : []) {
    for (const p of Array.isArray(rule?.http?.paths) ? rule.http.paths : []) if (p?.backend?.service) out.push(p.backend.service)
  }
  return out
}

function backendProblem(snapshot: Pick<IngressSnapshot, 'services'>, ns: string, b: any): string | undefined {
  const svc = snapshot.services[`${ns}/${b.name}`]
  if (!svc) return `service ${ns}/${b.name} not found`
  // An ExternalName Service has no ports of its own to check.
  if (svc.type === 'ExternalName') return undefined
  const port = b.port ?? {}
  if (typeof port.number === 'number' && !svc.ports.some((p) => p.port === port.number)) return `service ${ns}/${b.name} has no port ${port.number}`
  if (typeof port.name === 'string' && port.name && !svc.ports.some((p) => p.name === port.name)) return `service ${ns}/${b.name} has no port named "${port.name}"`
  return undefined
}

/**
 * Every unresolved reference of the snapshot's Ingresses, each once per
 * Ingress, in spec order. `unseenSecrets` ('namespace/name'): Secrets not
 * looked up yet (their watch is starting), not reported as missing.
 */
export function unresolvedRefs(snapshot: Pick<IngressSnapshot, 'ingresses' | 'services' | 'certificates'>, unseenSecrets: ReadonlySet<string> = new Set()): UnresolvedRef[] {
  const out: UnresolvedRef[] = []
  for (const ing of snapshot.ingresses) {
    const key = ingressKey(ing)
    const ns = ing.metadata.namespace ?? 'default'
    const seen = new Set<string>()
    const add = (reason: UnresolvedRef['reason'], message: string) => {
      if (!seen.has(message)) out.push({ ingress: key, reason, message })
      seen.add(message)
    }
    for (const b of serviceBackends(ing)) {
      const problem = backendProblem(snapshot, ns, b)
      if (problem) add(reasonBackendNotFound, problem)
    }
    for (const tls of Array.isArray(ing.spec?.tls) ? ing.spec.tls : []) {
      if (typeof tls?.secretName !== 'string' || !tls.secretName) continue
      const secretKey = `${ns}/${tls.secretName}`
      if (unseenSecrets.has(secretKey)) continue
      const info = snapshot.certificates[secretKey]
      if (!info) add(reasonInvalidCertificateRef, `secret ${ns}/${tls.secretName} not found`)
      else if ('error' in info) add(reasonInvalidCertificateRef, `${info.error}; hosts ${(tls.hosts ?? []).join(', ') || '(none)'} get the default certificate`)
    }
  }
  return out
}
