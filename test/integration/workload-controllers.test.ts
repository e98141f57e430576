// The ReplicaSet, Deployment and DaemonSet controllers against a real
// apiserver on a real redis-server, driven and checked with the real kubectl
// where users would use it (rollout status/history/undo, set image). There
// are no node agents here, so the test plays the kubelet's part and nothing
// else: a small loop that marks new pods Running and, after a delay chosen by
// image, Ready (`:v2` after 300 ms, `never-ready` never), and finishes the
// deletion of pods bound to a node. Everything else is the real controllers.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import { ApiEventRecorder, SharedInformers } from '../../controlplane/controllers/informers.ts'
import { defaultControllerConfig, type ControllerContext } from '../../controlplane/controllers/types.ts'
import { ReplicaSetController } from '../../controlplane/controllers/replicaset.ts'
import { DeploymentController } from '../../controlplane/controllers/deployment.ts'
import { DaemonSetController } from '../../controlplane/controllers/daemonset.ts'
import { silentLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const pods = lookupResource('', 'v1', 'pods')!
const nodes = lookupResource('', 'v1', 'nodes')!
const namespaces = lookupResource('', 'v1', 'namespaces')!
const rss = lookupResource('apps', 'v1', 'replicasets')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const dss = lookupResource('apps', 'v1', 'daemonsets')!
const logger = silentLogger()
const timeout = 45_000

const isReady = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
const live = (p: KubeObject) => !p.metadata.deletionTimestamp
const imageOf = (o: KubeObject) => (o.spec?.template?.spec ?? o.spec).containers[0].image as string

function readyAfterMs(pod: KubeObject): number | undefined {
  const image = imageOf(pod)
  if (image.includes('never-ready')) return undefined
  return image.endsWith(':v2') ? 300 : 0
}

/** The kubelet's part, simulated: Running at once, Ready after readyAfterMs; bound pods being deleted are finished. */
async function startFakeKubelet(client: ApiClient): Promise<{ stop(): void }> {
  const inf = new Informer({ client, info: pods, logger })
  const timers = new Set<NodeJS.Timeout>()
  const started = new Set<string>()
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => (timers.delete(timer), fn()), ms)
    timers.add(timer)
  }
  const setStatus = (pod: KubeObject, ready: boolean) => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const r = ready ? 'True' : 'False'
    const conditions = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: type.endsWith('Ready') ? r : 'True', lastTransitionTime: now }))
    const containerStatuses = pod.spec.containers.map((c: any) => ({ name: c.name, image: c.image, imageID: '', ready, started: true, restartCount: 0, state: { running: { startedAt: now } } }))
    const body = { status: { phase: 'Running', startTime: now, conditions, containerStatuses } }
    return client.patch(pods, pod.metadata.namespace, pod.metadata.name!, body, 'application/merge-patch+json', 'status').catch(() => undefined)
  }
  const handle = (pod: KubeObject) => {
    if (pod.metadata.deletionTimestamp) {
      const path = resourcePath(pods, pod.metadata.namespace, pod.metadata.name)
      void client.request('DELETE', path, { body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 } }).catch(() => undefined)
      return
    }
    if (started.has(pod.metadata.uid!)) return
    started.add(pod.metadata.uid!)
    void setStatus(pod, false).then(() => {
      const ms = readyAfterMs(pod)
      if (ms !== undefined) later(ms, () => void setStatus(pod, true))
    })
  }
  inf.addHandlers({ onAdd: handle, onUpdate: (_, p) => handle(p) })
  await inf.start()
  return {
    stop() {
      inf.stop()
      for (const x of timers) clearTimeout(x)
    },
  }
}

/** Watches the pods of one selector and records, at every event, what a user would see. */
async function samplePods(client: ApiClient, ns: string, selector: string) {
  const inf = new Informer({ client, info: pods, logger, namespace: ns, labelSelector: selector })
  const stats = { samples: 0, minReady: Infinity, maxTotal: 0, mixedImages: false }
  let on = false
  const sample = () => {
    if (!on) return
    const all = inf.list()
    stats.samples++
    stats.maxTotal = Math.max(stats.maxTotal, all.length)
    stats.minReady = Math.min(stats.minReady, all.filter((p) => live(p) && isReady(p)).length)
    if (new Set(all.map(imageOf)).size > 1) stats.mixedImages = true
  }
  inf.addHandlers({ onAdd: sample, onUpdate: sample, onDelete: sample })
  await inf.start()
  on = true
  sample()
  return { stats, stop: () => inf.stop() }
}

function template(app: string, image: string) {
  return { metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image }] } }
}

t.test('workload controllers', async (t) => {
  const c = await startTestCluster(t)
  const client = c.client
  const informers = new SharedInformers({ client, logger })
  // Events go to the API as usual; the test also keeps what the controllers asked for.
  const recorder = new ApiEventRecorder({ client, logger, component: 'workload-test' })
  const recorded: Array<{ ns?: string; kind?: string; name?: string; reason: string; message: string }> = []
  const ctx: ControllerContext = {
    client,
    informers,
    events: {
      event(obj, type, reason, message) {
        recorded.push({ ns: obj.metadata.namespace, kind: obj.kind, name: obj.metadata.name, reason, message })
        recorder.event(obj, type, reason, message)
      },
    },
    logger,
    metrics: createRegistry(),
    config: defaultControllerConfig,
  }
  const controllers = [new ReplicaSetController(), new DeploymentController(), new DaemonSetController()]
  for (const ctl of controllers) await ctl.start(ctx)
  await informers.start()
  t.teardown(async () => {
    for (const ctl of controllers) await ctl.stop()
    informers.stop()
  })
  const kubelet = await startFakeKubelet(client)
  t.teardown(() => kubelet.stop())
  for (const ns of ['rs', 'roll', 'rec', 'stuck', 'ds']) await client.create(namespaces, undefined, { metadata: { name: ns } })
  const podsOf = async (ns: string, app: string) => (await client.list(pods, ns, { labelSelector: `app=${app}` })).items

  await t.test('ReplicaSet: creates, replaces, scales down the not-ready pod first, replaces Failed pods', async (t) => {
    await client.create(rss, 'rs', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: template('web', 'skiff/echo:v1') } })
    const rs = await eventually(async () => {
      const x = await client.get(rss, 'rs', 'web')
      return x.status?.readyReplicas === 3 && x.status?.availableReplicas === 3 && x.status?.observedGeneration === 1 && x
    }, { timeout, what: '3 ready replicas' })
    const first = await podsOf('rs', 'web')
    t.equal(first.length, 3, 'exactly 3 pods')
    for (const p of first) {
      t.match(p.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/)
      t.match(p.metadata.ownerReferences, [{ kind: 'ReplicaSet', name: 'web', uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }])
    }

    await client.delete(pods, 'rs', first[0].metadata.name!)
    const second = await eventually(async () => {
      const ps = await podsOf('rs', 'web')
      return ps.length === 3 && !ps.some((p) => p.metadata.name === first[0].metadata.name) && ps.every(isReady) && ps
    }, { timeout, what: 'deleted pod replaced' })
    t.pass('deleted pod replaced')

    const notReady = second[1]
    const ready = { type: 'Ready', status: 'False', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }
    await client.patch(pods, 'rs', notReady.metadata.name!, { status: { conditions: [ready] } }, 'application/merge-patch+json', 'status')
    await eventually(async () => (await client.get(rss, 'rs', 'web')).status?.readyReplicas === 2, { timeout, what: 'controller sees the not-ready pod' })
    await client.patch(rss, 'rs', 'web', { spec: { replicas: 2 } }, 'application/merge-patch+json')
    const left = await eventually(async () => {
      const ps = await podsOf('rs', 'web')
      return ps.length === 2 && ps
    }, { timeout, what: 'scaled down to 2' })
    t.notOk(left.some((p) => p.metadata.name === notReady.metadata.name), 'the not-ready pod went first')

    await client.patch(pods, 'rs', left[0].metadata.name!, { status: { phase: 'Failed' } }, 'application/merge-patch+json', 'status')
    await eventually(async () => {
      const ps = await podsOf('rs', 'web')
      return ps.length === 2 && !ps.some((p) => p.metadata.name === left[0].metadata.name) && ps.every(isReady)
    }, { timeout, what: 'failed pod deleted and replaced' })
    const evs = recorded.filter((e) => e.ns === 'rs' && e.kind === 'ReplicaSet' && e.name === 'web')
    t.ok(evs.some((e) => e.reason === 'SuccessfulCreate' && /^Created pod: web-/.test(e.message)), 'SuccessfulCreate event')
    t.ok(evs.some((e) => e.reason === 'SuccessfulDelete'), 'SuccessfulDelete event')
  })

  await t.test('Deployment: rolling update within maxSurge/maxUnavailable; rollout status, history, undo', async (t) => {
    const strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }
    await client.create(deploys, 'roll', { metadata: { name: 'web' }, spec: { replicas: 4, strategy, selector: { matchLabels: { app: 'web' } }, template: template('web', 'skiff/echo:v1') } })
    await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'roll', '--timeout=60s'], { timeoutMs: 90_000 })
    const v1 = (await client.list(rss, 'roll')).items
    t.equal(v1.length, 1, 'one ReplicaSet')
    t.match(v1[0].metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]+$/)
    t.equal(v1[0].metadata.annotations?.['deployment.kubernetes.io/revision'], '1')
    t.equal(v1[0].spec.selector.matchLabels['pod-template-hash'], v1[0].metadata.name!.slice('web-'.length))

    const sampler = await samplePods(client, 'roll', 'app=web')
    t.teardown(sampler.stop)
    await c.kubectl(['set', 'image', 'deployment/web', 'app=skiff/echo:v2', '-n', 'roll'])
    const status = await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'roll', '--timeout=90s'], { timeoutMs: 120_000 })
    t.match(status.stdout, 'successfully rolled out')
    sampler.stop()
    t.ok(sampler.stats.samples > 10, `sampled on every pod event (${sampler.stats.samples})`)
    t.ok(sampler.stats.minReady >= 3, `ready pods never below replicas - maxUnavailable = 3 (min ${sampler.stats.minReady})`)
    t.ok(sampler.stats.maxTotal <= 5, `pods never above replicas + maxSurge = 5 (max ${sampler.stats.maxTotal})`)
    const d = await client.get(deploys, 'roll', 'web')
    t.match(d.status, { observedGeneration: d.metadata.generation, replicas: 4, updatedReplicas: 4, readyReplicas: 4, availableReplicas: 4, unavailableReplicas: 0 })
    t.match(d.status.conditions, [
      { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
      { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
    ])
    t.equal(d.metadata.annotations?.['deployment.kubernetes.io/revision'], '2')
    const scaled = recorded.filter((e) => e.ns === 'roll' && e.kind === 'Deployment' && e.reason === 'ScalingReplicaSet')
    t.ok(scaled.some((e) => /^Scaled up replica set web-\S+ from \d+ to \d+$/.test(e.message)), 'ScalingReplicaSet up')
    t.ok(scaled.some((e) => /^Scaled down replica set web-\S+ from \d+ to \d+$/.test(e.message)), 'ScalingReplicaSet down')

    const history = await c.kubectl(['rollout', 'history', 'deployment/web', '-n', 'roll'])
    t.match(history.stdout, /REVISION\s+CHANGE-CAUSE\s+1\s+<none>\s+2\s+<none>/)

    const undo = await c.kubectl(['rollout', 'undo', 'deployment/web', '-n', 'roll'])
    t.match(undo.stdout, 'rolled back')
    await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'roll', '--timeout=90s'], { timeoutMs: 120_000 })
    const after = await client.get(deploys, 'roll', 'web')
    t.equal(imageOf(after), 'skiff/echo:v1', 'previous template restored')
    t.equal(after.metadata.annotations?.['deployment.kubernetes.io/revision'], '3')
    const sets = (await client.list(rss, 'roll')).items
    t.equal(sets.length, 2, 'no third ReplicaSet')
    const reused = sets.find((rs) => rs.metadata.name === v1[0].metadata.name)!
    t.equal(reused.metadata.uid, v1[0].metadata.uid, 'the first ReplicaSet reused')
    t.equal(reused.metadata.annotations?.['deployment.kubernetes.io/revision'], '3', 'its revision bumped')
    t.equal(reused.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1')
    t.equal(reused.spec.replicas, 4)
    const again = await c.kubectl(['rollout', 'history', 'deployment/web', '-n', 'roll'])
    t.match(again.stdout, /REVISION\s+CHANGE-CAUSE\s+2\s+<none>\s+3\s+<none>/)
  })

  await t.test('Deployment: Recreate never runs old and new pods together', async (t) => {
    await client.create(deploys, 'rec', { metadata: { name: 'web' }, spec: { replicas: 2, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'web' } }, template: template('web', 'skiff/echo:v1') } })
    await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'rec', '--timeout=60s'], { timeoutMs: 90_000 })
    const sampler = await samplePods(client, 'rec', 'app=web')
    t.teardown(sampler.stop)
    await client.patch(deploys, 'rec', 'web', { spec: { template: template('web', 'skiff/echo:v2') } }, 'application/merge-patch+json')
    await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'rec', '--timeout=60s'], { timeoutMs: 90_000 })
    sampler.stop()
    t.notOk(sampler.stats.mixedImages, 'old and new pods never coexist')
    const ps = await podsOf('rec', 'web')
    t.same(ps.map(imageOf), ['skiff/echo:v2', 'skiff/echo:v2'])
  })

  await t.test('Deployment: ProgressDeadlineExceeded when new pods never become ready', async (t) => {
    await client.create(deploys, 'stuck', {
      metadata: { name: 'web' },
      spec: { replicas: 1, progressDeadlineSeconds: 2, selector: { matchLabels: { app: 'web' } }, template: template('web', 'skiff/never-ready:v1') },
    })
    const d = await eventually(async () => {
      const x = await client.get(deploys, 'stuck', 'web')
      return (x.status?.conditions ?? []).some((c: any) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded') && x
    }, { timeout, what: 'ProgressDeadlineExceeded' })
    t.match(d.status.conditions, [{ type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable' }, { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }])
    const r = await c.kubectl(['rollout', 'status', 'deployment/web', '-n', 'stuck', '--timeout=30s'], { allowFail: true, timeoutMs: 60_000 })
    t.not(r.code, 0, 'rollout status fails')
    t.match(r.stderr, 'exceeded its progress deadline')
  })

  await t.test('DaemonSet: one pod per Ready node, none on a tainted node; rolling update', async (t) => {
    const ready = [{ type: 'Ready', status: 'True' }]
    const names = ['ds-a', 'ds-b', 'ds-c']
    for (const name of names) await client.create(nodes, undefined, { metadata: { name, labels: { 'kubernetes.io/hostname': name } }, status: { conditions: ready } })
    await client.create(nodes, undefined, { metadata: { name: 'ds-tainted' }, spec: { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }] }, status: { conditions: ready } })
    await client.create(dss, 'ds', { metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent', 'skiff/echo:v1') } })
    const ds = await eventually(async () => {
      const x = await client.get(dss, 'ds', 'agent')
      return x.status?.numberReady === 3 && x
    }, { timeout, what: '3 ready daemon pods' })
    t.match(ds.status, { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberMisscheduled: 0, numberAvailable: 3, updatedNumberScheduled: 3, observedGeneration: 1 })
    const placed = (await podsOf('ds', 'agent')).map((p) => p.spec.nodeName).sort()
    t.same(placed, names, 'one pod on each Ready node, none on the tainted one')

    await client.patch(dss, 'ds', 'agent', { spec: { template: template('agent', 'skiff/echo:v2') } }, 'application/merge-patch+json')
    await eventually(async () => {
      const x = await client.get(dss, 'ds', 'agent')
      const ps = await podsOf('ds', 'agent')
      return x.status?.updatedNumberScheduled === 3 && x.status?.numberAvailable === 3 && ps.length === 3 && ps.every((p) => imageOf(p) === 'skiff/echo:v2')
    }, { timeout, what: 'daemon pods updated' })
    t.pass('all daemon pods replaced with the new template')
  })
})
