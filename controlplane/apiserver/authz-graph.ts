// The cluster facts the authorizers need (which node's pods use which
// Secrets and ConfigMaps; which Ingress class names which TLS Secrets; the
// RBAC roles and bindings), kept current from the store. Queries are
// O(pods on the node) / O(ingresses) / O(bindings).

import type { KubeObject } from '../api/types.ts'
import type { AuthzView } from './authz.ts'
import { StoreCache } from './store-cache.ts'
import { gatewayGrantedSecret } from '../api/reference-grants.ts'
import type { Store } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'

export const defaultClassAnnotation = 'ingressclass.kubernetes.io/is-default-class'

/** Names of Secrets and ConfigMaps a pod spec refers to. */
export function podReferences(pod: KubeObject): { secrets: Set<string>; configmaps: Set<string> } {
  const secrets = new Set<string>()
  const configmaps = new Set<string>()
  const spec = pod.spec ?? {}
  for (const v of spec.volumes ?? []) {
    if (v.secret?.secretName) secrets.add(v.secret.secretName)
    if (v.configMap?.name) configmaps.add(v.configMap.name)
    for (const s of v.projected?.sources ?? []) {
      if (s.secret?.name) secrets.add(s.secret.name)
      if (s.configMap?.name) configmaps.add(s.configMap.name)
    }
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name)
      if (e.valueFrom?.configMapKeyRef?.name) configmaps.add(e.valueFrom.configMapKeyRef.name)
    }
    for (const e of c.envFrom ?? []) {
      if (e.secretRef?.name) secrets.add(e.secretRef.name)
      if (e.configMapRef?.name) configmaps.add(e.configMapRef.name)
    }
  }
  for (const s of spec.imagePullSecrets ?? []) if (s.name) secrets.add(s.name)
  return { secrets, configmaps }
}

export class AuthzGraph implements AuthzView {
  #pods: StoreCache
  #ingresses: StoreCache
  #gateways: StoreCache
  #referenceGrants: StoreCache
  #classes: StoreCache
  #roles: StoreCache
  #clusterRoles: StoreCache
  #roleBindings: StoreCache
  #clusterRoleBindings: StoreCache

  constructor(opts: { store: Store; logger: Logger }) {
    this.#pods = new StoreCache({ ...opts, resource: 'pods' })
    this.#ingresses = new StoreCache({ ...opts, resource: 'ingresses.networking.k8s.io' })
    this.#gateways = new StoreCache({ ...opts, resource: 'gateways.gateway.networking.k8s.io' })
    this.#referenceGrants = new StoreCache({ ...opts, resource: 'referencegrants.gateway.networking.k8s.io' })
    this.#classes = new StoreCache({ ...opts, resource: 'ingressclasses.networking.k8s.io' })
    this.#roles = new StoreCache({ ...opts, resource: 'roles.rbac.authorization.k8s.io' })
    this.#clusterRoles = new StoreCache({ ...opts, resource: 'clusterroles.rbac.authorization.k8s.io' })
    this.#roleBindings = new StoreCache({ ...opts, resource: 'rolebindings.rbac.authorization.k8s.io' })
    this.#clusterRoleBindings = new StoreCache({ ...opts, resource: 'clusterrolebindings.rbac.authorization.k8s.io' })
  }

  get #caches(): StoreCache[] {
    return [this.#pods, this.#ingresses, this.#classes, this.#roles, this.#clusterRoles, this.#roleBindings, this.#clusterRoleBindings, this.#gateways, this.#referenceGrants]
  }

  async start(): Promise<void> {
    await Promise.all(this.#caches.map((c) => c.start()))
  }

  stop(): void {
    for (const c of this.#caches) c.stop()
  }

  clusterRoleBindings(): Iterable<KubeObject> {
    return this.#clusterRoleBindings.items.values()
  }

  *roleBindings(namespace: string): Iterable<KubeObject> {
    for (const b of this.#roleBindings.items.values()) if (b.metadata.namespace === namespace) yield b
  }

  clusterRole(name: string): KubeObject | undefined {
    return this.#clusterRoles.items.get(name)
  }

  role(namespace: string, name: string): KubeObject | undefined {
    return this.#roles.items.get(`${namespace}/${name}`)
  }

  nodeUsesServiceAccount(node: string, namespace: string, name: string): boolean {
    for (const pod of this.#pods.items.values()) {
      if (pod.spec?.nodeName === node && pod.metadata.namespace === namespace && (pod.spec?.serviceAccountName || 'default') === name) return true
    }
    return false
  }

  nodeUsesObject(node: string, resource: 'secrets' | 'configmaps', namespace: string, name: string): boolean {
    for (const pod of this.#pods.items.values()) {
      if (pod.spec?.nodeName !== node || pod.metadata.namespace !== namespace) continue
      if (podReferences(pod)[resource].has(name)) return true
    }
    return false
  }

  defaultClass(): string | undefined {
    for (const c of this.#classes.items.values()) {
      if (c.metadata.annotations?.[defaultClassAnnotation] === 'true') return c.metadata.name
    }
    return undefined
  }

  /** As the ingress controllers decide it (routes.ts ingressInClass): an empty class name counts as none. */
  ingressClassOf(ing: { metadata?: any; spec?: any }): string | undefined {
    return ing.spec?.ingressClassName || ing.metadata?.annotations?.['kubernetes.io/ingress.class'] || this.defaultClass()
  }

  classUsesSecret(cls: string, namespace: string, name: string): boolean {
    for (const ing of this.#ingresses.items.values()) {
      if (ing.metadata.namespace !== namespace || this.ingressClassOf(ing) !== cls) continue
      if ((ing.spec?.tls ?? []).some((t: any) => t.secretName === name)) return true
    }
    // A Gateway of the class (GatewayClass named after the pool) naming it in a listener's certificateRefs, in the Gateway's namespace only.
    for (const gw of this.#gateways.items.values()) {
      if (gw.metadata.namespace !== namespace || gw.spec?.gatewayClassName !== cls) continue
      if ((gw.spec?.listeners ?? []).some((l: any) => (l?.tls?.certificateRefs ?? []).some((r: any) => r?.name === name && (r?.namespace ?? namespace) === namespace && (r?.kind ?? 'Secret') === 'Secret'))) return true
    }
    return false
  }

  classReadsGrantedSecret(cls: string, namespace: string, name: string): boolean {
    return gatewayGrantedSecret(this.#gateways.items.values(), this.#referenceGrants.items.values(), cls, namespace, name)
  }
}
