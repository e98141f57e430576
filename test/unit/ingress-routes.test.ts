// The ingress route table: each case compiles a set of Ingresses and sends
// requests through matchRoute; `want` is where each request goes, written as
// 'ns/ingress -> service:port', 'default ns/ingress -> service:port',
// '405 GET,HEAD' or '404'.

import t from 'tap'
import { compileRouteTable, explainRoute, matchRoute } from '../../dataplane/ingress/routes.ts'
import type { Match } from '../../dataplane/ingress/routes.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

interface IngOpts { ns?: string; cls?: string | null; legacy?: string; methods?: string; age?: number; defaultBackend?: string; rules?: any[] }

/** An Ingress; `age` is minutes after a fixed epoch (smaller is older). */
function ing(name: string, o: IngOpts = {}): KubeObject {
  const annotations: Record<string, string> = {}
  if (o.methods !== undefined) annotations['skiff.dev/methods'] = o.methods
  if (o.legacy !== undefined) annotations['kubernetes.io/ingress.class'] = o.legacy
  const spec: any = { rules: o.rules ?? [] }
  if (o.cls !== null) spec.ingressClassName = o.cls ?? 'external'
  if (o.defaultBackend) spec.defaultBackend = backend(o.defaultBackend)
  return {
    metadata: { namespace: o.ns ?? 'default', name, annotations, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, o.age ?? 0)).toISOString() },
    spec,
  }
}

/** 'svc:80' or 'svc:http'. */
function backend(s: string): any {
  const [name, port] = s.split(':')
  return { service: { name, port: /^\d+$/.test(port!) ? { number: Number(port) } : { name: port } } }
}

/** A rule: host ('' for none) and paths as 'Type /path svc:port'. */
function rule(host: string, ...paths: string[]): any {
  const r: any = { http: { paths: paths.map((p) => { const [pathType, path, b] = p.split(' '); return { pathType, path, backend: backend(b!) } }) } }
  if (host) r.host = host
  return r
}

function show(m: Match): string {
  if (m.kind === 'route') return `${m.ingress} -> ${m.backend.service}:${m.backend.port}`
  if (m.kind === 'default-backend') return `default ${m.ingress} -> ${m.backend.service}:${m.backend.port}`
  if (m.kind === 'method-not-allowed') return `405 ${m.allow.join(',')}`
  return '404'
}

/** Request 'METHOD host/path' (host may be ''), want as in show(). */
interface Case { name: string; ingresses: KubeObject[]; requests: [string, string][]; isDefaultClass?: boolean }

const prefixTable = (paths: string[]) => [ing('a', { rules: [rule('', ...paths)] })]

const cases: Case[] = [
  // networking-anchors.md, Ingress matching table, row by row.
  { name: 'Prefix / matches any path', ingresses: prefixTable(['Prefix / root:80']), requests: [['GET x.example/', 'default/a -> root:80'], ['GET x.example/any/thing', 'default/a -> root:80']] },
  { name: 'Exact /foo does not match /foo/', ingresses: prefixTable(['Exact /foo foo:80']), requests: [['GET h/foo', 'default/a -> foo:80'], ['GET h/foo/', '404']] },
  { name: 'Exact /foo/ does not match /foo', ingresses: prefixTable(['Exact /foo/ foo:80']), requests: [['GET h/foo/', 'default/a -> foo:80'], ['GET h/foo', '404']] },
  { name: 'Prefix /foo matches /foo and /foo/', ingresses: prefixTable(['Prefix /foo foo:80']), requests: [['GET h/foo', 'default/a -> foo:80'], ['GET h/foo/', 'default/a -> foo:80']] },
  { name: 'Prefix /foo/ matches /foo and /foo/', ingresses: prefixTable(['Prefix /foo/ foo:80']), requests: [['GET h/foo', 'default/a -> foo:80'], ['GET h/foo/', 'default/a -> foo:80']] },
  { name: 'Prefix /aaa/bb does not match /aaa/bbb', ingresses: prefixTable(['Prefix /aaa/bb b:80']), requests: [['GET h/aaa/bbb', '404']] },
  { name: 'Prefix /aaa/bbb/ matches /aaa/bbb', ingresses: prefixTable(['Prefix /aaa/bbb/ b:80']), requests: [['GET h/aaa/bbb', 'default/a -> b:80']] },
  { name: 'Prefix /aaa/bbb matches /aaa/bbb/ccc', ingresses: prefixTable(['Prefix /aaa/bbb b:80']), requests: [['GET h/aaa/bbb/ccc', 'default/a -> b:80']] },
  { name: 'Prefix /aaa/bbb does not match /aaa/bbbxyz', ingresses: prefixTable(['Prefix /aaa/bbb b:80']), requests: [['GET h/aaa/bbbxyz', '404']] },
  { name: 'longest prefix wins', ingresses: prefixTable(['Prefix / root:80', 'Prefix /aaa aaa:80', 'Prefix /aaa/bbb bbb:80']), requests: [['GET h/aaa/bbb', 'default/a -> bbb:80'], ['GET h/aaa/x', 'default/a -> aaa:80'], ['GET h/zzz', 'default/a -> root:80']] },
  { name: 'no match goes to the default backend', ingresses: [ing('a', { defaultBackend: 'fallback:8080', rules: [rule('', 'Prefix /aaa aaa:80')] })], requests: [['GET h/ccc', 'default default/a -> fallback:8080'], ['GET h/aaa', 'default/a -> aaa:80']] },
  { name: 'Exact wins over Prefix of the same path', ingresses: prefixTable(['Prefix /foo prefix:80', 'Exact /foo exact:80']), requests: [['GET h/foo', 'default/a -> exact:80'], ['GET h/foo/x', 'default/a -> prefix:80']] },
  { name: 'Exact wins over a Prefix written with a trailing slash', ingresses: prefixTable(['Prefix /foo/ prefix:80', 'Exact /foo exact:80']), requests: [['GET h/foo', 'default/a -> exact:80']] },
  { name: 'ImplementationSpecific behaves as Prefix', ingresses: prefixTable(['ImplementationSpecific /app app:80']), requests: [['GET h/app/x', 'default/a -> app:80'], ['GET h/apple', '404']] },
  { name: 'matching is case-sensitive', ingresses: prefixTable(['Prefix /Admin admin:80']), requests: [['GET h/admin', '404'], ['GET h/Admin', 'default/a -> admin:80']] },
  { name: 'port by name', ingresses: prefixTable(['Prefix / web:http']), requests: [['GET h/', 'default/a -> web:http']] },
  // Hosts.
  {
    name: 'exact host: case-insensitive, port and trailing dot ignored',
    ingresses: [ing('a', { rules: [rule('foo.example.com', 'Prefix / foo:80')] })],
    requests: [['GET FOO.Example.com:8080/', 'default/a -> foo:80'], ['GET foo.example.com./', 'default/a -> foo:80'], ['GET bar.example.com/', '404']],
  },
  {
    name: 'wildcard matches exactly one label',
    ingresses: [ing('a', { rules: [rule('*.example.com', 'Prefix / wild:80')] })],
    requests: [['GET a.example.com/', 'default/a -> wild:80'], ['GET a.b.example.com/', '404'], ['GET example.com/', '404'], ['GET .example.com/', '404']],
  },
  {
    name: 'exact host first, then wildcard, then rules without host',
    ingresses: [ing('a', { rules: [rule('*.example.com', 'Prefix / wild:80'), rule('', 'Prefix / any:80'), rule('www.example.com', 'Prefix / www:80')] })],
    requests: [['GET www.example.com/', 'default/a -> www:80'], ['GET api.example.com/', 'default/a -> wild:80'], ['GET other.org/', 'default/a -> any:80'], ['GET a.b.example.com/', 'default/a -> any:80']],
  },
  {
    name: 'an exact host never falls back to the wildcard paths',
    ingresses: [ing('a', { defaultBackend: 'fb:80', rules: [rule('www.example.com', 'Prefix /app app:80'), rule('*.example.com', 'Prefix /other wild:80')] })],
    requests: [['GET www.example.com/other', 'default default/a -> fb:80'], ['GET x.example.com/other', 'default/a -> wild:80']],
  },
  {
    name: 'rules of several Ingresses for one host merge',
    ingresses: [ing('a', { rules: [rule('h.example', 'Prefix /a a:80')] }), ing('b', { ns: 'other', rules: [rule('h.example', 'Prefix /b b:80')] })],
    requests: [['GET h.example/a', 'default/a -> a:80'], ['GET h.example/b', 'other/b -> b:80']],
  },
  // Methods.
  {
    name: 'method routing across two Ingresses',
    ingresses: [ing('reads', { methods: 'GET,HEAD', rules: [rule('api.example', 'Prefix /items r:80')] }), ing('writes', { methods: 'POST', rules: [rule('api.example', 'Prefix /items w:80')] })],
    requests: [['GET api.example/items', 'default/reads -> r:80'], ['HEAD api.example/items/1', 'default/reads -> r:80'], ['POST api.example/items', 'default/writes -> w:80'], ['PUT api.example/items', '405 GET,HEAD,POST']],
  },
  {
    name: 'HEAD is not implied by GET',
    ingresses: [ing('a', { methods: 'GET', rules: [rule('', 'Prefix / a:80')] })],
    requests: [['HEAD h/', '405 GET'], ['GET h/', 'default/a -> a:80']],
  },
  {
    name: '405 never falls through to a shorter, more permissive path or the default backend',
    ingresses: [ing('open', { defaultBackend: 'fb:80', rules: [rule('h', 'Prefix / open:80')] }), ing('admin', { methods: 'GET', rules: [rule('h', 'Prefix /admin admin:80')] })],
    requests: [['DELETE h/admin/users', '405 GET'], ['DELETE h/public', 'default/open -> open:80']],
  },
  {
    name: 'without the annotation an entry accepts every method',
    ingresses: prefixTable(['Prefix / a:80']),
    requests: [['PATCH h/', 'default/a -> a:80'], ['OPTIONS h/x', 'default/a -> a:80']],
  },
  // Classes.
  {
    name: 'only the class Ingresses are served; legacy annotation counts',
    ingresses: [
      ing('mine', { rules: [rule('', 'Prefix /mine m:80')] }),
      ing('internal', { cls: 'internal', rules: [rule('', 'Prefix /internal i:80')] }),
      ing('legacy', { cls: null, legacy: 'external', rules: [rule('', 'Prefix /legacy l:80')] }),
      ing('legacy-other', { cls: null, legacy: 'internal', rules: [rule('', 'Prefix /legacy-other lo:80')] }),
      ing('classless', { cls: null, rules: [rule('', 'Prefix /classless c:80')] }),
    ],
    requests: [['GET h/mine', 'default/mine -> m:80'], ['GET h/internal', '404'], ['GET h/legacy', 'default/legacy -> l:80'], ['GET h/legacy-other', '404'], ['GET h/classless', '404']],
  },
  {
    name: 'the default class also serves Ingresses without a class',
    isDefaultClass: true,
    ingresses: [ing('classless', { cls: null, rules: [rule('', 'Prefix /classless c:80')] }), ing('internal', { cls: 'internal', rules: [rule('', 'Prefix /internal i:80')] })],
    requests: [['GET h/classless', 'default/classless -> c:80'], ['GET h/internal', '404']],
  },
  // Conflicts and broken Ingresses (their reports are checked below).
  {
    name: 'same host and path: the oldest Ingress keeps the route',
    ingresses: [ing('new', { age: 5, rules: [rule('h', 'Prefix /x new:80')] }), ing('old', { age: 1, rules: [rule('h', 'Prefix /x old:80')] })],
    requests: [['GET h/x', 'default/old -> old:80']],
  },
  {
    name: 'a broken Ingress is skipped, the others keep working',
    ingresses: [ing('ok', { rules: [rule('', 'Prefix /ok ok:80')] }), ing('broken', { rules: [rule('', 'Prefix /ok ok:80'), { http: { paths: [{ pathType: 'Prefix', path: '/b', backend: { service: { port: { number: 80 } } } }] } }] })],
    requests: [['GET h/ok', 'default/ok -> ok:80'], ['GET h/b', '404']],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { table } = compileRouteTable(c.ingresses, { className: 'external', isDefaultClass: c.isDefaultClass ?? false })
    for (const [req, want] of c.requests) {
      const [method, url] = req.split(' ') as [string, string]
      const slash = url.indexOf('/')
      t.equal(show(matchRoute(table, { method, host: url.slice(0, slash), path: url.slice(slash) })), want, req)
    }
  })
}

t.test('a route carries rule, path, type and namespace', async (t) => {
  const { table } = compileRouteTable([ing('a', { ns: 'shop', rules: [rule('x'), rule('h', 'Exact /z z:80', 'Prefix /y/ y:9090')] })], { className: 'external', isDefaultClass: false })
  t.same(matchRoute(table, { host: 'h', method: 'GET', path: '/y/1' }), {
    kind: 'route', ingress: 'shop/a', namespace: 'shop', host: 'h', ruleIndex: 1, pathIndex: 1, path: '/y/', pathType: 'Prefix', methods: undefined, backend: { service: 'y', port: 9090 },
  })
})

t.test('Ingress paths are normalised like request paths', async (t) => {
  const { table } = compileRouteTable(prefixTable(['Exact /%61pp app:80']), { className: 'external', isDefaultClass: false })
  t.equal(show(matchRoute(table, { host: 'h', method: 'GET', path: '/app' })), 'default/a -> app:80')
})

const opts = { className: 'external', isDefaultClass: false }

t.test('conflict: reported with both Ingresses, oldest first, whatever the input order', async (t) => {
  const a = ing('a', { age: 1, rules: [rule('h', 'Prefix /x a:80')] })
  const b = ing('b', { age: 2, methods: 'GET,POST', rules: [rule('h', 'ImplementationSpecific /x/ b:80')] })
  for (const input of [[a, b], [b, a]]) {
    const { conflicts, broken } = compileRouteTable(input, opts)
    t.same(broken, [])
    t.match(conflicts, [{ ingresses: ['default/a', 'default/b'], host: 'h', path: '/x/', pathType: 'ImplementationSpecific', methods: ['GET', 'POST'], message: /default\/a is older/ }])
  }
})

t.test('conflict ties on age are broken by namespace/name', async (t) => {
  const { conflicts, table } = compileRouteTable([ing('b', { rules: [rule('h', 'Exact /x b:80')] }), ing('a', { rules: [rule('h', 'Exact /x a:80')] })], opts)
  t.same(conflicts.map((c) => c.ingresses), [['default/a', 'default/b']])
  t.equal(show(matchRoute(table, { host: 'h', method: 'GET', path: '/x' })), 'default/a -> a:80')
})

t.test('disjoint methods do not conflict; overlapping ones do', async (t) => {
  const r = [rule('h', 'Prefix /x s:80')]
  t.same(compileRouteTable([ing('a', { methods: 'GET', rules: r }), ing('b', { methods: 'POST', rules: r })], opts).conflicts, [])
  const over = compileRouteTable([ing('a', { methods: 'GET,PUT', rules: r }), ing('b', { methods: 'PUT,POST', rules: r })], opts).conflicts
  t.same(over.map((c) => c.methods), [['PUT']])
  const all = compileRouteTable([ing('a', { rules: r }), ing('b', { rules: r })], opts).conflicts
  t.same(all.map((c) => c.methods), [['*']])
})

t.test('Exact and Prefix of one path, or different hosts, do not conflict', async (t) => {
  const { conflicts } = compileRouteTable([ing('a', { rules: [rule('h', 'Prefix /x a:80')] }), ing('b', { rules: [rule('h', 'Exact /x b:80'), rule('g', 'Prefix /x b:80')] })], opts)
  t.same(conflicts, [])
})

t.test('several defaultBackends: the oldest wins, the others are conflicts', async (t) => {
  const { table, conflicts } = compileRouteTable([ing('late', { age: 9, defaultBackend: 'late:80' }), ing('early', { age: 1, defaultBackend: 'early:80' })], opts)
  t.equal(show(matchRoute(table, { host: 'h', method: 'GET', path: '/' })), 'default default/early -> early:80')
  t.same(conflicts.map((c) => c.ingresses), [['default/early', 'default/late']])
})

t.test('broken Ingresses are reported with the reason', async (t) => {
  const bad = (name: string, o: IngOpts) => ing(name, o)
  const { broken } = compileRouteTable([
    bad('no-service', { rules: [{ http: { paths: [{ pathType: 'Prefix', path: '/', backend: { service: { port: { number: 80 } } } }] } }] }),
    bad('no-port', { rules: [{ http: { paths: [{ pathType: 'Prefix', path: '/', backend: { service: { name: 's' } } }] } }] }),
    bad('resource', { rules: [{ http: { paths: [{ pathType: 'Prefix', path: '/', backend: { resource: { kind: 'Bucket', name: 'b' } } }] } }] }),
    bad('bad-type', { rules: [{ http: { paths: [{ pathType: 'Regex', path: '/', backend: backend('s:80') }] } }] }),
    bad('bad-path', { rules: [rule('', 'Prefix /a%2Fb s:80')] }),
    bad('bad-methods', { methods: 'GET,FETCH', rules: [rule('', 'Prefix / s:80')] }),
    bad('bad-wildcard', { rules: [rule('a.*.example', 'Prefix / s:80')] }),
    bad('bad-default', { defaultBackend: 's:0' }),
  ], opts)
  t.match(broken, [
    { ingress: 'default/bad-default', message: /defaultBackend/ },
    { ingress: 'default/bad-methods', message: /skiff.dev\/methods/ },
    { ingress: 'default/bad-path', message: /encoded slash/ },
    { ingress: 'default/bad-type', message: /pathType/ },
    { ingress: 'default/bad-wildcard', message: /wildcard/ },
    { ingress: 'default/no-port', message: /port/ },
    { ingress: 'default/no-service', message: /service name is required/ },
    { ingress: 'default/resource', message: /resource backends/ },
  ])
})

t.test('explainRoute says which host rule, which paths, and why', async (t) => {
  const { table } = compileRouteTable([
    ing('reads', { methods: 'GET', rules: [rule('api.example', 'Prefix /items r:80', 'Prefix / root:80')] }),
    ing('writes', { methods: 'POST', rules: [rule('api.example', 'Prefix /items w:80')] }),
  ], opts)
  t.same(explainRoute(table, { method: 'POST', host: 'API.example:443', path: '/x/../items/1' }), [
    'request: POST host "API.example:443" path "/x/../items/1"',
    'normalised path: /items/1',
    'host "api.example": exact host rule (no fallback to other host rules)',
    '  Prefix /items [GET] default/reads: matches, best path; does not accept POST',
    '  Prefix /items [POST] default/writes: matches, best path; accepts POST: chosen',
    '  Prefix / [GET] default/reads: matches, but a better path wins (Exact first, then longest)',
    'result: default/writes rule 0 path 0 (Prefix /items) -> default/service w port 80',
  ])
  t.same(explainRoute(table, { method: 'PUT', host: 'api.example', path: '/items' }).at(-1), 'result: 405 Method Not Allowed, Allow: GET, POST')
  t.same(explainRoute(table, { method: 'GET', host: 'other', path: '/' }).slice(1), ['host "other": no exact, wildcard or host-less rule', 'result: 404 Not Found (no rule and no defaultBackend)'])
  t.same(explainRoute(table, { method: 'GET', host: 'api.example', path: '/a%2Fb' }).at(-1), 'result: 400 Bad Request (encoded slash (%2F) in path)')
})
