// A Service without a selector plus hand-written v1 Endpoints carries
// traffic: the EndpointSlice mirroring controller turns the Endpoints into
// a slice, and the service proxy of a real node sends a pod's connection to
// the ClusterIP on to the pod the Endpoints name. One real control plane
// with controllers, one real agent on Docker, real pods.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const services = lookupResource('', 'v1', 'services')!
const endpointsInfo = lookupResource('', 'v1', 'endpoints')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const mirroredBy = 'endpointslicemirroring-controller.k8s.io'

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

function pod(name: string, labels: Record<string, string>) {
  return {
    metadata: { name, labels },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }] }] },
  }
}

t.test('selectorless Service with hand-written Endpoints', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(1, 'mir')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(async () => {
    for (const n of names) await removeServiceProxyTable(n).catch(() => undefined)
  })
  await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' } })

  await c.client.create(pods, 'default', pod('backend', { role: 'backend' }))
  await c.client.create(pods, 'default', pod('client', { role: 'client' }))
  const [backend, client] = await eventually(async () => {
    const list = (await c.client.list(pods, 'default')).items
    const b = list.find((p) => p.metadata.name === 'backend')
    const cl = list.find((p) => p.metadata.name === 'client')
    return b && cl && ready(b) && ready(cl) && b.status.podIP ? [b, cl] : undefined
  }, { timeout: 120_000, what: 'backend and client pods ready' })

  await c.client.create(services, 'default', { metadata: { name: 'manual' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } })
  const ep = await c.client.create(endpointsInfo, 'default', {
    metadata: { name: 'manual', labels: { team: 'a' }, annotations: { note: 'hand-written', 'endpoints.kubernetes.io/last-change-trigger-time': '2026-12-01T00:00:00Z' } },
    subsets: [{ addresses: [{ ip: backend.status.podIP, targetRef: { kind: 'Pod', namespace: 'default', name: 'backend', uid: backend.metadata.uid } }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }],
  })

  await t.test('the Endpoints are mirrored into an EndpointSlice', async (t) => {
    const slice = await eventually(async () => (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=manual' })).items[0], { timeout: 30_000, what: 'a mirrored slice' })
    t.equal(slice.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], mirroredBy)
    t.equal(slice.metadata.labels?.team, 'a', 'Endpoints labels copied')
    t.same(slice.metadata.annotations, { note: 'hand-written' }, 'annotations copied, but the trigger time')
    t.same(slice.metadata.ownerReferences?.map((o: any) => `${o.kind}/${o.name}/${o.uid}`), [`Endpoints/manual/${ep.metadata.uid}`])
    t.equal(slice.addressType, 'IPv4')
    t.same(slice.endpoints.map((e: any) => [e.addresses[0], e.conditions.ready]), [[backend.status.podIP, true]])
    t.same(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }])
  })

  await t.test('traffic to the ClusterIP reaches the pod the Endpoints name', async (t) => {
    const ip = (await c.client.get(services, 'default', 'manual')).spec.clusterIP as string
    const answer = await eventually(async () => {
      const r = await c.kubectl(['exec', client.metadata.name!, '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 80`], { allowFail: true, timeoutMs: 30_000 })
      const body = r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1)
      return body ? JSON.parse(body) : undefined
    }, { timeout: 60_000, what: `an answer on ${ip}:80` })
    t.equal(answer.pod, 'backend')
  })

  await t.test('Skiff\'s own Endpoints of a Service with a selector are not mirrored', async (t) => {
    await c.client.create(services, 'default', { metadata: { name: 'selected' }, spec: { selector: { role: 'backend' }, ports: [{ port: 80, targetPort: 8080 }] } })
    await eventually(async () => (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=selected' })).items.some((s) => (s.endpoints ?? []).length === 1), { timeout: 30_000, what: 'the selected Service has its slice' })
    // Endpoints written after the slice; once the selected Service is in sync, a sync of 'manual' proves the mirror has run since.
    const current = await c.client.get(endpointsInfo, 'default', 'manual')
    await c.client.update(endpointsInfo, { ...current, metadata: { ...current.metadata, labels: { team: 'b' } } })
    await eventually(async () => (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=manual,team=b' })).items.length === 1, { timeout: 30_000, what: 'the label change mirrored' })
    const mirroredSelected = (await c.client.list(slices, 'default', { labelSelector: `kubernetes.io/service-name=selected,endpointslice.kubernetes.io/managed-by=${mirroredBy}` })).items
    t.same(mirroredSelected, [], 'no mirrored slice for the selected Service')
    t.equal((await c.client.get(endpointsInfo, 'default', 'selected')).metadata.labels?.['endpointslice.kubernetes.io/skip-mirror'], 'true')
  })

  await t.test('deleting the Endpoints removes the mirrored slice', async (t) => {
    await c.client.delete(endpointsInfo, 'default', 'manual')
    await eventually(async () => (await c.client.list(slices, 'default', { labelSelector: `kubernetes.io/service-name=manual` })).items.length === 0, { timeout: 30_000, what: 'the mirrored slice gone' })
    t.pass('gone')
  })
})
