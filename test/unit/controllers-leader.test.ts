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
