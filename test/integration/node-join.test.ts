// Joining a node, against the real apiserver and Redis: join tokens made,
// listed and deleted with the real `skiff token` CLI; the agent's join
// (CA pinned by the token's hash, then POST /skiff/v1/join) gives credentials
// that authenticate as system:node:<name> (and skiff:ingress:<class> where the
// token allows the pool); every refusal says why and what to do; a bootstrap
// token opens nothing but the join; `kubectl delete node` revokes the node's
// credentials; an agent started with a revoked credential exits saying so.

import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildBootstrapTokenSecret, formatJoinToken, generateBootstrapToken, parseJoinToken } from '../../controlplane/api/bootstrap-token.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { ApiClient, ApiClientError } from '../../controlplane/client/client.ts'
import { caHashOf, loadOrCreateCA } from '../../certs/ca.ts'
import { eventually } from '../../lib/net.ts'
import { joinCluster, loadOrJoin } from '../../node/join.ts'
import { loadOrRequestKubeletCert } from '../../node/kubelet-cert.ts'
import { createToken as createTokenWith } from '../../cli/token.ts'
import { startTestCluster, type TestCluster } from '../harness/cluster.ts'

const skiff = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))
const nodes = lookupResource('', 'v1', 'nodes')!
const secrets = lookupResource('', 'v1', 'secrets')!
const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [skiff, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

/** The status code of a request with this bearer token (and body). */
function call(url: string, caPem: string, method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(new URL(path, url), {
      method, ca: caPem, agent: false,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => {
        let parsed: any = text
        try {
          parsed = JSON.parse(text)
        } catch {
          /* text */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p
    return 200
  } catch (e) {
    if (e instanceof ApiClientError) return e.status
    throw e
  }
}

t.test('node join', async (t) => {
  const c = await startTestCluster(t)
  const tmp = await mkdtemp(join(tmpdir(), 'skiff-join-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const clients: ApiClient[] = []
  t.teardown(() => clients.forEach((x) => x.close()))
  const clientWith = (token: string) => {
    const x = new ApiClient({ server: c.url, caPem: c.caPem, token })
    clients.push(x)
    return x
  }
  const cli = (args: string[]) => run(['--kubeconfig', c.kubeconfig, ...args])
  const cliCreate = async (args: string[] = []) => {
    const r = await cli(['token', 'create', ...args])
    t.equal(r.code, 0, `skiff token create ${args.join(' ')}: ${r.stderr}`)
    return r.stdout.trim()
  }
  // The CLI's own function, in this process: a child process per token would cost seconds.
  const createToken = (o: { ingressPools?: string } = {}) => createTokenWith(c.client, o)

  await t.test('/cacerts is open and answers the cluster CA', async (t) => {
    const r = await call(c.url, c.caPem, 'GET', '/cacerts', undefined)
    t.equal(r.status, 200)
    t.equal(r.body, c.caPem)
  })

  await t.test('skiff token create, list, delete', async (t) => {
    const token = await cliCreate(['--ttl', '2h', '--description', 'rack 3', '--ingress-pools', 'internal'])
    t.match(token, /^K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}$/, 'only the token on stdout')
    const parsed = parseJoinToken(token)
    t.equal(parsed.caHash, caHashOf(c.caPem), 'the hash of this cluster\'s CA')
    const list = await cli(['token', 'list'])
    t.equal(list.code, 0, list.stderr)
    const row = list.stdout.split('\n').find((l) => l.startsWith(parsed.id))
    t.match(row, /^[a-z0-9]{6}\s+2h\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+agent\s+rack 3\s+internal$/)
    t.match(list.stdout, /^TOKEN\s+TTL\s+EXPIRES\s+USAGES\s+DESCRIPTION\s+POOLS/)
    t.notMatch(list.stdout, parsed.secret, 'list never shows a secret')
    const forever = parseJoinToken(await cliCreate(['--ttl', '0']))
    t.match((await cli(['token', 'list'])).stdout, new RegExp(`${forever.id}\\s+<forever>\\s+<never>\\s+agent\\s+<none>\\s+<none>`))
    const del = await cli(['token', 'delete', token])
    t.equal(del.code, 0, del.stderr)
    t.equal(del.stdout.trim(), `bootstrap token "${parsed.id}" deleted`)
    t.equal((await cli(['token', 'delete', forever.id])).code, 0, 'by id')
    t.notMatch((await cli(['token', 'list'])).stdout, parsed.id)
    const again = await cli(['token', 'delete', parsed.id])
    t.equal(again.code, 1)
    t.match(again.stderr, `bootstrap token "${parsed.id}" not found`)
    const bad = await cli(['token', 'create', '--ttl', '1d'])
    t.equal(bad.code, 1)
    t.match(bad.stderr, 'not a duration')
  })

  await t.test('a join gives a credential that is system:node:<name>, and only that', async (t) => {
    const token = await createToken()
    const joined = await joinCluster({ server: c.url, token, nodeName: 'joiner-1', labels: { rack: 'r3' } })
    t.equal(joined.nodeName, 'joiner-1')
    t.equal(joined.caPem, c.caPem)
    t.notOk(joined.ingress, 'no pool, no ingress credential')
    const node = await c.client.get(nodes, undefined, 'joiner-1')
    t.equal(node.metadata.labels?.rack, 'r3', 'the Node exists with the labels')
    const me = clientWith(joined.token)
    t.equal(await status(me.get(nodes, undefined, 'joiner-1')), 200, 'at once, no wait for a watch')
    t.equal(await status(me.patch(nodes, undefined, 'joiner-1', { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json')), 200, 'writes its own Node')
    const denied = await me.list(secrets, 'kube-system').then(() => undefined, (e: ApiClientError) => e)
    t.equal(denied?.status, 403)
    t.match(denied?.message, 'User "system:node:joiner-1"')
    const stored = (await c.client.list(secrets, 'kube-system')).items.filter((s) => s.type === 'skiff.dev/credential')
    t.equal(stored.length, 1)
    t.notMatch(JSON.stringify(stored), joined.token.split('.')[1]!, 'the secret is stored only as a digest')
    t.same(stored[0]!.metadata.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.uid}`), [`Node/joiner-1/${node.metadata.uid}`])
    // Its kubelet certificate comes through its own identity.
    const tls = await loadOrRequestKubeletCert({ client: me, stateDir: tmp, nodeName: 'joiner-1', ipAddresses: ['10.0.0.5'] })
    t.match(tls.certPem, /BEGIN CERTIFICATE/)
    t.equal((await stat(join(tmp, 'kubelet.key'))).mode & 0o777, 0o600)
    t.equal((await call(c.url, c.caPem, 'POST', '/skiff/v1/kubelet-certificate', c.token, { publicKeyPem: 'x', ipAddresses: ['10.0.0.5'] })).status, 403, 'the admin is no node')
  })

  await t.test('refusals', async (t) => {
    const token = await createToken()
    const other = await loadOrCreateCA(join(tmp, 'other-ca'))
    const { id, secret } = parseJoinToken(token)
    const wrongCA = formatJoinToken(caHashOf(other.certPem), { id, secret })
    await t.rejects(joinCluster({ server: c.url, token: wrongCA, nodeName: 'joiner-x' }), new RegExp(`has hash ${caHashOf(c.caPem)}, but the token pins ${caHashOf(other.certPem)}`), 'another CA\'s hash')
    t.equal(await status(c.client.get(nodes, undefined, 'joiner-x')), 404, 'nothing was created')

    await t.rejects(joinCluster({ server: c.url, token, nodeName: 'joiner-1' }), /HTTP 409\): node joiner-1 already joined; delete it with kubectl delete node joiner-1 or choose another --node-name/)
    await t.rejects(joinCluster({ server: c.url, token, nodeName: 'Bad_Name' }), /HTTP 422\).*nodeName: Invalid value/)

    const expired = generateBootstrapToken()
    await c.client.create(secrets, 'kube-system', buildBootstrapTokenSecret({ ...expired, expiration: new Date(Date.now() - 60_000) }))
    await t.rejects(joinCluster({ server: c.url, token: formatJoinToken(caHashOf(c.caPem), expired), nodeName: 'joiner-x' }), new RegExp(`HTTP 401\\): bootstrap token "${expired.id}" expired at \\S+Z: get a new token with \`skiff token create\` on the server`))

    const gone = await createToken()
    t.equal((await cli(['token', 'delete', gone])).code, 0)
    await t.rejects(joinCluster({ server: c.url, token: gone, nodeName: 'joiner-x' }), /HTTP 401\): bootstrap token "\w+" is not valid in this cluster \(unknown, deleted, or a wrong secret\): get a new token with `skiff token create`/)
    await t.rejects(joinCluster({ server: c.url, token: formatJoinToken(caHashOf(c.caPem), { id, secret: 'x'.repeat(16) }), nodeName: 'joiner-x' }), /HTTP 401\).*is not valid in this cluster/, 'a wrong secret')
    await t.rejects(joinCluster({ server: c.url.replace('https:', 'http:'), token, nodeName: 'joiner-x' }), /must be an https:\/\/ URL/)
    t.equal(await status(c.client.get(nodes, undefined, 'joiner-x')), 404, 'no refused join left a Node')
  })

  await t.test('a bootstrap token opens the join and nothing else', async (t) => {
    const { id, secret } = parseJoinToken(await createToken())
    const bootstrap = `${id}.${secret}`
    t.equal((await call(c.url, c.caPem, 'GET', '/api/v1/nodes', bootstrap)).status, 401)
    t.equal((await call(c.url, c.caPem, 'GET', '/api/v1/namespaces/kube-system/secrets', bootstrap)).status, 401)
    t.equal((await call(c.url, c.caPem, 'POST', '/skiff/v1/kubelet-certificate', bootstrap, {})).status, 401)
    const admin = await call(c.url, c.caPem, 'POST', '/skiff/v1/join', c.token, { nodeName: 'joiner-x' })
    t.equal(admin.status, 401, 'the join takes no other token')
    t.match(admin.body.message, '/skiff/v1/join takes a bootstrap token')
    t.equal((await call(c.url, c.caPem, 'GET', '/api/v1/nodes', c.token)).status, 200, 'the static admin token works as before')
  })

  await t.test('ingress pools: refused unless the token allows the pool; allowed, an ingress credential with the class\'s role', async (t) => {
    const pool = { 'skiff.dev/ingress-pool': 'internal' }
    const plain = await createToken()
    await t.rejects(joinCluster({ server: c.url, token: plain, nodeName: 'edge-x', labels: pool }), /HTTP 403\): bootstrap token "\w+" may not join a node to ingress pool "internal" \(it allows no ingress pool\): create a token with `skiff token create --ingress-pools internal`/)
    t.equal(await status(c.client.get(nodes, undefined, 'edge-x')), 404)
    const token = await createToken({ ingressPools: 'internal,external' })
    const joined = await joinCluster({ server: c.url, token, nodeName: 'edge-1', labels: pool })
    t.same(joined.ingress && { className: joined.ingress.className }, { className: 'internal' })
    const ingress = clientWith(joined.ingress!.token)
    t.equal(await status(ingress.list(leases, 'kube-system')), 200, 'the ingress role lists presence Leases')
    const other = await ingress.create(leases, 'kube-system', { metadata: { name: 'ingress-external-edge-1' }, spec: {} }).then(() => undefined, (e: ApiClientError) => e)
    t.equal(other?.status, 403)
    t.match(other?.message, 'User "skiff:ingress:internal"')
    t.equal(await status(ingress.create(leases, 'kube-system', { metadata: { name: 'ingress-internal-edge-1' }, spec: {} })), 200, 'its own class\'s Lease')
    const node = clientWith(joined.token)
    t.equal(await status(node.create(leases, 'kube-system', { metadata: { name: 'ingress-internal-edge-2' }, spec: {} })), 403, 'the node credential is not the ingress one')
  })

  await t.test('kubectl delete node revokes the node\'s credentials', async (t) => {
    const token = await createToken({ ingressPools: 'internal' })
    const agentDir = join(tmp, 'agents', 'doomed-1')
    const id = await loadOrJoin({ agentDir, server: c.url, token, nodeName: 'doomed-1', labels: { 'skiff.dev/ingress-pool': 'internal' } })
    t.equal(id.joined, true)
    t.equal((await stat(join(agentDir, 'node.kubeconfig'))).mode & 0o777, 0o600)
    t.equal((await stat(join(agentDir, 'ingress.kubeconfig'))).mode & 0o777, 0o600)
    t.match(await readFile(join(agentDir, 'node.kubeconfig'), 'utf8'), c.url)
    const again = await loadOrJoin({ agentDir, server: 'https://192.0.2.1:1', token: 'not used', nodeName: 'doomed-1' })
    t.equal(again.joined, false, 'the second start reuses the files (nothing is sent anywhere)')
    t.equal(again.node.token, id.node.token)
    const node = clientWith(id.node.token)
    const ingress = clientWith(id.ingress!.token)
    t.equal(await status(node.get(nodes, undefined, 'doomed-1')), 200)
    await c.kubectl(['delete', 'node', 'doomed-1'])
    await eventually(async () => (await status(node.get(nodes, undefined, 'doomed-1'))) === 401, { timeout: 10_000, what: 'the node credential to be refused' })
    await eventually(async () => (await status(ingress.list(leases, 'kube-system'))) === 401, { timeout: 10_000, what: 'the ingress credential to be refused' })
    const left = (await c.client.list(secrets, 'kube-system')).items.filter((s) => s.metadata.annotations?.['join.skiff.dev/node'] === 'doomed-1')
    t.same(left, [], 'the credential Secrets were collected with the Node')

    // The agent, started again with the revoked credential, stops and says how to rejoin.
    const r = await run(['--state-dir', tmp, 'agent', '--node-name', 'doomed-1', '--service-proxy', 'none'])
    t.equal(r.code, 1, r.stderr)
    t.match(r.stderr, `the apiserver refused node doomed-1's credential (401): the node was deleted (kubectl delete node doomed-1) or its credential revoked. To join again, remove ${join(agentDir, 'node.kubeconfig')}`)
  })

  await t.test('the name is free again once the node is gone', async (t) => {
    const joined = await joinCluster({ server: c.url, token: await createToken(), nodeName: 'doomed-1' })
    t.equal(await status(clientWith(joined.token).get(nodes, undefined, 'doomed-1')), 200)
  })
})

t.test('the controller manager deletes expired bootstrap tokens', async (t) => {
  const c: TestCluster = await startTestCluster(t, { controllers: { tokenCleanupPeriodMs: 200 } })
  const fresh = generateBootstrapToken()
  const stale = generateBootstrapToken()
  await c.client.create(secrets, 'kube-system', buildBootstrapTokenSecret({ ...fresh, expiration: new Date(Date.now() + 3600_000) }))
  await c.client.create(secrets, 'kube-system', buildBootstrapTokenSecret({ ...stale, expiration: new Date(Date.now() - 1000) }))
  await eventually(async () => (await status(c.client.get(secrets, 'kube-system', `bootstrap-token-${stale.id}`))) === 404, { timeout: 15_000, what: 'the expired token to be deleted' })
  t.equal(await status(c.client.get(secrets, 'kube-system', `bootstrap-token-${fresh.id}`)), 200, 'a valid one stays')
})
