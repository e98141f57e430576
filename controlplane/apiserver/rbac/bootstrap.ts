// The built-in ClusterRoles, Roles and their bindings, as Kubernetes'
// plugin/pkg/auth/authorizer/rbac/bootstrappolicy ships them (trimmed to
// what a Skiff cluster serves and uses), plus Skiff's node and ingress
// roles: the parts of today's node and ingress rules that RBAC can express.
// Every object is labelled kubernetes.io/bootstrapping=rbac-defaults and
// annotated rbac.authorization.kubernetes.io/autoupdate=true; the apiserver
// reconciles them at start (reconcile.ts). Pure data.

import type { KubeObject } from '../../api/types.ts'
import { rbacGroup } from '../../api/validation/rbac.ts'
import { groups } from '../authn.ts'
import type { PolicyRule, Subject } from './rules.ts'

export const bootstrapLabel = 'kubernetes.io/bootstrapping'
export const autoupdateAnnotation = 'rbac.authorization.kubernetes.io/autoupdate'
export const aggregateTo = (role: 'admin' | 'edit' | 'view') => `rbac.authorization.k8s.io/aggregate-to-${role}`

export const unauthenticatedGroup = 'system:unauthenticated'
export const monitoringGroup = 'system:monitoring'
/** The Role and ClusterRole Skiff's ingress controllers are bound to. */
export const ingressRoleName = 'skiff:ingress-controller'

const read = ['get', 'list', 'watch']
const write = ['create', 'delete', 'deletecollection', 'patch', 'update']

const rule = (verbs: string[], apiGroups: string[], resources: string[], resourceNames?: string[]): PolicyRule => ({
  verbs, apiGroups, resources, ...(resourceNames ? { resourceNames } : {}),
})
const urls = (verbs: string[], nonResourceURLs: string[]): PolicyRule => ({ verbs, nonResourceURLs })

function meta(name: string, extraLabels: Record<string, string> = {}, namespace?: string) {
  return {
    name,
    ...(namespace ? { namespace } : {}),
    labels: { [bootstrapLabel]: 'rbac-defaults', ...extraLabels },
    annotations: { [autoupdateAnnotation]: 'true' },
  }
}

function clusterRole(name: string, rules: PolicyRule[], o: { labels?: Record<string, string>; aggregate?: string } = {}): KubeObject {
  return {
    apiVersion: `${rbacGroup}/v1`,
    kind: 'ClusterRole',
    metadata: meta(name, o.labels),
    ...(o.aggregate ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [o.aggregate]: 'true' } }] } } : {}),
    rules,
  }
}

function role(namespace: string, name: string, rules: PolicyRule[]): KubeObject {
  return { apiVersion: `${rbacGroup}/v1`, kind: 'Role', metadata: meta(name, {}, namespace), rules }
}

const group = (name: string): Subject => ({ kind: 'Group', apiGroup: rbacGroup, name })

function clusterRoleBinding(name: string, roleName: string, subjects: Subject[]): KubeObject {
  return { apiVersion: `${rbacGroup}/v1`, kind: 'ClusterRoleBinding', metadata: meta(name), roleRef: { apiGroup: rbacGroup, kind: 'ClusterRole', name: roleName }, subjects }
}

function roleBinding(namespace: string, name: string, roleName: string, subjects: Subject[]): KubeObject {
  return { apiVersion: `${rbacGroup}/v1`, kind: 'RoleBinding', metadata: meta(name, {}, namespace), roleRef: { apiGroup: rbacGroup, kind: 'Role', name: roleName }, subjects }
}

const viewRules: PolicyRule[] = [
  rule(read, [''], ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status']),
  rule(read, [''], ['bindings', 'events', 'limitranges', 'namespaces/status', 'pods/log', 'pods/status', 'replicationcontrollers/status', 'resourcequotas', 'resourcequotas/status']),
  rule(read, [''], ['namespaces']),
  rule(read, ['discovery.k8s.io'], ['endpointslices']),
  rule(read, ['apps'], ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status']),
  rule(read, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
  rule(read, ['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status']),
  rule(read, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
  rule(read, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
]

const editRules: PolicyRule[] = [
  rule(['impersonate'], [''], ['serviceaccounts']),
  rule(write, [''], ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy']),
  rule(['create'], [''], ['pods/eviction']),
  rule(write, [''], ['configmaps', 'events', 'persistentvolumeclaims', 'replicationcontrollers', 'replicationcontrollers/scale', 'secrets', 'serviceaccounts', 'services', 'services/proxy']),
  rule(['create'], [''], ['serviceaccounts/token']),
  rule(write, ['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale']),
  rule(write, ['autoscaling'], ['horizontalpodautoscalers']),
  rule(write, ['batch'], ['cronjobs', 'jobs']),
  rule(write, ['policy'], ['poddisruptionbudgets']),
  rule(write, ['networking.k8s.io'], ['ingresses', 'networkpolicies']),
  rule(write, ['coordination.k8s.io'], ['leases']),
  rule(read, [''], ['secrets', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'services/proxy']),
  rule(read, ['coordination.k8s.io'], ['leases']),
]

const adminRules: PolicyRule[] = [
  rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
  rule([...read, ...write], [rbacGroup], ['rolebindings', 'roles']),
]

/** What a node agent reads, and the Events it writes; its own Node, Lease, pods and their Secrets are the Node authorizer's (authz.ts). */
const nodeRules: PolicyRule[] = [
  rule(read, [''], ['nodes', 'pods', 'services', 'endpoints', 'namespaces']),
  rule(read, ['discovery.k8s.io'], ['endpointslices']),
  rule(read, ['networking.k8s.io'], ['ingresses', 'ingressclasses']),
  rule(read, ['networking.k8s.io'], ['networkpolicies']),
  rule(['create', 'patch'], [''], ['events']),
  rule(read, [''], ['persistentvolumeclaims', 'persistentvolumes']),
  rule(read, ['storage.k8s.io'], ['storageclasses']),
]

/** Routing inputs and Events for every ingress class; Secrets, state and Leases of its own class are the ingress authorizer's (authz.ts). */
const ingressRules: PolicyRule[] = [
  rule(read, ['networking.k8s.io'], ['ingresses', 'ingressclasses']),
  rule(read, [''], ['services', 'endpoints', 'namespaces', 'nodes']),
  rule(read, ['discovery.k8s.io'], ['endpointslices']),
  rule(['create', 'patch'], [''], ['events']),
  // Gateway API: every pool reads the kinds and writes the status of its own (the supervisor picks its class's objects).
  rule(read, ['gateway.networking.k8s.io'], ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants']),
  rule(['get', 'update', 'patch'], ['gateway.networking.k8s.io'], ['gatewayclasses/status', 'gateways/status', 'httproutes/status']),
]

/** The identity of a kube-scheduler run outside the apiserver's process (the in-process one runs as the controller manager). */
export const schedulerUser = 'system:kube-scheduler'

/** Kubernetes' system:kube-scheduler ClusterRole, trimmed to the kinds Skiff serves. */
const schedulerRules: PolicyRule[] = [
  rule(['create', 'update', 'patch'], ['', 'events.k8s.io'], ['events']),
  rule(['create'], ['coordination.k8s.io'], ['leases']),
  rule(['get', 'update'], ['coordination.k8s.io'], ['leases'], ['kube-scheduler']),
  rule(read, [''], ['nodes']),
  rule(['get', 'list', 'watch', 'delete'], [''], ['pods']),
  rule(['create'], [''], ['pods/binding', 'bindings']),
  rule(['patch', 'update'], [''], ['pods/status']),
  rule(read, [''], ['services', 'replicationcontrollers']),
  rule(read, ['apps', 'extensions'], ['replicasets']),
  rule(read, ['apps'], ['statefulsets']),
  rule(read, ['policy'], ['poddisruptionbudgets']),
  rule(read, [''], ['persistentvolumeclaims', 'persistentvolumes']),
  rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
  rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
  rule(read, [''], ['namespaces']),
  rule(read, ['storage.k8s.io'], ['csinodes', 'csidrivers', 'csistoragecapacities']),
]

export function bootstrapPolicy(): KubeObject[] {
  return [
    clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])]),
    clusterRole('admin', [], { aggregate: aggregateTo('admin') }),
    clusterRole('edit', [], { aggregate: aggregateTo('edit'), labels: { [aggregateTo('admin')]: 'true' } }),
    clusterRole('view', [], { aggregate: aggregateTo('view'), labels: { [aggregateTo('edit')]: 'true' } }),
    clusterRole('system:aggregate-to-admin', adminRules, { labels: { [aggregateTo('admin')]: 'true' } }),
    clusterRole('system:aggregate-to-edit', editRules, { labels: { [aggregateTo('edit')]: 'true' } }),
    clusterRole('system:aggregate-to-view', viewRules, { labels: { [aggregateTo('view')]: 'true' } }),
    // metrics-server's: metrics readable by view, edit and admin.
    clusterRole('system:aggregated-metrics-reader', [rule(read, ['metrics.k8s.io'], ['pods', 'nodes'])], { labels: { [aggregateTo('view')]: 'true', [aggregateTo('edit')]: 'true', [aggregateTo('admin')]: 'true' } }),
    clusterRole('system:basic-user', [
      rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
      rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
    ]),
    clusterRole('system:discovery', [urls(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'])]),
    clusterRole('system:public-info-viewer', [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])]),
    clusterRole('system:monitoring', [urls(['get'], ['/healthz', '/healthz/*', '/livez', '/livez/*', '/metrics', '/metrics/slis', '/readyz', '/readyz/*'])]),
    clusterRole('system:node', nodeRules),
    clusterRole(ingressRoleName, ingressRules),
    clusterRoleBinding('cluster-admin', 'cluster-admin', [group(groups.admin)]),
    clusterRoleBinding('system:basic-user', 'system:basic-user', [group(groups.authenticated)]),
    clusterRoleBinding('system:discovery', 'system:discovery', [group(groups.authenticated)]),
    clusterRoleBinding('system:public-info-viewer', 'system:public-info-viewer', [group(groups.authenticated), group(unauthenticatedGroup)]),
    clusterRoleBinding('system:monitoring', 'system:monitoring', [group(monitoringGroup)]),
    clusterRoleBinding('system:node', 'system:node', [group(groups.nodes)]),
    clusterRoleBinding(ingressRoleName, ingressRoleName, [group(groups.ingress)]),
    clusterRole(schedulerUser, schedulerRules),
    clusterRoleBinding(schedulerUser, schedulerUser, [{ kind: 'User', apiGroup: rbacGroup, name: schedulerUser }]),
    // Leases: node heartbeats (the LoadBalancer speaker judges its peers) and ingress presence (endpoint withdrawal).
    role('kube-node-lease', 'system:node-leases', [rule(read, ['coordination.k8s.io'], ['leases'])]),
    roleBinding('kube-node-lease', 'system:node-leases', 'system:node-leases', [group(groups.nodes)]),
    role('kube-system', 'system:node-leases', [rule(read, ['coordination.k8s.io'], ['leases'])]),
    roleBinding('kube-system', 'system:node-leases', 'system:node-leases', [group(groups.nodes)]),
    role('kube-system', ingressRoleName, [
      rule(['list', 'watch'], ['coordination.k8s.io'], ['leases']),
      rule(read, [''], ['secrets'], ['skiff-ingress-default-tls']),
    ]),
    roleBinding('kube-system', ingressRoleName, ingressRoleName, [group(groups.ingress)]),
  ]
}
