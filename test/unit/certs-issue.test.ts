// The pure certificate helpers: host coverage (wildcards one label deep),
// the renewal window, targets from Ingresses, what to do about a Secret, the
// Secret written, and the backoff.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issueServingCert, loadOrCreateCA } from '../../certs/ca.ts'
import { backoffMs, buildCertTargets, buildTlsSecret, certAnnotations, coversHosts, dnsNamesOf, parseCert, planCertificate, renewalWindow, sanCovers } from '../../certs/issue.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

t.test('sanCovers', async (t) => {
  const cases = [
    { san: 'a.example.com', host: 'a.example.com', want: true },
    { san: 'A.Example.com', host: 'a.example.COM', want: true },
    { san: '*.example.com', host: 'a.example.com', want: true },
    { san: '*.example.com', host: 'a.b.example.com', want: false },
    { san: '*.example.com', host: 'example.com', want: false },
    { san: '*.example.com', host: '*.example.com', want: true },
    { san: 'a.example.com', host: '*.example.com', want: false },
    { san: '*.b.example.com', host: '*.example.com', want: false },
  ]
  for (const c of cases) t.equal(sanCovers(c.san, c.host), c.want, `${c.san} covers ${c.host}: ${c.want}`)
  t.ok(coversHosts(['a.x', '*.y'], ['a.x', 'b.y']))
  t.notOk(coversHosts(['a.x'], ['a.x', 'b.x']))
  t.same(dnsNamesOf('DNS:a.x, IP Address:1.2.3.4, DNS:*.Y'), ['a.x', '*.y'])
})

t.test('renewalWindow: a third of the lifetime left', async (t) => {
  t.equal(renewalWindow(0, 90).renewAt, 60)
  t.equal(renewalWindow(1000, 1000 + 3 * 86_400_000).renewAt, 1000 + 2 * 86_400_000)
})

t.test('backoffMs', async (t) => {
  t.same([0, 1, 2, 3, 10].map((n) => backoffMs(n, 30_000, 3_600_000)), [0, 30_000, 60_000, 120_000, 3_600_000])
})

const ing = (name: string, spec: any, ns = 'default'): KubeObject => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: ns }, spec })

t.test('buildCertTargets', async (t) => {
  const a = ing('a', { ingressClassName: 'external', tls: [{ secretName: 's', hosts: ['B.x', 'a.x'] }, { hosts: ['nosecret.x'] }, { secretName: 'nohosts' }] })
  const b = ing('b', { ingressClassName: 'external', tls: [{ secretName: 's', hosts: ['c.x', 'a.x'] }] })
  const other = ing('o', { ingressClassName: 'internal', tls: [{ secretName: 's2', hosts: ['o.x'] }] })
  const noClass = ing('n', { tls: [{ secretName: 'd', hosts: ['d.x'] }] }, 'other')
  const got = buildCertTargets([a, b, other, noClass], { className: 'external', isDefaultClass: false })
  t.same(got.map((x) => ({ ns: x.namespace, s: x.secretName, hosts: x.hosts, ing: x.ingresses.map((i) => i.metadata.name) })), [{ ns: 'default', s: 's', hosts: ['a.x', 'b.x', 'c.x'], ing: ['a', 'b'] }])
  const withDefault = buildCertTargets([a, noClass], { className: 'external', isDefaultClass: true })
  t.same(withDefault.map((x) => `${x.namespace}/${x.secretName}`), ['default/s', 'other/d'])
})

t.test('planCertificate and buildTlsSecret', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-certs-unit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ca = await loadOrCreateCA(dir)
  const issued = issueServingCert(ca, { commonName: 'a', dnsNames: ['a.x', '*.y'], days: 3 })
  const info = parseCert(issued.certPem + ca.certPem)!
  t.same(info.dnsNames, ['a.x', '*.y'], 'parses the leaf of a chain')
  const hosts = ['a.x', 'b.y']
  const managed = buildTlsSecret({ namespace: 'ns', name: 's', certPem: issued.certPem, keyPem: issued.keyPem, issuer: 'acme', hosts })
  t.equal(managed.type, 'kubernetes.io/tls')
  t.equal(managed.metadata.annotations?.[certAnnotations.hosts], 'a.x,b.y')
  t.equal(managed.metadata.annotations?.[certAnnotations.notAfter], new Date(info.notAfter).toISOString())
  const { renewAt } = renewalWindow(info.notBefore, info.notAfter)
  const foreign = { ...managed, metadata: { name: 's', namespace: 'ns' } }
  const cases: Array<{ name: string; secret: KubeObject | undefined; hosts?: string[]; issuer?: 'acme' | 'cluster-ca'; now?: number; want: unknown }> = [
    { name: 'absent', secret: undefined, want: { action: 'issue', reason: 'missing' } },
    { name: 'fresh and covering', secret: managed, want: { action: 'ok', renewAt } },
    { name: 'in the last third', secret: managed, now: renewAt + 1, want: { action: 'issue', reason: 'renewal' } },
    { name: 'hosts changed', secret: managed, hosts: ['a.x'], want: { action: 'issue', reason: 'hosts-changed' } },
    { name: 'other issuer', secret: managed, issuer: 'cluster-ca', want: { action: 'issue', reason: 'issuer-changed' } },
    { name: 'key missing', secret: { ...managed, data: { 'tls.crt': managed.data['tls.crt'] } }, want: { action: 'issue', reason: 'unreadable' } },
    { name: 'user Secret covering', secret: foreign, want: { action: 'foreign', covered: true } },
    { name: 'user Secret not covering', secret: foreign, hosts: ['z.x'], want: { action: 'foreign', covered: false } },
    { name: 'user Secret expired', secret: foreign, now: info.notAfter + 1, want: { action: 'foreign', covered: false } },
  ]
  for (const c of cases) {
    t.same(planCertificate({ secret: c.secret, hosts: c.hosts ?? hosts, issuer: c.issuer ?? 'acme', now: c.now ?? Date.now() }), c.want, c.name)
  }
  const hostsMarkedButNotCovered = buildTlsSecret({ namespace: 'ns', name: 's', certPem: issued.certPem, keyPem: issued.keyPem, issuer: 'acme', hosts: ['q.x'] })
  t.same(planCertificate({ secret: hostsMarkedButNotCovered, hosts: ['q.x'], issuer: 'acme', now: Date.now() }), { action: 'issue', reason: 'not-covered' })
  const kept = buildTlsSecret({ namespace: 'ns', name: 's', certPem: issued.certPem, keyPem: issued.keyPem, issuer: 'acme', hosts, existing: { ...managed, metadata: { ...managed.metadata, resourceVersion: '7', labels: { app: 'x' } } } })
  t.equal(kept.metadata.resourceVersion, '7', 'keeps the resourceVersion for the CAS')
  t.same(kept.metadata.labels, { app: 'x' })
})
