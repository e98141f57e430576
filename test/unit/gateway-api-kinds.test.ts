// Gateway API kinds as built-ins: the kind table rows, the schema, the
// kubectl columns (the CRDs' additionalPrinterColumns), the CRD defaults
// and the CRD validation rules with their field paths.

import t from 'tap'
import { printTable } from '../../controlplane/api/printers.ts'
import { lookupKind, lookupResource, resolveResourceName } from '../../controlplane/api/resources.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { kindSchema } from '../../controlplane/api/schema/index.ts'
import { pruneUnknownFields } from '../../controlplane/api/schema/fields.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { validate } from '../../controlplane/api/validation.ts'

const gcInfo = lookupResource('gateway.networking.k8s.io', 'v1', 'gatewayclasses')!
const gwInfo = lookupResource('gateway.networking.k8s.io', 'v1', 'gateways')!
const rtInfo = lookupResource('gateway.networking.k8s.io', 'v1', 'httproutes')!
const rgInfo = lookupResource('gateway.networking.k8s.io', 'v1beta1', 'referencegrants')!

const causes = (info: typeof gcInfo, obj: unknown, old?: unknown) =>
  validate(info, applyDefaults(info, obj as KubeObject), old ? applyDefaults(info, old as KubeObject) : undefined).map((c) => `${c.field}: ${c.message}`)

const route = (spec: Record<string, unknown>) => ({ metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }], ...spec } })
const gw = (listeners: unknown[]) => ({ metadata: { name: 'gw', namespace: 'default' }, spec: { gatewayClassName: 'external', listeners } })

t.test('the kinds are served', async (t) => {
  t.ok(gcInfo && gwInfo && rtInfo && rgInfo)
  t.same([gcInfo.namespaced, gwInfo.namespaced, rtInfo.namespaced, rgInfo.namespaced], [false, true, true, true])
  t.equal(resolveResourceName('gtw')?.kind, 'Gateway')
  t.equal(resolveResourceName('gc')?.kind, 'GatewayClass')
  t.equal(lookupKind('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant')?.resource, 'referencegrants')
  for (const [v, k] of [['v1', 'GatewayClass'], ['v1', 'Gateway'], ['v1', 'HTTPRoute'], ['v1beta1', 'ReferenceGrant']])
    t.ok(kindSchema(`gateway.networking.k8s.io/${v}`, k), `${k} has a schema`)
  const rule = kindSchema('gateway.networking.k8s.io/v1', 'HTTPRoute')!
  t.equal(rule.name, 'io.k8s.networking.gateway.v1.HTTPRoute')
  // HTTPBackendRef inlines BackendRef, which inlines BackendObjectReference: the fields sit flat in JSON.
  const obj: any = { metadata: { name: 'x' }, spec: { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [{ backendRefs: [{ name: 's', port: 80, weight: 2, namespace: 'n', kind: 'Service', group: '', filters: [] }], bogus: 1 }] }, status: { parents: [{ parentRef: { name: 'gw' }, controllerName: 'x', conditions: [] }] } }
  t.same(pruneUnknownFields(rule.message, obj), ['spec.rules[0].bogus'])
})

t.test('defaults as the CRDs declare them', async (t) => {
  const r = applyDefaults(rtInfo, route({ rules: [{ matches: [{ headers: [{ name: 'a', value: 'b' }] }], backendRefs: [{ name: 's', port: 80 }] }, {}] }) as KubeObject)
  t.same(r.spec.parentRefs, [{ name: 'gw', group: 'gateway.networking.k8s.io', kind: 'Gateway' }])
  t.same(r.spec.rules[0].matches[0], { headers: [{ name: 'a', value: 'b', type: 'Exact' }], path: { type: 'PathPrefix', value: '/' } })
  t.same(r.spec.rules[0].backendRefs[0], { name: 's', port: 80, group: '', kind: 'Service', weight: 1 })
  t.same(r.spec.rules[1].matches, [{ path: { type: 'PathPrefix', value: '/' } }])
  const empty = applyDefaults(rtInfo, { metadata: { name: 'x', namespace: 'd' }, spec: {} } as KubeObject)
  t.same(empty.spec.rules, [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }])
  const g = applyDefaults(gwInfo, gw([{ name: 'h', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'c' }] } }]) as KubeObject)
  t.same(g.spec.listeners[0].allowedRoutes, { namespaces: { from: 'Same' } })
  t.same(g.spec.listeners[0].tls, { mode: 'Terminate', certificateRefs: [{ name: 'c', group: '', kind: 'Secret' }] })
  t.match(g.status.conditions, [{ type: 'Accepted', status: 'Unknown', reason: 'Pending' }, { type: 'Programmed', status: 'Unknown', reason: 'Pending' }])
})

t.test('kubectl columns', async (t) => {
  const now = new Date('2026-01-01T00:10:00Z')
  const created = '2026-01-01T00:00:00Z'
  const tb = (info: typeof gcInfo, o: unknown) => printTable(info, [o as KubeObject], { includeObject: 'None', now, resourceVersion: '1' })
  const gc = tb(gcInfo, { metadata: { name: 'external', creationTimestamp: created }, spec: { controllerName: 'skiff.dev/ingress' }, status: { conditions: [{ type: 'Accepted', status: 'True' }] } })
  t.same(gc.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name), ['Name', 'Controller', 'Accepted', 'Age'])
  t.same(gc.rows[0]!.cells.slice(0, 4), ['external', 'skiff.dev/ingress', 'True', '10m'])
  const g = tb(gwInfo, { metadata: { name: 'gw', creationTimestamp: created }, spec: { gatewayClassName: 'external' }, status: { addresses: [{ type: 'IPAddress', value: '10.0.0.1' }, { value: '10.0.0.2' }], conditions: [{ type: 'Programmed', status: 'False' }] } })
  t.same(g.columnDefinitions.map((c) => c.name), ['Name', 'Class', 'Address', 'Programmed', 'Age'])
  t.same(g.rows[0]!.cells, ['gw', 'external', '10.0.0.1', 'False', '10m'])
  const pending = tb(gwInfo, { metadata: { name: 'gw', creationTimestamp: created }, spec: { gatewayClassName: 'external' } })
  t.same(pending.rows[0]!.cells, ['gw', 'external', null, null, '10m'])
  const r = tb(rtInfo, { metadata: { name: 'r', creationTimestamp: created }, spec: { hostnames: ['a.example.com', 'b.example.com'] } })
  t.same(r.columnDefinitions.map((c) => c.name), ['Name', 'Hostnames', 'Age'])
  t.same(r.rows[0]!.cells, ['r', '["a.example.com","b.example.com"]', '10m'])
})

t.test('GatewayClass', async (t) => {
  t.same(causes(gcInfo, { metadata: { name: 'x' }, spec: { controllerName: 'skiff.dev/ingress' } }), [])
  t.same(causes(gcInfo, { metadata: { name: 'x' }, spec: {} }), ['spec.controllerName: Required value'])
  t.match(causes(gcInfo, { metadata: { name: 'x' }, spec: { controllerName: 'no-slash' } })[0], /^spec\.controllerName: Invalid value: "no-slash": spec\.controllerName in body should match/)
  t.same(causes(gcInfo, { metadata: { name: 'x' }, spec: { controllerName: 'a.dev/b' } }, { metadata: { name: 'x' }, spec: { controllerName: 'a.dev/c' } }), ['spec.controllerName: Invalid value: "a.dev/b": Value is immutable'])
})

t.test('Gateway', async (t) => {
  t.same(causes(gwInfo, gw([{ name: 'http', port: 80, protocol: 'HTTP' }])), [])
  t.same(causes(gwInfo, gw([])), ['spec.listeners: Required value'])
  t.same(causes(gwInfo, gw([{ name: 'a', port: 0, protocol: 'HTTP' }])), ['spec.listeners[0].port: Invalid value: 0: spec.listeners[0].port in body should be greater than or equal to 1'])
  t.same(causes(gwInfo, gw([{ name: 'a', port: 80, protocol: 'HTTP' }, { name: 'a', port: 81, protocol: 'HTTP' }])), ['spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway'])
  t.same(causes(gwInfo, gw([{ name: 'a', port: 80, protocol: 'HTTP' }, { name: 'b', port: 80, protocol: 'HTTP' }])), ['spec.listeners: Invalid value: "array": Combination of port, protocol and hostname must be unique for each listener'])
  t.same(causes(gwInfo, gw([{ name: 'a', port: 80, protocol: 'HTTP', tls: { certificateRefs: [{ name: 'c' }] } }])), ['spec.listeners: Invalid value: "array": tls must not be specified for protocols [\'HTTP\', \'TCP\', \'UDP\']'])
  t.match(causes(gwInfo, gw([{ name: 'a', port: 80, protocol: 'HTTP', hostname: 'Bad_Host' }])), [/^spec\.listeners\[0\]\.hostname: Invalid value: "Bad_Host"/])
  t.same(causes(gwInfo, gw([{ name: 'a', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Some' } } }])), ['spec.listeners[0].allowedRoutes.namespaces.from: Unsupported value: "Some": supported values: "All", "Selector", "Same"'])
})

t.test('HTTPRoute', async (t) => {
  t.same(causes(rtInfo, route({ hostnames: ['*.example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: '/a' }, method: 'GET', headers: [{ name: 'x-v', value: '1' }], queryParams: [{ name: 'q', value: '1' }] }], backendRefs: [{ name: 's', port: 80, weight: 10 }] }] })), [])
  const one = (m: unknown) => causes(rtInfo, route({ rules: [{ matches: [m] }] }))
  t.same(one({ path: { type: 'PathPrefix', value: 'a' } }), ['spec.rules[0].matches[0].path: Invalid value: "object": value must be an absolute path and start with \'/\' when type one of [\'Exact\', \'PathPrefix\']'])
  t.same(one({ path: { type: 'Exact', value: '/a//b' } }), ['spec.rules[0].matches[0].path: Invalid value: "object": must not contain \'//\' when type one of [\'Exact\', \'PathPrefix\']'])
  t.same(one({ path: { type: 'Exact', value: '/a/..' } }), ['spec.rules[0].matches[0].path: Invalid value: "object": must not end with \'/..\' when type one of [\'Exact\', \'PathPrefix\']'])
  t.same(one({ path: { type: 'Glob', value: '/a' } }), ['spec.rules[0].matches[0].path.type: Unsupported value: "Glob": supported values: "Exact", "PathPrefix", "RegularExpression"'])
  t.same(one({ path: { type: 'RegularExpression', value: '/a(' } }), ['spec.rules[0].matches[0].path.value: Invalid value: "/a(": must be a valid regular expression'])
  t.match(one({ method: 'FETCH' }), [/^spec\.rules\[0\]\.matches\[0\]\.method: Unsupported value: "FETCH": supported values: "GET", "HEAD"/])
  t.same(one({ headers: [{ name: 'bad name', value: 'x' }] }).length, 1)
  t.same(one({ headers: [{ name: 'x', value: '' }] }), ['spec.rules[0].matches[0].headers[0].value: Required value'])
  t.same(causes(rtInfo, route({ rules: [{ backendRefs: [{ name: 's', port: 80, weight: 1000001 }] }] })), ['spec.rules[0].backendRefs[0].weight: Invalid value: 1000001: spec.rules[0].backendRefs[0].weight in body should be less than or equal to 1000000'])
  t.same(causes(rtInfo, route({ rules: [{ backendRefs: [{ name: 's' }] }] })), ['spec.rules[0].backendRefs[0]: Invalid value: "object": Must have port for Service reference'])
  t.same(causes(rtInfo, route({ rules: Array.from({ length: 17 }, () => ({})) })), ['spec.rules: Too many: 17: must have at most 16 items'])
  t.same(causes(rtInfo, route({ rules: [{ matches: Array.from({ length: 65 }, () => ({})) }] })), ['spec.rules[0].matches: Too many: 65: must have at most 64 items'])
  const filt = (f: unknown[], matches?: unknown[]) => causes(rtInfo, route({ rules: [{ ...(matches ? { matches } : {}), filters: f }] }))
  t.same(filt([{ type: 'RequestHeaderModifier' }]), ['spec.rules[0].filters[0]: Invalid value: "object": filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type'])
  t.same(filt([{ type: 'RequestRedirect', requestRedirect: {}, urlRewrite: {} }]), ['spec.rules[0].filters[0]: Invalid value: "object": filter.urlRewrite must be nil if the filter.type is not URLRewrite'])
  t.same(filt([{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }]), ['spec.rules[0].filters: Invalid value: "array": May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both'])
  t.same(filt([{ type: 'RequestHeaderModifier', requestHeaderModifier: {} }, { type: 'RequestHeaderModifier', requestHeaderModifier: {} }]), ['spec.rules[0].filters: Invalid value: "array": RequestHeaderModifier filter cannot be repeated'])
  t.same(filt([{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } } }], [{ path: { type: 'Exact', value: '/a' } }]), ['spec.rules[0].filters: Invalid value: "array": When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified'])
  t.same(filt([{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath' } } }]), ['spec.rules[0].filters[0].urlRewrite.path: Invalid value: "object": replaceFullPath must be specified when type is set to \'ReplaceFullPath\''])
  t.same(filt([{ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }]), ['spec.rules[0].filters[0].requestRedirect.statusCode: Unsupported value: 304: supported values: "301", "302", "303", "307", "308"'])
  t.same(causes(rtInfo, { metadata: { name: 'r', namespace: 'd' }, spec: { parentRefs: [{ name: 'gw' }, { name: 'gw' }] } }), ['spec.parentRefs: Invalid value: "array": sectionName or port must be specified when parentRefs includes 2 or more references to the same parent'])
})

t.test('ReferenceGrant', async (t) => {
  const rg = (spec: unknown) => causes(rgInfo, { metadata: { name: 'g', namespace: 'b' }, spec })
  t.same(rg({ from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'a' }], to: [{ group: '', kind: 'Service' }] }), [])
  t.same(rg({ from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }], to: [] }), ['spec.from[0].namespace: Required value', 'spec.to: Required value'])
})
