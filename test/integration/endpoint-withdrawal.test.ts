// Issue 11, "zero-error endpoint removal without preStop sleeps", on a real
// control plane and two real agents (nftables service proxies, Docker):
//  - every node's service proxy reports the revision it applied, and
//    `kubectl get svc -o wide` shows "applied on n/n" reaching 2/2 after the
//    endpoints change;
//  - a deleted backend pod gets SIGTERM (Docker's kill event) only after every
//    node reported a revision at or above the slice change that took the pod
//    out, with no preStop hook;
//    `kubectl describe svc` says so too (a RoutingApplied Event);
//  - a serving node that never catches up (a Lease the test keeps fresh)
//    makes the wait run out after the configured timeout, with a Warning
//    Event on the pod, and the pod is stopped anyway; describe shows a
//    RoutingNotApplied Warning naming the node.

import t from 'tap'
import Docker from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { proxyAppliedAnnotation } from '../../controlplane/api/routing-applied.ts'
import { microTime } from '../../node/heartbeat.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { webTemplate } from '../harness/web-app.ts'

const pods = lookupResource('', 'v1', 'pods')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const services = lookupResource('', 'v1', 'services')!
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const events = lookupResource('', 'v1', 'events')!

const ready = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
const docker = new Docker()

t.test('endpoint withdrawal on real nodes', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'ew')
  const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR, routingWarnAfterMs: 3_000 } })
  t.teardown(async () => {
    for (const n of names) await removeServiceProxyTable(n).catch(() => undefined)
  })
  for (const name of names) await startTestNode(t, c, { name, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' }, endpointWithdrawalTimeoutMs: 3_000 })

  await c.client.create(deploys, 'default', { metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: webTemplate({ graceSeconds: 10 }) } } as KubeObject)
  await c.client.create(services, 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
  const webPods = async () => (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items
  const readyEndpoints = async () => (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=web' })).items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready !== false)
  const waitReady = (n: number) => eventually(async () => (await webPods()).filter(ready).length === n && (await readyEndpoints()).length === n, { timeout: 120_000, what: `${n} web pods ready and listed` })
  await waitReady(2)

  await t.test('kubectl get svc -o wide shows the Applied column reaching 2/2 after the endpoints change', async (t) => {
    await c.client.patch(deploys, 'default', 'web', { spec: { replicas: 3 } }, 'application/merge-patch+json')
    await waitReady(3)
    const row = await eventually(async () => {
      const r = await c.kubectl(['get', 'svc', 'web', '-o', 'wide'])
      const [head, line] = r.stdout.trim().split('\n')
      const col = head!.split(/\s{2,}/).indexOf('APPLIED')
      const cell = line!.split(/\s{2,}/)[col]
      return cell === '2/2' ? { head, line } : undefined
    }, { timeout: 30_000, what: 'APPLIED 2/2' })
    t.match(row.head, /APPLIED/, 'the wide table has the column')
    // The cell is computed from the reports, not assumed: both node Leases carry a revision >= the newest slice.
    const newest = Math.max(...(await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=web' })).items.map((s) => Number(s.metadata.resourceVersion)))
    for (const n of names) {
      const l = await c.client.get(leases, 'kube-node-lease', n)
      t.ok(Number(l.metadata.annotations?.[proxyAppliedAnnotation]) >= newest, `${n} reports a revision >= ${newest}`)
    }
    // An earlier change may have been announced first: wait for the announcement of this one.
    const described = await eventually(async () => {
      const r = await c.kubectl(['describe', 'svc', 'web'])
      const m = /RoutingApplied.*applied on 2\/2 nodes: revision (\d+)/.exec(r.stdout)
      return m && Number(m[1]) >= newest && r.stdout
    }, { timeout: 30_000, what: `kubectl describe svc web: RoutingApplied 2/2 for revision ${newest} or later` })
    const said = Number(/applied on 2\/2 nodes: revision (\d+)/.exec(described)![1])
    t.ok(said >= newest, `kubectl describe svc web says "applied on 2/2 nodes" for revision ${said} (the newest slice is ${newest})`)
  })

  await t.test('a deleted pod gets SIGTERM only after every node applied its removal', async (t) => {
    const victim = (await webPods()).find(ready)!
    const ip = victim.status.podIP as string
    const containerId = String(victim.status.containerStatuses[0].containerID).replace(/^docker:\/\//, '')
    // Follow the slices and the node Leases from now on, as the agents do.
    const rv = (await c.client.list(slices, 'default')).metadata.resourceVersion
    const leaseRv = (await c.client.list(leases, 'kube-node-lease')).metadata.resourceVersion
    let removedAt: number | undefined
    const firstApplied = new Map<string, number>()
    const seenLeases: KubeObject[] = []
    const w1 = c.client.watch('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', { resourceVersion: rv }, (ev) => {
      const eps = (ev.object as KubeObject).endpoints ?? []
      const listedReady = eps.some((e: any) => e.addresses?.includes(ip) && e.conditions?.ready !== false)
      if (removedAt === undefined && !listedReady) removedAt = Number((ev.object as KubeObject).metadata.resourceVersion)
    }, () => {})
    const w2 = c.client.watch('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', { resourceVersion: leaseRv }, (ev) => {
      seenLeases.push(ev.object as KubeObject)
    }, () => {})
    t.teardown(() => (w1.stop(), w2.stop()))
    const since = Math.floor(Date.now() / 1000) - 1
    await c.client.delete(pods, 'default', victim.metadata.name!)
    await eventually(async () => !(await webPods()).some((p) => p.metadata.uid === victim.metadata.uid), { timeout: 60_000, what: 'the victim gone' })
    t.ok(removedAt, `the slice change that took ${ip} out was seen (revision ${removedAt})`)
    for (const l of seenLeases) {
      const applied = Number(l.metadata.annotations?.[proxyAppliedAnnotation] ?? 0)
      const node = l.metadata.name!
      if (applied >= removedAt! && !firstApplied.has(node)) firstApplied.set(node, Date.parse(l.spec.renewTime))
    }
    t.same([...firstApplied.keys()].sort(), [...names].sort(), 'every node reported the removal')
    const killed = await dockerKillTime(containerId, since)
    t.ok(killed, 'Docker recorded the SIGTERM')
    for (const [node, at] of firstApplied) t.ok(killed! >= at, `SIGTERM (${new Date(killed!).toISOString()}) came after ${node} applied the removal (${new Date(at).toISOString()})`)
    const warned = (await c.client.list(events, 'default')).items.filter((e) => e.involvedObject?.uid === victim.metadata.uid && e.reason === 'EndpointWithdrawalTimeout')
    t.equal(warned.length, 0, 'no timeout Event')
    await waitReady(3)
  })

  await t.test('a node that never catches up: the wait runs out, a Warning Event, the pod is stopped anyway', async (t) => {
    // A serving node whose proxy reports revision 1 forever: a Lease kept fresh by the test.
    const ghost = {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: 'ghost', namespace: 'kube-node-lease', annotations: { [proxyAppliedAnnotation]: '1' } },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 40, renewTime: microTime(Date.now()) },
    }
    await c.client.create(leases, 'kube-node-lease', ghost)
    t.teardown(() => c.client.delete(leases, 'kube-node-lease', 'ghost').catch(() => undefined))
    const row = await eventually(async () => {
      const r = await c.kubectl(['get', 'svc', 'web', '-o', 'wide'])
      return /\s2\/3(\s|$)/.test(r.stdout) ? r.stdout : undefined
    }, { timeout: 30_000, what: 'APPLIED 2/3 with the ghost' })
    t.match(row, /2\/3/, 'the ghost counts as serving and behind')
    const victim = (await webPods()).find(ready)!
    const started = Date.now()
    await c.client.delete(pods, 'default', victim.metadata.name!)
    const ev = await eventually(async () => (await c.client.list(events, 'default')).items.find((e) => e.involvedObject?.uid === victim.metadata.uid && e.reason === 'EndpointWithdrawalTimeout'), { timeout: 60_000, what: 'the timeout Event' })
    t.equal(ev.type, 'Warning')
    t.match(ev.message, /service-proxy on ghost \(at 1\)/, 'the Event names the node that was behind')
    await eventually(async () => !(await webPods()).some((p) => p.metadata.uid === victim.metadata.uid), { timeout: 60_000, what: 'the victim gone' })
    t.ok(Date.now() - started >= 3_000, 'the pod waited for the configured timeout before it stopped')
    const described = await eventually(async () => {
      const r = await c.kubectl(['describe', 'svc', 'web'])
      return /RoutingNotApplied/.test(r.stdout) && r.stdout
    }, { timeout: 30_000, what: 'kubectl describe svc web: RoutingNotApplied' })
    t.match(described, /Warning\s+RoutingNotApplied.*applied on 2\/3 nodes after \d+ s; not yet: ghost \(service-proxy at 1\)/, 'describe names the node that is behind')
    await c.client.delete(leases, 'kube-node-lease', 'ghost')
  })
})

/** When Docker sent the container its first signal (docker stop: SIGTERM), from the Engine's event log. */
async function dockerKillTime(id: string, since: number): Promise<number | undefined> {
  const stream = (await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000) + 1, filters: JSON.stringify({ container: [id], event: ['kill'] }) as any })) as NodeJS.ReadableStream
  let text = ''
  for await (const chunk of stream) text += chunk.toString()
  const first = text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).sort((a, b) => a.timeNano - b.timeNano)[0]
  return first ? Math.floor(first.timeNano / 1e6) : undefined
}
