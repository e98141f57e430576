// The controller manager against the real apiserver (no agents): leader
// election between two managers, EndpointSlices and Endpoints following pod
// readiness and termination (pod status written by the test, as an agent
// would), node IPAM, and node lifecycle with short timeouts.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { resourcePath, type ApiClient } from '../../controlplane/client/client.ts'
import { EndpointSliceController } from '../../controlplane/controllers/endpointslice.ts'
import { ControllerManager } from '../../controlplane/controllers/manager.ts'
import { microTime } from '../../controlplane/controllers/leader.ts'
import { NodeIpamController } from '../../controlplane/controllers/node-ipam.ts'
import { NodeLifecycleController } from '../../controlplane/controllers/node-lifecycle.ts'
import type { Controller, ControllerContext } from '../../controlplane/controllers/types.ts'
import { createLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const info = (g: string, v: string, r: string) => lookupResource(g, v, r)!
const nss = info('', 'v1', 'namespaces')
const pods = info('', 'v1', 'pods')
const services = info('', 'v1', 'services')
const nodes = info('', 'v1', 'nodes')
const leases = info('coordination.k8s.io', 'v1', 'leases')
const slices = info('discovery.k8s.io', 'v1', 'endpointslices')
const endpoints = info('', 'v1', 'endpoints')
const events = info('', 'v1', 'events')

const suffix = randomBytes(3).toString('hex')
const controllerUser = 'system:kube-controller-manager'
const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : undefined

/** A controller that only counts its starts and stops. */
class CountingController implements Controller {
  readonly name = 'counting'
  running = false
  starts = 0
  stops = 0
  async start(_ctx: ControllerContext): Promise<void> {
    this.running = true
    this.starts++
  }
  async stop(): Promise<void> {
    this.running = false
    this.stops++
  }
}

async function setPodStatus(client: ApiClient, ns: string, name: string, o: { ip: string; ready: boolean }): Promise<void> {
  const status = { phase: 'Running', podIP: o.ip, podIPs: [{ ip: o.ip }], conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }] }
  await client.patch(pods, ns, name, { status }, 'application/merge-patch+json', 'status')
}

function podManifest(name: string, o: { node: string; labels?: Record<string, string>; port?: number }): KubeObject {
  return {
    metadata: { name, labels: o.labels ?? { app: 'web' } },
    spec: { nodeName: o.node, terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: o.port ?? 8080 }] }] },
  }
}

const readyOf = (o: KubeObject) => (o.status?.conditions ?? []).find((c: any) => c.type === 'Ready')?.status

t.test('controller manager', async (t) => {
  const c = await startTestCluster(t, { identities: [{ user: controllerUser, groups: ['system:masters'] }] })
  const client = c.clientFor(c.tokens.get(controllerUser)!)

  await t.test('two managers: one leads; stopping it hands over', async (t) => {
    const election = { leaseName: `test-election-${suffix}`, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 300 }
    const ctrl = [new CountingController(), new CountingController()]
    const managers = ctrl.map((x, i) => new ControllerManager({ client, logger, controllers: [x], identity: `m${i}-${suffix}`, election }))
    t.teardown(() => Promise.all(managers.map((m) => m.stop())))
    await Promise.all(managers.map((m) => m.start()))
    const leader = await eventually(() => managers.find((m) => m.isLeader), { timeout: 30_000, what: 'a leader' })
    const li = managers.indexOf(leader)
    await eventually(() => ctrl[li]!.running, { timeout: 30_000, what: "leader's controllers running" })
    t.notOk(managers[1 - li]!.isLeader, 'only one leads')
    t.equal(ctrl[1 - li]!.starts, 0, "the other's controllers never started")
    const lease = await c.client.get(leases, 'kube-system', election.leaseName)
    t.equal(lease.spec.holderIdentity, leader.identity, 'the Lease names the leader')

    await leader.stop()
    t.equal(ctrl[li]!.stops, 1, "stopping the leader stopped its controllers")
    await eventually(() => managers[1 - li]!.isLeader && ctrl[1 - li]!.running, { timeout: election.leaseDurationMs, what: 'the other manager takes over within the lease duration' })
    const after = await c.client.get(leases, 'kube-system', election.leaseName)
    t.equal(after.spec.holderIdentity, managers[1 - li]!.identity)
    t.ok(after.spec.leaseTransitions >= 1, 'a transition was counted')

    // Someone else writes the Lease (as a partitioned old leader's successor would): stop leading at once.
    const next = managers[1 - li]!
    await c.client.update(leases, { ...after, spec: { ...after.spec, holderIdentity: 'intruder', renewTime: microTime(Date.now()) } })
    await eventually(() => !next.isLeader && !ctrl[1 - li]!.running, { timeout: 30_000, what: 'the leader notices the lost Lease and stops its controllers' })
    t.pass('lost the Lease: controllers stopped')
  })

  // The real controllers, with short node timeouts.
  const manager = new ControllerManager({
    client,
    logger,
    controllers: [new EndpointSliceController(), new NodeIpamController(), new NodeLifecycleController()],
    identity: `cm-${suffix}`,
    config: { nodeMonitorGracePeriodMs: 2_000, podEvictionTimeoutMs: 4_000, nodeMonitorPeriodMs: 300 },
    election: { leaseName: `cm-${suffix}`, retryPeriodMs: 300 },
  })
  t.teardown(() => manager.stop())
  await manager.start()
  await eventually(() => manager.isLeader, { timeout: 30_000, what: 'manager leads' })

  await t.test('EndpointSlices and Endpoints follow pods', async (t) => {
    const ns = `ep-${suffix}`
    await c.client.create(nss, undefined, { metadata: { name: ns } })
    await c.client.create(services, ns, { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
    await c.client.create(pods, ns, podManifest('a', { node: 'ghost', port: 8080 }))
    await c.client.create(pods, ns, podManifest('b', { node: 'ghost', port: 9090 }))
    await c.client.create(pods, ns, podManifest('other', { node: 'ghost', labels: { app: 'db' } }))
    await setPodStatus(c.client, ns, 'a', { ip: '10.244.50.1', ready: true })
    await setPodStatus(c.client, ns, 'b', { ip: '10.244.50.2', ready: true })
    await setPodStatus(c.client, ns, 'other', { ip: '10.244.50.3', ready: true })

    /** `ip:port ready/serving/terminating` of every endpoint of the Service's slices. */
    const sliceView = async () => {
      const list = await c.client.list(slices, ns, { labelSelector: 'kubernetes.io/service-name=web' })
      return list.items
        .flatMap((s: any) => (s.endpoints ?? []).map((e: any) => `${e.addresses[0]}:${s.ports[0]?.port} ${+e.conditions.ready}${+e.conditions.serving}${+e.conditions.terminating}`))
        .sort()
        .join(', ')
    }
    const expectSlices = (want: string, what: string) => eventually(async () => (await sliceView()) === want, { timeout: 30_000, what }).then(() => t.pass(what))

    await expectSlices('10.244.50.1:8080 110, 10.244.50.2:9090 110', 'both ready pods listed, named port resolved per pod')
    const list = await c.client.list(slices, ns, { labelSelector: 'kubernetes.io/service-name=web' })
    const s0 = list.items[0]!
    t.equal(s0.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io')
    t.match(s0.metadata.name, /^web-[a-z0-9]{5}$/)
    t.equal(s0.metadata.ownerReferences?.[0]?.kind, 'Service')

    const getSlices = await c.kubectl(['get', 'endpointslices', '-n', ns])
    t.match(getSlices.stdout, /web-\w{5}\s+IPv4\s+8080\s+10\.244\.50\.1/, 'kubectl get endpointslices')
    const ep = await eventually(async () => {
      const r = await c.kubectl(['get', 'ep', 'web', '-n', ns])
      return r.stdout.includes('10.244.50.1:8080') && r.stdout.includes('10.244.50.2:9090') && r.stdout
    }, { timeout: 30_000, what: 'kubectl get ep shows both' })
    t.match(ep, /web\s+10\.244\.50\.1:8080,10\.244\.50\.2:9090/, 'kubectl get ep')
    const described = await c.kubectl(['describe', 'svc', 'web', '-n', ns])
    // kubectl 1.32 describes from the EndpointSlices, in their (random-named) order.
    const line = /Endpoints:\s+(\S+)/.exec(described.stdout)?.[1] ?? ''
    t.same(line.split(',').sort(), ['10.244.50.1:8080', '10.244.50.2:9090'], 'kubectl describe svc')

    await setPodStatus(c.client, ns, 'b', { ip: '10.244.50.2', ready: false })
    await expectSlices('10.244.50.1:8080 110, 10.244.50.2:9090 000', 'a not-ready pod is listed not ready')
    await eventually(async () => {
      const e = await c.client.get(endpoints, ns, 'web')
      return e.subsets?.some((s: any) => s.notReadyAddresses?.[0]?.ip === '10.244.50.2')
    }, { timeout: 30_000, what: 'Endpoints lists b under notReadyAddresses' })

    await c.client.call('DELETE', resourcePath(pods, ns, 'a'), { body: { gracePeriodSeconds: 30 } })
    await expectSlices('10.244.50.1:8080 011, 10.244.50.2:9090 000', 'a terminating pod is serving but not ready')
    await eventually(async () => !(await c.client.get(endpoints, ns, 'web')).subsets?.some((s: any) => (s.addresses ?? []).length > 0), {
      timeout: 30_000,
      what: 'Endpoints has no ready address left',
    })

    await c.client.call('DELETE', resourcePath(pods, ns, 'a'), { body: { gracePeriodSeconds: 0 } })
    await c.client.call('DELETE', resourcePath(pods, ns, 'b'), { body: { gracePeriodSeconds: 0 } })
    await expectSlices('', 'no pods left: an empty placeholder slice')
  })

  await t.test('node IPAM gives three nodes distinct /24s', async (t) => {
    const names = ['a', 'b', 'c'].map((x) => `ipam-${x}-${suffix}`)
    for (const name of names) await c.client.create(nodes, undefined, { metadata: { name } })
    const cidrs = await eventually(async () => {
      const got = await Promise.all(names.map(async (n) => (await c.client.get(nodes, undefined, n)).spec?.podCIDR as string | undefined))
      return got.every(Boolean) && got
    }, { timeout: 30_000, what: 'every node has a podCIDR' })
    t.equal(new Set(cidrs).size, 3, `distinct: ${cidrs.join(' ')}`)
    for (const cidr of cidrs) t.match(cidr, /^10\.244\.\d+\.0\/24$/)
    const n0 = await c.client.get(nodes, undefined, names[0]!)
    t.same(n0.spec.podCIDRs, [n0.spec.podCIDR])
  })

  await t.test('node lifecycle: a silent node goes Unknown, is tainted, loses its pods; renewing clears the taints', async (t) => {
    const name = `life-${suffix}`
    const ns = `life-${suffix}`
    await c.client.create(nss, undefined, { metadata: { name: ns } })
    await c.client.create(nodes, undefined, { metadata: { name } })
    await c.client.patch(nodes, undefined, name, { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } }, 'application/merge-patch+json', 'status')
    const lease = { metadata: { name, namespace: 'kube-node-lease' }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(Date.now()) } }
    await c.client.create(leases, 'kube-node-lease', lease)
    let renewing = true
    const renew = async () => {
      const cur = await c.client.get(leases, 'kube-node-lease', name)
      await c.client.update(leases, { ...cur, spec: { ...cur.spec, renewTime: microTime(Date.now()) } })
    }
    const timer = setInterval(() => renewing && renew().catch(() => {}), 300)
    t.teardown(() => clearInterval(timer))
    await c.client.create(pods, ns, podManifest('victim', { node: name }))
    await setPodStatus(c.client, ns, 'victim', { ip: '10.244.60.1', ready: true })
    await eventually(async () => (await c.client.get(nodes, undefined, name)).spec?.podCIDR, { timeout: 30_000, what: 'the node got its podCIDR (the manager sees it)' })

    renewing = false
    const tainted = await eventually(async () => {
      const n = await c.client.get(nodes, undefined, name)
      const keys = (n.spec?.taints ?? []).map((x: any) => `${x.key}:${x.effect}`).sort()
      return readyOf(n) === 'Unknown' && keys.join() === 'node.kubernetes.io/unreachable:NoExecute,node.kubernetes.io/unreachable:NoSchedule' && n
    }, { timeout: 30_000, what: 'Ready=Unknown with the unreachable taints' })
    const cond = tainted.status.conditions.find((x: any) => x.type === 'Ready')
    t.equal(cond.reason, 'NodeStatusUnknown')
    t.equal(cond.message, 'Kubelet stopped posting node status.')
    const seenNotReady = await eventually(async () => {
      const r = await c.client.request('GET', resourcePath(pods, ns, 'victim'))
      return r.status === 404 ? 'gone' : readyOf(r.body) === 'False' ? 'not ready' : undefined
    }, { timeout: 30_000, what: 'the pod is marked not ready (or already evicted)' })
    t.pass(`pod seen ${seenNotReady}`)
    await eventually(async () => (await c.client.request('GET', resourcePath(pods, ns, 'victim'))).status === 404, { timeout: 30_000, what: 'the pod is deleted' })
    renewing = true
    await eventually(async () => ((await c.client.get(nodes, undefined, name)).spec?.taints ?? []).length === 0, { timeout: 30_000, what: 'taints removed once the Lease is renewed' })
    t.pass('taints removed')
  })

  await t.test('Events tell users what happened: NodeNotReady on the node, TaintManagerEviction on the pod', async (t) => {
    const name = `life-${suffix}`
    const ns = `life-${suffix}`
    await eventually(async () => (await c.client.list(events, ns)).items.some((e: any) => e.reason === 'TaintManagerEviction' && e.involvedObject.name === 'victim'), {
      timeout: 30_000,
      what: 'TaintManagerEviction event',
    })
    t.pass('TaintManagerEviction recorded')
    const nodeEvents = (await c.client.list(events, 'default')).items
    t.ok(nodeEvents.some((e: any) => e.reason === 'NodeNotReady' && e.involvedObject.name === name), 'NodeNotReady recorded')
  })
})
