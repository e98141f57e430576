// The Node authorizer and system:node on storage (controlplane/apiserver/authz.ts,
// rbac/bootstrap.ts): a node reads claims, volumes and classes, and may
// update a PersistentVolume only when it is pinned to it and the spec
// stays the same (dropping the local volume data finalizer).

import t from 'tap'
import { authorize, type AuthzView, type RequestAttributes } from '../../controlplane/apiserver/authz.ts'
import { memoryPolicy } from '../../controlplane/apiserver/rbac/authorizer.ts'
import { bootstrapPolicy } from '../../controlplane/apiserver/rbac/bootstrap.ts'

const view: AuthzView = {
  ...memoryPolicy(bootstrapPolicy()),
  nodeUsesObject: () => false,
  ingressClassOf: () => undefined,
  classUsesSecret: () => false,
  nodeUsesServiceAccount: () => false,
}
const node = { name: 'system:node:n1', uid: 'n', groups: ['system:nodes'] }
const pinned = (n: string, path = '/state/local-volumes/pvc-1') => ({
  metadata: { name: 'pvc-1' },
  spec: { local: { path }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [n] }] }] } } },
})

t.test('node access to storage', async (t) => {
  const cases: Array<[string, RequestAttributes, boolean]> = [
    ['watches volumes', { verb: 'watch', resource: 'persistentvolumes' }, true],
    ['reads claims', { verb: 'get', resource: 'persistentvolumeclaims', namespace: 'default', name: 'data' }, true],
    ['reads classes', { verb: 'list', resource: 'storageclasses.storage.k8s.io' }, true],
    ['drops a finalizer of its own volume', { verb: 'update', resource: 'persistentvolumes', name: 'pvc-1', current: pinned('n1'), incoming: pinned('n1') }, true],
    ['changes the path of its own volume', { verb: 'update', resource: 'persistentvolumes', name: 'pvc-1', current: pinned('n1'), incoming: pinned('n1', '/etc') }, false],
    ["updates another node's volume", { verb: 'patch', resource: 'persistentvolumes', name: 'pvc-1', current: pinned('n2'), incoming: pinned('n2') }, false],
    ['writes volume status', { verb: 'update', resource: 'persistentvolumes', subresource: 'status', name: 'pvc-1', current: pinned('n1'), incoming: pinned('n1') }, false],
    ['creates a volume', { verb: 'create', resource: 'persistentvolumes', incoming: pinned('n1') }, false],
    ['deletes a volume', { verb: 'delete', resource: 'persistentvolumes', name: 'pvc-1', current: pinned('n1') }, false],
    ['updates a claim', { verb: 'update', resource: 'persistentvolumeclaims', namespace: 'default', name: 'data' }, false],
  ]
  for (const [name, a, want] of cases) t.equal(authorize(node, a, view).allowed, want, name)
})
