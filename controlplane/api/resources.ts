// The one table of every kind Skiff serves. Discovery, routing, storage keys,
// Table printing, validation and authorization all look kinds up here, so a
// new kind is one row (plus its printer and validator).

export interface ResourceInfo {
  group: string // '' for the core group
  version: string
  kind: string
  resource: string // plural, lower case: 'pods'
  singular: string
  namespaced: boolean
  shortNames?: string[]
  categories?: string[]
  /** Subresources served: status and scale are generic; log/exec are proxied. */
  subresources?: Array<'status' | 'scale' | 'log' | 'exec' | 'attach' | 'portforward' | 'token' | 'eviction' | 'proxy' | 'binding'>
  /** Create-only kinds answered at once and never stored (access reviews, SelfSubjectReview). */
  virtual?: boolean
  /** Spec changes bump metadata.generation (kinds with a spec). */
  hasSpec?: boolean
  verbs?: string[]
  /** Another version of a kind stored in that version's form (autoscaling/v1 HPA is stored as v2); converted in apiserver/conversion.ts. */
  storageVersion?: string
}

const allVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

function r(info: ResourceInfo): ResourceInfo {
  return { verbs: allVerbs, ...info }
}

export const resources: readonly ResourceInfo[] = Object.freeze([
  r({ group: '', version: 'v1', kind: 'Namespace', resource: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'], hasSpec: true }),
  r({ group: '', version: 'v1', kind: 'Node', resource: 'nodes', singular: 'node', namespaced: false, shortNames: ['no'], subresources: ['status', 'proxy'], hasSpec: true }),
  r({ group: '', version: 'v1', kind: 'Pod', resource: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], categories: ['all'], subresources: ['status', 'log', 'exec', 'attach', 'portforward', 'eviction', 'binding'], hasSpec: true }),
  r({ group: '', version: 'v1', kind: 'Service', resource: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], categories: ['all'], subresources: ['status'], hasSpec: true }),
  r({ group: '', version: 'v1', kind: 'Endpoints', resource: 'endpoints', singular: 'endpoints', namespaced: true, shortNames: ['ep'] }),
  r({ group: '', version: 'v1', kind: 'ConfigMap', resource: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'] }),
  r({ group: '', version: 'v1', kind: 'Secret', resource: 'secrets', singular: 'secret', namespaced: true }),
  r({ group: '', version: 'v1', kind: 'Event', resource: 'events', singular: 'event', namespaced: true, shortNames: ['ev'] }),
  r({ group: '', version: 'v1', kind: 'ServiceAccount', resource: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'], subresources: ['token'] }),
  r({ group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', resource: 'endpointslices', singular: 'endpointslice', namespaced: true }),
  r({ group: 'apps', version: 'v1', kind: 'Deployment', resource: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'], hasSpec: true }),
  r({ group: 'apps', version: 'v1', kind: 'ReplicaSet', resource: 'replicasets', singular: 'replicaset', namespaced: true, shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'], hasSpec: true }),
  r({ group: 'apps', version: 'v1', kind: 'DaemonSet', resource: 'daemonsets', singular: 'daemonset', namespaced: true, shortNames: ['ds'], categories: ['all'], subresources: ['status'], hasSpec: true }),
  r({ group: 'apps', version: 'v1', kind: 'StatefulSet', resource: 'statefulsets', singular: 'statefulset', namespaced: true, shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'], hasSpec: true }),
  r({ group: 'apps', version: 'v1', kind: 'ControllerRevision', resource: 'controllerrevisions', singular: 'controllerrevision', namespaced: true }),
  r({ group: '', version: 'v1', kind: 'PersistentVolumeClaim', resource: 'persistentvolumeclaims', singular: 'persistentvolumeclaim', namespaced: true, shortNames: ['pvc'], subresources: ['status'], hasSpec: true }),
  r({ group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', resource: 'ingresses', singular: 'ingress', namespaced: true, shortNames: ['ing'], subresources: ['status'], hasSpec: true }),
  r({ group: 'networking.k8s.io', version: 'v1', kind: 'IngressClass', resource: 'ingressclasses', singular: 'ingressclass', namespaced: false, hasSpec: true }),
  r({ group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', resource: 'networkpolicies', singular: 'networkpolicy', namespaced: true, shortNames: ['netpol'], hasSpec: true }),
  r({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', resource: 'roles', singular: 'role', namespaced: true }),
  r({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', resource: 'clusterroles', singular: 'clusterrole', namespaced: false }),
  r({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', resource: 'rolebindings', singular: 'rolebinding', namespaced: true }),
  r({ group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding', resource: 'clusterrolebindings', singular: 'clusterrolebinding', namespaced: false }),
  r({ group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectAccessReview', resource: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview', namespaced: false, verbs: ['create'], virtual: true }),
  r({ group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectRulesReview', resource: 'selfsubjectrulesreviews', singular: 'selfsubjectrulesreview', namespaced: false, verbs: ['create'], virtual: true }),
  r({ group: 'authorization.k8s.io', version: 'v1', kind: 'SubjectAccessReview', resource: 'subjectaccessreviews', singular: 'subjectaccessreview', namespaced: false, verbs: ['create'], virtual: true }),
  r({ group: 'authorization.k8s.io', version: 'v1', kind: 'LocalSubjectAccessReview', resource: 'localsubjectaccessreviews', singular: 'localsubjectaccessreview', namespaced: true, verbs: ['create'], virtual: true }),
  r({ group: 'authentication.k8s.io', version: 'v1', kind: 'SelfSubjectReview', resource: 'selfsubjectreviews', singular: 'selfsubjectreview', namespaced: false, verbs: ['create'], virtual: true }),
  r({ group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', resource: 'poddisruptionbudgets', singular: 'poddisruptionbudget', namespaced: true, shortNames: ['pdb'], subresources: ['status'], hasSpec: true }),
  r({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', resource: 'leases', singular: 'lease', namespaced: true, hasSpec: true }),
  r({ group: 'batch', version: 'v1', kind: 'Job', resource: 'jobs', singular: 'job', namespaced: true, categories: ['all'], subresources: ['status'], hasSpec: true }),
  r({ group: 'batch', version: 'v1', kind: 'CronJob', resource: 'cronjobs', singular: 'cronjob', namespaced: true, shortNames: ['cj'], categories: ['all'], subresources: ['status'], hasSpec: true }),
  r({ group: '', version: 'v1', kind: 'PersistentVolume', resource: 'persistentvolumes', singular: 'persistentvolume', namespaced: false, shortNames: ['pv'], subresources: ['status'] }),
  r({ group: 'storage.k8s.io', version: 'v1', kind: 'StorageClass', resource: 'storageclasses', singular: 'storageclass', namespaced: false, shortNames: ['sc'] }),
  r({ group: 'autoscaling', version: 'v2', kind: 'HorizontalPodAutoscaler', resource: 'horizontalpodautoscalers', singular: 'horizontalpodautoscaler', namespaced: true, shortNames: ['hpa'], categories: ['all'], subresources: ['status'], hasSpec: true }),
  r({ group: 'autoscaling', version: 'v1', kind: 'HorizontalPodAutoscaler', resource: 'horizontalpodautoscalers', singular: 'horizontalpodautoscaler', namespaced: true, shortNames: ['hpa'], categories: ['all'], subresources: ['status'], hasSpec: true, storageVersion: 'v2' }),
  r({ group: 'gateway.networking.k8s.io', version: 'v1', kind: 'GatewayClass', resource: 'gatewayclasses', singular: 'gatewayclass', namespaced: false, shortNames: ['gc'], categories: ['gateway-api'], subresources: ['status'], hasSpec: true }),
  r({ group: 'gateway.networking.k8s.io', version: 'v1', kind: 'Gateway', resource: 'gateways', singular: 'gateway', namespaced: true, shortNames: ['gtw'], categories: ['gateway-api'], subresources: ['status'], hasSpec: true }),
  r({ group: 'gateway.networking.k8s.io', version: 'v1', kind: 'HTTPRoute', resource: 'httproutes', singular: 'httproute', namespaced: true, categories: ['gateway-api'], subresources: ['status'], hasSpec: true }),
  r({ group: 'gateway.networking.k8s.io', version: 'v1beta1', kind: 'ReferenceGrant', resource: 'referencegrants', singular: 'referencegrant', namespaced: true, shortNames: ['refgrant'], categories: ['gateway-api'], hasSpec: true }),
  r({ group: 'metrics.k8s.io', version: 'v1beta1', kind: 'NodeMetrics', resource: 'nodes', singular: '', namespaced: false, verbs: ['get', 'list'], virtual: true }),
  r({ group: 'metrics.k8s.io', version: 'v1beta1', kind: 'PodMetrics', resource: 'pods', singular: '', namespaced: true, verbs: ['get', 'list'], virtual: true }),
])

/** The kinds kept in the store, each once: not the virtual ones (reviews, metrics.k8s.io) nor a second version served by conversion (autoscaling/v1 HPA). */
export const storedResources: readonly ResourceInfo[] = Object.freeze(resources.filter((r) => !r.virtual && !r.storageVersion))

export function groupVersion(info: Pick<ResourceInfo, 'group' | 'version'>): string {
  return info.group ? `${info.group}/${info.version}` : info.version
}

/** The storage and authorization name: `pods`, `deployments.apps`. */
export function qualifiedResource(info: Pick<ResourceInfo, 'group' | 'resource'>): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource
}

const byGvr = new Map(resources.map((x) => [`${x.group}/${x.version}/${x.resource}`, x]))
const byGvk = new Map(resources.map((x) => [`${groupVersion(x)}/${x.kind}`, x]))

export function lookupResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return byGvr.get(`${group}/${version}/${resource}`)
}

/** Find a kind from an object's apiVersion and kind, as in a manifest. */
export function lookupKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return byGvk.get(`${apiVersion}/${kind}`)
}

/** Resolve what a user typed (`po`, `pods`, `pod`, `deploy`, `deployments.apps`, `Ingress`). */
export function resolveResourceName(name: string): ResourceInfo | undefined {
  const n = name.toLowerCase()
  return resources.find(
    (x) =>
      x.resource === n ||
      x.singular === n ||
      x.kind.toLowerCase() === n ||
      qualifiedResource(x) === n ||
      (x.shortNames ?? []).includes(n),
  )
}

export const groups: readonly string[] = [...new Set(resources.map((x) => x.group).filter((g) => g !== ''))]
