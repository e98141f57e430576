// Authorization: a chain of authorizers, as kube-apiserver's
// --authorization-mode=Node,RBAC, each answering allow or no opinion; the
// first allow wins, and no allow is a 403 (deny by default):
//  1. system:masters: everything (kube-apiserver's privileged-group
//     authorizer; also bound to cluster-admin for `kubectl get`).
//  2. Node (system:node:<name> in system:nodes), over the graph
//     (authz-graph.ts): its own Node (read, create, update, patch), its own
//     Lease in kube-node-lease, the status of pods bound to it and their
//     deletion, and a Secret or ConfigMap only when a pod bound to it uses
//     that object (get only), as Kubernetes' Node authorizer.
//  3. Ingress (skiff:ingress:<class> in skiff:ingress-controllers), a Skiff
//     authorizer because RBAC cannot say "the Secrets that Ingresses of my
//     class name in spec.tls" (read and write, for ACME; list/watch only
//     pinned to the name), nor name prefixes: its class's state in
//     kube-system Secrets/ConfigMaps skiff-ingress-<class>-*, Leases
//     ingress-<class>-*, and the status of its class's Ingresses.
//  4. RBAC (rbac/authorizer.ts) over Roles, ClusterRoles and bindings,
//     the built-in ones included (rbac/bootstrap.ts: system:node and
//     skiff:ingress-controller hold what nodes and ingress controllers read).
// Pure: a function of the user, the request and an AuthzView.

import { ApiError } from '../api/errors.ts'
import { groups, ingressUserPrefix, nodeUserPrefix, type UserInfo } from './authn.ts'
import { rbacAuthorize, type PolicySource } from './rbac/authorizer.ts'
import { pinnedNode } from '../api/storage.ts'

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection'

export interface RequestAttributes {
  verb: Verb | string
  /** Qualified resource: 'pods', 'leases.coordination.k8s.io'. */
  resource: string
  subresource?: string
  namespace?: string
  name?: string
  /** The stored object, for requests on one existing object. */
  current?: { metadata?: { name?: string }; spec?: any }
  /** The object a create or update would store. */
  incoming?: { metadata?: { name?: string }; spec?: any }
}

/** What the authorizers need to know about the cluster, kept by AuthzGraph. */
export interface AuthzView extends PolicySource {
  nodeUsesObject(node: string, resource: 'secrets' | 'configmaps', namespace: string, name: string): boolean
  /** A pod bound to `node` runs as this ServiceAccount (the Node authorizer's serviceaccount -> pod -> node edge). */
  nodeUsesServiceAccount(node: string, namespace: string, name: string): boolean
  ingressClassOf(ingress: { metadata?: any; spec?: any }): string | undefined
  classUsesSecret(ingressClass: string, namespace: string, name: string): boolean
  /** A Gateway of the class in another namespace names the Secret, and a ReferenceGrant in its namespace allows it (read only). */
  classReadsGrantedSecret?(ingressClass: string, namespace: string, name: string): boolean
}

export interface Decision {
  allowed: boolean
  /** Why; for a denial, what Kubernetes appends to its message (often empty). */
  reason: string
}

const readVerbs = new Set(['get', 'list', 'watch'])
const writeVerbs = new Set(['create', 'update', 'patch'])

const allow = (reason: string): Decision => ({ allowed: true, reason })
const noOpinion = (reason = ''): Decision => ({ allowed: false, reason })

/** 'leases.coordination.k8s.io' → ['leases', 'coordination.k8s.io']; plurals hold no dot. */
export function splitResource(qualified: string): { resource: string; apiGroup: string } {
  const i = qualified.indexOf('.')
  return i < 0 ? { resource: qualified, apiGroup: '' } : { resource: qualified.slice(0, i), apiGroup: qualified.slice(i + 1) }
}

export function authorize(user: UserInfo, a: RequestAttributes, view: AuthzView): Decision {
  if (user.groups.includes(groups.admin)) return allow('system:masters')
  const reasons: string[] = []
  for (const az of [authorizeNode, authorizeIngress]) {
    const d = az(user, a, view)
    if (d.allowed) return d
    if (d.reason) reasons.push(d.reason)
  }
  const { resource, apiGroup } = splitResource(a.resource)
  // A create names no object in Kubernetes' request attributes, so resourceNames never grant one.
  const name = a.verb === 'create' ? '' : a.name
  const d = rbacAuthorize(view, { user, verb: a.verb, resourceRequest: true, apiGroup, resource, subresource: a.subresource ?? '', namespace: a.namespace ?? '', name: name ?? '' })
  if (d.allowed) return d
  if (d.reason) reasons.push(d.reason)
  return noOpinion(reasons.join(', '))
}

/** A request for a path that is no resource (`/metrics`, `/api`, `/openapi/v3`): RBAC nonResourceURLs. */
export function authorizeNonResource(user: UserInfo, verb: string, path: string, view: AuthzView): Decision {
  if (user.groups.includes(groups.admin)) return allow('system:masters')
  return rbacAuthorize(view, { user, verb, resourceRequest: false, path })
}

/** The 403 as kube-apiserver words it (responsewriters.Forbidden). */
export function forbidden(user: UserInfo, a: RequestAttributes, reason: string): ApiError {
  const { resource, apiGroup } = splitResource(a.resource)
  const target = a.subresource ? `${resource}/${a.subresource}` : resource
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope'
  const msg = `User "${user.name}" cannot ${a.verb} resource "${target}" in API group "${apiGroup}" ${where}${reason ? `: ${reason}` : ''}`
  return new ApiError('Forbidden', `${a.resource}${a.name ? ` "${a.name}"` : ''} is forbidden: ${msg}`, { name: a.name, group: apiGroup, kind: resource })
}

export function forbiddenPath(user: UserInfo, verb: string, path: string): ApiError {
  return new ApiError('Forbidden', `forbidden: User "${user.name}" cannot ${verb} path "${path}"`)
}

/** Throws the 403 unless the chain allows. */
export function check(user: UserInfo, a: RequestAttributes, view: AuthzView): void {
  const d = authorize(user, a, view)
  if (!d.allowed) throw forbidden(user, a, d.reason)
}

/** A write to a volume pinned to `node` that changes nothing but its metadata (the agent removing its finalizer). */
function localVolumeFinalizerWrite(a: RequestAttributes, node: string): boolean {
  const cur = a.current as KubeObjectLike | undefined
  const inc = a.incoming as KubeObjectLike | undefined
  if (!cur || !inc || pinnedNode(cur as any) !== node) return false
  return JSON.stringify(cur.spec ?? null) === JSON.stringify(inc.spec ?? null)
}

type KubeObjectLike = { metadata?: Record<string, unknown>; spec?: unknown }

function boundTo(obj: RequestAttributes['current'], node: string): boolean {
  return obj?.spec?.nodeName === node
}

function authorizeNode(user: UserInfo, a: RequestAttributes, view: AuthzView): Decision {
  if (!user.groups.includes(groups.nodes) || !user.name.startsWith(nodeUserPrefix)) return noOpinion()
  const node = user.name.slice(nodeUserPrefix.length)
  const { verb, resource, subresource } = a
  if (resource === 'secrets' || resource === 'configmaps') {
    if (verb === 'get' && a.namespace && a.name && view.nodeUsesObject(node, resource, a.namespace, a.name)) return allow(`a pod on node ${node} uses it`)
    return noOpinion(`no relationship found between node '${node}' and this object`)
  }
  if (resource === 'serviceaccounts' && subresource === 'token' && verb === 'create' && a.namespace && a.name) {
    // Tokens for the projected volumes of its pods (the API binds each to the pod named in the request).
    if (view.nodeUsesServiceAccount(node, a.namespace, a.name)) return allow(`a pod on node ${node} runs as it`)
    return noOpinion(`no relationship found between node '${node}' and this object`)
  }
  // Not its own kubelet through the apiserver (nodes/proxy): as in Kubernetes, that is RBAC's, and system:node lacks it.
  if (resource === 'nodes' && subresource === 'proxy') return noOpinion()
  if (resource === 'nodes' && (writeVerbs.has(verb) || verb === 'get') && a.name === node) return allow('own node')
  if (resource === 'persistentvolumes' && !subresource && (verb === 'update' || verb === 'patch')) {
    // Its local volumes' finalizer, once their data is gone (node/local-volumes.ts); nothing else of them.
    return localVolumeFinalizerWrite(a, node) ? allow('finalizer of a local volume of this node') : noOpinion(`persistentvolume ${a.name} is not pinned to node '${node}'`)
  }
  if (resource === 'leases.coordination.k8s.io' && a.namespace === 'kube-node-lease' && a.name === node && (readVerbs.has(verb) || writeVerbs.has(verb))) {
    return allow('own lease')
  }
  if (resource === 'pods' && ((subresource === 'status' && (verb === 'update' || verb === 'patch' || verb === 'get')) || (!subresource && verb === 'delete'))) {
    return boundTo(a.current, node) ? allow('pod bound to this node') : noOpinion(`pod ${a.namespace}/${a.name} is not bound to node '${node}'`)
  }
  return noOpinion()
}

function authorizeIngress(user: UserInfo, a: RequestAttributes, view: AuthzView): Decision {
  if (!user.groups.includes(groups.ingress) || !user.name.startsWith(ingressUserPrefix)) return noOpinion()
  const cls = user.name.slice(ingressUserPrefix.length)
  const { verb, resource, subresource } = a
  const readWrite = readVerbs.has(verb) || writeVerbs.has(verb)
  if ((resource === 'secrets' || resource === 'configmaps') && a.namespace === 'kube-system' && a.name?.startsWith(`skiff-ingress-${cls}-`) && readWrite) {
    // The class's own state: ACME account key, challenge tokens, default certificate.
    return allow(`class ${cls} state`)
  }
  if (resource === 'secrets' && readWrite && a.namespace && a.name && view.classUsesSecret(cls, a.namespace, a.name)) return allow(`an Ingress of class ${cls} names it`)
  if (resource === 'secrets' && readVerbs.has(verb) && a.namespace && a.name && view.classReadsGrantedSecret?.(cls, a.namespace, a.name)) return allow(`a Gateway of class ${cls} names it through a ReferenceGrant`)
  if (resource === 'ingresses.networking.k8s.io' && subresource === 'status' && (verb === 'update' || verb === 'patch' || verb === 'get')) {
    const target = a.current ?? a.incoming
    if (target && view.ingressClassOf(target) === cls) return allow('own class ingress status')
    return noOpinion(`ingress ${a.namespace}/${a.name} is not of class ${cls}`)
  }
  if (resource === 'leases.coordination.k8s.io' && a.name?.startsWith(`ingress-${cls}-`) && (readWrite || verb === 'delete')) return allow('own lease')
  return noOpinion()
}
