// Bad requests get clear errors and store nothing: 409 on a stale
// resourceVersion, 422 with the field path, 413 for a 9 MiB body, 401
// without a token, 403 for a node outside its own objects.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { startTestCluster } from '../harness/cluster.ts'

const cms = lookupResource('', 'v1', 'configmaps')!
const svcs = lookupResource('', 'v1', 'services')!
const pods = lookupResource('', 'v1', 'pods')!
const nodes = lookupResource('', 'v1', 'nodes')!
const secrets = lookupResource('', 'v1', 'secrets')!

t.test('api errors', async (t) => {
  const c = await startTestCluster(t, {
    identities: [
      { user: 'system:node:node-a', groups: ['system:nodes'] },
      { user: 'system:node:node-b', groups: ['system:nodes'] },
      { user: 'skiff:ingress:external', groups: ['skiff:ingress-controllers'] },
    ],
  })

  await t.test('stale resourceVersion on PUT is 409 Conflict', async (t) => {
    const cm = await c.client.create(cms, 'default', { metadata: { name: 'cas' }, data: { v: '1' } })
    await c.client.update(cms, { ...cm, data: { v: '2' } })
    const res = await c.client.request('PUT', resourcePath(cms, 'default', 'cas'), { body: { ...cm, data: { v: '3' } } })
    t.equal(res.status, 409)
    t.equal(res.body.reason, 'Conflict')
    t.equal((await c.client.get(cms, 'default', 'cas')).data.v, '2', 'the stale write stored nothing')
  })

  await t.test('invalid object is 422 with the field path, nothing stored', async (t) => {
    const bad = { metadata: { name: 'bad' }, spec: { ports: [{ port: 0 }], selector: { app: 'x' } } }
    const res = await c.client.request('POST', resourcePath(svcs, 'default'), { body: bad })
    t.equal(res.status, 422)
    t.equal(res.body.reason, 'Invalid')
    t.ok(res.body.details.causes.some((x: any) => x.field === 'spec.ports[0].port'), 'cause names spec.ports[0].port')
    t.match(res.body.message, /spec\.ports\[0\]\.port/)
    const get = await c.client.request('GET', resourcePath(svcs, 'default', 'bad'))
    t.equal(get.status, 404, 'nothing stored')
    const badName = await c.client.request('POST', resourcePath(cms, 'default'), { body: { metadata: { name: 'Not_A_Name' } } })
    t.equal(badName.status, 422)
    t.equal(badName.body.details.causes[0].field, 'metadata.name')
  })

  await t.test('skiff.dev settings are checked at apply time: kubectl apply of a bad one fails with its field, nothing stored', async (t) => {
    const manifest = (annotations: Record<string, string>) => JSON.stringify({
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'typed', namespace: 'default', annotations },
      spec: { ingressClassName: 'external', rules: [{ host: 'typed.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
    })
    for (const [key, value, says] of [
      ['skiff.dev/methods', 'GET,FETCH', /"FETCH" is not an HTTP method/],
      ['skiff.dev/load-balance', 'random', /supported values: "round-robin", "least-request", "cookie"/],
      ['skiff.dev/proxy-body-size', 'lots', /must be a size/],
      ['skiff.dev/proxy-read-timeout', '5 minutes', /must be a duration/],
      ['skiff.dev/issuer', 'acme', /applies only to IngressClass/],
      ['skiff.dev/nope', 'x', /Unsupported value: "skiff.dev\/nope"/],
    ] as const) {
      const r = await c.kubectl(['apply', '-f', '-'], { stdin: manifest({ [key]: value }), allowFail: true })
      t.not(r.code, 0, `${key}: ${value} is refused`)
      t.match(r.stderr, `metadata.annotations[${key}]`, `${key}: the error names the field`)
      t.match(r.stderr, says, `${key}: and says why`)
    }
    const ings = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
    t.equal((await c.client.request('GET', resourcePath(ings, 'default', 'typed'))).status, 404, 'nothing stored')
    const ok = await c.kubectl(['apply', '-f', '-'], { stdin: manifest({ 'skiff.dev/methods': 'GET,HEAD', 'skiff.dev/proxy-read-timeout': '90s' }) })
    t.equal(ok.code, 0, 'valid settings apply')
  })

  await t.test('strings are checked at apply time: grammar and control characters, 422 with each field path, nothing stored', async (t) => {
    const ings = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
    const backend = { service: { name: 'web', port: { number: 80 } } }
    const body = { metadata: { name: 'strs' }, spec: { rules: [{ host: 'a\u0007.test', http: { paths: [{ path: '/a b', pathType: 'Prefix', backend }] } }] } }
    const res = await c.client.request('POST', resourcePath(ings, 'default'), { body })
    t.equal(res.status, 422)
    const causes: Array<{ field: string; message: string }> = res.body.details.causes
    t.ok(causes.some((x) => x.field === 'spec.rules[0].host' && /must not contain control characters/.test(x.message)), 'the host: control character')
    t.ok(causes.some((x) => x.field === 'spec.rules[0].http.paths[0].path' && /RFC 3986/.test(x.message)), 'the path: RFC 3986 grammar')
    t.notOk(res.body.message.includes('\u0007'), 'the message carries no raw control character')
    t.equal((await c.client.request('GET', resourcePath(ings, 'default', 'strs'))).status, 404, 'nothing stored')
    const svc = (annotations: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'strs', namespace: 'default', annotations }, spec: { selector: { app: 'x' }, ports: [{ port: 80 }] } })
    const esc = await c.kubectl(['apply', '-f', '-'], { stdin: svc({ 'example.com/colour': 'red\u001b[31m' }), allowFail: true })
    t.not(esc.code, 0, 'ESC in an annotation value is refused')
    t.match(esc.stderr, 'metadata.annotations[example.com/colour]')
    const ok = await c.kubectl(['apply', '-f', '-'], { stdin: svc({ 'example.com/note': 'line one\nline two' }) })
    t.equal(ok.code, 0, 'a multi-line annotation (and kubectl\'s last-applied-configuration, which ends in a newline) applies')
    const again = await c.kubectl(['apply', '-f', '-'], { stdin: svc({ 'example.com/note': 'changed' }) })
    t.equal(again.code, 0, 'and applies again')
  })

  await t.test('a delete without preconditions wins over a concurrent write; a stale resourceVersion precondition is 409', async (t) => {
    // Make the race certain: the reads of the DELETE (the handler's and the registry's) are each followed by another client's write.
    const registry = c.server.apiserver.registry
    const cm = await c.client.create(cms, 'default', { metadata: { name: 'busy' }, data: { n: '0' } })
    const realGet = registry.get.bind(registry)
    let raced = 0
    let writing = false
    registry.get = async (info, ns, name) => {
      const obj = await realGet(info, ns, name)
      if (name === 'busy' && !writing && raced < 2) {
        raced++
        writing = true
        await c.client.patch(cms, 'default', 'busy', { data: { n: String(raced) } }, 'application/merge-patch+json').finally(() => (writing = false))
      }
      return obj
    }
    t.teardown(() => void (registry.get = realGet))
    const res = await c.client.request('DELETE', resourcePath(cms, 'default', cm.metadata.name!))
    registry.get = realGet
    t.equal(raced, 2, 'writes landed between the reads and the delete')
    t.equal(res.status, 200, 'the delete read again and succeeded')
    t.equal((await c.client.request('GET', resourcePath(cms, 'default', 'busy'))).status, 404, 'the object is gone')
    const pinned = await c.client.create(cms, 'default', { metadata: { name: 'pinned' }, data: { v: '1' } })
    await c.client.patch(cms, 'default', 'pinned', { data: { v: '2' } }, 'application/merge-patch+json')
    const stale = await c.client.request('DELETE', resourcePath(cms, 'default', 'pinned'), { body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: pinned.metadata.resourceVersion } } })
    t.equal(stale.status, 409, 'a stale resourceVersion precondition is a Conflict')
    t.equal((await c.client.request('GET', resourcePath(cms, 'default', 'pinned'))).status, 200, 'and deletes nothing')
  })

  await t.test('query parameters are read as the apiserver reads them', async (t) => {
    await c.client.create(cms, 'default', { metadata: { name: 'q1' } })
    const listPath = resourcePath(cms, 'default')
    const isWatch = async (v: string) => {
      // A watch streams events and ends after timeoutSeconds; a list answers a ConfigMapList.
      const res = await c.client.request('GET', `${listPath}?watch=${encodeURIComponent(v)}&timeoutSeconds=1&fieldSelector=metadata.name%3Dq1`)
      const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
      return text.includes('"type":"ADDED"')
    }
    for (const v of ['1', 't', 'T', 'true', 'True', 'TRUE']) t.ok(await isWatch(v), `watch=${v} watches`)
    for (const v of ['0', 'false', 'False', 'FALSE']) t.notOk(await isWatch(v), `watch=${v} lists`)
    const first = await c.client.request('GET', `${listPath}?limit=1&limit=abc&unknownParam=x&pretty=true`)
    t.equal(first.status, 200, 'the first of a repeated parameter counts; unknown parameters are ignored')
    t.equal(first.body.items.length, 1)
    const bad = await c.client.request('GET', `${listPath}?limit=abc`)
    t.equal(bad.status, 400)
    t.match(bad.body.message, 'limit')
    const orphan = await c.client.request('DELETE', `${resourcePath(cms, 'default', 'q1')}?propagationPolicy=Sideways`)
    t.equal(orphan.status, 422)
    t.equal(orphan.body.details.causes[0].field, 'propagationPolicy')
    t.equal((await c.client.request('DELETE', `${resourcePath(cms, 'default', 'q1')}?dryRun=All`)).status, 200)
    t.equal((await c.client.request('GET', resourcePath(cms, 'default', 'q1'))).status, 200, 'a dry-run delete deletes nothing')
  })

  await t.test('a 9 MiB body is 413', async (t) => {
    const big = { metadata: { name: 'big' }, data: { blob: 'x'.repeat(9 * 1024 * 1024) } }
    const res = await c.client.request('POST', resourcePath(cms, 'default'), { body: big }).catch((e) => ({ status: -1, body: String(e) }))
    t.equal(res.status, 413)
    t.equal((await c.client.request('GET', resourcePath(cms, 'default', 'big'))).status, 404)
  })

  await t.test('no token is 401, a wrong token too', async (t) => {
    const anon = c.clientFor('')
    const res = await anon.request('GET', resourcePath(cms, 'default'))
    t.equal(res.status, 401)
    t.equal(res.body.kind, 'Status')
    const wrong = await c.clientFor('not-a-token').request('GET', resourcePath(cms, 'default'))
    t.equal(wrong.status, 401)
  })

  await t.test('node authorization', async (t) => {
    const a = c.clientFor(c.tokens.get('system:node:node-a')!)
    const admin = c.client
    // node-a registers itself; it may not write node-b
    await a.create(nodes, undefined, { metadata: { name: 'node-a' }, status: {} })
    const other = await a.request('POST', resourcePath(nodes), { body: { metadata: { name: 'node-b' } } })
    t.equal(other.status, 403, 'node-a cannot create node-b')
    await admin.create(nodes, undefined, { metadata: { name: 'node-b' } })
    const upd = await a.request('PATCH', resourcePath(nodes, undefined, 'node-b'), { body: { metadata: { labels: { x: 'y' } } }, contentType: 'application/merge-patch+json' })
    t.equal(upd.status, 403, 'node-a cannot patch node-b')

    await admin.create(secrets, 'default', { metadata: { name: 'used' }, stringData: { k: 'v' } })
    await admin.create(secrets, 'default', { metadata: { name: 'unused' }, stringData: { k: 'v' } })
    const podSpec = (node: string, secret: string) => ({
      nodeName: node,
      containers: [{ name: 'c', image: 'skiff/echo:local', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: secret, key: 'k' } } }] }],
    })
    await admin.create(pods, 'default', { metadata: { name: 'on-a' }, spec: podSpec('node-a', 'used') })
    await admin.create(pods, 'default', { metadata: { name: 'on-b' }, spec: podSpec('node-b', 'unused') })

    const okStatus = await a.request('PATCH', resourcePath(pods, 'default', 'on-a', 'status'), {
      body: { status: { phase: 'Running' } },
      contentType: 'application/merge-patch+json',
    })
    t.equal(okStatus.status, 200, 'node-a writes status of its own pod')
    const badStatus = await a.request('PATCH', resourcePath(pods, 'default', 'on-b', 'status'), {
      body: { status: { phase: 'Running' } },
      contentType: 'application/merge-patch+json',
    })
    t.equal(badStatus.status, 403, "node-a cannot write node-b's pod status")
    t.equal((await admin.get(pods, 'default', 'on-b')).status.phase, 'Pending', 'nothing stored')

    const { eventually } = await import('../../lib/net.ts')
    await eventually(async () => (await a.request('GET', resourcePath(secrets, 'default', 'used'))).status === 200, { what: 'node-a reads the secret its pod uses' })
    const unused = await a.request('GET', resourcePath(secrets, 'default', 'unused'))
    t.equal(unused.status, 403, 'node-a cannot read a secret none of its pods uses')
    const list = await a.request('GET', resourcePath(secrets, 'default'))
    t.equal(list.status, 403, 'node-a cannot list secrets')
    const write = await a.request('POST', resourcePath(cms, 'default'), { body: { metadata: { name: 'x' } } })
    t.equal(write.status, 403, 'node-a cannot create configmaps')
  })

  await t.test('ingress authorization: only the Secrets its class names', async (t) => {
    const ing = c.clientFor(c.tokens.get('skiff:ingress:external')!)
    const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
    const admin = c.client
    const tls = (name: string) => ({ metadata: { name }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from('crt').toString('base64'), 'tls.key': Buffer.from('key').toString('base64') } })
    await admin.create(secrets, 'default', tls('ext-tls'))
    await admin.create(secrets, 'default', tls('int-tls'))
    const rule = { host: 'a.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }
    await admin.create(ingresses, 'default', { metadata: { name: 'ext' }, spec: { ingressClassName: 'external', tls: [{ hosts: ['a.example.com'], secretName: 'ext-tls' }], rules: [rule] } })
    await admin.create(ingresses, 'default', { metadata: { name: 'int' }, spec: { ingressClassName: 'internal', tls: [{ hosts: ['a.example.com'], secretName: 'int-tls' }], rules: [rule] } })
    const { eventually } = await import('../../lib/net.ts')
    await eventually(async () => (await ing.request('GET', resourcePath(secrets, 'default', 'ext-tls'))).status === 200, { what: 'ingress reads its TLS secret' })
    t.equal((await ing.request('GET', resourcePath(secrets, 'default', 'int-tls'))).status, 403, 'not the other class secret')
    t.equal((await ing.request('GET', resourcePath(secrets, 'default'))).status, 403, 'no listing secrets')
    const lb = { status: { loadBalancer: { ingress: [{ ip: '127.0.0.1' }] } } }
    const own = await ing.request('PATCH', resourcePath(ingresses, 'default', 'ext', 'status'), { body: lb, contentType: 'application/merge-patch+json' })
    t.equal(own.status, 200, 'writes its own class status')
    const other = await ing.request('PATCH', resourcePath(ingresses, 'default', 'int', 'status'), { body: lb, contentType: 'application/merge-patch+json' })
    t.equal(other.status, 403, 'not another class status')
    t.equal((await ing.request('GET', resourcePath(ingresses, 'default'))).status, 200, 'reads ingresses')
  })

  await t.test('the server keeps serving after bad input', async (t) => {
    const res = await c.client.request('POST', resourcePath(cms, 'default'), { rawBody: '{not json', contentType: 'application/json' })
    t.equal(res.status, 400)
    const ok = await c.client.create(cms, 'default', { metadata: { name: 'after' } })
    t.equal(ok.metadata.name, 'after')
  })
})

