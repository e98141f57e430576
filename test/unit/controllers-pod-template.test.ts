import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import {
  buildPodFromTemplate,
  claimObjects,
  compareForDeletion,
  isPodAvailable,
  resolveIntOrPercent,
  selectorOf,
  templateHash,
  templatesEqual,
} from '../../controlplane/controllers/pod-template.ts'
import { Expectations, slowStartBatch } from '../../controlplane/controllers/workload-loop.ts'

const rsInfo = lookupResource('apps', 'v1', 'replicasets')!
const deployInfo = lookupResource('apps', 'v1', 'deployments')!

/** A deployment's template as the apiserver stores it (defaulted). */
function storedTemplate(image: string) {
  const d = applyDefaults(deployInfo, {
    metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image, ports: [{ containerPort: 8080 }] }] } } },
  })
  return d.spec.template
}

t.test('templates: the undo template equals the original; a change is a different template', async (t) => {
  const original = storedTemplate('skiff/echo:v1')
  // What `kubectl rollout undo` sends back: the ReplicaSet's template after a Go round trip, hash label removed.
  const undo = structuredClone(original)
  undo.metadata.creationTimestamp = null
  for (const c of undo.spec.containers) c.resources = {}
  const rsTemplate = structuredClone(original)
  rsTemplate.metadata.labels['pod-template-hash'] = 'abc'
  const undefaulted = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'skiff/echo:v1', ports: [{ containerPort: 8080 }] }] } }
  const cases = [
    { name: 'undo template', other: undo, equal: true },
    { name: 'with the hash label', other: rsTemplate, equal: true },
    { name: 'not yet defaulted', other: undefaulted, equal: true },
    { name: 'other image', other: storedTemplate('skiff/echo:v2'), equal: false },
    { name: 'extra label', other: { ...original, metadata: { labels: { app: 'web', x: 'y' } } }, equal: false },
  ]
  for (const c of cases) {
    t.equal(templatesEqual(original, c.other), c.equal, `${c.name}: equal`)
    t.equal(templateHash(original) === templateHash(c.other), c.equal, `${c.name}: same hash`)
  }
})

t.test('templateHash: stable, label-safe, changed by the collision count', async (t) => {
  const tpl = storedTemplate('skiff/echo:v1')
  const h = templateHash(tpl)
  t.match(h, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/)
  t.equal(templateHash(structuredClone(tpl)), h)
  t.not(templateHash(tpl, 1), h)
  t.equal(templateHash(tpl, 0), h, 'no collisions: the plain hash')
})

t.test('resolveIntOrPercent', async (t) => {
  const cases: Array<[unknown, number, boolean, number]> = [
    [2, 10, false, 2],
    ['25%', 10, true, 3],
    ['25%', 10, false, 2],
    ['25%', 4, false, 1],
    ['100%', 3, false, 3],
    ['0%', 3, true, 0],
    ['5', 3, true, 5],
    [undefined, 3, true, 0],
  ]
  for (const [v, total, up, want] of cases) t.equal(resolveIntOrPercent(v, total, up), want, `${v} of ${total} rounded ${up ? 'up' : 'down'}`)
})

const iso = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s)).toISOString().replace(/\.\d+Z$/, 'Z')

function pod(name: string, o: { node?: string; phase?: string; ready?: boolean; readyAt?: number; restarts?: number; created?: number; cost?: number } = {}): KubeObject {
  return {
    metadata: { name, namespace: 'ns', creationTimestamp: iso(o.created ?? 0), annotations: o.cost ? { 'controller.kubernetes.io/pod-deletion-cost': String(o.cost) } : {} },
    spec: { nodeName: o.node },
    status: {
      phase: o.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: iso(o.readyAt ?? 0) }],
      containerStatuses: [{ restartCount: o.restarts ?? 0 }],
    },
  }
}

t.test('compareForDeletion: the pod Kubernetes would delete first sorts first', async (t) => {
  const cases: Array<[string, KubeObject, KubeObject]> = [
    ['unscheduled before scheduled', pod('a', { ready: true }), pod('b', { node: 'n', ready: true })],
    ['pending before running', pod('a', { node: 'n', phase: 'Pending' }), pod('b', { node: 'n' })],
    ['not ready before ready', pod('a', { node: 'n' }), pod('b', { node: 'n', ready: true })],
    ['lower deletion cost first', pod('a', { node: 'n', ready: true, cost: -5 }), pod('b', { node: 'n', ready: true })],
    ['ready for less time first', pod('a', { node: 'n', ready: true, readyAt: 50 }), pod('b', { node: 'n', ready: true, readyAt: 10 })],
    ['more restarts first', pod('a', { node: 'n', ready: true, restarts: 3 }), pod('b', { node: 'n', ready: true })],
    ['newer first', pod('a', { node: 'n', ready: true, created: 20 }), pod('b', { node: 'n', ready: true, created: 10 })],
  ]
  for (const [name, first, second] of cases) {
    t.ok(compareForDeletion(first, second) < 0, name)
    t.ok(compareForDeletion(second, first) > 0, `${name} (reversed)`)
    t.same([second, first].sort(compareForDeletion).map((p) => p.metadata.name), ['a', 'b'], `${name} (sorted)`)
  }
})

t.test('isPodAvailable: ready for minReadySeconds', async (t) => {
  const p = pod('a', { ready: true, readyAt: 10 })
  const at = (s: number) => Date.parse(iso(s))
  t.ok(isPodAvailable(p, 0, at(10)))
  t.notOk(isPodAvailable(p, 5, at(14)))
  t.ok(isPodAvailable(p, 5, at(15)))
  t.notOk(isPodAvailable(pod('b'), 0, at(100)), 'not ready, not available')
})

t.test('claimObjects: own, adopt, release, ignore', async (t) => {
  const owner: KubeObject = { metadata: { name: 'rs', namespace: 'ns', uid: 'me' }, spec: { selector: { matchLabels: { app: 'web' } } } }
  const ref = (uid: string) => [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'x', uid, controller: true }]
  const objs: KubeObject[] = [
    { metadata: { name: 'mine', namespace: 'ns', labels: { app: 'web' }, ownerReferences: ref('me') } },
    { metadata: { name: 'orphan', namespace: 'ns', labels: { app: 'web' } } },
    { metadata: { name: 'relabelled', namespace: 'ns', labels: { app: 'db' }, ownerReferences: ref('me') } },
    { metadata: { name: 'theirs', namespace: 'ns', labels: { app: 'web' }, ownerReferences: ref('other') } },
    { metadata: { name: 'dying-orphan', namespace: 'ns', labels: { app: 'web' }, deletionTimestamp: iso(1) } },
    { metadata: { name: 'elsewhere', namespace: 'other', labels: { app: 'web' } } },
    { metadata: { name: 'unrelated', namespace: 'ns', labels: { app: 'db' } } },
  ]
  const names = (xs: KubeObject[]) => xs.map((x) => x.metadata.name)
  const c = claimObjects(owner, selectorOf(owner), objs)
  t.same(names(c.owned), ['mine'])
  t.same(names(c.adopt), ['orphan'])
  t.same(names(c.release), ['relabelled'])
  const deleting = claimObjects({ ...owner, metadata: { ...owner.metadata, deletionTimestamp: iso(1) } }, selectorOf(owner), objs)
  t.same([names(deleting.owned), names(deleting.adopt), names(deleting.release)], [['mine'], [], []], 'an owner being deleted neither adopts nor releases')
})

t.test('buildPodFromTemplate', async (t) => {
  const owner: KubeObject = { metadata: { name: 'web-abc', namespace: 'ns', uid: 'u1' } }
  const template = { metadata: { labels: { app: 'web' }, annotations: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }], tolerations: [{ key: 'k', operator: 'Exists' }] } }
  const p = buildPodFromTemplate({ template, owner, ownerInfo: rsInfo, nodeName: 'n1', extraLabels: { h: '1' }, extraTolerations: [{ key: 'k', operator: 'Exists' }, { key: 'z', operator: 'Exists' }] })
  t.same(p.metadata, {
    generateName: 'web-abc-',
    namespace: 'ns',
    labels: { app: 'web', h: '1' },
    annotations: { a: 'b' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: 'u1', controller: true, blockOwnerDeletion: true }],
  })
  t.equal(p.spec.nodeName, 'n1')
  t.same(p.spec.tolerations, [{ key: 'k', operator: 'Exists' }, { key: 'z', operator: 'Exists' }], 'tolerations added once')
  t.same(template.spec.tolerations, [{ key: 'k', operator: 'Exists' }], 'template untouched')
})

t.test('Expectations: wait for creations and deletions to be observed', async (t) => {
  const e = new Expectations(1000)
  t.ok(e.satisfied('k'), 'nothing expected')
  e.expectCreations('k', 2)
  e.expectDeletions('k', ['ns/a'])
  t.notOk(e.satisfied('k'))
  e.creationObserved('k')
  e.creationObserved('k')
  t.notOk(e.satisfied('k'), 'a deletion still pending')
  e.deletionObserved('k', 'ns/a')
  e.deletionObserved('k', 'ns/a')
  t.ok(e.satisfied('k'))
  e.expectCreations('k', 1)
  t.ok(e.satisfied('k', performance.now() + 2000), 'expired after the TTL')
  e.forget('k')
  t.ok(e.satisfied('k'))
})

t.test('slowStartBatch: 1, 2, 4 ... and stops at the first failing batch', async (t) => {
  let calls = 0
  t.same(await slowStartBatch(10, async () => void calls++), { succeeded: 10, skipped: 0 })
  t.equal(calls, 10)
  calls = 0
  const r = await slowStartBatch(10, async () => {
    if (++calls > 2) throw new Error('quota')
  })
  t.equal(calls, 3, 'batches of 1 and 2 were tried')
  t.equal(r.succeeded, 2)
  t.equal(r.skipped, 7, 'the rest never tried')
  t.equal(r.error?.message, 'quota')
})
