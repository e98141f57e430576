// The LoadBalancer controller against the real apiserver (no agents): a pool
// of two addresses, the third Service pending with its Event, release on
// delete and on a type change, kubectl's EXTERNAL-IP, a restart that keeps
// every assignment, a duplicate left by two overlapping leaders,
// spec.loadBalancerIP, and two controllers running at once.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { ApiEventRecorder, SharedInformers } from '../../controlplane/controllers/informers.ts'
import { LoadBalancerController, type LoadBalancerConfig } from '../../controlplane/controllers/loadbalancer.ts'
import { defaultControllerConfig, type ControllerContext } from '../../controlplane/controllers/types.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const nss = lookupResource('', 'v1', 'namespaces')!
const services = lookupResource('', 'v1', 'services')!
const events = lookupResource('', 'v1', 'events')!

const suffix = randomBytes(3).toString('hex')
const controllerUser = 'system:kube-controller-manager'
const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
// Addresses never sent traffic: the controller only writes them into statuses.
const pool = ['10.112.200.1-10.112.200.2']
const [ip1, ip2] = ['10.112.200.1', '10.112.200.2']
const exhausted = `no free address in the LoadBalancer pool ${pool[0]}`

/** One controller with its own informers and recorder, as one leadership term of the manager gives it. */
async function startController(client: ApiClient): Promise<{ stop(): Promise<void> }> {
  const informers = new SharedInformers({ client, logger })
  const config: LoadBalancerConfig = { ...defaultControllerConfig, loadBalancerPool: pool }
  const ctx: ControllerContext = { client, informers, events: new ApiEventRecorder({ client, logger, component: 'skiff-loadbalancer-test' }), logger, metrics: createRegistry(), config }
  const ctl = new LoadBalancerController()
  await ctl.start(ctx)
  return {
    async stop() {
      await ctl.stop()
      informers.stop()
    },
  }
}

const lbService = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({ metadata: { name }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...extra } })
const ingressIPs = (s: KubeObject): string[] => (s.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip)

t.test('LoadBalancer controller', async (t) => {
  const c = await startTestCluster(t, { identities: [{ user: controllerUser, groups: ['system:masters'] }] })
  const client = c.clientFor(c.tokens.get(controllerUser)!)
  const ns = `lb-${suffix}`
  await c.client.create(nss, undefined, { metadata: { name: ns } })
  const get = (name: string) => c.client.get(services, ns, name)
  const ipsOf = async (name: string) => ingressIPs(await get(name))
  const warnings = async (name: string) =>
    (await c.client.list(events, ns)).items.filter((e) => e.involvedObject?.name === name && e.reason === 'AllocationFailed').map((e) => String(e.message))

  let ctl = await startController(client)
  t.teardown(() => ctl.stop())

  await t.test('Services get distinct addresses; the third waits with an Event', async (t) => {
    await c.client.create(services, ns, lbService('a'))
    await c.client.create(services, ns, lbService('b'))
    await c.client.create(services, ns, { metadata: { name: 'plain' }, spec: { ports: [{ port: 80 }] } })
    await c.client.create(services, ns, lbService('foreign', { loadBalancerClass: 'example.com/lb' }))
    await eventually(async () => (await ipsOf('a')).length === 1 && (await ipsOf('b')).length === 1, { timeout: 30_000, what: 'a and b get addresses' })
    const a = await get('a')
    t.same(a.status.loadBalancer.ingress, [{ ip: a.status.loadBalancer.ingress[0].ip, ipMode: 'VIP' }], 'ingress is one address, ipMode VIP')
    t.same([...(await ipsOf('a')), ...(await ipsOf('b'))].sort(), [ip1, ip2], 'the two addresses of the pool, once each')

    await c.client.create(services, ns, lbService('c'))
    await eventually(async () => (await warnings('c')).length > 0, { timeout: 30_000, what: 'AllocationFailed Event for c' })
    t.same(await warnings('c'), [exhausted], 'the Event says the pool is exhausted')
    t.same(await ipsOf('c'), [], 'c stays pending')
    t.same(await ipsOf('plain'), [], 'a ClusterIP Service gets nothing')
    t.same(await ipsOf('foreign'), [], 'a Service of another loadBalancerClass is left alone')

    const out = await c.kubectl(['get', 'svc', '-n', ns, '--no-headers'])
    const external = new Map(out.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)).map((f) => [f[0], f[3]]))
    t.equal(external.get('a'), (await ipsOf('a'))[0], 'kubectl shows the EXTERNAL-IP of a')
    t.equal(external.get('b'), (await ipsOf('b'))[0], 'kubectl shows the EXTERNAL-IP of b')
    t.equal(external.get('c'), '<pending>', 'kubectl shows c pending')
  })

  await t.test('deleting a Service frees its address for the pending one', async (t) => {
    const freed = (await ipsOf('a'))[0]
    await c.client.delete(services, ns, 'a')
    await eventually(async () => (await ipsOf('c'))[0] === freed, { timeout: 30_000, what: 'c gets the address a had' })
    t.pass(`c got ${freed}`)
  })

  await t.test('a type change away from LoadBalancer releases the address', async (t) => {
    const freed = (await ipsOf('b'))[0]
    await c.client.patch(services, ns, 'b', { spec: { type: 'ClusterIP' } }, 'application/merge-patch+json')
    await eventually(async () => (await ipsOf('b')).length === 0, { timeout: 30_000, what: "b's status cleared" })
    await c.client.create(services, ns, lbService('d'))
    await eventually(async () => (await ipsOf('d'))[0] === freed, { timeout: 30_000, what: 'd gets the address b had' })
    t.pass(`d got ${freed}`)
  })

  await t.test('a restarted controller keeps every assignment', async (t) => {
    const before = { c: await get('c'), d: await get('d') }
    await ctl.stop()
    ctl = await startController(client)
    // e's Event shows the new controller has planned with the whole cache.
    await c.client.create(services, ns, lbService('e'))
    await eventually(async () => (await warnings('e')).length > 0, { timeout: 30_000, what: 'the new controller sees the pool full' })
    for (const name of ['c', 'd'] as const) {
      const now = await get(name)
      t.same(ingressIPs(now), ingressIPs(before[name]), `${name} keeps its address`)
      t.equal(now.metadata.resourceVersion, before[name].metadata.resourceVersion, `${name} was not written`)
    }
    t.same(await ipsOf('e'), [])
  })

  await t.test('a duplicate left by two overlapping leaders is given back by the younger Service', async (t) => {
    const taken = (await ipsOf('c'))[0]
    const e = await get('e')
    // What a second leader with a stale view would have written.
    await client.update(services, { ...e, status: { loadBalancer: { ingress: [{ ip: taken, ipMode: 'VIP' }] } } }, 'status')
    await eventually(async () => (await ipsOf('e')).length === 0, { timeout: 30_000, what: 'e gives the duplicate back' })
    t.same(await ipsOf('c'), [taken], 'the older Service keeps it')
  })

  await t.test('spec.loadBalancerIP is honoured once free', async (t) => {
    const wanted = (await ipsOf('d'))[0]!
    await c.client.create(services, ns, lbService('f', { loadBalancerIP: wanted }))
    await eventually(async () => (await warnings('f')).length > 0, { timeout: 30_000, what: 'f waits for a taken address' })
    t.match((await warnings('f'))[0], /already in use/)
    await c.client.delete(services, ns, 'd')
    await c.client.delete(services, ns, 'e')
    await eventually(async () => (await ipsOf('f'))[0] === wanted, { timeout: 30_000, what: 'f gets the address it asked for' })
    t.pass(`f got ${wanted}`)
  })

  await t.test('two controllers at once (leadership overlap) end with distinct addresses', async (t) => {
    const second = await startController(client)
    t.teardown(() => second.stop())
    await c.client.delete(services, ns, 'c')
    await c.client.delete(services, ns, 'f')
    await Promise.all([c.client.create(services, ns, lbService('g')), c.client.create(services, ns, lbService('h'))])
    await eventually(
      async () => {
        const [g, h] = [await ipsOf('g'), await ipsOf('h')]
        return g.length === 1 && h.length === 1 && g[0] !== h[0]
      },
      { timeout: 30_000, what: 'g and h hold distinct addresses' },
    )
    t.same([...(await ipsOf('g')), ...(await ipsOf('h'))].sort(), [ip1, ip2])
  })

  await t.test('each distinct failure was recorded once', async (t) => {
    t.same(await warnings('c'), [exhausted])
    t.same(await warnings('e'), [exhausted])
  })
})
