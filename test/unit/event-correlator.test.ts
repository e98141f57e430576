// The event correlator as tables: a sequence of events (reason, message,
// object, source, seconds since start) -> what the recorder does with each
// (create, patch with count N, skip), as client-go's EventCorrelator.

import t from 'tap'
import { aggregateKey, combinedPrefix, EventCorrelator, eventKey, spamKey, type CoreEvent, type CorrelatorOptions } from '../../controlplane/client/event-correlator.ts'

const T0 = Date.parse('2026-01-01T00:00:00Z')
let seq = 0

interface Ev { reason?: string; message?: string; pod?: string; host?: string; type?: 'Normal' | 'Warning'; at?: number; fieldPath?: string }

function ev(o: Ev = {}): CoreEvent {
  const ts = new Date(T0 + (o.at ?? 0) * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  const pod = o.pod ?? 'web'
  return {
    metadata: { name: `${pod}.${(++seq).toString(16)}`, namespace: 'ns' },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: 'ns', name: pod, uid: `uid-${pod}`, ...(o.fieldPath ? { fieldPath: o.fieldPath } : {}) },
    reason: o.reason ?? 'BackOff',
    message: o.message ?? 'Back-off restarting failed container app in pod web_ns(uid-web)',
    type: o.type ?? 'Warning',
    source: { component: 'kubelet', host: o.host ?? 'node-1' },
    reportingComponent: 'kubelet',
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  }
}

/** Each step: the action, and for a patch the count; for created events, their name is compared with the first one's. */
function run(events: Ev[], opts: Partial<CorrelatorOptions> = {}): string[] {
  const c = new EventCorrelator(opts)
  const names: string[] = []
  return events.map((e) => {
    const r = c.correlate(ev(e), T0 + (e.at ?? 0) * 1000)
    const i = names.indexOf(r.event.metadata.name)
    const n = i >= 0 ? i : names.push(r.event.metadata.name) - 1
    if (r.action === 'patch') return `patch #${n} count=${r.patch.count}${r.event.message.startsWith(combinedPrefix) ? ' combined' : ''}`
    return `${r.action} #${n}${r.event.message.startsWith(combinedPrefix) ? ' combined' : ''}`
  })
}

const cases: Array<{ name: string; events: Ev[]; opts?: Partial<CorrelatorOptions>; want: string[] }> = [
  {
    name: 'the same event three times: one Event, count 1 -> 2 -> 3',
    events: [{ at: 0 }, { at: 10 }, { at: 30 }],
    want: ['create #0', 'patch #0 count=2', 'patch #0 count=3'],
  },
  {
    name: 'another message is another Event',
    events: [{ message: 'a' }, { message: 'b' }, { message: 'a', at: 5 }],
    want: ['create #0', 'create #1', 'patch #0 count=2'],
  },
  {
    name: 'another reason, type, object, node or fieldPath is another Event',
    events: [{}, { reason: 'Unhealthy' }, { type: 'Normal' }, { pod: 'other' }, { host: 'node-2' }, { fieldPath: 'spec.containers{app}' }],
    want: ['create #0', 'create #1', 'create #2', 'create #3', 'create #4', 'create #5'],
  },
  {
    name: 'the 10th distinct message of a reason within 10 minutes is combined; later ones count on the combined Event',
    events: [...Array.from({ length: 12 }, (_, i) => ({ reason: 'Unhealthy', message: `m${i}`, at: i }))],
    want: [...Array.from({ length: 9 }, (_, i) => `create #${i}`), 'create #9 combined', 'patch #9 count=2 combined', 'patch #9 count=3 combined'],
  },
  {
    name: 'similar events spread beyond the aggregation window are not combined',
    events: Array.from({ length: 11 }, (_, i) => ({ reason: 'Unhealthy', message: `m${i}`, at: i * 601 })),
    want: Array.from({ length: 11 }, (_, i) => `create #${i}`),
  },
  {
    name: 'a source may burst 25 events about an object, then one per 5 minutes; the count keeps growing meanwhile',
    events: [...Array.from({ length: 27 }, (_, i) => ({ at: i })), { at: 26 + 300 }],
    want: ['create #0', ...Array.from({ length: 24 }, (_, i) => `patch #0 count=${i + 2}`), 'skip #0', 'skip #0', 'patch #0 count=28'],
  },
  {
    name: 'the rate limit is per object: another pod still gets its events',
    events: [{ at: 0 }, { at: 1 }, { pod: 'other', at: 2 }],
    opts: { burst: 1 },
    want: ['create #0', 'skip #0', 'create #1'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    t.same(run(c.events, c.opts), c.want)
  })
}

t.test('a patch keeps the first name and firstTimestamp and carries count, lastTimestamp and message', async (t) => {
  const c = new EventCorrelator()
  const first = c.correlate(ev({ at: 0 }), T0)
  const second = c.correlate(ev({ at: 42 }), T0 + 42_000)
  t.equal(first.action, 'create')
  t.equal(second.event.metadata.name, first.event.metadata.name)
  t.equal(second.event.firstTimestamp, '2026-01-01T00:00:00Z')
  t.same(second.action === 'patch' && second.patch, { count: 2, lastTimestamp: '2026-01-01T00:00:42Z', message: first.event.message })
})

t.test("the server's answer is the truth: its resourceVersion and count are what the next patch builds on", async (t) => {
  const c = new EventCorrelator()
  const first = c.correlate(ev(), T0)
  c.update({ ...first.event, metadata: { ...first.event.metadata, resourceVersion: '77' }, count: 5 })
  const next = c.correlate(ev({ at: 1 }), T0 + 1000)
  t.equal(next.event.metadata.resourceVersion, '77')
  t.same(next.action === 'patch' && next.patch.count, 6)
})

t.test('keys: the message is part of the event key only; the spam key ignores type and reason', async (t) => {
  t.not(eventKey(ev({ message: 'a' })), eventKey(ev({ message: 'b' })))
  t.equal(aggregateKey(ev({ message: 'a' })), aggregateKey(ev({ message: 'b' })))
  t.not(aggregateKey(ev({ reason: 'A' })), aggregateKey(ev({ reason: 'B' })))
  t.equal(spamKey(ev({ reason: 'A', type: 'Normal' })), spamKey(ev({ reason: 'B', type: 'Warning' })))
  t.not(spamKey(ev({ pod: 'a' })), spamKey(ev({ pod: 'b' })))
})
