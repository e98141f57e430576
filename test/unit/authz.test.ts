// Authorization decisions through the whole chain (system:masters, Node,
// ingress, RBAC over the built-in policy), table-driven: deny by default,
// admin allowed, node and ingress identities keep exactly the access they
// had before RBAC, limited to their own objects; Kubernetes' 403 wording.

import t from 'tap'
import { authorize, forbidden, type AuthzView, type RequestAttributes } from '../../controlplane/apiserver/authz.ts'
import { memoryPolicy } from '../../controlplane/apiserver/rbac/authorizer.ts'
import { bootstrapPolicy } from '../../controlplane/apiserver/rbac/bootstrap.ts'

const view: AuthzView = {
  ...memoryPolicy(bootstrapPolicy()),
  nodeUsesObject: (node, res, ns, name) => node === 'n1' && ns === 'default' && ((res === 'secrets' && name === 's1') || (res === 'configmaps' && name === 'c1')),
  ingressClassOf: (ing) => ing.spec?.ingressClassName,
  classUsesSecret: (cls, ns, name) => cls === 'external' && ns === 'default' && name === 'tls',
  classReadsGrantedSecret: (cls, ns, name) => cls === 'external' && ns === 'certs' && name === 'granted',
  nodeUsesServiceAccount: (node, ns, name) => node === 'n1' && ns === 'default' && name === 'reader',
}
const admin = { name: 'admin', uid: 'a', groups: ['system:masters'] }
const node = { name: 'system:node:n1', uid: 'n', groups: ['system:nodes'] }
const ingress = { name: 'skiff:ingress:external', uid: 'i', groups: ['skiff:ingress-controllers'] }
const nobody = { name: 'bob', uid: 'b', groups: ['system:authenticated'] }

const cases: Array<[string, typeof admin, RequestAttributes, boolean]> = [
  ['admin anything', admin, { verb: 'delete', resource: 'namespaces', name: 'x' }, true],
  ['nobody is denied', nobody, { verb: 'get', resource: 'pods', namespace: 'default', name: 'p' }, false],
  ['node reads pods', node, { verb: 'list', resource: 'pods' }, true],
  ['node writes own node', node, { verb: 'patch', resource: 'nodes', name: 'n1' }, true],
  ['node writes other node', node, { verb: 'patch', resource: 'nodes', name: 'n2' }, false],
  ['node own lease', node, { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease', name: 'n1' }, true],
  ['node other lease', node, { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease', name: 'n2' }, false],
  ['node watches every node lease (lb-speaker liveness)', node, { verb: 'watch', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease' }, true],
  ['node lists node leases', node, { verb: 'list', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease' }, true],
  ['node reads another node lease', node, { verb: 'get', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease', name: 'n2' }, true],
  ['node watches kube-system leases (ingress presence)', node, { verb: 'watch', resource: 'leases.coordination.k8s.io', namespace: 'kube-system' }, true],
  ['node writes a kube-system lease', node, { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: 'kube-system', name: 'ingress-external-node-n1' }, false],
  ['node deletes another node lease', node, { verb: 'delete', resource: 'leases.coordination.k8s.io', namespace: 'kube-node-lease', name: 'n2' }, false],
  ['node lists leases elsewhere', node, { verb: 'list', resource: 'leases.coordination.k8s.io', namespace: 'default' }, false],
  ['node lists leases of all namespaces', node, { verb: 'list', resource: 'leases.coordination.k8s.io' }, false],
  ['node own pod status', node, { verb: 'patch', resource: 'pods', subresource: 'status', namespace: 'default', name: 'p', current: { spec: { nodeName: 'n1' } } }, true],
  ['node other pod status', node, { verb: 'patch', resource: 'pods', subresource: 'status', namespace: 'default', name: 'p', current: { spec: { nodeName: 'n2' } } }, false],
  ['node pod spec write', node, { verb: 'update', resource: 'pods', namespace: 'default', name: 'p', current: { spec: { nodeName: 'n1' } } }, false],
  ['node used secret', node, { verb: 'get', resource: 'secrets', namespace: 'default', name: 's1' }, true],
  ['node unused secret', node, { verb: 'get', resource: 'secrets', namespace: 'default', name: 's2' }, false],
  ['node lists secrets', node, { verb: 'list', resource: 'secrets', namespace: 'default' }, false],
  ['node used configmap', node, { verb: 'get', resource: 'configmaps', namespace: 'default', name: 'c1' }, true],
  ['node creates events', node, { verb: 'create', resource: 'events', namespace: 'default' }, true],
  ['node creates deployments', node, { verb: 'create', resource: 'deployments.apps', namespace: 'default' }, false],
  ['ingress named secret', ingress, { verb: 'get', resource: 'secrets', namespace: 'default', name: 'tls' }, true],
  ['ingress other secret', ingress, { verb: 'get', resource: 'secrets', namespace: 'default', name: 'x' }, false],
  ['ingress watches a named secret pinned by name', ingress, { verb: 'watch', resource: 'secrets', namespace: 'default', name: 'tls' }, true],
  ['ingress reads a Secret granted to a Gateway of its class', ingress, { verb: 'watch', resource: 'secrets', namespace: 'certs', name: 'granted' }, true],
  ['ingress may not write a granted Secret', ingress, { verb: 'update', resource: 'secrets', namespace: 'certs', name: 'granted' }, false],
  ['ingress lists every secret', ingress, { verb: 'list', resource: 'secrets', namespace: 'default' }, false],
  ['ingress class state secret', ingress, { verb: 'update', resource: 'secrets', namespace: 'kube-system', name: 'skiff-ingress-external-acme-account' }, true],
  ['ingress class state configmap', ingress, { verb: 'watch', resource: 'configmaps', namespace: 'kube-system', name: 'skiff-ingress-external-acme-challenges' }, true],
  ['ingress other class state', ingress, { verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'skiff-ingress-internal-acme-account' }, false],
  ['ingress class-prefixed name outside kube-system', ingress, { verb: 'get', resource: 'configmaps', namespace: 'default', name: 'skiff-ingress-external-x' }, false],
  ['ingress reads the default certificate', ingress, { verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'skiff-ingress-default-tls' }, true],
  ['ingress may not write the default certificate', ingress, { verb: 'update', resource: 'secrets', namespace: 'kube-system', name: 'skiff-ingress-default-tls' }, false],
  ['ingress watches kube-system leases', ingress, { verb: 'watch', resource: 'leases.coordination.k8s.io', namespace: 'kube-system' }, true],
  ['ingress lists leases elsewhere', ingress, { verb: 'list', resource: 'leases.coordination.k8s.io', namespace: 'default' }, false],
  ['ingress writes its presence lease', ingress, { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: 'kube-system', name: 'ingress-external-node-n1' }, true],
  ['ingress writes another class lease', ingress, { verb: 'update', resource: 'leases.coordination.k8s.io', namespace: 'kube-system', name: 'ingress-internal-node-n1' }, false],
  ['ingress deletes no class state', ingress, { verb: 'delete', resource: 'secrets', namespace: 'kube-system', name: 'skiff-ingress-external-acme-account' }, false],
  ['ingress own status', ingress, { verb: 'patch', resource: 'ingresses.networking.k8s.io', subresource: 'status', namespace: 'default', name: 'i', current: { spec: { ingressClassName: 'external' } } }, true],
  ['ingress other status', ingress, { verb: 'patch', resource: 'ingresses.networking.k8s.io', subresource: 'status', namespace: 'default', name: 'i', current: { spec: { ingressClassName: 'internal' } } }, false],
  ['ingress reads endpointslices', ingress, { verb: 'watch', resource: 'endpointslices.discovery.k8s.io' }, true],
  ['ingress reads pods', ingress, { verb: 'list', resource: 'pods' }, false],
]

for (const [name, user, attrs, want] of cases) t.equal(authorize(user, attrs, view).allowed, want, name)

t.test('403 messages as kube-apiserver writes them', async (t) => {
  const msg = (u: typeof admin, a: RequestAttributes) => forbidden(u, a, authorize(u, a, view).reason).message
  t.equal(msg(nobody, { verb: 'list', resource: 'pods', namespace: 'default' }), 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"')
  t.equal(msg(nobody, { verb: 'get', resource: 'deployments.apps', namespace: 'web', name: 'd' }), 'deployments.apps "d" is forbidden: User "bob" cannot get resource "deployments" in API group "apps" in the namespace "web"')
  t.equal(msg(nobody, { verb: 'delete', resource: 'nodes', name: 'n1' }), 'nodes "n1" is forbidden: User "bob" cannot delete resource "nodes" in API group "" at the cluster scope')
  t.equal(msg(nobody, { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'default', name: 'p' }), 'pods "p" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"')
  t.equal(msg(node, { verb: 'get', resource: 'secrets', namespace: 'default', name: 's2' }), `secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object`)
  const e = forbidden(nobody, { verb: 'get', resource: 'deployments.apps', namespace: 'web', name: 'd' }, '')
  t.same(e.details, { name: 'd', group: 'apps', kind: 'deployments' })
})

t.test('a list or watch pinned to one name is authorized as a request on that name', async (t) => {
  const { singleNameSelector } = await import('../../controlplane/apiserver/handlers.ts')
  t.equal(singleNameSelector('metadata.name=tls'), 'tls')
  t.equal(singleNameSelector('metadata.name==tls'), 'tls')
  t.equal(singleNameSelector('metadata.name!=tls'), undefined)
  t.equal(singleNameSelector('metadata.name=tls,metadata.namespace=x'), undefined)
  t.equal(singleNameSelector(null), undefined)
})

t.test('node: tokens only for the ServiceAccounts its pods run as', async (t) => {
  const token = (name: string, user = node) => authorize(user, { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: 'default', name }, view).allowed
  t.ok(token('reader'), 'a pod on n1 runs as default/reader')
  t.notOk(token('admin'), 'no pod on n1 runs as default/admin')
  t.notOk(token('reader', { name: 'system:node:n2', uid: 'n2', groups: ['system:nodes'] }), 'n2 has no such pod')
})
