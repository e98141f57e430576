// ReferenceGrant rules (controlplane/api/reference-grants.ts): which
// cross-namespace references a grant opens, and which Secrets a pool's
// Gateways may read in another namespace through one.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { gatewayGrantedSecret, referenceGranted } from '../../controlplane/api/reference-grants.ts'

const grant = (ns: string, from: unknown[], to: unknown[]): KubeObject => ({ metadata: { name: 'g', namespace: ns }, spec: { from, to } })
const gwFrom = (ns: string) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: ns })
const secretRef = (ns: string, name: string) => ({ fromGroup: 'gateway.networking.k8s.io', fromKind: 'Gateway', fromNamespace: 'app', toGroup: '', toKind: 'Secret', toNamespace: ns, toName: name })

t.test('referenceGranted', async (t) => {
  const cases: Array<{ name: string; grants: KubeObject[]; ref: ReturnType<typeof secretRef>; want: boolean }> = [
    { name: 'no grant', grants: [], ref: secretRef('certs', 'a'), want: false },
    { name: 'all Secrets of the namespace', grants: [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Secret' }])], ref: secretRef('certs', 'a'), want: true },
    { name: 'by name: that one', grants: [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Secret', name: 'a' }])], ref: secretRef('certs', 'a'), want: true },
    { name: 'by name: another one', grants: [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Secret', name: 'b' }])], ref: secretRef('certs', 'a'), want: false },
    { name: 'grant in another namespace than the target', grants: [grant('app', [gwFrom('app')], [{ group: '', kind: 'Secret' }])], ref: secretRef('certs', 'a'), want: false },
    { name: 'from another namespace', grants: [grant('certs', [gwFrom('other')], [{ group: '', kind: 'Secret' }])], ref: secretRef('certs', 'a'), want: false },
    { name: 'from HTTPRoutes, not Gateways', grants: [grant('certs', [{ ...gwFrom('app'), kind: 'HTTPRoute' }], [{ group: '', kind: 'Secret' }])], ref: secretRef('certs', 'a'), want: false },
    { name: 'to Services, not Secrets', grants: [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Service' }])], ref: secretRef('certs', 'a'), want: false },
    { name: 'entries are ORed', grants: [grant('certs', [gwFrom('x'), gwFrom('app')], [{ group: '', kind: 'Service' }, { group: '', kind: 'Secret', name: 'a' }])], ref: secretRef('certs', 'a'), want: true },
  ]
  for (const c of cases) t.equal(referenceGranted(c.grants, c.ref), c.want, c.name)
})

t.test('gatewayGrantedSecret: what a pool may read in another namespace', async (t) => {
  const gw = (ns: string, cls: string, refs: unknown[]): KubeObject => ({ metadata: { name: 'gw', namespace: ns }, spec: { gatewayClassName: cls, listeners: [{ name: 'https', protocol: 'HTTPS', port: 443, tls: { certificateRefs: refs } }] } })
  const grants = [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Secret', name: 'a' }])]
  const refA = { name: 'a', namespace: 'certs' }
  t.ok(gatewayGrantedSecret([gw('app', 'external', [refA])], grants, 'external', 'certs', 'a'), 'named and granted')
  t.notOk(gatewayGrantedSecret([gw('app', 'external', [refA])], [], 'external', 'certs', 'a'), 'named, no grant')
  t.notOk(gatewayGrantedSecret([gw('app', 'internal', [refA])], grants, 'external', 'certs', 'a'), 'a Gateway of the other pool')
  t.notOk(gatewayGrantedSecret([gw('app', 'external', [{ name: 'b', namespace: 'certs' }])], [grant('certs', [gwFrom('app')], [{ group: '', kind: 'Secret' }])], 'external', 'certs', 'a'), 'granted, but no Gateway names it')
  t.notOk(gatewayGrantedSecret([gw('app', 'external', [{ ...refA, kind: 'ConfigMap' }])], grants, 'external', 'certs', 'a'), 'not a Secret reference')
  t.notOk(gatewayGrantedSecret([gw('certs', 'external', [{ name: 'a' }])], grants, 'external', 'certs', 'a'), 'same namespace: not this rule (classUsesSecret)')
})
