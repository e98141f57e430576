// Fault scenario (issue 11): SIGTERM of an ingress node. What `skiff agent`
// does on SIGTERM is Agent.stop(), run here on one of two external ingress
// nodes (in-process agents) while clients keep sending:
//  - readiness fails at once;
//  - a 30 s request already in flight on that node completes;
//  - the node is done (workers exited) before its grace period (drainMs 40 s)
//    ends: as soon as nothing is in flight;
//  - 0 failed requests for a client that follows /readyz every 200 ms, as a
//    load balancer's health check does (the lame duck period keeps the ports
//    answering while such clients move away).

import t from 'tap'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { deployWeb, httpGet } from '../harness/web-app.ts'

const graceMs = 40_000

t.test('SIGTERM of an ingress node: readiness fails at once, a 30 s request completes, done before the grace period, 0 failures', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'is')
  const c = await startTestCluster(t, { identities: [...nodeIdentities(names), ingressIdentity('external')], controllers: { clusterCIDR: net.clusterCIDR } })
  const nodes: Awaited<ReturnType<typeof startTestNode>>[] = []
  for (const name of names) {
    nodes.push(await startTestNode(t, c, {
      name, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'none' }, dnsPort: 0,
      labels: { 'skiff.dev/ingress-pool': 'external' }, ingress: { workers: 1, drainMs: graceMs },
    }))
  }
  const [a, b] = nodes.map((n) => n.agent.network!.gateway) as [string, string]
  const statusPort = (i: number) => nodes[i]!.agent.ingress!.statusPort
  await deployWeb(c.client, { replicas: 2, ingressAnnotations: { 'skiff.dev/proxy-read-timeout': '60s' } })
  await eventually(async () => (await httpGet(a, 80)).status === 200 && (await httpGet(b, 80)).status === 200, { timeout: 60_000, what: 'both ingress nodes answer' })

  // A client that follows readiness, like a load balancer's health check every 200 ms.
  const healthy = new Map([[a, true], [b, true]])
  const health = setInterval(() => {
    for (const [ip, i] of [[a, 0], [b, 1]] as const) void httpGet(ip, statusPort(i), '/readyz', { hostHeader: 'status' }).then((r) => healthy.set(ip, r.status === 200))
  }, 200)
  t.teardown(() => clearInterval(health))
  const tally = { sent: 0, failed: 0, byNode: new Map<string, number>() }
  const inflight = new Set<Promise<void>>()
  let turn = 0
  const load = setInterval(() => {
    const live = [a, b].filter((ip) => healthy.get(ip))
    if (live.length === 0) return
    const ip = live[turn++ % live.length]!
    tally.sent++
    tally.byNode.set(ip, (tally.byNode.get(ip) ?? 0) + 1)
    const p = httpGet(ip, 80).then((r) => void (r.status !== 200 && tally.failed++))
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }, 10)
  t.teardown(() => clearInterval(load))

  await new Promise((r) => setTimeout(r, 1_000))
  const long = httpGet(a, 80, '/slow?ms=30000', { timeoutMs: 60_000 }).then((r) => r.status)
  const longStarted = Date.now()
  await new Promise((r) => setTimeout(r, 1_000))
  const stopStarted = Date.now()
  const stopping = nodes[0]!.agent.stop().then(() => Date.now())
  const readyz = (await httpGet(a, statusPort(0), '/readyz', { hostHeader: 'status' })).status
  const readyzMs = Date.now() - stopStarted
  const longStatus = await long
  const longMs = Date.now() - longStarted
  const stoppedAt = await stopping
  await new Promise((r) => setTimeout(r, 1_000))
  clearInterval(load)
  clearInterval(health)
  await Promise.all([...inflight])

  t.comment(`readyz ${readyz} ${readyzMs} ms after the stop began; the 30 s request: ${longStatus} after ${(longMs / 1000).toFixed(1)} s; stopped ${((stoppedAt - stopStarted) / 1000).toFixed(1)} s after SIGTERM (grace ${graceMs / 1000} s)`)
  t.comment(`load: ${tally.sent} sent (${tally.byNode.get(a) ?? 0} to the stopping node, ${tally.byNode.get(b) ?? 0} to the other), ${tally.failed} failed`)
  t.equal(readyz, 503, 'readiness fails at once')
  t.equal(longStatus, 200, 'the 30 s request in flight completes')
  t.ok(stoppedAt - stopStarted < graceMs, 'the node was done before its grace period ended (when nothing was left in flight)')
  t.ok(tally.sent > 1_000, 'the load ran')
  t.equal(tally.failed, 0, 'no request failed')
})
