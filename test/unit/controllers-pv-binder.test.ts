// The PV binder's pure decisions (controlplane/controllers/pv-binder.ts):
// which volume a claim binds to, the step-by-step phase transitions of
// claims and volumes, the local provisioner's volume, and pvc-protection.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { defaultLocalStorageClass } from '../../controlplane/api/storage.ts'
import { findMatchingVolume, planClaim, planClaimDeletion, planLocalVolume, planVolume, type Step } from '../../controlplane/controllers/pv-binder.ts'
import { makeNode } from '../../controlplane/scheduler/testing.ts'

const now = new Date('2026-12-04T12:00:00Z')

function pv(name: string, o: { size?: string; cls?: string; modes?: string[]; phase?: string; claim?: { name: string; uid?: string }; labels?: Record<string, string>; node?: string; policy?: string; provisioned?: boolean; deleting?: boolean; finalizers?: string[] } = {}): KubeObject {
  return {
    apiVersion: 'v1', kind: 'PersistentVolume',
    metadata: {
      name, labels: o.labels, resourceVersion: '1',
      ...(o.provisioned ? { annotations: { 'pv.kubernetes.io/provisioned-by': 'skiff.dev/local' } } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-12-04T11:00:00Z' } : {}),
      ...(o.finalizers ? { finalizers: o.finalizers } : {}),
    },
    spec: {
      capacity: { storage: o.size ?? '1Gi' }, accessModes: o.modes ?? ['ReadWriteOnce'], storageClassName: o.cls ?? '', volumeMode: 'Filesystem',
      persistentVolumeReclaimPolicy: o.policy ?? 'Retain', hostPath: { path: `/srv/${name}` },
      ...(o.claim ? { claimRef: { namespace: 'default', name: o.claim.name, ...(o.claim.uid ? { uid: o.claim.uid } : {}) } } : {}),
      ...(o.node ? { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [o.node] }] }] } } } : {}),
    },
    status: { phase: o.phase ?? 'Available' },
  }
}

function pvc(name: string, o: { size?: string; cls?: string; modes?: string[]; volume?: string; phase?: string; selector?: unknown; selectedNode?: string; bindCompleted?: boolean; deleting?: boolean } = {}): KubeObject {
  const annotations: Record<string, string> = {}
  if (o.selectedNode) annotations['volume.kubernetes.io/selected-node'] = o.selectedNode
  if (o.bindCompleted) annotations['pv.kubernetes.io/bind-completed'] = 'yes'
  return {
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '7', annotations, finalizers: ['kubernetes.io/pvc-protection'], ...(o.deleting ? { deletionTimestamp: '2026-12-04T11:00:00Z' } : {}) },
    spec: { accessModes: o.modes ?? ['ReadWriteOnce'], resources: { requests: { storage: o.size ?? '500Mi' } }, storageClassName: o.cls ?? '', volumeMode: 'Filesystem', ...(o.volume ? { volumeName: o.volume } : {}), ...(o.selector ? { selector: o.selector } : {}) },
    status: { phase: o.phase ?? 'Pending' },
  }
}

const describe = (s: Step): string => {
  switch (s.type) {
    case 'none': return s.event ? `none (${s.event.reason})` : 'none'
    case 'updateVolume': return `updateVolume ${s.volume.metadata.name} claimRef=${s.volume.spec.claimRef?.name ?? '-'}/${s.volume.spec.claimRef?.uid ?? '-'} finalizers=${(s.volume.metadata.finalizers ?? []).join(',') || '-'}`
    case 'updateVolumeStatus': return `volume ${s.volume.metadata.name} ${s.volume.status.phase}${s.volume.status.reason ? ` (${s.volume.status.reason})` : ''}`
    case 'createVolume': return `createVolume ${s.volume.metadata.name}`
    case 'deleteVolume': return `deleteVolume ${s.volume.metadata.name}`
    case 'updateClaim': return `updateClaim ${s.claim.metadata.name} volumeName=${s.claim.spec.volumeName ?? '-'} bindCompleted=${s.claim.metadata.annotations?.['pv.kubernetes.io/bind-completed'] ?? '-'} finalizers=${(s.claim.metadata.finalizers ?? []).join(',') || '-'}`
    case 'updateClaimStatus': return `claim ${s.claim.metadata.name} ${s.claim.status.phase}${s.claim.status.capacity ? ` ${s.claim.status.capacity.storage} ${s.claim.status.accessModes.join(',')}` : ''}`
  }
}

t.test('findMatchingVolume: class, access modes, capacity, selector, node and pre-binding', async (t) => {
  const n1 = makeNode('n1')
  const cases: Array<{ name: string; claim: KubeObject; volumes: KubeObject[]; node?: KubeObject | null; want: string | undefined }> = [
    { name: 'the smallest volume that is large enough', claim: pvc('c'), volumes: [pv('big', { size: '10Gi' }), pv('fit', { size: '600Mi' }), pv('small', { size: '100Mi' })], want: 'fit' },
    { name: 'same class only', claim: pvc('c', { cls: 'fast' }), volumes: [pv('slow', { cls: 'slow' }), pv('fast', { cls: 'fast' })], want: 'fast' },
    { name: 'access modes must be a superset', claim: pvc('c', { modes: ['ReadWriteMany'] }), volumes: [pv('rwo'), pv('rwx', { modes: ['ReadWriteOnce', 'ReadWriteMany'] })], want: 'rwx' },
    { name: 'a Bound or Released volume is never taken', claim: pvc('c'), volumes: [pv('b', { phase: 'Bound', claim: { name: 'other', uid: 'u' } }), pv('r', { phase: 'Released' })], want: undefined },
    { name: 'the selector filters by volume labels', claim: pvc('c', { selector: { matchLabels: { tier: 'gold' } } }), volumes: [pv('plain'), pv('gold', { labels: { tier: 'gold' } })], want: 'gold' },
    { name: 'a volume pre-bound to the claim wins over a smaller one', claim: pvc('c'), volumes: [pv('small', { size: '600Mi' }), pv('pre', { size: '5Gi', claim: { name: 'c' } })], want: 'pre' },
    { name: 'a volume reserved for another claim is skipped', claim: pvc('c'), volumes: [pv('other', { claim: { name: 'd' } })], want: undefined },
    { name: 'delayed binding: only volumes reachable from the selected node', claim: pvc('c'), volumes: [pv('on-n2', { node: 'n2', size: '600Mi' }), pv('on-n1', { node: 'n1' })], node: n1, want: 'on-n1' },
    { name: 'delayed binding with an unknown node: only volumes without node affinity', claim: pvc('c'), volumes: [pv('on-n1', { node: 'n1' })], node: null, want: undefined },
    { name: 'a volume being deleted is skipped', claim: pvc('c'), volumes: [pv('gone', { deleting: true })], want: undefined },
  ]
  for (const c of cases) t.equal(findMatchingVolume(c.claim, c.volumes, c.node)?.metadata.name, c.want, c.name)
})

t.test('binding a claim to a static volume, one step at a time', async (t) => {
  const classes = new Map<string, KubeObject>()
  const nodes = new Map<string, KubeObject>()
  // The claim and volume as each step leaves them, replayed through the planners (the claim's step first when both have one).
  let claim = pvc('c')
  let vol = pv('v')
  const steps: string[] = []
  for (let i = 0; i < 8; i++) {
    const s = planClaim({ claim, volumes: [vol], volume: claim.spec.volumeName ? vol : undefined, classes, nodes, now })
    const v = planVolume({ volume: vol, claim, now })
    const step = s.type !== 'none' ? s : v
    if (step.type === 'none') break
    steps.push(describe(step))
    if ('volume' in step) vol = step.volume
    if ('claim' in step) claim = step.claim
  }
  t.same(steps, [
    'updateVolume v claimRef=c/uid-c finalizers=-',
    'updateClaim c volumeName=v bindCompleted=yes finalizers=kubernetes.io/pvc-protection',
    'volume v Bound',
    'claim c Bound 1Gi ReadWriteOnce',
  ])
  t.equal(vol.metadata.annotations?.['pv.kubernetes.io/bound-by-controller'], 'yes')
})

t.test('claims that wait, and why', async (t) => {
  const local = defaultLocalStorageClass()
  const manualClass = { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'ext' }, provisioner: 'example.com/nfs', volumeBindingMode: 'Immediate' } as KubeObject
  const classes = new Map([['local-path', local], ['ext', manualClass]])
  const plan = (claim: KubeObject, nodes: KubeObject[] = [], volumes: KubeObject[] = []) =>
    describe(planClaim({ claim, volumes, classes, nodes: new Map(nodes.map((n) => [n.metadata.name!, n])), now }))
  const n1 = makeNode('n1')
  n1.metadata.annotations = { 'skiff.dev/local-volume-dir': '/var/lib/skiff/local-volumes' }
  t.equal(plan(pvc('c', { cls: 'local-path' })), 'none (WaitForFirstConsumer)', 'WaitForFirstConsumer without a selected node')
  t.equal(plan(pvc('c', { cls: 'local-path', selectedNode: 'n1' }), [n1]), 'createVolume pvc-uid-c', 'the local provisioner makes the volume on the selected node')
  t.equal(plan(pvc('c', { cls: 'local-path', selectedNode: 'n1' }), [n1], [pv('static', { cls: 'local-path', node: 'n1' })]), 'updateVolume static claimRef=c/uid-c finalizers=-', 'a matching static volume on that node comes first')
  t.equal(plan(pvc('c', { cls: 'local-path', selectedNode: 'n2' }), [makeNode('n2')]), 'none (ProvisioningFailed)', 'a node that published no local volume dir')
  t.equal(plan(pvc('c', { cls: 'ext' })), 'none (ExternalProvisioning)', 'another provisioner is left to it')
  t.equal(plan(pvc('c', { cls: 'nope' })), 'none (ProvisioningFailed)', 'a class that does not exist')
  t.equal(plan(pvc('c')), 'none (FailedBinding)', 'no class and no volume')
  t.equal(plan({ ...pvc('c'), status: {} }), 'claim c Pending', 'a new claim is Pending first')
  const noClass = pvc('c')
  delete noClass.spec.storageClassName
  const retro = planClaim({ claim: noClass, volumes: [], classes, nodes: new Map(), now })
  t.equal(retro.type === 'updateClaim' && retro.claim.spec.storageClassName, 'local-path', 'a claim with no class at all gets the default class once there is one')
  t.equal(plan(noClass, [], []).startsWith('updateClaim'), true)
  t.equal(describe(planClaim({ claim: noClass, volumes: [], classes: new Map([['ext', manualClass]]), nodes: new Map(), now })), 'none (FailedBinding)', 'no default class: it waits')
})

t.test('bound claims: the volume gone is Lost; a volume taken by another claim too', async (t) => {
  const base = { volumes: [], classes: new Map(), nodes: new Map(), now }
  t.equal(describe(planClaim({ ...base, claim: pvc('c', { volume: 'v', phase: 'Bound', bindCompleted: true }) })), 'claim c Lost')
  t.equal(describe(planClaim({ ...base, claim: pvc('c', { volume: 'v' }) })), 'none', 'a claim the user pre-bound waits for its volume')
  t.equal(describe(planClaim({ ...base, claim: pvc('c', { volume: 'v', phase: 'Bound', bindCompleted: true }), volume: pv('v', { phase: 'Bound', claim: { name: 'c', uid: 'someone-else' } }) })), 'claim c Lost')
  t.equal(describe(planClaim({ ...base, claim: pvc('c', { volume: 'v' }), volume: pv('v') })), 'updateVolume v claimRef=c/uid-c finalizers=-', 'a claim naming an Available volume binds it')
})

t.test('the local provisioner volume', async (t) => {
  const node = makeNode('n1')
  node.metadata.annotations = { 'skiff.dev/local-volume-dir': '/state/local-volumes/' }
  const plan = planLocalVolume(pvc('data', { cls: 'local-path', modes: ['ReadWriteOnce'] }), defaultLocalStorageClass(), node, now)
  if (!('volume' in plan)) return t.fail(plan.wait)
  const v = plan.volume
  t.equal(v.metadata.name, 'pvc-uid-data')
  t.same(v.spec.local, { path: '/state/local-volumes/pvc-uid-data' })
  t.same(v.spec.nodeAffinity.required.nodeSelectorTerms, [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }])
  t.same(v.spec.claimRef, { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data', uid: 'uid-data', apiVersion: 'v1', resourceVersion: '7' })
  t.equal(v.spec.persistentVolumeReclaimPolicy, 'Delete')
  t.same(v.spec.capacity, { storage: '500Mi' })
  t.equal(v.spec.storageClassName, 'local-path')
  t.same(v.metadata.finalizers, ['kubernetes.io/pv-protection', 'skiff.dev/local-volume-data'])
  t.equal(v.metadata.annotations!['pv.kubernetes.io/provisioned-by'], 'skiff.dev/local')
  t.match(planLocalVolume(pvc('d'), defaultLocalStorageClass(), undefined, now), { wait: /WaitForFirstConsumer/ })
})

t.test('volume phases: Available, Bound, Released, then the reclaim policy', async (t) => {
  const claim = pvc('c', { volume: 'v', phase: 'Bound' })
  const cases: Array<{ name: string; volume: KubeObject; claim?: KubeObject; want: string }> = [
    { name: 'no claimRef: Available', volume: pv('v', { phase: 'Pending' }), want: 'volume v Available' },
    { name: 'reserved by the user for a claim not there yet: Available', volume: pv('v', { phase: 'Pending', claim: { name: 'c' } }), want: 'volume v Available' },
    { name: 'its claim is bound to it: Bound', volume: pv('v', { claim: { name: 'c', uid: 'uid-c' } }), claim, want: 'volume v Bound' },
    { name: 'its claim is gone: Released', volume: pv('v', { phase: 'Bound', claim: { name: 'c', uid: 'uid-c' } }), want: 'volume v Released' },
    { name: 'another claim of the same name: Released', volume: pv('v', { phase: 'Bound', claim: { name: 'c', uid: 'old' } }), claim, want: 'volume v Released' },
    { name: 'Released with Retain: kept', volume: pv('v', { phase: 'Released', claim: { name: 'c', uid: 'uid-c' } }), want: 'none' },
    { name: 'Released with Delete, local provisioner: deleted', volume: pv('v', { phase: 'Released', policy: 'Delete', provisioned: true, claim: { name: 'c', uid: 'uid-c' } }), want: 'deleteVolume v' },
    { name: 'Released with Delete, static: Failed', volume: pv('v', { phase: 'Released', policy: 'Delete', claim: { name: 'c', uid: 'uid-c' } }), want: 'volume v Failed (VolumeFailedDelete)' },
    { name: 'Released with Recycle: Failed', volume: pv('v', { phase: 'Released', policy: 'Recycle', claim: { name: 'c', uid: 'uid-c' } }), want: 'volume v Failed (VolumeFailedRecycle)' },
    { name: 'being deleted while Bound: pv-protection holds', volume: pv('v', { phase: 'Bound', deleting: true, finalizers: ['kubernetes.io/pv-protection'], claim: { name: 'c', uid: 'uid-c' } }), claim, want: 'none' },
    {
      name: 'being deleted and Released: pv-protection lets go, the data finalizer stays', volume: pv('v', { phase: 'Released', deleting: true, finalizers: ['kubernetes.io/pv-protection', 'skiff.dev/local-volume-data'] }),
      want: 'updateVolume v claimRef=-/- finalizers=skiff.dev/local-volume-data',
    },
  ]
  for (const c of cases) t.equal(describe(planVolume({ volume: c.volume, claim: c.claim, now })), c.want, c.name)
})

t.test('pvc-protection: a claim being deleted stays while a pod that is not finished uses it', async (t) => {
  const claim = pvc('c', { deleting: true })
  const pod = (phase: string, ns = 'default') => ({ metadata: { name: 'p', namespace: ns }, spec: { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'c' } }] }, status: { phase } }) as KubeObject
  t.equal(describe(planClaimDeletion(claim, [pod('Running')])), 'none', 'a running pod holds it')
  t.equal(describe(planClaimDeletion(claim, [pod('Succeeded')])), 'updateClaim c volumeName=- bindCompleted=- finalizers=-', 'a finished pod does not')
  t.equal(describe(planClaimDeletion(claim, [pod('Running', 'other')])), 'updateClaim c volumeName=- bindCompleted=- finalizers=-', 'a pod of another namespace does not')
  t.equal(describe(planClaimDeletion(pvc('c'), [])), 'none', 'a claim not being deleted is left alone')
})

t.test('expansion: a bound claim that asks for more grows its local volume, then its status', async (t) => {
  const claim = pvc('c', { volume: 'v', phase: 'Bound', bindCompleted: true, size: '2Gi' })
  const local = pv('v', { phase: 'Bound', provisioned: true, claim: { name: 'c', uid: 'uid-c' } })
  const step = planClaim({ claim, volumes: [local], volume: local, classes: new Map(), nodes: new Map(), now })
  t.equal(step.type === 'updateVolume' && step.volume.spec.capacity.storage, '2Gi', 'the volume records the new size')
  const grown = (step as { volume: KubeObject }).volume
  t.equal(describe(planClaim({ claim, volumes: [grown], volume: grown, classes: new Map(), nodes: new Map(), now })), 'claim c Bound 2Gi ReadWriteOnce')
  const staticPv = pv('v', { phase: 'Bound', claim: { name: 'c', uid: 'uid-c' } })
  t.equal(describe(planClaim({ claim, volumes: [staticPv], volume: staticPv, classes: new Map(), nodes: new Map(), now })), 'claim c Bound 1Gi ReadWriteOnce', 'a static volume is not resized')
})
