// The real kubectl (v1.32, fresh --cache-dir) against a real apiserver on a
// real redis-server: apply, re-apply, get -o wide, get -w, scale, describe,
// delete -f, create deployment (protobuf body), expose.

import t from 'tap'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/manifests/${f}`, import.meta.url))
const deployments = lookupResource('apps', 'v1', 'deployments')!
const services = lookupResource('', 'v1', 'services')!

t.test('kubectl drives the apiserver', async (t) => {
  const c = await startTestCluster(t)

  await t.test('apply creates every kind', async (t) => {
    const r = await c.kubectl(['apply', '-f', fixture('app.yaml')])
    for (const want of [
      'namespace/shop created',
      'configmap/web-config created',
      'secret/web-secret created',
      'deployment.apps/web created',
      'service/web created',
      'service/web-np created',
      'ingressclass.networking.k8s.io/shop-external created',
      'ingress.networking.k8s.io/web created',
    ]) t.match(r.stdout, want)
    const svc = await c.client.get(services, 'shop', 'web-np')
    t.equal(svc.spec.ports[0].nodePort, 30555)
    t.match(svc.spec.clusterIP, /^10\.(9[6-9]|10\d|11[01])\./, 'ClusterIP from 10.96.0.0/12')
  })

  await t.test('re-apply updates, strategic merge keeps container ports', async (t) => {
    const r = await c.kubectl(['apply', '-f', fixture('app-v2.yaml')])
    t.match(r.stdout, 'deployment.apps/web configured')
    t.match(r.stdout, 'configmap/web-config configured')
    t.match(r.stdout, 'service/web unchanged')
    const d = await c.client.get(deployments, 'shop', 'web')
    t.equal(d.spec.replicas, 3)
    t.equal(d.spec.template.spec.containers[0].image, 'skiff/echo:v2')
    t.same(d.spec.template.spec.containers[0].ports, [{ containerPort: 8080, name: 'http', protocol: 'TCP' }])
    t.equal(d.metadata.generation, 2, 'generation bumped by the spec change')
  })

  await t.test('get -o wide prints the standard columns', async (t) => {
    const svc = await c.kubectl(['get', 'svc', '-n', 'shop', '-o', 'wide'])
    t.match(svc.stdout, /NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR/)
    t.match(svc.stdout, /web-np\s+NodePort\s+10\.\S+\s+<none>\s+80:30555\/TCP\s+\S+\s+app=web/)
    const dep = await c.kubectl(['get', 'deploy', '-n', 'shop', '-o', 'wide'])
    t.match(dep.stdout, /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR/)
    t.match(dep.stdout, /web\s+0\/3\s+0\s+0\s+\S+\s+web\s+skiff\/echo:v2\s+app=web/)
    const ing = await c.kubectl(['get', 'ing', '-n', 'shop'])
    t.match(ing.stdout, /NAME\s+CLASS\s+HOSTS\s+ADDRESS\s+PORTS\s+AGE/)
    t.match(ing.stdout, /web\s+shop-external\s+shop\.example\.com\s+80/)
    const classes = await c.kubectl(['get', 'ingressclass'])
    t.match(classes.stdout, /external\s+skiff\.dev\/ingress/, 'the external class exists by default')
    t.match(classes.stdout, /internal\s+skiff\.dev\/ingress/, 'the internal class exists by default')
    const all = await c.kubectl(['get', 'cm', '-A'])
    t.match(all.stdout, /NAMESPACE\s+NAME\s+DATA\s+AGE/)
    t.match(all.stdout, /shop\s+web-config\s+1/)
  })

  await t.test('get -w prints a change made by another client', async (t) => {
    const child = spawn('kubectl', ['--kubeconfig', c.kubeconfig, '--cache-dir', c.stateDir + '/watch-cache', 'get', 'configmaps', '-n', 'shop', '-w'], {
      env: { ...process.env, HOME: c.stateDir },
    })
    t.teardown(() => child.kill('SIGKILL'))
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    await eventually(() => out.includes('web-config'), { timeout: 30_000, what: 'the initial list' })
    await c.client.create(lookupResource('', 'v1', 'configmaps')!, 'shop', { metadata: { name: 'added-later' }, data: { a: '1', b: '2' } })
    await eventually(() => /added-later\s+2/.test(out), { timeout: 15_000, what: 'the watched change' })
    t.pass('watch printed the new ConfigMap')
  })

  await t.test('scale and describe', async (t) => {
    const r = await c.kubectl(['scale', 'deployment/web', '-n', 'shop', '--replicas=5'])
    t.match(r.stdout, 'deployment.apps/web scaled')
    t.equal((await c.client.get(deployments, 'shop', 'web')).spec.replicas, 5)
    const d = await c.kubectl(['describe', 'deployment', 'web', '-n', 'shop'])
    t.match(d.stdout, /Name:\s+web/)
    t.match(d.stdout, /Replicas:\s+5 desired/)
    const s = await c.kubectl(['describe', 'svc', 'web', '-n', 'shop'])
    t.match(s.stdout, /Type:\s+ClusterIP/)
  })

  await t.test('create deployment (protobuf) and expose', async (t) => {
    const r = await c.kubectl(['create', 'deployment', 'api', '-n', 'shop', '--image=skiff/echo:local', '--port=8080', '--replicas=2'])
    t.match(r.stdout, 'deployment.apps/api created')
    const d = await c.client.get(deployments, 'shop', 'api')
    t.equal(d.spec.replicas, 2)
    t.same(d.spec.selector.matchLabels, { app: 'api' })
    const e = await c.kubectl(['expose', 'deployment', 'api', '-n', 'shop', '--port=80', '--target-port=8080'])
    t.match(e.stdout, 'service/api exposed')
    const svc = await c.client.get(services, 'shop', 'api')
    t.same(svc.spec.selector, { app: 'api' })
    t.equal(svc.spec.ports[0].targetPort, 8080)
    const ns = await c.kubectl(['create', 'namespace', 'team-a'])
    t.match(ns.stdout, 'namespace/team-a created')
    const cm = await c.kubectl(['create', 'configmap', 'cfg', '-n', 'team-a', '--from-literal=a=1'])
    t.match(cm.stdout, 'configmap/cfg created')
  })

  await t.test('apply --server-side: create, update, a conflict naming the other manager, --force-conflicts, a field dropped', async (t) => {
    const manifest = (replicas: number, data: Record<string, string>) => [
      'apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: ssa', '  namespace: team-a', 'data:', ...Object.entries(data).map(([k, v]) => `  ${k}: "${v}"`),
      '---',
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: ssa', '  namespace: team-a', 'spec:', `  replicas: ${replicas}`,
      '  selector: {matchLabels: {app: ssa}}', '  template:', '    metadata: {labels: {app: ssa}}', '    spec:', '      containers:', '      - name: web', '        image: skiff/echo:local', '        ports: [{containerPort: 8080}]',
    ].join('\n') + '\n'
    const created = await c.kubectl(['apply', '--server-side', '-f', '-'], { stdin: manifest(1, { a: '1', b: '2' }) })
    t.match(created.stdout, 'configmap/ssa serverside-applied')
    t.match(created.stdout, 'deployment.apps/ssa serverside-applied')
    const d: any = await c.client.get(deployments, 'team-a', 'ssa')
    t.same(d.metadata.managedFields.map((e: any) => [e.manager, e.operation]), [['kubectl', 'Apply']], 'kubectl owns what it applied')
    t.ok(d.metadata.managedFields[0].fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"web"}'], 'containers are keyed by name')

    const updated = await c.kubectl(['apply', '--server-side', '-f', '-'], { stdin: manifest(2, { a: '1' }) })
    t.match(updated.stdout, 'deployment.apps/ssa serverside-applied')
    t.equal((await c.client.get(deployments, 'team-a', 'ssa')).spec.replicas, 2)
    const cm = await c.client.get(lookupResource('', 'v1', 'configmaps')!, 'team-a', 'ssa')
    t.same(cm.data, { a: '1' }, 'a key kubectl no longer applies is removed')

    const conflict = await c.kubectl(['apply', '--server-side', '--field-manager=other', '-f', '-'], { stdin: manifest(5, { a: '1' }), allowFail: true })
    t.not(conflict.code, 0, 'a conflict fails')
    t.match(conflict.stderr, /conflict with "kubectl": \.spec\.replicas/, 'and names the other manager and the field')
    t.equal((await c.client.get(deployments, 'team-a', 'ssa')).spec.replicas, 2, 'nothing changed')

    const forced = await c.kubectl(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-f', '-'], { stdin: manifest(5, { a: '1' }) })
    t.match(forced.stdout, 'deployment.apps/ssa serverside-applied')
    const after: any = await c.client.get(deployments, 'team-a', 'ssa')
    t.equal(after.spec.replicas, 5)
    const kubectlOwns = after.metadata.managedFields.find((e: any) => e.manager === 'kubectl')
    t.notOk(kubectlOwns.fieldsV1['f:spec']['f:replicas'], 'replicas moved to the forcing manager')
    t.equal(after.spec.template.spec.containers[0].ports[0].containerPort, 8080, 'the rest kept')

    const plain = await c.client.request('PATCH', resourcePath(deployments, 'team-a', 'ssa'), { body: { apiVersion: 'apps/v1', kind: 'Deployment' }, contentType: 'application/apply-patch+yaml' })
    t.equal(plain.status, 422, 'fieldManager is required')
    t.match(plain.body.message, 'fieldManager: Required value')
  })

  await t.test('delete -f removes everything, namespace last', async (t) => {
    const r = await c.kubectl(['delete', '-f', fixture('app-v2.yaml'), '--timeout=60s'], { timeoutMs: 90_000 })
    t.match(r.stdout, 'namespace "shop" deleted')
    t.match(r.stdout, 'deployment.apps "web" deleted')
    const gone = await c.kubectl(['get', 'ns', 'shop'], { allowFail: true })
    t.not(gone.code, 0)
    t.match(gone.stderr, /namespaces "shop" not found/)
    const left = await c.client.list(lookupResource('', 'v1', 'configmaps')!, 'shop')
    t.equal(left.items.length, 0, 'namespace contents deleted with it')
  })
})
