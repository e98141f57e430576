// Which /32s the speaker adds and removes on the LAN interface: only what it
// recorded is ever removed, and the node's own addresses are never touched.
import t from 'tap'
import { inNetns, planAddresses } from '../../dataplane/lb-speaker/addresses.ts'
import { speakerLabelValue } from '../../dataplane/lb-speaker/speaker.ts'

const cases: Array<{ name: string; desired: string[]; recorded: string[]; present: Record<string, number>; add: string[]; remove: string[]; record: string[]; conflicts?: string[] }> = [
  { name: 'a new IP is added and recorded', desired: ['10.9.0.200'], recorded: [], present: { '10.9.0.11': 24 }, add: ['10.9.0.200'], remove: [], record: ['10.9.0.200'] },
  { name: 'an IP already held stays, no change', desired: ['10.9.0.200'], recorded: ['10.9.0.200'], present: { '10.9.0.11': 24, '10.9.0.200': 32 }, add: [], remove: [], record: ['10.9.0.200'] },
  { name: 'an IP no longer elected here is removed', desired: [], recorded: ['10.9.0.200'], present: { '10.9.0.11': 24, '10.9.0.200': 32 }, add: [], remove: ['10.9.0.200'], record: ['10.9.0.200'] },
  { name: 'a recorded IP that is gone is forgotten', desired: [], recorded: ['10.9.0.200'], present: { '10.9.0.11': 24 }, add: [], remove: [], record: [] },
  { name: 'a /32 nobody recorded is never removed', desired: [], recorded: [], present: { '10.9.0.11': 24, '10.9.0.250': 32 }, add: [], remove: [], record: [] },
  { name: 'a desired /32 already there (record lost) is adopted', desired: ['10.9.0.200'], recorded: [], present: { '10.9.0.200': 32 }, add: [], remove: [], record: ['10.9.0.200'] },
  {
    name: 'a LoadBalancer IP equal to a host address is neither added nor ever removed',
    desired: ['10.9.0.11'], recorded: ['10.9.0.11'], present: { '10.9.0.11': 24 }, add: [], remove: [], record: [], conflicts: ['10.9.0.11'],
  },
  { name: 'the node address is not removed even if a stale record names it', desired: [], recorded: ['10.9.0.11'], present: { '10.9.0.11': 24 }, add: [], remove: [], record: [] },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const plan = planAddresses({ desired: new Set(c.desired), recorded: new Set(c.recorded), present: new Map(Object.entries(c.present)) })
    t.same(plan, { add: c.add, remove: c.remove, record: c.record, conflicts: c.conflicts ?? [] })
  })
}

t.test('commands run in the given network namespace through nsenter (no /sys remount), else here', async (t) => {
  t.same(inNetns('sk-n1', 'ip', ['addr']), ['nsenter', ['--net=/run/netns/sk-n1', 'ip', 'addr']])
  t.same(inNetns(undefined, 'ip', ['addr']), ['ip', ['addr']])
})

t.test('the Node label carries the interface when it is a valid label value', async (t) => {
  t.equal(speakerLabelValue('eth0'), 'eth0')
  t.equal(speakerLabelValue('enp0s31f6.100'), 'enp0s31f6.100')
  t.equal(speakerLabelValue('br:x'), 'true')
})
