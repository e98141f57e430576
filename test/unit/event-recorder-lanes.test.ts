// The event recorder with concurrency > 1 (the scheduler's Scheduled
// Events): writes of different objects run in parallel up to the limit; an
// object's events stay one at a time and in order, so a repeat still becomes
// a count patch of the Event the first write created. The client is a fake
// that holds each write until the test releases it.
import t from 'tap'
import { CorrelatingEventRecorder, laneOf } from '../../controlplane/client/event-recorder.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { silentLogger } from '../../lib/log.ts'

const pod = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `u-${name}` } })

function fakeClient() {
  const calls: Array<{ verb: string; object: string; count?: number }> = []
  const held: Array<() => void> = []
  let inFlight = 0
  let maxInFlight = 0
  let rv = 0
  const write = async (verb: string, object: string, answer: any) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    calls.push({ verb, object, count: answer.count })
    await new Promise<void>((r) => held.push(r))
    inFlight--
    return { ...answer, metadata: { ...answer.metadata, resourceVersion: String(++rv) } }
  }
  const client = {
    create: (_i: unknown, _ns: string, ev: any) => write('create', ev.involvedObject.name, ev),
    patch: (_i: unknown, ns: string, name: string, p: any) => write('patch', name.split('.')[0]!, { ...p, metadata: { name, namespace: ns }, involvedObject: {} }),
  } as unknown as ApiClient
  const releaseAll = async () => {
    while (held.length || inFlight) {
      for (const r of held.splice(0)) r()
      await new Promise((r) => setImmediate(r))
    }
  }
  return { client, calls, releaseAll, stats: () => ({ inFlight, maxInFlight }) }
}

t.test('laneOf: one lane per object, spread over the lanes', async (t) => {
  t.equal(laneOf(pod('a'), 1), 0)
  t.equal(laneOf(pod('web-1'), 8), laneOf(pod('web-1'), 8), 'stable')
  const used = new Set(Array.from({ length: 200 }, (_, i) => laneOf(pod(`p-${i}`), 8)))
  t.equal(used.size, 8, '200 pods use all 8 lanes')
})

t.test('different objects in parallel up to the limit; one object in order', async (t) => {
  const f = fakeClient()
  const r = new CorrelatingEventRecorder({ client: f.client, logger: silentLogger(), source: { component: 'default-scheduler' }, concurrency: 4 })
  for (let i = 0; i < 40; i++) r.event(pod(`p-${i}`), 'Normal', 'Scheduled', `Successfully assigned default/p-${i} to n1`)
  r.event(pod('p-0'), 'Normal', 'Scheduled', 'Successfully assigned default/p-0 to n1')
  await new Promise((r) => setImmediate(r))
  t.ok(f.stats().inFlight > 1 && f.stats().inFlight <= 4, `several writes at once, at most 4 (${f.stats().inFlight})`)
  await f.releaseAll()
  t.ok(f.stats().maxInFlight <= 4, 'never more than 4')
  t.equal(f.calls.filter((c) => c.verb === 'create').length, 40, 'every pod has its Event')
  const p0 = f.calls.filter((c) => c.object === 'p-0')
  t.same(p0.map((c) => c.verb), ['create', 'patch'], "p-0's repeat is a patch of the Event its first write created")
  t.equal(p0[1]!.count, 2)
})

t.test('concurrency 1 (the default) keeps one write at a time', async (t) => {
  const f = fakeClient()
  const r = new CorrelatingEventRecorder({ client: f.client, logger: silentLogger(), source: { component: 'x' } })
  for (let i = 0; i < 10; i++) r.event(pod(`p-${i}`), 'Normal', 'Scheduled', 'm')
  await new Promise((r) => setImmediate(r))
  t.equal(f.stats().inFlight, 1)
  await f.releaseAll()
  t.equal(f.stats().maxInFlight, 1)
  t.same(f.calls.map((c) => c.object), Array.from({ length: 10 }, (_, i) => `p-${i}`), 'in order')
})
