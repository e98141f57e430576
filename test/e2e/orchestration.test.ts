// Issue 3 end to end: the real apiserver with the scheduler and controllers,
// three real node agents on the real Docker Engine, the real kubectl.
// Spread, cross-node pod traffic, logs/exec, replacement, rolling update and
// undo, unschedulable pods, and a node that goes away and comes back.

import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { inCIDR } from '../../controlplane/apiserver/service-alloc.ts'
import { ensureImages } from '../../node/images/build.ts'
import { eventually } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { docker, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../harness/node.ts'

const run = promisify(execFile)
const pods = lookupResource('', 'v1', 'pods')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const rss = lookupResource('apps', 'v1', 'replicasets')!
const nodesInfo = lookupResource('', 'v1', 'nodes')!

const ready = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

function deployment(name: string, replicas: number, image = 'skiff/echo:local', extra: Record<string, unknown> = {}) {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [{ name: 'echo', image, ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }],
          ...extra,
        },
      },
    },
  }
}

t.test('orchestration on Docker', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(3, 'e2e')
  const c = await startTestCluster(t, {
    identities: nodeIdentities(names),
    controllers: { clusterCIDR: net.clusterCIDR, nodeMonitorGracePeriodMs: 6_000, podEvictionTimeoutMs: 3_000, nodeMonitorPeriodMs: 1_000 },
  })
  const nodes: TestNode[] = []
  for (const name of names) nodes.push(await startTestNode(t, c, { name, clusterCIDR: net.clusterCIDR, backoff: { baseMs: 500, maxMs: 5_000 } }))
  const podsOf = async (app: string) => (await c.client.list(pods, 'default', { labelSelector: `app=${app}` })).items

  await t.test('6 replicas spread 2/2/2, Ready, pod IPs from each node subnet', async (t) => {
    await c.client.create(deploys, 'default', deployment('spread', 6))
    await eventually(async () => (await podsOf('spread')).filter(ready).length === 6, { timeout: 90_000, what: '6 ready pods' })
    const list = await podsOf('spread')
    const perNode = new Map<string, number>()
    for (const p of list) perNode.set(p.spec.nodeName, (perNode.get(p.spec.nodeName) ?? 0) + 1)
    t.same([...perNode.values()].sort(), [2, 2, 2], `spread ${JSON.stringify(Object.fromEntries(perNode))}`)
    for (const p of list) {
      const node = nodes.find((n) => n.name === p.spec.nodeName)!
      t.ok(inCIDR(p.status.podIP, node.podCIDR), `${p.metadata.name} ${p.status.podIP} in ${node.podCIDR}`)
    }
    const wide = await c.kubectl(['get', 'pods', '-o', 'wide', '-l', 'app=spread'])
    for (const p of list) t.match(wide.stdout, new RegExp(`${p.metadata.name}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${p.status.podIP.replaceAll('.', '\\.')}\\s+${p.spec.nodeName}`))
  })

  await t.test('a pod reaches a pod on another node by IP; logs and exec', async (t) => {
    const list = await podsOf('spread')
    const a = list[0]!
    const b = list.find((p) => p.spec.nodeName !== a.spec.nodeName)!
    const r = await c.kubectl(['exec', a.metadata.name!, '--', 'sh', '-c', `echo cross-node | nc -w 3 ${b.status.podIP} 9000`])
    t.match(r.stdout, 'cross-node', `${a.spec.nodeName} -> ${b.spec.nodeName}`)
    const code = await c.kubectl(['exec', a.metadata.name!, '--', 'sh', '-c', 'echo ok; exit 3'], { allowFail: true })
    t.equal(code.code, 3)
    t.match(code.stdout, /^ok/)
    const logs = await c.kubectl(['logs', a.metadata.name!])
    t.match(logs.stdout, /GET \/ready/, 'the readiness probe requests are in the log')
  })

  await t.test('a deleted pod is replaced', async (t) => {
    const victim = (await podsOf('spread'))[0]!
    await c.kubectl(['delete', 'pod', victim.metadata.name!, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 })
    await eventually(async () => {
      const l = await podsOf('spread')
      return l.filter(ready).length === 6 && !l.some((p) => p.metadata.uid === victim.metadata.uid)
    }, { timeout: 60_000, what: 'a replacement pod' })
    t.pass('replaced')
  })

  await t.test('rolling update never below replicas - maxUnavailable; undo reuses the ReplicaSet', async (t) => {
    await run('docker', ['tag', 'skiff/echo:local', 'skiff/echo:e2e-v2'])
    t.teardown(() => run('docker', ['rmi', 'skiff/echo:e2e-v2']).catch(() => undefined))
    const before = (await c.client.list(rss, 'default', { labelSelector: 'app=spread' })).items
    let minReady = Infinity
    const seen = new Map<string, KubeObject>()
    for (const p of await podsOf('spread')) seen.set(p.metadata.name!, p)
    const w = c.client.watch(resourcePath(pods, 'default'), { labelSelector: 'app=spread', resourceVersion: '0' }, (ev) => {
      if (ev.type === 'DELETED') seen.delete(ev.object.metadata.name!)
      else seen.set(ev.object.metadata.name!, ev.object)
      minReady = Math.min(minReady, [...seen.values()].filter(ready).length)
    }, () => {})
    t.teardown(() => w.stop())
    await c.kubectl(['set', 'image', 'deployment/spread', 'echo=skiff/echo:e2e-v2'])
    await c.kubectl(['rollout', 'status', 'deployment/spread', '--timeout=150s'], { timeoutMs: 160_000 })
    t.ok(minReady >= 5, `ready pods never fewer than 5 (min seen ${minReady})`)
    await c.kubectl(['rollout', 'undo', 'deployment/spread'])
    await c.kubectl(['rollout', 'status', 'deployment/spread', '--timeout=150s'], { timeoutMs: 160_000 })
    const d = await c.client.get(deploys, 'default', 'spread')
    t.equal(d.spec.template.spec.containers[0].image, 'skiff/echo:local')
    const after = (await c.client.list(rss, 'default', { labelSelector: 'app=spread' })).items
    const active = after.filter((r) => r.spec.replicas > 0)
    t.equal(active.length, 1)
    t.ok(before.some((r) => r.metadata.uid === active[0]!.metadata.uid), 'the original ReplicaSet is reused')
  })

  await t.test('kubectl delete --cascade=foreground: the 3 pods terminate, none is replaced, then the ReplicaSet and the Deployment go', async (t) => {
    await c.client.create(deploys, 'default', deployment('fg', 3))
    await eventually(async () => (await podsOf('fg')).filter(ready).length === 3, { timeout: 90_000, what: '3 ready pods' })
    const d = await c.client.get(deploys, 'default', 'fg')
    const rs = (await c.client.list(rss, 'default', { labelSelector: 'app=fg' })).items
    const original = new Set((await podsOf('fg')).map((p) => p.metadata.uid))
    const added: string[] = []
    const terminating = new Set<string>()
    const order: string[] = []
    const w = c.client.watch(resourcePath(pods, 'default'), { labelSelector: 'app=fg', resourceVersion: d.metadata.resourceVersion }, (ev) => {
      if (ev.type === 'ADDED' && !original.has(ev.object.metadata.uid)) added.push(ev.object.metadata.name!)
      if (ev.object.metadata.deletionTimestamp) terminating.add(ev.object.metadata.uid!)
      if (ev.type === 'DELETED') order.push(`pod/${ev.object.metadata.name}`)
    }, () => {})
    t.teardown(() => w.stop())
    const owners = c.client.watch(resourcePath(rss, 'default'), { resourceVersion: d.metadata.resourceVersion }, (ev) => {
      if (ev.type === 'DELETED' && ev.object.metadata.uid === rs[0]!.metadata.uid) order.push('replicaset')
    }, () => {})
    t.teardown(() => owners.stop())
    const r = await c.kubectl(['delete', 'deployment', 'fg', '--cascade=foreground', '--timeout=90s'], { timeoutMs: 100_000 })
    t.match(r.stdout, 'deployment.apps "fg" deleted')
    t.equal((await c.client.request('GET', resourcePath(deploys, 'default', 'fg'))).status, 404, 'the Deployment is gone when kubectl returns')
    t.equal((await c.client.request('GET', resourcePath(rss, 'default', rs[0]!.metadata.name!))).status, 404, 'its ReplicaSet is gone')
    t.equal((await podsOf('fg')).length, 0, 'no pod left')
    await eventually(async () => order.length === 4, { timeout: 10_000, what: 'the watch saw 3 pods and the ReplicaSet deleted' })
    t.same(added, [], 'no pod was created after the delete')
    t.equal(terminating.size, 3, 'exactly the 3 pods terminated')
    t.equal(order[3], 'replicaset', `the pods went before their ReplicaSet (${order.join(', ')})`)
  })

  await t.test('a pod asking for more CPU than any node has stays Pending with the reason', async (t) => {
    await c.client.create(pods, 'default', { metadata: { name: 'too-big' }, spec: { containers: [{ name: 'c', image: 'skiff/echo:local', resources: { requests: { cpu: '64' } } }] } })
    const p = await eventually(async () => {
      const x = await c.client.get(pods, 'default', 'too-big')
      return (x.status?.conditions ?? []).find((cd: any) => cd.type === 'PodScheduled' && cd.status === 'False') ? x : undefined
    }, { timeout: 30_000, what: 'PodScheduled=False' })
    const cond = p.status.conditions.find((cd: any) => cd.type === 'PodScheduled')
    t.equal(cond.reason, 'Unschedulable')
    t.match(cond.message, /0\/3 nodes are available: 3 Insufficient cpu/)
    t.equal(p.status.phase, 'Pending')
    await c.client.delete(pods, 'default', 'too-big')
  })

  await t.test('a node that goes silent: NotReady, pods replaced; back again: no duplicates', async (t) => {
    const lost = nodes[2]!
    const onLost = (await podsOf('spread')).filter((p) => p.spec.nodeName === lost.name).map((p) => p.metadata.uid)
    t.ok(onLost.length > 0, 'the node runs some pods')
    await lost.agent.stop({ removePods: false })
    await eventually(async () => {
      const n = await c.client.get(nodesInfo, undefined, lost.name)
      return n.status.conditions.some((cd: any) => cd.type === 'Ready' && cd.status !== 'True')
    }, { timeout: 30_000, what: `${lost.name} NotReady` })
    await eventually(async () => {
      const l = await podsOf('spread')
      return l.filter(ready).length === 6 && l.every((p) => p.spec.nodeName !== lost.name)
    }, { timeout: 90_000, what: 'pods replaced on the other nodes' })
    const stale = await docker.listContainers({ filters: { label: [`skiff.node=${lost.name}`] } })
    t.ok(stale.length > 0, 'its containers still run while the agent is gone')
    await lost.restart()
    await eventually(async () => (await docker.listContainers({ all: true, filters: { label: [`skiff.node=${lost.name}`, 'skiff.container.role=app'] } })).length === 0, {
      timeout: 60_000,
      what: 'stale containers removed',
    })
    const ours = new Set(names)
    const running = (await docker.listContainers({ filters: { label: ['skiff.container.role=app'] } })).filter((x) => ours.has(x.Labels['skiff.node']!))
    const nodesOfPod = new Map<string, Set<string>>()
    for (const x of running) nodesOfPod.set(x.Labels['skiff.pod.uid']!, (nodesOfPod.get(x.Labels['skiff.pod.uid']!) ?? new Set()).add(x.Labels['skiff.node']!))
    t.ok([...nodesOfPod.values()].every((s) => s.size === 1), 'no pod runs on two nodes')
    t.equal(running.length, nodesOfPod.size, 'no pod runs twice')
    const uids = [...nodesOfPod.keys()]
    t.notOk(uids.some((u) => onLost.includes(u)), 'evicted pods run nowhere')
  })
})
