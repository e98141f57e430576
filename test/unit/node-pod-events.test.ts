// node/pods/events.ts as tables: what the pod sync and the probes observe ->
// the Event (type, reason, message) the kubelet records for it.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { containerRef, killingMessage, unhealthyEvent, waitEvent } from '../../node/pods/events.ts'

const pod: KubeObject = { metadata: { name: 'crash', namespace: 'demo', uid: 'u-1' }, spec: { containers: [{ name: 'app', image: 'skiff/echo:local' }] } }

t.test('waits -> BackOff events', async (t) => {
  const cases = [
    {
      name: 'crash loop: a Warning naming the container and the pod as name_namespace(uid)',
      wait: { type: 'wait' as const, name: 'app', reason: 'CrashLoopBackOff' as const, message: 'back-off 10s restarting failed container=app pod=crash_demo(u-1)', untilMs: 1 },
      want: { type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container app in pod crash_demo(u-1)' },
    },
    {
      name: 'image pull back-off: a Normal event naming the image',
      wait: { type: 'wait' as const, name: 'app', reason: 'ImagePullBackOff' as const, message: 'pull failed', untilMs: 1 },
      want: { type: 'Normal', reason: 'BackOff', message: 'Back-off pulling image "skiff/echo:local"' },
    },
  ]
  for (const c of cases) t.same(waitEvent(pod, c.wait), c.want, c.name)
})

t.test('Killing messages', async (t) => {
  const cases = [
    { reason: 'Liveness probe failed: HTTP probe failed with statuscode: 500', want: 'Container app failed liveness probe, will be restarted' },
    { reason: 'Startup probe failed: dial tcp 10.244.1.5:80: connect ECONNREFUSED', want: 'Container app failed startup probe, will be restarted' },
    { reason: 'container spec changed', want: 'Container app definition changed, will be restarted' },
    { reason: 'pod finished', want: 'Stopping container app' },
    { reason: 'superseded', want: 'Stopping container app' },
  ]
  for (const c of cases) t.equal(killingMessage('app', c.reason), c.want, c.reason)
})

t.test('Unhealthy: every failed probe run, capitalised probe kind and the output', async (t) => {
  t.same(unhealthyEvent('liveness', 'HTTP probe failed with statuscode: 500'), { type: 'Warning', reason: 'Unhealthy', message: 'Liveness probe failed: HTTP probe failed with statuscode: 500' })
  t.same(unhealthyEvent('readiness', 'x'), { type: 'Warning', reason: 'Unhealthy', message: 'Readiness probe failed: x' })
  t.same(unhealthyEvent('startup', 'y').message, 'Startup probe failed: y')
})

t.test('container events name the container as the kubelet does (involvedObject.fieldPath)', async (t) => {
  const withInit: KubeObject = { ...pod, spec: { initContainers: [{ name: 'setup', image: 'x' }], containers: [{ name: 'app', image: 'x' }] } }
  t.same(containerRef(withInit, 'app'), { fieldPath: 'spec.containers{app}' })
  t.same(containerRef(withInit, 'setup'), { fieldPath: 'spec.initContainers{setup}' })
})
