// Snapshot compilation for the ingress workers: backends resolved through
// Services to endpoints (by port number or name, ready first, serving +
// terminating as the fallback, 503 reasons otherwise) and per-Ingress
// options read from skiff.dev annotations.

import t from 'tap'
import { compileState, resolveBackend } from '../../dataplane/ingress/state.ts'
import { ingressOptions, rewritePath, wantsSslRedirect, inRanges, compileRanges } from '../../dataplane/ingress/options.ts'
import type { EndpointInfo, IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'

const ep = (ip: string, o: Partial<EndpointInfo> = {}): EndpointInfo => ({ ip, ports: { http: 8080, metrics: 9090 }, ready: true, serving: true, terminating: false, ...o })

const snap = (endpoints: EndpointInfo[], extra: Partial<IngressSnapshot> = {}): Pick<IngressSnapshot, 'services' | 'endpoints' | 'unreachableNodes'> => ({
  services: {
    'default/web': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'metrics', port: 9000, protocol: 'TCP' }] },
    'default/ext': { type: 'ExternalName', ports: [], externalName: 'example.com' },
  },
  endpoints: { 'default/web': endpoints },
  ...extra,
})

t.test('backend resolution', async (t) => {
  const cases: { name: string; endpoints: EndpointInfo[]; backend: { service: string; port: number | string }; want: string[] | string }[] = [
    { name: 'port number picks the ServicePort with that port', endpoints: [ep('10.0.0.1')], backend: { service: 'web', port: 80 }, want: ['10.0.0.1:8080'] },
    { name: 'port name', endpoints: [ep('10.0.0.1')], backend: { service: 'web', port: 'metrics' }, want: ['10.0.0.1:9090'] },
    { name: 'second port by number', endpoints: [ep('10.0.0.1')], backend: { service: 'web', port: 9000 }, want: ['10.0.0.1:9090'] },
    { name: 'ready only when some are ready', endpoints: [ep('10.0.0.1'), ep('10.0.0.2', { ready: false, serving: true, terminating: true })], backend: { service: 'web', port: 80 }, want: ['10.0.0.1:8080'] },
    { name: 'serving+terminating when none ready', endpoints: [ep('10.0.0.1', { ready: false, serving: false, terminating: false }), ep('10.0.0.2', { ready: false, serving: true, terminating: true })], backend: { service: 'web', port: 80 }, want: ['10.0.0.2:8080'] },
    { name: 'not serving terminating is never used', endpoints: [ep('10.0.0.2', { ready: false, serving: false, terminating: true })], backend: { service: 'web', port: 80 }, want: 'no ready endpoints' },
    { name: 'no endpoints', endpoints: [], backend: { service: 'web', port: 80 }, want: 'no ready endpoints' },
    { name: 'missing Service', endpoints: [], backend: { service: 'nope', port: 80 }, want: 'not found' },
    { name: 'missing port', endpoints: [ep('10.0.0.1')], backend: { service: 'web', port: 81 }, want: 'has no port 81' },
    { name: 'ExternalName', endpoints: [], backend: { service: 'ext', port: 80 }, want: 'ExternalName' },
    { name: 'endpoint without the port name is skipped', endpoints: [ep('10.0.0.1', { ports: { other: 1 } }), ep('10.0.0.3')], backend: { service: 'web', port: 'http' }, want: ['10.0.0.3:8080'] },
    { name: 'IPv6 endpoint id is bracketed', endpoints: [ep('fd00::1')], backend: { service: 'web', port: 80 }, want: ['[fd00::1]:8080'] },
  ]
  for (const c of cases) {
    const r = resolveBackend(snap(c.endpoints), 'default', c.backend)
    if (typeof c.want === 'string') t.match(r.ok ? 'ok' : r.reason, c.want, c.name)
    else t.same(r.ok ? r.endpoints.map((e) => e.id) : r.reason, c.want, c.name)
  }
})

t.test('endpoints on a host that is not Ready are left out while others remain', async (t) => {
  const eps = [ep('10.0.0.1', { nodeName: 'n1' }), ep('10.0.0.2', { nodeName: 'n2' })]
  const ids = (u: string[]) => {
    const r = resolveBackend(snap(eps, { unreachableNodes: u }), 'default', { service: 'web', port: 80 })
    return r.ok ? r.endpoints.map((e) => e.id) : r.reason
  }
  t.same(ids([]), ['10.0.0.1:8080', '10.0.0.2:8080'])
  t.same(ids(['n2']), ['10.0.0.1:8080'], 'n2 is dead: only n1\'s pod')
  t.same(ids(['n1', 'n2']), ['10.0.0.1:8080', '10.0.0.2:8080'], 'all hosts dead: nothing better to offer, all stay')
})

const ingress = (annotations: Record<string, string>, tls?: any[]) => ({
  metadata: { namespace: 'default', name: 'i', annotations },
  spec: { ingressClassName: 'external', tls, rules: [{ host: 'a.example.com', http: { paths: [{ path: '/app', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }] },
})

t.test('options from annotations', async (t) => {
  const d = ingressOptions(ingress({}))
  t.same([d.loadBalance, d.bodySizeLimit, d.sslRedirect, d.connectTimeoutMs, d.readTimeoutMs, d.hstsMaxAge], ['round-robin', 1024 * 1024, undefined, 5000, 60000, 0], 'defaults')
  const o = ingressOptions(ingress({
    'skiff.dev/load-balance': 'cookie', 'skiff.dev/proxy-body-size': '10k', 'skiff.dev/ssl-redirect': 'false', 'skiff.dev/rewrite-target': '/',
    'skiff.dev/allow-source-ranges': '10.0.0.0/8', 'skiff.dev/proxy-connect-timeout': '2s', 'skiff.dev/proxy-read-timeout': '1m', 'skiff.dev/hsts-max-age': '300',
  }))
  t.same([o.loadBalance, o.bodySizeLimit, o.sslRedirect, o.rewriteTarget, o.allowSourceRanges, o.connectTimeoutMs, o.readTimeoutMs, o.hstsMaxAge], ['cookie', 10240, false, '/', ['10.0.0.0/8'], 2000, 60000, 300])
  t.equal(ingressOptions(ingress({ 'skiff.dev/load-balance': 'random' })).loadBalance, 'round-robin', 'an invalid value reads as absent')
})

t.test('ssl-redirect follows spec.tls hosts', async (t) => {
  const tls = [{ hosts: ['a.example.com', '*.w.example.com'], secretName: 's' }]
  t.ok(wantsSslRedirect(ingressOptions(ingress({}, tls)), 'a.example.com'))
  t.ok(wantsSslRedirect(ingressOptions(ingress({}, tls)), 'x.w.example.com'))
  t.notOk(wantsSslRedirect(ingressOptions(ingress({}, tls)), 'y.x.w.example.com'), 'wildcard covers one label')
  t.notOk(wantsSslRedirect(ingressOptions(ingress({}, tls)), 'b.example.com'))
  t.notOk(wantsSslRedirect(ingressOptions(ingress({ 'skiff.dev/ssl-redirect': 'false' }, tls)), 'a.example.com'))
  t.notOk(wantsSslRedirect(ingressOptions(ingress({})), 'a.example.com'), 'no TLS, no redirect')
})

t.test('rewrite-target', async (t) => {
  const cases: [string, string, boolean, string, string][] = [
    ['/', '/app', false, '/app/x', '/x'],
    ['/', '/app', false, '/app', '/'],
    ['/', '/app/', false, '/app/x/y', '/x/y'],
    ['/v2', '/app', false, '/app/x', '/v2/x'],
    ['/v2/', '/app', false, '/app/x', '/v2/x'],
    ['/new', '/old', true, '/old', '/new'],
    ['/', '/', false, '/x', '/x'],
  ]
  for (const [target, matched, exact, path, want] of cases) t.equal(rewritePath({ target, matched, exact }, path), want, `${matched} -> ${target}: ${path}`)
})

t.test('compileState: backends, ranges, class default ranges', async (t) => {
  const s: IngressSnapshot = {
    generation: 3, className: 'external', isDefaultClass: false,
    ingresses: [ingress({}), { ...ingress({ 'skiff.dev/allow-source-ranges': '192.168.0.0/16' }), metadata: { namespace: 'default', name: 'j', annotations: { 'skiff.dev/allow-source-ranges': '192.168.0.0/16' } } }],
    ...(snap([ep('10.0.0.1')]) as any), certificates: {}, challenges: {}, settings: { trustedProxies: ['127.0.0.0/8'], defaultAllowSourceRanges: ['10.0.0.0/8'] },
  }
  const st = compileState(s)
  t.equal(st.generation, 3)
  t.same([...st.backends.keys()], ['default/web:http'])
  t.ok(inRanges(st.ingresses.get('default/i')!.allow!, '10.1.2.3'), 'class default applies')
  t.notOk(inRanges(st.ingresses.get('default/i')!.allow!, '192.168.1.1'))
  t.ok(inRanges(st.ingresses.get('default/j')!.allow!, '::ffff:192.168.1.1'), 'own ranges win; v4-mapped peers match')
  t.ok(st.trusted && inRanges(st.trusted, '127.0.0.5'))
  t.equal(compileState({ ...s, settings: { trustedProxies: [] } }).trusted, undefined, 'no trusted proxies: no lookup per request')
  t.notOk(inRanges(compileRanges([]), '127.0.0.1'))
})
