// Storage as Kubernetes does it, on a real control plane (apiserver,
// scheduler, PV controller with the local provisioner) and two real agents
// on Docker, driven with the real kubectl:
//  - the default class local-path (WaitForFirstConsumer): a claim stays
//    Pending until a pod uses it, then binds to a volume made on the pod's
//    node, under that agent's state dir;
//  - the data survives a container restart, the pod's deletion and
//    re-creation (which lands on the same node) and an agent restart; a pod
//    held to the other node is Unschedulable with a volume node affinity
//    conflict;
//  - a claim in use stays Terminating until its pod is gone; reclaim Delete
//    then removes the volume and its directory; a Retain class keeps the
//    directory and the volume goes Released;
//  - a statically created volume binds to a matching claim;
//  - hostPath of the Docker socket or of an agent's state is refused with
//    the field path;
//  - a downwardAPI volume shows the pod's labels and name.

import t from 'tap'
import { access, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Docker from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { labels } from '../../node/labels.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const pvcs = lookupResource('', 'v1', 'persistentvolumeclaims')!
const pvs = lookupResource('', 'v1', 'persistentvolumes')!
const scs = lookupResource('storage.k8s.io', 'v1', 'storageclasses')!
const docker = new Docker()
const ns = 'default'
const slow = { timeout: 60_000, interval: 250 }
const echo = 'skiff/echo:local'

await ensureImages({ progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(2, 'pv')
const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
const nodeOpts = { clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'none' as const }, dnsPort: 0, backoff: { baseMs: 1_000 } }
const nodes = await Promise.all(names.map((name) => startTestNode(t, c, { name, ...nodeOpts }))) as TestNode[]
const nodeNamed = (n: string) => nodes.find((x) => x.name === n)!

const exists = (p: string) => access(p).then(() => true, () => false)
const apply = (doc: object) => c.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(doc) })
const isRunning = (p: KubeObject | undefined) => p?.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((s: any) => s.ready)

function claim(name: string, extra: Record<string, unknown> = {}) {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: ns }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } }, ...extra } }
}

/** A pod that appends a line to /data/log each time its container starts, then sleeps. */
function writer(name: string, claimName: string) {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: echo, command: ['sh', '-c', 'echo start >> /data/log; exec sleep 3600'], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
    },
  }
}

async function waitPod(name: string, ok: (p: KubeObject | undefined) => boolean, what: string): Promise<KubeObject | undefined> {
  return await eventually(async () => {
    const p = await c.client.get(pods, ns, name).catch(() => undefined)
    return ok(p) ? (p ?? { gone: true } as unknown as KubeObject) : undefined
  }, { ...slow, what: `pod ${name}: ${what}` })
}

async function deletePod(name: string): Promise<void> {
  await c.kubectl(['delete', 'pod', name, '--wait=false'])
  await waitPod(name, (p) => !p, 'gone')
}

async function bound(name: string): Promise<{ pvc: KubeObject; pv: KubeObject }> {
  return await eventually(async () => {
    const pvc = await c.client.get(pvcs, ns, name)
    if (pvc.status?.phase !== 'Bound') return undefined
    const pv = await c.client.get(pvs, undefined, pvc.spec.volumeName)
    return pv.status?.phase === 'Bound' ? { pvc, pv } : undefined
  }, { ...slow, what: `claim ${name} bound` })
}

const logLines = async (pod: string) => (await c.kubectl(['exec', pod, '--', 'cat', '/data/log'])).stdout.trim().split('\n')

t.test('the default StorageClass local-path exists and kubectl prints it', async (t) => {
  await eventually(() => c.client.get(scs, undefined, 'local-path').catch(() => undefined), { ...slow, what: 'class local-path' })
  const r = await c.kubectl(['get', 'sc'])
  t.match(r.stdout, /^NAME\s+PROVISIONER\s+RECLAIMPOLICY\s+VOLUMEBINDINGMODE\s+ALLOWVOLUMEEXPANSION\s+AGE/m)
  t.match(r.stdout, /^local-path \(default\)\s+skiff\.dev\/local\s+Delete\s+WaitForFirstConsumer\s+false\s+/m)
})

let dataDir = ''
let dataNode = ''
t.test('a claim on the default class waits for its first consumer, then binds to a volume on the pod node', async (t) => {
  await apply(claim('data'))
  const pvc = await c.client.get(pvcs, ns, 'data')
  t.equal(pvc.spec.storageClassName, 'local-path', 'DefaultStorageClass filled the class')
  t.ok(pvc.metadata.finalizers?.includes('kubernetes.io/pvc-protection'), 'pvc-protection finalizer')
  await eventually(async () => (await c.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=data'])).stdout.includes('WaitForFirstConsumer'), { ...slow, what: 'WaitForFirstConsumer event' })
  const still = await c.client.get(pvcs, ns, 'data')
  t.equal(still.status.phase, 'Pending', 'still Pending without a consumer')
  t.notOk(still.spec.volumeName, 'no volume yet')
  t.match((await c.kubectl(['get', 'pvc', 'data'])).stdout, /^data\s+Pending\s+local-path\s+<unset>\s+/m)

  await apply(writer('w1', 'data'))
  const pod = await waitPod('w1', isRunning, 'Running')
  const { pvc: b, pv } = await bound('data')
  t.equal(b.metadata.annotations?.['volume.kubernetes.io/selected-node'], pod!.spec.nodeName, 'the scheduler recorded the pod node on the claim')
  t.equal(pv.metadata.name, `pvc-${b.metadata.uid}`)
  t.same(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [pod!.spec.nodeName], 'the volume is pinned to the pod node')
  t.same(pv.spec.claimRef.name, 'data')
  const node = nodeNamed(pod!.spec.nodeName)
  t.equal(pv.spec.local.path, join(node.stateDir, 'local-volumes', pv.metadata.name!), 'under that agent state dir')
  dataDir = pv.spec.local.path
  dataNode = node.name
  t.same(await readFile(join(dataDir, 'log'), 'utf8'), 'start\n', 'the file is in the directory on the node')
  const pvcRow = (await c.kubectl(['get', 'pvc', 'data'])).stdout
  t.match(pvcRow, /^NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+AGE/m)
  t.match(pvcRow, new RegExp(`^data\\s+Bound\\s+${pv.metadata.name}\\s+100Mi\\s+RWO\\s+local-path\\s+<unset>\\s+`, 'm'))
  const pvRow = (await c.kubectl(['get', 'pv', pv.metadata.name!])).stdout
  t.match(pvRow, /^NAME\s+CAPACITY\s+ACCESS MODES\s+RECLAIM POLICY\s+STATUS\s+CLAIM\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+REASON\s+AGE/m)
  t.match(pvRow, new RegExp(`^${pv.metadata.name}\\s+100Mi\\s+RWO\\s+Delete\\s+Bound\\s+default/data\\s+local-path\\s+<unset>\\s+`, 'm'))
  const grow = await c.kubectl(['patch', 'pvc', 'data', '-p', '{"spec":{"resources":{"requests":{"storage":"200Mi"}}}}'], { allowFail: true })
  t.match(grow.stderr, /only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize/, 'local-path does not allow expansion')
})

t.test('the data survives a container restart, pod re-creation and an agent restart', async (t) => {
  const [id] = (await docker.listContainers({ filters: { label: [`${labels.podName}=w1`, `${labels.containerName}=app`] } })).map((x) => x.Id)
  await docker.getContainer(id!).kill()
  await waitPod('w1', (p) => isRunning(p) && p!.status.containerStatuses[0].restartCount >= 1, 'restarted')
  t.same(await logLines('w1'), ['start', 'start'], 'a container restart keeps the file')

  await deletePod('w1')
  t.ok(await exists(join(dataDir, 'log')), 'the data stays when the pod goes')
  await apply(writer('w1', 'data'))
  const again = await waitPod('w1', isRunning, 'Running again')
  t.equal(again!.spec.nodeName, dataNode, 'the new pod lands on the volume node')
  t.same(await logLines('w1'), ['start', 'start', 'start'], 'pod re-creation keeps the file')
  const described = (await c.kubectl(['describe', 'pvc', 'data'])).stdout
  t.match(described, /StorageClass:\s+local-path/)
  t.match(described, /Used By:\s+w1/, 'kubectl describe pvc names the pod that uses it')

  // A pod held to the other node by its nodeSelector cannot use the volume: the scheduler says why.
  const other = nodes.find((n) => n.name !== dataNode)!.name
  await apply({ ...writer('w-other', 'data'), spec: { ...writer('w-other', 'data').spec, nodeSelector: { 'kubernetes.io/hostname': other } } })
  const parked = await waitPod('w-other', (p) => p?.status?.conditions?.some((x: any) => x.type === 'PodScheduled' && x.status === 'False'), 'Unschedulable')
  const msg = parked!.status.conditions.find((x: any) => x.type === 'PodScheduled').message
  t.equal(msg, "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict.")
  await deletePod('w-other')

  await nodeNamed(dataNode).restart()
  await waitPod('w1', isRunning, 'Running after the agent restart')
  t.ok(await exists(join(dataDir, 'log')), 'the agent restart keeps the directory')
  t.equal((await logLines('w1'))[0], 'start', 'the pod still reads the file')
})

t.test('a claim in use stays Terminating until its pod is gone; reclaim Delete then removes the volume and its directory', async (t) => {
  const pvName = (await c.client.get(pvcs, ns, 'data')).spec.volumeName
  await c.kubectl(['delete', 'pvc', 'data', '--wait=false'])
  await eventually(async () => /^data\s+Terminating\s+/m.test((await c.kubectl(['get', 'pvc', 'data'])).stdout), { ...slow, what: 'pvc Terminating' })
  t.pass('kubectl shows the claim Terminating while the pod uses it')
  t.ok(await exists(dataDir), 'the data is still there')
  await deletePod('w1')
  await eventually(async () => !(await c.client.get(pvcs, ns, 'data').catch(() => undefined)), { ...slow, what: 'claim gone' })
  await eventually(async () => !(await c.client.get(pvs, undefined, pvName).catch(() => undefined)), { ...slow, what: 'volume gone' })
  t.notOk(await exists(dataDir), 'the directory on the node was removed')
})

t.test('a Retain class keeps the directory and the volume goes Released', async (t) => {
  await apply({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'keep' }, provisioner: 'skiff.dev/local', reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer', allowVolumeExpansion: true })
  await apply(claim('kept', { storageClassName: 'keep' }))
  await apply(writer('w2', 'kept'))
  await waitPod('w2', isRunning, 'Running')
  const { pv } = await bound('kept')
  const pvName = pv.metadata.name!
  t.equal(pv.spec.persistentVolumeReclaimPolicy, 'Retain')
  await c.kubectl(['patch', 'pvc', 'kept', '-p', '{"spec":{"resources":{"requests":{"storage":"200Mi"}}}}'])
  await eventually(async () => (await c.client.get(pvcs, ns, 'kept')).status?.capacity?.storage === '200Mi', { ...slow, what: 'claim capacity 200Mi' })
  t.equal((await c.client.get(pvs, undefined, pvName)).spec.capacity.storage, '200Mi', 'a class with allowVolumeExpansion grows the volume')
  await deletePod('w2')
  await c.kubectl(['delete', 'pvc', 'kept'])
  await eventually(async () => (await c.client.get(pvs, undefined, pvName)).status?.phase === 'Released', { ...slow, what: 'volume Released' })
  t.match((await c.kubectl(['get', 'pv', pvName])).stdout, new RegExp(`^${pvName}\\s+200Mi\\s+RWO\\s+Retain\\s+Released\\s+default/kept\\s+keep\\s+`, 'm'))
  t.same(await readFile(join(pv.spec.local.path, 'log'), 'utf8'), 'start\n', 'the data is kept')
  // Deleting a Retain volume keeps the data too (as Kubernetes); the object goes.
  await c.kubectl(['delete', 'pv', pvName])
  t.ok(await exists(join(pv.spec.local.path, 'log')), 'the data outlives the volume object')
})

t.test('a statically created volume binds to a matching claim', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-static-pv-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pv = (name: string, size: string) => ({
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name, labels: { tier: 'static' } },
    spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', hostPath: { path: dir } },
  })
  const small = `small-${names[0]}`
  const big = `big-${names[0]}`
  await apply(pv(small, '10Mi'))
  await apply(pv(big, '1Gi'))
  await eventually(async () => (await c.client.get(pvs, undefined, big)).status?.phase === 'Available', { ...slow, what: 'static volume Available' })
  t.match((await c.kubectl(['get', 'pv', big])).stdout, new RegExp(`^${big}\\s+1Gi\\s+RWO\\s+Retain\\s+Available\\s+manual\\s+`, 'm'))
  await apply(claim('static', { storageClassName: 'manual', selector: { matchLabels: { tier: 'static' } } }))
  const { pv: got } = await bound('static')
  t.equal(got.metadata.name, big, 'the volume large enough was chosen')
  t.equal((await c.client.get(pvs, undefined, small)).status.phase, 'Available', 'the small one stays Available')
  t.match((await c.kubectl(['get', 'pv', big])).stdout, new RegExp(`^${big}\\s+1Gi\\s+RWO\\s+Retain\\s+Bound\\s+default/static\\s+manual\\s+`, 'm'))
  await c.kubectl(['delete', 'pvc', 'static'])
  await c.kubectl(['delete', 'pv', small, big])
})

t.test('hostPath of the Docker socket or an agent state is refused with the field path', async (t) => {
  const pod = (name: string, path: string) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: { containers: [{ name: 'app', image: echo }], volumes: [{ name: 'h', hostPath: { path } }] },
  })
  const sock = await c.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(pod('sock', '/var/run/docker.sock')), allowFail: true })
  t.not(sock.code, 0)
  t.match(sock.stderr, /spec\.volumes\[0\]\.hostPath\.path: Forbidden: must not be, contain or lie under \/var\/run\/docker\.sock/)
  const state = await c.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(pod('state', join(nodes[0]!.stateDir, 'kubelet.key'))), allowFail: true })
  t.not(state.code, 0)
  t.match(state.stderr, /spec\.volumes\[0\]\.hostPath\.path: Forbidden: must not be, contain or lie under /)
  const pv = await c.kubectl(['apply', '-f', '-'], {
    stdin: JSON.stringify({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'sock' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/run/docker.sock' } } }),
    allowFail: true,
  })
  t.match(pv.stderr, /spec\.hostPath\.path: Forbidden/)
})

t.test('a downwardAPI volume shows the pod labels and name', async (t) => {
  await apply({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'dw', namespace: ns, labels: { app: 'dw', tier: 'front' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: echo, command: ['sleep', '3600'], resources: { limits: { memory: '64Mi' } }, volumeMounts: [{ name: 'info', mountPath: '/etc/podinfo' }] }],
      volumes: [{ name: 'info', downwardAPI: { items: [
        { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
        { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
        { path: 'mem', resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' } },
      ] } }],
    },
  })
  await waitPod('dw', isRunning, 'Running')
  t.equal((await c.kubectl(['exec', 'dw', '--', 'cat', '/etc/podinfo/labels'])).stdout, 'app="dw"\ntier="front"')
  t.equal((await c.kubectl(['exec', 'dw', '--', 'cat', '/etc/podinfo/name'])).stdout, 'dw')
  t.equal((await c.kubectl(['exec', 'dw', '--', 'cat', '/etc/podinfo/mem'])).stdout, '64')
  await deletePod('dw')
})
