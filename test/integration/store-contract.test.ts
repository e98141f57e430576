// The Store contract (controlplane/store/types.ts), point by point, against a
// real redis-server started by the harness. Every test starts its own Redis
// and its own store and registers their cleanup, so a failing test leaves
// nothing behind.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { RedisStore, type RedisStoreOptions } from '../../controlplane/store/redis-store.ts'
import { StoreError, type StoreEvent } from '../../controlplane/store/types.ts'
import { withRedis, type RedisHandle } from '../harness/redis.ts'

type T = { teardown(fn: () => unknown): void }

interface Started {
  store: RedisStore
  logs: { level: number; msg: string }[]
  stateDir: string
}

async function newStore(t: T, redis: RedisHandle, opts: Partial<RedisStoreOptions> = {}): Promise<Started> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'skiff-store-')))
  if (!opts.stateDir) t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const logs: Started['logs'] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) })
  const store = new RedisStore({ redis: redis.options, stateDir, encryptionKey: randomBytes(32), logger, ...opts })
  await store.start()
  t.teardown(() => store.stop())
  return { store, logs, stateDir }
}

function raw(t: T, redis: RedisHandle): Redis {
  const r = new Redis({ ...redis.options, maxRetriesPerRequest: 1 })
  r.on('error', () => {})
  t.teardown(() => r.disconnect())
  return r
}

function cm(ns: string, name: string, data: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, uid: `uid-${ns}-${name}` }, data }
}

async function eventually(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p
  } catch (err) {
    if (err instanceof StoreError) return err
    throw err
  }
  throw new Error('expected a StoreError')
}

/** Everything the store keeps in Redis, to prove a refused write changed nothing. */
async function snapshot(r: Redis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  for (const key of (await r.keys('skiff:*')).sort()) {
    const type = await r.type(key)
    if (type === 'string') out[key] = await r.get(key)
    else if (type === 'hash') out[key] = await r.hgetall(key)
    else if (type === 'set') out[key] = (await r.smembers(key)).sort()
    else if (type === 'stream') out[key] = { len: await r.xlen(key), last: await r.xrevrange(key, '+', '-', 'COUNT', 1) }
  }
  return out
}

/** Collects one watch; ended resolves with the end error (or undefined). */
function collect(store: RedisStore, fromRevision: number, resource?: string) {
  const events: StoreEvent[] = []
  let endErr: StoreError | undefined
  let ended = false
  const handle = store.watch({ fromRevision, resource }, (ev) => void events.push(ev), (err) => {
    ended = true
    endErr = err
  })
  return {
    events,
    handle,
    get ended() {
      return ended
    },
    get err() {
      return endErr
    },
  }
}

/** A watch, retried while the store reports Redis unreachable (right after a restart). */
async function collectWhenReady(store: RedisStore, fromRevision: number, resource?: string) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const w = collect(store, fromRevision, resource)
    await new Promise((r) => setImmediate(r))
    if (!(w.ended && w.err?.code === 'unavailable')) return w
    if (Date.now() > deadline) throw new Error('store never became ready for watches')
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('create, get, update and delete with compare-and-set', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const obj = cm('default', 'a', { k: 'v' })
  obj.metadata.resourceVersion = '999' // ignored: the store owns resourceVersion
  const created = await store.create('configmaps', 'default/a', obj)
  t.equal(created.metadata.resourceVersion, '1')
  const withoutRV = (o: KubeObject) => ({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } })
  t.same(withoutRV(created), withoutRV(obj), 'stored exactly as given')
  t.same(await store.get('configmaps', 'default/a'), created, 'get returns what create returned')
  t.equal((await storeError(store.create('configmaps', 'default/a', obj))).code, 'exists')

  const updated = await store.update('configmaps', 'default/a', { ...created, data: { k: 'v2' } }, { expectedRV: '1' })
  t.equal(updated.metadata.resourceVersion, '2')
  t.equal((await storeError(store.update('configmaps', 'default/a', created, { expectedRV: '1' }))).code, 'conflict')
  t.equal((await storeError(store.delete('configmaps', 'default/a', { expectedRV: '1' }))).code, 'conflict')
  t.equal((await storeError(store.update('configmaps', 'default/nope', obj))).code, 'notfound')
  t.equal((await storeError(store.delete('configmaps', 'default/nope'))).code, 'notfound')
  t.equal((await store.update('configmaps', 'default/a', updated)).metadata.resourceVersion, '3', 'no expectedRV: unconditional')

  const deleted = await store.delete('configmaps', 'default/a', { expectedRV: '3' })
  t.equal(deleted.metadata.resourceVersion, '4', 'a delete returns the last state at the delete revision')
  t.same(deleted.data, { k: 'v2' })
  t.equal(await store.get('configmaps', 'default/a'), undefined)
  t.equal(await store.currentRevision(), 4)
})

t.test('a refused write leaves nothing behind', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const r = raw(t, redis)
  await store.create('services', 'default/a', cm('default', 'a'), { claims: [{ pool: 'nodeport', value: '30001' }] })
  await store.create('services', 'default/b', cm('default', 'b'))
  const before = await snapshot(r)
  const refused: [string, Promise<unknown>][] = [
    ['exists', store.create('services', 'default/a', cm('default', 'a'))],
    ['conflict', store.update('services', 'default/a', cm('default', 'a'), { expectedRV: '2' })],
    ['conflict', store.delete('services', 'default/a', { expectedRV: '2' })],
    ['notfound', store.update('services', 'default/x', cm('default', 'x'))],
    ['notfound', store.delete('services', 'default/x', { releases: [{ pool: 'nodeport', value: '30001' }] })],
    // The first claim is free, the second taken: neither may be held afterwards.
    ['claimed', store.create('services', 'default/c', cm('default', 'c'), {
      claims: [{ pool: 'nodeport', value: '30002' }, { pool: 'nodeport', value: '30001' }],
    })],
    ['claimed', store.update('services', 'default/b', cm('default', 'b'), {
      claims: [{ pool: 'clusterip', value: '10.96.0.5' }, { pool: 'nodeport', value: '30001' }],
      releases: [{ pool: 'nodeport', value: '30001' }],
    })],
  ]
  for (const [code, p] of refused) t.equal((await storeError(p)).code, code)
  t.same(await snapshot(r), before, 'keys, index, pools, counter and stream unchanged')
  t.equal(await r.xlen('skiff:events'), 2)
})

t.test('list is consistent with one revision and filters by namespace', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  for (const ns of ['a', 'ab', 'b']) for (const n of ['x', 'y']) await store.create('configmaps', `${ns}/${n}`, cm(ns, n))
  await store.create('namespaces', 'a', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } })
  await store.delete('configmaps', 'b/y')
  const all = await store.list('configmaps')
  t.equal(all.revision, await store.currentRevision())
  t.same(all.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['a/x', 'a/y', 'ab/x', 'ab/y', 'b/x'])
  const inA = await store.list('configmaps', { namespace: 'a' })
  t.same(inA.items.map((o) => o.metadata.name), ['x', 'y'], "namespace 'a' does not match 'ab'")
  t.same((await store.list('namespaces')).items.map((o) => o.metadata.name), ['a'])
  for (const o of all.items) t.ok(Number(o.metadata.resourceVersion) <= all.revision)
})

t.test('watch from a list revision under 50 concurrent writers: every event once, in order', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  for (let i = 0; i < 10; i++) await store.create('configmaps', `pre/${i}`, cm('pre', String(i)))
  const listed = await store.list('configmaps')
  const filtered = collect(store, listed.revision, 'configmaps')
  const everything = collect(store, listed.revision)
  const acked: number[] = []
  let late: ReturnType<typeof collect> | undefined
  const writer = async (w: number) => {
    for (let i = 0; i < 20; i++) {
      const o = await store.create('configmaps', `w${w}/o${i}`, cm(`w${w}`, `o${i}`))
      acked.push(Number(o.metadata.resourceVersion))
      const changed = { ...o, data: { n: String(i) } }
      const u = await store.update('configmaps', `w${w}/o${i}`, changed, { expectedRV: o.metadata.resourceVersion })
      acked.push(Number(u.metadata.resourceVersion))
      // Noise in another resource, which the filtered watch must not see.
      if (i % 5 === 0) await store.create('secrets', `w${w}/s${i}`, cm(`w${w}`, `s${i}`))
      // A watcher joining mid-stream catches up (more than one page) while live events arrive.
      if (w === 0 && i === 10) late = collect(store, listed.revision, 'configmaps')
    }
  }
  await Promise.all(Array.from({ length: 50 }, (_, w) => writer(w)))
  const final = await store.currentRevision()
  const want = [...acked].sort((a, b) => a - b)
  t.equal(want.length, 2000)
  await eventually(() => filtered.events.length >= want.length && late!.events.length >= want.length, 'watchers caught up')
  await eventually(() => everything.events.at(-1)?.revision === final, 'unfiltered watcher caught up')
  t.same(filtered.events.map((e) => e.revision), want, 'filtered: exactly the acknowledged configmap writes, in order')
  t.same(late!.events.map((e) => e.revision), want, 'late watcher: same sequence after catch-up')
  const revs = everything.events.map((e) => e.revision)
  t.same(revs, Array.from({ length: final - listed.revision }, (_, i) => listed.revision + 1 + i), 'unfiltered: no gap')
  t.notOk(filtered.ended || late!.ended || everything.ended, 'no watch ended')

  // Replaying the events onto the list gives the current state.
  const state = new Map(listed.items.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]))
  for (const ev of filtered.events) {
    if (ev.type === 'DELETED') state.delete(ev.key)
    else state.set(ev.key, ev.object)
    if (ev.type === 'MODIFIED' && !(Number(ev.prev?.metadata.resourceVersion) < ev.revision && ev.prev?.data?.n === undefined)) {
      t.fail(`MODIFIED ${ev.key}@${ev.revision} has a wrong prev: ${JSON.stringify(ev.prev)}`)
    }
  }
  const now = await store.list('configmaps')
  const replayed = [...state.keys()].sort().map((k) => state.get(k))
  t.same(replayed, now.items, 'list + events = the new list')
  for (const w of [filtered, late!, everything]) w.handle.stop()
  t.equal(store.watcherCount, 0)
})

t.test('hundreds of watchers share one reader', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const from = await store.currentRevision()
  const watchers = Array.from({ length: 300 }, (_, i) => collect(store, from, i % 3 === 0 ? undefined : `r${i % 3}`))
  for (let i = 0; i < 30; i++) await store.create(`r${i % 3}`, `k${i}`, cm('', `k${i}`))
  await eventually(() => watchers.every((w, i) => w.events.length === (i % 3 === 0 ? 30 : 10)), 'all watchers got their events')
  t.ok(watchers.every((w, i) => i % 3 === 0 || w.events.every((e) => e.resource === `r${i % 3}`)))
})

t.test('a watch from a trimmed revision ends with gone', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis, { streamMaxLen: 10 })
  const big = 'x'.repeat(300) // makes stream nodes fill up, so approximate trimming removes whole nodes
  for (let i = 0; i < 300; i++) await store.create('configmaps', `ns/${i}`, cm('ns', String(i), { big }))
  const floor = await store.floor()
  t.ok(floor > 0, `floor moved up (${floor})`)
  const fromZero = collect(store, 0)
  const justBelow = collect(store, floor - 1)
  const atFloor = collect(store, floor, 'configmaps')
  await eventually(() => fromZero.ended && justBelow.ended, 'old watches ended')
  t.equal(fromZero.err?.code, 'gone')
  t.equal(justBelow.err?.code, 'gone')
  t.equal(fromZero.events.length + justBelow.events.length, 0, 'nothing delivered before gone')
  await eventually(() => atFloor.events.length === 300 - floor, 'watch from the floor replays the rest')
  t.equal(atFloor.events[0]!.revision, floor + 1)
  t.notOk(atFloor.ended)
})

t.test('a hole in the stream ends the live watches that needed it; stop ends the rest cleanly', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const r = raw(t, redis)
  await store.create('configmaps', 'ns/a', cm('ns', 'a'))
  const before = await store.currentRevision()
  const live = collect(store, before)
  // What another replica's epoch jump looks like from here: the counter moves
  // on without events for the revisions in between.
  await r.set('skiff:rev', before + 100)
  await r.hset('skiff:meta', 'floor', before + 100)
  const o = await store.create('configmaps', 'ns/b', cm('ns', 'b'))
  t.equal(Number(o.metadata.resourceVersion), before + 101)
  const after = collect(store, before + 100)
  await eventually(() => live.ended, 'the watch across the hole ends')
  t.equal(live.err?.code, 'gone')
  t.equal(live.events.length, 0)
  await eventually(() => after.events.length === 1, 'a watch from the new floor gets the event')
  await store.stop()
  t.ok(after.ended && after.err === undefined, 'stop ends watches without an error')
})

t.test('claims are atomic with the write', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const pool = Array.from({ length: 50 }, (_, i) => String(30000 + i))
  const results = await Promise.allSettled(
    Array.from({ length: 200 }, (_, i) =>
      store.create('services', `default/s${i}`, cm('default', `s${i}`), { claims: [{ pool: 'nodeport', value: pool[i % 50]! }] }),
    ),
  )
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
  t.equal(won.length, 50, 'exactly one create per value succeeds')
  t.equal(new Set(won.map((i) => i % 50)).size, 50, 'all distinct')
  for (const r of results) {
    if (r.status === 'rejected') {
      t.equal((r.reason as StoreError).code, 'claimed')
      t.equal((r.reason as StoreError).claim?.pool, 'nodeport')
    }
  }
  const held = await store.claims('nodeport')
  t.equal(held.size, 50)
  for (const i of won) t.equal(held.get(pool[i % 50]!), `services:default/s${i}`)
  t.equal((await store.list('services')).items.length, 50, 'the losing creates wrote nothing')

  const winner = won[0]!
  const value = pool[winner % 50]!
  const key = `default/s${winner}`
  await store.update('services', key, cm('default', `s${winner}`), { claims: [{ pool: 'nodeport', value }] })
  t.pass('claiming a value one already owns is fine')
  await store.update('services', `default/s${won[1]}`, cm('default', `s${won[1]}`), { releases: [{ pool: 'nodeport', value }] })
  t.equal((await store.claims('nodeport')).get(value), `services:${key}`, 'a non-owner cannot release')
  await store.delete('services', key, { releases: [{ pool: 'nodeport', value }] })
  t.notOk((await store.claims('nodeport')).has(value), 'released on delete')
  await store.create('services', 'default/new', cm('default', 'new'), { claims: [{ pool: 'nodeport', value }] })
  t.equal((await store.claims('nodeport')).get(value), 'services:default/new')
})

t.test('kill -9 of Redis during writes: acknowledged writes survive, revisions keep rising', async (t) => {
  const redis = await withRedis(t)
  const { store } = await newStore(t, redis)
  const acked = new Map<string, string>()
  let stopWriting = false
  let failures = 0
  const writer = async (w: number) => {
    for (let i = 0; !stopWriting; i++) {
      try {
        const o = await store.create('configmaps', `w${w}/o${i}`, cm(`w${w}`, `o${i}`))
        acked.set(`w${w}/o${i}`, o.metadata.resourceVersion!)
      } catch (err) {
        if (!(err instanceof StoreError) || err.code !== 'unavailable') throw err
        failures++
        await new Promise((r) => setTimeout(r, 5)) // Redis is down: do not spin
      }
    }
  }
  const watcher = collect(store, await store.currentRevision())
  const writers = Array.from({ length: 4 }, (_, w) => writer(w))
  await eventually(() => acked.size >= 200, '200 acknowledged writes')
  await redis.kill9()
  await eventually(() => watcher.ended, 'watch ended when Redis died')
  t.equal(watcher.err?.code, 'unavailable')
  const beforeRestart = acked.size
  await redis.restart()
  await eventually(() => acked.size > beforeRestart + 50, 'writes succeed again after restart')
  stopWriting = true
  await Promise.all(writers)
  t.ok(failures > 0, `writes failed while Redis was down (${failures})`)

  const maxServed = Math.max(...[...acked.values()].map(Number))
  for (const [key, rv] of acked) {
    const got = await store.get('configmaps', key)
    if (got?.metadata.resourceVersion !== rv) t.fail(`acknowledged write ${key}@${rv} lost: ${JSON.stringify(got?.metadata)}`)
  }
  const next = await store.create('configmaps', 'after/x', cm('after', 'x'))
  t.ok(Number(next.metadata.resourceVersion) > maxServed, 'next revision is above every one served')
  const again = await collectWhenReady(store, Number(next.metadata.resourceVersion) - 1)
  await eventually(() => again.events.length === 1, 'a new watch works after the restart')
})

t.test('Redis restored from an older AOF: the counter jumps past everything served', async (t) => {
  const redis = await withRedis(t)
  const { store, logs } = await newStore(t, redis)
  for (let i = 0; i < 5; i++) await store.create('configmaps', `ns/${i}`, cm('ns', String(i)))
  const copy = await mkdtemp(join(tmpdir(), 'skiff-aof-'))
  t.teardown(() => rm(copy, { recursive: true, force: true }))
  await cp(join(redis.dir, 'appendonlydir'), join(copy, 'appendonlydir'), { recursive: true })
  let served = 0
  for (let i = 5; i < 10; i++) served = Number((await store.create('configmaps', `ns/${i}`, cm('ns', String(i)))).metadata.resourceVersion)
  const watcher = collect(store, served)
  await redis.kill9()
  await rm(join(redis.dir, 'appendonlydir'), { recursive: true })
  await cp(join(copy, 'appendonlydir'), join(redis.dir, 'appendonlydir'), { recursive: true })
  await redis.restart()
  await eventually(() => watcher.ended, 'watch ended')

  let next: KubeObject | undefined
  await eventually(async () => {
    next = await store.create('configmaps', 'ns/after', cm('ns', 'after')).catch(() => undefined)
    return next !== undefined
  }, 'a write succeeds after the restart')
  t.ok(Number(next!.metadata.resourceVersion) > served, `revision ${next!.metadata.resourceVersion} > ${served}`)
  t.equal(await store.get('configmaps', 'ns/7'), undefined, 'the restored file really was older')
  t.ok(logs.some((l) => l.level === 40 && /went backwards/.test(l.msg)), 'the jump was logged as a warning')
  const old = await collectWhenReady(store, served)
  await eventually(() => old.ended, 'a watch from before the jump ends')
  t.equal(old.err?.code, 'gone')
})

t.test('Redis emptied: a new store on the same state dir jumps; a running one too', async (t) => {
  const redis = await withRedis(t)
  const r = raw(t, redis)
  const first = await newStore(t, redis)
  let served = 0
  for (let i = 0; i < 5; i++) {
    served = Number((await first.store.create('configmaps', `ns/${i}`, cm('ns', String(i)))).metadata.resourceVersion)
  }
  await first.store.stop()
  await r.flushall()
  const second = await newStore(t, redis, { stateDir: first.stateDir })
  const o = await second.store.create('configmaps', 'ns/a', cm('ns', 'a'))
  t.ok(Number(o.metadata.resourceVersion) > served, 'new store: revision above everything served before')
  t.ok((await second.store.floor()) >= served, 'floor moved past the old history')
  served = Number(o.metadata.resourceVersion)

  // FLUSHALL under a running store: its next write finds the counter behind.
  const live = collect(second.store, served)
  await r.flushall()
  const p = await second.store.create('configmaps', 'ns/b', cm('ns', 'b'))
  t.ok(Number(p.metadata.resourceVersion) > served, 'running store: revision above everything served')
  await eventually(() => live.ended, 'a watch across the jump ends')
  t.equal(live.err?.code, 'gone')
  t.equal(live.events.length, 0)
})

t.test('Secrets are encrypted before they reach Redis', async (t) => {
  const redis = await withRedis(t)
  const key = randomBytes(32)
  const { store } = await newStore(t, redis, { encryptionKey: key })
  const r = raw(t, redis)
  const marker = `plaintext-marker-${randomBytes(6).toString('hex')}`
  const visible = `configmap-marker-${randomBytes(6).toString('hex')}`
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'ns' }, stringData: { password: marker } }
  const created = await store.create('secrets', 'ns/s', secret)
  await store.update('secrets', 'ns/s', { ...created, stringData: { password: marker, again: marker } })
  await store.create('secrets', 'ns/t', { ...secret, metadata: { name: 't', namespace: 'ns' } })
  await store.create('configmaps', 'ns/c', cm('ns', 'c', { v: visible }))
  t.same((await store.get('secrets', 'ns/s'))?.stringData, { password: marker, again: marker }, 'reads decrypt')

  const stream = JSON.stringify(await r.xrange('skiff:events', '-', '+'))
  t.notOk(stream.includes(marker), 'not in the event stream')
  t.ok(stream.includes(visible), 'the check would have found plaintext')
  t.match(await r.hget('skiff:o:secrets:ns/s', 'v'), /^enc:v1:/)
  const files = await allFiles(redis.dir)
  const onDisk = (await Promise.all(files.map((f) => readFile(f)))).map((b) => b.toString('latin1')).join('\n')
  t.ok(onDisk.includes(visible), 'AOF files hold plain configmaps')
  t.notOk(onDisk.includes(marker), 'AOF files never hold the secret')

  // A ciphertext moved to another key does not open there.
  await r.hset('skiff:o:secrets:ns/t', 'v', (await r.hget('skiff:o:secrets:ns/s', 'v'))!)
  await t.rejects(store.get('secrets', 'ns/t'))
  t.throws(() => new RedisStore({ redis: redis.options, stateDir: '/tmp/x' }), /encryptionKey/)
})

t.test('a weaker fsync setting is reported', async (t) => {
  const redis = await withRedis(t, { args: ['--appendfsync', 'everysec'] })
  const { logs } = await newStore(t, redis)
  t.ok(logs.some((l) => l.level === 40 && /everysec.*~1 s/.test(l.msg)), 'warns about the loss window')
})

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await allFiles(p)))
    else out.push(p)
  }
  return out
}
