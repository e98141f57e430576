// Lists from the apiserver's watch cache (controlplane/apiserver/watch-cache.ts)
// against the store they cache: the same items in the same order, written in
// chunks; a list without resourceVersion sees every write acknowledged before
// it, also writes that did not go through this apiserver (straight to the
// store) and also after Redis was killed and came back; pages and
// resourceVersion=0 from the cache.

import { randomUUID } from 'node:crypto'
import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { WatchCache } from '../../controlplane/apiserver/watch-cache.ts'
import { silentLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const cms = lookupResource('', 'v1', 'configmaps')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!

t.test('watch cache', async (t) => {
  const c = await startTestCluster(t)
  const ns = 'wc'
  await c.client.create(nsInfo, undefined, { metadata: { name: ns } })
  const store = c.server.store
  /** A ConfigMap written straight to the store, as another apiserver of the cluster would. */
  const direct = (name: string, v: string): KubeObject => ({
    apiVersion: 'v1', kind: 'ConfigMap', data: { v },
    metadata: { name, namespace: ns, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
  })

  await t.test('a list is the store list, in chunks', async (t) => {
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => c.client.create(cms, ns, { metadata: { name: `big-${String(i + j).padStart(3, '0')}` }, data: { x: 'y'.repeat(1024) } })))
    }
    const res = await c.client.request('GET', resourcePath(cms, ns))
    t.equal(res.status, 200)
    t.equal(res.headers['transfer-encoding'], 'chunked', 'streamed, no Content-Length')
    const body = res.body as { kind: string; apiVersion: string; metadata: { resourceVersion: string }; items: KubeObject[] }
    t.equal(body.kind, 'ConfigMapList')
    t.equal(body.apiVersion, 'v1')
    const stored = await store.list('configmaps', { namespace: ns })
    t.ok(Number(body.metadata.resourceVersion) >= stored.revision, 'the list is at least as new as the store was before it')
    t.same(body.items.map((o) => o.metadata.name), stored.items.map((o) => o.metadata.name), 'same objects, same order')
    t.same(body.items, stored.items.map((o) => ({ apiVersion: 'v1', kind: 'ConfigMap', ...o })), 'same content, with apiVersion and kind')
  })

  await t.test('a list without resourceVersion sees every write acknowledged before it', async (t) => {
    let missed = 0
    for (let i = 0; i < 50; i++) {
      const created = await store.create('configmaps', `${ns}/seen-${i}`, direct(`seen-${i}`, '0'))
      const l = await c.client.list(cms, ns)
      const got = l.items.find((o) => o.metadata.name === `seen-${i}`)
      if (got?.metadata.resourceVersion !== created.metadata.resourceVersion) missed++
      if (i % 5 === 0) {
        const updated = await store.update('configmaps', `${ns}/seen-${i}`, { ...created, data: { v: '1' } })
        const again = await c.client.list(cms, ns)
        if (again.items.find((o) => o.metadata.name === `seen-${i}`)?.metadata.resourceVersion !== updated.metadata.resourceVersion) missed++
        await store.delete('configmaps', `${ns}/seen-${i}`)
        if ((await c.client.list(cms, ns)).items.some((o) => o.metadata.name === `seen-${i}`)) missed++
      }
    }
    t.equal(missed, 0, 'no list missed a write made before it')
  })

  await t.test('a consistent read waits for the cache to reach the store', async (t) => {
    // In this process, so nothing (no HTTP round trip) gives the cache time to see the write by chance.
    const cache = new WatchCache({ store, logger: silentLogger() })
    t.teardown(() => cache.stop())
    await cache.list(cms, ns, true)
    let missed = 0
    for (let i = 0; i < 5; i++) {
      // 3,000 writes ahead of ours: the store's watch reads them 1,000 at a time, so the cache is still
      // behind when our write is acknowledged, and only waiting for the store's revision finds it.
      const ahead = Array.from({ length: 3000 }, (_, j) => store.create('configmaps', `${ns}/ahead-${i}-${j}`, direct(`ahead-${i}-${j}`, '0')))
      const created = await store.create('configmaps', `${ns}/wait-${i}`, direct(`wait-${i}`, '0'))
      const l = await cache.list(cms, ns, true)
      await Promise.all(ahead)
      if (!l) throw new Error('the cache answered nothing')
      if (l.items.find((o) => o.metadata.name === `wait-${i}`)?.metadata.resourceVersion !== created.metadata.resourceVersion) missed++
      if (l.revision < Number(created.metadata.resourceVersion)) missed++
    }
    t.equal(missed, 0, 'every list had the write made before it')
    for (let i = 0; i < 5; i++) for (let j = 0; j < 3000; j += 500) await Promise.all(Array.from({ length: 500 }, (_, k) => store.delete('configmaps', `${ns}/ahead-${i}-${j + k}`)))
  })

  await t.test('pages and resourceVersion=0 from the cache', async (t) => {
    const all = (await c.client.list(cms, ns)).items.map((o) => o.metadata.name)
    const paged: string[] = []
    let cont: string | undefined
    let pages = 0
    do {
      const page = await c.client.list(cms, ns, { limit: '70', continue: cont })
      paged.push(...page.items.map((o) => o.metadata.name!))
      cont = (page.metadata as { continue?: string }).continue
      pages++
    } while (cont)
    t.same(paged, all, 'the pages together are the list')
    t.ok(pages > 1, `${pages} pages`)
    await store.create('configmaps', `${ns}/any`, direct('any', '0'))
    await eventually(async () => (await c.client.list(cms, ns, { resourceVersion: '0' })).items.some((o) => o.metadata.name === 'any'), { timeout: 10_000, what: 'resourceVersion=0 to show a write' })
    t.pass('resourceVersion=0 shows the write once the cache has it')
  })

  await t.test('Redis killed and back: the cache lists again and stays consistent', async (t) => {
    await c.redis.kill9()
    await c.redis.restart()
    const created = await eventually(() => store.create('configmaps', `${ns}/after-restart`, direct('after-restart', '0')).catch(() => undefined), { timeout: 30_000, what: 'a write after the restart' })
    const l = await eventually(() => c.client.list(cms, ns).catch(() => undefined), { timeout: 30_000, what: 'a list after the restart' })
    t.equal(l.items.find((o) => o.metadata.name === 'after-restart')?.metadata.resourceVersion, created.metadata.resourceVersion, 'the write made after the restart is listed')
    const stored = await store.list('configmaps', { namespace: ns })
    t.same(l.items.map((o) => o.metadata.name), stored.items.map((o) => o.metadata.name), 'the same objects as the store')
  })
})
