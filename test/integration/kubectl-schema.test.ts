// The real kubectl (v1.32, fresh cache) against the schema-driven parts of the
// apiserver: OpenAPI v3 (`explain`, client-side validation by `apply`),
// protobuf bodies of every `kubectl create` kind, and fieldValidation.

import t from 'tap'
import { request } from 'node:https'
import { startTestCluster } from '../harness/cluster.ts'

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
})
