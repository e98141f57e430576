// Logs outlive pods (issue 15 point 3): a real control plane and one real
// agent on the real Docker Engine. A Deployment's pod prints a line unique to
// this run, the pod is deleted, and once its replacement is Running the
// deleted pod's line is read (a) with the real kubectl through the
// apiserver's nodes/proxy (`kubectl get --raw /api/v1/nodes/N/proxy/podLogs/...`)
// and (b) with `skiff logs deploy/NAME --previous-pods` in a child process.
// A user without nodes/proxy gets 403, other methods 405; the agent prunes a
// run older than its configured retention and keeps a fresh one.

import t from 'tap'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { archiveFolder, containerArchiveDir, type ArchiveMeta } from '../../node/pod-log-archive.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { runSkiff } from '../harness/skiff-up.ts'

const deploys = lookupResource('apps', 'v1', 'deployments')!
const pods = lookupResource('', 'v1', 'pods')!
const slow = { timeout: 90_000, interval: 250 }
const hour = 3600_000

await ensureImages({ only: ['pause', 'echo'], progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(1, 'pa')
const nodeName = names[0]!
const c = await startTestCluster(t, { identities: [...nodeIdentities(names), { user: 'jane', groups: ['system:authenticated'] }], controllers: { clusterCIDR: net.clusterCIDR } })
const node = await startTestNode(t, c, {
  name: nodeName, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'none' }, dnsPort: 0, endpointWithdrawalTimeoutMs: 0,
  podLogRetentionMs: hour, podLogPruneIntervalMs: 500,
})

const marker = `archived-${randomUUID().slice(0, 8)}`
await c.client.create(deploys, 'default', {
  metadata: { name: 'keep' },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'keep' } },
    template: {
      metadata: { labels: { app: 'keep' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'talk', image: 'skiff/echo:local', command: ['sh', '-c', `echo "${marker} from $(hostname)"; exec sleep 3600`] }] },
    },
  },
} as KubeObject)
const running = async () => (await c.client.list(pods, 'default', { labelSelector: 'app=keep' })).items.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp)
const first = await eventually(async () => (await running())[0], { ...slow, what: 'the keep pod running' })
const oldName = first.metadata.name!
const oldUid = first.metadata.uid!
await eventually(async () => String(await c.client.call('GET', `/api/v1/namespaces/default/pods/${oldName}/log`).catch(() => '')).includes(`${marker} from ${oldName}`), { ...slow, what: 'the pod printed its line' })
await c.client.delete(pods, 'default', oldName)
const replacement = await eventually(async () => {
  const gone = !(await c.client.list(pods, 'default')).items.some((p) => p.metadata.uid === oldUid)
  const next = (await running()).find((p) => p.metadata.uid !== oldUid)
  return gone && next ? next : undefined
}, { ...slow, what: 'the deleted pod gone and its replacement Running' })
const newName = replacement.metadata.name!
const listPath = `/api/v1/nodes/${nodeName}/proxy/podLogs/`
const logPath = `${listPath}default/${oldName}/${oldUid}/talk`

t.test('kubectl get --raw through nodes/proxy: the deleted pod is listed and its line readable after the replacement is Running', async (t) => {
  const list = await c.kubectl(['get', '--raw', `${listPath}?namespace=default`])
  const items = JSON.parse(list.stdout).items as Array<Record<string, unknown>>
  const entry = items.find((i) => i.uid === oldUid)
  t.match(entry, { namespace: 'default', pod: oldName, uid: oldUid, container: 'talk', node: nodeName, labels: { app: 'keep' } }, 'listed with its namespace, pod, uid, container, node and labels')
  t.ok(typeof entry?.size === 'number' && (entry.size as number) > 0 && typeof entry?.archivedAt === 'string', `size ${entry?.size} and archivedAt ${entry?.archivedAt}`)
  t.notOk(items.some((i) => i.container === 'POD'), 'the sandbox is not archived')
  const other = await c.kubectl(['get', '--raw', `${listPath}?namespace=kube-system`])
  t.same(JSON.parse(other.stdout).items, [], '?namespace= filters')

  const text = await c.kubectl(['get', '--raw', logPath])
  t.equal(text.stdout, `${marker} from ${oldName}\n`, 'the deleted pod\'s line, timestamps cut by default')
  const stamped = await c.kubectl(['get', '--raw', `${logPath}?timestamps=true&tailLines=1`])
  t.match(stamped.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${marker} from ${oldName}\\n$`), 'timestamps=true and tailLines as pods/log')
  const missing = await c.kubectl(['get', '--raw', `${listPath}default/${oldName}/not-a-uid/talk`], { allowFail: true })
  t.not(missing.code, 0)
  t.match(missing.stderr, /NotFound|not found|no archived log/, 'an unknown uid is 404')
})

t.test('skiff logs deploy/keep --previous-pods: the deleted pod as "NAME (deleted)", then the live one', async (t) => {
  const r = await runSkiff('/nonexistent', ['--kubeconfig', c.kubeconfig, 'logs', 'deploy/keep', '--previous-pods'], { timeoutMs: 60_000 })
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.same(lines, [`${oldName} (deleted) talk ${marker} from ${oldName}`, `${newName} talk ${marker} from ${newName}`], 'archived lines first, then the live pod\'s')
  const plain = await runSkiff('/nonexistent', ['--kubeconfig', c.kubeconfig, 'logs', 'deploy/keep'], { timeoutMs: 60_000 })
  t.equal(plain.stdout.trim(), `${newName} talk ${marker} from ${newName}`, 'without the flag only live pods')

  const child = spawn(process.execPath, [fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url)), '--kubeconfig', c.kubeconfig, 'logs', 'deploy/keep', '--previous-pods', '-f'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => void child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((r) => child.on('close', r))
  await eventually(() => out.includes(`${newName} talk ${marker}`), { ...slow, what: `-f: the live pod's line after the archive (so far: ${JSON.stringify(out)})` })
  t.equal(out.split('\n')[0], `${oldName} (deleted) talk ${marker} from ${oldName}`, '-f: the archive printed once first, then it follows the live pods')
  child.kill('SIGTERM')
  t.equal(await exited, 0, '-f keeps following until stopped')
})

t.test('nodes/proxy needs get on nodes/proxy, and is GET only', async (t) => {
  const jane = c.clientFor(c.tokens.get('jane')!)
  const denied = await jane.call('GET', listPath).then(() => undefined, (e) => e as ApiClientError)
  t.equal(denied?.status, 403, 'a user without nodes/proxy: 403')
  t.match(denied?.body?.message, /cannot get resource "nodes\/proxy" in API group ""/)
  const post = await c.client.call('POST', listPath, { body: {} }).then(() => undefined, (e) => e as ApiClientError)
  t.equal(post?.status, 405, 'POST as cluster admin: 405')
  t.match(post?.body, { kind: 'Status', reason: 'MethodNotAllowed' })
  const nowhere = await c.client.call('GET', '/api/v1/nodes/no-such-node/proxy/podLogs/').then(() => undefined, (e) => e as ApiClientError)
  t.equal(nowhere?.status, 404, 'an unknown node: 404')
  t.match(nowhere?.message, /nodes "no-such-node" not found/)
})

t.test('a run older than the retention is pruned; a fresh one stays', async (t) => {
  const root = join(node.stateDir, archiveFolder)
  const plant = async (pod: string, archivedAt: string) => {
    const ref = { namespace: 'default', pod, uid: randomUUID(), container: 'app' }
    const dir = containerArchiveDir(root, ref)
    await mkdir(dir, { recursive: true })
    const meta: ArchiveMeta = { ...ref, node: nodeName, labels: {}, restartCount: 0, containerId: 'planted', archivedAt, bytes: 6, truncated: false }
    await writeFile(join(dir, '0.log'), `${archivedAt} hello\n`)
    await writeFile(join(dir, '0.json'), JSON.stringify(meta))
    return dir
  }
  const oldDir = await plant('ghost-old', new Date(Date.now() - 2 * hour).toISOString())
  await plant('ghost-new', new Date().toISOString())
  await eventually(async () => {
    const items = JSON.parse((await c.kubectl(['get', '--raw', listPath])).stdout).items as Array<{ pod: string }>
    return items.some((i) => i.pod === 'ghost-new') && !items.some((i) => i.pod === 'ghost-old')
  }, { ...slow, what: 'ghost-old (archived 2 h ago, retention 1 h) pruned, ghost-new listed' })
  t.equal(await stat(join(oldDir, '..')).then(() => 'there', () => 'gone'), 'gone', 'its files and empty folders are removed')
  const items = JSON.parse((await c.kubectl(['get', '--raw', listPath])).stdout).items as Array<{ uid: string }>
  t.ok(items.some((i) => i.uid === oldUid), 'the deleted pod\'s fresh run is kept')
})
