// Gateway API on the ingress data plane, with real traffic: a control plane
// with controllers, one node in the external pool (its IngressSupervisor
// with real worker processes on the node address, port 80), echo pods
// behind Services, a GatewayClass `external` and a Gateway, HTTPRoutes.
// Checks matching with precedence, a 90/10 weighted split, each filter, a
// cross-namespace backendRef refused without a ReferenceGrant and accepted
// with one (status says so), and an Ingress served beside the HTTPRoutes.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { app, echo, send, service } from '../harness/gateway.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const R = {
  namespaces: lookupResource('', 'v1', 'namespaces')!,
  deploys: lookupResource('apps', 'v1', 'deployments')!,
  services: lookupResource('', 'v1', 'services')!,
  slices: lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!,
  ingresses: lookupResource('networking.k8s.io', 'v1', 'ingresses')!,
  gatewayClasses: lookupResource('gateway.networking.k8s.io', 'v1', 'gatewayclasses')!,
  gateways: lookupResource('gateway.networking.k8s.io', 'v1', 'gateways')!,
  routes: lookupResource('gateway.networking.k8s.io', 'v1', 'httproutes')!,
  grants: lookupResource('gateway.networking.k8s.io', 'v1beta1', 'referencegrants')!,
}

const parent = [{ name: 'gw', namespace: 'gw-app' }]
const be = (name: string, extra: Record<string, unknown> = {}) => ({ name, port: 80, ...extra })
const route = (name: string, hostnames: string[], rules: unknown[]): KubeObject => ({ metadata: { name }, spec: { parentRefs: parent, hostnames, rules } })

t.test('Gateway API through the external pool', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const [name] = testNodeNames(1, 'gw')
  const c = await startTestCluster(t, { identities: [...nodeIdentities([name!]), ingressIdentity('external')], controllers: { clusterCIDR: net.clusterCIDR } })
  const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, labels: { 'skiff.dev/ingress-pool': 'external' }, serviceProxy: { backend: 'none' }, dnsPort: 0, ingress: { drainMs: 1_000 } })
  const ip = node.agent.network!.gateway
  for (const ns of ['gw-app', 'gw-back']) await c.client.create(R.namespaces, '', { metadata: { name: ns } })
  for (const [ns, n] of [['gw-app', 'one'], ['gw-app', 'two'], ['gw-back', 'back']] as const) {
    await c.client.create(R.deploys, ns, echo(n))
    await c.client.create(R.services, ns, service(n))
  }
  await c.client.create(R.gatewayClasses, '', { metadata: { name: 'external' }, spec: { controllerName: 'skiff.dev/ingress' } })
  await c.client.create(R.gateways, 'gw-app', { metadata: { name: 'gw' }, spec: { gatewayClassName: 'external', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: '*.gw.test' }] } })
  await c.client.create(R.routes, 'gw-app', route('match', ['match.gw.test'], [
    { backendRefs: [be('one')] },
    { matches: [{ path: { type: 'Exact', value: '/exact' } }], backendRefs: [be('two')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/api/v2' } }], backendRefs: [be('two')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [be('one')] },
    { matches: [{ headers: [{ name: 'version', value: 'two' }] }], backendRefs: [be('two')] },
    { matches: [{ queryParams: [{ name: 'q', value: '2' }] }], backendRefs: [be('two')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/m' }, method: 'POST' }], backendRefs: [be('two')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/m' }, headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: '1' }] }], backendRefs: [be('one')] },
  ]))
  await c.client.create(R.routes, 'gw-app', route('split', ['split.gw.test'], [{ backendRefs: [be('one', { weight: 90 }), be('two', { weight: 10 })] }]))
  await c.client.create(R.routes, 'gw-app', route('filters', ['filters.gw.test'], [
    { matches: [{ path: { type: 'PathPrefix', value: '/req' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'set' }], add: [{ name: 'X-Add', value: 'added' }], remove: ['X-Remove'] } }], backendRefs: [be('one')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/resp' } }], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Resp', value: 'yes' }] } }], backendRefs: [be('one')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/redirect' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'elsewhere.test', statusCode: 301 } }] },
    { matches: [{ path: { type: 'PathPrefix', value: '/rewrite' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'rewritten.test', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } }], backendRefs: [be('one')] },
  ]))
  await c.client.create(R.routes, 'gw-app', route('cross', ['cross.gw.test'], [{ backendRefs: [be('back', { namespace: 'gw-back' })] }]))
  await c.client.create(R.ingresses, 'gw-app', { metadata: { name: 'ing' }, spec: { ingressClassName: 'external', rules: [{ host: 'ing.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'two', port: { name: 'http' } } } }] } }] } })
  await eventually(async () => {
    let ready = 0
    for (const ns of ['gw-app', 'gw-back']) ready += (await c.client.list(R.slices, ns)).items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready).length
    return ready === 3
  }, { timeout: 90_000, what: 'three ready echo endpoints' })
  await eventually(async () => app(await send(ip, 'match.gw.test', '/')) === 'one' && app(await send(ip, 'ing.test', '/')) === 'two', { timeout: 30_000, what: 'routes served' })

  await t.test('GatewayClass and Gateway status', async (t) => {
    await eventually(async () => (await c.client.get(R.gateways, 'gw-app', 'gw')).status?.conditions?.find((x: any) => x.type === 'Programmed')?.status === 'True', { timeout: 30_000, what: 'Gateway Programmed' })
    const gc = await c.client.get(R.gatewayClasses, '', 'external')
    t.match(gc.status.conditions, [{ type: 'Accepted', status: 'True', reason: 'Accepted', observedGeneration: 1 }])
    const gw = await c.client.get(R.gateways, 'gw-app', 'gw')
    t.same(gw.status.addresses, [{ type: 'IPAddress', value: ip }])
    t.match(gw.status.conditions, [{ type: 'Accepted', status: 'True' }, { type: 'Programmed', status: 'True' }])
    t.match(gw.status.listeners, [{ name: 'http', attachedRoutes: 4, conditions: [{ type: 'Accepted', status: 'True' }] }])
  })

  await t.test('path, header, query and method matching with precedence', async (t) => {
    const to = async (path: string, o?: Parameters<typeof send>[3]) => app(await send(ip, 'match.gw.test', path, o))
    t.equal(await to('/'), 'one')
    t.equal(await to('/exact'), 'two', 'Exact')
    t.equal(await to('/exact/'), 'one', 'Exact does not match a trailing slash')
    t.equal(await to('/api/v2/x'), 'two', 'longest prefix')
    t.equal(await to('/api/v2x'), 'one', 'prefixes match whole segments')
    t.equal(await to('/', { headers: { Version: 'two' } }), 'two', 'header')
    t.equal(await to('/?q=2'), 'two', 'query param')
    t.equal(await to('/m', { method: 'POST', headers: { 'x-a': '1', 'x-b': '1' } }), 'two', 'a method match beats two header matches')
    t.equal(await to('/m', { headers: { 'x-a': '1', 'x-b': '1' } }), 'one')
    t.equal((await send(ip, 'other.gw.test', '/')).status, 404, 'no route for the host')
  })

  await t.test('a 90/10 weighted split over 1,000 requests is within 5 points', async (t) => {
    const counts: Record<string, number> = {}
    for (let i = 0; i < 100; i++) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => send(ip, 'split.gw.test', '/')))
      for (const a of batch) counts[app(a)] = (counts[app(a)] ?? 0) + 1
    }
    t.same(Object.keys(counts).sort(), ['one', 'two'], `only the two backends answered: ${JSON.stringify(counts)}`)
    t.ok(Math.abs(counts.one! / 1000 - 0.9) <= 0.05, `one: ${counts.one}/1000`)
    t.ok(Math.abs(counts.two! / 1000 - 0.1) <= 0.05, `two: ${counts.two}/1000`)
  })

  await t.test('filters change what the backend or the client sees', async (t) => {
    const req = await send(ip, 'filters.gw.test', '/req', { headers: { 'X-Set': 'old', 'X-Add': 'first', 'X-Remove': 'gone' } })
    t.equal(req.json.headers['x-set'], 'set', 'set overwrites')
    t.equal(req.json.headers['x-add'], 'first, added', 'add appends')
    t.equal(req.json.headers['x-remove'], undefined, 'remove deletes')
    const resp = await send(ip, 'filters.gw.test', '/resp')
    t.equal(resp.headers['x-resp'], 'yes', 'response header set')
    const redirect = await send(ip, 'filters.gw.test', '/redirect/a?b=1')
    t.equal(redirect.status, 301)
    t.equal(redirect.headers.location, 'http://elsewhere.test/redirect/a?b=1')
    const rewrite = await send(ip, 'filters.gw.test', '/rewrite/x?y=1')
    t.equal(rewrite.json.path, '/new/x', 'ReplacePrefixMatch')
    t.equal(rewrite.json.headers.host, 'rewritten.test', 'hostname rewritten')
  })

  await t.test('a cross-namespace backend needs a ReferenceGrant', async (t) => {
    const resolved = async () => (await c.client.get(R.routes, 'gw-app', 'cross')).status?.parents?.[0]?.conditions?.find((x: any) => x.type === 'ResolvedRefs')
    await eventually(async () => (await resolved())?.reason === 'RefNotPermitted', { timeout: 30_000, what: 'ResolvedRefs RefNotPermitted' })
    t.match(await resolved(), { status: 'False', reason: 'RefNotPermitted', observedGeneration: 1 })
    t.equal((await send(ip, 'cross.gw.test', '/')).status, 500, 'refused backend: 500')
    await c.client.create(R.grants, 'gw-back', { metadata: { name: 'from-app' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'gw-app' }], to: [{ group: '', kind: 'Service' }] } })
    await eventually(async () => (await resolved())?.status === 'True', { timeout: 30_000, what: 'ResolvedRefs True with the grant' })
    const st = (await c.client.get(R.routes, 'gw-app', 'cross')).status
    t.match(st.parents, [{ controllerName: 'skiff.dev/ingress', parentRef: { name: 'gw', namespace: 'gw-app' }, conditions: [{ type: 'Accepted', status: 'True' }, { type: 'ResolvedRefs', status: 'True' }] }])
    await eventually(async () => app(await send(ip, 'cross.gw.test', '/')) === 'back', { timeout: 30_000, what: 'served with the grant' })
    await c.client.delete(R.grants, 'gw-back', 'from-app')
    await eventually(async () => (await send(ip, 'cross.gw.test', '/')).status === 500, { timeout: 30_000, what: 'revoked with the grant' })
  })

  await t.test('kubectl: apply, get columns, validation errors', async (t) => {
    const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: applied, namespace: gw-app}
spec:
  parentRefs: [{name: gw}]
  hostnames: [applied.gw.test]
  rules: [{backendRefs: [{name: one, port: 80}]}]
`
    await c.kubectl(['apply', '-f', '-'], { stdin: yaml })
    await eventually(async () => app(await send(ip, 'applied.gw.test', '/')) === 'one', { timeout: 30_000, what: 'the applied route served' })
    t.match((await c.kubectl(['get', 'gatewayclass'])).stdout, /NAME\s+CONTROLLER\s+ACCEPTED\s+AGE\nexternal\s+skiff\.dev\/ingress\s+True\s+\d+s/)
    t.match((await c.kubectl(['get', 'gtw', '-n', 'gw-app'])).stdout, new RegExp(`NAME\\s+CLASS\\s+ADDRESS\\s+PROGRAMMED\\s+AGE\\ngw\\s+external\\s+${ip.replace(/\./g, '\\.')}\\s+True`))
    t.match((await c.kubectl(['get', 'httproute', 'applied', '-n', 'gw-app'])).stdout, /NAME\s+HOSTNAMES\s+AGE\napplied\s+\["applied\.gw\.test"\]/)
    const bad = await c.kubectl(['apply', '-f', '-'], { stdin: yaml.replace('applied, namespace', 'bad, namespace').replace('port: 80}', 'port: 80, weight: 2000000}'), allowFail: true })
    t.not(bad.code, 0)
    t.match(bad.stderr, /spec\.rules\[0\]\.backendRefs\[0\]\.weight: Invalid value: 2000000/)
  })

  await t.test('an Ingress and HTTPRoutes side by side on the same workers', async (t) => {
    t.equal(app(await send(ip, 'ing.test', '/')), 'two', 'the Ingress host')
    t.equal(app(await send(ip, 'match.gw.test', '/')), 'one', 'the HTTPRoute host')
    t.equal((await send(ip, 'nothing.test', '/')).status, 404)
  })
})
