// nodes/{node}/proxy (controlplane/apiserver/node-proxy.ts handleNodesProxy,
// paths.ts): which paths reach a kubelet, and who may (get on nodes/proxy,
// as Kubernetes authorizes it: cluster-admin yes, the default user roles and
// nodes no).

import t from 'tap'
import { nodeProxyPath, parsePath } from '../../controlplane/apiserver/paths.ts'
import { authorize, type AuthzView } from '../../controlplane/apiserver/authz.ts'
import { memoryPolicy } from '../../controlplane/apiserver/rbac/authorizer.ts'
import { bootstrapPolicy } from '../../controlplane/apiserver/rbac/bootstrap.ts'
import { apiResourceList } from '../../controlplane/apiserver/discovery.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

t.test('paths: the rest after /proxy goes to the kubelet as sent', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['/api/v1/nodes/n1/proxy/podLogs/', '/podLogs/'],
    ['/api/v1/nodes/n1/proxy/podLogs/default/web-1/u1/app', '/podLogs/default/web-1/u1/app'],
    ['/api/v1/nodes/n1/proxy/podLogs/a%2Fb/x/y/z', '/podLogs/a%2Fb/x/y/z'],
    ['/api/v1/nodes/n1/proxy', '/'],
    ['/api/v1/nodes/n1/proxy/', '/'],
    ['/api/v1/nodes/n1/status', undefined],
    ['/api/v1/namespaces/default/pods/p/proxy/x', undefined],
  ]
  for (const [path, want] of cases) t.equal(nodeProxyPath(path), want, path)
  const p = parsePath('/api/v1/nodes/n1/proxy/podLogs/default/web-1/u1/app')
  t.match(p, { type: 'resource', path: { name: 'n1', subresource: 'proxy', proxyPath: '/podLogs/default/web-1/u1/app' } })
  t.throws(() => parsePath('/api/v1/nodes/n1/status/extra'), /could not find the requested resource/, 'other subresources still take no extra segments')
  t.throws(() => parsePath('/api/v1/namespaces/default/pods/p/proxy/x'), /could not find/, 'pods/proxy is not served')
})

t.test('discovery lists nodes/proxy with get only, kind NodeProxyOptions', async (t) => {
  const list = apiResourceList('v1') as { resources: Array<{ name: string; kind: string; verbs: string[] }> }
  t.match(list.resources.find((r) => r.name === 'nodes/proxy'), { kind: 'NodeProxyOptions', verbs: ['get'] })
})

t.test('authorization: get on nodes/proxy', async (t) => {
  const crb = (name: string, role: string, user: string): KubeObject => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
  } as KubeObject)
  const view: AuthzView = {
    ...memoryPolicy([
      ...bootstrapPolicy(), crb('ops', 'cluster-admin', 'ops'),
      crb('a', 'system:aggregate-to-admin', 'alice'), crb('e', 'system:aggregate-to-edit', 'alice'), crb('v', 'system:aggregate-to-view', 'alice'),
    ]),
    nodeUsesObject: () => false, nodeUsesServiceAccount: () => false, ingressClassOf: () => undefined, classUsesSecret: () => false,
  }
  const user = (name: string, groups: string[] = ['system:authenticated']) => ({ name, uid: name, groups })
  const get = { verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'n1' }
  const cases: Array<[string, ReturnType<typeof user>, typeof get, boolean]> = [
    ['system:masters', user('admin', ['system:masters']), get, true],
    ['bound to cluster-admin', user('ops'), get, true],
    ['admin, edit and view rules (namespaced users)', user('alice'), get, false],
    ['an authenticated user', user('bob'), get, false],
    ['the node itself (its own Node is not its kubelet proxy)', user('system:node:n1', ['system:nodes', 'system:authenticated']), get, false],
  ]
  for (const [name, u, a, want] of cases) t.equal(authorize(u, a, view).allowed, want, name)
})
