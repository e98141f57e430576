// Fault scenario (issue 11): a rolling update of a 6-replica backend under
// 300 requests/s through the ingress and a ClusterIP, without any preStop
// hook: 0 5xx, 0 resets. What makes it hold is the endpoint withdrawal wait
// (node/endpoint-withdrawal.ts): a terminating pod gets SIGTERM only once
// every serving node routes without it. The echo server closes its listener
// and idle connections at once on SIGTERM, as most apps do, so any request
// still routed to it after that would fail.
//
// Load (open loop, every 10 ms): one GET and one POST through the ingress
// (the ingress retries a GET once on a pre-response close, never a POST), and
// one GET to the ClusterIP on a fresh connection (no retry anywhere).

import t from 'tap'
import { request } from 'node:http'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { deployWeb, deploysInfo, isReady, podsInfo, webTemplate } from '../harness/web-app.ts'

const pods = podsInfo
const deploys = deploysInfo
const slices = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!

const replicas = 6
const ready = isReady

interface Tally {
  sent: number
  ok: number
  status: Map<number, number>
  errors: Map<string, number>
}

function send(o: { host: string; port: number; method: string; hostHeader?: string; keepAlive: boolean }, tally: Tally): Promise<void> {
  tally.sent++
  return new Promise((resolve) => {
    const body = o.method === 'POST' ? 'x'.repeat(64) : undefined
    const req = request({
      host: o.host, port: o.port, method: o.method, path: '/', timeout: 10_000, agent: o.keepAlive ? undefined : false,
      headers: { ...(o.hostHeader ? { host: o.hostHeader } : {}), ...(body ? { 'content-length': String(body.length) } : {}), ...(o.keepAlive ? {} : { connection: 'close' }) },
    }, (res) => {
      res.resume()
      res.on('end', () => {
        const s = res.statusCode ?? 0
        if (s >= 200 && s < 300) tally.ok++
        else tally.status.set(s, (tally.status.get(s) ?? 0) + 1)
        resolve()
      })
      res.on('error', (e) => (count(tally, e), resolve()))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e) => (count(tally, e), resolve()))
    req.end(body)
  })
}

function count(tally: Tally, e: Error): void {
  const code = (e as NodeJS.ErrnoException).code ?? e.message
  tally.errors.set(code, (tally.errors.get(code) ?? 0) + 1)
}

const tally = (): Tally => ({ sent: 0, ok: 0, status: new Map(), errors: new Map() })
const describe = (x: Tally) => `${x.sent} sent, ${x.ok} ok, statuses ${JSON.stringify(Object.fromEntries(x.status))}, errors ${JSON.stringify(Object.fromEntries(x.errors))}`

t.test('rolling update of 6 replicas under 300 requests/s, no preStop: 0 5xx, 0 resets', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'ru')
  const c = await startTestCluster(t, { identities: [...nodeIdentities(names), ingressIdentity('external')], controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(async () => {
    for (const n of names) await removeServiceProxyTable(n).catch(() => undefined)
  })
  const nodes = []
  for (const [i, name] of names.entries()) {
    nodes.push(await startTestNode(t, c, {
      name, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' }, dnsPort: 0,
      // SKIFF_FAULT_NO_WITHDRAWAL=1 turns the wait off: the comparison in bench/README.md (expected to fail).
      ...(process.env.SKIFF_FAULT_NO_WITHDRAWAL === '1' ? { endpointWithdrawalTimeoutMs: 0 } : {}),
      ...(i === 0 ? { labels: { 'skiff.dev/ingress-pool': 'external' }, ingress: { drainMs: 5_000, workers: 1 } } : {}),
    }))
  }
  const ingressIP = nodes[0]!.agent.network!.gateway

  const template = (version: string) => webTemplate({ graceSeconds: 5, version })
  const clusterIP = await deployWeb(c.client, { replicas, graceSeconds: 5, version: '1' })
  const webPods = async () => (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items
  const readyEndpoints = async () => (await c.client.list(slices, 'default', { labelSelector: 'kubernetes.io/service-name=web' })).items.flatMap((s) => s.endpoints ?? []).filter((e: any) => e.conditions?.ready !== false).length
  await eventually(async () => (await readyEndpoints()) === replicas, { timeout: 60_000, what: `${replicas} ready endpoints` })
  // Both paths answer before the load starts.
  await eventually(async () => {
    const probe = tally()
    await send({ host: ingressIP, port: 80, method: 'GET', hostHeader: 'web.test', keepAlive: false }, probe)
    await send({ host: clusterIP, port: 80, method: 'GET', keepAlive: false }, probe)
    return probe.ok === 2
  }, { timeout: 60_000, what: 'ingress and ClusterIP answer' })

  const viaIngressGet = tally()
  const viaIngressPost = tally()
  const viaClusterIP = tally()
  const inflight = new Set<Promise<void>>()
  const fire = (p: Promise<void>) => {
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }
  // Open loop at 100 rounds/s: a late timer catches up, so the rate holds on a busy machine.
  const loadStart = Date.now()
  let rounds = 0
  const timer = setInterval(() => {
    for (const due = Math.floor((Date.now() - loadStart) / 10); rounds < due; rounds++) {
      fire(send({ host: ingressIP, port: 80, method: 'GET', hostHeader: 'web.test', keepAlive: true }, viaIngressGet))
      fire(send({ host: ingressIP, port: 80, method: 'POST', hostHeader: 'web.test', keepAlive: true }, viaIngressPost))
      fire(send({ host: clusterIP, port: 80, method: 'GET', keepAlive: false }, viaClusterIP))
    }
  }, 5)
  t.teardown(() => clearInterval(timer))

  const before = new Set((await webPods()).map((p) => p.metadata.uid))
  const started = Date.now()
  await new Promise((r) => setTimeout(r, 2_000))
  await c.client.patch(deploys, 'default', 'web', { spec: { template: template('2') } }, 'application/merge-patch+json')
  await eventually(async () => {
    const all = await webPods()
    return all.length === replicas && all.every((p) => !before.has(p.metadata.uid) && ready(p)) && (await readyEndpoints()) === replicas
  }, { timeout: 240_000, interval: 500, what: 'the rollout done: 6 new pods ready, every old one gone' })
  await new Promise((r) => setTimeout(r, 2_000))
  clearInterval(timer)
  await Promise.all([...inflight])
  const seconds = (Date.now() - started) / 1000

  const all = [viaIngressGet, viaIngressPost, viaClusterIP]
  const sent = all.reduce((n, x) => n + x.sent, 0)
  t.comment(`rolling update: ${sent} requests in ${seconds.toFixed(1)} s (${(sent / seconds).toFixed(0)}/s)`)
  t.comment(`ingress GET: ${describe(viaIngressGet)}`)
  t.comment(`ingress POST: ${describe(viaIngressPost)}`)
  t.comment(`ClusterIP GET (fresh connections): ${describe(viaClusterIP)}`)
  // Not vacuous: the load held its 300/s over the whole window, which spans the rollout (a fixed
  // count failed on a quiet machine, where the rollout took 9.7 s and 2,901 requests were sent).
  t.ok(sent >= 0.95 * 300 * seconds && seconds > 4, `the load ran at 300/s throughout (${sent} requests in ${seconds.toFixed(1)} s)`)
  for (const [what, x] of [['ingress GET', viaIngressGet], ['ingress POST', viaIngressPost], ['ClusterIP GET', viaClusterIP]] as const) {
    t.equal(x.ok, x.sent, `${what}: every request answered 2xx (${describe(x)})`)
  }
})
