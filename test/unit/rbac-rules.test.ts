// RBAC rule evaluation (controlplane/apiserver/rbac/rules.ts, authorizer.ts),
// table-driven as Kubernetes' rbac_test.go: verbs, apiGroups, resources and
// subresources, resourceNames, nonResourceURLs, `*`; bindings, subjects and
// roleRefs; aggregation; the reconciliation of the built-in policy.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { memoryPolicy, rbacAuthorize, rbacRulesFor } from '../../controlplane/apiserver/rbac/authorizer.ts'
import { bootstrapPolicy } from '../../controlplane/apiserver/rbac/bootstrap.ts'
import { aggregateFixpoint, planReconcile } from '../../controlplane/apiserver/rbac/reconcile.ts'
import { aggregatedRules, ruleAllows, rulesOf, type Attributes, type PolicyRule } from '../../controlplane/apiserver/rbac/rules.ts'

const user = { name: 'jane', groups: ['devs', 'system:authenticated'] }
const req = (verb: string, resource: string, o: Partial<Attributes> = {}): Attributes => ({ user, verb, resourceRequest: true, apiGroup: '', resource, subresource: '', namespace: 'default', name: '', ...o })
const path = (verb: string, p: string): Attributes => ({ user, verb, resourceRequest: false, path: p })

const rules: Array<[string, PolicyRule, Attributes, boolean]> = [
  ['exact verb, group, resource', { verbs: ['get'], apiGroups: [''], resources: ['pods'] }, req('get', 'pods'), true],
  ['another verb', { verbs: ['get'], apiGroups: [''], resources: ['pods'] }, req('list', 'pods'), false],
  ['another group', { verbs: ['get'], apiGroups: ['apps'], resources: ['pods'] }, req('get', 'pods'), false],
  ['* verbs', { verbs: ['*'], apiGroups: [''], resources: ['pods'] }, req('deletecollection', 'pods'), true],
  ['* groups', { verbs: ['get'], apiGroups: ['*'], resources: ['deployments'] }, req('get', 'deployments', { apiGroup: 'apps' }), true],
  ['* resources', { verbs: ['get'], apiGroups: ['apps'], resources: ['*'] }, req('get', 'deployments', { apiGroup: 'apps' }), true],
  ['* resources include subresources', { verbs: ['get'], apiGroups: [''], resources: ['*'] }, req('get', 'pods', { subresource: 'log' }), true],
  ['a resource does not grant its subresource', { verbs: ['get'], apiGroups: [''], resources: ['pods'] }, req('get', 'pods', { subresource: 'log' }), false],
  ['resource/subresource', { verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }, req('get', 'pods', { subresource: 'log' }), true],
  ['resource/subresource does not grant the resource', { verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }, req('get', 'pods'), false],
  ['*/subresource', { verbs: ['patch'], apiGroups: ['apps'], resources: ['*/scale'] }, req('patch', 'deployments', { apiGroup: 'apps', subresource: 'scale' }), true],
  ['resource/*', { verbs: ['create'], apiGroups: [''], resources: ['pods/*'] }, req('create', 'pods', { subresource: 'exec' }), true],
  ['resource/* is not the resource', { verbs: ['create'], apiGroups: [''], resources: ['pods/*'] }, req('create', 'pods'), false],
  ['resourceNames match the name', { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a'] }, req('get', 'secrets', { name: 'a' }), true],
  ['resourceNames miss another name', { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a'] }, req('get', 'secrets', { name: 'b' }), false],
  ['resourceNames never grant a list', { verbs: ['list'], apiGroups: [''], resources: ['secrets'], resourceNames: ['a'] }, req('list', 'secrets'), false],
  ['nonResourceURLs exact', { verbs: ['get'], nonResourceURLs: ['/healthz'] }, path('get', '/healthz'), true],
  ['nonResourceURLs prefix *', { verbs: ['get'], nonResourceURLs: ['/apis/*'] }, path('get', '/apis/apps/v1'), true],
  ['nonResourceURLs *', { verbs: ['get'], nonResourceURLs: ['*'] }, path('get', '/metrics'), true],
  ['nonResourceURLs another path', { verbs: ['get'], nonResourceURLs: ['/healthz'] }, path('get', '/metrics'), false],
  ['nonResourceURLs another verb', { verbs: ['get'], nonResourceURLs: ['/healthz'] }, path('post', '/healthz'), false],
  ['a resource rule grants no path', { verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, path('get', '/metrics'), false],
  ['a path rule grants no resource', { verbs: ['*'], nonResourceURLs: ['*'] }, req('get', 'pods'), false],
]
for (const [name, rule, a, want] of rules) t.equal(ruleAllows(a, rule), want, name)

const rbac = (kind: string, name: string, extra: Record<string, unknown>, namespace?: string): KubeObject =>
  ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: { name, ...(namespace ? { namespace } : {}) }, ...extra }) as KubeObject

t.test('bindings: subjects, scopes and roleRefs', async (t) => {
  const policy = memoryPolicy([
    rbac('Role', 'reader', { rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }] }, 'default'),
    rbac('ClusterRole', 'secret-reader', { rules: [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }] }),
    rbac('RoleBinding', 'jane-reads', { roleRef: { kind: 'Role', name: 'reader' }, subjects: [{ kind: 'User', name: 'jane' }] }, 'default'),
    rbac('RoleBinding', 'devs-secrets', { roleRef: { kind: 'ClusterRole', name: 'secret-reader' }, subjects: [{ kind: 'Group', name: 'devs' }] }, 'web'),
    rbac('RoleBinding', 'robot', { roleRef: { kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'robot' }] }, 'default'),
    rbac('ClusterRoleBinding', 'dangling', { roleRef: { kind: 'ClusterRole', name: 'gone' }, subjects: [{ kind: 'Group', name: 'devs' }] }),
  ])
  t.ok(rbacAuthorize(policy, req('list', 'pods')).allowed, 'a Role through a RoleBinding, in its namespace')
  t.notOk(rbacAuthorize(policy, req('list', 'pods', { namespace: 'web' })).allowed, 'not in another namespace')
  t.notOk(rbacAuthorize(policy, req('list', 'pods', { namespace: '' })).allowed, 'not across namespaces')
  t.ok(rbacAuthorize(policy, req('get', 'secrets', { namespace: 'web', name: 's' })).allowed, 'a ClusterRole through a RoleBinding, in that namespace')
  t.notOk(rbacAuthorize(policy, req('get', 'secrets', { name: 's' })).allowed, 'only there')
  const sa = { name: 'system:serviceaccount:default:robot', groups: [] }
  t.ok(rbacAuthorize(policy, { ...req('get', 'pods'), user: sa }).allowed, 'a ServiceAccount subject without namespace is the binding namespace')
  t.equal(rbacAuthorize(policy, req('delete', 'nodes', { namespace: '' })).reason, 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found')
  const { rules } = rbacRulesFor(policy, user, 'default')
  t.same(rules, [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }])
})

t.test('aggregation: rules of the matching roles, in name order, each once', async (t) => {
  const target = rbac('ClusterRole', 'monitoring', { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { m: 'true' } }] }, rules: [] })
  const a = { ...rbac('ClusterRole', 'b', { rules: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }] }), metadata: { name: 'b', labels: { m: 'true' } } }
  const b = { ...rbac('ClusterRole', 'a', { rules: [{ verbs: ['list'], apiGroups: [''], resources: ['pods'] }, { verbs: ['get'], apiGroups: [''], resources: ['pods'] }] }), metadata: { name: 'a', labels: { m: 'true' } } }
  const other = rbac('ClusterRole', 'c', { rules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }] })
  t.same(aggregatedRules(target, [target, a, b, other]), [{ verbs: ['list'], apiGroups: [''], resources: ['pods'] }, { verbs: ['get'], apiGroups: [''], resources: ['pods'] }])
  t.equal(aggregatedRules(other, [target, a]), undefined, 'no aggregationRule')
})

t.test('the built-in policy: admin, edit, view aggregate; every object is an rbac default', async (t) => {
  const all = bootstrapPolicy()
  for (const o of all) t.equal(o.metadata.labels?.['kubernetes.io/bootstrapping'], 'rbac-defaults', `${o.kind} ${o.metadata.name}`)
  const roles = aggregateFixpoint(all.filter((o) => o.kind === 'ClusterRole'))
  t.same(roles.map((r) => r.metadata.name).sort(), ['admin', 'edit', 'view'])
  const edit = rulesOf(roles.find((r) => r.metadata.name === 'edit')!)
  const view = rulesOf(roles.find((r) => r.metadata.name === 'view')!)
  const admin = rulesOf(roles.find((r) => r.metadata.name === 'admin')!)
  const grants = (rs: PolicyRule[], a: Attributes) => rs.some((r) => ruleAllows(a, r))
  t.ok(grants(view, req('list', 'pods')), 'view lists pods')
  t.notOk(grants(view, req('get', 'secrets', { name: 's' })), 'view reads no secrets')
  t.ok(grants(edit, req('create', 'deployments', { apiGroup: 'apps' })), 'edit creates deployments')
  t.ok(grants(edit, req('list', 'pods')), 'edit includes view')
  t.ok(grants(admin, req('create', 'rolebindings', { apiGroup: 'rbac.authorization.k8s.io' })), 'admin binds roles')
  t.ok(grants(admin, req('create', 'deployments', { apiGroup: 'apps' })), 'admin includes edit')
})

t.test('reconciling a built-in object', async (t) => {
  const want = rbac('ClusterRole', 'x', { rules: [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }] })
  want.metadata.annotations = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' }
  t.equal(planReconcile(want, undefined).action, 'create', 'missing: created')
  const extended = { ...want, metadata: { ...want.metadata, resourceVersion: '5' }, rules: [{ verbs: ['list'], apiGroups: [''], resources: ['nodes'] }] }
  const plan = planReconcile(want, extended)
  t.equal(plan.action, 'update', 'autoupdate: the missing rule is added')
  if (plan.action === 'update') t.same(plan.obj.rules, [{ verbs: ['list'], apiGroups: [''], resources: ['nodes'] }, { verbs: ['get'], apiGroups: [''], resources: ['pods'] }], 'nothing removed')
  t.equal(planReconcile(want, { ...want, metadata: { ...want.metadata, resourceVersion: '6' } }).action, 'none', 'unchanged')
  const frozen = { ...extended, metadata: { name: 'x', annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'false' } } }
  t.equal(planReconcile(want, frozen).action, 'none', 'autoupdate false: left alone')
  const binding = rbac('ClusterRoleBinding', 'b', { roleRef: { kind: 'ClusterRole', name: 'x', apiGroup: 'rbac.authorization.k8s.io' }, subjects: [{ kind: 'Group', name: 'g' }] })
  binding.metadata.annotations = want.metadata.annotations
  const moved = { ...binding, metadata: { ...binding.metadata, uid: 'u', resourceVersion: '3' }, roleRef: { ...binding.roleRef, name: 'y' }, subjects: [{ kind: 'User', name: 'u' }] }
  const re = planReconcile(binding, moved)
  t.equal(re.action, 'recreate', 'a changed roleRef is recreated')
  if (re.action === 'recreate') t.same(re.obj.subjects, [{ kind: 'User', name: 'u' }, { kind: 'Group', name: 'g' }], 'subjects kept and added')
})

t.test('skiff user add: names a certificate can carry', async (t) => {
  const { checkUser } = await import('../../cli/user.ts')
  t.doesNotThrow(() => checkUser('alice', ['devs', 'qa:leads']))
  t.throws(() => checkUser('system:admin', []), /is reserved/)
  t.throws(() => checkUser('a,b', []), /cannot be a certificate subject/)
  t.throws(() => checkUser('alice', ['x/y']), /group "x\/y"/)
  t.throws(() => checkUser('', []), /user name/)
})
