// Deletion through ownerReferences and finalizers: Background removes
// dependents after the owner; Foreground marks the owner (foregroundDeletion)
// and removes it after its blocking dependents; Orphan keeps them without the
// owner reference; a custom finalizer holds an object in Terminating until it
// is removed; deleting a namespace removes everything in it.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster, type TestCluster } from '../harness/cluster.ts'

const deploys = lookupResource('apps', 'v1', 'deployments')!
const rss = lookupResource('apps', 'v1', 'replicasets')!
const pods = lookupResource('', 'v1', 'pods')!
const nss = lookupResource('', 'v1', 'namespaces')!
const cms = lookupResource('', 'v1', 'configmaps')!

const template = { metadata: { labels: { app: 'g' } }, spec: { containers: [{ name: 'c', image: 'skiff/echo:local' }] } }

function ownerRef(o: KubeObject) {
  return { apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata.name!, uid: o.metadata.uid!, controller: true, blockOwnerDeletion: true }
}

async function chain(c: TestCluster, ns: string, name: string) {
  const d = await c.client.create(deploys, ns, { metadata: { name }, spec: { replicas: 1, selector: { matchLabels: { app: 'g' } }, template } })
  const rs = await c.client.create(rss, ns, { metadata: { name: `${name}-rs`, ownerReferences: [ownerRef(d)] }, spec: { replicas: 1, selector: { matchLabels: { app: 'g' } }, template } })
  const pod = await c.client.create(pods, ns, { metadata: { name: `${name}-pod`, labels: { app: 'g' }, ownerReferences: [ownerRef(rs)] }, spec: template.spec })
  return { d, rs, pod }
}

const exists = async (c: TestCluster, info: typeof pods, ns: string, name: string) => (await c.client.request('GET', resourcePath(info, ns, name))).status === 200

t.test('garbage collection', async (t) => {
  const c = await startTestCluster(t)

  await t.test('Background: dependents follow the owner', async (t) => {
    await chain(c, 'default', 'bg')
    await c.client.call('DELETE', resourcePath(deploys, 'default', 'bg'), { body: { propagationPolicy: 'Background' } })
    await eventually(async () => !(await exists(c, rss, 'default', 'bg-rs')) && !(await exists(c, pods, 'default', 'bg-pod')), { what: 'rs and pod collected' })
    t.pass('replica set and pod deleted')
  })

  await t.test('Foreground: the owner is marked, its dependents go first, then the owner', async (t) => {
    const { d, rs } = await chain(c, 'default', 'fg')
    const gone: string[] = []
    const watches = [deploys, rss, pods].map((info) =>
      c.client.watch(resourcePath(info, 'default'), { resourceVersion: d.metadata.resourceVersion }, (ev) => {
        if (ev.type === 'DELETED') gone.push(ev.object.metadata.name!)
      }, () => {}),
    )
    t.teardown(() => watches.forEach((w) => w.stop()))
    const marked = await c.client.call('DELETE', resourcePath(deploys, 'default', 'fg'), { body: { propagationPolicy: 'Foreground' } })
    t.ok(marked.metadata.deletionTimestamp, 'the answer is the owner, marked for deletion')
    t.same(marked.metadata.finalizers, ['foregroundDeletion'])
    await eventually(async () => gone.length === 3, { what: 'pod, replica set and deployment deleted' })
    t.same(gone, ['fg-pod', 'fg-rs', 'fg'], 'grandchild, child, owner')
    t.equal(rs.metadata.name, 'fg-rs')
  })

  await t.test('orphanDependents=true (the deprecated spelling) orphans', async (t) => {
    const { d } = await chain(c, 'default', 'od')
    await c.client.call('DELETE', resourcePath(deploys, 'default', 'od'), { body: { orphanDependents: true } })
    await eventually(async () => !(await exists(c, deploys, 'default', 'od')), { what: 'owner gone' })
    const rs = await c.client.get(rss, 'default', 'od-rs')
    t.notOk((rs.metadata.ownerReferences ?? []).some((r) => r.uid === d.metadata.uid), 'owner reference removed')
  })

  await t.test('a custom finalizer holds the object in Terminating until it is removed', async (t) => {
    await c.client.create(cms, 'default', { metadata: { name: 'held', finalizers: ['example.com/hold'] } })
    const marked = await c.client.delete(cms, 'default', 'held')
    t.ok(marked.metadata.deletionTimestamp, 'marked')
    t.ok(await exists(c, cms, 'default', 'held'), 'still there')
    const again = await c.client.delete(cms, 'default', 'held')
    t.equal(again.metadata.deletionTimestamp, marked.metadata.deletionTimestamp, 'a second delete changes nothing')
    const add = await c.client.request('PATCH', resourcePath(cms, 'default', 'held'), {
      body: { metadata: { finalizers: ['example.com/hold', 'example.com/more'] } },
      contentType: 'application/merge-patch+json',
    })
    t.equal(add.status, 422, 'no new finalizer on an object being deleted')
    t.match(JSON.stringify(add.body), 'no new finalizers can be added if the object is being deleted')
    const data = await c.client.request('PATCH', resourcePath(cms, 'default', 'held'), { body: { data: { k: 'v' } }, contentType: 'application/merge-patch+json' })
    t.equal(data.status, 200, 'other updates are still accepted')
    t.ok(await exists(c, cms, 'default', 'held'), 'and do not complete the deletion')
    await c.client.request('PATCH', resourcePath(cms, 'default', 'held'), { body: { metadata: { finalizers: null } }, contentType: 'application/merge-patch+json' })
    t.notOk(await exists(c, cms, 'default', 'held'), 'gone once the finalizer is removed')
  })

  await t.test('Orphan: dependents stay, without the owner reference', async (t) => {
    const { d } = await chain(c, 'default', 'or')
    await c.client.call('DELETE', resourcePath(deploys, 'default', 'or'), { body: { propagationPolicy: 'Orphan' } })
    await eventually(async () => !(await exists(c, deploys, 'default', 'or')), { what: 'owner gone' })
    const rs = await c.client.get(rss, 'default', 'or-rs')
    t.notOk((rs.metadata.ownerReferences ?? []).some((r) => r.uid === d.metadata.uid), 'owner reference removed')
    t.ok(await exists(c, pods, 'default', 'or-pod'), 'grandchild kept')
  })

  await t.test('deleting a namespace deletes everything in it', async (t) => {
    await c.client.create(nss, undefined, { metadata: { name: 'doomed' } })
    await chain(c, 'doomed', 'x')
    await c.client.create(cms, 'doomed', { metadata: { name: 'cfg' } })
    const marked = await c.client.delete(nss, undefined, 'doomed')
    t.equal(marked.status.phase, 'Terminating')
    const refused = await c.client.request('POST', resourcePath(cms, 'doomed'), { body: { metadata: { name: 'late' } } })
    t.equal(refused.status, 403, 'no new content in a terminating namespace')
    await eventually(async () => (await c.client.request('GET', resourcePath(nss, undefined, 'doomed'))).status === 404, { timeout: 20_000, what: 'namespace gone' })
    for (const info of [deploys, rss, pods, cms]) t.equal((await c.client.list(info, 'doomed')).items.length, 0, `${info.resource} emptied`)
  })
})
