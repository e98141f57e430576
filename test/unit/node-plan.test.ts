// planPodActions and computePodStatus as tables: a pod spec, the containers
// Docker has, the clock and the probe/pull facts -> the next actions and the
// status Kubernetes would show.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { specHash } from '../../node/labels.ts'
import { planPodActions } from '../../node/pods/plan.ts'
import { computePodStatus, computePhase, statusPatch } from '../../node/pods/status.ts'
import { crashBackoff, groupByName } from '../../node/pods/facts.ts'
import { defaultBackoff, type ActualContainer, type PodAction, type ProbeView, type PullFailure } from '../../node/pods/types.ts'

const T0 = Date.parse('2025-01-01T00:00:00Z')
const at = (s: number) => new Date(T0 + s * 1000).toISOString()

const app = { name: 'app', image: 'skiff/echo:local' }
const init = { name: 'init', image: 'skiff/echo:local', command: ['true'] }

function pod(spec: Record<string, unknown> = {}, extra: Partial<KubeObject> = {}): KubeObject {
  return { metadata: { name: 'p', namespace: 'ns', uid: 'uid-1' }, spec: { containers: [app], restartPolicy: 'Always', terminationGracePeriodSeconds: 30, ...spec }, status: {}, ...extra }
}

let ids = 0
function ctr(o: Partial<ActualContainer> & { name: string }): ActualContainer {
  const role = o.role ?? (o.name === 'POD' ? 'sandbox' : o.name === 'init' ? 'init' : 'app')
  const spec = o.name === 'init' ? init : app
  return {
    id: o.id ?? `c${++ids}`, role, attempt: 0, hash: role === 'sandbox' ? '' : specHash(spec), backoffStep: 0, podUid: 'uid-1',
    sandboxId: role === 'sandbox' ? undefined : 'sb', state: 'running', createdAt: at(0), startedAt: at(0), image: spec.image, imageID: 'sha256:abc',
    ...(role === 'sandbox' ? { ip: '10.244.1.5' } : {}),
    ...o,
  }
}

const sandbox = (o: Partial<ActualContainer> = {}) => ctr({ name: 'POD', id: 'sb', ...o })
const exited = (o: Partial<ActualContainer> & { name: string }, code: number, startS: number, endS: number) =>
  ctr({ state: 'exited', exitCode: code, startedAt: at(startS), finishedAt: at(endS), ...o })

interface Case {
  name: string
  pod?: KubeObject
  actual: ActualContainer[]
  now?: number
  probes?: Record<string, ProbeView>
  pulls?: Record<string, PullFailure>
  volumesReady?: boolean
  /** When each container (by id) was seen exited, on the clock of `now` (the agent's monotonic one). */
  exitedAt?: Record<string, number>
  want: Array<Partial<PodAction>>
}

const cases: Case[] = [
  { name: 'nothing yet: create the sandbox', actual: [], want: [{ type: 'createSandbox', attempt: 0 }] },
  { name: 'volumes not ready: wait', actual: [], volumesReady: false, want: [] },
  { name: 'sandbox running: start the app in it', actual: [sandbox()], want: [{ type: 'startContainer', name: 'app', role: 'app', attempt: 0, backoffStep: 0, sandboxId: 'sb' }] },
  { name: 'all running: nothing to do', actual: [sandbox(), ctr({ name: 'app' })], want: [] },
  {
    name: 'init containers first, one at a time',
    pod: pod({ initContainers: [init, { ...init, name: 'init2' }] }),
    actual: [sandbox()],
    want: [{ type: 'startContainer', name: 'init', role: 'init', attempt: 0 }],
  },
  { name: 'an init container still running: wait', pod: pod({ initContainers: [init] }), actual: [sandbox(), ctr({ name: 'init' })], want: [] },
  {
    name: 'init completed: the app starts',
    pod: pod({ initContainers: [init] }),
    actual: [sandbox(), exited({ name: 'init' }, 0, 0, 1)],
    want: [{ type: 'startContainer', name: 'app', role: 'app', attempt: 0 }],
  },
  {
    name: 'a failed init container is restarted (restartPolicy Always), at once the first time',
    pod: pod({ initContainers: [init] }),
    actual: [sandbox(), exited({ name: 'init' }, 1, 0, 1)],
    now: T0 + 2_000,
    want: [{ type: 'startContainer', name: 'init', attempt: 1, backoffStep: 1 }],
  },
  {
    name: 'a failed init container under restartPolicy Never ends the pod: the sandbox is stopped',
    pod: pod({ initContainers: [init], restartPolicy: 'Never' }),
    actual: [sandbox(), exited({ name: 'init' }, 1, 0, 1)],
    want: [{ type: 'killContainer', id: 'sb', graceSeconds: 0 }],
  },
  { name: 'first crash: restart at once', actual: [sandbox(), exited({ name: 'app' }, 1, 0, 5)], now: T0 + 5_000, want: [{ type: 'startContainer', name: 'app', attempt: 1, backoffStep: 1 }] },
  {
    name: 'second quick crash: CrashLoopBackOff for 10 s',
    actual: [sandbox(), exited({ name: 'app', attempt: 1, backoffStep: 1 }, 1, 0, 5), exited({ name: 'app' }, 1, 0, 1)],
    now: T0 + 9_000,
    want: [{ type: 'wait', name: 'app', reason: 'CrashLoopBackOff', untilMs: T0 + 15_000 }],
  },
  {
    name: 'back-off over: restart with the next step',
    actual: [sandbox(), exited({ name: 'app', attempt: 1, backoffStep: 1 }, 1, 0, 5)],
    now: T0 + 15_000,
    want: [{ type: 'startContainer', name: 'app', attempt: 2, backoffStep: 2 }],
  },
  {
    name: 'the back-off doubles and is capped at 300 s',
    actual: [sandbox(), exited({ name: 'app', attempt: 9, backoffStep: 9 }, 1, 0, 5)],
    now: T0 + 6_000,
    want: [{ type: 'wait', reason: 'CrashLoopBackOff', untilMs: T0 + 305_000 }],
  },
  {
    name: 'after 10 minutes of running the back-off resets',
    actual: [sandbox(), exited({ name: 'app', attempt: 9, backoffStep: 9 }, 1, 0, 700)],
    now: T0 + 700_000,
    want: [{ type: 'startContainer', attempt: 10, backoffStep: 1 }],
  },
  {
    name: 'the back-off counts from when the agent saw the exit, on its own clock: a finishedAt 10 minutes ahead (a wall clock stepped back) waits 10 s, not 10 min',
    actual: [sandbox(), exited({ name: 'app', id: 'x1', attempt: 1, backoffStep: 1 }, 1, 600, 605)],
    exitedAt: { x1: 50_000 },
    now: 55_000,
    want: [{ type: 'wait', name: 'app', reason: 'CrashLoopBackOff', untilMs: 60_000 }],
  },
  {
    name: 'and it ends on that clock, whatever finishedAt says',
    actual: [sandbox(), exited({ name: 'app', id: 'x1', attempt: 1, backoffStep: 1 }, 1, 600, 605)],
    exitedAt: { x1: 50_000 },
    now: 60_000,
    want: [{ type: 'startContainer', name: 'app', attempt: 2, backoffStep: 2 }],
  },
  { name: 'OnFailure: exit 0 is not restarted; the pod is done, its sandbox stopped', pod: pod({ restartPolicy: 'OnFailure' }), actual: [sandbox(), exited({ name: 'app' }, 0, 0, 1)], want: [{ type: 'killContainer', id: 'sb' }] },
  { name: 'OnFailure: exit 1 is restarted', pod: pod({ restartPolicy: 'OnFailure' }), actual: [sandbox(), exited({ name: 'app' }, 1, 0, 1)], now: T0 + 2_000, want: [{ type: 'startContainer', attempt: 1 }] },
  { name: 'Never: a finished pod with a stopped sandbox stays as it is', pod: pod({ restartPolicy: 'Never' }), actual: [sandbox({ state: 'exited' }), exited({ name: 'app' }, 2, 0, 1)], want: [] },
  {
    name: 'liveness failed: kill with the pod grace period',
    actual: [sandbox(), ctr({ name: 'app', id: 'a1' })],
    probes: { a1: { started: true, ready: false, kill: 'Liveness probe failed: 500' } },
    want: [{ type: 'killContainer', id: 'a1', reason: 'Liveness probe failed: 500', graceSeconds: 30 }],
  },
  { name: 'spec changed (image): kill', actual: [sandbox(), ctr({ name: 'app', id: 'a1', hash: 'old' })], want: [{ type: 'killContainer', id: 'a1', reason: 'container spec changed' }] },
  {
    name: 'sandbox died: stop the app, new sandbox',
    actual: [sandbox({ state: 'exited', exitCode: 137, finishedAt: at(3) }), ctr({ name: 'app', id: 'a1' })],
    want: [{ type: 'killContainer', id: 'a1', reason: 'sandbox changed' }, { type: 'createSandbox', attempt: 1 }],
  },
  {
    name: 'new sandbox: the app starts again in it with the next attempt, no back-off',
    actual: [sandbox({ id: 'sb2', attempt: 1 }), sandbox({ state: 'exited', exitCode: 0, finishedAt: at(3) }), exited({ name: 'app', sandboxId: 'sb' }, 137, 0, 3)],
    want: [{ type: 'removeContainer', id: 'sb' }, { type: 'startContainer', name: 'app', attempt: 1, backoffStep: 0, sandboxId: 'sb2' }],
  },
  {
    name: 'only the newest and the previous container of a name are kept',
    actual: [sandbox(), ctr({ name: 'app', attempt: 2 }), exited({ name: 'app', attempt: 1, id: 'old1' }, 1, 0, 1), exited({ name: 'app', attempt: 0, id: 'old0' }, 1, 0, 1)],
    want: [{ type: 'removeContainer', id: 'old0' }],
  },
  { name: 'a container no longer in the spec is removed', actual: [sandbox(), ctr({ name: 'app' }), exited({ name: 'gone', id: 'g' }, 0, 0, 1)], want: [{ type: 'removeContainer', id: 'g' }] },
  {
    name: 'image pull failed: ErrImagePull during the first back-off',
    actual: [sandbox()],
    pulls: { app: { failures: 1, lastFailureMs: T0, message: 'no such host' } },
    now: T0 + 1_000,
    want: [{ type: 'wait', name: 'app', reason: 'ErrImagePull', untilMs: T0 + 10_000 }],
  },
  {
    name: 'image pull failed again: ImagePullBackOff, doubled',
    actual: [sandbox()],
    pulls: { app: { failures: 2, lastFailureMs: T0, message: 'no such host' } },
    now: T0 + 1_000,
    want: [{ type: 'wait', reason: 'ImagePullBackOff', untilMs: T0 + 20_000 }],
  },
  { name: 'image pull back-off over: try again', actual: [sandbox()], pulls: { app: { failures: 1, lastFailureMs: T0, message: 'x' } }, now: T0 + 10_000, want: [{ type: 'startContainer', name: 'app' }] },
  { name: 'created but never started: removed, then created again', actual: [sandbox(), ctr({ name: 'app', id: 'cr', state: 'created', startedAt: undefined })], want: [{ type: 'removeContainer', id: 'cr' }] },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = planPodActions(c.pod ?? pod(), c.actual, c.now ?? T0, {
      backoff: defaultBackoff,
      volumesReady: c.volumesReady ?? true,
      probes: (id) => c.probes?.[id],
      pulls: new Map(Object.entries(c.pulls ?? {})),
      ...(c.exitedAt ? { exitedAt: (x: ActualContainer) => c.exitedAt![x.id]! } : {}),
    })
    t.equal(got.length, c.want.length, JSON.stringify(got))
    c.want.forEach((w, i) => t.match(got[i], w))
  })
}

t.test('crashBackoff: 0, 10, 20, 40 ... 300 s; reset after 10 minutes', async (t) => {
  const steps = [0, 1, 2, 3, 6, 9].map((backoffStep) => crashBackoff(exited({ name: 'app', backoffStep }, 1, 0, 1), defaultBackoff).delayMs / 1000)
  t.same(steps, [0, 10, 20, 40, 300, 300])
  t.same(crashBackoff(exited({ name: 'app', backoffStep: 5 }, 1, 0, 601), defaultBackoff), { delayMs: 0, nextStep: 1 })
})

const statusCtx = (o: { probes?: Record<string, ProbeView>; waiting?: Record<string, { reason: string; message?: string }> } = {}) => ({
  now: T0 + 60_000,
  hostIP: '10.244.1.1',
  probes: (id: string) => o.probes?.[id],
  waiting: new Map(Object.entries(o.waiting ?? {})),
})

t.test('status: a running, ready pod', async (t) => {
  const s = computePodStatus(pod(), [sandbox(), ctr({ name: 'app', id: 'a1' })], statusCtx())
  t.match(s, { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }], hostIP: '10.244.1.1', startTime: '2025-01-01T00:01:00Z' })
  t.match(s.containerStatuses[0], { name: 'app', ready: true, started: true, restartCount: 0, containerID: 'docker://a1', imageID: 'docker://sha256:abc', state: { running: { startedAt: '2025-01-01T00:00:00Z' } } })
  t.same(s.conditions.map((c: any) => `${c.type}=${c.status}`), ['PodScheduled=True', 'Initialized=True', 'ContainersReady=True', 'Ready=True'])
})

t.test('status: readiness probe not passed yet', async (t) => {
  const s = computePodStatus(pod({ containers: [{ ...app, readinessProbe: {} }] }), [sandbox(), ctr({ name: 'app', id: 'a1' })], statusCtx())
  t.equal(s.containerStatuses[0].ready, false)
  t.match(s.conditions.find((c: any) => c.type === 'Ready'), { status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' })
  const ready = computePodStatus(pod({ containers: [{ ...app, readinessProbe: {} }] }), [sandbox(), ctr({ name: 'app', id: 'a1' })], statusCtx({ probes: { a1: { started: true, ready: true } } }))
  t.equal(ready.containerStatuses[0].ready, true)
})

t.test('status: CrashLoopBackOff shows waiting and the last termination', async (t) => {
  const s = computePodStatus(pod(), [sandbox(), exited({ name: 'app', attempt: 3 }, 2, 0, 1)], statusCtx({ waiting: { app: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } } }))
  t.equal(s.phase, 'Running')
  t.match(s.containerStatuses[0], { restartCount: 3, ready: false, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 2, reason: 'Error' } } })
})

t.test('status: OOMKilled and previous termination', async (t) => {
  const s = computePodStatus(pod(), [sandbox(), ctr({ name: 'app', attempt: 1 }), exited({ name: 'app', oomKilled: true }, 137, 0, 1)], statusCtx())
  t.match(s.containerStatuses[0].lastState, { terminated: { reason: 'OOMKilled', exitCode: 137 } })
})

t.test('status: image pull failure keeps the pod Pending', async (t) => {
  const s = computePodStatus(pod(), [sandbox()], statusCtx({ waiting: { app: { reason: 'ErrImagePull', message: 'not found' } } }))
  t.equal(s.phase, 'Pending')
  t.same(s.containerStatuses[0].state, { waiting: { reason: 'ErrImagePull', message: 'not found' } })
})

t.test('status: init containers', async (t) => {
  const p = pod({ initContainers: [init] })
  const running = computePodStatus(p, [sandbox(), ctr({ name: 'init' })], statusCtx())
  t.equal(running.phase, 'Pending')
  t.match(running.containerStatuses[0].state, { waiting: { reason: 'PodInitializing' } })
  t.match(running.conditions.find((c: any) => c.type === 'Initialized'), { status: 'False', reason: 'ContainersNotInitialized' })
  const done = computePodStatus(p, [sandbox(), exited({ name: 'init' }, 0, 0, 1), ctr({ name: 'app' })], statusCtx())
  t.equal(done.phase, 'Running')
  t.match(done.initContainerStatuses[0], { ready: true, state: { terminated: { reason: 'Completed' } } })
})

t.test('phase like the kubelet getPhase', async (t) => {
  const g = (a: ActualContainer[]) => groupByName(a)
  t.equal(computePhase(pod({ restartPolicy: 'Never' }), g([exited({ name: 'app' }, 0, 0, 1)]), true), 'Succeeded')
  t.equal(computePhase(pod({ restartPolicy: 'Never' }), g([exited({ name: 'app' }, 1, 0, 1)]), true), 'Failed')
  t.equal(computePhase(pod({ restartPolicy: 'OnFailure' }), g([exited({ name: 'app' }, 1, 0, 1)]), true), 'Running')
  t.equal(computePhase(pod(), g([exited({ name: 'app' }, 0, 0, 1)]), true), 'Running')
  t.equal(computePhase(pod(), g([]), true), 'Pending')
  t.equal(computePhase(pod({}, { status: { phase: 'Failed' } }), g([ctr({ name: 'app' })]), true), 'Failed', 'a terminal phase is kept')
  t.equal(computePhase(pod({ restartPolicy: 'Never', initContainers: [init] }), g([exited({ name: 'init' }, 1, 0, 1)]), false), 'Failed')
})

t.test('statusPatch: only changed fields; conditions keep their transition time', async (t) => {
  const p = pod()
  const s = computePodStatus(p, [sandbox(), ctr({ name: 'app', id: 'a1' })], statusCtx())
  const written = { ...p, status: s }
  const again = computePodStatus(written, [sandbox(), ctr({ name: 'app', id: 'a1' })], { ...statusCtx(), now: T0 + 120_000 })
  t.equal(statusPatch(written, again), undefined)
  const unready = computePodStatus(written, [sandbox(), ctr({ name: 'app', id: 'a1' })], { ...statusCtx({ probes: { a1: { started: true, ready: false } } }), now: T0 + 120_000 })
  const patch = statusPatch(written, unready)!
  t.same(Object.keys(patch).sort(), ['conditions', 'containerStatuses'])
  t.equal(patch.conditions.find((c: any) => c.type === 'PodScheduled').lastTransitionTime, '2025-01-01T00:01:00Z')
  t.equal(patch.conditions.find((c: any) => c.type === 'Ready').lastTransitionTime, '2025-01-01T00:02:00Z')
})
