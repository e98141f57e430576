// The pure parts of the StatefulSet controller (statefulset-plan.ts) and of
// the revision history shared with the DaemonSet controller
// (controller-revision.ts).

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import {
  planHistoryCleanup,
  planRevision,
  revisionData,
  revisionHash,
  revisionHashKey,
  templateOfRevision,
} from '../../controlplane/controllers/controller-revision.ts'
import { templatesEqual } from '../../controlplane/controllers/pod-template.ts'
import {
  buildClaims,
  buildStatefulSetPod,
  claimsToDeleteOnScaleDown,
  parseOrdinal,
  planStatefulSet,
  planStatefulSetPods,
  statefulSetStatus,
  type StatefulSetInput,
} from '../../controlplane/controllers/statefulset-plan.ts'
import { statefulSetRevisionNaming, statefulSetsInfo } from '../../controlplane/controllers/statefulset.ts'

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'skiff/echo:v1' }] } }

function sts(spec: Record<string, any> = {}, status: Record<string, any> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'ns', uid: 'u-sts', generation: 2 },
    spec: { replicas: 3, serviceName: 'web', selector: { matchLabels: { app: 'web' } }, template, podManagementPolicy: 'OrderedReady', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }, ...spec },
    status,
  }
}

/** A pod of ordinal i: 'ready' (Running+Ready), 'running' (not ready), 'pending', 'terminating', 'failed'; at revision rev. */
function pod(i: number, state = 'ready', rev = 'web-r1'): KubeObject {
  const ready = state === 'ready'
  return {
    metadata: { name: `web-${i}`, namespace: 'ns', uid: `u${i}`, labels: { app: 'web', 'controller-revision-hash': rev }, ...(state === 'terminating' ? { deletionTimestamp: '2025-01-01T00:00:00Z' } : {}) },
    spec: {},
    status: {
      phase: state === 'pending' ? 'Pending' : state === 'failed' ? 'Failed' : 'Running',
      conditions: [{ type: 'Ready', status: ready || state === 'terminating' ? 'True' : 'False', lastTransitionTime: '2025-01-01T00:00:00Z' }],
    },
  }
}

function input(set: KubeObject, pods: KubeObject[], o: Partial<StatefulSetInput> = {}): StatefulSetInput {
  return { set, pods, currentRevision: 'web-r1', updateRevision: 'web-r1', claims: new Set(), now: Date.parse('2025-01-02T00:00:00Z'), manage: true, ...o }
}

const plan = (i: StatefulSetInput) => {
  const p = planStatefulSetPods(i)
  return { create: p.create.map((c) => `${c.ordinal}:${c.revision}`), delete: p.delete.map((x) => x.metadata.name), claims: p.claims.map((c) => c.metadata.name) }
}

t.test('parseOrdinal: <set>-<n> only', async (t) => {
  const cases: Array<[string | undefined, number | undefined]> = [['web-0', 0], ['web-12', 12], ['web-01', undefined], ['web-x', undefined], ['webx-1', undefined], ['web-', undefined], ['web-1-2', undefined], [undefined, undefined]]
  for (const [name, want] of cases) t.equal(parseOrdinal('web', name), want, String(name))
  t.equal(parseOrdinal('my-web', 'my-web-3'), 3, 'dashes in the set name')
})

t.test('planStatefulSetPods: OrderedReady creates in order, each after the previous is Running and Ready', async (t) => {
  const set = sts()
  const cases: Array<[string, KubeObject[], { create: string[]; delete: string[] }]> = [
    ['nothing yet: only web-0', [], { create: ['0:update'], delete: [] }],
    ['web-0 pending: wait', [pod(0, 'pending')], { create: [], delete: [] }],
    ['web-0 running, not ready: wait', [pod(0, 'running')], { create: [], delete: [] }],
    ['web-0 ready: web-1', [pod(0)], { create: ['1:update'], delete: [] }],
    ['web-0, web-1 ready: web-2', [pod(0), pod(1)], { create: ['2:update'], delete: [] }],
    ['web-1 missing (deleted): web-1 again, web-2 untouched', [pod(0), pod(2)], { create: ['1:update'], delete: [] }],
    ['web-1 terminating: wait for it', [pod(0), pod(1, 'terminating'), pod(2)], { create: [], delete: [] }],
    ['web-1 failed: deleted, to be made again', [pod(0), pod(1, 'failed'), pod(2)], { create: [], delete: ['web-1'] }],
    ['all ready: nothing', [pod(0), pod(1), pod(2)], { create: [], delete: [] }],
  ]
  for (const [name, pods, want] of cases) t.same(plan(input(set, pods)), { ...want, claims: [] }, name)
})

t.test('planStatefulSetPods: Parallel creates and deletes at once', async (t) => {
  const set = sts({ podManagementPolicy: 'Parallel' })
  t.same(plan(input(set, [])).create, ['0:update', '1:update', '2:update'], 'all three at once')
  t.same(plan(input(set, [pod(0, 'pending')])).create, ['1:update', '2:update'], 'no wait for web-0')
  const down = sts({ podManagementPolicy: 'Parallel', replicas: 1 })
  t.same(plan(input(down, [pod(0), pod(1, 'pending'), pod(2)])).delete, ['web-2', 'web-1'], 'every surplus pod, highest first')
})

t.test('planStatefulSetPods: OrderedReady scales down from the highest ordinal, one at a time, while the rest are healthy', async (t) => {
  const set = sts({ replicas: 1 })
  const cases: Array<[string, KubeObject[], string[]]> = [
    ['3 ready: web-2 first', [pod(0), pod(1), pod(2)], ['web-2']],
    ['web-2 terminating: wait', [pod(0), pod(1), pod(2, 'terminating')], []],
    ['web-2 gone: web-1', [pod(0), pod(1)], ['web-1']],
    ['web-0 not ready: nothing is deleted', [pod(0, 'running'), pod(1), pod(2)], []],
    ['web-2 itself unhealthy (the first unhealthy): deleted', [pod(0), pod(1), pod(2, 'running')], ['web-2']],
    ['condemned web-1 unhealthy: web-2 still goes first (its successors before it)', [pod(0), pod(1, 'running'), pod(2)], ['web-2']],
    ['then the unhealthy web-1 itself', [pod(0), pod(1, 'running')], ['web-1']],
    ['both condemned unhealthy: the highest goes', [pod(0), pod(1, 'pending'), pod(2, 'running')], ['web-2']],
    ['a condemned pod unhealthy behind an unhealthy kept pod: blocked', [pod(0, 'running'), pod(1, 'running')], []],
  ]
  for (const [name, pods, want] of cases) t.same(plan(input(set, pods)).delete, want, name)
  t.same(plan(input(sts({ replicas: 0 }), [pod(0), pod(1)])).delete, ['web-1'], 'to zero: still highest first')
})

t.test('planStatefulSetPods: RollingUpdate from the highest ordinal down to the partition, one at a time', async (t) => {
  const upd = { currentRevision: 'web-r1', updateRevision: 'web-r2' }
  const at = (i: number, rev: string, state = 'ready') => pod(i, state, rev)
  const cases: Array<[string, number, KubeObject[], { create: string[]; delete: string[] }]> = [
    ['all old: web-2 goes first', 0, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r1')], { create: [], delete: ['web-2'] }],
    ['web-2 terminating: wait', 0, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r1', 'terminating')], { create: [], delete: [] }],
    ['web-2 gone: made again at the update revision', 0, [at(0, 'web-r1'), at(1, 'web-r1')], { create: ['2:update'], delete: [] }],
    ['new web-2 not ready: wait', 0, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r2', 'running')], { create: [], delete: [] }],
    ['new web-2 ready: web-1', 0, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r2')], { create: [], delete: ['web-1'] }],
    ['all new: done', 0, [at(0, 'web-r2'), at(1, 'web-r2'), at(2, 'web-r2')], { create: [], delete: [] }],
    ['partition 2: only web-2', 2, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r1')], { create: [], delete: ['web-2'] }],
    ['partition 2, web-2 updated: done', 2, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r2')], { create: [], delete: [] }],
    ['partition 2: a deleted web-0 comes back at the current revision', 2, [at(1, 'web-r1'), at(2, 'web-r2')], { create: ['0:current'], delete: [] }],
    ['partition 3 (= replicas): nothing updated', 3, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r1')], { create: [], delete: [] }],
  ]
  for (const [name, partition, pods, want] of cases)
    t.same(plan(input(sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition } } }), pods, upd)), { ...want, claims: [] }, name)
  const onDelete = sts({ updateStrategy: { type: 'OnDelete' } })
  t.same(plan(input(onDelete, [at(0, 'web-r1'), at(1, 'web-r1'), at(2, 'web-r1')], upd)), { create: [], delete: [], claims: [] }, 'OnDelete: nothing deleted')
  t.same(plan(input(onDelete, [at(0, 'web-r1'), at(2, 'web-r1')], upd)).create, ['1:update'], 'OnDelete: a deleted pod comes back new')
})

t.test('claims: one per template and ordinal, created before the pod, made again when missing, kept on scale-down', async (t) => {
  const vct = [{ metadata: { name: 'data', labels: { tier: 'db' } }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }]
  const set = sts({ volumeClaimTemplates: vct })
  t.same(plan(input(set, [])), { create: ['0:update'], delete: [], claims: ['data-web-0'] })
  t.same(plan(input(set, [], { claims: new Set(['data-web-0']) })).claims, [], 'existing claim reused')
  t.same(plan(input(set, [pod(0)], { claims: new Set() })).claims, ['data-web-0', 'data-web-1'], 'a lost claim of a running pod is made again')
  const down = plan(input(sts({ volumeClaimTemplates: vct, replicas: 1 }), [pod(0), pod(1), pod(2)], { claims: new Set(['data-web-0', 'data-web-1', 'data-web-2']) }))
  t.same(down, { create: [], delete: ['web-2'], claims: [] }, 'scale-down deletes no claim')
  const [claim] = buildClaims(set, 4)
  t.match(claim, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data-web-4', namespace: 'ns', labels: { tier: 'db', app: 'web' } }, spec: vct[0].spec })
  t.notOk(claim.metadata.ownerReferences, 'Retain: no owner')
  const [owned] = buildClaims(sts({ volumeClaimTemplates: vct, persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' } }), 0)
  t.match(owned.metadata.ownerReferences, [{ kind: 'StatefulSet', name: 'web', uid: 'u-sts', controller: false }], 'whenDeleted Delete: owned by the set')
})

t.test('claimsToDeleteOnScaleDown: only with whenScaled Delete, only ordinals scaled away whose pod is gone', async (t) => {
  const vct = [{ metadata: { name: 'data' }, spec: {} }]
  const claims = ['data-web-0', 'data-web-1', 'data-web-2', 'data-web-3', 'other-web-3', 'data-webx-3']
  const scaled = (policy: string) => sts({ replicas: 2, volumeClaimTemplates: vct, persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: policy } })
  t.same(claimsToDeleteOnScaleDown(scaled('Retain'), [pod(0), pod(1)], claims), [], 'Retain keeps them')
  t.same(claimsToDeleteOnScaleDown(scaled('Delete'), [pod(0), pod(1)], claims), ['data-web-2', 'data-web-3'])
  t.same(claimsToDeleteOnScaleDown(scaled('Delete'), [pod(0), pod(1), pod(2, 'terminating')], claims), ['data-web-3'], 'web-2 still terminating: its claim stays')
})

t.test('buildStatefulSetPod: identity, revision label and claim volumes', async (t) => {
  const set = sts({ volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: {} }], template: { ...template, spec: { ...template.spec, volumes: [{ name: 'data', emptyDir: {} }, { name: 'cfg', configMap: { name: 'c' } }] } } })
  const p = buildStatefulSetPod({ set, setInfo: statefulSetsInfo, template: set.spec.template, ordinal: 1, revision: 'web-abc' })
  t.equal(p.metadata.name, 'web-1')
  t.notOk(p.metadata.generateName)
  t.same(p.metadata.labels, { app: 'web', 'statefulset.kubernetes.io/pod-name': 'web-1', 'apps.kubernetes.io/pod-index': '1', 'controller-revision-hash': 'web-abc' })
  t.equal(p.spec.hostname, 'web-1')
  t.equal(p.spec.subdomain, 'web')
  t.same(p.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } }, { name: 'cfg', configMap: { name: 'c' } }], 'the claim replaces the same-named volume')
  t.match(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'u-sts', controller: true, blockOwnerDeletion: true }])
  const noSvc = buildStatefulSetPod({ set: sts({ serviceName: '' }), setInfo: statefulSetsInfo, template, ordinal: 0, revision: 'r' })
  t.notOk('subdomain' in noSvc.spec, 'no serviceName: no subdomain')
})

t.test('statefulSetStatus: counts and revisions', async (t) => {
  const upd = { currentRevision: 'web-r1', updateRevision: 'web-r2' }
  const s = (pods: KubeObject[], set = sts(), o = upd) => statefulSetStatus(input(set, pods, o), 0).status
  t.same(s([pod(0, 'ready', 'web-r1'), pod(1, 'running', 'web-r1'), pod(2, 'ready', 'web-r2')]), {
    observedGeneration: 2, replicas: 3, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 1, availableReplicas: 2, currentRevision: 'web-r1', updateRevision: 'web-r2', collisionCount: 0,
  }, 'mid-update')
  t.match(s([pod(0, 'ready', 'web-r2'), pod(1, 'ready', 'web-r2'), pod(2, 'terminating', 'web-r1')]), { replicas: 3, updatedReplicas: 2, currentReplicas: 0, currentRevision: 'web-r1' }, 'a terminating pod counts in replicas, not in revisions')
  t.match(s([pod(0, 'ready', 'web-r2'), pod(1, 'ready', 'web-r2')], sts({ replicas: 2 })), { replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2, currentRevision: 'web-r2', updateRevision: 'web-r2' }, 'finished rolling update: the update revision becomes current')
  t.match(s([pod(0, 'ready', 'web-r2'), pod(1, 'ready', 'web-r2')], sts({ replicas: 2, updateStrategy: { type: 'OnDelete' } })), { currentReplicas: 0, currentRevision: 'web-r1' }, 'OnDelete: current revision stays')
  const minReady = statefulSetStatus(input(sts({ minReadySeconds: 30 }), [pod(0)], { now: Date.parse('2025-01-01T00:00:10Z') }), 0)
  t.match(minReady, { status: { readyReplicas: 1, availableReplicas: 0 } })
  t.ok(minReady.recheckAfterMs! > 19_000 && minReady.recheckAfterMs! < 21_000, 'checks again when the pod becomes available')
  t.same(planStatefulSet({ ...input(sts(), [], { manage: false }), collisionCount: 0 }).create, [], 'not managing: status only')
})

t.test('revisions: data as Kubernetes stores it, hash and name, reuse and renumbering, collisions', async (t) => {
  const data = revisionData(template)
  t.equal(
    JSON.stringify(data),
    '{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"skiff/echo:v1","name":"app","resources":{}}]}}}}',
    'strategic merge patch of spec.template, keys sorted, Go zero fields',
  )
  t.ok(templatesEqual(templateOfRevision({ metadata: {}, data } as KubeObject), template), 'the template comes back')
  t.match(revisionHash(data, 0), /^[bcdfghjklmnpqrstvwxz2456789]+$/)
  t.not(revisionHash(data, 0), revisionHash(data, 1), 'the collision count changes the hash')
  t.equal(revisionHash(data, 0), revisionHash(revisionData(template), 0), 'stable')

  const set = sts()
  const naming = statefulSetRevisionNaming(set)
  const first = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template, revisions: [], taken: new Map(), collisionCount: 0, naming })
  t.equal(first.create, true)
  t.match(first.revision, { apiVersion: 'apps/v1', kind: 'ControllerRevision', revision: 1, metadata: { name: `web-${revisionHash(data, 0)}`, labels: { app: 'web', [revisionHashKey]: revisionHash(data, 0) }, ownerReferences: [{ kind: 'StatefulSet', uid: 'u-sts', controller: true }] } })

  const v2 = { ...template, spec: { containers: [{ name: 'app', image: 'skiff/echo:v2' }] } }
  const r1 = { ...first.revision, metadata: { ...first.revision.metadata, resourceVersion: '5' } }
  const second = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template: v2, revisions: [r1], taken: new Map([[r1.metadata.name!, r1]]), collisionCount: 0, naming })
  t.match(second, { create: true, revision: { revision: 2 } })
  const r2 = second.revision
  const same = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template: v2, revisions: [r1, r2], taken: new Map(), collisionCount: 0, naming })
  t.same([same.create, same.renumber, same.revision.metadata.name], [false, undefined, r2.metadata.name], 'the newest equal revision is used as it is')
  // kubectl rollout undo sends the template back with creationTimestamp null and resources {}.
  const undone = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template: templateOfRevision(r1), revisions: [r1, r2], taken: new Map(), collisionCount: 0, naming })
  t.same([undone.create, undone.renumber, undone.revision.metadata.name], [false, 3, r1.metadata.name], 'undo: the old revision renumbered to 3')

  const foreign = { metadata: { name: r2.metadata.name, namespace: 'ns', ownerReferences: [{ uid: 'other' }] }, data: revisionData({ other: true }), revision: 1 } as any
  const collided = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template: v2, revisions: [r1], taken: new Map([[r2.metadata.name!, foreign]]), collisionCount: 0, naming })
  t.match(collided, { create: true, collisionCount: 1, revision: { metadata: { name: `web-${revisionHash(revisionData(v2), 1)}` } } }, 'a taken name moves on by the collision count')
})

t.test('planHistoryCleanup: the oldest beyond the limit, never the kept ones', async (t) => {
  const rev = (name: string, revision: number) => ({ metadata: { name }, revision }) as any
  const revs = [rev('a', 1), rev('b', 2), rev('c', 3), rev('d', 4), rev('e', 5)]
  const names = (x: KubeObject[]) => x.map((r) => r.metadata.name)
  t.same(names(planHistoryCleanup(revs, new Set(['e']), 2)), ['a', 'b'], 'keep e and the newest 2 others')
  t.same(names(planHistoryCleanup(revs, new Set(['e', 'a']), 2)), ['b'], 'a live pod still runs a')
  t.same(names(planHistoryCleanup(revs, new Set(['e']), 0)), ['a', 'b', 'c', 'd'], 'limit 0')
  t.same(names(planHistoryCleanup(revs, new Set(['e']), 10)), [], 'under the limit')
})
