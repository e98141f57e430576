// The scheduler against the real apiserver on a real redis-server: Node
// objects created as the admin (no agents needed: the scheduler reads only
// the API), pods created like a ReplicaSet would, and the placements,
// conditions and Events read back through the API.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiEventRecorder, SharedInformers } from '../../controlplane/controllers/informers.ts'
import { defaultControllerConfig } from '../../controlplane/controllers/types.ts'
import { bindingFor, bindPod } from '../../controlplane/scheduler/bind.ts'
import { ApiClientError, resourcePath } from '../../controlplane/client/client.ts'
import { Scheduler } from '../../controlplane/scheduler/scheduler.ts'
import { makeNode, makePod, type PodSpecOptions } from '../../controlplane/scheduler/testing.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const res = (r: string, g = '', v = 'v1') => lookupResource(g, v, r)!
const [podsR, nodesR, nsR, eventsR, cmR] = [res('pods'), res('nodes'), res('namespaces'), res('events'), res('configmaps')]
const ns = 'sched'
const wait = { timeout: 30_000, interval: 100 }

const c = await startTestCluster(t, { identities: [{ user: 'system:kube-scheduler', groups: ['system:authenticated'] }, { user: 'jane', groups: ['system:authenticated'] }] })
const client = c.client
await client.create(nsR, undefined, { metadata: { name: ns } })
for (const n of ['n1', 'n2', 'n3']) await client.create(nodesR, undefined, makeNode(n, { cpu: '2', memory: '8Gi', pods: '110' }))

// The pods' controller: a ConfigMap stands in for a ReplicaSet. Nothing acts
// on it, and the garbage collector sees a live owner, so it leaves the pods be.
const owner = await client.create(cmR, ns, { metadata: { name: 'web-owner' } })
const ownedBy = { owner: owner.metadata.uid!, ownerKind: 'ConfigMap', ownerName: 'web-owner' }

const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
const informers = new SharedInformers({ client, logger })
const metrics = createRegistry()
const scheduler = new Scheduler({ initialBackoffMs: 200, maxBackoffMs: 1000 })
t.teardown(async () => {
  await scheduler.stop()
  informers.stop()
})
await scheduler.start({
  client,
  informers,
  events: new ApiEventRecorder({ client, logger, component: 'default-scheduler', concurrency: 8 }),
  logger,
  metrics,
  config: defaultControllerConfig,
})

const createPod = (name: string, o: PodSpecOptions = {}) => client.create(podsR, ns, makePod(name, { namespace: ns, ...o }))
const getPod = (name: string) => client.get(podsR, ns, name)
const podScheduled = (p: KubeObject) => (p.status?.conditions ?? []).find((x: any) => x.type === 'PodScheduled')

async function eventsFor(name: string, reason: string): Promise<KubeObject[]> {
  const list = await client.list(eventsR, ns, { fieldSelector: `involvedObject.name=${name},reason=${reason}` })
  return list.items
}

t.test('6 replicas of one owner over 3 equal nodes go 2/2/2', async (t) => {
  for (let i = 0; i < 6; i++) await createPod(`web-${i}`, { ...ownedBy, cpu: '100m', memory: '64Mi' })
  const placed = await eventually(async () => {
    const pods = (await client.list(podsR, ns, { labelSelector: undefined })).items.filter((p) => p.metadata.name!.startsWith('web-'))
    return pods.length === 6 && pods.every((p) => p.spec.nodeName) ? pods : undefined
  }, { ...wait, what: '6 pods bound' })
  const counts: Record<string, number> = {}
  for (const p of placed) counts[p.spec.nodeName] = (counts[p.spec.nodeName] ?? 0) + 1
  t.same(counts, { n1: 2, n2: 2, n3: 2 })
  const p0 = await eventually(async () => {
    const p = await getPod('web-0')
    return podScheduled(p)?.status === 'True' ? p : undefined
  }, { ...wait, what: 'PodScheduled=True' })
  t.ok(p0, 'the bind is followed by PodScheduled=True')
  const ev = await eventually(() => eventsFor('web-0', 'Scheduled').then((l) => l[0]), { ...wait, what: 'Scheduled event' })
  t.equal(ev.message, `Successfully assigned ${ns}/web-0 to ${p0.spec.nodeName}`)
  t.equal(ev.type, 'Normal')
})

t.test('a pod asking for 64 cpus stays Pending with the reason, then lands on a big node when one is added', async (t) => {
  await createPod('big', { cpu: '64' })
  const pending = await eventually(async () => {
    const p = await getPod('big')
    return podScheduled(p)?.status === 'False' ? p : undefined
  }, { ...wait, what: 'PodScheduled=False' })
  t.notOk(pending.spec.nodeName)
  t.equal(pending.status.phase, 'Pending')
  t.match(podScheduled(pending), { reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' })
  const ev = await eventually(() => eventsFor('big', 'FailedScheduling').then((l) => l[0]), { ...wait, what: 'FailedScheduling event' })
  t.equal(ev.type, 'Warning')
  t.equal(ev.message, '0/3 nodes are available: 3 Insufficient cpu.')

  await client.create(nodesR, undefined, makeNode('n-big', { cpu: '128', memory: '512Gi' }))
  const bound = await eventually(async () => {
    const p = await getPod('big')
    return p.spec.nodeName ? p : undefined
  }, { ...wait, what: 'big pod bound after the node was added' })
  t.equal(bound.spec.nodeName, 'n-big')
})

t.test('a nodeSelector pod waits for a matching node and goes only there', async (t) => {
  await createPod('ssd-0', { nodeSelector: { disk: 'ssd' } })
  const parked = await eventually(async () => {
    const p = await getPod('ssd-0')
    return podScheduled(p)?.status === 'False' ? p : undefined
  }, { ...wait, what: 'ssd-0 unschedulable' })
  t.equal(podScheduled(parked).message, "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.")

  // Labelling a node is a node update: parked pods are retried at once.
  await client.patch(nodesR, undefined, 'n2', { metadata: { labels: { disk: 'ssd' } } }, 'application/merge-patch+json')
  for (let i = 1; i < 4; i++) await createPod(`ssd-${i}`, { nodeSelector: { disk: 'ssd' } })
  const nodes = await eventually(async () => {
    const got = await Promise.all([0, 1, 2, 3].map((i) => getPod(`ssd-${i}`)))
    return got.every((p) => p.spec.nodeName) ? got.map((p) => p.spec.nodeName) : undefined
  }, { ...wait, what: 'ssd pods bound' })
  t.same(nodes, ['n2', 'n2', 'n2', 'n2'])
})

t.test('a pod that finishes frees its node for a parked pod', async (t) => {
  const small = makeNode('n-small', { cpu: '1', taints: [{ key: 'dedicated', value: 'small', effect: 'NoSchedule' }] })
  await client.create(nodesR, undefined, small)
  const onSmall = { nodeSelector: { 'kubernetes.io/hostname': 'n-small' }, tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'small', effect: 'NoSchedule' }], cpu: '800m' }
  await createPod('job-a', onSmall)
  await eventually(async () => (await getPod('job-a')).spec.nodeName === 'n-small', { ...wait, what: 'job-a bound' })
  await createPod('job-b', onSmall)
  const parked = await eventually(async () => {
    const p = await getPod('job-b')
    return podScheduled(p)?.status === 'False' ? p : undefined
  }, { ...wait, what: 'job-b parked' })
  t.equal(podScheduled(parked).message, "0/5 nodes are available: 1 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector.")
  // What the node agent reports when job-a's containers exit 0.
  await client.patch(podsR, ns, 'job-a', { status: { phase: 'Succeeded' } }, 'application/merge-patch+json', 'status')
  const bound = await eventually(async () => {
    const p = await getPod('job-b')
    return p.spec.nodeName ? p : undefined
  }, { ...wait, what: 'job-b bound after job-a finished' })
  t.equal(bound.spec.nodeName, 'n-small')
})

t.test('binding is a compare-and-set: a stale resourceVersion is re-read, a bound pod is left alone', async (t) => {
  // schedulerName 'other': our scheduler leaves this pod to the test.
  const created = await createPod('manual', { schedulerName: 'other' })
  await client.patch(podsR, ns, 'manual', { metadata: { labels: { touched: 'yes' } } }, 'application/merge-patch+json')
  const first = await bindPod(client, created, 'n1')
  t.ok('bound' in first && first.bound.spec.nodeName === 'n1', 'bound after a 409 and a re-read')
  const again = await bindPod(client, created, 'n3')
  t.same(again, { gone: 'bound-elsewhere', node: 'n1' }, 'never moves a bound pod')
  t.equal((await getPod('manual')).spec.nodeName, 'n1')
})

t.test('pods/binding: one write sets nodeName and PodScheduled=True; refusals as kube-apiserver answers them', async (t) => {
  const asScheduler = c.clientFor(c.tokens.get('system:kube-scheduler')!)
  const asJane = c.clientFor(c.tokens.get('jane')!)
  const created = await createPod('bind-me', { schedulerName: 'other' })
  const path = resourcePath(podsR, ns, 'bind-me', 'binding')
  const refused = async (cl: typeof client, body: unknown, p = path) => {
    const e = await cl.call('POST', p, { body }).then(() => undefined, (e) => e)
    t.ok(e instanceof ApiClientError, 'refused')
    return { status: (e as ApiClientError).status, message: (e as ApiClientError).body?.message, causes: (e as ApiClientError).body?.details?.causes }
  }
  const denied = await refused(asJane, bindingFor(created, 'n1'))
  t.equal(denied.status, 403)
  t.match(denied.message, /"jane" cannot create resource "pods\/binding"/)
  const bad = await refused(asScheduler, { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'bind-me' }, target: { kind: 'Pod' } })
  t.equal(bad.status, 422)
  t.same(bad.causes?.map((x: any) => x.field), ['target.kind', 'target.name'])
  t.equal((await refused(asScheduler, { ...bindingFor(created, 'n1'), metadata: { name: 'nope' } }, resourcePath(podsR, ns, 'nope', 'binding'))).status, 404)
  // Every write to the pod from here on, through a watch: the first one must carry both fields.
  const before = await getPod('bind-me')
  const seen: KubeObject[] = []
  const w = client.watch(resourcePath(podsR, ns), { resourceVersion: before.metadata.resourceVersion, fieldSelector: 'metadata.name=bind-me' }, (ev) => void seen.push(ev.object as KubeObject), () => {})
  t.teardown(() => w.stop())
  const answer = await asScheduler.call('POST', path, { body: bindingFor(created, 'n2') })
  t.same(answer, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
  const first = await eventually(async () => seen[0], { ...wait, what: 'the binding write seen by a watch' })
  t.equal(first.spec.nodeName, 'n2', 'bound')
  t.equal(podScheduled(first)?.status, 'True', 'PodScheduled=True in the same write')
  t.same(await getPod('bind-me'), first, 'and nothing else was written')
  const again = await refused(asScheduler, bindingFor(created, 'n3'))
  t.equal(again.status, 409)
  t.equal(again.message, 'Operation cannot be fulfilled on pods/binding "bind-me": pod bind-me is already assigned to node "n2"')
})

t.test('metrics count the attempts', async (t) => {
  const text = await metrics.metrics()
  t.match(text, /scheduler_schedule_attempts_total\{result="scheduled",profile="default"\} (\d+)/)
  const scheduled = Number(/scheduler_schedule_attempts_total\{result="scheduled",profile="default"\} (\d+)/.exec(text)![1])
  t.ok(scheduled >= 11, `at least 11 pods scheduled (got ${scheduled})`)
  t.match(text, /scheduler_schedule_attempts_total\{result="unschedulable",profile="default"\} [1-9]/)
  t.match(text, /scheduler_pending_pods\{queue="unschedulable"\} 0/)
  t.match(text, /scheduler_e2e_scheduling_duration_seconds_count\{profile="default"\} [1-9]/)
})
