// `skiff logs` (issue 15) against a real control plane and one real agent on
// the real Docker Engine: a Deployment whose containers print numbered lines
// under a per-run id and exit after a few seconds (so the agent restarts
// them, back-off shortened to 1 s). Followed with `skiff logs deploy/talk -f`
// as a user runs it (the CLI in a child process): lines from every replica,
// then from a replica created while it runs, then from a restarted
// container's next run, and no line printed twice across a restart. Then
// one-shot reads (--tail, -o json) and the errors a user gets.

import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { docker, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { runSkiff } from '../harness/skiff-up.ts'

const skiffCli = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))
const deploys = lookupResource('apps', 'v1', 'deployments')!
const pods = lookupResource('', 'v1', 'pods')!
const slow = { timeout: 90_000, interval: 250 }

await ensureImages({ only: ['pause', 'echo'], progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(1, 'lg')
const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR } })
await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'none' }, dnsPort: 0, endpointWithdrawalTimeoutMs: 0, backoff: { baseMs: 1_000, maxMs: 2_000 }, containerLogs: { maxSizeBytes: 64 * 1024, maxFiles: 2 } })

// Each run of the container: an id of its own, lines 0..11 every 0.5 s, then exit 1 (the agent restarts it).
const script = 'run=$(cut -c1-8 /proc/sys/kernel/random/uuid); i=0; while [ $i -lt 12 ]; do echo "run=$run line=$i"; i=$((i+1)); sleep 0.5; done; exit 1'
await c.client.create(deploys, 'default', {
  metadata: { name: 'talk' },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'talk' } },
    template: { metadata: { labels: { app: 'talk' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'talk', image: 'skiff/echo:local', command: ['sh', '-c', script] }] } },
  },
} as KubeObject)
const running = async () => (await c.client.list(pods, 'default', { labelSelector: 'app=talk' })).items.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp)
await eventually(async () => (await running()).length === 2, { ...slow, what: '2 talk pods running' })
const skiff = (args: string[]) => runSkiff('/nonexistent', ['--kubeconfig', c.kubeconfig, ...args], { timeoutMs: 60_000 })

t.test('skiff logs deploy/talk -f: every replica, a new replica, across a restart, nothing twice', async (t) => {
  const child = spawn(process.execPath, [skiffCli, '--kubeconfig', c.kubeconfig, 'logs', 'deploy/talk', '-f'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let stderr = ''
  let buf = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()!
    lines.push(...parts.filter(Boolean))
  })
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((r) => child.on('close', r))
  t.teardown(() => void child.kill('SIGKILL'))
  // "POD CONTAINER run=ID line=N"
  const parsed = () => lines.map((l) => /^(\S+) talk run=(\w+) line=(\d+)$/.exec(l)).filter((m): m is RegExpExecArray => !!m).map((m) => ({ pod: m[1]!, run: m[2]!, line: Number(m[3]) }))
  const podsSeen = () => new Set(parsed().map((x) => x.pod))

  const first = (await running()).map((p) => p.metadata.name!)
  await eventually(() => first.every((p) => podsSeen().has(p)), { ...slow, what: `lines from both replicas (${first.join(', ')}); got ${lines.length} lines, stderr ${stderr}` })
  t.pass('lines from every replica')
  t.match(stderr, new RegExp(`\\+ ${first[0]} › talk`), 'stern\'s "+ pod › container" notice on stderr')

  await c.client.patch(deploys, 'default', 'talk', { spec: { replicas: 3 } }, 'application/merge-patch+json')
  const added = await eventually(async () => (await running()).map((p) => p.metadata.name!).find((n) => !first.includes(n)), { ...slow, what: 'the third replica running' })
  await eventually(() => podsSeen().has(added), { ...slow, what: `lines from ${added}, created while skiff logs ran` })
  t.pass(`lines from ${added}, a replica created while it ran`)

  const restarted = await eventually(() => {
    const runs = new Map<string, Set<string>>()
    for (const x of parsed()) runs.set(x.pod, (runs.get(x.pod) ?? new Set()).add(x.run))
    return [...runs].find(([, r]) => r.size >= 2)?.[0]
  }, { ...slow, what: 'lines from a second run of a restarted container' })
  t.pass(`${restarted}: lines from the container's next run after its restart`)
  const seen = new Map<string, number>()
  for (const x of parsed()) seen.set(`${x.pod} ${x.run} ${x.line}`, (seen.get(`${x.pod} ${x.run} ${x.line}`) ?? 0) + 1)
  t.same([...seen].filter(([, n]) => n > 1), [], 'no line printed twice across restarts and reconnects')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM ends it cleanly')
})

t.test('one-shot reads: --tail, -o json, a pod query', async (t) => {
  const current = (await running()).map((p) => p.metadata.name!)
  const json = await skiff(['logs', 'deploy/talk', '--tail', '2', '-o', 'json'])
  t.equal(json.code, 0, json.stderr)
  const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.ok(rows.length >= 1, `${rows.length} JSON lines`)
  t.ok(rows.every((r) => r.namespace === 'default' && r.containerName === 'talk' && /^run=\w+ line=\d+$/.test(r.message) && r.nodeName === names[0]), 'stern\'s JSON fields: message, nodeName, namespace, podName, containerName')
  const perPod = new Map<string, number>()
  for (const r of rows) perPod.set(r.podName, (perPod.get(r.podName) ?? 0) + 1)
  t.ok([...perPod.values()].every((n) => n <= 2), `at most 2 lines per container with --tail 2 (${JSON.stringify([...perPod])})`)

  const one = current[0]!
  const byName = await skiff(['logs', `pod/${one}`, '--timestamps'])
  t.equal(byName.code, 0, byName.stderr)
  const out = byName.stdout.trim().split('\n').filter(Boolean)
  t.ok(out.length >= 1 && out.every((l) => new RegExp(`^${one} talk \\d{4}-\\d\\d-\\d\\dT\\S+Z run=`).test(l)), 'pod/NAME: only that pod, with timestamps')
})

t.test('the Engine rotates the containers\' logs as the agent was told (--container-log-max-size 64Ki, --container-log-max-files 2)', async (t) => {
  const list = await docker.listContainers({ filters: { label: ['skiff.container.role=app', 'skiff.pod.namespace=default'] } })
  const ours = list.filter((x) => (x.Labels['skiff.pod.name'] ?? '').startsWith('talk-'))
  t.ok(ours.length >= 1, `${ours.length} talk containers on the Engine`)
  for (const x of ours) {
    const info = await docker.getContainer(x.Id).inspect()
    t.same(info.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '64k', 'max-file': '2' } }, `${x.Labels['skiff.pod.name']}: json-file, 64k, 2 files`)
  }
})

t.test('errors say what to do', async (t) => {
  const missing = await skiff(['logs', 'deploy/nope'])
  t.not(missing.code, 0)
  t.match(missing.stderr, 'deploy/nope not found in namespace default')
  const badType = await skiff(['logs', 'cm/x'])
  t.match(badType.stderr, '"cm" is not a type skiff logs can follow; use pod/, deploy/, sts/, ds/, rs/, job/ or svc/')
  const badSince = await skiff(['logs', 'deploy/talk', '--since', 'soon'])
  t.match(badSince.stderr, '--since "soon" is not a duration such as 30s, 10m or 1h')
})
