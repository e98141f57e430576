// The cluster-CA issuer in the real controller manager (skiff server with
// controllers on): the default ingress certificate exists; an internal
// Ingress with TLS gets a Secret whose certificate chains to the cluster CA
// and covers its hosts (wildcards too); a changed host list re-issues; a
// Secret the user made is left alone, with a Warning when it does not fit.

import t from 'tap'
import { randomBytes, X509Certificate } from 'node:crypto'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { certAnnotations, certFromSecret, coversHosts, parseCert, splitPemChain } from '../../certs/issue.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { defaultCertHost, defaultCertSecret } from '../../controlplane/controllers/ingress-certs.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const nss = lookupResource('', 'v1', 'namespaces')!
const secrets = lookupResource('', 'v1', 'secrets')!
const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const events = lookupResource('', 'v1', 'events')!
const ns = `certs-${randomBytes(3).toString('hex')}`

function ingress(name: string, tls: Array<{ secretName: string; hosts: string[] }>): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: ns },
    spec: { ingressClassName: 'internal', tls, rules: [{ host: tls[0].hosts[0].replace('*', 'x'), http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
  }
}

const secretOf = (c: { client: { get: Function } }, name: string) => async () => {
  try {
    return (await c.client.get(secrets, ns, name)) as KubeObject
  } catch {
    return undefined
  }
}

t.test('cluster-CA certificates for internal Ingresses', async (t) => {
  const c = await startTestCluster(t, { controllers: {} })
  const ca = new X509Certificate(c.caPem)
  await c.client.create(nss, undefined, { metadata: { name: ns } })

  const chainsToCA = (secret: KubeObject) => {
    const chain = splitPemChain(certFromSecret(secret)!)
    const leaf = new X509Certificate(chain[0])
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey)
  }

  t.test('the default certificate', async (t) => {
    const s = await eventually(async () => {
      try {
        return await c.client.get(secrets, defaultCertSecret.namespace, defaultCertSecret.name)
      } catch {
        return undefined
      }
    }, { timeout: 30_000, what: 'the default ingress certificate' })
    t.equal(s.type, 'kubernetes.io/tls')
    t.ok(chainsToCA(s), 'chains to the cluster CA')
    t.same(parseCert(certFromSecret(s)!)!.dnsNames, [defaultCertHost])
    t.equal(new X509Certificate(splitPemChain(certFromSecret(s)!)[0]).subject, 'CN=Skiff Ingress Default Certificate')
  })

  t.test('an internal Ingress gets its certificate, and a new host re-issues it', async (t) => {
    await c.client.create(ingresses, ns, ingress('web', [{ secretName: 'web-tls', hosts: ['web.internal.test', '*.apps.internal.test'] }]))
    const s = await eventually(secretOf(c, 'web-tls'), { timeout: 30_000, what: 'Secret web-tls' })
    t.equal(s.type, 'kubernetes.io/tls')
    t.equal(s.metadata.annotations?.[certAnnotations.issuer], 'cluster-ca')
    t.ok(chainsToCA(s), 'chains to the cluster CA')
    t.ok(coversHosts(parseCert(certFromSecret(s)!)!.dnsNames, ['web.internal.test', 'a.apps.internal.test']), 'covers the host and the wildcard')
    const key = Buffer.from(s.data['tls.key'], 'base64').toString()
    t.ok(new X509Certificate(splitPemChain(certFromSecret(s)!)[0]).checkPrivateKey((await import('node:crypto')).createPrivateKey(key)), 'key matches')

    const ing = await c.client.get(ingresses, ns, 'web')
    ing.spec.tls[0].hosts.push('more.internal.test')
    await c.client.update(ingresses, ing)
    const again = await eventually(async () => {
      const cur = await secretOf(c, 'web-tls')()
      return cur && cur.metadata.resourceVersion !== s.metadata.resourceVersion && coversHosts(parseCert(certFromSecret(cur)!)!.dnsNames, ['more.internal.test']) && cur
    }, { timeout: 30_000, what: 're-issued certificate' })
    t.ok(chainsToCA(again))
    const evs = await eventually(async () => {
      const list = await c.client.list(events, ns)
      return list.items.filter((e) => e.reason === 'Issued' && e.involvedObject.name === 'web').length >= 2 && list.items
    }, { timeout: 30_000, what: 'Issued events' })
    t.ok(evs.length >= 2)
  })

  t.test('a Secret the user made is left alone', async (t) => {
    // A certificate from some other CA, for another host.
    const dir = await mkdtemp(join(tmpdir(), 'skiff-other-ca-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const other = issueServingCert(await loadOrCreateCA(dir), { commonName: 'other', dnsNames: ['other.test'] })
    const user = await c.client.create(secrets, ns, {
      metadata: { name: 'user-tls', namespace: ns },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(other.certPem).toString('base64'), 'tls.key': Buffer.from(other.keyPem).toString('base64') },
    })
    await c.client.create(ingresses, ns, ingress('byo', [{ secretName: 'user-tls', hosts: ['byo.internal.test'] }]))
    await eventually(async () => {
      const list = await c.client.list(events, ns)
      return list.items.some((e) => e.reason === 'CertificateNotCovered' && e.involvedObject.name === 'byo' && e.type === 'Warning')
    }, { timeout: 30_000, what: 'Warning event about the user Secret' })
    const after = await c.client.get(secrets, ns, 'user-tls')
    t.equal(after.metadata.resourceVersion, user.metadata.resourceVersion, 'not rewritten')
    t.equal(after.metadata.annotations?.[certAnnotations.issuer], undefined)
  })
})
