// Fault scenario (issue 11): `kill -9` of a backend container under load
// through the ingress: idempotent requests that were on it, or that go to it
// before its endpoint is withdrawn, are retried on another endpoint (0
// failed GETs), and nothing hangs past the proxy timeout (the Ingress sets
// skiff.dev/proxy-read-timeout: 3s). Requests to a slow path run on the
// killed pod too, so a request cut mid-answer is part of the mix.

import t from 'tap'
import Docker from 'dockerode'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { ingressIdentity, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'
import { deployWeb, httpGet, isReady, podsInfo } from '../harness/web-app.ts'

const pods = podsInfo
const readTimeoutS = 3
const ready = isReady

t.test('kill -9 of a backend container: GETs retried elsewhere, nothing hangs past the proxy timeout', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const [name] = testNodeNames(1, 'bk')
  const c = await startTestCluster(t, { identities: [...nodeIdentities([name!]), ingressIdentity('external')], controllers: { clusterCIDR: net.clusterCIDR } })
  t.teardown(() => removeServiceProxyTable(name!).catch(() => undefined))
  const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' }, dnsPort: 0, labels: { 'skiff.dev/ingress-pool': 'external' }, ingress: { workers: 1 } })
  const ip = node.agent.network!.gateway
  await deployWeb(c.client, { replicas: 3, ingressAnnotations: { 'skiff.dev/proxy-read-timeout': `${readTimeoutS}s` } })
  await eventually(async () => (await httpGet(ip, 80, '/')).status === 200, { timeout: 60_000, what: 'the ingress answers' })

  const results: Array<{ status: number; ms: number; path: string }> = []
  const inflight = new Set<Promise<void>>()
  const fire = (path: string) => {
    const p = httpGet(ip, 80, path, { keepAlive: true, timeoutMs: 30_000 }).then((r) => void results.push({ status: r.status, ms: r.ms, path }))
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }
  let rounds = 0
  const timer = setInterval(() => {
    fire('/')
    // A slow answer (1.5 s, under the read timeout) every 100 ms: some are on the victim when it dies.
    if (rounds++ % 10 === 0) fire('/slow?ms=1500')
  }, 10)
  t.teardown(() => clearInterval(timer))
  await new Promise((r) => setTimeout(r, 2_000))
  const victim = (await c.client.list(pods, 'default', { labelSelector: 'app=web' })).items.find(ready)!
  const id = String(victim.status.containerStatuses[0].containerID).replace(/^docker:\/\//, '')
  await new Docker().getContainer(id).kill({ signal: 'SIGKILL' })
  t.comment(`killed ${victim.metadata.name} (${victim.status.podIP}) with SIGKILL`)
  await new Promise((r) => setTimeout(r, 8_000))
  clearInterval(timer)
  await Promise.all([...inflight])

  const gets = results.filter((r) => r.path === '/')
  const slow = results.filter((r) => r.path !== '/')
  const bad = (rs: typeof results) => rs.filter((r) => r.status !== 200)
  const maxMs = Math.max(...results.map((r) => r.ms))
  t.comment(`${gets.length} GETs (${bad(gets).length} not 200), ${slow.length} slow GETs (${bad(slow).length} not 200), slowest answer ${maxMs} ms`)
  t.ok(gets.length > 500, 'the load ran')
  t.same(bad(gets).map((r) => r.status), [], 'every GET answered 200 (a refused or cut connection was retried on another endpoint)')
  // A slow GET cut mid-wait is retried too: it reached no answer, so it is still unanswered and idempotent.
  t.same(bad(slow).map((r) => r.status), [], 'every slow GET answered 200')
  t.ok(maxMs < (readTimeoutS + 1.5 + 2) * 1000, `no request hung past the proxy timeout (slowest ${maxMs} ms; a slow answer takes 1.5 s, and may run twice)`)
  const after = await c.client.get(pods, 'default', victim.metadata.name!)
  t.ok((after.status.containerStatuses[0].restartCount ?? 0) >= 1, 'the kubelet restarted the killed container')
})
