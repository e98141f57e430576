// The ingress supervisor inside real agents: a control plane with
// controllers, two nodes in the external pool and one in the internal pool
// (each agent runs its class's IngressSupervisor with real worker processes
// on its InternalIP, ports 80/443), an echo Deployment behind a Service, and
// real HTTP through each node's address. Checks class separation, Ingress
// status, conflict reporting, and that a stopping controller fails readiness
// while the other external node keeps serving.

import t from 'tap'
import { httpRequest } from '../harness/http.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { selfSignedCert } from '../../certs/ca.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const deploys = lookupResource('apps', 'v1', 'deployments')!
const services = lookupResource('', 'v1', 'services')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const ingresses = lookupResource('networking.k8s.io', 'v1', 'ingresses')!
const events = lookupResource('', 'v1', 'events')!
const secrets = lookupResource('', 'v1', 'secrets')!

/** One HTTP/1.1 request (no keep-alive) to a node address the test created. */
const get = (ip: string, port: number, host: string, path = '/') => httpRequest({ ip, port, host, path })

function ingress(name: string, className: string, host: string): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name },
    spec: { ingressClassName: className, rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }] },
  }
}

const echoDeployment = {
  metadata: { name: 'web' },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }],
      },
    },
  },
}

t.test('ingress supervisors on external and internal pool nodes', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(3, 'ig')
  const pools = ['external', 'external', 'internal']
  const c = await startTestCluster(t, {
    identities: [...nodeIdentities(names), ingressIdentity('external'), ingressIdentity('internal')],
    controllers: { clusterCIDR: net.clusterCIDR },
  })
  const nodes: TestNode[] = []
  for (const [i, name] of names.entries()) {
    nodes.push(await startTestNode(t, c, {
      name, clusterCIDR: net.clusterCIDR, labels: { 'skiff.dev/ingress-pool': pools[i]! },
      serviceProxy: { backend: 'none' }, dnsPort: 0, ingress: { drainMs: 5_000 },
    }))
  }
  const [ext1, ext2, int1] = nodes.map((n) => n.agent.network!.gateway) as [string, string, string]
  for (const n of nodes) t.ok(n.agent.ingress?.ready, `${n.name}: ingress ready after start`)

  await c.client.create(deploys, 'default', echoDeployment)
  await c.client.create(services, 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
  await eventually(async () => {
    const items = (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=web' })).items
    return items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready).length === 2
  }, { timeout: 120_000, what: 'two ready echo endpoints' })
  await c.client.create(ingresses, 'default', ingress('ext', 'external', 'ext.test'))
  await c.client.create(ingresses, 'default', ingress('int', 'internal', 'int.test'))

  await t.test('each class is served on its own pool only', async (t) => {
    for (const [ip, served, other] of [[ext1, 'ext.test', 'int.test'], [ext2, 'ext.test', 'int.test'], [int1, 'int.test', 'ext.test']] as const) {
      const ok = await eventually(async () => {
        const a = await get(ip, 80, served)
        return a.status === 200 && a.json?.pod ? a : undefined
      }, { timeout: 30_000, what: `${served} on ${ip}` })
      t.match(ok.json, { pod: /^web-/, path: '/' }, `${served} on ${ip} reaches an echo pod`)
      t.equal((await get(ip, 80, other)).status, 404, `${other} is not served on ${ip}`)
    }
  })

  await t.test('status.loadBalancer lists the pool node addresses', async (t) => {
    const lb = async (name: string) => ((await c.client.get(ingresses, 'default', name)).status?.loadBalancer?.ingress ?? []).map((x: any) => x.ip).sort()
    const want = [ext1, ext2].sort()
    await eventually(async () => JSON.stringify(await lb('ext')) === JSON.stringify(want), { timeout: 30_000, what: `ext status ${want}` })
    await eventually(async () => JSON.stringify(await lb('int')) === JSON.stringify([int1]), { timeout: 30_000, what: `int status ${int1}` })
    t.same(await lb('ext'), want)
    t.same(await lb('int'), [int1])
    t.match((await c.client.get(ingresses, 'default', 'ext')).status.conditions, [{ type: 'Accepted', status: 'True', reason: 'Accepted' }])
  })

  await t.test('a conflicting Ingress is reported on both: Warning Event and condition', async (t) => {
    await c.client.create(ingresses, 'default', ingress('ext-dup', 'external', 'ext.test'))
    const cond = async (name: string) => (await c.client.get(ingresses, 'default', name)).status?.conditions?.find((x: any) => x.type === 'Accepted')
    await eventually(async () => (await cond('ext-dup'))?.reason === 'RouteConflict' && (await cond('ext'))?.reason === 'RouteConflict', { timeout: 30_000, what: 'conflict conditions' })
    t.match(await cond('ext'), { status: 'True', reason: 'RouteConflict', message: /default\/ext-dup/ }, 'the older keeps the route')
    t.match(await cond('ext-dup'), { status: 'False', reason: 'RouteConflict', message: /host "ext.test" path \/.*default\/ext\b/ }, 'the newer lost it')
    const warned = await eventually(async () => {
      const evs = (await c.client.list(events, 'default')).items.filter((e) => e.reason === 'RouteConflict' && e.type === 'Warning')
      const about = new Set(evs.map((e) => e.involvedObject?.name))
      return about.has('ext') && about.has('ext-dup') ? evs : undefined
    }, { timeout: 30_000, what: 'RouteConflict events on both Ingresses' })
    t.ok(warned.every((e: any) => /ext\.test/.test(e.message)), 'the Events name the host')
    t.equal((await get(ext1, 80, 'ext.test')).status, 200, 'the older Ingress keeps serving')
    const debug = await eventually(async () => {
      const text = (await get(ext1, nodes[0]!.agent.ingress!.statusPort, 'status', '/debug/ingress')).body
      return text.includes('conflict:') ? text : undefined
    }, { timeout: 10_000, what: 'the conflict in /debug/ingress' })
    t.match(debug, /^host ext\.test\n  Prefix \/ \[any method\] default\/ext -> default\/web:http \[2\/2 ready\]$/m, '/debug/ingress shows the compiled table')
  })

  await t.test('a TLS Secret whose key does not match and a missing Service: ResolvedRefs False and Warning Events', async (t) => {
    const pair = selfSignedCert({ commonName: 'bad-tls.test', dnsNames: ['bad-tls.test'] })
    const stranger = selfSignedCert({ commonName: 'other.test', dnsNames: ['other.test'] })
    const b64 = (s: string) => Buffer.from(s).toString('base64')
    await c.client.create(secrets, 'default', { metadata: { name: 'bad-tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(stranger.keyPem) } })
    const badTls = ingress('ext-bad-tls', 'external', 'bad-tls.test')
    badTls.spec.tls = [{ hosts: ['bad-tls.test'], secretName: 'bad-tls' }]
    await c.client.create(ingresses, 'default', badTls)
    const noSvc = ingress('ext-nosvc', 'external', 'nosvc.test')
    noSvc.spec.rules[0].http.paths[0].backend.service.name = 'missing'
    await c.client.create(ingresses, 'default', noSvc)
    const cond = async (name: string, type: string) => (await c.client.get(ingresses, 'default', name)).status?.conditions?.find((x: any) => x.type === type)
    await eventually(async () => (await cond('ext-bad-tls', 'ResolvedRefs'))?.status === 'False' && (await cond('ext-nosvc', 'ResolvedRefs'))?.status === 'False', { timeout: 30_000, what: 'ResolvedRefs False on both' })
    t.match(await cond('ext-bad-tls', 'ResolvedRefs'), { reason: 'InvalidCertificateRef', message: /secret default\/bad-tls: tls.key does not match the certificate in tls.crt; hosts bad-tls.test get the default certificate/ })
    t.match(await cond('ext-bad-tls', 'Accepted'), { status: 'True', message: /1 reference does not resolve/ }, 'Accepted no longer says all routes are served')
    t.match(await cond('ext-nosvc', 'ResolvedRefs'), { reason: 'BackendNotFound', message: 'service default/missing not found' })
    const warned = await eventually(async () => {
      const evs = (await c.client.list(events, 'default')).items.filter((e) => e.type === 'Warning' && ['InvalidCertificateRef', 'BackendNotFound'].includes(e.reason))
      const about = new Map(evs.map((e) => [e.involvedObject?.name, e]))
      return about.has('ext-bad-tls') && about.has('ext-nosvc') ? about : undefined
    }, { timeout: 30_000, what: 'Warning Events on both Ingresses' })
    t.equal(warned.get('ext-bad-tls')!.reason, 'InvalidCertificateRef')
    t.equal(warned.get('ext-nosvc')!.reason, 'BackendNotFound')
    t.match(warned.get('ext-nosvc')!.message, /service default\/missing not found/)
    await c.client.create(services, 'default', { metadata: { name: 'missing' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
    await eventually(async () => (await cond('ext-nosvc', 'ResolvedRefs'))?.status === 'True', { timeout: 30_000, what: 'ResolvedRefs True once the Service exists' })
    t.match(await cond('ext-nosvc', 'Accepted'), { status: 'True', message: 'all routes are served' })
  })

  await t.test('a stopping controller fails readiness at once; the other external node keeps serving', async (t) => {
    const sup = nodes[0]!.agent.ingress!
    const readyz = async () => (await get(ext1, sup.statusPort, 'status', '/readyz')).status
    t.equal(await readyz(), 200, 'ready before stop')
    const inFlight = get(ext1, 80, 'ext.test', '/slow?ms=2500')
    // The slow request is in the worker once the workers' metrics count its connection.
    const metrics = await eventually(async () => {
      const body = (await get(ext1, sup.statusPort, 'status', '/metrics')).body
      return /^skiff_ingress_active_connections\{[^}]*\} [1-9]/m.test(body) ? body : undefined
    }, { timeout: 10_000, what: 'the in-flight connection in the metrics' })
    t.match(metrics, /^skiff_ingress_snapshot_generation\{class="external"\} [1-9]/m, 'supervisor metrics beside the workers\' metrics')
    const stopping = nodes[0]!.agent.stop()
    t.equal(await readyz(), 503, 'readyz fails at once while draining')
    const other = await get(ext2, 80, 'ext.test')
    t.equal(other.status, 200, 'the other external node serves during the drain')
    t.equal((await inFlight).status, 200, 'the in-flight request finishes')
    // Withdrawn from the published addresses while it drains, not 40 s later when its Node turns NotReady.
    const lbIps = async () => ((await c.client.get(ingresses, 'default', 'ext')).status?.loadBalancer?.ingress ?? []).map((x: any) => x.ip)
    await eventually(async () => JSON.stringify(await lbIps()) === JSON.stringify([ext2]), { timeout: 10_000, what: `status.loadBalancer without the stopping ${ext1}` })
    t.same(await lbIps(), [ext2], 'status.loadBalancer drops the stopping controller')
    await stopping
    await t.rejects(get(ext1, 80, 'ext.test'), 'the stopped node no longer listens')
    t.equal((await get(ext2, 80, 'ext.test')).status, 200, 'the other external node still serves')
  })
})
