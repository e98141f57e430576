// buildSnapshot: API objects → the snapshot one class's workers get. Each
// case names what it shows; objects are written small with the helpers below.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { selfSignedCert } from '../../certs/ca.ts'
import { buildSnapshot, endpointsOf, namedSecrets, type SnapshotInputs } from '../../dataplane/ingress/snapshot-build.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const pem = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`

function ing(name: string, o: { ns?: string; cls?: string; legacy?: string; svc?: string; tls?: string; age?: number } = {}): KubeObject {
  const annotations: Record<string, string> = {}
  if (o.legacy) annotations['kubernetes.io/ingress.class'] = o.legacy
  const spec: any = { rules: [{ host: `${name}.example`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: o.svc ?? 'web', port: { name: 'http' } } } }] } }] }
  if (o.cls) spec.ingressClassName = o.cls
  if (o.tls) spec.tls = [{ hosts: [`${name}.example`], secretName: o.tls }]
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: { name, namespace: o.ns ?? 'default', uid: `uid-${name}`, resourceVersion: '7', generation: 1, annotations, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, o.age ?? 0)).toISOString(), managedFields: [{}] },
    spec,
    status: { loadBalancer: {} },
  }
}

const cls = (name: string, annotations: Record<string, string> = {}): KubeObject => ({ metadata: { name, annotations }, spec: { controller: 'skiff.dev/ingress' } })
const svc = (name: string, ns = 'default'): KubeObject => ({ metadata: { name, namespace: ns }, spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] } })
function slice(service: string, endpoints: any[], o: { ns?: string; name?: string; ports?: any[] } = {}): KubeObject {
  return { metadata: { name: o.name ?? `${service}-abc`, namespace: o.ns ?? 'default', labels: { 'kubernetes.io/service-name': service } }, addressType: 'IPv4', ports: o.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints }
}
const secret = (name: string, type: string, data: Record<string, string>, ns = 'default'): KubeObject => ({ metadata: { name, namespace: ns }, type, data })

function input(o: Partial<SnapshotInputs>): SnapshotInputs {
  return { generation: 1, className: 'external', ingressClasses: [cls('external'), cls('internal')], ingresses: [], services: [], endpointSlices: [], secrets: [], ...o }
}
const names = (s: ReturnType<typeof buildSnapshot>) => s.ingresses.map((i) => i.metadata.name)

t.test('class selection', async (t) => {
  const all = [ing('a', { cls: 'external', age: 2 }), ing('b', { cls: 'internal' }), ing('c', { legacy: 'external', age: 1 }), ing('d'), ing('e', { legacy: 'internal' })]
  const cases = [
    { name: 'ingressClassName and the legacy annotation, oldest first; no class is not ours', classes: [cls('external'), cls('internal')], cls: 'external', want: ['c', 'a'], isDefault: false },
    { name: 'an Ingress without class belongs to the default class', classes: [cls('external', { 'ingressclass.kubernetes.io/is-default-class': 'true' }), cls('internal')], cls: 'external', want: ['d', 'c', 'a'], isDefault: true },
    { name: 'the default annotation on another class does not make ours default', classes: [cls('external'), cls('internal', { 'ingressclass.kubernetes.io/is-default-class': 'true' })], cls: 'external', want: ['c', 'a'], isDefault: false },
    { name: 'internal class', classes: [cls('external'), cls('internal')], cls: 'internal', want: ['b', 'e'], isDefault: false },
  ]
  for (const c of cases) {
    const s = buildSnapshot(input({ className: c.cls, ingressClasses: c.classes, ingresses: all }))
    t.same(names(s), c.want, c.name)
    t.equal(s.isDefaultClass, c.isDefault, `${c.name}: isDefaultClass`)
  }
})

t.test('Ingresses are stripped to metadata and spec', async (t) => {
  const s = buildSnapshot(input({ ingresses: [ing('a', { cls: 'external' })] }))
  const got = s.ingresses[0]!
  t.same(Object.keys(got.metadata).sort(), ['annotations', 'creationTimestamp', 'generation', 'name', 'namespace', 'uid'])
  t.notOk('status' in got, 'no status')
  t.equal(got.spec.rules[0].host, 'a.example')
  t.doesNotThrow(() => structuredClone(s), 'structured-cloneable')
})

t.test('only the Services and endpoints the class names', async (t) => {
  const s = buildSnapshot(input({
    ingresses: [ing('a', { cls: 'external', svc: 'web' }), ing('b', { cls: 'internal', svc: 'secret-app' }), ing('c', { cls: 'external', ns: 'other', svc: 'web' })],
    services: [svc('web'), svc('secret-app'), svc('web', 'other'), svc('unrelated')],
    endpointSlices: [
      slice('web', [{ addresses: ['10.0.0.1'], conditions: { ready: true } }]),
      slice('secret-app', [{ addresses: ['10.0.0.9'] }]),
      slice('unrelated', [{ addresses: ['10.0.0.8'] }]),
      slice('web', [{ addresses: ['10.0.1.1'] }], { ns: 'other' }),
    ],
  }))
  t.same(Object.keys(s.services).sort(), ['default/web', 'other/web'])
  t.same(s.services['default/web'], { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] })
  t.same(Object.keys(s.endpoints).sort(), ['default/web', 'other/web'])
  t.same(s.endpoints['other/web']!.map((e) => e.ip), ['10.0.1.1'])
})

t.test('a dead host: nodes that are not Ready and host some endpoint are named, so workers cut their connections', async (t) => {
  const node = (name: string, ready: string): KubeObject => ({ metadata: { name }, status: { conditions: [{ type: 'Ready', status: ready }] } })
  const base = {
    ingresses: [ing('a', { cls: 'external', svc: 'web' })],
    services: [svc('web')],
    endpointSlices: [slice('web', [{ addresses: ['10.0.0.1'], nodeName: 'n1' }, { addresses: ['10.0.0.2'], nodeName: 'n2', conditions: { ready: false } }])],
  }
  t.same(buildSnapshot(input({ ...base, nodes: [node('n1', 'True'), node('n2', 'Unknown'), node('n3', 'False')] })).unreachableNodes, ['n2'], 'n3 hosts none of these endpoints')
  t.equal(buildSnapshot(input({ ...base, nodes: [node('n1', 'True'), node('n2', 'True')] })).unreachableNodes, undefined, 'all Ready: nothing (the snapshot stays the same)')
})

t.test('endpoint conditions default as in Kubernetes; ports by name; targetRef pod', async (t) => {
  const cases = [
    { name: 'no conditions: ready, serving, not terminating', cond: undefined, want: { ready: true, serving: true, terminating: false } },
    { name: 'ready false: serving follows ready', cond: { ready: false }, want: { ready: false, serving: false, terminating: false } },
    { name: 'terminating but still serving', cond: { ready: false, serving: true, terminating: true }, want: { ready: false, serving: true, terminating: true } },
    { name: 'only terminating given: ready unknown counts as ready', cond: { terminating: true }, want: { ready: true, serving: true, terminating: true } },
  ]
  for (const c of cases) {
    const [ep] = endpointsOf([slice('web', [{ addresses: ['10.0.0.1'], conditions: c.cond, nodeName: 'n1', targetRef: { kind: 'Pod', name: 'web-1' } }], { ports: [{ port: 8080 }, { name: 'metrics', port: 9090 }] })])
    t.match(ep, { ip: '10.0.0.1', ports: { '': 8080, metrics: 9090 }, nodeName: 'n1', pod: 'web-1', ...c.want }, c.name)
  }
  const merged = endpointsOf([slice('web', [{ addresses: ['10.0.0.1'] }], { name: 'a' }), slice('web', [{ addresses: ['10.0.0.1'] }], { name: 'b', ports: [{ name: 'admin', port: 81 }] })])
  t.same(merged.map((e) => [e.ip, e.ports]), [['10.0.0.1', { http: 8080, admin: 81 }]], 'an address in two slices appears once')
  t.same(endpointsOf([{ ...slice('web', [{ addresses: ['db.example'] }]), addressType: 'FQDN' }]), [], 'FQDN slices are ignored')
})

t.test('certificates from the Secrets named in spec.tls', async (t) => {
  const ingresses = [ing('a', { cls: 'external', tls: 'good' }), ing('b', { cls: 'external', tls: 'opaque' }), ing('c', { cls: 'external', tls: 'missing' }), ing('d', { cls: 'external', tls: 'nokey' }), ing('e', { cls: 'internal', tls: 'theirs' }), ing('f', { cls: 'external', tls: 'mismatch' }), ing('g', { cls: 'external', tls: 'garbage' })]
  t.same([...namedSecrets(ingresses.slice(0, 4))].sort(), ['default/good', 'default/missing', 'default/nokey', 'default/opaque'])
  const pair = selfSignedCert({ commonName: 'a.example', dnsNames: ['a.example'] })
  const other = selfSignedCert({ commonName: 'b.example', dnsNames: ['b.example'] })
  const s = buildSnapshot(input({
    ingresses,
    secrets: [
      secret('good', 'kubernetes.io/tls', { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem) }),
      secret('mismatch', 'kubernetes.io/tls', { 'tls.crt': b64(pair.certPem), 'tls.key': b64(other.keyPem) }),
      secret('garbage', 'kubernetes.io/tls', { 'tls.crt': b64(pem('CERTIFICATE')), 'tls.key': b64(pem('PRIVATE KEY')) }),
      secret('opaque', 'Opaque', { 'tls.crt': b64(pem('CERTIFICATE')), 'tls.key': b64(pem('PRIVATE KEY')) }),
      secret('nokey', 'kubernetes.io/tls', { 'tls.crt': b64(pem('CERTIFICATE')) }),
      secret('theirs', 'kubernetes.io/tls', { 'tls.crt': b64(pem('CERTIFICATE')), 'tls.key': b64(pem('PRIVATE KEY')) }),
    ],
    defaultCertificate: secret('skiff-ingress-default-tls', 'kubernetes.io/tls', { 'tls.crt': b64(other.certPem), 'tls.key': b64(other.keyPem) }, 'kube-system'),
  }))
  t.same(Object.keys(s.certificates), ['default/garbage', 'default/good', 'default/mismatch', 'default/missing', 'default/nokey', 'default/opaque'])
  t.same(s.certificates['default/good'], { cert: pair.certPem, key: pair.keyPem })
  t.match(s.certificates['default/mismatch'], { error: 'secret default/mismatch: tls.key does not match the certificate in tls.crt' })
  t.match(s.certificates['default/garbage'], { error: /^secret default\/garbage: tls.crt or tls.key does not parse/ })
  t.match(s.certificates['default/opaque'], { error: /type "Opaque", not kubernetes.io\/tls/ })
  t.match(s.certificates['default/missing'], { error: /not found/ })
  t.match(s.certificates['default/nokey'], { error: /lacks tls.key/ })
  t.same(s.defaultCertificate, { cert: other.certPem, key: other.keyPem })
})

t.test('settings from the IngressClass annotations; challenges passed through', async (t) => {
  const s = buildSnapshot(input({
    className: 'internal',
    ingressClasses: [cls('internal', { 'skiff.dev/allow-source-ranges': '10.0.0.0/8,192.168.0.0/16', 'skiff.dev/trusted-proxies': '10.1.0.0/16' })],
    challenges: { tok: 'tok.key' },
  }))
  t.same(s.settings, { trustedProxies: ['10.1.0.0/16'], defaultAllowSourceRanges: ['10.0.0.0/8', '192.168.0.0/16'] })
  t.same(s.challenges, { tok: 'tok.key' })
  const plain = buildSnapshot(input({ ingressClasses: [cls('external', { 'skiff.dev/trusted-proxies': 'not-a-cidr' })] }))
  t.same(plain.settings, { trustedProxies: [] }, 'an invalid value is ignored (validation rejects it at apply time)')
  t.same(buildSnapshot(input({ ingressClasses: [] })).settings, { trustedProxies: [] }, 'no IngressClass: defaults')
})
