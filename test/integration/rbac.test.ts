// RBAC with the real kubectl 1.32 against one apiserver on a real
// redis-server (controllers on, for ClusterRole aggregation): the four kinds
// applied, printed and validated; the authorizer chain; access reviews
// (kubectl auth can-i / whoami); ServiceAccount tokens; skiff user add.

import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { renderKubeconfig } from '../../cli/kubeconfig.ts'
import { eventually } from '../../lib/net.ts'
import { runKubectl, startTestCluster, type TestCluster } from '../harness/cluster.ts'

const clusterRoles = lookupResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!
const serviceAccounts = lookupResource('', 'v1', 'serviceaccounts')!

const roles = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods, pods/log]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- {kind: User, name: jane}
- {kind: Group, name: readers}
- {kind: ServiceAccount, name: robot, namespace: default}
roleRef: {kind: Role, name: pod-reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.example.com/aggregate-to-monitoring: "true"}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring-endpoints
  labels: {rbac.example.com/aggregate-to-monitoring: "true"}
rules:
- apiGroups: [""]
  resources: [services, endpoints, pods]
  verbs: [get, list, watch]
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: monitoring}
subjects: [{kind: Group, name: monitors}]
roleRef: {kind: ClusterRole, name: monitoring, apiGroup: rbac.authorization.k8s.io}
`

const skiffEntry = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))

/** The real skiff CLI in a child process. */
function skiff(stateDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [skiffEntry, '--state-dir', stateDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

/** kubectl as another identity: its own kubeconfig (a token or a whole kubeconfig text) and cache dir. */
async function kubectlAs(t: { teardown(fn: () => unknown): void }, c: TestCluster, who: { token: string } | { kubeconfig: string }) {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-rbac-kubectl-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'kubeconfig')
  await writeFile(kubeconfig, 'token' in who ? renderKubeconfig({ server: c.url, caPem: c.caPem, token: who.token }) : who.kubeconfig, { mode: 0o600 })
  return (args: string[], o: { allowFail?: boolean; stdin?: string } = {}) => runKubectl(kubeconfig, dir, args, o)
}

t.test('RBAC and identities', async (t) => {
  const c = await startTestCluster(t, { controllers: {}, identities: [{ user: 'jane', groups: [] }, { user: 'prometheus', groups: ['system:monitoring'] }] })
  const jane = await kubectlAs(t, c, { token: c.tokens.get('jane')! })

  await t.test('the four kinds apply, print as kubectl prints them, and aggregate', async (t) => {
    const r = await c.kubectl(['apply', '-f', '-'], { stdin: roles })
    for (const want of [
      'role.rbac.authorization.k8s.io/pod-reader created',
      'rolebinding.rbac.authorization.k8s.io/read-pods created',
      'clusterrole.rbac.authorization.k8s.io/monitoring created',
      'clusterrolebinding.rbac.authorization.k8s.io/monitoring created',
    ]) t.match(r.stdout, want)
    const again = await c.kubectl(['apply', '-f', '-'], { stdin: roles })
    t.match(again.stdout, 'role.rbac.authorization.k8s.io/pod-reader unchanged')
    t.match((await c.kubectl(['get', 'roles'])).stdout, /NAME\s+CREATED AT\npod-reader\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/)
    const rb = await c.kubectl(['get', 'rolebinding', 'read-pods', '-o', 'wide'])
    t.match(rb.stdout, /NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS/)
    t.match(rb.stdout, /read-pods\s+Role\/pod-reader\s+\S+\s+jane\s+readers\s+default\/robot/)
    const crb = await c.kubectl(['get', 'clusterrolebinding', 'monitoring'])
    t.match(crb.stdout, /monitoring\s+ClusterRole\/monitoring\s+\S+/)
    const stored = await c.client.get(lookupResource('rbac.authorization.k8s.io', 'v1', 'rolebindings')!, 'default', 'read-pods')
    t.equal(stored.roleRef.apiGroup, 'rbac.authorization.k8s.io', 'roleRef.apiGroup defaulted')
    t.equal(stored.subjects[0].apiGroup, 'rbac.authorization.k8s.io', 'User subject apiGroup defaulted')
    await eventually(async () => (await c.client.get(clusterRoles, undefined, 'monitoring')).rules?.length === 2, { timeout: 10_000, what: 'monitoring aggregates its 2 rules' })
  })

  await t.test('kubectl create role, clusterrole, rolebinding, clusterrolebinding, serviceaccount (protobuf bodies)', async (t) => {
    for (const [args, want] of [
      [['create', 'role', 'cm-editor', '--verb=get,update', '--resource=configmaps', '--resource-name=app'], 'role.rbac.authorization.k8s.io/cm-editor created'],
      [['create', 'clusterrole', 'node-lister', '--verb=list', '--resource=nodes'], 'clusterrole.rbac.authorization.k8s.io/node-lister created'],
      [['create', 'rolebinding', 'cm-editors', '--role=cm-editor', '--user=bob', '--group=eds', '--serviceaccount=default:robot'], 'rolebinding.rbac.authorization.k8s.io/cm-editors created'],
      [['create', 'clusterrolebinding', 'node-listers', '--clusterrole=node-lister', '--group=ops'], 'clusterrolebinding.rbac.authorization.k8s.io/node-listers created'],
      [['create', 'serviceaccount', 'builder'], 'serviceaccount/builder created'],
    ] as const) t.match((await c.kubectl([...args])).stdout, want)
    const role = await c.client.get(lookupResource('rbac.authorization.k8s.io', 'v1', 'roles')!, 'default', 'cm-editor')
    t.same(role.rules, [{ verbs: ['get', 'update'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app'] }])
    const rb = await c.kubectl(['get', 'rolebinding', 'cm-editors', '-o', 'wide'])
    t.match(rb.stdout, /cm-editors\s+Role\/cm-editor\s+\S+\s+bob\s+eds\s+default\/robot/)
  })

  await t.test('invalid objects get 422 with Kubernetes field paths', async (t) => {
    const bad = `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bad, namespace: default}
subjects: [{kind: Robot, name: x}, {kind: ServiceAccount, name: ""}]
roleRef: {kind: Deployment, name: x}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bad, namespace: default}
rules: [{apiGroups: [""], resources: [pods]}, {nonResourceURLs: [/healthz], verbs: [get]}]
`
    const r = await c.kubectl(['apply', '-f', '-'], { stdin: bad, allowFail: true })
    t.not(r.code, 0)
    t.match(r.stderr, 'roleRef.kind: Unsupported value: "Deployment": supported values: "Role", "ClusterRole"')
    t.match(r.stderr, 'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')
    t.match(r.stderr, 'subjects[1].name: Required value')
    t.match(r.stderr, 'rules[0].verbs: Required value: verbs must contain at least one value')
    t.match(r.stderr, 'rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs')
    const change = await c.kubectl(['patch', 'rolebinding', 'read-pods', '--type=merge', '-p', '{"roleRef":{"name":"other"}}'], { allowFail: true })
    t.match(change.stderr, 'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"other"}: cannot change roleRef')
  })

  await t.test('the authorizer chain: RBAC grants, Kubernetes 403 messages, built-in roles', async (t) => {
    t.match((await jane(['get', 'pods'])).stderr, /No resources found in default namespace/, 'the RoleBinding lets jane list pods in default')
    const denied = await jane(['get', 'pods', '-n', 'kube-system'], { allowFail: true })
    t.equal(denied.code, 1)
    t.match(denied.stderr, 'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "kube-system"')
    const cluster = await jane(['get', 'nodes'], { allowFail: true })
    t.match(cluster.stderr, 'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope')
    const write = await jane(['delete', 'pod', 'x'], { allowFail: true })
    t.match(write.stderr, 'pods "x" is forbidden: User "jane" cannot delete resource "pods" in API group "" in the namespace "default"')
    const builtins = await c.kubectl(['get', 'clusterroles', '-l', 'kubernetes.io/bootstrapping=rbac-defaults', '-o', 'name'])
    for (const n of ['cluster-admin', 'admin', 'edit', 'view', 'system:basic-user', 'system:discovery', 'system:public-info-viewer', 'system:node', 'skiff:ingress-controller']) {
      t.match(builtins.stdout, `clusterrole.rbac.authorization.k8s.io/${n}\n`)
    }
    const crb = await c.kubectl(['get', 'clusterrolebinding', 'cluster-admin', '-o', 'wide'])
    t.match(crb.stdout, /cluster-admin\s+ClusterRole\/cluster-admin\s+\S+\s+system:masters/)
    const view = await c.client.get(clusterRoles, undefined, 'view')
    t.ok(view.rules.length > 5, 'view aggregated from system:aggregate-to-view at start')
    const metrics = async (tok: string) => (await c.clientFor(tok).request('GET', '/metrics')).status
    t.equal(await metrics(c.tokens.get('prometheus')!), 200, 'system:monitoring reads /metrics')
    t.equal(await metrics(c.tokens.get('jane')!), 403, 'another user does not')
  })

  await t.test('access reviews: kubectl auth can-i (yes, no, exit codes), --list, whoami', async (t) => {
    const yes = await jane(['auth', 'can-i', 'list', 'pods'])
    t.equal(yes.stdout.trim(), 'yes')
    t.equal(yes.code, 0)
    const no = await jane(['auth', 'can-i', 'create', 'pods'], { allowFail: true })
    t.equal(no.stdout.trim(), 'no')
    t.equal(no.code, 1, 'no exits 1')
    t.equal((await jane(['auth', 'can-i', 'get', 'pods', '--subresource=log'])).stdout.trim(), 'yes', 'pods/log through the Role')
    t.equal((await jane(['auth', 'can-i', 'list', 'pods', '-n', 'kube-system'], { allowFail: true })).stdout.trim(), 'no')
    t.equal((await c.kubectl(['auth', 'can-i', '*', '*'])).stdout.trim(), 'yes', 'the admin may do anything')
    const list = await jane(['auth', 'can-i', '--list'])
    t.match(list.stdout, /Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs/)
    t.match(list.stdout, /pods\s+\[\]\s+\[\]\s+\[get list watch\]/)
    t.match(list.stdout, /selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/)
    t.match(list.stdout, /\s+\[\/api\/\*\]\s+\[\]\s+\[get\]/)
    const who = await jane(['auth', 'whoami'])
    t.match(who.stdout, /ATTRIBUTE\s+VALUE\nUsername\s+jane\nUID\s+jane\nGroups\s+\[system:authenticated\]/)
    t.equal((await c.kubectl(['auth', 'can-i', 'list', 'pods', '--as=jane'])).stdout.trim(), 'yes', 'impersonation: the admin asks as jane')
    t.equal((await c.kubectl(['auth', 'can-i', 'list', 'pods', '--as=jane', '-n', 'kube-system'], { allowFail: true })).stdout.trim(), 'no')
    t.equal((await c.kubectl(['auth', 'can-i', 'get', 'services', '--as=someone', '--as-group=monitors'])).stdout.trim(), 'yes', 'and as a group')
    const asAdmin = await jane(['get', 'secrets', '--as=admin'], { allowFail: true })
    t.match(asAdmin.stderr, 'users "admin" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope')
    const sar = await c.kubectl(['create', '-o', 'json', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'jane', resourceAttributes: { verb: 'watch', resource: 'pods', namespace: 'default' } } }),
    })
    t.equal(JSON.parse(sar.stdout).status.allowed, true, 'SubjectAccessReview for jane')
    const lsar = await c.kubectl(['create', '-o', 'json', '-n', 'web', '-f', '-'], {
      stdin: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'LocalSubjectAccessReview', metadata: { namespace: 'web' }, spec: { groups: ['monitors'], resourceAttributes: { verb: 'get', resource: 'services', namespace: 'web' } } }),
    })
    t.equal(JSON.parse(lsar.stdout).status.allowed, true, 'LocalSubjectAccessReview for a group')
    const bad = await c.kubectl(['create', '-f', '-'], { allowFail: true, stdin: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { resourceAttributes: { verb: 'get', resource: 'pods' } } }) })
    t.match(bad.stderr, 'spec.user: Invalid value: "": at least one of user or group must be specified')
    const sneaky = await jane(['create', '-f', '-'], { allowFail: true, stdin: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'admin', groups: ['system:masters'], resourceAttributes: { verb: 'get', resource: 'secrets' } } }) })
    t.match(sneaky.stderr, 'subjectaccessreviews.authorization.k8s.io is forbidden: User "jane" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope')
  })

  await t.test('ServiceAccount tokens: kubectl create token, bound JWTs, RBAC for service accounts', async (t) => {
    await eventually(async () => (await c.client.list(serviceAccounts, 'default')).items.some((s) => s.metadata.name === 'default'), { timeout: 10_000, what: 'the default ServiceAccount' })
    await c.kubectl(['apply', '-f', '-'], { stdin: 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot, namespace: default}\n' })
    const token = (await c.kubectl(['create', 'token', 'robot'])).stdout.trim()
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
    const sa = await c.client.get(serviceAccounts, 'default', 'robot')
    t.equal(claims.iss, 'https://kubernetes.default.svc.cluster.local')
    t.equal(claims.sub, 'system:serviceaccount:default:robot')
    t.same(claims.aud, ['https://kubernetes.default.svc.cluster.local'])
    t.equal(claims.exp - claims.iat, 3600, 'one hour by default')
    t.same(claims['kubernetes.io'], { namespace: 'default', serviceaccount: { name: 'robot', uid: sa.metadata.uid } })
    const robot = c.clientFor(token)
    t.equal((await robot.request('GET', '/api/v1/namespaces/default/pods')).status, 200, 'the Role lets it list pods')
    const secrets = await robot.request('GET', '/api/v1/namespaces/default/secrets')
    t.equal(secrets.status, 403, 'and nothing else')
    t.equal((secrets.body as { message: string }).message, 'secrets is forbidden: User "system:serviceaccount:default:robot" cannot list resource "secrets" in API group "" in the namespace "default"')
    const who = await kubectlAs(t, c, { token })
    t.match((await who(['auth', 'whoami'])).stdout, /Username\s+system:serviceaccount:default:robot\nUID\s+\S+\nGroups\s+\[system:serviceaccounts system:serviceaccounts:default system:authenticated\]/)

    const short = await c.kubectl(['create', 'token', 'robot', '--duration=5m'], { allowFail: true })
    t.match(short.stderr, 'spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes')
    const other = (await c.kubectl(['create', 'token', 'robot', '--audience=vault'])).stdout.trim()
    t.equal((await c.clientFor(other).request('GET', '/api/v1/namespaces/default/pods')).status, 401, 'another audience is no API token')

    await c.kubectl(['apply', '-f', '-'], { stdin: 'apiVersion: v1\nkind: Pod\nmetadata: {name: holder, namespace: default}\nspec: {serviceAccountName: robot, containers: [{name: c, image: skiff/echo:local}]}\n' })
    const bound = (await c.kubectl(['create', 'token', 'robot', '--bound-object-kind=Pod', '--bound-object-name=holder', '--duration=20m'])).stdout.trim()
    const b = JSON.parse(Buffer.from(bound.split('.')[1]!, 'base64url').toString())
    t.equal(b['kubernetes.io'].pod.name, 'holder')
    t.equal(b.exp - b.iat, 1200)
    t.equal((await c.clientFor(bound).request('GET', '/api/v1/namespaces/default/pods')).status, 200, 'bound to a live pod')
    await c.kubectl(['delete', 'pod', 'holder', '--wait=true'])
    t.equal((await c.clientFor(bound).request('GET', '/api/v1/namespaces/default/pods')).status, 401, 'the pod is gone: so is the token')

    await c.kubectl(['delete', 'serviceaccount', 'robot'])
    await c.kubectl(['apply', '-f', '-'], { stdin: 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot, namespace: default}\n' })
    t.equal((await c.clientFor(token).request('GET', '/api/v1/namespaces/default/pods')).status, 401, 'a ServiceAccount deleted and created again does not honour the old token (uid)')
    const tampered = token.slice(0, token.lastIndexOf('.') + 1) + Buffer.from('x'.repeat(256)).toString('base64url')
    t.equal((await c.clientFor(tampered).request('GET', '/api/v1/namespaces/default/pods')).status, 401, 'a bad signature')
    const metrics = String((await c.client.request('GET', '/metrics')).body)
    t.match(metrics, /serviceaccount_tokens_issued_total 3\n/, 'issued tokens are counted')
    t.match(metrics, /serviceaccount_token_authentications_total\{result="revoked"\} [2-9]/, 'and refused ones by why')
    const denied = await jane(['create', 'token', 'robot'], { allowFail: true })
    t.match(denied.stderr, 'serviceaccounts "robot" is forbidden: User "jane" cannot create resource "serviceaccounts/token" in API group "" in the namespace "default"')
  })

  await t.test('skiff user add: a client-certificate user with no rights until bound', async (t) => {
    await writeFile(join(c.stateDir, 'server.json'), JSON.stringify({ url: c.url }))
    const add = await skiff(c.stateDir, ['user', 'add', 'alice', '--group', 'devs', '--group', 'qa'])
    t.equal(add.code, 0, add.stderr)
    t.match(add.stdout, 'client-certificate-data')
    const alice = await kubectlAs(t, c, { kubeconfig: add.stdout })
    t.match((await alice(['auth', 'whoami'])).stdout, /Username\s+alice\nGroups\s+\[devs qa system:authenticated\]/)
    const before = await alice(['get', 'pods'], { allowFail: true })
    t.equal(before.code, 1)
    t.match(before.stderr, 'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"')
    t.equal((await alice(['auth', 'can-i', 'list', 'pods'], { allowFail: true })).stdout.trim(), 'no')
    t.match((await c.kubectl(['create', 'rolebinding', 'alice-reads', '--role=pod-reader', '--user=alice'])).stdout, 'rolebinding.rbac.authorization.k8s.io/alice-reads created')
    await eventually(async () => (await alice(['get', 'pods'], { allowFail: true })).code === 0, { timeout: 5_000, what: 'alice lists pods once bound' })
    t.pass('after the RoleBinding, alice lists pods')
    t.equal((await alice(['get', 'secrets'], { allowFail: true })).code, 1, 'and still nothing else')
  })
})
