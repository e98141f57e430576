// Authorization: deny by default. Three roles, decided from the user's groups:
//  - admin (system:masters): everything.
//  - node (system:nodes, user system:node:<name>): reads what an agent and
//    its data plane need (the node Leases of kube-node-lease included: the
//    LoadBalancer speaker; the kube-system Leases: ingress presence),
//    writes only its own Node and Lease, the status of
//    pods bound to it, and Events; reads a Secret or ConfigMap only when a pod
//    bound to it uses that object (like Kubernetes' Node authorizer).
//  - ingress (skiff:ingress-controllers, user skiff:ingress:<class>): reads
//    routing inputs, and only the Secrets that its class's Ingresses name in
//    spec.tls (which it may also write, for ACME; list/watch only pinned to
//    the name), the default certificate kube-system/skiff-ingress-default-tls,
//    its own state in kube-system Secrets/ConfigMaps named
//    skiff-ingress-<class>-*; writes its Ingresses' status, its own Leases
//    and Events.
// The decision is a pure function of the request and an AuthzGraph view.

import { groups, ingressUserPrefix, nodeUserPrefix, type UserInfo } from './authn.ts'

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection'

export interface RequestAttributes {
  verb: Verb
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

/** What the authorizer needs to know about the cluster, kept by AuthzGraph. */
export interface AuthzView {
  nodeUsesObject(node: string, resource: 'secrets' | 'configmaps', namespace: string, name: string): boolean
  ingressClassOf(ingress: { metadata?: any; spec?: any }): string | undefined
  classUsesSecret(ingressClass: string, namespace: string, name: string): boolean
}

export interface Decision {
  allowed: boolean
  reason: string
}

const readVerbs = new Set<Verb>(['get', 'list', 'watch'])
const writeVerbs = new Set<Verb>(['create', 'update', 'patch'])

const nodeReadable = new Set([
  'nodes', 'pods', 'services', 'endpoints', 'endpointslices.discovery.k8s.io', 'namespaces',
  'ingresses.networking.k8s.io', 'ingressclasses.networking.k8s.io',
])
const ingressReadable = new Set([
  'ingresses.networking.k8s.io', 'ingressclasses.networking.k8s.io', 'services', 'endpoints',
  'endpointslices.discovery.k8s.io', 'namespaces', 'nodes',
])

const allow = (reason: string): Decision => ({ allowed: true, reason })
const deny = (reason: string): Decision => ({ allowed: false, reason })

export function authorize(user: UserInfo, a: RequestAttributes, view: AuthzView): Decision {
  if (user.groups.includes(groups.admin)) return allow('admin')
  if (user.groups.includes(groups.nodes) && user.name.startsWith(nodeUserPrefix)) {
    return authorizeNode(user.name.slice(nodeUserPrefix.length), a, view)
  }
  if (user.groups.includes(groups.ingress) && user.name.startsWith(ingressUserPrefix)) {
    return authorizeIngress(user.name.slice(ingressUserPrefix.length), a, view)
  }
  return deny('no role grants this user access')
}

function boundTo(obj: RequestAttributes['current'], node: string): boolean {
  return obj?.spec?.nodeName === node
}

function authorizeNode(node: string, a: RequestAttributes, view: AuthzView): Decision {
  const { verb, resource, subresource } = a
  if (resource === 'events' && (verb === 'create' || verb === 'patch')) return allow('node events')
  if (resource === 'secrets' || resource === 'configmaps') {
    if (verb === 'get' && a.namespace && a.name && view.nodeUsesObject(node, resource, a.namespace, a.name)) {
      return allow(`a pod on node ${node} uses it`)
    }
    return deny(`no pod bound to node ${node} uses ${resource} ${a.namespace}/${a.name ?? ''}`.trim())
  }
  if (resource === 'nodes' && (writeVerbs.has(verb) || verb === 'get')) {
    if (a.name === node) return allow('own node')
    if (verb !== 'get') return deny(`node ${node} may only write its own Node`)
  }
  if (resource === 'leases.coordination.k8s.io') {
    if (a.namespace === 'kube-node-lease' && a.name === node && (readVerbs.has(verb) || writeVerbs.has(verb))) return allow('own lease')
    // The LoadBalancer speaker judges its peers' liveness from their heartbeats (dataplane/lb-speaker).
    if (a.namespace === 'kube-node-lease' && readVerbs.has(verb)) return allow('node heartbeats are readable by nodes')
    // A terminating pod waits until every serving ingress node routes without it (ingress presence Leases, node/endpoint-withdrawal.ts).
    if (a.namespace === 'kube-system' && readVerbs.has(verb)) return allow('ingress presence leases are readable by nodes')
    return deny(`node ${node} may only read Leases in kube-node-lease and kube-system and write its own, kube-node-lease/${node}`)
  }
  if (resource === 'pods' && subresource === 'status' && (verb === 'update' || verb === 'patch' || verb === 'get')) {
    if (boundTo(a.current, node)) return allow('pod bound to this node')
    return deny(`pod ${a.namespace}/${a.name} is not bound to node ${node}`)
  }
  if (resource === 'pods' && verb === 'delete') {
    if (boundTo(a.current, node)) return allow('pod bound to this node')
    return deny(`pod ${a.namespace}/${a.name} is not bound to node ${node}`)
  }
  if (!subresource && readVerbs.has(verb) && nodeReadable.has(resource)) return allow('node read')
  return deny(`node ${node} may not ${verb} ${resource}${subresource ? '/' + subresource : ''}`)
}

function authorizeIngress(cls: string, a: RequestAttributes, view: AuthzView): Decision {
  const { verb, resource, subresource } = a
  if (resource === 'events' && (verb === 'create' || verb === 'patch')) return allow('ingress events')
  if ((resource === 'secrets' || resource === 'configmaps') && a.namespace === 'kube-system' && a.name?.startsWith(`skiff-ingress-${cls}-`)) {
    // The class's own state: ACME account key, challenge tokens, default certificate.
    if (readVerbs.has(verb) || writeVerbs.has(verb)) return allow(`class ${cls} state`)
  }
  if (resource === 'secrets' && a.namespace === 'kube-system' && a.name === 'skiff-ingress-default-tls' && readVerbs.has(verb)) {
    return allow('the default ingress certificate')
  }
  if (resource === 'secrets') {
    const ok = (readVerbs.has(verb) || writeVerbs.has(verb)) && a.namespace && a.name && view.classUsesSecret(cls, a.namespace, a.name)
    return ok ? allow(`an Ingress of class ${cls} names it`) : deny(`no Ingress of class ${cls} names secret ${a.namespace}/${a.name ?? ''}`)
  }
  if (resource === 'ingresses.networking.k8s.io' && subresource === 'status' && (verb === 'update' || verb === 'patch' || verb === 'get')) {
    const target = a.current ?? a.incoming
    if (target && view.ingressClassOf(target) === cls) return allow('own class ingress status')
    return deny(`ingress ${a.namespace}/${a.name} is not of class ${cls}`)
  }
  if (resource === 'leases.coordination.k8s.io') {
    // Listing and watching kube-system Leases shows which ingress nodes serve (presence Leases); writes stay per name.
    if ((verb === 'list' || verb === 'watch') && a.namespace === 'kube-system' && !a.name) return allow('ingress presence leases')
    if (a.name?.startsWith(`ingress-${cls}-`) && (readVerbs.has(verb) || writeVerbs.has(verb) || verb === 'delete')) return allow('own lease')
    return deny(`ingress class ${cls} may only use Leases named ingress-${cls}-*`)
  }
  if (!subresource && readVerbs.has(verb) && ingressReadable.has(resource)) return allow('ingress read')
  return deny(`ingress controller ${cls} may not ${verb} ${resource}${subresource ? '/' + subresource : ''}`)
}
