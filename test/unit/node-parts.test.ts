// The agent's other pure parts: CIDR arithmetic, the node network's iptables
// rules, the Node status, probe thresholds, the Docker inspect mapping, and
// which pod updates need a sync.

import t from 'tap'
import type Dockerode from 'dockerode'
import { cidrContains, cidrsOverlap, firstAddress, parseCidr, formatCidr } from '../../lib/ipv4.ts'
import { microTime } from '../../node/heartbeat.ts'
import { bridgeName, planIptablesRules, rulesToDelete } from '../../node/network.ts'
import { buildNodeStatus, detectCapacity, nodeLabels, nodeStatusStale } from '../../node/node-object.ts'
import { observeProbe, probeView, resolvePort, type ProbeCounter } from '../../node/probes.ts'
import { needsSync } from '../../node/pods/sync.ts'
import { dockerTime, toActual } from '../../node/pods/runtime.ts'

t.test('CIDRs', async (t) => {
  t.equal(firstAddress('10.244.1.0/24'), '10.244.1.1')
  t.equal(formatCidr(parseCidr('10.244.1.77/24')), '10.244.1.0/24')
  t.ok(cidrContains('10.244.0.0/16', '10.244.3.9'))
  t.notOk(cidrContains('10.244.1.0/24', '10.244.2.1'))
  t.ok(cidrsOverlap('10.128.0.0/16', '10.128.5.0/24'))
  t.notOk(cidrsOverlap('10.128.0.0/16', '10.129.0.0/16'))
  t.ok(cidrsOverlap('0.0.0.0/0', '10.1.0.0/16'))
  t.throws(() => parseCidr('10.0.0.0/33'))
})

t.test('iptables rules: both directions, tagged with the node; the listing parser finds them again', async (t) => {
  const rules = planIptablesRules('n1', '10.244.1.0/24', '10.244.0.0/16')
  t.same(rules, [
    ['-s', '10.244.1.0/24', '-d', '10.244.0.0/16', '-m', 'comment', '--comment', 'skiff:n1', '-j', 'ACCEPT'],
    ['-s', '10.244.0.0/16', '-d', '10.244.1.0/24', '-m', 'comment', '--comment', 'skiff:n1', '-j', 'ACCEPT'],
  ])
  const listing = [
    '-N DOCKER-USER',
    '-A DOCKER-USER -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "skiff:n1" -j ACCEPT',
    '-A DOCKER-USER -s 10.244.2.0/24 -d 10.244.0.0/16 -m comment --comment "skiff:n10" -j ACCEPT',
    '-A DOCKER-USER -j RETURN',
  ].join('\n')
  t.same(rulesToDelete(listing, 'n1'), [['-s', '10.244.1.0/24', '-d', '10.244.0.0/16', '-m', 'comment', '--comment', 'skiff:n1', '-j', 'ACCEPT']])
})

t.test('bridge names fit in 15 characters and differ per node', async (t) => {
  t.ok(bridgeName('a-very-long-node-name-indeed').length <= 15)
  t.not(bridgeName('n1'), bridgeName('n2'))
})

t.test('Node status: capacity, conditions, addresses, kubelet port; rewritten only when stale', async (t) => {
  const facts = { nodeName: 'n1', capacity: detectCapacity({ cpu: '4', memory: '8Gi' }), nodeInfo: { kubeletVersion: 'v1.32.0-skiff' }, internalIP: '10.244.1.1', kubeletPort: 10250 }
  const now = Date.parse('2025-01-01T00:00:00Z')
  const s = buildNodeStatus(facts, undefined, now)
  t.same(s.capacity, { cpu: '4', memory: '8Gi', pods: '110' })
  t.same(s.allocatable, s.capacity)
  t.same(s.addresses, [{ type: 'InternalIP', address: '10.244.1.1' }, { type: 'Hostname', address: 'n1' }])
  t.same(s.daemonEndpoints, { kubeletEndpoint: { Port: 10250 } })
  t.same(s.conditions.map((c: any) => `${c.type}=${c.status}:${c.reason}`), ['MemoryPressure=False:KubeletHasSufficientMemory', 'DiskPressure=False:KubeletHasNoDiskPressure', 'PIDPressure=False:KubeletHasSufficientPID', 'Ready=True:KubeletReady'])
  const node = { metadata: { name: 'n1' }, status: s }
  t.notOk(nodeStatusStale(node, buildNodeStatus(facts, node, now + 10_000), now + 10_000, 60_000), 'only heartbeat times differ')
  t.ok(nodeStatusStale(node, buildNodeStatus(facts, node, now + 61_000), now + 61_000, 60_000), 'a minute old')
  const unknown = { metadata: { name: 'n1' }, status: { ...s, conditions: s.conditions.map((c: any) => (c.type === 'Ready' ? { ...c, status: 'Unknown' } : c)) } }
  t.ok(nodeStatusStale(unknown, buildNodeStatus(facts, unknown, now + 1_000), now + 1_000, 60_000), 'marked Unknown by the controller')
  const ready = buildNodeStatus(facts, unknown, now + 5_000).conditions.find((c: any) => c.type === 'Ready')
  t.equal(ready.lastTransitionTime, '2025-01-01T00:00:05Z')
  t.match(nodeLabels('n1', { 'skiff.dev/ingress-pool': 'external' }), { 'kubernetes.io/hostname': 'n1', 'kubernetes.io/os': 'linux', 'skiff.dev/ingress-pool': 'external' })
})

t.test('probe thresholds', async (t) => {
  const probe = { successThreshold: 2, failureThreshold: 3 }
  let c: ProbeCounter = { successes: 0, failures: 0 }
  const seq: Array<boolean | undefined> = []
  for (const ok of [true, true, false, false, false, true, true]) {
    c = observeProbe(c, ok, probe)
    seq.push(c.result)
  }
  t.same(seq, [undefined, true, true, true, false, false, true])
})

t.test('probe view: startup gates readiness; failed liveness or startup asks for a restart', async (t) => {
  const fresh = (): Record<'startup' | 'liveness' | 'readiness', ProbeCounter> => ({ startup: { successes: 0, failures: 0 }, liveness: { successes: 0, failures: 0 }, readiness: { successes: 0, failures: 0 } })
  t.same(probeView({}, fresh()), { started: true, ready: true })
  t.same(probeView({ readinessProbe: {} }, fresh()), { started: true, ready: false })
  const c = fresh()
  c.readiness = { result: true, successes: 1, failures: 0 }
  t.same(probeView({ readinessProbe: {}, startupProbe: {} }, c), { started: false, ready: false })
  c.startup = { result: true, successes: 1, failures: 0 }
  t.same(probeView({ readinessProbe: {}, startupProbe: {} }, c), { started: true, ready: true })
  c.liveness = { result: false, successes: 0, failures: 3 }
  t.same(probeView({ livenessProbe: {} }, c, { liveness: 'status 500' }), { started: true, ready: true, kill: 'Liveness probe failed: status 500' })
  const s = fresh()
  s.startup = { result: false, successes: 0, failures: 3 }
  t.match(probeView({ startupProbe: {} }, s), { started: false, kill: /Startup probe failed/ })
})

t.test('named ports', async (t) => {
  const ports = [{ name: 'http', containerPort: 8080 }]
  t.equal(resolvePort('http', ports), 8080)
  t.equal(resolvePort(9000, ports), 9000)
  t.equal(resolvePort('9001', ports), 9001)
  t.throws(() => resolvePort('grpc', ports))
})

const inspect = (o: { status: string; error?: string; exit?: number; labels?: Record<string, string>; network?: string }): Dockerode.ContainerInspectInfo => ({
  Id: 'abc',
  Created: '2025-01-01T00:00:00.123456789Z',
  Image: 'sha256:img',
  Config: { Image: 'skiff/echo:local', Labels: o.labels ?? { 'skiff.pod.uid': 'u', 'skiff.container.name': 'app', 'skiff.container.role': 'app', 'skiff.container.attempt': '3', 'skiff.container.hash': 'h', 'skiff.container.backoff': '2' } },
  State: { Status: o.status, Running: o.status === 'running', ExitCode: o.exit ?? 0, Error: o.error ?? '', OOMKilled: false, StartedAt: '2025-01-01T00:00:01.5Z', FinishedAt: o.status === 'running' ? '0001-01-01T00:00:00Z' : '2025-01-01T00:00:09.999999999Z' },
  HostConfig: { NetworkMode: o.network ?? 'container:sb1' },
  NetworkSettings: { Networks: { 'skiff-n1': { IPAddress: '10.244.1.9' } } },
} as unknown as Dockerode.ContainerInspectInfo)

t.test('toActual: Docker inspect -> ActualContainer', async (t) => {
  t.match(toActual(inspect({ status: 'running' }), 'skiff-n1'), {
    id: 'abc', name: 'app', role: 'app', attempt: 3, hash: 'h', backoffStep: 2, podUid: 'u', sandboxId: 'sb1', state: 'running',
    startedAt: '2025-01-01T00:00:01.5Z', finishedAt: undefined, createdAt: '2025-01-01T00:00:00.123Z', imageID: 'sha256:img', ip: '10.244.1.9',
  })
  t.match(toActual(inspect({ status: 'exited', exit: 2 }), 'x'), { state: 'exited', exitCode: 2, finishedAt: '2025-01-01T00:00:09.999Z' })
  t.match(toActual(inspect({ status: 'created', error: 'exec: "nope": not found', exit: 127 }), 'x'), { state: 'exited', exitCode: 127, error: /not found/ })
  t.match(toActual(inspect({ status: 'created' }), 'x'), { state: 'created', exitCode: undefined })
  t.equal(toActual(inspect({ status: 'running', labels: {} }), 'x'), undefined)
  t.equal(dockerTime('0001-01-01T00:00:00Z'), undefined)
})

t.test('needsSync: our own status writes do not trigger a sync; everything else does', async (t) => {
  const p = { metadata: { name: 'p', resourceVersion: '1' }, spec: { containers: [] }, status: { phase: 'Pending' } }
  t.ok(needsSync(p, p), 'resync')
  t.notOk(needsSync(p, { ...p, metadata: { ...p.metadata, resourceVersion: '2' }, status: { phase: 'Running' } }))
  t.ok(needsSync(p, { ...p, metadata: { ...p.metadata, resourceVersion: '2', deletionTimestamp: 'now' } }))
  t.ok(needsSync(p, { ...p, metadata: { ...p.metadata, resourceVersion: '2' }, spec: { containers: [{ name: 'a' }] } }))
})

t.test('lease times are MicroTime', async (t) => {
  t.equal(microTime(Date.parse('2025-01-01T00:00:00.123Z')), '2025-01-01T00:00:00.123000Z')
})
