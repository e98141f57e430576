import t from 'tap'
import { microTime, planLeaseWrite, type LeaseRecord } from '../../controlplane/controllers/leader.ts'

const now = Date.parse('2025-06-01T12:00:00Z')
const held = (holder: string, over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: microTime(now - 60_000),
  renewTime: microTime(now - 1_000),
  leaseTransitions: 3,
  ...over,
})

const cases: Array<{ name: string; current: LeaseRecord | undefined; observedAgoMs: number; want: Partial<LeaseRecord> | undefined }> = [
  { name: 'no lease: create it as holder', current: undefined, observedAgoMs: 0, want: { holderIdentity: 'me', leaseTransitions: 0, acquireTime: microTime(now) } },
  { name: 'held by another, seen changing recently: wait', current: held('other'), observedAgoMs: 14_000, want: undefined },
  { name: 'held by another, unchanged for the lease duration: take over', current: held('other'), observedAgoMs: 16_000, want: { holderIdentity: 'me', leaseTransitions: 4, acquireTime: microTime(now) } },
  { name: 'released (empty holder): take over at once', current: held('', { leaseDurationSeconds: 1 }), observedAgoMs: 0, want: { holderIdentity: 'me', leaseTransitions: 4, leaseDurationSeconds: 15 } },
  { name: 'ours: renew, keeping acquireTime and transitions', current: held('me'), observedAgoMs: 2_000, want: { holderIdentity: 'me', leaseTransitions: 3, acquireTime: microTime(now - 60_000), renewTime: microTime(now) } },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = planLeaseWrite({ current: c.current, identity: 'me', leaseDurationMs: 15_000, now, observedAtMs: now - c.observedAgoMs })
    if (c.want === undefined) t.equal(got, undefined)
    else t.match(got, c.want)
  })
}

t.test('MicroTime has microseconds', async (t) => {
  t.equal(microTime(Date.parse('2025-06-01T12:00:00.123Z')), '2025-06-01T12:00:00.123000Z')
})

// The expiry check runs on the observer's monotonic clock; `now` only dates what is written.
t.test('a wall clock stepped 10 minutes either way neither takes a live lease nor keeps a dead one', async (t) => {
  const mono = 5_000_000
  const plan = (wall: number, observedAgoMs: number) =>
    planLeaseWrite({ current: held('other', { renewTime: microTime(now - 1_000) }), identity: 'me', leaseDurationMs: 15_000, now: wall, observedAtMs: mono - observedAgoMs, monotonicNow: mono })
  t.equal(plan(now + 600_000, 2_000), undefined, 'wall clock 10 min ahead: still held')
  t.equal(plan(now - 600_000, 2_000), undefined, 'wall clock 10 min behind: still held')
  const taken = plan(now - 600_000, 16_000)
  t.match(taken, { holderIdentity: 'me', leaseTransitions: 4, renewTime: microTime(now - 600_000) }, 'unchanged for the duration on the monotonic clock: taken, stamped with the wall clock')
})
