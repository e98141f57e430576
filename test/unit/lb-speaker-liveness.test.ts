// Node liveness from node Leases, by the observer's clock: the start-up
// grace, death after the deadline, the control-plane freeze and the thaw.
import t from 'tap'
import { leaseViews, stepLiveness, type LivenessState } from '../../dataplane/lb-speaker/liveness.ts'

const deadlineMs = 10_000

/**
 * One step per row: the renewTime of each Lease as the informer shows it at
 * `at` (ms, the speaker's clock); `alive` and `frozen` are what the speaker
 * must conclude. A missing node in `leases` means its Lease is gone.
 */
interface Step {
  at: number
  leases: Record<string, string>
  alive: string[]
  frozen?: boolean
}

const scenarios: Array<{ name: string; steps: Step[] }> = [
  {
    name: 'start-up grace: every Lease counts as just renewed, whatever its renewTime says',
    steps: [
      { at: 0, leases: { a: 'old', b: '1999-01-01T00:00:00.000000Z' }, alive: ['a', 'b'] },
      { at: 10_000, leases: { a: 'old', b: '1999-01-01T00:00:00.000000Z' }, alive: ['a', 'b'] },
    ],
  },
  {
    name: 'a node whose renewTime stops changing dies after the deadline, the others live',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 3_000, leases: { a: 'a1', b: 'b1', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 6_000, leases: { a: 'a2', b: 'b2', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 10_000, leases: { a: 'a3', b: 'b3', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 10_001, leases: { a: 'a3', b: 'b3', c: 'c0' }, alive: ['a', 'b'] },
      { at: 12_000, leases: { a: 'a4', b: 'b4', c: 'c1' }, alive: ['a', 'b', 'c'] },
    ],
  },
  {
    name: 'a renewTime from a clock far ahead or behind changes nothing: only the change counts',
    steps: [
      { at: 0, leases: { a: '2099-01-01T00:00:00Z', b: '1970-01-01T00:00:00Z' }, alive: ['a', 'b'] },
      { at: 5_000, leases: { a: '2099-01-01T00:00:05Z', b: '1970-01-01T00:00:05Z' }, alive: ['a', 'b'] },
      { at: 14_000, leases: { a: '2099-01-01T00:00:14Z', b: '1970-01-01T00:00:05Z' }, alive: ['a', 'b'] },
      { at: 15_001, leases: { a: '2099-01-01T00:00:14Z', b: '1970-01-01T00:00:05Z' }, alive: ['a'] },
    ],
  },
  {
    name: 'a deleted Lease is a dead node at once; a new one is alive at once',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0' }, alive: ['a', 'b'] },
      { at: 1_000, leases: { a: 'a0' }, alive: ['a'] },
      { at: 2_000, leases: { a: 'a0', d: 'd0' }, alive: ['a', 'd'] },
    ],
  },
  {
    name: 'control plane silent: no Lease changes at all, nobody is declared dead, the verdict freezes',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 2_000, leases: { a: 'a1', b: 'b1', c: 'c1' }, alive: ['a', 'b', 'c'] },
      { at: 12_000, leases: { a: 'a1', b: 'b1', c: 'c1' }, alive: ['a', 'b', 'c'] },
      { at: 12_001, leases: { a: 'a1', b: 'b1', c: 'c1' }, alive: ['a', 'b', 'c'], frozen: true },
      { at: 600_000, leases: { a: 'a1', b: 'b1', c: 'c1' }, alive: ['a', 'b', 'c'], frozen: true },
    ],
  },
  {
    name: 'the freeze keeps a node that was already dead dead',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 5_000, leases: { a: 'a1', b: 'b1', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 10_001, leases: { a: 'a1', b: 'b1', c: 'c0' }, alive: ['a', 'b'] },
      { at: 15_001, leases: { a: 'a1', b: 'b1', c: 'c0' }, alive: ['a', 'b'], frozen: true },
    ],
  },
  {
    name: 'thaw: the first change after an outage gives the nodes alive before it a fresh deadline, so nothing flaps',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 10_001, leases: { a: 'a0', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'], frozen: true },
      { at: 60_000, leases: { a: 'a1', b: 'b0', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 65_000, leases: { a: 'a2', b: 'b1', c: 'c0' }, alive: ['a', 'b', 'c'] },
      { at: 70_001, leases: { a: 'a3', b: 'b2', c: 'c0' }, alive: ['a', 'b'] },
    ],
  },
  {
    name: 'thaw does not revive a node that was dead before the outage',
    steps: [
      { at: 0, leases: { a: 'a0', b: 'b0' }, alive: ['a', 'b'] },
      { at: 9_000, leases: { a: 'a1', b: 'b0' }, alive: ['a', 'b'] },
      { at: 10_001, leases: { a: 'a1', b: 'b0' }, alive: ['a'] },
      { at: 19_001, leases: { a: 'a1', b: 'b0' }, alive: ['a'], frozen: true },
      { at: 30_000, leases: { a: 'a2', b: 'b0' }, alive: ['a'] },
    ],
  },
  {
    name: 'our own Lease counts like any other: only ours renewing is enough to judge',
    steps: [
      { at: 0, leases: { self: 's0', b: 'b0' }, alive: ['self', 'b'] },
      { at: 9_000, leases: { self: 's1', b: 'b0' }, alive: ['self', 'b'] },
      { at: 10_001, leases: { self: 's1', b: 'b0' }, alive: ['self'] },
    ],
  },
  {
    name: 'no Leases at all: nobody alive, nothing to freeze',
    steps: [
      { at: 0, leases: {}, alive: [] },
      { at: 60_000, leases: {}, alive: [] },
    ],
  },
]

for (const sc of scenarios) {
  t.test(sc.name, async (t) => {
    let state: LivenessState | undefined
    for (const step of sc.steps) {
      state = stepLiveness(state, { leases: Object.entries(step.leases).map(([node, renewTime]) => ({ node, renewTime })), nowMs: step.at, deadlineMs })
      t.same([...state.alive].sort(), [...step.alive].sort(), `alive at ${step.at} ms`)
      t.equal(state.frozen, step.frozen ?? false, `frozen at ${step.at} ms`)
    }
  })
}

t.test('the freeze remembers when it began', async (t) => {
  let s = stepLiveness(undefined, { leases: [{ node: 'a', renewTime: '1' }], nowMs: 0, deadlineMs })
  s = stepLiveness(s, { leases: [{ node: 'a', renewTime: '1' }], nowMs: 10_500, deadlineMs })
  s = stepLiveness(s, { leases: [{ node: 'a', renewTime: '1' }], nowMs: 20_000, deadlineMs })
  t.equal(s.frozenSinceMs, 10_500)
})

t.test('leaseViews reads the name and spec.renewTime', async (t) => {
  t.same(leaseViews([{ metadata: { name: 'n1' }, spec: { renewTime: '2026-01-01T00:00:00.000000Z' } }, { metadata: { name: 'n2' } }, { metadata: {} }]), [
    { node: 'n1', renewTime: '2026-01-01T00:00:00.000000Z' },
    { node: 'n2', renewTime: '' },
  ])
})
