// ReferenceGrant (gateway.networking.k8s.io) as a pure rule, below its two
// users: the ingress data plane (a cross-namespace backendRef or
// certificateRef is usable) and the apiserver's ingress authorizer (the pool
// may read a Secret a Gateway of its class names in another namespace).
// A grant lives in the target namespace; `from` and `to` entries are ORed;
// a `to` without a name covers every object of that kind (referencegrant_types.go).

import type { KubeObject } from './types.ts'

export const gatewayApiGroup = 'gateway.networking.k8s.io'

export interface GrantedRef { fromGroup: string; fromKind: string; fromNamespace: string; toGroup: string; toKind: string; toNamespace: string; toName: string }

const arr = (v: unknown): any[] => (Array.isArray(v) ? v : [])

/** Whether a ReferenceGrant in `toNamespace` lets a `fromKind` of `fromNamespace` refer to `toKind` `toName`. */
export function referenceGranted(grants: Iterable<KubeObject>, ref: GrantedRef): boolean {
  for (const g of grants) {
    if (g.metadata?.namespace !== ref.toNamespace) continue
    if (!arr(g.spec?.from).some((f) => f?.group === ref.fromGroup && f?.kind === ref.fromKind && f?.namespace === ref.fromNamespace)) continue
    if (arr(g.spec?.to).some((t) => (t?.group ?? '') === ref.toGroup && t?.kind === ref.toKind && (t?.name == null || t.name === '' || t.name === ref.toName))) return true
  }
  return false
}

/**
 * Whether a Gateway of class `cls` names Secret `namespace/name` in a
 * listener's certificateRefs from another namespace, with a ReferenceGrant
 * in `namespace` that allows it. (Same-namespace refs are the authorizer's
 * older rule, classUsesSecret.)
 */
export function gatewayGrantedSecret(gateways: Iterable<KubeObject>, grants: Iterable<KubeObject>, cls: string, namespace: string, name: string): boolean {
  const grantList = [...grants]
  for (const gw of gateways) {
    const gwNs = gw.metadata?.namespace ?? ''
    if (gw.spec?.gatewayClassName !== cls || gwNs === namespace) continue
    const names = arr(gw.spec?.listeners).some((l) => arr(l?.tls?.certificateRefs).some((r) =>
      r?.name === name && r?.namespace === namespace && (r?.group ?? '') === '' && (r?.kind ?? 'Secret') === 'Secret'))
    if (names && referenceGranted(grantList, { fromGroup: gatewayApiGroup, fromKind: 'Gateway', fromNamespace: gwNs, toGroup: '', toKind: 'Secret', toNamespace: namespace, toName: name })) return true
  }
  return false
}
