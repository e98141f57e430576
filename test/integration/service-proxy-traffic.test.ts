// One real-traffic suite for both service-proxy backends (nftables, then
// userspace): a real control plane with controllers, two real agents on
// Docker (each running its ServiceProxier with the backend), real traffic
// from inside pods and from the host. Where userspace differs by design (a
// userspace proxy cannot keep the client source address) the test checks
// that documented behaviour instead of skipping.

import t from 'tap'
import { request } from 'node:http'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { nftTableName } from '../../dataplane/service-proxy/nftables-render.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { runCommand } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const services = lookupResource('', 'v1', 'services')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!

const ready = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

function deployment(name: string, replicas: number) {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }],
        },
      },
    },
  }
}

function service(name: string, spec: Record<string, unknown> = {}) {
  return { metadata: { name }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }], ...spec } }
}

/** An HTTP GET from the host; resolves with the echo JSON. */
function hostGet(ip: string, port: number): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port, path: '/', timeout: 3_000, agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => { try { resolve(JSON.parse(body)) } catch (e) { reject(e) } })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

for (const backend of ['nftables', 'userspace'] as const) t.test(`${backend} service proxy on real nodes`, async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, backend === 'nftables' ? 'sp' : 'su')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(async () => {
    // The agents delete their tables on stop; this is the safety net when a test failed half-way.
    for (const n of names) await removeServiceProxyTable(n).catch(() => undefined)
  })
  const nodes: TestNode[] = []
  for (const name of names) nodes.push(await startTestNode(t, c, { name, clusterCIDR: net.clusterCIDR, serviceProxy: { backend } }))
  const gateways = nodes.map((n) => n.agent.network!.gateway)
  if (backend === 'nftables') for (const n of names) t.equal((await runCommand('nft', ['list', 'table', 'ip', nftTableName(n)])).code, 0, `table ${nftTableName(n)} of ${n} exists`)

  await c.client.create(deploys, 'default', deployment('web', 3))
  await c.client.create(deploys, 'default', deployment('client', 1))
  const podsOf = async (app: string) => (await c.client.list(pods, 'default', { labelSelector: `app=${app}` })).items
  await eventually(async () => (await podsOf('web')).filter(ready).length === 3 && (await podsOf('client')).filter(ready).length === 1, { timeout: 120_000, what: 'web and client pods ready' })
  const webPods = new Set((await podsOf('web')).map((p) => p.metadata.name!))
  const client = (await podsOf('client'))[0]!
  const ip = async (name: string) => (await c.client.get(services, 'default', name)).spec.clusterIP as string
  const nodePort = async (name: string) => (await c.client.get(services, 'default', name)).spec.ports[0].nodePort as number

  /** `count` HTTP requests from the client pod, in one exec; the echo JSON of each that answered. */
  const fromPod = async (addr: string, port: number, count: number, from: KubeObject = client): Promise<any[]> => {
    const script = `for i in $(seq 1 ${count}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${addr} ${port}; echo; echo '<<END>>'; done`
    const r = await c.kubectl(['exec', from.metadata.name!, '--', 'sh', '-c', script], { allowFail: true, timeoutMs: 60_000 })
    return r.stdout.split('<<END>>').map((chunk) => chunk.slice(chunk.indexOf('{'), chunk.lastIndexOf('}') + 1)).filter(Boolean).map((s) => JSON.parse(s))
  }
  const endpointsReady = (svc: string, n: number) => eventually(async () => {
    const items = (await c.client.list(slices, 'default', { labelSelector: `kubernetes.io/service-name=${svc}` })).items
    return items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready).length === n
  }, { timeout: 60_000, what: `${n} ready endpoints of ${svc}` })

  await c.client.create(services, 'default', service('web'))
  await c.client.create(services, 'default', service('web-np', { type: 'NodePort' }))
  await c.client.create(services, 'default', service('web-sticky', { sessionAffinity: 'ClientIP' }))
  await c.client.create(services, 'default', service('web-local', { type: 'NodePort', externalTrafficPolicy: 'Local' }))
  for (const s of ['web', 'web-np', 'web-sticky', 'web-local']) await endpointsReady(s, 3)

  await t.test('the ClusterIP answers from every backend pod', async (t) => {
    const addr = await ip('web')
    const seen = await eventually(async () => {
      const got = new Set((await fromPod(addr, 80, 30)).map((j) => j.pod))
      return got.size === webPods.size ? got : undefined
    }, { timeout: 60_000, what: `every web pod answers on ${addr}` })
    t.same([...seen].sort(), [...webPods].sort())
  })

  await t.test('a backend pod reaches itself through the ClusterIP (hairpin, masqueraded) and the others with its own address', async (t) => {
    const addr = await ip('web')
    const self = (await podsOf('web')).find(ready)!
    const answers = await eventually(async () => {
      const got = await fromPod(addr, 80, 30, self)
      return new Set(got.map((j) => j.pod)).size === webPods.size ? got : undefined
    }, { timeout: 60_000, what: `every web pod answers ${self.metadata.name} on ${addr}` })
    const mine = answers.filter((j) => j.pod === self.metadata.name)
    const others = answers.filter((j) => j.pod !== self.metadata.name)
    if (backend === 'nftables') {
      t.ok(mine.every((j) => j.clientIP !== self.status.podIP), `hairpin is masqueraded (${mine[0]?.clientIP})`)
      t.ok(others.every((j) => j.clientIP === self.status.podIP), 'other backends see the pod address')
    } else t.ok(mine.length > 0, 'userspace: the pod itself answers too')
  })

  await t.test('the NodePort answers on every node address from the host', async (t) => {
    const port = await nodePort('web-np')
    for (const gw of gateways) {
      const j = await eventually(() => hostGet(gw, port).catch(() => undefined), { timeout: 30_000, what: `NodePort ${gw}:${port}` })
      t.ok(webPods.has(j.pod), `${gw}:${port} answered from ${j.pod}`)
    }
  })

  await t.test('sessionAffinity ClientIP: 20 connections reach one pod', async (t) => {
    const addr = await ip('web-sticky')
    const answers = await eventually(async () => { const a = await fromPod(addr, 80, 20); return a.length === 20 ? a : undefined }, { timeout: 60_000, what: '20 answers' })
    t.equal(new Set(answers.map((j) => j.pod)).size, 1, `all from ${answers[0].pod}`)
  })

  const sourceTitle = backend === 'nftables'
    ? 'externalTrafficPolicy Local keeps the client source address; Cluster masquerades it'
    : 'userspace: the backend sees the proxy, not the client, under either policy (the documented limit of a userspace proxy)'
  await t.test(sourceTitle, async (t) => {
    const other = gateways.find((g) => g !== client.status.hostIP) ?? gateways[0]!
    const local = await eventually(async () => (await fromPod(other, await nodePort('web-local'), 1))[0], { timeout: 30_000, what: 'eTP Local answer' })
    if (backend === 'nftables') t.equal(local.clientIP, client.status.podIP, 'the backend sees the client pod address')
    else t.not(local.clientIP, client.status.podIP, `a userspace proxy connects from its own address (${local.clientIP}); see dataplane/service-proxy/README.md`)
    const cluster = await eventually(async () => (await fromPod(other, await nodePort('web-np'), 1))[0], { timeout: 30_000, what: 'eTP Cluster answer' })
    t.not(cluster.clientIP, client.status.podIP, `Cluster policy: the backend sees ${cluster.clientIP}`)
  })

  await t.test('scaled to 0 the ClusterIP refuses connections; scaled back, traffic resumes', async (t) => {
    const addr = await ip('web')
    await c.client.patch(deploys, 'default', 'web', { spec: { replicas: 0 } }, 'application/merge-patch+json')
    const refused = await eventually(async () => {
      const r = await c.kubectl(['exec', client.metadata.name!, '--', 'sh', '-c', `nc -w 3 ${addr} 80 </dev/null; echo rc=$?`], { allowFail: true, timeoutMs: 30_000 })
      return /refused/i.test(r.stdout + r.stderr) ? r.stdout + r.stderr : undefined
    }, { timeout: 60_000, what: 'connection refused' })
    t.match(refused, /refused/i)
    await c.client.patch(deploys, 'default', 'web', { spec: { replicas: 3 } }, 'application/merge-patch+json')
    await endpointsReady('web', 3)
    const back = await eventually(async () => (await fromPod(addr, 80, 3)).length === 3, { timeout: 60_000, what: 'traffic resumes' })
    t.ok(back)
  })

  await t.test('a UDP Service answers through its ClusterIP', async (t) => {
    await c.client.create(services, 'default', service('web-udp', { ports: [{ name: 'echo', protocol: 'UDP', port: 53, targetPort: 9001 }] }))
    await endpointsReady('web-udp', 3)
    const addr = await ip('web-udp')
    const out = await eventually(async () => {
      // busybox nc has no UDP mode; the echo image's node has dgram.
      const js = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(String(m));process.exit(0)});s.send('udp-ping',53,'${addr}');setTimeout(()=>process.exit(2),2000)`
      const r = await c.kubectl(['exec', client.metadata.name!, '--', 'node', '-e', js], { allowFail: true, timeoutMs: 30_000 })
      return r.stdout.includes('udp-ping') ? r.stdout : undefined
    }, { timeout: 60_000, what: `UDP echo through ${addr}:53` })
    t.match(out, 'udp-ping')
  })

  await t.test('healthCheckNodePort: 200 on the node with a local endpoint, 503 elsewhere', async (t) => {
    await c.client.create(services, 'default', { metadata: { name: 'client-lb' }, spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { app: 'client' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
    const hc = (await c.client.get(services, 'default', 'client-lb')).spec.healthCheckNodePort as number
    t.ok(hc > 0, `healthCheckNodePort ${hc}`)
    await endpointsReady('client-lb', 1)
    const status = (addr: string) => new Promise<number>((resolve, reject) => {
      const req = request({ host: addr, port: hc, path: '/', timeout: 3_000, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end()
    })
    for (const n of nodes) {
      const want = n.name === client.spec.nodeName ? 200 : 503
      const gw = n.agent.network!.gateway
      const got = await eventually(async () => { const s = await status(gw).catch(() => 0); return s === want ? s : undefined }, { timeout: 30_000, what: `${gw}:${hc} answers ${want}` })
      t.equal(got, want, `${n.name} ${gw}:${hc}`)
    }
  })

  await t.test('the debug table lists the Services', async (t) => {
    const text = nodes[0]!.agent.serviceProxy!.debugText()
    t.match(text, /default\/web:http TCP\/80 /)
    t.match(text, /default\/web-np:http TCP\/80 \S+ nodePort=\d+/)
    const metrics = await nodes[0]!.agent.metrics.registry.metrics()
    t.match(metrics, /skiff_proxy_network_programming_duration_seconds_count [1-9]/, 'programming latency observed')
    t.match(metrics, /skiff_proxy_sync_duration_seconds_count [1-9]/)
    t.match(metrics, /skiff_proxy_rules_applied [1-9]/)
    t.match(metrics, /skiff_proxy_last_applied_generation [1-9]/)
  })
})
