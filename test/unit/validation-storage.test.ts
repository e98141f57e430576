// PersistentVolume, PersistentVolumeClaim and StorageClass through
// validate() (Kubernetes' field paths and messages), the storage admission
// (DefaultStorageClass, in-use protection finalizers, hostPath against the
// nodes' reserved paths) and the kubectl columns of the three kinds.

import t from 'tap'
import { printTable } from '../../controlplane/api/printers.ts'
import { lookupResource, resolveResourceName } from '../../controlplane/api/resources.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { validate } from '../../controlplane/api/validation.ts'
import { validateHostPath } from '../../controlplane/api/validation/storage.ts'
import { admitDefaultClass, hostPathCauses, nodeHostPaths, resizeRefusal } from '../../controlplane/apiserver/storage-admission.ts'

const pvInfo = lookupResource('', 'v1', 'persistentvolumes')!
const pvcInfo = lookupResource('', 'v1', 'persistentvolumeclaims')!
const scInfo = lookupResource('storage.k8s.io', 'v1', 'storageclasses')!
const podInfo = lookupResource('', 'v1', 'pods')!

const causes = (info: typeof pvInfo, obj: unknown, old?: unknown) =>
  validate(info, applyDefaults(info, obj as KubeObject), old ? applyDefaults(info, old as KubeObject) : undefined).map((c) => `${c.field}: ${c.message}`)

const claim = (spec: Record<string, unknown>, status?: Record<string, unknown>) => ({ metadata: { name: 'c', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...spec }, ...(status ? { status } : {}) })
const volume = (spec: Record<string, unknown>) => ({ metadata: { name: 'v' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/srv/v' }, ...spec } })

t.test('the kinds are served with their short names', async (t) => {
  t.equal(resolveResourceName('pv')?.kind, 'PersistentVolume')
  t.equal(resolveResourceName('pvc')?.kind, 'PersistentVolumeClaim')
  t.equal(resolveResourceName('sc')?.kind, 'StorageClass')
  t.same([pvInfo.namespaced, pvcInfo.namespaced, scInfo.namespaced], [false, true, false])
  t.same([pvInfo.subresources, pvcInfo.subresources], [['status'], ['status']])
})

t.test('defaults', async (t) => {
  t.match(applyDefaults(pvInfo, volume({}) as KubeObject), { spec: { persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem' }, status: { phase: 'Pending' } })
  t.match(applyDefaults(pvcInfo, claim({}) as KubeObject), { spec: { volumeMode: 'Filesystem' }, status: { phase: 'Pending' } })
  t.match(applyDefaults(scInfo, { metadata: { name: 's' }, provisioner: 'x' } as KubeObject), { reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' })
})

t.test('claims', async (t) => {
  t.same(causes(pvcInfo, claim({})), [])
  t.same(causes(pvcInfo, claim({ accessModes: [] })), ['spec.accessModes: Required value: at least 1 access mode is required'])
  t.same(causes(pvcInfo, claim({ accessModes: ['ReadWriteSometimes'] })), ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'])
  t.same(causes(pvcInfo, claim({ resources: {} })), ['spec.resources[storage]: Required value'])
  const bound = claim({ volumeName: 'v' }, { phase: 'Bound' })
  t.same(causes(pvcInfo, claim({ volumeName: 'v', resources: { requests: { storage: '2Gi' } } }, { phase: 'Bound' }), bound), [], 'a bound claim may grow')
  t.same(causes(pvcInfo, claim({ volumeName: 'v', resources: { requests: { storage: '500Mi' } } }, { phase: 'Bound' }), bound), ['spec.resources.requests.storage: Forbidden: field can not be less than previous value'])
  const immutable = 'spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims'
  t.same(causes(pvcInfo, claim({ resources: { requests: { storage: '2Gi' } } }), claim({})), [immutable], 'an unbound claim may not')
  t.same(causes(pvcInfo, claim({ accessModes: ['ReadWriteMany'] }), claim({})), [immutable])
  t.same(causes(pvcInfo, claim({ volumeName: 'v' }), claim({})), [], 'volumeName may be set once (the binder does)')
  t.same(causes(pvcInfo, claim({ volumeName: 'w' }), claim({ volumeName: 'v' })), [immutable])
  t.same(causes(pvcInfo, claim({ storageClassName: 'local-path' }), claim({})), [], 'an unbound claim without a class may get one (retroactive default)')
  t.same(causes(pvcInfo, claim({ storageClassName: 'other' }), claim({ storageClassName: 'local-path' })), [immutable], 'but not change it')
})

t.test('volumes', async (t) => {
  t.same(causes(pvInfo, volume({})), [])
  t.same(causes(pvInfo, volume({ hostPath: undefined })), ['spec: Required value: must specify a volume type'])
  t.same(causes(pvInfo, volume({ nfs: { server: 'x', path: '/e' } })), ['spec.nfs: Forbidden: may not specify more than 1 volume type'])
  t.same(causes(pvInfo, volume({ hostPath: undefined, local: { path: '/mnt/disk' } })), ['spec.nodeAffinity: Required value: Local volume requires node affinity'])
  t.same(causes(pvInfo, volume({ capacity: {} })), ['spec.capacity: Required value'])
  t.same(causes(pvInfo, volume({ accessModes: [] })), ['spec.accessModes: Required value: must specify at least 1 access mode'])
  t.same(causes(pvInfo, volume({ persistentVolumeReclaimPolicy: 'Shred' })), ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Shred": supported values: "Delete", "Recycle", "Retain"'])
  t.same(causes(pvInfo, volume({ hostPath: { path: '/srv/w' } }), volume({})), ['spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation'])
  t.same(causes(pvInfo, volume({ claimRef: { namespace: 'default', name: 'c' } }), volume({})), [], 'claimRef may change')
})

t.test('storage classes', async (t) => {
  const sc = (o: Record<string, unknown>) => ({ metadata: { name: 's' }, provisioner: 'skiff.dev/local', ...o })
  t.same(causes(scInfo, sc({})), [])
  t.same(causes(scInfo, sc({ provisioner: '' })), ['provisioner: Required value'])
  t.same(causes(scInfo, sc({ reclaimPolicy: 'Recycle' })), ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"'])
  t.same(causes(scInfo, sc({ volumeBindingMode: 'Later' })), ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'])
  t.same(causes(scInfo, sc({ provisioner: 'other.dev/x' }), sc({})), ['provisioner: Forbidden: updates to provisioner are forbidden.'])
  t.same(causes(scInfo, sc({ parameters: { a: 'b' } }), sc({})), ['parameters: Forbidden: updates to parameters are forbidden.'])
})

t.test('hostPath: the Docker socket and reserved paths, in pods, templates and volumes', async (t) => {
  const refusal = (p: string, at = 'spec.volumes[0].hostPath.path') => `${at}: Forbidden: must not be, contain or lie under ${p} (the container engine's socket or the node agent's state)`
  const pod = (path: string) => ({ metadata: { name: 'p', namespace: 'default' }, spec: { containers: [{ name: 'a', image: 'i' }], volumes: [{ name: 'h', hostPath: { path } }] } })
  t.same(causes(podInfo, pod('/var/run/docker.sock')), [refusal('/var/run/docker.sock')])
  t.same(causes(podInfo, pod('/run//docker.sock')), [refusal('/run/docker.sock')], 'spelled differently')
  t.same(causes(podInfo, pod('/var/run')), [refusal('/var/run/docker.sock')], 'a directory holding the socket')
  t.same(causes(podInfo, pod('/')), [refusal('/var/run/docker.sock')], 'the root holds everything')
  t.same(causes(podInfo, pod('/srv/data')), [])
  t.same(causes(pvInfo, volume({ hostPath: { path: '/run/docker.sock' } })), [refusal('/run/docker.sock', 'spec.hostPath.path')])
  const deploy = lookupResource('apps', 'v1', 'deployments')!
  const tpl = { metadata: { name: 'd', namespace: 'default' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: pod('/var/run/docker.sock').spec } } }
  t.same(causes(deploy, tpl), [refusal('/var/run/docker.sock', 'spec.template.spec.volumes[0].hostPath.path')], 'pod templates too')
  t.same(validateHostPath('/var/lib/skiff/agents/n1/kubelet.key', 'x', ['/var/lib/skiff/agents/n1']).map((c) => c.message), ["Forbidden: must not be, contain or lie under /var/lib/skiff/agents/n1 (the container engine's socket or the node agent's state)"])
  t.same(validateHostPath('/var/lib/skiff/agents/n10', 'x', ['/var/lib/skiff/agents/n1']), [], 'a sibling with a longer name is not under it')
})

t.test('admission: the nodes reserved paths, the local provisioner roots, the default class', async (t) => {
  const nodes = [
    { metadata: { name: 'n1', annotations: { 'skiff.dev/reserved-host-paths': '/state/n1,/run/user/docker.sock', 'skiff.dev/local-volume-dir': '/state/n1/local-volumes' } } },
    { metadata: { name: 'n2', annotations: { 'skiff.dev/reserved-host-paths': 'not-a-path' } } },
  ] as KubeObject[]
  const paths = nodeHostPaths(nodes)
  t.same(paths, { reserved: ['/var/run/docker.sock', '/run/docker.sock', '/state/n1', '/run/user/docker.sock'], localRoots: ['/state/n1/local-volumes'] }, 'an invalid annotation is ignored')
  const pod = { spec: { volumes: [{ name: 'ok', emptyDir: {} }, { name: 'h', hostPath: { path: '/state/n1/kubelet.key' } }] } } as KubeObject
  t.same(hostPathCauses(podInfo, pod, paths).map((c) => c.field), ['spec.volumes[1].hostPath.path'])
  t.same(hostPathCauses(pvInfo, { spec: { local: { path: '/state/n1/local-volumes/pvc-1' } } } as KubeObject, paths), [], 'a volume inside a local volume dir is the provisioner’s')
  t.same(hostPathCauses(pvInfo, { spec: { local: { path: '/state/n1/local-volumes' } } } as KubeObject, paths).map((c) => c.field), ['spec.local.path'], 'the dir itself is not')
  t.same(hostPathCauses(pvInfo, { spec: { local: { path: '/state/n1/pki' } } } as KubeObject, paths).map((c) => c.field), ['spec.local.path'])

  const classes = [
    { metadata: { name: 'old', creationTimestamp: '2026-01-01T00:00:00Z', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } },
    { metadata: { name: 'new', creationTimestamp: '2026-06-01T00:00:00Z', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } },
    { metadata: { name: 'plain', creationTimestamp: '2026-09-01T00:00:00Z' } },
  ] as KubeObject[]
  const admitted = (spec: Record<string, unknown>, list = classes) => {
    const c = { metadata: { name: 'c' }, spec: { ...spec } } as KubeObject
    admitDefaultClass(c, list)
    return c.spec.storageClassName
  }
  t.equal(admitted({}), 'new', 'the newest default class')
  t.equal(admitted({ storageClassName: '' }), '', 'an explicit empty class stays empty')
  t.equal(admitted({ storageClassName: 'plain' }), 'plain')
  t.equal(admitted({}, [classes[2]!]), undefined, 'no default class: none')
})

t.test('kubectl get columns', async (t) => {
  const now = new Date('2026-12-04T12:00:00Z')
  const table = (info: typeof pvInfo, obj: unknown) => {
    const tb = printTable(info, [obj as KubeObject], { includeObject: 'None', now, resourceVersion: '1' })
    return { head: tb.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name.toUpperCase()).join(' | '), cells: tb.rows[0]!.cells.slice(0, tb.columnDefinitions.filter((c) => c.priority === 0).length).join(' | ') }
  }
  const created = '2026-12-04T11:59:00Z'
  t.same(table(pvInfo, { metadata: { name: 'pv1', creationTimestamp: created }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany', 'ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', storageClassName: 'local-path', claimRef: { namespace: 'default', name: 'data' } }, status: { phase: 'Bound' } }), {
    head: 'NAME | CAPACITY | ACCESS MODES | RECLAIM POLICY | STATUS | CLAIM | STORAGECLASS | VOLUMEATTRIBUTESCLASS | REASON | AGE',
    cells: 'pv1 | 1Gi | RWO,RWX | Delete | Bound | default/data | local-path | <unset> |  | 60s',
  })
  t.same(table(pvcInfo, { metadata: { name: 'data', creationTimestamp: created }, spec: { storageClassName: 'local-path' }, status: { phase: 'Pending' } }), {
    head: 'NAME | STATUS | VOLUME | CAPACITY | ACCESS MODES | STORAGECLASS | VOLUMEATTRIBUTESCLASS | AGE',
    cells: 'data | Pending |  |  |  | local-path | <unset> | 60s',
  })
  t.same(table(pvcInfo, { metadata: { name: 'data', creationTimestamp: created, deletionTimestamp: created }, spec: { storageClassName: 'local-path', volumeName: 'pv1' }, status: { phase: 'Bound', capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'] } }).cells, 'data | Terminating | pv1 | 1Gi | RWO | local-path | <unset> | 60s')
  t.same(table(scInfo, { metadata: { name: 'local-path', creationTimestamp: created, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'skiff.dev/local', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer' }), {
    head: 'NAME | PROVISIONER | RECLAIMPOLICY | VOLUMEBINDINGMODE | ALLOWVOLUMEEXPANSION | AGE',
    cells: 'local-path (default) | skiff.dev/local | Delete | WaitForFirstConsumer | false | 60s',
  })
})

t.test('PersistentVolumeClaimResize: only a class with allowVolumeExpansion lets a claim grow', async (t) => {
  const c = (size: string) => ({ metadata: { name: 'data' }, spec: { resources: { requests: { storage: size } } } }) as KubeObject
  const sc = (allow?: boolean) => ({ metadata: { name: 's' }, provisioner: 'skiff.dev/local', ...(allow === undefined ? {} : { allowVolumeExpansion: allow }) }) as KubeObject
  t.equal(resizeRefusal(c('2Gi'), c('1Gi'), sc(true)), undefined)
  t.equal(resizeRefusal(c('2Gi'), c('1Gi'), sc()), 'persistentvolumeclaims "data" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize')
  t.ok(resizeRefusal(c('2Gi'), c('1Gi'), undefined), 'no class')
  t.equal(resizeRefusal(c('1Gi'), c('1Gi'), undefined), undefined, 'no growth, nothing to check')
})
