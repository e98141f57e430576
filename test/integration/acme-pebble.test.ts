// ACME end to end against the real Pebble: a real control plane, two
// AcmeIssuers (node-a, node-b) as the external class identity, Pebble
// resolving every name to 127.0.0.1 through the test resolver, and a small
// HTTP server on Pebble's httpPort that answers HTTP-01 from the challenges
// ConfigMap in the API (standing in for the ingress workers).
//   - one order for the two replicas; the Secret chains to Pebble's root and
//     covers both hosts; the Lease is released afterwards;
//   - renewal (the issuers' clock moved into the last third) replaces it;
//   - Pebble gone: the old Secret stays, AcmeFailed is recorded, the
//     certificate backs off instead of retrying at every check.

import t from 'tap'
import { randomBytes, X509Certificate } from 'node:crypto'
import { createServer } from 'node:http'
import { certFromSecret, parseCert, renewalWindow, shortHash, splitPemChain, coversHosts } from '../../certs/issue.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiEventRecorder } from '../../controlplane/controllers/informers.ts'
import { AcmeIssuer, acmeSupervisorHook } from '../../dataplane/ingress/acme.ts'
import type { IngressAcmeHook } from '../../dataplane/ingress/supervisor.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { startPebble } from '../harness/pebble.ts'

const nss = lookupResource('', 'v1', 'namespaces')!
const secrets = lookupResource('', 'v1', 'secrets')!
const configmaps = lookupResource('', 'v1', 'configmaps')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const events = lookupResource('', 'v1', 'events')!
const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const classes = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
const ns = `acme-${randomBytes(3).toString('hex')}`
const hosts = ['a.example.test', 'b.example.test']
const backoffBaseMs = 600_000 // no retry of a failure within the test
// Compile-time conformance: the issuer plugs into the supervisor's acme seam.
acmeSupervisorHook() satisfies IngressAcmeHook

t.test('ACME with Pebble', async (t) => {
  const c = await startTestCluster(t, { identities: [{ user: 'skiff:ingress:external', groups: ['skiff:ingress-controllers'] }] })
  const ingressClient = c.clientFor(c.tokens.get('skiff:ingress:external')!)

  // The HTTP-01 responder: what the ingress workers do, read straight from the API.
  const httpPort = await freePort()
  const responder = createServer(async (req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1]
    const cm = token ? await ingressClient.get(configmaps, 'kube-system', 'skiff-ingress-external-acme-challenges').catch(() => undefined) : undefined
    const answer = token ? cm?.data?.[token] : undefined
    res.writeHead(answer ? 200 : 404, { 'content-type': 'text/plain' }).end(answer ?? 'not found')
  })
  await new Promise<void>((r) => responder.listen(httpPort, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => responder.close(() => r())))

  const pebble = await startPebble(t, { httpPort, addresses: ['127.0.0.1'], certificateValidityPeriodSeconds: 3600 })
  const root = new X509Certificate(pebble.rootPem)

  await c.client.create(nss, undefined, { metadata: { name: ns } })
  const cls = await c.client.get(classes, undefined, 'external')
  cls.metadata.annotations = { ...cls.metadata.annotations, 'skiff.dev/acme-directory': pebble.directoryUrl, 'skiff.dev/acme-email': 'ops@example.test' }
  await c.client.update(classes, cls)
  const ingress = await c.client.create(ingresses, ns, {
    metadata: { name: 'web', namespace: ns },
    spec: { ingressClassName: 'external', tls: [{ secretName: 'web-tls', hosts }], rules: hosts.map((host) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } })) },
  })

  let offset = 0
  const now = () => Date.now() + offset
  const issuers = ['node-a', 'node-b'].map(
    (identity) =>
      new AcmeIssuer({
        client: ingressClient,
        className: 'external',
        logger: logger.child({ node: identity }),
        events: new ApiEventRecorder({ client: ingressClient, logger, component: `skiff-ingress-${identity}` }),
        now,
        caBundlePem: pebble.caBundlePem,
        identity,
        renewCheckMs: 300,
        leaseRetryMs: 300,
        backoffBaseMs,
        challengeDelayMs: 0,
      }),
  )
  t.teardown(() => Promise.all(issuers.map((i) => i.stop())))
  const classAsSeen = await ingressClient.get(classes, undefined, 'external')
  for (const i of issuers) {
    i.start()
    i.sync([ingress], classAsSeen)
  }
  const orders = () => issuers.reduce((n, i) => n + i.stats.orders, 0)
  const secret = async () => (await c.client.get(secrets, ns, 'web-tls').catch(() => undefined)) as KubeObject | undefined
  const passesAfter = async (n: number) => {
    const target = issuers.map((i) => i.stats.passes + n)
    await eventually(() => issuers.every((i, k) => i.stats.passes >= target[k]), { timeout: 30_000, what: `${n} more passes of both issuers` })
  }
  const chainsToPebble = (s: KubeObject) => {
    const [leaf, inter] = splitPemChain(certFromSecret(s)!).map((p) => new X509Certificate(p))
    return !!inter && leaf.checkIssued(inter) && leaf.verify(inter.publicKey) && inter.checkIssued(root) && inter.verify(root.publicKey)
  }

  const first = await eventually(secret, { timeout: 60_000, what: 'Secret web-tls from ACME' })

  t.test('one order for two replicas; the certificate chains to Pebble and covers both hosts', async (t) => {
    t.equal(first.type, 'kubernetes.io/tls')
    t.equal(first.metadata.annotations?.['cert.skiff.dev/issuer'], 'acme')
    t.equal(first.metadata.annotations?.['cert.skiff.dev/hosts'], hosts.join(','))
    t.ok(chainsToPebble(first), 'leaf → intermediate → Pebble root')
    const info = parseCert(certFromSecret(first)!)!
    t.ok(coversHosts(info.dnsNames, hosts), `covers ${hosts.join(', ')}`)
    t.ok(Math.abs(info.notAfter - info.notBefore - 3_600_000) < 120_000, 'certificateValidityPeriod honoured')
    await passesAfter(3)
    t.equal(orders(), 1, 'exactly one order')
    const lease = await c.client.get(leases, ns, `ingress-external-acme-${shortHash(`${ns}/web-tls`)}`)
    t.equal(lease.spec.holderIdentity, '', 'lease released')
    const cm = await c.client.get(configmaps, 'kube-system', 'skiff-ingress-external-acme-challenges')
    t.same(cm.data ?? {}, {}, 'tokens removed')
    await c.client.get(secrets, 'kube-system', 'skiff-ingress-external-acme-account')
  })

  t.test('renewal in the last third replaces the Secret', async (t) => {
    const info = parseCert(certFromSecret(first)!)!
    offset = renewalWindow(info.notBefore, info.notAfter).renewAt - Date.now() + 1000
    const renewed = await eventually(async () => {
      const s = await secret()
      return s && parseCert(certFromSecret(s)!)!.serialNumber !== info.serialNumber && s
    }, { timeout: 60_000, what: 'renewed certificate' })
    offset = 0
    // A replica may have started a second renewal before the clock went back; let it finish.
    await eventually(() => issuers.every((i) => i.busy === 0), { timeout: 60_000, what: 'issuers idle' })
    t.ok(chainsToPebble(renewed))
    t.ok(orders() >= 2, 'ordered again')
    const events0 = await c.client.list(events, ns)
    t.ok(events0.items.some((e) => e.reason === 'Issued' && /renewal/.test(e.message)), 'Issued event for the renewal')
  })

  t.test('ACME failure keeps the old certificate, records AcmeFailed and backs off', async (t) => {
    await pebble.stop()
    const before = (await secret())!
    const info = parseCert(certFromSecret(before)!)!
    const failuresBefore = issuers.reduce((n, i) => n + i.stats.failures, 0)
    offset = renewalWindow(info.notBefore, info.notAfter).renewAt - Date.now() + 1000
    const failed = await eventually(async () => {
      const list = await c.client.list(events, ns)
      return list.items.find((e) => e.reason === 'AcmeFailed' && e.type === 'Warning' && e.involvedObject.name === 'web')
    }, { timeout: 60_000, what: 'AcmeFailed event' })
    t.match(failed.message, /not issued/)
    await passesAfter(5)
    t.equal(issuers.reduce((n, i) => n + i.stats.failures, 0) - failuresBefore, 1, 'one failure, then backoff')
    const st = issuers.map((i) => i.certState(ns, 'web-tls')).find((s) => s && s.failures > 0)!
    t.ok(st.retryAt - Date.now() > backoffBaseMs / 2, 'next attempt far ahead')
    t.equal((await secret())!.metadata.resourceVersion, before.metadata.resourceVersion, 'old Secret kept')
    offset = 0
  })
})
