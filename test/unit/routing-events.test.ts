// decideRouting: when `kubectl describe svc|ingress` gets an Event saying
// that a routing change is applied on n/n nodes, or that it is not yet.

import t from 'tap'
import { decideRouting, routingEventName } from '../../controlplane/controllers/routing-events.ts'
import type { Applier } from '../../controlplane/api/routing-applied.ts'

const at = (node: string, revision: number): Applier => ({ node, component: 'service-proxy', revision })
const base = { warnAfterMs: 10_000, unit: 'nodes' }

t.test('first sight: a target applied everywhere is taken silently; one not yet applied is waited for', async (t) => {
  const silent = decideRouting({ ...base, target: 10, appliers: [at('a', 10), at('b', 12)], nowMs: 0 })
  t.same(silent, { state: { announced: 10 } }, 'no Event for what was applied before the controller started')
  const waiting = decideRouting({ ...base, target: 10, appliers: [at('a', 10), at('b', 9)], nowMs: 0 })
  t.same(waiting.state.oldest, { target: 10, sinceMs: 0, warned: false })
  t.notOk(waiting.event)
})

t.test('a change applied by every serving node: one Normal Event with the time it took', async (t) => {
  const s0 = decideRouting({ ...base, target: 10, appliers: [at('a', 10), at('b', 10)], nowMs: 0 }).state
  const s1 = decideRouting({ ...base, state: s0, target: 11, appliers: [at('a', 11), at('b', 10)], nowMs: 1_000 })
  t.notOk(s1.event, 'not yet: b is behind')
  const s2 = decideRouting({ ...base, state: s1.state, target: 11, appliers: [at('a', 11), at('b', 11)], nowMs: 1_180 })
  t.same(s2.event, { type: 'Normal', reason: 'RoutingApplied', message: 'applied on 2/2 nodes: revision 11, 180 ms after the change was seen' })
  t.same(s2.state, { announced: 11 }, 'nothing pending')
  t.notOk(decideRouting({ ...base, state: s2.state, target: 11, appliers: [at('a', 11), at('b', 11)], nowMs: 2_000 }).event, 'said once')
})

t.test('not applied after warnAfterMs: one Warning naming the nodes behind; a later success still says so', async (t) => {
  const s0 = { announced: 10 }
  const s1 = decideRouting({ ...base, state: s0, target: 12, appliers: [at('b', 12), at('a', 10)], nowMs: 0 })
  const s2 = decideRouting({ ...base, state: s1.state, target: 12, appliers: [at('b', 12), at('a', 10)], nowMs: 10_000 })
  t.same(s2.event, { type: 'Warning', reason: 'RoutingNotApplied', message: 'revision 12 applied on 1/2 nodes after 10 s; not yet: a (service-proxy at 10)' })
  t.notOk(decideRouting({ ...base, state: s2.state, target: 12, appliers: [at('b', 12), at('a', 10)], nowMs: 11_000 }).event, 'warned once')
  const s3 = decideRouting({ ...base, state: s2.state, target: 13, appliers: [at('b', 13), at('a', 13)], nowMs: 12_000 })
  t.match(s3.event, { type: 'Normal', message: /revision 13, 0 ms after/ }, 'applied at once when seen')
})

t.test('changes that keep coming, each applied quickly: no Warning; one node stuck on an old one: a Warning about that one', async (t) => {
  let state = decideRouting({ ...base, target: 10, appliers: [at('a', 10), at('b', 10)], nowMs: 0 }).state
  let warnings = 0
  for (let i = 1; i <= 30; i++) {
    // Every second a new revision; each node applies the previous one.
    const d = decideRouting({ ...base, state, target: 10 + i, appliers: [at('a', 9 + i), at('b', 9 + i)], nowMs: i * 1_000 })
    if (d.event?.type === 'Warning') warnings++
    state = d.state
  }
  t.equal(warnings, 0, 'a moving target alone never warns')
  let s = decideRouting({ ...base, target: 10, appliers: [at('a', 10), at('ghost', 1)], nowMs: 0 }).state
  let warned
  for (let i = 1; i <= 12; i++) {
    const d = decideRouting({ ...base, state: s, target: 10 + i, appliers: [at('a', 10 + i), at('ghost', 1)], nowMs: i * 1_000 })
    warned ??= d.event
    s = d.state
  }
  t.same(warned, { type: 'Warning', reason: 'RoutingNotApplied', message: 'revision 10 applied on 1/2 nodes after 10 s; not yet: ghost (service-proxy at 1)' })
})

t.test('no serving node: nothing to wait for, nothing said', async (t) => {
  t.same(decideRouting({ ...base, state: { announced: 3 }, target: 5, appliers: [], nowMs: 0 }), { state: { announced: 3 } })
})

t.test('one Event name per object and reason', async (t) => {
  const svc = { metadata: { name: 'web', uid: 'u1' } }
  t.equal(routingEventName(svc, 'RoutingApplied'), routingEventName(svc, 'RoutingApplied'))
  t.not(routingEventName(svc, 'RoutingApplied'), routingEventName(svc, 'RoutingNotApplied'))
  t.match(routingEventName(svc, 'RoutingApplied'), /^web\.[0-9a-f]{16}$/)
})
