// Issue 4 end to end on real nodes: from inside a pod, Service names resolve
// through the node's cluster DNS (search path, ndots) and `http://web/`
// reaches every backend through the ClusterIP; from the host, dig against
// 10.96.0.10 answers the cluster zone and a LoadBalancer address answers.

import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ensureImages } from '../../node/images/build.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { kubeletClientTLS, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const run = promisify(execFile)
const pods = lookupResource('', 'v1', 'pods')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const svcs = lookupResource('', 'v1', 'services')!

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

t.test('service networking', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const lbPool = net.clusterCIDR.replace(/\.0\.0\/16$/, '.250.0/28')
  const names = testNodeNames(2, 'svc')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR, loadBalancerPool: [lbPool] } })
  const agents: TestNode[] = []
  for (const name of names) agents.push(await startTestNode(t, c, { name, clusterCIDR: net.clusterCIDR }))
  await c.client.create(deploys, 'default', {
    metadata: { name: 'web' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{
            name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }, { name: 'tcp-echo', containerPort: 9000 }],
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
          }],
        },
      },
    },
  })
  const web = await c.client.create(svcs, 'default', {
    metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'echo', port: 7000, targetPort: 'tcp-echo' }] },
  })
  const lb = await c.client.create(svcs, 'default', { metadata: { name: 'web-lb' }, spec: { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
  await eventually(async () => (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items.filter(ready).length === 3, { timeout: 90_000, what: '3 ready web pods' })
  const client = (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items[0]!

  await t.test('names resolve in a pod, and http://web/ reaches every backend', async (t) => {
    // The libc resolver in the pod (search path, ndots:5) resolves each form; the answer comes through the ClusterIP.
    for (const name of ['web', 'web.default', 'web.default.svc.cluster.local']) {
      const r = await eventually(async () => {
        const x = await c.kubectl(['exec', client.metadata.name!, '--', 'sh', '-c', `printf 'GET /by-name HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${name} 80`], { allowFail: true })
        return x.stdout.includes('"path":"/by-name"') ? x : undefined
      }, { timeout: 30_000, what: `http://${name}/ from the pod` })
      t.match(r.stdout, '"pod"', `http://${name}/ answers`)
    }
    const ns = await c.kubectl(['exec', client.metadata.name!, '--', 'nslookup', 'web.default.svc.cluster.local'], { allowFail: true })
    t.match(ns.stdout, `Address: ${web.spec.clusterIP}`, 'nslookup shows the ClusterIP')
    const seen = new Set<string>()
    await eventually(async () => {
      const x = await c.kubectl(['exec', client.metadata.name!, '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 80`], { allowFail: true })
      const m = /"pod":\s*"([^"]+)"/.exec(x.stdout)
      if (m) seen.add(m[1]!)
      return seen.size === 3
    }, { timeout: 60_000, interval: 10, what: `every backend answering (seen ${[...seen].join(', ')})` })
    t.equal(seen.size, 3, 'all three backends answered through http://web/, the client pod itself included (hairpin)')
  })

  await t.test('a multi-port Service with named target ports reaches the right container port', async (t) => {
    const r = await eventually(async () => {
      const x = await c.kubectl(['exec', client.metadata.name!, '--', 'sh', '-c', `echo multi-port | nc -w 2 ${web.spec.clusterIP} 7000`], { allowFail: true })
      return x.stdout.includes('multi-port') ? x : undefined
    }, { timeout: 30_000, what: 'the TCP echo port through port 7000' })
    t.match(r.stdout, 'multi-port', 'port 7000 reaches the tcp-echo container port')
  })

  await t.test('dig against the cluster DNS address from the host', async (t) => {
    const { stdout } = await run('dig', ['@10.96.0.10', 'web.default.svc.cluster.local', 'A', '+short', '+time=2', '+tries=2'])
    t.equal(stdout.trim(), web.spec.clusterIP)
    const nx = await run('dig', ['@10.96.0.10', 'nope.default.svc.cluster.local', 'A', '+time=2', '+tries=2'])
    t.match(nx.stdout, /status: NXDOMAIN/)
  })

  await t.test('the LoadBalancer address answers from the host', async (t) => {
    const ip = await eventually(async () => (await c.client.get(svcs, 'default', 'web-lb')).status?.loadBalancer?.ingress?.[0]?.ip, { timeout: 30_000, what: 'an LB address' })
    t.ok(ip.startsWith(lbPool.split('.').slice(0, 3).join('.')), `${ip} from ${lbPool}`)
    const body = await eventually(async () => {
      const r = await run('curl', ['-s', '--max-time', '3', `http://${ip}/`]).catch(() => undefined)
      return r?.stdout.includes('"pod"') ? r.stdout : undefined
    }, { timeout: 30_000, what: `http://${ip}/` })
    t.match(body, /"path":\s*"\/"/)
    void lb
  })

  await t.test('ExternalName -> ClusterIP -> NodePort -> ExternalName: allocations and DNS follow', async (t) => {
    const dig = async (type: string) => (await run('dig', ['@10.96.0.10', 'flip.default.svc.cluster.local', type, '+short', '+time=2', '+tries=2'])).stdout.trim()
    let svc = await c.client.create(svcs, 'default', { metadata: { name: 'flip' }, spec: { type: 'ExternalName', externalName: 'example.com' } })
    t.notOk(svc.spec.clusterIP, 'ExternalName holds no ClusterIP')
    await eventually(async () => (await dig('CNAME')) === 'example.com.', { timeout: 15_000, what: 'CNAME example.com.' })
    svc = await c.client.update(svcs, { ...svc, spec: { type: 'ClusterIP', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }] } })
    const ip = svc.spec.clusterIP
    t.match(ip, /^10\./, 'a ClusterIP is allocated')
    await eventually(async () => (await dig('A')) === ip, { timeout: 15_000, what: `A ${ip}` })
    svc = await c.client.update(svcs, { ...svc, spec: { ...svc.spec, type: 'NodePort' } })
    t.equal(svc.spec.clusterIP, ip, 'the ClusterIP is kept')
    const nodePort = svc.spec.ports[0].nodePort
    t.ok(nodePort >= 30000, `NodePort ${nodePort} allocated`)
    svc = await c.client.update(svcs, { ...svc, spec: { type: 'ExternalName', externalName: 'example.org', ports: svc.spec.ports.map(({ nodePort: _, ...p }: any) => p) } })
    t.notOk(svc.spec.clusterIP, 'ClusterIP released')
    await eventually(async () => (await dig('CNAME')) === 'example.org.', { timeout: 15_000, what: 'CNAME example.org.' })
    const reuse = await c.client.create(svcs, 'default', { metadata: { name: 'reuse' }, spec: { clusterIP: ip, type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http', nodePort }] } })
    t.equal(reuse.spec.clusterIP, ip, 'the released ClusterIP can be taken again')
    t.equal(reuse.spec.ports[0].nodePort, nodePort, 'the released NodePort can be taken again')
  })

  await t.test('each agent serves its metrics and the service-proxy table', async (t) => {
    const { request } = await import('node:https')
    const tls = await kubeletClientTLS(c)
    const node = await c.client.get(lookupResource('', 'v1', 'nodes')!, undefined, names[0]!)
    const ip = node.status.addresses.find((a: any) => a.type === 'InternalIP').address
    const port = node.status.daemonEndpoints.kubeletEndpoint.Port
    const get = (path: string) => new Promise<string>((resolve, reject) => {
      // As the apiserver calls it: its client certificate, the kubelet's certificate verified against the cluster CA.
      const req = request({ host: ip, port, path, ...tls }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve(body))
      })
      req.on('error', reject)
      req.end()
    })
    t.match(await get('/metrics'), 'skiff_proxy_sync_duration_seconds', 'Prometheus metrics')
    t.match(await get('/debug/service-proxy'), 'default/web', 'the current table')
  })

  await t.test('killing a node agent keeps established service traffic; a restart resynchronises', async (t) => {
    const { createConnection } = await import('node:net')
    const sock = createConnection({ host: web.spec.clusterIP, port: 7000 })
    t.teardown(() => sock.destroy())
    let got = ''
    sock.on('data', (d) => (got += d.toString()))
    sock.write('before\n')
    await eventually(() => got.includes('before'), { timeout: 10_000, what: 'echo before the restart' })
    const node = agents[0]!
    await node.agent.stop({ removePods: false })
    sock.write('during\n')
    await eventually(() => got.includes('during'), { timeout: 10_000, what: 'echo while the agent is down' })
    const late = await c.client.create(svcs, 'default', { metadata: { name: 'late' }, spec: { selector: { app: 'web' }, ports: [{ port: 8081, targetPort: 'http' }] } })
    await node.restart()
    sock.write('after\n')
    await eventually(() => got.includes('after'), { timeout: 10_000, what: 'echo after the restart' })
    const body = await eventually(async () => {
      const r = await run('curl', ['-s', '--max-time', '2', `http://${late.spec.clusterIP}:8081/`]).catch(() => undefined)
      return r?.stdout.includes('"pod"') ? r.stdout : undefined
    }, { timeout: 30_000, what: 'a Service created while the agent was down to answer' })
    t.match(body, '"pod"', 'resynchronised')
    t.pass('the established connection kept flowing')
  })
})
