// Events as operators expect them, on a real control plane with one
// in-process agent on the real Docker Engine: a crash loop's BackOff, a
// failing liveness probe's Unhealthy and Killing, a missing ConfigMap's
// FailedMount, each one Event whose count and lastTimestamp grow (the
// correlating recorder), shown by the real kubectl's `get events -o wide`
// (COUNT, LAST SEEN) and `describe pod` ("(xN over ...)").

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const events = lookupResource('', 'v1', 'events')!
const ns = 'default'
const slow = { timeout: 60_000, interval: 250 }

await ensureImages({ progress: null })
const nodeName = testNodeNames(1, 'ev')[0]!
const c = await startTestCluster(t, { identities: nodeIdentities([nodeName]) })
const cidr = await pickClusterCIDR()
// A short CrashLoopBackOff (1 s, 2 s, 4 s, ...) so a loop repeats within seconds.
await startTestNode(t, c, { name: nodeName, podCIDR: cidr.podCIDR(1), clusterCIDR: cidr.clusterCIDR, backoff: { baseMs: 1_000, maxMs: 4_000 } })

const echo = 'skiff/echo:local'

async function createPod(name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return await c.client.create(pods, ns, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName, terminationGracePeriodSeconds: 1, ...spec } })
}

async function eventsFor(pod: string, reason: string): Promise<KubeObject[]> {
  return (await c.client.list(events, ns, { fieldSelector: `involvedObject.name=${pod},reason=${reason}` })).items
}

/** The one Event of `reason` about `pod` once `ok` holds for it (fails on a second Event of the same message). */
async function oneEvent(pod: string, reason: string, what: string, ok: (e: KubeObject) => boolean): Promise<KubeObject> {
  return await eventually(async () => {
    const list = await eventsFor(pod, reason)
    const messages = list.map((e) => e.message)
    if (new Set(messages).size !== messages.length) throw new Error(`${reason} of ${pod} recorded as separate Events: ${JSON.stringify(list.map((e) => [e.metadata.name, e.count]))}`)
    return list.find(ok)
  }, { ...slow, what: `${pod}: ${what}` })
}

t.test('a crash-looping container: one BackOff Warning whose count and lastTimestamp grow', async (t) => {
  const pod = await createPod('crash', { containers: [{ name: 'app', image: echo, command: ['sh', '-c', 'exit 1'] }] })
  const message = `Back-off restarting failed container app in pod crash_${ns}(${pod.metadata.uid})`
  const first = await oneEvent('crash', 'BackOff', 'a BackOff Event', (e) => e.message === message)
  t.match(first, { type: 'Warning', source: { component: 'kubelet', host: nodeName }, involvedObject: { kind: 'Pod', name: 'crash', uid: pod.metadata.uid, fieldPath: 'spec.containers{app}' } })
  const later = await oneEvent('crash', 'BackOff', 'the same BackOff Event counted again, later', (e) =>
    e.metadata.name === first.metadata.name && e.count >= Math.max(2, first.count + 1) && Date.parse(e.lastTimestamp) > Date.parse(first.lastTimestamp))
  t.equal(later.metadata.uid, first.metadata.uid, 'the same Event object, patched')
  t.equal(later.firstTimestamp, first.firstTimestamp)
  t.equal((await eventsFor('crash', 'BackOff')).length, 1, 'one BackOff Event for the pod')
  // Every restart's Started is counted on one Event too.
  const started = await oneEvent('crash', 'Started', 'Started counted', (e) => e.count >= 2)
  t.equal(started.message, 'Started container app')

  const wide = await c.kubectl(['get', 'events', '-n', ns, '-o', 'wide', '--field-selector', 'involvedObject.name=crash,reason=BackOff'])
  const [header, row] = wide.stdout.trimEnd().split('\n')
  t.match(header, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+SUBOBJECT\s+SOURCE\s+MESSAGE\s+FIRST SEEN\s+COUNT\s+NAME$/)
  const m = new RegExp(`^\\S+\\s+Warning\\s+BackOff\\s+pod/crash\\s+spec\\.containers\\{app\\}\\s+kubelet, ${nodeName}\\s+Back-off restarting failed container app in pod crash_\\S+\\s+\\S+\\s+(\\d+)\\s+${first.metadata.name!.replace('.', '\\.')}$`).exec(row ?? '')
  t.ok(m, `kubectl get events -o wide row: ${row}`)
  t.ok(Number(m?.[1]) >= 2, `COUNT ${m?.[1]} >= 2`)

  const described = await c.kubectl(['describe', 'pod', '-n', ns, 'crash'])
  t.match(described.stdout, /Warning\s+BackOff\s+\S+ \(x\d+ over \S+\)\s+kubelet(?:, \S+)?\s+Back-off restarting failed container app in pod crash_/, 'describe shows (xN over ...)')
  await c.client.delete(pods, ns, 'crash')
})

t.test('a failing liveness probe: Unhealthy Warnings counted on one Event, Killing, a restart', async (t) => {
  await createPod('sick', {
    containers: [{
      name: 'echo', image: echo, ports: [{ name: 'http', containerPort: 8080 }],
      livenessProbe: { httpGet: { path: '/status/500', port: 'http' }, periodSeconds: 1, failureThreshold: 2 },
    }],
  })
  const failed = 'Liveness probe failed: HTTP probe failed with statuscode: 500'
  const unhealthy = await oneEvent('sick', 'Unhealthy', 'Unhealthy counted twice', (e) => e.message === failed && e.count >= 2)
  t.match(unhealthy, { type: 'Warning', source: { component: 'kubelet' }, involvedObject: { kind: 'Pod', name: 'sick', fieldPath: 'spec.containers{echo}' } })
  const killing = await oneEvent('sick', 'Killing', 'Killing', (e) => /liveness/.test(e.message))
  t.match(killing, { type: 'Normal', message: 'Container echo failed liveness probe, will be restarted' })
  const restarted = await eventually(async () => {
    const p = await c.client.get(pods, ns, 'sick')
    return p.status?.containerStatuses?.[0]?.restartCount >= 1 ? p : undefined
  }, { ...slow, what: 'sick restarted' })
  t.ok(restarted.status.containerStatuses[0].restartCount >= 1)
  const described = await c.kubectl(['describe', 'pod', '-n', ns, 'sick'])
  t.match(described.stdout, /Warning\s+Unhealthy\s+\S+ \(x\d+ over \S+\)\s+kubelet(?:, \S+)?\s+Liveness probe failed: HTTP probe failed with statuscode: 500/)
  t.match(described.stdout, /Normal\s+Killing\s+.*kubelet(?:, \S+)?\s+Container echo failed liveness probe, will be restarted/)
  await c.client.delete(pods, ns, 'sick')
})

t.test('a volume that cannot be set up: one FailedMount Warning, counted on every retry', async (t) => {
  await createPod('nomount', {
    containers: [{ name: 'app', image: echo, volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
    volumes: [{ name: 'cfg', configMap: { name: 'missing' } }],
  })
  const ev = await oneEvent('nomount', 'FailedMount', 'FailedMount counted twice', (e) => e.count >= 2)
  t.match(ev, { type: 'Warning', message: 'MountVolume.SetUp failed for volume "cfg" : configmap "missing" not found' })
  await c.client.delete(pods, ns, 'nomount')
})
