// unresolvedRefs: which backends and TLS Secrets of an Ingress do not resolve.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { unresolvedRefs } from '../../dataplane/ingress/refs.ts'
import type { IngressSnapshot } from '../../dataplane/ingress/snapshot.ts'

const ing = (name: string, spec: Record<string, unknown>): KubeObject => ({ metadata: { name, namespace: 'shop' }, spec: { ingressClassName: 'external', ...spec } })
const path = (service: string, port: Record<string, unknown>) => ({ path: '/', pathType: 'Prefix', backend: { service: { name: service, port } } })

const snapshot = (ingresses: KubeObject[]): Pick<IngressSnapshot, 'ingresses' | 'services' | 'certificates'> => ({
  ingresses,
  services: {
    'shop/web': { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    'shop/ext': { type: 'ExternalName', ports: [], externalName: 'example.com' },
  },
  certificates: { 'shop/good': { cert: 'c', key: 'k' }, 'shop/bad': { error: 'secret shop/bad: tls.key does not match the certificate in tls.crt' } },
})

t.test('backends', async (t) => {
  const cases: Array<{ name: string; ing: KubeObject; want: string[] }> = [
    { name: 'existing Service and port by number and name: resolved', ing: ing('a', { rules: [{ http: { paths: [path('web', { number: 80 }), path('web', { name: 'http' })] } }] }), want: [] },
    { name: 'missing Service', ing: ing('a', { rules: [{ http: { paths: [path('nope', { number: 80 })] } }] }), want: ['BackendNotFound: service shop/nope not found'] },
    { name: 'missing port number', ing: ing('a', { rules: [{ http: { paths: [path('web', { number: 81 })] } }] }), want: ['BackendNotFound: service shop/web has no port 81'] },
    { name: 'missing port name', ing: ing('a', { rules: [{ http: { paths: [path('web', { name: 'grpc' })] } }] }), want: ['BackendNotFound: service shop/web has no port named "grpc"'] },
    { name: 'defaultBackend counts; one message per problem', ing: ing('a', { defaultBackend: { service: { name: 'nope', port: { number: 1 } } }, rules: [{ http: { paths: [path('nope', { number: 1 })] } }] }), want: ['BackendNotFound: service shop/nope not found'] },
    { name: 'ExternalName: its ports are not checked', ing: ing('a', { rules: [{ http: { paths: [path('ext', { number: 443 })] } }] }), want: [] },
  ]
  for (const c of cases) t.same(unresolvedRefs(snapshot([c.ing])).map((u) => `${u.reason}: ${u.message}`), c.want, c.name)
})

t.test('TLS Secrets', async (t) => {
  const got = unresolvedRefs(snapshot([ing('a', { tls: [{ hosts: ['a.example'], secretName: 'good' }, { hosts: ['b.example', 'c.example'], secretName: 'bad' }, { secretName: 'gone' }] })]))
  t.same(got, [
    { ingress: 'shop/a', reason: 'InvalidCertificateRef', message: 'secret shop/bad: tls.key does not match the certificate in tls.crt; hosts b.example, c.example get the default certificate' },
    { ingress: 'shop/a', reason: 'InvalidCertificateRef', message: 'secret shop/gone not found' },
  ])
})

t.test('a Secret not looked up yet is not reported missing', async (t) => {
  t.same(unresolvedRefs(snapshot([ing('a', { tls: [{ secretName: 'gone' }] })]), new Set(['shop/gone'])), [])
})
