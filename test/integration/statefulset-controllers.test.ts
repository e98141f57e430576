// The StatefulSet controller (and the DaemonSet controller's revision
// history) against a real apiserver on a real redis-server, checked with the
// real kubectl where users would use it (scale, set image, rollout
// status/history/undo, get). No node agents: the test plays the kubelet's part
// and nothing else (pods Running at once and Ready 150 ms later, never for an
// image named never-ready; pods being deleted are finished), so the order in
// which the controller creates and deletes pods can be watched exactly.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { ApiEventRecorder, SharedInformers } from '../../controlplane/controllers/informers.ts'
import { defaultControllerConfig, type ControllerContext } from '../../controlplane/controllers/types.ts'
import { StatefulSetController } from '../../controlplane/controllers/statefulset.ts'
import { DaemonSetController } from '../../controlplane/controllers/daemonset.ts'
import { PersistentVolumeController } from '../../controlplane/controllers/persistentvolume.ts'
import { silentLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const pods = lookupResource('', 'v1', 'pods')!
const nodes = lookupResource('', 'v1', 'nodes')!
const namespaces = lookupResource('', 'v1', 'namespaces')!
const claims = lookupResource('', 'v1', 'persistentvolumeclaims')!
const stss = lookupResource('apps', 'v1', 'statefulsets')!
const dss = lookupResource('apps', 'v1', 'daemonsets')!
const revisions = lookupResource('apps', 'v1', 'controllerrevisions')!
const logger = silentLogger()
const timeout = 45_000
const readyDelayMs = 150

const isReady = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
const imageOf = (o: KubeObject) => (o.spec?.template?.spec ?? o.spec).containers[0].image as string
const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

/** The kubelet's part: Running at once, Ready readyDelayMs later (never for never-ready images); deletions finished. */
async function startPodStatusLoop(client: ApiClient): Promise<() => void> {
  const inf = new Informer({ client, info: pods, logger })
  const timers = new Set<NodeJS.Timeout>()
  const seen = new Set<string>()
  const status = (pod: KubeObject, ready: boolean) => {
    const r = ready ? 'True' : 'False'
    const conditions = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: type.endsWith('Ready') ? r : 'True', lastTransitionTime: stamp() }))
    const body = { status: { phase: 'Running', startTime: stamp(), podIP: '10.244.9.9', conditions } }
    return client.patch(pods, pod.metadata.namespace, pod.metadata.name!, body, 'application/merge-patch+json', 'status').catch(() => undefined)
  }
  const handle = (pod: KubeObject) => {
    if (pod.metadata.deletionTimestamp) {
      const path = resourcePath(pods, pod.metadata.namespace, pod.metadata.name)
      const body = { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } }
      void client.request('DELETE', path, { body }).catch(() => undefined)
      return
    }
    if (seen.has(pod.metadata.uid!)) return
    seen.add(pod.metadata.uid!)
    void status(pod, false).then(() => {
      if (imageOf(pod).includes('never-ready')) return
      const timer = setTimeout(() => (timers.delete(timer), void status(pod, true)), readyDelayMs)
      timers.add(timer)
    })
  }
  inf.addHandlers({ onAdd: handle, onUpdate: (_, p) => handle(p) })
  await inf.start()
  return () => {
    inf.stop()
    for (const x of timers) clearTimeout(x)
  }
}

/**
 * Watches one namespace's pods and logs, in watch order, every creation and
 * every start of a deletion with the other pods ready (and present) at that moment.
 */
async function podLog(client: ApiClient, ns: string) {
  const inf = new Informer({ client, info: pods, logger, namespace: ns })
  const log: Array<{ op: 'create' | 'delete'; name: string; ready: string[]; present: string[] }> = []
  const snapshot = (except: string) => {
    const others = inf.list().filter((p) => p.metadata.name !== except)
    return { ready: others.filter((p) => isReady(p) && !p.metadata.deletionTimestamp).map((p) => p.metadata.name!).sort(), present: others.map((p) => p.metadata.name!).sort() }
  }
  // A pod bound to no node is deleted at once (no deletionTimestamp first), as in Kubernetes.
  const deleting = new Set<string>()
  const deleted = (p: KubeObject) => {
    if (deleting.has(p.metadata.uid!)) return
    deleting.add(p.metadata.uid!)
    log.push({ op: 'delete', name: p.metadata.name!, ...snapshot(p.metadata.name!) })
  }
  inf.addHandlers({
    onAdd: (p) => log.push({ op: 'create', name: p.metadata.name!, ...snapshot(p.metadata.name!) }),
    onUpdate: (_, p) => p.metadata.deletionTimestamp && deleted(p),
    onDelete: deleted,
  })
  await inf.start()
  return { log, stop: () => inf.stop() }
}

function statefulSet(name: string, spec: Record<string, any> = {}, image = 'skiff/echo:v1'): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: { replicas: 3, serviceName: name, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } }, ...spec },
  }
}

t.test('statefulset controller', async (t) => {
  const c = await startTestCluster(t)
  const client = c.client
  const informers = new SharedInformers({ client, logger })
  const recorder = new ApiEventRecorder({ client, logger, component: 'statefulset-test' })
  const recorded: Array<{ ns?: string; reason: string; message: string }> = []
  const ctx: ControllerContext = {
    client,
    informers,
    events: {
      event(obj, type, reason, message) {
        recorded.push({ ns: obj.metadata.namespace, reason, message })
        recorder.event(obj, type, reason, message)
      },
    },
    logger,
    metrics: createRegistry(),
    config: defaultControllerConfig,
  }
  // The PersistentVolume controller lifts kubernetes.io/pvc-protection from claims no pod uses, so deleted claims go.
  const controllers = [new StatefulSetController(), new DaemonSetController(), new PersistentVolumeController()]
  for (const ctl of controllers) await ctl.start(ctx)
  await informers.start()
  t.teardown(async () => {
    for (const ctl of controllers) await ctl.stop()
    informers.stop()
  })
  t.teardown(await startPodStatusLoop(client))
  for (const ns of ['ordered', 'scaled', 'par', 'part', 'ondel', 'hist', 'ds']) await client.create(namespaces, undefined, { metadata: { name: ns } })
  const podsOf = async (ns: string) => (await client.list(pods, ns)).items.sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))
  const stsStatus = (ns: string, want: (s: any, set: KubeObject) => boolean, what: string) =>
    eventually(async () => {
      const x = await client.get(stss, ns, 'web')
      return x.status?.observedGeneration === x.metadata.generation && want(x.status, x) && x
    }, { timeout, what })

  await t.test('OrderedReady: web-0, web-1, web-2 in order, each after the previous is Ready; claims per ordinal; scale down from the highest', async (t) => {
    const watch = await podLog(client, 'ordered')
    t.teardown(watch.stop)
    const vct = [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }]
    await c.kubectl(['apply', '-f', '-', '-n', 'ordered'], { stdin: JSON.stringify(statefulSet('web', { volumeClaimTemplates: vct })) })
    const status = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'ordered', '--timeout=60s'], { timeoutMs: 90_000 })
    t.match(status.stdout, 'partitioned roll out complete: 3 new pods have been updated...')
    const created = watch.log.filter((e) => e.op === 'create')
    t.same(created.map((e) => e.name), ['web-0', 'web-1', 'web-2'], 'created in ordinal order')
    t.same(created.map((e) => e.ready), [[], ['web-0'], ['web-0', 'web-1']], 'each created only when every lower ordinal was Ready')

    const set = await client.get(stss, 'ordered', 'web')
    t.match(set.spec, { podManagementPolicy: 'OrderedReady', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }, revisionHistoryLimit: 10, persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' } }, 'defaults')
    t.match(set.status, { replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, availableReplicas: 3, collisionCount: 0 })
    t.equal(set.status.currentRevision, set.status.updateRevision)
    const ps = await podsOf('ordered')
    for (const [i, p] of ps.entries()) {
      t.equal(p.metadata.name, `web-${i}`)
      t.match(p.metadata.labels, { app: 'web', 'statefulset.kubernetes.io/pod-name': `web-${i}`, 'apps.kubernetes.io/pod-index': String(i), 'controller-revision-hash': set.status.updateRevision })
      t.match(p.spec, { hostname: `web-${i}`, subdomain: 'web' })
      t.match(p.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: `data-web-${i}` } }])
      t.match(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: set.metadata.uid, controller: true }])
    }
    const pvcs = (await client.list(claims, 'ordered')).items.map((x) => x.metadata.name).sort()
    t.same(pvcs, ['data-web-0', 'data-web-1', 'data-web-2'], 'one claim per ordinal')
    const get = await c.kubectl(['get', 'sts', '-n', 'ordered'])
    t.match(get.stdout, /NAME\s+READY\s+AGE\s+web\s+3\/3\s+/)

    await c.kubectl(['scale', 'sts/web', '--replicas=1', '-n', 'ordered'])
    await stsStatus('ordered', (s) => s.replicas === 1 && s.readyReplicas === 1, 'scaled to 1')
    const deleted = watch.log.filter((e) => e.op === 'delete')
    t.same(deleted.map((e) => e.name), ['web-2', 'web-1'], 'highest ordinal first')
    t.notOk(deleted[1].present.includes('web-2'), 'web-1 deleted only after web-2 was gone')
    t.same((await podsOf('ordered')).map((p) => p.metadata.name), ['web-0'])
    t.same((await client.list(claims, 'ordered')).items.map((x) => x.metadata.name).sort(), pvcs, 'claims kept after scale-down')
    t.ok(recorded.some((e) => e.ns === 'ordered' && e.reason === 'SuccessfulCreate' && e.message === 'create Pod web-1 in StatefulSet web successful'), 'SuccessfulCreate event')
    t.ok(recorded.some((e) => e.ns === 'ordered' && e.reason === 'SuccessfulCreate' && e.message === 'create Claim data-web-1 Pod web-1 in StatefulSet web success'), 'claim event')
    t.ok(recorded.some((e) => e.ns === 'ordered' && e.reason === 'SuccessfulDelete' && e.message === 'delete Pod web-2 in StatefulSet web successful'), 'SuccessfulDelete event')

    await c.kubectl(['scale', 'sts/web', '--replicas=2', '-n', 'ordered'])
    await stsStatus('ordered', (s) => s.readyReplicas === 2, 'scaled back to 2')
    const web1 = (await podsOf('ordered'))[1]
    t.match(web1.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } }], 'web-1 is back on its old claim')
    t.equal((await client.list(claims, 'ordered')).items.length, 3, 'no new claim')
  })

  await t.test('persistentVolumeClaimRetentionPolicy whenScaled Delete: the claim of a scaled-away ordinal goes with its pod', async (t) => {
    const vct = [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }]
    const policy = { whenDeleted: 'Retain', whenScaled: 'Delete' }
    await client.create(stss, 'scaled', statefulSet('web', { replicas: 2, volumeClaimTemplates: vct, persistentVolumeClaimRetentionPolicy: policy }))
    await stsStatus('scaled', (s) => s.readyReplicas === 2, '2 ready')
    const names = async () => (await client.list(claims, 'scaled')).items.map((x) => x.metadata.name).sort()
    t.same(await names(), ['data-web-0', 'data-web-1'])
    await c.kubectl(['scale', 'sts/web', '--replicas=1', '-n', 'scaled'])
    await eventually(async () => (await names()).length === 1, { timeout, what: 'claim of web-1 deleted' })
    t.same(await names(), ['data-web-0'])
  })

  await t.test('Parallel: every pod at once, without waiting for readiness', async (t) => {
    await client.create(stss, 'par', statefulSet('web', { podManagementPolicy: 'Parallel' }, 'skiff/never-ready:v1'))
    const ps = await eventually(async () => {
      const x = await podsOf('par')
      return x.length === 3 && x
    }, { timeout, what: '3 pods' })
    t.same(ps.map((p) => p.metadata.name), ['web-0', 'web-1', 'web-2'])
    t.notOk(ps.some(isReady), 'none of them Ready')
    const st = await stsStatus('par', (s) => s.replicas === 3, 'status of 3 pods')
    t.match(st.status, { replicas: 3, readyReplicas: 0 })
    const described = await c.kubectl(['describe', 'sts', 'web', '-n', 'par'])
    t.match(described.stdout, /Replicas:\s+3 desired \| 3 total/)
    t.match(described.stdout, /Update Strategy:\s+RollingUpdate/)
    await c.kubectl(['delete', 'sts', 'web', '-n', 'par'])
    await eventually(async () => (await podsOf('par')).length === 0, { timeout, what: 'pods collected with their set' })
    t.pass('deleting the set deletes its pods (owner references)')
  })

  await t.test('RollingUpdate with partition 2 updates only web-2; partition 0 then the rest, highest first', async (t) => {
    await client.create(stss, 'part', statefulSet('web'))
    await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'part', '--timeout=60s'], { timeoutMs: 90_000 })
    const before = await podsOf('part')
    const watch = await podLog(client, 'part')
    t.teardown(watch.stop)
    const patch = { spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } }, template: { spec: { containers: [{ name: 'app', image: 'skiff/echo:v2' }] } } } }
    await c.kubectl(['patch', 'sts/web', '-n', 'part', '-p', JSON.stringify(patch)])
    const status = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'part', '--timeout=60s'], { timeoutMs: 90_000 })
    t.match(status.stdout, 'partitioned roll out complete: 1 new pods have been updated...')
    const set = await stsStatus('part', (s) => s.updatedReplicas === 1 && s.readyReplicas === 3, 'web-2 updated')
    t.not(set.status.currentRevision, set.status.updateRevision, 'the update is not complete')
    t.match(set.status, { replicas: 3, currentReplicas: 2, updatedReplicas: 1 })
    const mid = await podsOf('part')
    t.same(mid.map(imageOf), ['skiff/echo:v1', 'skiff/echo:v1', 'skiff/echo:v2'], 'only web-2 runs the new template')
    t.same(mid.slice(0, 2).map((p) => p.metadata.uid), before.slice(0, 2).map((p) => p.metadata.uid), 'web-0 and web-1 untouched')
    t.equal(mid[2].metadata.labels?.['controller-revision-hash'], set.status.updateRevision)

    await c.kubectl(['patch', 'sts/web', '-n', 'part', '-p', JSON.stringify({ spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } })])
    await stsStatus('part', (s) => s.updatedReplicas === 3 && s.readyReplicas === 3 && s.currentRevision === s.updateRevision, 'all updated')
    const deleted = watch.log.filter((e) => e.op === 'delete')
    t.same(deleted.map((e) => e.name), ['web-2', 'web-1', 'web-0'], 'highest ordinal first')
    t.same(deleted.map((e) => e.ready.length), [2, 2, 2], 'one at a time: the others Ready at each deletion')
    t.same((await podsOf('part')).map(imageOf), ['skiff/echo:v2', 'skiff/echo:v2', 'skiff/echo:v2'])
  })

  await t.test('OnDelete: a new template reaches only the pods someone deletes', async (t) => {
    await client.create(stss, 'ondel', statefulSet('web', { updateStrategy: { type: 'OnDelete' } }))
    await stsStatus('ondel', (s) => s.readyReplicas === 3, '3 ready')
    const before = await podsOf('ondel')
    await c.kubectl(['set', 'image', 'sts/web', 'app=skiff/echo:v2', '-n', 'ondel'])
    const set = await stsStatus('ondel', (s) => s.currentRevision !== s.updateRevision, 'new update revision observed')
    t.match(set.status, { currentReplicas: 3, updatedReplicas: 0 })
    t.same((await podsOf('ondel')).map((p) => p.metadata.uid), before.map((p) => p.metadata.uid), 'no pod replaced')
    await client.delete(pods, 'ondel', 'web-1')
    await stsStatus('ondel', (s) => s.updatedReplicas === 1 && s.readyReplicas === 3, 'web-1 back, updated')
    const after = await podsOf('ondel')
    t.same(after.map(imageOf), ['skiff/echo:v1', 'skiff/echo:v2', 'skiff/echo:v1'])
    t.same([after[0].metadata.uid, after[2].metadata.uid], [before[0].metadata.uid, before[2].metadata.uid])
    const r = await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'ondel', '--timeout=5s'], { allowFail: true })
    t.match(r.stderr, 'rollout status is only available for RollingUpdate strategy type')
  })

  await t.test('StatefulSet: rollout history and undo through ControllerRevisions', async (t) => {
    await client.create(stss, 'hist', statefulSet('web'))
    await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'hist', '--timeout=60s'], { timeoutMs: 90_000 })
    await c.kubectl(['set', 'image', 'sts/web', 'app=skiff/echo:v2', '-n', 'hist'])
    await c.kubectl(['rollout', 'status', 'sts/web', '-n', 'hist', '--timeout=60s'], { timeoutMs: 90_000 })
    await stsStatus('hist', (s) => s.updatedReplicas === 3 && s.currentRevision === s.updateRevision, 'v2 complete')
    const history = await c.kubectl(['rollout', 'history', 'sts/web', '-n', 'hist'])
    t.match(history.stdout, /REVISION\s+CHANGE-CAUSE\s+1\s+<none>\s+2\s+<none>/)
    const one = await c.kubectl(['rollout', 'history', 'sts/web', '-n', 'hist', '--revision=1'])
    t.match(one.stdout, /Image:\s+skiff\/echo:v1/, 'revision 1 shows the first template')
    const crs = (await client.list(revisions, 'hist')).items
    t.equal(crs.length, 2)
    const v1 = crs.find((r: any) => r.revision === 1)! as any
    t.match(v1.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]+$/)
    t.match(v1.data, { spec: { template: { $patch: 'replace', metadata: { labels: { app: 'web' } }, spec: { containers: [{ image: 'skiff/echo:v1' }] } } } })
    const listed = await c.kubectl(['get', 'controllerrevisions', '-n', 'hist'])
    t.match(listed.stdout, new RegExp(`NAME\\s+CONTROLLER\\s+REVISION\\s+AGE\\s[\\s\\S]*${v1.metadata.name}\\s+statefulset.apps/web\\s+1\\s`))

    const undo = await c.kubectl(['rollout', 'undo', 'sts/web', '-n', 'hist'])
    t.match(undo.stdout, 'statefulset.apps/web rolled back')
    await stsStatus('hist', (s, set) => imageOf(set) === 'skiff/echo:v1' && s.updatedReplicas === 3 && s.readyReplicas === 3 && s.currentRevision === s.updateRevision, 'back on v1')
    t.same((await podsOf('hist')).map(imageOf), ['skiff/echo:v1', 'skiff/echo:v1', 'skiff/echo:v1'])
    const set = await client.get(stss, 'hist', 'web')
    t.equal(set.status.updateRevision, v1.metadata.name, 'the first revision is reused')
    const again = (await client.list(revisions, 'hist')).items
    t.equal(again.length, 2, 'no third revision')
    t.equal((again.find((r) => r.metadata.name === v1.metadata.name) as any).revision, 3, 'renumbered to 3')
    const history2 = await c.kubectl(['rollout', 'history', 'sts/web', '-n', 'hist'])
    t.match(history2.stdout, /REVISION\s+CHANGE-CAUSE\s+2\s+<none>\s+3\s+<none>/)
  })

  await t.test('DaemonSet: rollout history and undo through ControllerRevisions', async (t) => {
    const ready = [{ type: 'Ready', status: 'True' }]
    for (const name of ['ds-a', 'ds-b']) await client.create(nodes, undefined, { metadata: { name, labels: { 'kubernetes.io/hostname': name } }, status: { conditions: ready } })
    const ds = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'app', image: 'skiff/echo:v1' }] } } } }
    await client.create(dss, 'ds', ds)
    await c.kubectl(['rollout', 'status', 'ds/agent', '-n', 'ds', '--timeout=60s'], { timeoutMs: 90_000 })
    await c.kubectl(['set', 'image', 'ds/agent', 'app=skiff/echo:v2', '-n', 'ds'])
    await c.kubectl(['rollout', 'status', 'ds/agent', '-n', 'ds', '--timeout=60s'], { timeoutMs: 90_000 })
    const crs = (await client.list(revisions, 'ds')).items as any[]
    t.same(crs.map((r) => r.revision).sort(), [1, 2])
    const ps = await podsOf('ds')
    const v2 = crs.find((r) => r.revision === 2)
    t.equal(v2.metadata.name, `agent-${v2.metadata.labels['controller-revision-hash']}`)
    t.ok(ps.every((p) => p.metadata.labels?.['controller-revision-hash'] === v2.metadata.labels['controller-revision-hash']), 'pods carry the revision hash')
    const history = await c.kubectl(['rollout', 'history', 'ds/agent', '-n', 'ds'])
    t.match(history.stdout, /REVISION\s+CHANGE-CAUSE\s+1\s+<none>\s+2\s+<none>/)
    const undo = await c.kubectl(['rollout', 'undo', 'ds/agent', '-n', 'ds'])
    t.match(undo.stdout, 'daemonset.apps/agent rolled back')
    await eventually(async () => {
      const x = await client.get(dss, 'ds', 'agent')
      const now = await podsOf('ds')
      return imageOf(x) === 'skiff/echo:v1' && x.status?.updatedNumberScheduled === 2 && x.status?.numberAvailable === 2 && now.length === 2 && now.every((p) => imageOf(p) === 'skiff/echo:v1')
    }, { timeout, what: 'daemon pods back on v1' })
    const history2 = await c.kubectl(['rollout', 'history', 'ds/agent', '-n', 'ds'])
    t.match(history2.stdout, /REVISION\s+CHANGE-CAUSE\s+2\s+<none>\s+3\s+<none>/)
    t.equal((await client.list(revisions, 'ds')).items.length, 2, 'the first revision reused')
  })
})
