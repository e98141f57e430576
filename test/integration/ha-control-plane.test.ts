// Issue 11, HA control plane: a second `skiff server` joins the first with a
// server token and receives the cluster CA, the token store and the Secret
// encryption key over TLS (pinned by the token's CA hash), never through
// Redis; both serve one store; each publishes an identity Lease; an agent
// learns both servers from them and keeps working through the second when
// the first stops, without a restart; the controllers move to the second.

import t from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClient, ApiClientError } from '../../controlplane/client/client.ts'
import { leaseFreshByWallClock } from '../../controlplane/api/routing-applied.ts'
import { liveApiservers, identityLabel } from '../../controlplane/apiserver/identity.ts'
import { adminToken, startServer } from '../../controlplane/server.ts'
import { createToken } from '../../cli/token.ts'
import { parseKubeconfigText, renderKubeconfig } from '../../cli/kubeconfig.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { eventually } from '../../lib/net.ts'
import { silentLogger } from '../../lib/log.ts'
import { ensureImages } from '../../node/images/build.ts'
import { runKubectl, startTestCluster } from '../harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const secrets = lookupResource('', 'v1', 'secrets')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const nodes = lookupResource('', 'v1', 'nodes')!
const serviceAccounts = lookupResource('', 'v1', 'serviceaccounts')!
const pods = lookupResource('', 'v1', 'pods')!

const election = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 }
const nodeReady = (n: KubeObject) => (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

t.test('a second server joins, both serve, an agent fails over between them', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const [name] = testNodeNames(1, 'ha')
  const controllers = { clusterCIDR: net.clusterCIDR, election }
  const c = await startTestCluster(t, { identities: nodeIdentities([name!]), controllers })
  t.teardown(() => removeServiceProxyTable(name!).catch(() => undefined))
  const dirB = await mkdtemp(join(tmpdir(), 'skiff-cp-b-'))
  t.teardown(() => rm(dirB, { recursive: true, force: true }))

  await t.test('an agent token cannot join a server; a server token can', async (t) => {
    const agentToken = await createToken(c.client, { ttl: '10m' })
    await t.rejects(
      startServer({ stateDir: dirB, redis: { host: c.redis.host, port: c.redis.port, password: c.redis.password }, port: 0, logger: silentLogger(), controllers: false, join: { server: c.url, token: agentToken } }),
      /agent token; a server joins with one made by `skiff token create --server`/,
    )
    t.notOk(existsSync(join(dirB, 'pki', 'ca.crt')), 'nothing of the cluster was written')
  })

  const serverToken = await createToken(c.client, { ttl: '10m', server: true })
  const b = await startServer({ stateDir: dirB, redis: { host: c.redis.host, port: c.redis.port, password: c.redis.password }, port: 0, logger: silentLogger(), controllers, join: { server: c.url, token: serverToken } })
  t.teardown(() => b.stop())
  const bAdmin = new ApiClient({ server: b.url, caPem: b.caPem, token: adminToken(dirB) })
  t.teardown(() => bAdmin.close())

  await t.test('the joined server holds the same CA, tokens and encryption key, received over TLS', async (t) => {
    t.equal(b.caPem, c.caPem, 'the same cluster CA')
    for (const f of ['tokens.csv', 'encryption.key', join('pki', 'ca.key'), join('pki', 'sa.key')]) t.equal(await readFile(join(dirB, f), 'utf8'), await readFile(join(c.stateDir, f), 'utf8'), `${f} is the first server's`)
    // Sealed by one server, opened by the other: the key really is shared.
    await c.client.create(secrets, 'default', { metadata: { name: 'shared' }, stringData: { k: 'v' } } as KubeObject)
    const got = await bAdmin.get(secrets, 'default', 'shared')
    t.equal(Buffer.from(got.data.k, 'base64').toString(), 'v')
    // Issued by one server, accepted by the other: the service-account key is shared too.
    await c.client.create(serviceAccounts, 'default', { metadata: { name: 'ha' } } as KubeObject)
    const tr = await c.client.call('POST', '/api/v1/namespaces/default/serviceaccounts/ha/token', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} } })
    const viaB = new ApiClient({ server: b.url, caPem: b.caPem, token: tr.status.token })
    t.teardown(() => viaB.close())
    const who = await viaB.call('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })
    t.equal(who.status.userInfo.username, 'system:serviceaccount:default:ha')
  })

  await t.test('both publish identity Leases; the kubeconfig gets a context per server', async (t) => {
    const urls = await eventually(async () => {
      const l = await c.client.list(leases, 'kube-system', { labelSelector: `${identityLabel}=kube-apiserver` })
      const live = liveApiservers(l.items, (x) => leaseFreshByWallClock(x, Date.now()))
      return live.length === 2 ? live : undefined
    }, { timeout: 20_000, what: 'two identity Leases' })
    t.same(urls, [c.url, b.url].sort())
    const kc = renderKubeconfig({ server: c.url, caPem: c.caPem, token: c.token, servers: urls })
    t.match(kc, /--context skiff-2/, 'the comment names the other context')
    const parsed = parseKubeconfigText(kc)
    t.same([...parsed.servers!].sort(), urls, "Skiff's CLI reads every server from it")
    const kcFile = join(dirB, 'ha.kubeconfig')
    await writeFile(kcFile, kc, { mode: 0o600 })
    const r = await runKubectl(kcFile, await mkdtemp(join(dirB, 'kubectl-cache-')), ['get', 'ns', 'default', '--context', 'skiff-2', '-o', 'name'], { allowFail: true })
    t.equal(r.stdout.trim(), 'namespace/default', 'kubectl --context skiff-2 reaches the second server')
  })

  const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' } })
  await eventually(async () => node.agent && node.client.servers.length === 2, { timeout: 20_000, what: 'the agent learned both servers' })

  await t.test('the first server stops: the agent works through the second, the controllers move there', async (t) => {
    await eventually(async () => nodeReady(await bAdmin.get(nodes, undefined, name!)), { timeout: 60_000, what: 'node Ready' })
    const stoppedAt = Date.now()
    await c.server.stop()
    await t.rejects(c.client.get(nodes, undefined, name!), 'the first server is gone')
    // The node keeps renewing its Lease through the second server.
    const renewed = await eventually(async () => {
      const l = await bAdmin.get(leases, 'kube-node-lease', name!)
      return Date.parse(l.spec.renewTime) > stoppedAt + 1_000 ? l : undefined
    }, { timeout: 20_000, what: 'a heartbeat through the second server' })
    t.ok(renewed, 'heartbeat through the second server')
    // A pod created on the second server is scheduled (its controllers took the lead) and run by the agent.
    await bAdmin.create(pods, 'default', { metadata: { name: 'after-failover' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'skiff/echo:local' }] } } as KubeObject)
    const running = await eventually(async () => {
      const p = await bAdmin.get(pods, 'default', 'after-failover')
      return p.status?.phase === 'Running' ? p : undefined
    }, { timeout: 60_000, what: 'the pod running' })
    t.equal(running.spec.nodeName, name, 'scheduled and started through the second server')
    t.ok(nodeReady(await bAdmin.get(nodes, undefined, name!)), 'the node stayed Ready')
    await bAdmin.delete(pods, 'default', 'after-failover').catch((e) => {
      if (!(e instanceof ApiClientError && e.status === 404)) throw e
    })
  })
})
