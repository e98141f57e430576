// The node agent on the real Docker Engine against a real control plane: two
// agents in this process (no scheduler or controllers: pods are created with
// spec.nodeName, the harness gives each Node its podCIDR as the admin).

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject, WatchEvent } from '../../controlplane/api/types.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'
import { cidrContains } from '../../lib/ipv4.ts'
import { labels } from '../../node/labels.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { docker, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const run = promisify(execFile)
const pods = lookupResource('', 'v1', 'pods')!
const nodes = lookupResource('', 'v1', 'nodes')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const configmaps = lookupResource('', 'v1', 'configmaps')!
const ns = 'default'
const slow = { timeout: 60_000, interval: 200 }

await ensureImages({ progress: null })
const names = testNodeNames(2)
const c = await startTestCluster(t, { identities: nodeIdentities(names) })
const cidr = await pickClusterCIDR()
const nodeOpts = { clusterCIDR: cidr.clusterCIDR, backoff: { baseMs: 2_000 } }
const [n1, n2] = await Promise.all([
  startTestNode(t, c, { name: names[0]!, podCIDR: cidr.podCIDR(1), ...nodeOpts }),
  startTestNode(t, c, { name: names[1]!, podCIDR: cidr.podCIDR(2), ...nodeOpts }),
]) as [TestNode, TestNode]

const echo = 'skiff/echo:local'
const shell = (script: string) => ({ image: echo, command: ['sh', '-c', script] })

async function createPod(node: TestNode, name: string, spec: Record<string, unknown>): Promise<KubeObject> {
  return await c.client.create(pods, ns, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: node.name, terminationGracePeriodSeconds: 2, ...spec } })
}

async function waitPod(name: string, what: string, ok: (p: KubeObject) => boolean): Promise<KubeObject> {
  return await eventually(async () => {
    const p = await c.client.get(pods, ns, name)
    return ok(p) ? p : undefined
  }, { ...slow, what: `pod ${name}: ${what}` })
}

const isReady = (p: KubeObject) => p.status?.phase === 'Running' && p.status.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True')

/** IDs of the pod's containers named `container` (newest first), from Docker. */
async function containerIds(pod: string, container: string, opts: { running?: boolean } = {}): Promise<string[]> {
  const list = await docker.listContainers({ all: !opts.running, filters: { label: [`${labels.podNamespace}=${ns}`, `${labels.podName}=${pod}`, `${labels.containerName}=${container}`] } })
  return list.sort((a, b) => b.Created - a.Created).map((x) => x.Id)
}

async function execIn(pod: string, container: string, cmd: string): Promise<string> {
  const [id] = await containerIds(pod, container, { running: true })
  if (!id) throw new Error(`no running container ${container} in pod ${pod}`)
  const { stdout } = await run('docker', ['exec', id, 'sh', '-c', cmd], { timeout: 20_000 })
  return stdout
}

/** Waiting reasons of the pod's first container, as every status write shows them (a watch misses none). */
function watchReasons(t: { teardown(fn: () => unknown): void }, name: string): Set<string> {
  const seen = new Set<string>()
  const w = c.client.watch(resourcePath(pods, ns), { fieldSelector: `metadata.name=${name}` }, (ev: WatchEvent) => {
    const reason = ev.object?.status?.containerStatuses?.[0]?.state?.waiting?.reason
    if (reason) seen.add(reason)
  }, () => undefined)
  t.teardown(() => w.stop())
  return seen
}

t.test('the node registers with labels, addresses, kubelet port, Ready and a Lease', async (t) => {
  const node = await eventually(async () => {
    const n = await c.client.get(nodes, undefined, n1.name)
    return n.status?.daemonEndpoints?.kubeletEndpoint?.Port > 0 ? n : undefined
  }, { ...slow, what: 'kubelet port published' })
  t.equal(node.metadata.labels?.['kubernetes.io/hostname'], n1.name)
  t.equal(node.metadata.labels?.['kubernetes.io/os'], 'linux')
  t.same(node.status.addresses, [{ type: 'InternalIP', address: cidr.podCIDR(1).replace(/0\/24$/, '1') }, { type: 'Hostname', address: n1.name }])
  t.match(node.status.nodeInfo, { kubeletVersion: 'v1.32.0-skiff', containerRuntimeVersion: /^docker:\/\// })
  t.equal(node.status.capacity.pods, '110')
  t.match(node.status.conditions.find((x: any) => x.type === 'Ready'), { status: 'True', reason: 'KubeletReady' })
  const lease = await c.client.get(leases, 'kube-node-lease', n1.name)
  t.equal(lease.spec.holderIdentity, n1.name)
})

t.test('a pod runs, becomes Ready through its readiness probe, and gets an IP from the node subnet', async (t) => {
  await createPod(n1, 'web', {
    containers: [{
      name: 'echo', image: echo, ports: [{ name: 'http', containerPort: 8080 }],
      env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, { name: 'READY_DELAY_MS', value: '1500' }],
      readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
    }],
  })
  const p = await waitPod('web', 'Ready', isReady)
  t.ok(cidrContains(cidr.podCIDR(1), p.status.podIP), `pod IP ${p.status.podIP} in ${cidr.podCIDR(1)}`)
  t.equal(p.status.hostIP, cidr.podCIDR(1).replace(/0\/24$/, '1'))
  t.match(p.status.containerStatuses[0], { name: 'echo', ready: true, started: true, restartCount: 0, state: { running: {} }, containerID: /^docker:\/\// })
  t.match(await execIn('web', 'echo', 'cat /etc/resolv.conf'), /nameserver 10\.96\.0\.10[\s\S]*search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local[\s\S]*ndots:5/)
  t.equal((await execIn('web', 'echo', 'echo $POD_IP')).trim(), p.status.podIP)
})

t.test('a pod on one node reaches a pod on another by pod IP', async (t) => {
  await createPod(n2, 'peer', { containers: [{ name: 'echo', image: echo }] })
  const peer = await waitPod('peer', 'Running', isReady)
  t.ok(cidrContains(cidr.podCIDR(2), peer.status.podIP))
  const reply = await eventually(async () => (await execIn('web', 'echo', `echo across | nc -w 3 ${peer.status.podIP} 9000`)).trim() || undefined, { ...slow, what: 'TCP echo across nodes' })
  t.equal(reply, 'across')
})

t.test('docker kill of an app container: restarted, restartCount 1', async (t) => {
  const [before] = await containerIds('web', 'echo', { running: true })
  await docker.getContainer(before!).kill()
  const p = await waitPod('web', 'restarted and Ready', (p) => p.status?.containerStatuses?.[0]?.restartCount === 1 && isReady(p))
  t.match(p.status.containerStatuses[0].lastState, { terminated: { exitCode: 137, reason: 'Error' } })
  const [after] = await containerIds('web', 'echo', { running: true })
  t.not(after, before)
})

t.test('a missing image gives ErrImagePull, then ImagePullBackOff', async (t) => {
  const seen = watchReasons(t, 'nopull')
  // A registry on a closed local port: the one pull attempt fails at once, without leaving the machine.
  await createPod(n1, 'nopull', { containers: [{ name: 'app', image: '127.0.0.1:1/skiff/missing:local' }] })
  await eventually(() => seen.has('ErrImagePull'), { ...slow, what: 'ErrImagePull' })
  const p = await c.client.get(pods, ns, 'nopull')
  t.equal(p.status.phase, 'Pending')
  t.match(p.status.containerStatuses[0].state.waiting.message, /missing/)
  await eventually(() => seen.has('ImagePullBackOff'), { ...slow, what: 'ImagePullBackOff' })
  await c.client.delete(pods, ns, 'nopull')
})

t.test('a two-container pod shares an emptyDir and localhost', async (t) => {
  await createPod(n1, 'duo', {
    volumes: [{ name: 'data', emptyDir: {} }],
    containers: [
      { name: 'server', image: echo, volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      { name: 'writer', ...shell('echo hello > /data/x; sleep 3600'), volumeMounts: [{ name: 'data', mountPath: '/data' }] },
    ],
  })
  await waitPod('duo', 'Running', isReady)
  t.equal((await eventually(async () => (await execIn('duo', 'server', 'cat /data/x 2>/dev/null')).trim() || undefined, slow)), 'hello')
  t.equal((await eventually(async () => (await execIn('duo', 'writer', 'echo local | nc -w 3 127.0.0.1 9000')).trim() || undefined, slow)), 'local')
})

t.test('a ConfigMap change shows up in the mounted file without a restart', async (t) => {
  await c.client.create(configmaps, ns, { metadata: { name: 'cfg' }, data: { greeting: 'hello' } })
  await createPod(n1, 'reader', {
    volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }],
    containers: [{ name: 'app', ...shell('sleep 3600'), volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }] }],
  })
  await waitPod('reader', 'Running', isReady)
  t.equal(await execIn('reader', 'app', 'cat /etc/cfg/greeting'), 'hello')
  const cm = await c.client.get(configmaps, ns, 'cfg')
  await c.client.update(configmaps, { ...cm, data: { greeting: 'bye' } })
  await eventually(async () => (await execIn('reader', 'app', 'cat /etc/cfg/greeting')) === 'bye', { ...slow, what: 'updated file' })
  const p = await c.client.get(pods, ns, 'reader')
  t.equal(p.status.containerStatuses[0].restartCount, 0)
})

t.test('an init container runs to completion before the app container', async (t) => {
  await createPod(n2, 'ordered', {
    volumes: [{ name: 'work', emptyDir: {} }],
    initContainers: [{ name: 'init', ...shell('echo init > /work/order'), volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
    containers: [{ name: 'app', ...shell('echo app >> /work/order; sleep 3600'), volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
  })
  const p = await waitPod('ordered', 'Running', isReady)
  t.match(p.status.initContainerStatuses[0], { name: 'init', ready: true, state: { terminated: { exitCode: 0, reason: 'Completed' } } })
  t.match(p.status.conditions.find((x: any) => x.type === 'Initialized'), { status: 'True' })
  t.equal(await execIn('ordered', 'app', 'cat /work/order'), 'init\napp\n')
})

t.test('a failing liveness probe restarts the container', async (t) => {
  await createPod(n2, 'unhealthy', {
    containers: [{ name: 'echo', image: echo, livenessProbe: { httpGet: { path: '/status/500', port: 8080 }, periodSeconds: 1, failureThreshold: 2 } }],
  })
  const p = await waitPod('unhealthy', 'restarted', (p) => p.status?.containerStatuses?.[0]?.restartCount >= 1)
  t.match(p.status.containerStatuses[0].lastState, { terminated: { reason: /Error|Completed/ } })
  await c.client.delete(pods, ns, 'unhealthy')
})

t.test('a crashing container goes into CrashLoopBackOff', async (t) => {
  const seen = watchReasons(t, 'crasher')
  await createPod(n2, 'crasher', { containers: [{ name: 'app', ...shell('exit 3') }] })
  await eventually(() => seen.has('CrashLoopBackOff'), { ...slow, what: 'CrashLoopBackOff' })
  const p = await waitPod('crasher', 'restarted twice', (p) => p.status?.containerStatuses?.[0]?.restartCount >= 2)
  t.equal(p.status.phase, 'Running')
  t.match(p.status.containerStatuses[0].lastState, { terminated: { exitCode: 3, reason: 'Error' } })
  await c.client.delete(pods, ns, 'crasher')
})

t.test('restartPolicy Never: a container that exits 0 makes the pod Succeeded and stops the sandbox', async (t) => {
  await createPod(n2, 'oneshot', { restartPolicy: 'Never', containers: [{ name: 'app', ...shell('echo done') }] })
  const p = await waitPod('oneshot', 'Succeeded', (p) => p.status?.phase === 'Succeeded')
  t.match(p.status.containerStatuses[0].state, { terminated: { exitCode: 0, reason: 'Completed' } })
  await eventually(async () => (await containerIds('oneshot', 'POD', { running: true })).length === 0, { ...slow, what: 'sandbox stopped' })
  await c.client.delete(pods, ns, 'oneshot')
})

t.test('a pod whose sandbox is removed gets a new one', async (t) => {
  await createPod(n2, 'phoenix', { containers: [{ name: 'app', ...shell('sleep 3600') }] })
  await waitPod('phoenix', 'Running', isReady)
  const [sandbox] = await containerIds('phoenix', 'POD', { running: true })
  await docker.getContainer(sandbox!).remove({ force: true })
  const p = await waitPod('phoenix', 'restarted in a new sandbox', (p) => p.status?.containerStatuses?.[0]?.restartCount === 1 && isReady(p))
  const [fresh] = await containerIds('phoenix', 'POD', { running: true })
  t.not(fresh, sandbox)
  t.ok(cidrContains(cidr.podCIDR(2), p.status.podIP))
})

t.test('restarting the agent restarts no container', async (t) => {
  const snapshot = async () => {
    const list = await docker.listContainers({ filters: { label: [`${labels.node}=${n1.name}`] } })
    return list.map((x) => x.Id).sort()
  }
  const before = await snapshot()
  const web = await c.client.get(pods, ns, 'web')
  await n1.restart()
  // A new pod running proves the new agent synced; the existing pods were listed (and adopted) first.
  await createPod(n1, 'after-restart', { containers: [{ name: 'app', ...shell('sleep 3600') }] })
  await waitPod('after-restart', 'Running', isReady)
  const after = await snapshot()
  const fresh = await containerIds('after-restart', 'app')
  const sandbox = await containerIds('after-restart', 'POD')
  t.same(after.filter((id) => id !== fresh[0] && id !== sandbox[0]), before, 'same containers as before the restart')
  const again = await waitPod('web', 'Ready', isReady)
  t.equal(again.status.containerStatuses[0].restartCount, web.status.containerStatuses[0].restartCount)
  t.equal(again.status.containerStatuses[0].containerID, web.status.containerStatuses[0].containerID)
})

t.test('containers of a pod deleted while its agent was down are removed when it starts', async (t) => {
  const pod = await c.client.get(pods, ns, 'phoenix')
  await n2.agent.stop()
  await c.client.call('DELETE', resourcePath(pods, ns, 'phoenix'), { body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 } })
  t.ok((await docker.listContainers({ filters: { label: [`${labels.podUid}=${pod.metadata.uid}`] } })).length > 0, 'still running while the agent is down')
  await n2.restart()
  await eventually(async () => (await docker.listContainers({ all: true, filters: { label: [`${labels.podUid}=${pod.metadata.uid}`] } })).length === 0, { ...slow, what: 'stale containers removed' })
  t.ok(isReady(await c.client.get(pods, ns, 'peer')), 'the other pod on the node still runs')
})

t.test('deleting a pod runs preStop, SIGTERM, and removes its containers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-prestop-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const script = 'trap "echo term >> /h/log; exit 0" TERM; echo started >> /h/log; while true; do sleep 0.2; done'
  const pod = await createPod(n2, 'bye', {
    terminationGracePeriodSeconds: 10,
    volumes: [{ name: 'h', hostPath: { path: dir } }],
    containers: [{ name: 'app', ...shell(script), volumeMounts: [{ name: 'h', mountPath: '/h' }], lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo prestop >> /h/log'] } } } }],
  })
  await waitPod('bye', 'Running', isReady)
  await c.client.delete(pods, ns, 'bye')
  await eventually(async () => (await c.client.request('GET', resourcePath(pods, ns, 'bye'))).status === 404, { ...slow, what: 'pod deleted' })
  t.equal(await readFile(join(dir, 'log'), 'utf8'), 'started\nprestop\nterm\n')
  const left = await docker.listContainers({ all: true, filters: { label: [`${labels.podUid}=${pod.metadata.uid}`] } })
  t.equal(left.length, 0, 'no containers left')
})

