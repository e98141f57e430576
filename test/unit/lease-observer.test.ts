// controlplane/client/lease-observer.ts: a Lease is fresh while it was seen
// to change within its duration, on the observer's own clock; the writer's
// renewTime is never read as a time.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { LeaseObserver, leaseRecordKey } from '../../controlplane/client/lease-observer.ts'

const lease = (renewTime: string, o: { duration?: number; holder?: string; uid?: string; name?: string } = {}): KubeObject => ({
  apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
  metadata: { name: o.name ?? 'n1', namespace: 'kube-node-lease', uid: o.uid ?? 'u1', annotations: { 'x.example/any': renewTime } },
  spec: { holderIdentity: o.holder ?? 'n1', leaseDurationSeconds: o.duration ?? 40, renewTime },
})

function observerAt(start = 1_000): { o: LeaseObserver; advance(ms: number): void } {
  let clock = start
  return { o: new LeaseObserver({ now: () => clock }), advance: (ms) => void (clock += ms) }
}

t.test('first sight counts as a renewal now; fresh until the duration has passed without a change', async (t) => {
  const { o, advance } = observerAt()
  const l = lease('2020-01-01T00:00:00.000000Z')
  t.ok(o.fresh(l), 'a renewTime years old is no evidence: first sight gives a full duration')
  advance(39_999)
  t.ok(o.fresh(l))
  advance(1)
  t.notOk(o.fresh(l), 'unchanged for 40 s: expired')
  t.ok(o.fresh(lease('2020-01-01T00:00:03.000000Z')), 'a new renewTime is a renewal, whatever time it names')
})

t.test('renewTimes from a clock 10 minutes ahead or behind, or going backwards, are renewals all the same', async (t) => {
  const { o, advance } = observerAt()
  const real = Date.parse('2026-12-04T12:00:00Z')
  for (const [i, offset] of [0, 600_000, 600_000, -600_000, -600_000, 0].entries()) {
    const l = lease(new Date(real + i * 3_000 + offset).toISOString())
    t.ok(o.fresh(l), `renewal ${i} (writer ${offset / 60_000} min off)`)
    advance(3_000)
  }
  const last = lease(new Date(real + 5 * 3_000).toISOString())
  t.equal(o.expiresAt(last), 1_000 + 5 * 3_000 + 40_000, 'expires one duration after the last change was seen')
})

t.test('what counts as a change: the record, not annotations; a re-created Lease is new', async (t) => {
  const { o, advance } = observerAt()
  const l = lease('2026-12-04T12:00:00.000000Z')
  const seen = o.observedAt(l)
  advance(5_000)
  t.equal(o.observedAt({ ...l, metadata: { ...l.metadata, annotations: { other: 'x' } } }), seen, 'an annotation change is no renewal')
  t.equal(o.observedAt(lease('2026-12-04T12:00:00.000000Z', { holder: 'n2' })), 6_000, 'a new holder is a change')
  advance(1_000)
  t.equal(o.observedAt(lease('2026-12-04T12:00:00.000000Z', { holder: 'n2', uid: 'u2' })), 7_000, 'a new uid (deleted and created again) is a change')
  t.equal(leaseRecordKey(undefined), '', 'no Lease is a state of its own')
})

t.test('a Lease without a positive duration is never fresh', async (t) => {
  const { o } = observerAt()
  t.notOk(o.fresh(lease('2026-12-04T12:00:00.000000Z', { duration: 0 })))
  t.equal(o.expiresAt(lease('2026-12-04T12:00:00.000000Z', { duration: 0 })), -Infinity)
})

t.test('informer handlers date changes as they arrive, and forget deleted Leases', async (t) => {
  const { o, advance } = observerAt()
  const h = o.handlers()
  const a = lease('2026-12-04T12:00:00.000000Z')
  h.onAdd!(a)
  advance(30_000)
  const b = lease('2026-12-04T12:00:30.000000Z')
  h.onUpdate!(a, b)
  advance(30_000)
  t.ok(o.fresh(b), 'renewed 30 s ago (seen then), fresh although first looked at now')
  h.onDelete!(b)
  advance(20_000)
  t.ok(o.fresh(b), 'forgotten: seen again, it counts from now')
})

t.test('observe(key, state): since when a state has held', async (t) => {
  const { o, advance } = observerAt()
  t.equal(o.observe('taint/n1', 'unreachable'), 1_000)
  advance(10_000)
  t.equal(o.observe('taint/n1', 'unreachable'), 1_000, 'unchanged')
  t.equal(o.observe('taint/n1', ''), 11_000, 'changed: from now')
  o.forget('taint/n1')
  advance(1)
  t.equal(o.observe('taint/n1', ''), 11_001, 'forgotten: new')
})
