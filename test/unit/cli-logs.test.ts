// skiff logs' pure parts: the query, selectors of owners, containers, the
// line formats (stern's), the resume point after a restart, option errors.

import t from 'tap'
import { compareRfc3339, containerStarted, formatLine, isRepeat, ownerSelector, parsePodQuery, planLogs, podColour, podContainers, splitTimestamp, tailNotice } from '../../cli/logs.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

t.test('queries', async (t) => {
  t.same(parsePodQuery(undefined), { kind: 'all' })
  t.same(parsePodQuery('pod/web-1'), { kind: 'pod', name: 'web-1' })
  const d = parsePodQuery('deploy/web')
  t.equal(d.kind, 'owner')
  t.equal(d.kind === 'owner' && d.info.resource, 'deployments')
  t.equal((parsePodQuery('svc/web') as any).info.resource, 'services')
  t.equal((parsePodQuery('sts/db') as any).info.group, 'apps')
  const r = parsePodQuery('^web-')
  t.ok(r.kind === 'regex' && r.regex.test('web-abc') && !r.regex.test('xweb-'))
  t.throws(() => parsePodQuery('cm/x'), /"cm" is not a type skiff logs can follow; use pod\/, deploy\//)
  t.throws(() => parsePodQuery('web-('), /the pod query "web-\(" is not a regular expression/)
})

t.test('owner selectors', async (t) => {
  t.equal(ownerSelector({ kind: 'Deployment', metadata: { name: 'w' }, spec: { selector: { matchLabels: { app: 'web', tier: 'fe' } } } } as KubeObject), 'app=web,tier=fe')
  t.equal(ownerSelector({ kind: 'StatefulSet', metadata: { name: 'w' }, spec: { selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] } } } as KubeObject), 'app in (a,b)')
  t.equal(ownerSelector({ kind: 'Service', metadata: { name: 's' }, spec: { selector: { app: 'web' } } } as KubeObject), 'app=web')
  t.throws(() => ownerSelector({ kind: 'Service', metadata: { name: 's' }, spec: {} } as KubeObject), /service s has no selector: its endpoints are written by hand/)
})

const pod = {
  metadata: { name: 'web-1', namespace: 'shop' },
  spec: { initContainers: [{ name: 'init' }], containers: [{ name: 'app' }, { name: 'sidecar' }] },
  status: {
    initContainerStatuses: [{ name: 'init', state: { terminated: { exitCode: 0 } }, restartCount: 0 }],
    containerStatuses: [{ name: 'app', state: { running: {} }, restartCount: 2 }, { name: 'sidecar', state: { waiting: { reason: 'ContainerCreating' } }, restartCount: 0 }],
  },
} as KubeObject

t.test('containers', async (t) => {
  t.same(podContainers(pod).map((c) => c.container), ['init', 'app', 'sidecar'], 'init containers first, as stern reads them')
  t.same(podContainers(pod, /^s/).map((c) => c.container), ['sidecar'])
  t.ok(containerStarted(pod, 'app'))
  t.ok(containerStarted(pod, 'init'), 'a finished init container has logs')
  t.notOk(containerStarted(pod, 'sidecar'), 'a container not started yet has none')
})

t.test('lines', async (t) => {
  const ref = { namespace: 'shop', pod: 'web-1', container: 'app' }
  const line = splitTimestamp('2026-12-04T20:00:01.123456789Z GET / 200')
  t.same(line, { ts: '2026-12-04T20:00:01.123456789Z', message: 'GET / 200' })
  t.same(splitTimestamp('no time here'), { message: 'no time here' })
  const plain = { output: 'default' as const, timestamps: false, colour: false, allNamespaces: false }
  t.equal(formatLine(ref, line, plain), 'web-1 app GET / 200')
  t.equal(formatLine(ref, line, { ...plain, allNamespaces: true, timestamps: true }), 'shop web-1 app 2026-12-04T20:00:01.123456789Z GET / 200')
  t.equal(formatLine(ref, line, { ...plain, output: 'raw' }), 'GET / 200')
  t.same(JSON.parse(formatLine(ref, line, { ...plain, output: 'json' }, 'n1')), { message: 'GET / 200', nodeName: 'n1', namespace: 'shop', podName: 'web-1', containerName: 'app' })
  const coloured = formatLine(ref, line, { ...plain, colour: true })
  t.match(coloured, new RegExp(`^\\u001b\\[${podColour('shop/web-1')}mweb-1\\u001b\\[0m `), 'the pod in its colour')
  t.equal(podColour('shop/web-1'), podColour('shop/web-1'), 'the same pod, the same colour')
  t.equal(tailNotice('+', ref, false), '+ web-1 › app')
  t.equal(tailNotice('-', ref, true), '- shop/web-1 › app')
})

t.test('resuming after a restart skips what was printed', async (t) => {
  t.equal(compareRfc3339('2026-12-04T20:00:01.123456789Z', '2026-12-04T20:00:01.123456788Z'), 1, 'nanoseconds count')
  t.equal(compareRfc3339('2026-12-04T20:00:01.1Z', '2026-12-04T20:00:01.100000000Z'), 0)
  t.equal(compareRfc3339('2026-12-04T20:00:00Z', '2026-12-04T20:00:01Z'), -1)
  t.ok(isRepeat('2026-12-04T20:00:01.5Z', '2026-12-04T20:00:01.5Z'), 'the last printed line again')
  t.ok(isRepeat('2026-12-04T20:00:01.2Z', '2026-12-04T20:00:01.5Z'), 'an earlier line of the same second')
  t.notOk(isRepeat('2026-12-04T20:00:01.6Z', '2026-12-04T20:00:01.5Z'), 'a newer line')
  t.notOk(isRepeat(undefined, '2026-12-04T20:00:01.5Z'))
  t.notOk(isRepeat('2026-12-04T20:00:01.5Z', undefined), 'nothing printed yet')
})

t.test('options', async (t) => {
  t.equal(planLogs({ namespace: 'd', since: '10m' }).sinceSeconds, 600)
  t.equal(planLogs({ namespace: 'd', since: '1500ms' }).sinceSeconds, 2, 'rounded up to whole seconds')
  t.throws(() => planLogs({ namespace: 'd', since: 'ten minutes' }), /--since "ten minutes" is not a duration such as 30s, 10m or 1h/)
  t.throws(() => planLogs({ namespace: 'd', selector: 'app in (' }), /^-l "app in \(": /)
  t.throws(() => planLogs({ namespace: 'd', query: 'deploy/web', selector: 'app=web' }), /-l cannot be combined with deploy\/web/)
  t.throws(() => planLogs({ namespace: 'd', container: '(' }), /-c "\(" is not a regular expression/)
  t.throws(() => planLogs({ namespace: 'd', tail: -2 }), /--tail must be a whole number of lines, or -1 for all/)
  t.ok(planLogs({ namespace: 'd', container: '^app$' }).container!.test('app'))
})
