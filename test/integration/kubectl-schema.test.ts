// The real kubectl (v1.32, fresh cache) against the schema-driven parts of the
// apiserver: OpenAPI v3 (`explain`, client-side validation by `apply`),
// protobuf bodies of every `kubectl create` kind, and fieldValidation.

import t from 'tap'
import { request } from 'node:https'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { startTestCluster } from '../harness/cluster.ts'

const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const secrets = lookupResource('', 'v1', 'secrets')!
const serviceaccounts = lookupResource('', 'v1', 'serviceaccounts')!
const services = lookupResource('', 'v1', 'services')!
const deployments = lookupResource('apps', 'v1', 'deployments')!

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string }

t.test('kubectl and the schema', async (t) => {
  const c = await startTestCluster(t)
  const get = (path: string, headers: Record<string, string> = {}): Promise<Answer> => new Promise((resolve, reject) => {
    const req = request(`${c.url}${path}`, { ca: c.caPem, headers: { authorization: `Bearer ${c.token}`, ...headers } }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })

  await t.test('documents are cached as the apiserver caches them', async (t) => {
    const index = JSON.parse((await get('/openapi/v3')).body)
    const url: string = index.paths['apis/apps/v1'].serverRelativeURL
    t.match(url, /^\/openapi\/v3\/apis\/apps\/v1\?hash=[0-9A-F]{128}$/)
    const doc = await get(url)
    t.equal(doc.status, 200)
    t.equal(doc.headers['cache-control'], 'public, immutable')
    t.ok(doc.headers.expires)
    t.equal(doc.headers.etag, `"${url.split('hash=')[1]}"`)
    const old = await get('/openapi/v3/apis/apps/v1?hash=0123')
    t.equal(old.status, 301)
    t.equal(old.headers.location, url)
    const again = await get('/openapi/v3/apis/apps/v1', { 'if-none-match': doc.headers.etag as string })
    t.equal(again.status, 304)
    t.notOk((await get('/openapi/v3/apis/apps/v1')).headers['cache-control'], 'no hash, no long caching')
  })

  await t.test('explain prints fields with their types', async (t) => {
    const r = await c.kubectl(['explain', 'deployment.spec.strategy'])
    t.match(r.stdout, /GROUP:\s+apps/)
    t.match(r.stdout, /KIND:\s+Deployment/)
    t.match(r.stdout, /VERSION:\s+v1/)
    t.match(r.stdout, /FIELD: strategy <DeploymentStrategy>/)
    t.match(r.stdout, /rollingUpdate\s+<RollingUpdateDeployment>/)
    t.match(r.stdout, /type\s+<string>/)
    t.match(r.stdout, /enum: Recreate, RollingUpdate/)
    const rec = await c.kubectl(['explain', 'pods.spec', '--recursive'])
    t.match(rec.stdout, /containers\s+<\[\]Container> -required-/)
    t.match(rec.stdout, /serviceAccountToken\s+<ServiceAccountTokenProjection>/)
    t.match(rec.stdout, /maxSkew\s+<integer> -required-/)
    t.match((await c.kubectl(['explain', 'clusterrole.aggregationRule'])).stdout, /clusterRoleSelectors\s+<\[\]LabelSelector>/)
    const svc = await c.kubectl(['explain', 'svc.spec.ports.targetPort'])
    t.match(svc.stdout, /targetPort\s+<IntOrString>/)
  })

  await t.test('apply of a kind Skiff does not serve names the kind', async (t) => {
    const manifest = 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n'
    const r = await c.kubectl(['apply', '-f', '-'], { stdin: manifest, allowFail: true })
    t.not(r.code, 0)
    t.match(r.stderr, 'no matches for kind "Widget" in version "example.com/v1"')
    t.notMatch(r.stderr, 'failed to download openapi')
  })

  await t.test('every kubectl create command sends protobuf the server decodes', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-tls-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const cert = issueServingCert(await loadOrCreateCA(dir), { commonName: 'shop.example.com', dnsNames: ['shop.example.com'], days: 1 })
    await writeFile(join(dir, 'tls.crt'), cert.certPem)
    await writeFile(join(dir, 'tls.key'), cert.keyPem)

    const run = async (args: string[], want: string) => t.match((await c.kubectl(['create', ...args])).stdout, want, args.slice(0, 2).join(' '))
    await run(['namespace', 'pb'], 'namespace/pb created')
    await run(['ingress', 'web', '-n', 'pb', '--class=external', '--rule=shop.example.com/api*=web:80,tls=shop-tls', '--annotation=a=b'], 'ingress.networking.k8s.io/web created')
    await run(['secret', 'tls', 'shop-tls', '-n', 'pb', `--cert=${join(dir, 'tls.crt')}`, `--key=${join(dir, 'tls.key')}`], 'secret/shop-tls created')
    await run(['secret', 'generic', 'creds', '-n', 'pb', '--from-literal=user=admin'], 'secret/creds created')
    await run(['serviceaccount', 'robot', '-n', 'pb'], 'serviceaccount/robot created')
    await run(['configmap', 'cfg', '-n', 'pb', '--from-literal=a=1'], 'configmap/cfg created')
    await run(['deployment', 'web', '-n', 'pb', '--image=skiff/echo:local', '--port=8080', '--replicas=0'], 'deployment.apps/web created')
    await run(['service', 'clusterip', 'web', '-n', 'pb', '--tcp=80:8080'], 'service/web created')
    await run(['role', 'reader', '-n', 'pb', '--verb=get,list', '--resource=pods,deployments.apps'], 'role.rbac.authorization.k8s.io/reader created')
    await run(['rolebinding', 'robot-reads', '-n', 'pb', '--role=reader', '--serviceaccount=pb:robot'], 'rolebinding.rbac.authorization.k8s.io/robot-reads created')

    const ing = await c.client.get(ingresses, 'pb', 'web')
    t.equal(ing.spec.ingressClassName, 'external')
    t.same(ing.metadata.annotations, { a: 'b' })
    t.same(ing.spec.rules, [{ host: 'shop.example.com', http: { paths: [{ path: '/api', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }])
    t.same(ing.spec.tls, [{ hosts: ['shop.example.com'], secretName: 'shop-tls' }])
    const tls = await c.client.get(secrets, 'pb', 'shop-tls')
    t.equal(tls.type, 'kubernetes.io/tls')
    t.equal(Buffer.from(tls.data['tls.crt'], 'base64').toString(), cert.certPem)
    t.ok(await c.client.get(serviceaccounts, 'pb', 'robot'))
    t.equal((await c.client.get(deployments, 'pb', 'web')).spec.replicas, 0, 'a pointer zero survives')
    t.same((await c.client.get(services, 'pb', 'web')).spec.ports[0].targetPort, 8080)
    const role = JSON.parse((await c.kubectl(['get', 'role', 'reader', '-n', 'pb', '-o', 'json'])).stdout)
    t.same(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }, { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }])
    const rb = JSON.parse((await c.kubectl(['get', 'rolebinding', 'robot-reads', '-n', 'pb', '-o', 'json'])).stdout)
    t.same(rb.subjects, [{ kind: 'ServiceAccount', name: 'robot', namespace: 'pb' }])
    t.same(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' })

    const pc = await c.kubectl(['create', 'priorityclass', 'high', '--value=1000'], { allowFail: true })
    t.not(pc.code, 0)
    t.match(pc.stderr, 'error: failed to create priorityclass: the server could not find the requested resource (scheduling.k8s.io/v1 priorityclasses)')
  })

  await t.test('fieldValidation: Strict refuses unknown fields, Warn drops them with a warning', async (t) => {
    const manifest = (name: string) => [
      'apiVersion: v1', 'kind: ConfigMap', 'metadata:', `  name: ${name}`, '  namespace: default', '  colour: blue', 'data:', '  a: "1"', 'extra: true', '',
    ].join('\n')
    const strict = await c.kubectl(['apply', '-f', '-'], { stdin: manifest('strict'), allowFail: true })
    t.not(strict.code, 0)
    t.match(strict.stderr, 'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "extra", unknown field "metadata.colour"')
    const warn = await c.kubectl(['apply', '--validate=warn', '-f', '-'], { stdin: manifest('warned') })
    t.match(warn.stdout, 'configmap/warned created')
    t.match(warn.stderr, 'Warning: unknown field "extra"')
    t.match(warn.stderr, 'Warning: unknown field "metadata.colour"')
    const stored = await c.kubectl(['get', 'cm', 'warned', '-o', 'json'])
    const obj = JSON.parse(stored.stdout)
    t.notOk('extra' in obj, 'unknown fields are not stored')
    t.notOk('colour' in obj.metadata)
    const patch = await c.kubectl(['patch', 'cm', 'warned', '--type=merge', '-p', '{"data":{"b":"2"},"spec":{"x":1}}'])
    t.match(patch.stderr, 'Warning: unknown field "spec"', 'no parameter means Warn')
    const ignored = await c.kubectl(['apply', '--validate=false', '-f', '-'], { stdin: manifest('ignored') })
    t.match(ignored.stdout, 'configmap/ignored created')
    t.notMatch(ignored.stderr, 'Warning')
  })
})
