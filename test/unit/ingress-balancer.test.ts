// The ingress balancer: exact sequences of choices (round-robin,
// least-request, cookie affinity) and passive ejection with an injected clock.

import t from 'tap'
import { Balancer, affinityValue, ejectAfterFailures, ejectionMs } from '../../dataplane/ingress/balancer.ts'
import type { Endpoint } from '../../dataplane/ingress/state.ts'

const eps = (...names: string[]): Endpoint[] => names.map((n) => ({ id: n, ip: n, port: 80 }))
const A = eps('A', 'B', 'C')
const seq = (b: Balancer, n: number, req: Partial<Parameters<Balancer['pick']>[0]> = {}): string[] =>
  Array.from({ length: n }, () => b.pick({ backend: 'ns/s:80', endpoints: A, policy: 'round-robin', ...req })!.endpoint.id)

t.test('round-robin order; exclude for retries', async (t) => {
  const b = new Balancer()
  t.same(seq(b, 5), ['A', 'B', 'C', 'A', 'B'])
  t.not(b.pick({ backend: 'x', endpoints: A, policy: 'round-robin', exclude: ['A'] })!.endpoint.id, 'A')
  t.equal(b.pick({ backend: 'x', endpoints: eps('A'), policy: 'round-robin', exclude: ['A'] }), undefined)
})

t.test('least-request: fewest in flight, ties round-robin', async (t) => {
  const b = new Balancer()
  const endA = b.begin('A')
  b.begin('A')
  b.begin('B')
  t.same(seq(b, 3, { policy: 'least-request' }), ['C', 'C', 'C'])
  const endC = b.begin('C')
  b.begin('C')
  t.same(seq(b, 1, { policy: 'least-request' }), ['B'])
  endA()
  endA() // idempotent
  t.equal(b.inFlight('A'), 1)
  endC()
  t.same(seq(b, 3, { policy: 'least-request' }), ['B', 'C', 'A'], 'all tied: round-robin continues')
})

t.test('cookie: pinned while the endpoint lives, re-pinned when it leaves', async (t) => {
  const b = new Balancer()
  const first = b.pick({ backend: 'k', endpoints: A, policy: 'cookie' })!
  t.ok(first.setAffinity, 'first response sets the cookie')
  t.equal(first.setAffinity, affinityValue(first.endpoint.id))
  for (let i = 0; i < 5; i++) {
    const p = b.pick({ backend: 'k', endpoints: A, policy: 'cookie', affinity: first.setAffinity })!
    t.equal(p.endpoint.id, first.endpoint.id)
    t.equal(p.setAffinity, undefined)
  }
  const rest = A.filter((e) => e.id !== first.endpoint.id)
  const moved = b.pick({ backend: 'k', endpoints: rest, policy: 'cookie', affinity: first.setAffinity })!
  t.not(moved.endpoint.id, first.endpoint.id)
  t.equal(moved.setAffinity, affinityValue(moved.endpoint.id), 'a removed endpoint means a new pin')
})

t.test('ejection after 5 consecutive failures, expiry, never the last', async (t) => {
  let now = 1_000
  const b = new Balancer({ now: () => now })
  const two = eps('A', 'B')
  for (let i = 1; i < ejectAfterFailures; i++) t.equal(b.recordFailure('A', two), false)
  b.recordSuccess('A')
  for (let i = 1; i < ejectAfterFailures; i++) b.recordFailure('A', two)
  t.equal(b.isEjected('A'), false, 'a success resets the streak')
  t.equal(b.recordFailure('A', two), true, 'fifth in a row ejects')
  const picks = Array.from({ length: 4 }, () => b.pick({ backend: 'k', endpoints: two, policy: 'round-robin' })!.endpoint.id)
  t.same(picks, ['B', 'B', 'B', 'B'])
  for (let i = 0; i < ejectAfterFailures; i++) t.equal(b.recordFailure('B', two), false, 'the last healthy endpoint is never ejected')
  now += ejectionMs - 1
  t.equal(b.isEjected('A'), true)
  now += 1
  t.equal(b.isEjected('A'), false, 'ejection expires')
  t.same(Array.from({ length: 2 }, () => b.pick({ backend: 'k2', endpoints: two, policy: 'round-robin' })!.endpoint.id), ['A', 'B'])
})

t.test('all ejected (endpoints changed): still answers', async (t) => {
  let now = 0
  const b = new Balancer({ now: () => now })
  const three = eps('A', 'B', 'C')
  for (let i = 0; i < ejectAfterFailures; i++) b.recordFailure('A', three)
  for (let i = 0; i < ejectAfterFailures; i++) b.recordFailure('B', three)
  t.ok(b.isEjected('A') && b.isEjected('B'))
  t.equal(b.pick({ backend: 'k', endpoints: eps('A', 'B'), policy: 'round-robin' })!.endpoint.id, 'A', 'only ejected ones left: use them')
  b.retain(new Set(), new Set(['B']))
  t.equal(b.isEjected('A'), false, 'a departed endpoint is forgotten')
})
