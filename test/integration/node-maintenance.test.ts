// Issue 13, node maintenance as Kubernetes does it, on a real control plane
// (scheduler and controllers), three real agents on this machine's Docker
// Engine, and the real kubectl 1.32:
//  - `kubectl drain N --ignore-daemonsets --delete-emptydir-data` with a
//    PodDisruptionBudget minAvailable 2 over a 3-replica Deployment never
//    leaves fewer than 2 Ready pods (polled every 200 ms throughout), uses
//    pods/eviction (429 and its retry when the budget is spent), leaves the
//    node cordoned and its pods elsewhere, the DaemonSet pod in place;
//  - `kubectl uncordon N` makes it schedulable again;
//  - `kubectl taint node M k=v:NoExecute` evicts the pods on M that do not
//    tolerate it (replaced on other nodes) and a pod tolerating it for 6 s
//    leaves after those 6 s (TaintManagerEviction, DisruptionTarget);
//  - `kubectl delete node D` gets its pods replaced elsewhere within a
//    minute (pod GC), and D's agent stops their containers.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError, resourcePath } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { labels as nodeLabels } from '../../node/labels.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { docker, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { isReady, webTemplate } from '../harness/web-app.ts'

const pods = lookupResource('', 'v1', 'pods')!
const nodes = lookupResource('', 'v1', 'nodes')!
const events = lookupResource('', 'v1', 'events')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const daemonsets = lookupResource('apps', 'v1', 'daemonsets')!
const pdbs = lookupResource('policy', 'v1', 'poddisruptionbudgets')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const slow = { timeout: 90_000, interval: 200 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

await ensureImages({ progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(3, 'mt')
const c = await startTestCluster(t, {
  identities: nodeIdentities(names),
  controllers: { clusterCIDR: net.clusterCIDR, podGCPeriodMs: 1_000, podGCQuarantineMs: 2_000 },
})
const nodeOpts = { clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'none' as const }, dnsPort: 0, endpointWithdrawalTimeoutMs: 0 }
const [a, b, third] = names as [string, string, string]

const webPods = async () => (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items
const readyWeb = async () => (await webPods()).filter(isReady)
const podsOn = async (node: string) => (await webPods()).filter((p) => p.spec?.nodeName === node && !p.metadata.deletionTimestamp)
const pdbStatus = async () => (await c.client.get(pdbs, 'default', 'web')).status ?? {}

// Two nodes first, so the three replicas land 2 + 1 and draining the fuller
// node must wait for the budget (429) between its two evictions.
await startTestNode(t, c, { name: a, ...nodeOpts })
await startTestNode(t, c, { name: b, ...nodeOpts })
await c.client.create(deploys, 'default', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: webTemplate({ graceSeconds: 1 }) } } as KubeObject)
await c.client.create(daemonsets, 'default', {
  metadata: { name: 'ds' },
  spec: { selector: { matchLabels: { app: 'ds' } }, template: { metadata: { labels: { app: 'ds' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'echo', image: 'skiff/echo:local' }] } } },
} as KubeObject)
await c.kubectl(['apply', '-f', '-'], {
  stdin: 'apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\n  namespace: default\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app: web\n',
})
await eventually(async () => (await readyWeb()).length === 3, { ...slow, what: '3 web pods ready' })
await startTestNode(t, c, { name: third, ...nodeOpts })
await eventually(async () => (await pdbStatus()).disruptionsAllowed === 1, { ...slow, what: 'the budget allows 1 disruption' })

t.test('kubectl get pdb prints the budget as Kubernetes does', async (t) => {
  const r = await c.kubectl(['get', 'pdb', 'web'])
  const [head, row] = r.stdout.trim().split('\n')
  t.same(head!.split(/\s{2,}/), ['NAME', 'MIN AVAILABLE', 'MAX UNAVAILABLE', 'ALLOWED DISRUPTIONS', 'AGE'])
  t.same(row!.split(/\s{2,}/).slice(0, 4), ['web', '2', 'N/A', '1'])
  const st = await pdbStatus()
  t.match(st, { expectedPods: 3, currentHealthy: 3, desiredHealthy: 2, disruptionsAllowed: 1, observedGeneration: 1 })
  t.match(st.conditions, [{ type: 'DisruptionAllowed', status: 'True', reason: 'SufficientPods' }])
})

t.test('an eviction the budget forbids is a 429 with Kubernetes\' Status', async (t) => {
  await c.client.patch(pdbs, 'default', 'web', { spec: { minAvailable: 3 } }, 'application/merge-patch+json')
  await eventually(async () => {
    const st = await pdbStatus()
    return st.observedGeneration === 2 && st.disruptionsAllowed === 0
  }, { ...slow, what: 'the budget at minAvailable 3 allows nothing' })
  const victim = (await readyWeb())[0]!
  const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: victim.metadata.name, namespace: 'default' } }
  const err = await c.client.call('POST', resourcePath(pods, 'default', victim.metadata.name, 'eviction'), { body }).then(() => undefined, (e) => e)
  t.ok(err instanceof ApiClientError && err.status === 429, 'answered 429')
  t.match((err as ApiClientError).body, {
    kind: 'Status', status: 'Failure', reason: 'TooManyRequests', code: 429,
    message: "Cannot evict pod as it would violate the pod's disruption budget.",
    details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 3 healthy pods and has 3 currently' }] },
  })
  t.notOk((await c.client.get(pods, 'default', victim.metadata.name!)).metadata.deletionTimestamp, 'the pod was not touched')
  await c.client.patch(pdbs, 'default', 'web', { spec: { minAvailable: 2 } }, 'application/merge-patch+json')
  await eventually(async () => (await pdbStatus()).disruptionsAllowed === 1, { ...slow, what: 'the budget allows 1 again' })
})

t.test('kubectl drain keeps 2 pods ready, cordons the node and moves its pods', async (t) => {
  const counts = await Promise.all(names.map(async (n) => [n, (await podsOn(n)).length] as const))
  const [drained, before] = counts.reduce((x, y) => (y[1] > x[1] ? y : x))
  t.ok(before >= 1, `draining ${drained}, which runs ${before} web pods`)
  const dsPod = await eventually(async () => (await c.client.list(pods, 'default', { labelSelector: 'app=ds' })).items.find((p) => p.spec?.nodeName === drained), { ...slow, what: 'the DaemonSet pod on the drained node' })
  let minReady = Infinity
  let polling = true
  const poller = (async () => {
    while (polling) {
      minReady = Math.min(minReady, (await readyWeb()).length)
      await sleep(200)
    }
  })()
  const r = await c.kubectl(['drain', drained, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=100s'], { timeoutMs: 110_000 })
  await eventually(async () => (await readyWeb()).length === 3, { ...slow, what: '3 web pods ready again' })
  polling = false
  await poller
  t.ok(minReady >= 2, `never fewer than 2 ready web pods during the drain (minimum seen: ${minReady})`)
  t.match(r.stdout, new RegExp(`node/${drained} drained`))
  t.match(r.stdout + r.stderr, /evicting pod default\/web-/, 'pods went through pods/eviction')
  if (before >= 2) t.match(r.stderr, /will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget/, 'the second eviction waited for the budget')
  const node = await c.client.get(nodes, undefined, drained)
  t.equal(node.spec.unschedulable, true, 'cordoned')
  await eventually(async () => ((await c.client.get(nodes, undefined, drained)).spec.taints ?? []).some((x: any) => x.key === 'node.kubernetes.io/unschedulable' && x.effect === 'NoSchedule'), { ...slow, what: 'the unschedulable taint' })
  t.same(await podsOn(drained), [], 'no web pod left on the drained node')
  t.equal((await readyWeb()).filter((p) => p.spec.nodeName === drained).length, 0, 'the ready pods run elsewhere')
  const ds = await c.client.get(pods, 'default', dsPod.metadata.name!)
  t.notOk(ds.metadata.deletionTimestamp, 'the DaemonSet pod stays (--ignore-daemonsets)')

  await t.test('kubectl uncordon makes the node schedulable again', async (t) => {
    const u = await c.kubectl(['uncordon', drained])
    t.match(u.stdout, new RegExp(`node/${drained} uncordoned`))
    const n = await c.client.get(nodes, undefined, drained)
    t.notOk(n.spec.unschedulable, 'spec.unschedulable cleared')
    await eventually(async () => !((await c.client.get(nodes, undefined, drained)).spec.taints ?? []).some((x: any) => x.key === 'node.kubernetes.io/unschedulable'), { ...slow, what: 'the unschedulable taint removed' })
    t.pass('the unschedulable taint is gone')
  })
})

t.test('kubectl taint NoExecute evicts what does not tolerate it; tolerationSeconds delays it', async (t) => {
  const counts = await Promise.all(names.map(async (n) => [n, (await podsOn(n)).length] as const))
  const [tainted] = counts.reduce((x, y) => (y[1] > x[1] ? y : x))
  const victims = (await podsOn(tainted)).map((p) => p.metadata.uid)
  t.ok(victims.length >= 1, `tainting ${tainted}, which runs ${victims.length} web pods`)
  await c.client.create(pods, 'default', {
    metadata: { name: 'tolerant' },
    spec: {
      nodeName: tainted, terminationGracePeriodSeconds: 1,
      tolerations: [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoExecute', tolerationSeconds: 6 }],
      containers: [{ name: 'echo', image: 'skiff/echo:local' }],
    },
  } as KubeObject)
  await eventually(async () => (await c.client.get(pods, 'default', 'tolerant')).status?.phase === 'Running', { ...slow, what: 'the tolerant pod running' })
  const taintedAt = Date.now()
  await c.kubectl(['taint', 'node', tainted, 'k=v:NoExecute'])
  let seen: KubeObject | undefined
  let markedAt = 0
  const watcher = (async () => {
    for (;;) {
      const p = await c.client.get(pods, 'default', 'tolerant').catch(() => undefined)
      if (!p || p.metadata.deletionTimestamp) {
        markedAt = Date.now()
        seen = p
        return
      }
      await sleep(200)
    }
  })()
  await eventually(async () => {
    const all = await webPods()
    return all.filter((p) => victims.includes(p.metadata.uid)).length === 0 && all.filter(isReady).filter((p) => p.spec.nodeName !== tainted).length === 3
  }, { ...slow, what: 'the web pods of the tainted node replaced elsewhere' })
  t.pass('the web pods on the tainted node were evicted and replaced on other nodes')
  await eventually(async () => (await c.client.list(events, 'default')).items.some((e) => e.reason === 'TaintManagerEviction' && e.involvedObject?.name?.startsWith('web-') && e.message === `Marking for deletion Pod default/${e.involvedObject.name}`), { ...slow, what: 'TaintManagerEviction events' })
  t.pass('TaintManagerEviction events on the evicted pods')
  await watcher
  t.ok(markedAt - taintedAt >= 6_000, `the tolerant pod was evicted after its 6 s (${markedAt - taintedAt} ms)`)
  t.match(seen?.status?.conditions?.find((x: any) => x.type === 'DisruptionTarget'), { status: 'True', reason: 'DeletionByTaintManager' }, 'DisruptionTarget by the taint manager')
  await eventually(async () => !(await c.client.get(pods, 'default', 'tolerant').catch(() => undefined)), { ...slow, what: 'the tolerant pod gone' })
  await c.kubectl(['taint', 'node', tainted, 'k=v:NoExecute-'])
})

t.test('kubectl delete node: its pods are replaced elsewhere within a minute and its agent stops them', async (t) => {
  const counts = await Promise.all(names.map(async (n) => [n, (await podsOn(n)).length] as const))
  const [gone] = counts.reduce((x, y) => (y[1] > x[1] ? y : x))
  const orphans = (await podsOn(gone)).map((p) => p.metadata.uid!)
  t.ok(orphans.length >= 1, `deleting ${gone}, which runs ${orphans.length} web pods`)
  await c.kubectl(['delete', 'node', gone])
  await eventually(async () => {
    const all = await webPods()
    return all.every((p) => !orphans.includes(p.metadata.uid!)) && all.filter(isReady).filter((p) => p.spec.nodeName !== gone).length === 3
  }, { timeout: 60_000, interval: 500, what: 'the pods of the deleted node replaced within a minute' })
  t.pass('replaced elsewhere')
  await eventually(async () => {
    const left = await docker.listContainers({ filters: { label: [`${nodeLabels.node}=${gone}`] } })
    return left.every((x) => !orphans.includes(x.Labels[nodeLabels.podUid] ?? ''))
  }, { ...slow, what: 'the deleted node\'s agent stopped the containers of the deleted pods' })
  t.pass('the containers on the deleted node are stopped')
  // Its agent still runs and renews its Lease (this harness's node identities are not revoked with the Node).
  // Created after the Node is gone, the Lease has no owner, as the kubelet's: the garbage collector keeps it.
  const ownerless = await eventually(async () => {
    const l = await c.client.get(leases, 'kube-node-lease', gone).catch(() => undefined)
    return l && !(l.metadata.ownerReferences ?? []).length ? l : undefined
  }, { ...slow, what: `a Lease of ${gone} without an owner` })
  const renewed = await eventually(async () => {
    const l = await c.client.get(leases, 'kube-node-lease', gone).catch(() => undefined)
    return l && l.spec.renewTime !== ownerless.spec.renewTime ? l : undefined
  }, { timeout: 30_000, interval: 200, what: `the next renewal of ${gone}'s Lease` })
  t.equal(renewed.metadata.uid, ownerless.metadata.uid, 'the same Lease is renewed, not deleted by the garbage collector and created again')
})
