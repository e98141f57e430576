// Gateway API HTTPS listeners on the ingress data plane, with real TLS: a
// control plane with controllers, one node in the external pool (its
// workers on the node address, ports 80 and 443), an echo pod behind a
// Service, Gateways whose HTTPS listeners name kubernetes.io/tls Secrets.
// Checks that a client sending SNI gets the listener's certificate and the
// route attached by sectionName answers (and not on the HTTP listener of
// the same host); that a missing Secret and a Secret whose key is not the
// certificate's give the listener ResolvedRefs=False/InvalidCertificateRef
// (Gateway Accepted/ListenersNotValid, Programmed True while another
// listener is valid, False/Invalid when none is), and that creating the
// Secret repairs it; that a certificateRef to another namespace needs a
// ReferenceGrant there (RefNotPermitted, then served, then revoked).

import t from 'tap'
import { connect, type PeerCertificate } from 'node:tls'
import { selfSignedCert } from '../../certs/ca.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { fallbackCommonName } from '../../dataplane/ingress/tls.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { app, echo, send, service } from '../harness/gateway.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const R = {
  namespaces: lookupResource('', 'v1', 'namespaces')!,
  deploys: lookupResource('apps', 'v1', 'deployments')!,
  services: lookupResource('', 'v1', 'services')!,
  secrets: lookupResource('', 'v1', 'secrets')!,
  slices: lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!,
  gatewayClasses: lookupResource('gateway.networking.k8s.io', 'v1', 'gatewayclasses')!,
  gateways: lookupResource('gateway.networking.k8s.io', 'v1', 'gateways')!,
  routes: lookupResource('gateway.networking.k8s.io', 'v1', 'httproutes')!,
  grants: lookupResource('gateway.networking.k8s.io', 'v1beta1', 'referencegrants')!,
}
const ns = 'gws-app'
const certNs = 'gws-certs'
const b64 = (s: string) => Buffer.from(s).toString('base64')
const pair = (host: string) => selfSignedCert({ commonName: host, dnsNames: [host] })
const tlsSecret = (name: string, cert: string, key: string): KubeObject => ({ metadata: { name }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(cert), 'tls.key': b64(key) } })
const https = (name: string, hostname: string, ref: Record<string, string>) => ({ name, port: 443, protocol: 'HTTPS', hostname, tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', ...ref }] } })
const route = (name: string, sectionName: string, hostname: string): KubeObject => ({ metadata: { name }, spec: { parentRefs: [{ name: 'gw', sectionName }], hostnames: [hostname], rules: [{ backendRefs: [{ name: 'one', port: 80 }] }] } })

/** The certificate the node's port 443 presents for this SNI name. */
function peerCertificate(ip: string, servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: ip, port: 443, servername, rejectUnauthorized: false }, () => {
      const cert = s.getPeerCertificate()
      s.end()
      resolve(cert)
    })
    s.setTimeout(10_000, () => s.destroy(new Error('timeout')))
    s.on('error', reject)
  })
}

type Cond = { type: string; status: string; reason: string; message?: string }
const condOf = (list: Cond[] | undefined, type: string) => list?.find((c) => c.type === type)

t.test('Gateway API HTTPS listeners through the external pool', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const [name] = testNodeNames(1, 'gws')
  const c = await startTestCluster(t, { identities: [...nodeIdentities([name!]), ingressIdentity('external')], controllers: { clusterCIDR: net.clusterCIDR } })
  const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, labels: { 'skiff.dev/ingress-pool': 'external' }, serviceProxy: { backend: 'none' }, dnsPort: 0, ingress: { drainMs: 1_000 } })
  const ip = node.agent.network!.gateway
  for (const n of [ns, certNs]) await c.client.create(R.namespaces, '', { metadata: { name: n } })
  await c.client.create(R.deploys, ns, echo('one'))
  await c.client.create(R.services, ns, service('one'))
  const site = pair('site.gws.test')
  const late = pair('missing.gws.test')
  const other = pair('other.gws.test')
  const [a, b] = [pair('mismatch.gws.test'), pair('mismatch.gws.test')]
  await c.client.create(R.secrets, ns, tlsSecret('site-tls', site.certPem, site.keyPem))
  await c.client.create(R.secrets, ns, tlsSecret('mismatch-tls', a.certPem, b.keyPem))
  await c.client.create(R.secrets, certNs, tlsSecret('other-tls', other.certPem, other.keyPem))
  await c.client.create(R.gatewayClasses, '', { metadata: { name: 'external' }, spec: { controllerName: 'skiff.dev/ingress' } })
  await c.client.create(R.gateways, ns, { metadata: { name: 'gw' }, spec: { gatewayClassName: 'external', listeners: [
    { name: 'http', port: 80, protocol: 'HTTP', hostname: 'site.gws.test' },
    https('https', 'site.gws.test', { name: 'site-tls' }),
    https('missing', 'missing.gws.test', { name: 'late-tls' }),
    https('mismatch', 'mismatch.gws.test', { name: 'mismatch-tls' }),
    https('other', 'other.gws.test', { name: 'other-tls', namespace: certNs }),
  ] } })
  await c.client.create(R.gateways, ns, { metadata: { name: 'broken' }, spec: { gatewayClassName: 'external', listeners: [https('https', 'broken.gws.test', { name: 'nope-tls' })] } })
  for (const [r, section, host] of [['secure', 'https', 'site.gws.test'], ['late', 'missing', 'missing.gws.test'], ['other', 'other', 'other.gws.test']] as const) await c.client.create(R.routes, ns, route(r, section, host))
  await eventually(async () => (await c.client.list(R.slices, ns)).items.flatMap((s) => s.endpoints ?? []).some((e: any) => e.conditions?.ready), { timeout: 90_000, what: 'a ready echo endpoint' })
  const siteTls = { servername: 'site.gws.test', ca: site.certPem }
  await eventually(async () => app(await send(ip, 'site.gws.test', '/', { tls: siteTls })) === 'one', { timeout: 30_000, what: 'the HTTPS route served with its certificate' })

  const gateway = async (n: string) => (await c.client.get(R.gateways, ns, n)).status
  const listener = async (gw: string, l: string) => (await gateway(gw))?.listeners?.find((x: any) => x.name === l)
  const parentOf = async (r: string) => (await c.client.get(R.routes, ns, r)).status?.parents?.[0]

  await t.test('a client sending SNI gets the listener certificate and the route attached by sectionName answers', async (t) => {
    const cert = await peerCertificate(ip, 'site.gws.test')
    t.equal(cert.subject.CN, 'site.gws.test', 'subject')
    t.equal(cert.subjectaltname, 'DNS:site.gws.test', 'SAN')
    const ans = await send(ip, 'site.gws.test', '/path?x=1', { tls: siteTls })
    t.equal(ans.status, 200, 'verified against the Secret certificate as CA, host name checked')
    t.equal(ans.json.path, '/path')
    t.equal((await send(ip, 'site.gws.test', '/')).status, 404, 'the HTTP listener of the same host has no route: sectionName attached it to https only')
    await eventually(async () => (await listener('gw', 'https'))?.attachedRoutes === 1, { timeout: 30_000, what: 'listener https attachedRoutes 1' })
    t.match(await listener('gw', 'https'), { attachedRoutes: 1, supportedKinds: [{ kind: 'HTTPRoute' }], conditions: [{ type: 'Accepted', status: 'True' }, { type: 'ResolvedRefs', status: 'True' }, { type: 'Programmed', status: 'True' }] })
    t.match(await listener('gw', 'http'), { attachedRoutes: 0 })
    t.match(await parentOf('secure'), { parentRef: { name: 'gw', sectionName: 'https' }, controllerName: 'skiff.dev/ingress', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted' }, { type: 'ResolvedRefs', status: 'True' }] })
  })

  await t.test('a missing Secret or a key that does not match: ResolvedRefs False, InvalidCertificateRef', async (t) => {
    const invalid = async (gw: string, l: string) => condOf((await listener(gw, l))?.conditions, 'ResolvedRefs')
    await eventually(async () => (await invalid('gw', 'mismatch'))?.reason === 'InvalidCertificateRef' && (await invalid('gw', 'missing'))?.reason === 'InvalidCertificateRef', { timeout: 30_000, what: 'both listeners InvalidCertificateRef' })
    for (const l of ['missing', 'mismatch']) {
      const st = await listener('gw', l)
      t.match(condOf(st.conditions, 'ResolvedRefs'), { status: 'False', reason: 'InvalidCertificateRef' }, `${l}: ResolvedRefs`)
      t.match(condOf(st.conditions, 'Programmed'), { status: 'False', reason: 'Invalid' }, `${l}: Programmed`)
      t.match(condOf(st.conditions, 'Accepted'), { status: 'True' }, `${l}: Accepted`)
      t.equal(st.attachedRoutes, 0, `${l}: no route attached`)
    }
    t.match(condOf((await listener('gw', 'missing')).conditions, 'ResolvedRefs')?.message, /late-tls.*not found/)
    t.match(condOf((await listener('gw', 'mismatch')).conditions, 'ResolvedRefs')?.message, /mismatch-tls/)
    const gw = await gateway('gw')
    t.match(condOf(gw.conditions, 'Accepted'), { status: 'True', reason: 'ListenersNotValid' }, 'Gateway accepted with invalid listeners')
    t.match(condOf(gw.conditions, 'Programmed'), { status: 'True', reason: 'Programmed' }, 'Gateway programmed: valid listeners remain')
    await eventually(async () => condOf((await gateway('broken'))?.conditions, 'Programmed')?.status === 'False', { timeout: 30_000, what: 'Gateway broken not Programmed' })
    const broken = await gateway('broken')
    t.match(condOf(broken.conditions, 'Programmed'), { status: 'False', reason: 'Invalid' }, 'no valid listener: Programmed False, Invalid')
    t.match(condOf(broken.conditions, 'Accepted'), { status: 'False', reason: 'ListenersNotValid' })
    t.match(condOf(broken.listeners[0].conditions, 'ResolvedRefs'), { status: 'False', reason: 'InvalidCertificateRef' })
    t.match(condOf((await parentOf('late'))?.conditions, 'Accepted'), { status: 'False', reason: 'NoMatchingParent' }, 'a route naming the invalid listener is not attached')
    t.equal((await peerCertificate(ip, 'mismatch.gws.test')).subject.CN, fallbackCommonName, 'the mismatched pair is not served: default certificate')
    t.equal((await peerCertificate(ip, 'missing.gws.test')).subject.CN, fallbackCommonName)

    await c.client.create(R.secrets, ns, tlsSecret('late-tls', late.certPem, late.keyPem))
    await eventually(async () => (await invalid('gw', 'missing'))?.status === 'True', { timeout: 30_000, what: 'listener missing resolved once its Secret exists' })
    await eventually(async () => (await peerCertificate(ip, 'missing.gws.test')).subject.CN === 'missing.gws.test', { timeout: 30_000, what: 'the new certificate served' })
    await eventually(async () => app(await send(ip, 'missing.gws.test', '/', { tls: { servername: 'missing.gws.test', ca: late.certPem } })) === 'one', { timeout: 30_000, what: 'the late route served' })
    t.match(condOf((await parentOf('late'))?.conditions, 'Accepted'), { status: 'True' })
  })

  await t.test('a certificateRef to another namespace needs a ReferenceGrant there', async (t) => {
    const resolved = async () => condOf((await listener('gw', 'other'))?.conditions, 'ResolvedRefs')
    await eventually(async () => (await resolved())?.reason === 'RefNotPermitted', { timeout: 30_000, what: 'listener other RefNotPermitted' })
    t.match(await resolved(), { status: 'False', reason: 'RefNotPermitted' })
    t.equal((await peerCertificate(ip, 'other.gws.test')).subject.CN, fallbackCommonName, 'not served without the grant')
    await c.client.create(R.grants, certNs, { metadata: { name: 'gateways-of-app' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: ns }], to: [{ group: '', kind: 'Secret', name: 'other-tls' }] } })
    await eventually(async () => (await resolved())?.status === 'True', { timeout: 30_000, what: 'ResolvedRefs True with the grant' })
    await eventually(async () => (await peerCertificate(ip, 'other.gws.test')).subject.CN === 'other.gws.test', { timeout: 30_000, what: 'the other namespace certificate served' })
    t.equal(app(await send(ip, 'other.gws.test', '/', { tls: { servername: 'other.gws.test', ca: other.certPem } })), 'one')
    await c.client.delete(R.grants, certNs, 'gateways-of-app')
    await eventually(async () => (await resolved())?.reason === 'RefNotPermitted', { timeout: 30_000, what: 'RefNotPermitted again once the grant is deleted' })
    await eventually(async () => (await peerCertificate(ip, 'other.gws.test')).subject.CN === fallbackCommonName, { timeout: 30_000, what: 'the certificate withdrawn with the grant' })
  })
})
