// Every string of an Ingress, IngressClass and Service, and every
// `skiff.dev/` annotation value, against its grammar at apply time: hosts
// per RFC 1123 with only a leading `*.` wildcard label, paths per RFC 3986,
// names, IPs, CIDRs, and no control character anywhere (strings.ts). Each
// case is the valid object with one string made wrong and the causes it
// must get (field path, reason, message where it matters), after
// applyDefaults as in the apiserver.

import t from 'tap'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { resources } from '../../controlplane/api/resources.ts'
import type { KubeObject, StatusCause } from '../../controlplane/api/types.ts'
import { readSkiffAnnotation, validate } from '../../controlplane/api/validation.ts'
import { controlCharacterErrors } from '../../controlplane/api/validation/strings.ts'

const info = (kind: string) => resources.find((r) => r.kind === kind)!
const run = (kind: string, obj: KubeObject): StatusCause[] => validate(info(kind), applyDefaults(info(kind), structuredClone(obj)))

const lastApplied = '{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}\n'
const valid: Record<string, KubeObject> = {
  Ingress: {
    metadata: { name: 'web', namespace: 'default', annotations: { 'skiff.dev/rewrite-target': '/v1/', 'kubectl.kubernetes.io/last-applied-configuration': lastApplied, 'example.com/note': 'two\tcolumns\r\nand lines' } },
    spec: {
      ingressClassName: 'external',
      rules: [{ host: '*.example.com', http: { paths: [
        { path: "/a:b@c!$&'()*+,;=/caf%C3%A9", pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
        { path: '/imp', pathType: 'ImplementationSpecific', backend: { service: { name: 'web', port: { name: 'http' } } } },
      ] } }],
      tls: [{ hosts: ['www.example.com', '*.example.com'], secretName: 'web-tls' }],
    },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }, { hostname: 'lb.example.com' }] } },
  },
  IngressClass: { metadata: { name: 'external', annotations: { 'skiff.dev/acme-email': 'ops+acme@example.com', 'skiff.dev/trusted-proxies': '10.0.0.0/8, fd00::/8' } }, spec: { controller: 'skiff.dev/ingress' } },
  Service: {
    metadata: { name: 'web', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied } },
    spec: {
      type: 'LoadBalancer', selector: { app: 'web' }, loadBalancerIP: '192.0.2.5', loadBalancerSourceRanges: ['10.0.0.0/8'], loadBalancerClass: 'example.com/lb',
      ports: [{ name: 'http', port: 80, targetPort: 'http', appProtocol: 'kubernetes.io/h2c' }, { name: 'https', port: 443 }],
    },
  },
}

t.test('the valid objects (multi-line foreign annotations included) have no causes', async (t) => {
  for (const [kind, obj] of Object.entries(valid)) t.same(run(kind, obj), [], kind)
  const ext = { metadata: { name: 'ext', namespace: 'default' }, spec: { type: 'ExternalName', externalName: `${'a'.repeat(63)}.example.com.` } }
  t.same(run('Service', ext), [], 'externalName with a 63-character label and a trailing dot')
})

type Want = [field: string, reason: string, message?: string | RegExp]
interface Case { name: string; kind: string; edit: (o: any) => void; want: Want[] }
const ctl = 'Invalid value: "a\\u0001b": must not contain control characters'
const p0 = 'spec.rules[0].http.paths[0]'

const cases: Case[] = [
  // control characters anywhere
  { name: 'control character in a rule host', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = 'a\x01b'), want: [['spec.rules[0].host', 'FieldValueInvalid', /lowercase RFC 1123 subdomain/], ['spec.rules[0].host', 'FieldValueInvalid', ctl]] },
  { name: 'control character in a field Skiff does not know', kind: 'Ingress', edit: (o) => (o.spec.extra = { note: ['x', 'a\x01b'] }), want: [['spec.extra.note[1]', 'FieldValueInvalid', ctl]] },
  { name: 'control character in a key', kind: 'Ingress', edit: (o) => (o.spec['a\x01b'] = 'x'), want: [['spec["a\\u0001b"]', 'FieldValueInvalid', ctl]] },
  { name: 'ESC in a foreign annotation value', kind: 'Service', edit: (o) => (o.metadata.annotations['example.com/x'] = 'red\x1b[31m'), want: [['metadata.annotations[example.com/x]', 'FieldValueInvalid', /must not contain control characters/]] },
  { name: 'NUL in a foreign annotation value', kind: 'Ingress', edit: (o) => (o.metadata.annotations['example.com/note'] = 'a\x00'), want: [['metadata.annotations[example.com/note]', 'FieldValueInvalid', /must not contain control characters/]] },
  { name: 'C1 control in a status string', kind: 'Service', edit: (o) => (o.status = { conditions: [{ type: 'Ready', status: 'True', message: 'a\x85b' }] }), want: [['status.conditions[0].message', 'FieldValueInvalid', /must not contain control characters/]] },
  { name: 'a newline in a skiff.dev value (commaList would trim it)', kind: 'Ingress', edit: (o) => (o.metadata.annotations['skiff.dev/methods'] = 'GET\n'), want: [['metadata.annotations[skiff.dev/methods]', 'FieldValueInvalid', 'Invalid value: "GET\\n": must not contain control characters']] },
  { name: 'a tab in a skiff.dev URL (the URL parser would drop it)', kind: 'IngressClass', edit: (o) => (o.metadata.annotations['skiff.dev/acme-directory'] = 'https://acme.exa\tmple.com/dir'), want: [['metadata.annotations[skiff.dev/acme-directory]', 'FieldValueInvalid', /must not contain control characters/]] },
  { name: 'a control character in an IngressClass controller', kind: 'IngressClass', edit: (o) => (o.spec.controller = 'skiff.dev/a\x7f'), want: [['spec.controller', 'FieldValueInvalid', /Invalid path/], ['spec.controller', 'FieldValueInvalid', /must not contain control characters/]] },
  // hosts
  { name: 'a host label of 64 characters', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = `${'a'.repeat(64)}.example.com`), want: [['spec.rules[0].host', 'FieldValueInvalid', /each label must be no more than 63 characters/]] },
  { name: 'a wildcard that is not the leftmost label', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = 'www.*.example.com'), want: [['spec.rules[0].host', 'FieldValueInvalid', /wildcard DNS-1123 subdomain/]] },
  { name: 'a partial-label wildcard', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = 'w*.example.com'), want: [['spec.rules[0].host', 'FieldValueInvalid', /wildcard/]] },
  { name: 'a host that is not a string', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = 42), want: [['spec.rules[0].host', 'FieldValueInvalid', 'Invalid value: 42: must be a string']] },
  { name: 'an upper-case host', kind: 'Ingress', edit: (o) => (o.spec.rules[0].host = 'WWW.example.com'), want: [['spec.rules[0].host', 'FieldValueInvalid']] },
  { name: 'a TLS host with a double wildcard', kind: 'Ingress', edit: (o) => (o.spec.tls[0].hosts[1] = '*.*.example.com'), want: [['spec.tls[0].hosts[1]', 'FieldValueInvalid']] },
  { name: 'a TLS host that is not a string', kind: 'Ingress', edit: (o) => (o.spec.tls[0].hosts[0] = 7), want: [['spec.tls[0].hosts[0]', 'FieldValueInvalid', 'Invalid value: 7: must be a string']] },
  { name: 'a TLS secret name that is not a string', kind: 'Ingress', edit: (o) => (o.spec.tls[0].secretName = ['web-tls']), want: [['spec.tls[0].secretName', 'FieldValueInvalid', /must be a string/]] },
  { name: 'a class name that is not a string', kind: 'Ingress', edit: (o) => (o.spec.ingressClassName = true), want: [['spec.ingressClassName', 'FieldValueInvalid', 'Invalid value: true: must be a string']] },
  // paths
  { name: 'a space in a Prefix path', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/a b'), want: [[`${p0}.path`, 'FieldValueInvalid', /must be an absolute path of RFC 3986 path characters/]] },
  { name: 'a query in an Exact path', kind: 'Ingress', edit: (o) => { o.spec.rules[0].http.paths[0].pathType = 'Exact'; o.spec.rules[0].http.paths[0].path = '/a?b=1' }, want: [[`${p0}.path`, 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'a fragment in a Prefix path', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/a#b'), want: [[`${p0}.path`, 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'raw non-ASCII in a path (write %C3%A9)', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/café'), want: [[`${p0}.path`, 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'a broken escape', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/a%zz'), want: [[`${p0}.path`, 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'an encoded slash (Kubernetes\' own rule, once)', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/a%2Fb'), want: [[`${p0}.path`, 'FieldValueInvalid', "Invalid value: \"/a%2Fb\": must not contain '%2F'"]] },
  { name: 'an encoded backslash', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = '/a%5cb'), want: [[`${p0}.path`, 'FieldValueInvalid', /encoded '\\' \(%5C\)/]] },
  { name: 'a regex in an ImplementationSpecific path (served as Prefix)', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[1].path = '/api(/|$)(.*)'), want: [['spec.rules[0].http.paths[1].path', 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'an encoded NUL in an ImplementationSpecific path', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[1].path = '/a%00'), want: [['spec.rules[0].http.paths[1].path', 'FieldValueInvalid', /encoded NUL/]] },
  { name: 'a path that is not a string', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].path = 5), want: [[`${p0}.path`, 'FieldValueInvalid', 'Invalid value: 5: must be a string'], [`${p0}.path`, 'FieldValueInvalid', 'Invalid value: "": must be an absolute path']] },
  // backends
  { name: 'a backend Service name that is not a string', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].backend.service.name = { a: 1 }), want: [[`${p0}.backend.service.name`, 'FieldValueInvalid', /must be a string/]] },
  { name: 'a backend port name that is not a string', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[1].backend.service.port.name = 8080), want: [['spec.rules[0].http.paths[1].backend.service.port.name', 'FieldValueInvalid', /must be a string/]] },
  { name: 'a resource backend with a bad name', kind: 'Ingress', edit: (o) => (o.spec.rules[0].http.paths[0].backend = { resource: { kind: 'Bucket', name: 'My Bucket' } }), want: [[`${p0}.backend.resource.name`, 'FieldValueInvalid']] },
  // status
  { name: 'a status IP that is not an IP', kind: 'Ingress', edit: (o) => (o.status.loadBalancer.ingress[0].ip = '192.0.2.300'), want: [['status.loadBalancer.ingress[0].ip', 'FieldValueInvalid']] },
  { name: 'a status hostname that is an IP', kind: 'Service', edit: (o) => (o.status = { loadBalancer: { ingress: [{ hostname: '192.0.2.1' }] } }), want: [['status.loadBalancer.ingress[0].hostname', 'FieldValueInvalid', /not an IP address/]] },
  // Service
  { name: 'an externalName label of 64 characters', kind: 'Service', edit: (o) => { o.spec = { type: 'ExternalName', externalName: `${'a'.repeat(64)}.example.com` } }, want: [['spec.externalName', 'FieldValueInvalid', /each label must be no more than 63 characters/]] },
  { name: 'an externalName with an underscore', kind: 'Service', edit: (o) => { o.spec = { type: 'ExternalName', externalName: 'db_1.example.com' } }, want: [['spec.externalName', 'FieldValueInvalid', /RFC 1123 subdomain/]] },
  { name: 'an externalName that is not a string', kind: 'Service', edit: (o) => { o.spec = { type: 'ExternalName', externalName: 12 } }, want: [['spec.externalName', 'FieldValueInvalid', 'Invalid value: 12: must be a string']] },
  { name: 'an upper-case port name', kind: 'Service', edit: (o) => (o.spec.ports[0].name = 'HTTP'), want: [['spec.ports[0].name', 'FieldValueInvalid']] },
  { name: 'a port name that is not a string', kind: 'Service', edit: (o) => (o.spec.ports[1].name = 443), want: [['spec.ports[1].name', 'FieldValueInvalid', 'Invalid value: 443: must be a string']] },
  { name: 'a bad appProtocol', kind: 'Service', edit: (o) => (o.spec.ports[0].appProtocol = 'h2 c'), want: [['spec.ports[0].appProtocol', 'FieldValueInvalid']] },
  { name: 'a bad loadBalancerIP', kind: 'Service', edit: (o) => (o.spec.loadBalancerIP = 'lb.example.com'), want: [['spec.loadBalancerIP', 'FieldValueInvalid']] },
  { name: 'a bad source range', kind: 'Service', edit: (o) => (o.spec.loadBalancerSourceRanges = ['10.0.0.0/8', '10.0.0.0/33']), want: [['spec.loadBalancerSourceRanges[1]', 'FieldValueInvalid']] },
  { name: 'a bad loadBalancerClass', kind: 'Service', edit: (o) => (o.spec.loadBalancerClass = 'a/b/c'), want: [['spec.loadBalancerClass', 'FieldValueInvalid']] },
  { name: 'a bad second clusterIP', kind: 'Service', edit: (o) => { o.spec.clusterIP = '10.96.0.5'; o.spec.clusterIPs = ['10.96.0.5', 'fd00::x'] }, want: [['spec.clusterIPs[1]', 'FieldValueInvalid']] },
  { name: 'an external IP that is not a string', kind: 'Service', edit: (o) => (o.spec.externalIPs = [167772161]), want: [['spec.externalIPs[0]', 'FieldValueInvalid', /must be a string/]] },
  // skiff.dev values
  { name: 'a rewrite target with a query', kind: 'Ingress', edit: (o) => (o.metadata.annotations['skiff.dev/rewrite-target'] = '/x?y=1'), want: [['metadata.annotations[skiff.dev/rewrite-target]', 'FieldValueInvalid', /RFC 3986/]] },
  { name: 'a rewrite target with a dot segment', kind: 'Ingress', edit: (o) => (o.metadata.annotations['skiff.dev/rewrite-target'] = '/a/../admin'), want: [['metadata.annotations[skiff.dev/rewrite-target]', 'FieldValueInvalid', /'\.' or '\.\.' segment/]] },
  { name: 'a rewrite target with an encoded slash', kind: 'Ingress', edit: (o) => (o.metadata.annotations['skiff.dev/rewrite-target'] = '/a%2f'), want: [['metadata.annotations[skiff.dev/rewrite-target]', 'FieldValueInvalid', /encoded '\/'/]] },
  { name: 'an email without a dotted domain', kind: 'IngressClass', edit: (o) => (o.metadata.annotations['skiff.dev/acme-email'] = 'ops@localhost'), want: [['metadata.annotations[skiff.dev/acme-email]', 'FieldValueInvalid']] },
  { name: 'an email with a bad domain', kind: 'IngressClass', edit: (o) => (o.metadata.annotations['skiff.dev/acme-email'] = 'ops@exa_mple.com'), want: [['metadata.annotations[skiff.dev/acme-email]', 'FieldValueInvalid']] },
  { name: 'an email with a quote', kind: 'IngressClass', edit: (o) => (o.metadata.annotations['skiff.dev/acme-email'] = '"o ps"@example.com'), want: [['metadata.annotations[skiff.dev/acme-email]', 'FieldValueInvalid']] },
  { name: 'a CIDR with an IPv6 zone', kind: 'IngressClass', edit: (o) => (o.metadata.annotations['skiff.dev/trusted-proxies'] = 'fe80::1%eth0/64'), want: [['metadata.annotations[skiff.dev/trusted-proxies]', 'FieldValueInvalid']] },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const obj = structuredClone(valid[c.kind]!)
    c.edit(obj)
    const got = run(c.kind, obj)
    t.same(got.map((g) => [g.field, g.reason]), c.want.map((w) => [w[0], w[1]]), 'field paths and reasons')
    c.want.forEach((w, i) => {
      if (w[2] !== undefined) t.match(got[i]?.message, w[2], `message of ${w[0]}`)
    })
  })
}

t.test('a refused value is never read: readSkiffAnnotation gives undefined', async (t) => {
  const o = structuredClone(valid.Ingress!) as any
  o.metadata.annotations['skiff.dev/rewrite-target'] = '/x?y=1'
  t.equal(readSkiffAnnotation(o, 'skiff.dev/rewrite-target'), undefined)
  t.equal(readSkiffAnnotation(valid.Ingress!, 'skiff.dev/rewrite-target'), '/v1/')
})

t.test('controlCharacterErrors: any depth, cut values, nothing for clean objects', async (t) => {
  let deep: any = 'a\x02'
  for (let i = 0; i < 100_000; i++) deep = [deep]
  const causes = controlCharacterErrors({ spec: deep })
  t.equal(causes.length, 1, 'a string 100,000 lists deep is found without a stack overflow')
  t.equal(causes[0]!.field!.length, 'spec'.length + '[0]'.length * 100_000)
  const long = controlCharacterErrors({ spec: { v: 'x'.repeat(1000) + '\x07' } })
  t.match(long[0]!.message, /^Invalid value: "x{128}"\.\.\.: must not contain control characters$/, 'a long value is cut in the message')
  t.same(controlCharacterErrors({ a: ['b', { c: 'd\u00e9\u2028' }], n: 1, z: null }), [], 'non-ASCII that is not a control character is fine')
})
