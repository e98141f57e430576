// StatefulSet pods on a real node (in-process agent, real Docker Engine) with
// the whole control plane (scheduler, StatefulSet and EndpointSlice
// controllers): the pods start in ordinal order, each after the previous is
// Ready; a headless Service gives each a stable name, so from another pod
// `web-1.web.<ns>.svc.cluster.local` resolves (through the node's cluster
// DNS) to web-1's pod IP, and web-1.web reaches web-1 through the search
// path; and `hostname` inside web-1 prints web-1. Each ordinal gets its own
// claim from the volumeClaimTemplate (the default local-path class, bound on
// the pod's node): a file web-1 writes is still there after web-1 is deleted
// and recreated; a rolling update with partition 2 updates only web-2; and
// scaling to 1 keeps the claims of ordinals 1 and 2.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { ensureImages } from '../../node/images/build.ts'
import { silentLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const svcs = lookupResource('', 'v1', 'services')!
const stss = lookupResource('apps', 'v1', 'statefulsets')!
const namespaces = lookupResource('', 'v1', 'namespaces')!
const pvcs = lookupResource('', 'v1', 'persistentvolumeclaims')!
const ns = 'stateful'

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

t.test('statefulset pods: ordered start, stable DNS names, hostnames', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const [name] = testNodeNames(1, 'sts')
  const c = await startTestCluster(t, { identities: nodeIdentities([name!]), controllers: { clusterCIDR: net.clusterCIDR } })
  await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR })
  await c.client.create(namespaces, undefined, { metadata: { name: ns } })

  // Pods as they are added, with the pods Ready at that moment.
  const inf = new Informer({ client: c.client, info: pods, logger: silentLogger(), namespace: ns, labelSelector: 'app=web' })
  const created: Array<{ name: string; ready: string[] }> = []
  inf.addHandlers({ onAdd: (p) => created.push({ name: p.metadata.name!, ready: inf.list().filter(ready).map((x) => x.metadata.name!).sort() }) })
  await inf.start()
  t.teardown(() => inf.stop())

  await c.client.create(svcs, ns, { metadata: { name: 'web' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } })
  await c.client.create(stss, ns, {
    metadata: { name: 'web' },
    spec: {
      replicas: 3,
      serviceName: 'web',
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 }, volumeMounts: [{ name: 'data', mountPath: '/data' }] }] },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Mi' } } } }],
    },
  })
  await c.client.create(pods, ns, { metadata: { name: 'client' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'skiff/echo:local' }] } })
  await c.kubectl(['rollout', 'status', 'sts/web', '-n', ns, '--timeout=90s'], { timeoutMs: 120_000 })

  await t.test('pods start in ordinal order, each after the previous is Ready', async (t) => {
    t.same(created.map((e) => e.name), ['web-0', 'web-1', 'web-2'])
    t.same(created.map((e) => e.ready), [[], ['web-0'], ['web-0', 'web-1']])
  })

  const web1 = await c.client.get(pods, ns, 'web-1')
  await t.test('web-1.web.<ns>.svc.cluster.local resolves to web-1 from another pod', async (t) => {
    t.ok(web1.status?.podIP, 'web-1 has an IP')
    await eventually(async () => ready(await c.client.get(pods, ns, 'client')), { timeout: 60_000, what: 'client pod ready' })
    const fqdn = `web-1.web.${ns}.svc.cluster.local`
    const r = await eventually(async () => {
      const x = await c.kubectl(['exec', 'client', '-n', ns, '--', 'nslookup', fqdn], { allowFail: true })
      return x.stdout.includes(`Address: ${web1.status.podIP}`) ? x : undefined
    }, { timeout: 30_000, what: `nslookup ${fqdn}` })
    t.match(r.stdout, new RegExp(`Name:\\s+${fqdn.replaceAll('.', '\\.')}`))
    const others = (await c.client.list(pods, ns, { labelSelector: 'app=web' })).items.filter((p) => p.metadata.name !== 'web-1').map((p) => p.status.podIP)
    for (const ip of others) t.notMatch(r.stdout, `Address: ${ip}\n`, 'only web-1 answers')
    // busybox nslookup ignores the search path; nc uses the resolver, so web-1.web goes through `search <ns>.svc.cluster.local`.
    const short = await eventually(async () => {
      const x = await c.kubectl(['exec', 'client', '-n', ns, '--', 'sh', '-c', `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web-1.web 8080`], { allowFail: true })
      return x.stdout.includes('200') ? x : undefined
    }, { timeout: 30_000, what: 'http://web-1.web:8080/hostname' })
    t.match(short.stdout, /\r?\n\r?\nweb-1\s*$/, 'web-1.web reaches web-1, whose server reports hostname web-1')
  })

  await t.test('hostname in web-1 prints web-1', async (t) => {
    const r = await c.kubectl(['exec', 'web-1', '-n', ns, '--', 'hostname'])
    t.equal(r.stdout.trim(), 'web-1')
  })

  await t.test('a file web-1 wrote is still there after web-1 is deleted and recreated', async (t) => {
    await c.kubectl(['exec', 'web-1', '-n', ns, '--', 'sh', '-c', 'echo kept-by-web-1 > /data/f'])
    const before = await c.client.get(pods, ns, 'web-1')
    await c.kubectl(['delete', 'pod', 'web-1', '-n', ns, '--wait=false'])
    const after = await eventually(async () => {
      const p = await c.client.get(pods, ns, 'web-1').catch(() => undefined)
      return p && p.metadata.uid !== before.metadata.uid && ready(p) ? p : undefined
    }, { timeout: 90_000, what: 'web-1 recreated and Ready' })
    t.not(after.metadata.uid, before.metadata.uid, 'a new pod')
    const r = await c.kubectl(['exec', 'web-1', '-n', ns, '--', 'cat', '/data/f'])
    t.equal(r.stdout.trim(), 'kept-by-web-1')
    const claim = await c.client.get(pvcs, ns, 'data-web-1')
    t.equal(claim.status?.phase, 'Bound', 'data-web-1 is bound')
  })

  await t.test('a rolling update with partition 2 updates only web-2', async (t) => {
    const old = (await c.client.get(stss, ns, 'web')).status.currentRevision as string
    await c.kubectl(['patch', 'sts', 'web', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } }, template: { metadata: { annotations: { 'example.com/rev': '2' } } } } })])
    const sts = await eventually(async () => {
      const s = await c.client.get(stss, ns, 'web')
      return s.status?.updateRevision !== old && s.status?.updatedReplicas === 1 && s.status?.readyReplicas === 3 ? s : undefined
    }, { timeout: 90_000, what: 'web-2 updated and Ready' })
    const rev = async (n: string) => (await c.client.get(pods, ns, n)).metadata.labels?.['controller-revision-hash']
    t.equal(await rev('web-2'), sts.status.updateRevision, 'web-2 runs the new revision')
    t.equal(await rev('web-1'), old, 'web-1 keeps the old revision')
    t.equal(await rev('web-0'), old, 'web-0 keeps the old revision')
  })

  await t.test('scaling to 1 keeps the claims of ordinals 1 and 2', async (t) => {
    await c.kubectl(['scale', 'sts', 'web', '-n', ns, '--replicas=1'])
    await eventually(async () => {
      const left = (await c.client.list(pods, ns, { labelSelector: 'app=web' })).items.map((p) => p.metadata.name)
      return left.length === 1 && left[0] === 'web-0' ? true : undefined
    }, { timeout: 60_000, what: 'only web-0 left' })
    const claims = (await c.client.list(pvcs, ns)).items.map((x) => `${x.metadata.name}:${x.status?.phase}`).sort()
    t.same(claims, ['data-web-0:Bound', 'data-web-1:Bound', 'data-web-2:Bound'])
  })
})
