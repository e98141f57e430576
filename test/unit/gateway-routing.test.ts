// Gateway API on the ingress data plane, pure parts: attachment (parentRefs,
// sectionName, allowedRoutes, hostname intersection), ReferenceGrant,
// backend resolution, the route table's precedence (cases of the Gateway
// API conformance suite), weights and filters.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { admit } from '../../dataplane/ingress/admission.ts'
import { scanHeaders } from '../../dataplane/ingress/headers.ts'
import { buildSnapshot } from '../../dataplane/ingress/snapshot-build.ts'
import { compileState } from '../../dataplane/ingress/state.ts'
import { buildGatewayRouting, intersectHostnames, type GatewayInputs } from '../../dataplane/ingress/gateway-build.ts'
import { planGatewayStatus } from '../../dataplane/ingress/gateway-status.ts'
import { applyHeaderEdits, compileGatewayTable, explainGateway, gatewayAction, matchGateway, pickBackend, replacePrefix, type GwRequest } from '../../dataplane/ingress/gateway-routes.ts'

const T0 = '2026-01-01T00:00:00Z'
const T1 = '2026-01-01T00:01:00Z'
const gc = { metadata: { name: 'external' }, spec: { controllerName: 'skiff.dev/ingress' } }
const gateway = (listeners: any[], ns = 'gw-ns', name = 'gw'): KubeObject => ({ metadata: { name, namespace: ns, generation: 1 }, spec: { gatewayClassName: 'external', listeners } })
const http = (extra: Record<string, unknown> = {}) => ({ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } }, ...extra })
const svc = (ns: string, name: string, port = 8080): KubeObject => ({ metadata: { name, namespace: ns }, spec: { ports: [{ port }] } })
const route = (name: string, spec: Record<string, unknown>, opts: { ns?: string; created?: string } = {}): KubeObject => ({
  metadata: { name, namespace: opts.ns ?? 'app', creationTimestamp: opts.created ?? T0, generation: 2 },
  spec: { parentRefs: [{ name: 'gw', namespace: 'gw-ns' }], ...spec },
})
const to = (name: string, extra: Record<string, unknown> = {}) => ({ backendRefs: [{ name, port: 8080, ...extra }] })
const services = ['v1', 'v2', 'v3', 'a', 'b', 'c', 'd'].map((n) => svc('app', n))

function build(over: Partial<GatewayInputs>) {
  return buildGatewayRouting({ className: 'external', gatewayClasses: [gc], gateways: [gateway([http()])], httpRoutes: [], referenceGrants: [], namespaces: [], services, ...over })
}

/** The service a request reaches (first backend of the matched rule), or the status of the answer. */
function serve(input: Partial<GatewayInputs>) {
  const b = build(input)
  const table = compileGatewayTable(b.snapshot)
  return (path: string, opts: { host?: string; method?: string; headers?: string[]; scheme?: 'http' | 'https' } = {}) => {
    const q = path.indexOf('?')
    const req: GwRequest = { scheme: opts.scheme ?? 'http', host: opts.host ?? 'example.com', method: opts.method ?? 'GET', path: q < 0 ? path : path.slice(0, q), search: q < 0 ? '' : path.slice(q), headers: opts.headers ?? [] }
    const m = matchGateway(table, req)
    if (m.kind !== 'match') return m.kind === 'none' ? 'none' : 404
    const a = gatewayAction(m.entry, { ...req, authority: req.host }, 0)
    return a.kind === 'forward' ? a.backend.service : a.status
  }
}

t.test('HTTPRouteMatching (conformance)', async (t) => {
  const go = serve({ httpRoutes: [route('r', { rules: [
    { matches: [{ path: { type: 'PathPrefix', value: '/' } }], ...to('v1') },
    { matches: [{ path: { type: 'PathPrefix', value: '/v2' } }, { headers: [{ name: 'version', value: 'two' }] }], ...to('v2') },
  ] })] })
  t.equal(go('/'), 'v1')
  t.equal(go('/example'), 'v1')
  t.equal(go('/v2'), 'v2')
  t.equal(go('/v2/'), 'v2')
  t.equal(go('/v2/example'), 'v2')
  t.equal(go('/v2example'), 'v1')
  t.equal(go('/', { headers: ['Version', 'two'] }), 'v2')
})

t.test('path match order: Exact > longest prefix; across routes', async (t) => {
  const go = serve({ httpRoutes: [
    route('r1', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/match' } }], ...to('a') }, { matches: [{ path: { type: 'Exact', value: '/match/exact/one' } }], ...to('b') }] }),
    route('r2', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/match/prefix/one' } }], ...to('c') }, { matches: [{ path: { type: 'PathPrefix', value: '/match/prefix/one/' } }], ...to('d') }] }),
  ] })
  t.equal(go('/match/exact/one'), 'b')
  t.equal(go('/match/exact/one/'), 'a', 'Exact does not match a trailing slash')
  t.equal(go('/match/prefix/one/any'), 'c', 'equal length after the trailing slash: the earlier rule of the route')
  t.equal(go('/match/prefix/two'), 'a')
  t.equal(go('/nothing'), 404)
})

t.test('header ties go to the earlier rule; method beats headers; query params', async (t) => {
  const go = serve({ httpRoutes: [route('r', { rules: [
    { matches: [{ headers: [{ name: 'version', value: 'two' }] }], ...to('v1') },
    { matches: [{ headers: [{ name: 'color', value: 'blue' }] }], ...to('v2') },
    { matches: [{ headers: [{ name: 'version', value: 'four' }] }], ...to('a') },
    { matches: [{ method: 'PATCH' }], ...to('b') },
    { matches: [{ queryParams: [{ name: 'animal', value: 'whale' }] }], ...to('c') },
    { matches: [{ queryParams: [{ name: 'ANIMAL', value: 'Whale' }] }], ...to('d') },
    { matches: [{ queryParams: [{ name: 'animal', value: 'dolphin' }, { name: 'color', value: 'blue' }] }], ...to('v3') },
  ] })] })
  t.equal(go('/', { headers: ['version', 'two', 'color', 'blue'] }), 'v1')
  t.equal(go('/', { headers: ['color', 'blue'] }), 'v2')
  t.equal(go('/', { method: 'PATCH', headers: ['version', 'four'] }), 'b')
  t.equal(go('/?animal=whale'), 'c')
  t.equal(go('/?ANIMAL=Whale'), 'd')
  t.equal(go('/?animal=whaledolphin'), 404)
  t.equal(go('/?animal=dolphin&color=blue'), 'v3', 'two query params beat none')
  t.equal(go('/', { headers: ['version', 'unknown'] }), 404)
})

t.test('identical matches: the oldest route, then namespace/name', async (t) => {
  const spec = { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' } }], ...to('a') }] }
  const spec2 = { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' } }], ...to('b') }] }
  t.equal(serve({ httpRoutes: [route('new', spec, { created: T1 }), route('old', spec2, { created: T0 })] })('/x'), 'b')
  t.equal(serve({ httpRoutes: [route('zz', spec), route('aa', spec2)] })('/x'), 'b')
})

t.test('hostnames: the most specific route hostname decides; listener isolation', async (t) => {
  const gateways = [gateway([http({ name: 'wild', hostname: '*.example.com' }), http({ name: 'specific', hostname: 'bar.foo.example.com' }), http({ name: 'any' })])]
  const go = serve({ gateways, httpRoutes: [
    route('exact', { parentRefs: [{ name: 'gw', namespace: 'gw-ns', sectionName: 'wild' }], hostnames: ['foo.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/a' } }], ...to('a') }] }),
    route('wild', { parentRefs: [{ name: 'gw', namespace: 'gw-ns', sectionName: 'wild' }], rules: [to('b')] }),
    route('specific', { parentRefs: [{ name: 'gw', namespace: 'gw-ns', sectionName: 'specific' }], rules: [{ matches: [{ path: { type: 'Exact', value: '/s' } }], ...to('c') }] }),
    route('fallback', { parentRefs: [{ name: 'gw', namespace: 'gw-ns', sectionName: 'any' }], rules: [to('d')] }),
  ] })
  t.equal(go('/a', { host: 'foo.example.com' }), 'a')
  t.equal(go('/other', { host: 'foo.example.com' }), 404, 'no fall back to the wildcard route')
  t.equal(go('/other', { host: 'x.y.example.com' }), 'b', 'a wildcard matches several labels')
  t.equal(go('/s', { host: 'bar.foo.example.com' }), 'c')
  t.equal(go('/t', { host: 'bar.foo.example.com' }), 404, 'listener isolation: never the *.example.com routes')
  t.equal(go('/', { host: 'example.com' }), 'd', 'the wildcard does not match the bare domain')
  t.equal(go('/', { scheme: 'https' }), 'none', 'no HTTPS listener')
})

t.test('hostname intersection', async (t) => {
  t.same(intersectHostnames('', []), [''])
  t.same(intersectHostnames('*.example.com', []), ['*.example.com'])
  t.same(intersectHostnames('', ['a.com']), ['a.com'])
  t.same(intersectHostnames('*.example.com', ['a.example.com', 'a.b.example.com', 'example.com', 'other.com']), ['a.example.com', 'a.b.example.com'])
  t.same(intersectHostnames('foo.example.com', ['*.example.com']), ['foo.example.com'])
  t.same(intersectHostnames('*.example.com', ['*.foo.example.com']), ['*.foo.example.com'])
  t.same(intersectHostnames('*.foo.example.com', ['*.example.com']), ['*.foo.example.com'])
  t.same(intersectHostnames('a.com', ['b.com']), [])
})

t.test('attachment and its status: sectionName, allowedRoutes, hostnames', async (t) => {
  const gateways = [gateway([
    { name: 'same', port: 80, protocol: 'HTTP', hostname: 'same.example.com', allowedRoutes: { namespaces: { from: 'Same' } } },
    { name: 'sel', port: 80, protocol: 'HTTP', hostname: 'sel.example.com', allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } } },
    { name: 'odd', port: 8080, protocol: 'HTTP' },
    { name: 'tcp', port: 80, protocol: 'TCP' },
  ])]
  const namespaces = [{ metadata: { name: 'app', labels: { team: 'a' } } }, { metadata: { name: 'other', labels: {} } }] as KubeObject[]
  const pr = (sectionName: string) => ({ parentRefs: [{ name: 'gw', namespace: 'gw-ns', sectionName }] })
  const b = build({ gateways, namespaces, httpRoutes: [
    route('r-same', { ...pr('same'), rules: [to('a')] }),
    route('r-sel', { ...pr('sel'), rules: [to('a')] }),
    route('r-sel-other', { ...pr('sel'), rules: [to('a')] }, { ns: 'other' }),
    route('r-missing', { ...pr('nope'), rules: [to('a')] }),
    route('r-host', { ...pr('sel'), hostnames: ['else.example.com'], rules: [to('a')] }),
    route('r-foreign', { parentRefs: [{ name: 'not-ours', namespace: 'gw-ns' }], rules: [to('a')] }),
  ] })
  const accepted = (key: string) => b.routes.find((r) => r.key === key)?.parents[0]?.conditions[0]
  t.match(accepted('app/r-same'), { status: 'False', reason: 'NotAllowedByListeners' })
  t.match(accepted('app/r-sel'), { status: 'True', reason: 'Accepted' })
  t.match(accepted('other/r-sel-other'), { status: 'False', reason: 'NotAllowedByListeners' })
  t.match(accepted('app/r-missing'), { status: 'False', reason: 'NoMatchingParent' })
  t.match(accepted('app/r-host'), { status: 'False', reason: 'NoMatchingListenerHostname' })
  t.equal(b.routes.find((r) => r.key === 'app/r-foreign'), undefined, 'no status for parents of other controllers')
  const g = b.gateways[0]!
  t.match(g.conditions, [{ type: 'Accepted', status: 'True', reason: 'ListenersNotValid' }, { type: 'Programmed', status: 'True' }])
  t.match(g.listeners.find((l) => l.name === 'sel'), { attachedRoutes: 1, conditions: [{ type: 'Accepted', status: 'True' }] })
  t.match(g.listeners.find((l) => l.name === 'odd')!.conditions[0], { status: 'False', reason: 'PortUnavailable' })
  t.match(g.listeners.find((l) => l.name === 'tcp')!.conditions[0], { status: 'False', reason: 'UnsupportedProtocol' })
  t.same(b.snapshot.routes.map((r) => r.route), ['app/r-sel'])
  t.match(b.gatewayClass, { conditions: [{ type: 'Accepted', status: 'True' }] })
  t.equal(build({ gatewayClasses: [{ metadata: { name: 'external' }, spec: { controllerName: 'example.com/other' } }] }).gatewayClass, undefined)
})

t.test('backendRefs: ReferenceGrant, BackendNotFound, InvalidKind → 500 for their share', async (t) => {
  const cross = route('r', { rules: [{ backendRefs: [{ name: 'be', namespace: 'backend', port: 8080 }] }] })
  const grant = { metadata: { name: 'g', namespace: 'backend' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'app' }], to: [{ group: '', kind: 'Service' }] } } as KubeObject
  const withSvc = [...services, svc('backend', 'be')]
  const refused = build({ httpRoutes: [cross], services: withSvc })
  t.match(refused.routes[0]!.parents[0]!.conditions, [{ type: 'Accepted', status: 'True' }, { type: 'ResolvedRefs', status: 'False', reason: 'RefNotPermitted' }])
  t.equal(serve({ httpRoutes: [cross], services: withSvc })('/'), 500)
  const granted = build({ httpRoutes: [cross], services: withSvc, referenceGrants: [grant] })
  t.match(granted.routes[0]!.parents[0]!.conditions[1], { type: 'ResolvedRefs', status: 'True' })
  t.ok(granted.services.has('backend/be'))
  t.equal(serve({ httpRoutes: [cross], services: withSvc, referenceGrants: [grant] })('/'), 'be')
  const named = { ...grant, spec: { ...grant.spec, to: [{ group: '', kind: 'Service', name: 'other' }] } } as KubeObject
  t.match(build({ httpRoutes: [cross], services: withSvc, referenceGrants: [named] }).routes[0]!.parents[0]!.conditions[1], { reason: 'RefNotPermitted' })
  const wrongNs = { ...grant, metadata: { name: 'g', namespace: 'app' } } as KubeObject
  t.match(build({ httpRoutes: [cross], services: withSvc, referenceGrants: [wrongNs] }).routes[0]!.parents[0]!.conditions[1], { reason: 'RefNotPermitted' }, 'the grant lives in the target namespace')
  t.match(build({ httpRoutes: [route('r', { rules: [to('missing')] })] }).routes[0]!.parents[0]!.conditions[1], { status: 'False', reason: 'BackendNotFound' })
  t.match(build({ httpRoutes: [route('r', { rules: [{ backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'x' }] }] })] }).routes[0]!.parents[0]!.conditions[1], { status: 'False', reason: 'InvalidKind' })
  t.equal(serve({ httpRoutes: [route('r', { rules: [{}] })] })('/'), 500, 'no backendRefs: 500')
})

t.test('weights', async (t) => {
  const bs = [{ weight: 90, namespace: 'a', service: 'x', port: 1, filters: [] }, { weight: 10, namespace: 'a', service: 'y', port: 1, filters: [] }, { weight: 0, namespace: 'a', service: 'z', port: 1, filters: [] }]
  const counts: Record<string, number> = {}
  for (let i = 0; i < 1000; i++) {
    const b = pickBackend(bs, i / 1000) as { service: string }
    counts[b.service] = (counts[b.service] ?? 0) + 1
  }
  t.same(counts, { x: 900, y: 100 })
  t.equal(pickBackend([{ weight: 0, error: 'x' }], 0.5), undefined)
  t.equal(pickBackend([], 0.5), undefined)
  const r = build({ httpRoutes: [route('r', { rules: [{ backendRefs: [{ name: 'a', port: 8080, weight: 70 }, { name: 'b', port: 8080, weight: 30 }] }] })] })
  t.same(r.snapshot.routes[0]!.rules[0]!.backends.map((b) => b.weight), [70, 30])
})

t.test('filters', async (t) => {
  const act = (filters: unknown[], path = '/foo/bar', match: unknown = { path: { type: 'PathPrefix', value: '/foo' } }, scheme: 'http' | 'https' = 'http') => {
    const table = compileGatewayTable(build({ httpRoutes: [route('r', { rules: [{ matches: [match], filters, ...to('a') }] })] }).snapshot)
    const q = path.indexOf('?')
    const req: GwRequest = { scheme, host: 'example.com', method: 'GET', path: q < 0 ? path : path.slice(0, q), search: q < 0 ? '' : path.slice(q), headers: [] }
    const m = matchGateway(table, req)
    return m.kind === 'match' ? gatewayAction(m.entry, { ...req, authority: 'example.com' }, 0) : undefined
  }
  t.match(act([{ type: 'RequestRedirect', requestRedirect: { hostname: 'other.com' } }]), { kind: 'answer', status: 302, headers: { Location: 'http://other.com/foo/bar' } })
  t.match(act([{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }], '/foo/bar?x=1'), { status: 301, headers: { Location: 'https://example.com/foo/bar?x=1' } })
  t.match(act([{ type: 'RequestRedirect', requestRedirect: { port: 8443, scheme: 'https' } }]), { headers: { Location: 'https://example.com:8443/foo/bar' } })
  t.match(act([{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/xyz' } } }]), { headers: { Location: 'http://example.com/xyz/bar' } })
  t.match(act([{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/full' } } }]), { headers: { Location: 'http://example.com/full' } })
  t.match(act([{ type: 'URLRewrite', urlRewrite: { hostname: 'internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '' } } }]), { kind: 'forward', path: '/bar', host: 'internal' })
  t.match(act([{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], '/foo'), { path: '/' })
  t.match(act([{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'b', port: 8080 } } }]), { kind: 'answer', status: 500 })
  t.equal(replacePrefix('/foo/bar', '/foo', '/xyz'), '/xyz/bar')
  t.equal(replacePrefix('/foo/bar', '/foo', ''), '/bar')
  t.equal(replacePrefix('/foo', '/foo', ''), '/')
  const fwd = act([{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'new' }], add: [{ name: 'X-Add', value: 'more' }], remove: ['x-gone'] } }, { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Resp', value: '1' }] } }])
  if (fwd?.kind !== 'forward') throw new Error('expected a forward')
  t.same(applyHeaderEdits(['x-set', 'old', 'X-Add', 'some', 'X-Gone', 'bye', 'Keep', 'me'], fwd.request), ['X-Add', 'some', 'Keep', 'me', 'X-Set', 'new', 'X-Add', 'more'])
  t.same(applyHeaderEdits(['Content-Type', 'text/plain'], fwd.response), ['Content-Type', 'text/plain', 'X-Resp', '1'])
})

t.test('status plan: conditions with observedGeneration, own parents replaced, others kept', async (t) => {
  const r = route('r', { rules: [to('a')] })
  r.status = { parents: [
    { parentRef: { name: 'other-gw' }, controllerName: 'example.com/other', conditions: [] },
    { parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'gw-ns', sectionName: 'gone' }, controllerName: 'skiff.dev/ingress', conditions: [] },
  ] }
  const gwObj = gateway([http()])
  const gcObj = { metadata: { name: 'external', generation: 3 }, spec: gc.spec } as KubeObject
  const b = build({ gatewayClasses: [gcObj], gateways: [gwObj], httpRoutes: [r] })
  const now = '2026-01-01T00:05:00Z'
  const ups = planGatewayStatus({ build: b, gatewayClasses: [gcObj], gateways: [gwObj], httpRoutes: [r], addresses: ['10.0.0.5'], now })
  const by = (k: string) => ups.find((u) => u.kind === k)!.status as any
  t.match(by('GatewayClass').conditions, [{ type: 'Accepted', status: 'True', observedGeneration: 3, lastTransitionTime: now }])
  t.same(by('Gateway').addresses, [{ type: 'IPAddress', value: '10.0.0.5' }])
  t.match(by('Gateway').listeners, [{ name: 'http', attachedRoutes: 1, supportedKinds: [{ kind: 'HTTPRoute' }] }])
  const parents = by('HTTPRoute').parents
  t.equal(parents.length, 2, 'the stale own entry is gone, the other controller\'s stays')
  t.equal(parents[0].controllerName, 'example.com/other')
  t.match(parents[1], { controllerName: 'skiff.dev/ingress', conditions: [{ type: 'Accepted', status: 'True', observedGeneration: 2 }, { type: 'ResolvedRefs', status: 'True' }] })
  const noAddr = planGatewayStatus({ build: b, gatewayClasses: [], gateways: [gwObj], httpRoutes: [], addresses: [], now })
  t.match(noAddr[0]!.status, { conditions: [{ type: 'Accepted' }, { type: 'Programmed', status: 'False', reason: 'AddressNotAssigned' }] })
  // Applied: nothing left to write, and transition times stay.
  gcObj.status = by('GatewayClass')
  gwObj.status = by('Gateway')
  r.status = by('HTTPRoute')
  t.same(planGatewayStatus({ build: b, gatewayClasses: [gcObj], gateways: [gwObj], httpRoutes: [r], addresses: ['10.0.0.5'], now: '2026-01-01T01:00:00Z' }), [])
})

t.test('explainGateway: the listener, the hostname tier, each candidate in order, the result', async (t) => {
  const table = compileGatewayTable(build({ httpRoutes: [route('r', { hostnames: ['a.example.com'], rules: [
    { matches: [{ path: { type: 'PathPrefix', value: '/' } }], ...to('v1') },
    { matches: [{ path: { type: 'Exact', value: '/x' } }], filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'a', value: 'b' }] } }], ...to('v2') },
  ] })] }).snapshot)
  const lines = explainGateway(table, { scheme: 'http', host: 'a.example.com', method: 'GET', path: '/x', search: '', headers: [] })
  t.same(lines, [
    'gateway: listener hostname (any) (no fallback to less specific listeners)',
    '  route hostname a.example.com: candidates in precedence order (Exact, regex, longest prefix, method, headers, query, oldest, name, rule)',
    '    app/r rule 1 match 0 [Exact /x]: matches: chosen',
    '    app/r rule 0 match 0 [PathPrefix /]: matches, but an earlier candidate wins',
    '  result: app/r rule 1 filters ResponseHeaderModifier -> app/v2:8080 weight 1',
  ])
  t.same(explainGateway(table, { scheme: 'https', host: 'a.example.com', method: 'GET', path: '/', search: '', headers: [] }), ['gateway: no HTTPS listener serves host "a.example.com"'])
})

t.test('through the snapshot and admission: Gateway routes beside Ingress rules', async (t) => {
  const slice = (name: string, ip: string) => ({ metadata: { name: `${name}-x`, namespace: 'app', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: '', port: 9000 }], endpoints: [{ addresses: [ip], conditions: { ready: true } }] }) as KubeObject
  const gw = build({ httpRoutes: [route('r', { hostnames: ['gw.test', '*.wild.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/a' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-v', value: '1' }] } }, { type: 'URLRewrite', urlRewrite: { hostname: 'inner' } }], ...to('v1') }] })] })
  const ingress = (name: string, host: string) => ({ metadata: { name, namespace: 'app', creationTimestamp: T0 }, spec: { ingressClassName: 'external', rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'v2', port: { number: 8080 } } } }] } }] } }) as KubeObject
  const snap = buildSnapshot({ generation: 1, className: 'external', ingressClasses: [], ingresses: [ingress('i', 'ing.test'), ingress('exact', 'x.wild.test')], services, endpointSlices: [slice('v1', '10.0.0.1'), slice('v2', '10.0.0.2')], secrets: [], gateway: gw })
  t.ok(snap.gateway && snap.services['app/v1'] && snap.endpoints['app/v1'], 'the routes\' Services and endpoints are in the snapshot')
  const state = compileState(snap)
  const go = (host: string, path: string) => admit({ method: 'GET', url: path, httpVersion: '1.1', socket: {}, rawHeaders: ['Host', host] }, scanHeaders(['Host', host]), 'http', state, { host: '_', path: '', ingress: '' })
  t.match(go('gw.test', '/a/b'), { kind: 'forward', backend: { key: 'app/v1:8080', endpoints: [{ id: '10.0.0.1:9000' }] }, url: '/a/b', gateway: { host: 'inner', request: [{ set: [['x-v', '1']] }] } })
  t.match(go('gw.test', '/b'), { kind: 'answer', status: 404 }, 'a Gateway host with no matching path: 404, no Ingress fallback')
  t.match(go('ing.test', '/'), { kind: 'forward', backend: { key: 'app/v2:8080' } }, 'the Ingress host')
  t.match(go('x.wild.test', '/a'), { kind: 'forward', backend: { key: 'app/v2:8080' } }, 'an exact Ingress host beats a wildcard route hostname')
  t.match(go('y.wild.test', '/a'), { kind: 'forward', backend: { key: 'app/v1:8080' } })
})

t.test('many candidates sharing a path: method, header and query decide (the routing benchmark table)', async (t) => {
  const n = (i: number) => String(i).padStart(3, '0')
  const routes = Array.from({ length: 100 }, (_, i) => route(`r${n(i)}`, { rules: [{
    matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: i % 2 ? 'GET' : 'POST', headers: [{ name: 'x-group', value: `g${i % 10}` }], queryParams: [{ name: 'tenant', value: `t${n(i)}` }] }],
    ...to(['a', 'b', 'c', 'd'][i % 4]!),
  }] }))
  const go = serve({ httpRoutes: routes })
  t.equal(go('/api/x?tenant=t099', { headers: ['X-Group', 'g9'] }), 'd', 'the last candidate: r099 (99 % 4 = 3)')
  t.equal(go('/api/x?a=1&tenant=t042&tenant=t099', { method: 'POST', headers: ['x-group', 'g2'] }), 'c', 'the first value of a repeated parameter: r042')
  t.equal(go('/api/x?tenant=t099', { method: 'POST', headers: ['x-group', 'g9'] }), 404, 'r099 wants GET')
  t.equal(go('/api/x?tenant=t099', { headers: ['x-group', 'g8'] }), 404, 'header value differs')
  t.equal(go('/api/x', { headers: ['x-group', 'g9'] }), 404, 'no query')
  t.equal(go('/other?tenant=t099', { headers: ['x-group', 'g9'] }), 404, 'path differs')
  const table = compileGatewayTable(build({ httpRoutes: routes }).snapshot)
  const lines = explainGateway(table, { scheme: 'http', host: 'example.com', method: 'GET', path: '/api/x', search: '?tenant=t099', headers: ['x-group', 'g9'] })
  t.equal(lines.filter((l) => l.endsWith('matches: chosen')).length, 1)
  t.match(lines.find((l) => l.endsWith('matches: chosen')), /app\/r099 rule 0/)
})
