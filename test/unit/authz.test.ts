// Authorization decisions, table-driven: deny by default, admin allowed,
// node and ingress roles limited to their own objects.

import t from 'tap'
import { authorize, type AuthzView, type RequestAttributes } from '../../controlplane/apiserver/authz.ts'

const view: AuthzView = {
  nodeUsesObject: (node, res, ns, name) => node === 'n1' && ns === 'default' && ((res === 'secrets' && name === 's1') || (res === 'configmaps' && name === 'c1')),
  ingressClassOf: (ing) => ing.spec?.ingressClassName,
  classUsesSecret: (cls, ns, name) => cls === 'external' && ns === 'default' && name === 'tls',
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
  ['ingress own status', ingress, { verb: 'patch', resource: 'ingresses.networking.k8s.io', subresource: 'status', namespace: 'default', name: 'i', current: { spec: { ingressClassName: 'external' } } }, true],
  ['ingress other status', ingress, { verb: 'patch', resource: 'ingresses.networking.k8s.io', subresource: 'status', namespace: 'default', name: 'i', current: { spec: { ingressClassName: 'internal' } } }, false],
  ['ingress reads endpointslices', ingress, { verb: 'watch', resource: 'endpointslices.discovery.k8s.io' }, true],
  ['ingress reads pods', ingress, { verb: 'list', resource: 'pods' }, false],
]

for (const [name, user, attrs, want] of cases) t.equal(authorize(user, attrs, view).allowed, want, name)
