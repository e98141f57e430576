// Fault: kill -9 of the Redis primary under 50 writes/s (README.md here).
//
// A real apiserver (startServer, controllers off) on Redis under Sentinel
// (harness/redis-sentinel.ts). Creates start every 20 ms on a fixed schedule
// (open loop) before, during and after the failover; a watch is open across
// it and is resumed the way a client would (same resourceVersion after an
// error, re-list after 410). Pass criteria:
//  - every acknowledged (201) write is readable afterwards with its value;
//  - every revision acknowledged for a write sent after the kill is higher
//    than every revision served before it (acknowledged or watched), and no
//    revision is acknowledged twice;
//  - the watch continues without a gap or a duplicate, or ends and its
//    re-watch gets 410 and a re-list has everything;
//  - writes succeed again within 30 s (the failover time is reported, not
//    asserted tightly: these machines are noisy).

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject, WatchEvent } from '../../controlplane/api/types.ts'
import { ApiClient, ApiClientError, resourcePath } from '../../controlplane/client/client.ts'
import { adminToken, ensureTokens, startServer } from '../../controlplane/server.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { withRedisSentinel } from '../harness/redis-sentinel.ts'

const cms = lookupResource('', 'v1', 'configmaps')!
const ratePerSecond = 50
const beforeKillMs = 3_000
const afterRecoveryMs = 3_000
const recoveryBoundMs = 30_000

interface Ack {
  name: string
  value: string
  rv: number
  sentAt: number
  ackedAt: number
}

t.test('kill -9 of the Redis primary under 50 writes/s', async (t) => {
  const group = await withRedisSentinel(t)
  const stateDir = await mkdtemp(join(tmpdir(), 'skiff-fault-'))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  ensureTokens(stateDir)
  const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
  const server = await startServer({
    stateDir,
    redis: { password: group.password, sentinel: group.sentinelOptions },
    port: 0,
    logger,
    controllers: false,
  })
  t.teardown(() => server.stop())
  const client = new ApiClient({ server: server.url, caPem: server.caPem, token: adminToken(stateDir), timeoutMs: 15_000 })
  t.teardown(() => client.close())

  const list0 = await client.list(cms, 'default')
  const startRV = Number(list0.metadata.resourceVersion)

  // The watch, resumed as a client resumes it.
  const watch = resumingWatch(client, startRV)
  t.teardown(() => watch.stop())

  // Open-loop load.
  const acks: Ack[] = []
  const failures = new Map<string, number>()
  const inflight = new Set<Promise<void>>()
  let killedAt = Infinity
  let seq = 0
  const send = () => {
    const name = `w-${seq++}`
    const value = `${name}-${Math.random().toString(36).slice(2)}`
    const sentAt = performance.now()
    const p = client
      .create(cms, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: value } } as KubeObject)
      .then(
        (o) => void acks.push({ name, value, rv: Number(o.metadata.resourceVersion), sentAt, ackedAt: performance.now() }),
        (err) => {
          const key = err instanceof ApiClientError ? `${err.status} ${err.reason ?? ''}`.trim() : (err as Error).message
          failures.set(key, (failures.get(key) ?? 0) + 1)
        },
      )
      .finally(() => inflight.delete(p))
    inflight.add(p)
  }
  const timer = setInterval(send, 1000 / ratePerSecond)
  t.teardown(() => clearInterval(timer))

  await sleep(beforeKillMs)
  const old = await group.primary()
  const servedBeforeKill = Math.max(0, ...acks.map((a) => a.rv), watch.highest())
  killedAt = performance.now()
  await old.kill9()
  const killDone = performance.now()
  const sentBefore = seq

  // Keep writing until writes sent after the kill succeed again, then a while longer.
  const firstAfter = () => acks.filter((a) => a.sentAt >= killDone).sort((a, b) => a.ackedAt - b.ackedAt)[0]
  const deadline = killDone + recoveryBoundMs
  while (!firstAfter() && performance.now() < deadline) await sleep(50)
  const recovered = firstAfter()
  await sleep(afterRecoveryMs)
  clearInterval(timer)
  await Promise.all([...inflight])

  const newPrimary = await group.primary()
  t.not(newPrimary, old, `the sentinels promoted another node (port ${newPrimary.port})`)
  t.ok(recovered, `writes sent after the kill succeed again within ${recoveryBoundMs / 1000} s`)
  if (recovered) t.comment(`failover: first write sent after the kill acknowledged ${Math.round(recovered.ackedAt - killedAt)} ms after the kill`)
  const failed = [...failures.values()].reduce((a, b) => a + b, 0)
  t.comment(`writes: ${seq} sent (${sentBefore} before the kill), ${acks.length} acknowledged, ${failed} failed: ${JSON.stringify(Object.fromEntries(failures))}`)
  t.ok(acks.filter((a) => a.sentAt < killedAt).length >= 50, 'writes were acknowledged before the kill')
  t.ok(acks.filter((a) => a.sentAt >= killDone).length >= 50, 'writes were acknowledged after the failover')
  for (const key of failures.keys()) t.match(key, /^503/, `failures are 503s (${key}), never a wrong answer`)

  // Every acknowledged write is there with its value.
  const after = await client.list(cms, 'default')
  const stored = new Map(after.items.map((o) => [o.metadata.name!, o]))
  const lost = acks.filter((a) => stored.get(a.name)?.data?.v !== a.value).map((a) => a.name)
  t.same(lost, [], `all ${acks.length} acknowledged writes survive with their values`)

  // Revisions: never reused, and the new primary's are above everything served before.
  const revs = acks.map((a) => a.rv)
  t.equal(new Set(revs).size, revs.length, 'no revision acknowledged twice')
  const beforeRevs = acks.filter((a) => a.sentAt < killedAt).map((a) => a.rv)
  const afterRevs = acks.filter((a) => a.sentAt >= killDone).map((a) => a.rv)
  const servedOld = Math.max(servedBeforeKill, ...beforeRevs)
  t.ok(Math.min(...afterRevs) > servedOld, `first revision after the failover ${Math.min(...afterRevs)} > ${servedOld}, the highest served before`)

  // The watch: wait until it has caught up with the last acknowledged write.
  const lastRV = Math.max(...revs)
  const caughtUp = await waitFor(() => watch.highest() >= lastRV, 30_000)
  t.ok(caughtUp, `the resumed watch reaches revision ${lastRV} (at ${watch.highest()})`)
  watch.stop()
  const seg = watch.result()
  t.comment(`watch: ${seg.ends.length} end(s) (${seg.ends.join('; ')}), ${seg.gone} 410(s), ${seg.events.length} events`)
  const evRevs = seg.events.map((e) => Number(e.object.metadata.resourceVersion))
  t.ok(evRevs.every((r, i) => i === 0 || r > evRevs[i - 1]!), 'watch revisions strictly increase across resumes (no duplicate, no reordering)')
  const addedNames = seg.events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name!)
  t.equal(new Set(addedNames).size, addedNames.length, 'no object ADDED twice')
  const seenEvents = new Set(addedNames)
  const missing = acks.filter((a) => !seenEvents.has(a.name) && !seg.relistedCovers(a.rv)).map((a) => `${a.name}@${a.rv}`)
  t.same(missing, [], 'every acknowledged write reached the watch, or a re-list after 410 covered it')
  if (seg.gone > 0) {
    for (const l of seg.relists) {
      const names = new Set(l.names)
      const notListed = acks.filter((a) => a.rv > l.after && a.rv <= l.rv && !names.has(a.name)).map((a) => a.name)
      t.same(notListed, [], `the re-list at ${l.rv} after 410 holds every write after ${l.after}`)
    }
  }
})

/**
 * A watch of ConfigMaps in default that resumes like a client: after an
 * ERROR other than 410, or a closed stream, watch again from the last
 * revision; after 410 list again and watch from the list's revision.
 */
function resumingWatch(client: ApiClient, from: number) {
  const events: WatchEvent[] = []
  const ends: string[] = []
  const relists: { after: number; rv: number; names: string[] }[] = []
  let gone = 0
  let rv = from
  let stopped = false
  let handle: { stop(): void } | undefined
  const open = () => {
    if (stopped) return
    let endedWith = ''
    handle = client.watch(
      resourcePath(cms, 'default'),
      { resourceVersion: String(rv) },
      (ev) => {
        if (ev.type === 'ERROR') {
          const status = ev.object as unknown as { code?: number; message?: string }
          endedWith = `${status.code} ${status.message ?? ''}`
          return
        }
        if (ev.type === 'BOOKMARK') return
        events.push(ev)
        rv = Number(ev.object.metadata.resourceVersion)
      },
      (err) => {
        if (stopped) return
        const why = endedWith || (err ? `${(err as ApiClientError).status ?? ''} ${err.message}` : 'closed')
        ends.push(why.slice(0, 120))
        if (/^410\b/.test(why)) {
          gone++
          const after = rv
          void relist(after)
        } else setTimeout(open, 200)
      },
    )
  }
  const relist = async (after: number) => {
    for (;;) {
      if (stopped) return
      try {
        const l = await client.list(cms, 'default')
        rv = Number(l.metadata.resourceVersion)
        relists.push({ after, rv, names: l.items.map((o) => o.metadata.name!) })
        open()
        return
      } catch {
        await sleep(200)
      }
    }
  }
  open()
  return {
    highest: () => rv,
    stop() {
      stopped = true
      handle?.stop()
    },
    result: () => ({
      events,
      ends,
      gone,
      relists,
      relistedCovers: (r: number) => relists.some((l) => r > l.after && r <= l.rv),
    }),
  }
}

async function waitFor(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
