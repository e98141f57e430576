// `kubectl logs` (tail, follow, previous, timestamps) and `kubectl exec`
// (exit codes, stdin) end to end: the real kubectl -> the real apiserver ->
// (mutual TLS) a KubeletServer on 127.0.0.1 with a serving certificate the
// apiserver issued -> containers on the real Docker Engine. The node agent is
// not involved: the test runs the pod's containers itself, labelled as the
// agent labels them, and writes the Node and Pod objects. The kubelet server
// takes TLS only, and only the apiserver's client certificate; the apiserver
// trusts only the kubelet certificate the cluster CA issued to that node.

import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { get as plainGet } from 'node:http'
import { request, type RequestOptions } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Dockerode from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { groups } from '../../controlplane/apiserver/authn.ts'
import { issueClientCert, loadOrCreateCA, selfSignedCert } from '../../certs/ca.ts'
import { silentLogger } from '../../lib/log.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { loadOrRequestKubeletCert } from '../../node/kubelet-cert.ts'
import { KubeletServer } from '../../node/kubelet-server.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { kubeletClientTLS } from '../harness/node.ts'

const run = promisify(execFile)
const nodes = lookupResource('', 'v1', 'nodes')!
const pods = lookupResource('', 'v1', 'pods')!
const docker = new Dockerode()
const fallbackImage = 'skiff/test-busybox:local'

/** skiff/echo:local when it is built and has sh and cat; else a busybox-static image made here. */
async function testImage(): Promise<string> {
  try {
    const { stdout } = await run('docker', ['run', '--rm', '--entrypoint', 'sh', 'skiff/echo:local', '-c', 'cat </dev/null && echo probe-ok'], { timeout: 30_000 })
    if (stdout.includes('probe-ok')) return 'skiff/echo:local'
  } catch {
    /* not built (yet): use the fallback */
  }
  const present = await docker.getImage(fallbackImage).inspect().then(() => true, () => false)
  if (present) return fallbackImage
  const dir = await mkdtemp(join(tmpdir(), 'skiff-busybox-'))
  try {
    await mkdir(join(dir, 'bin'))
    await mkdir(join(dir, 'tmp'))
    await copyFile('/bin/busybox', join(dir, 'bin', 'busybox')) // busybox-static (scripts/setup.sh installs it)
    for (const applet of ['sh', 'cat', 'echo', 'sleep', 'date', 'ls']) await symlink('busybox', join(dir, 'bin', applet))
    await run('sh', ['-c', `tar -C '${dir}' -c . | docker import -c 'ENV PATH=/bin' - ${fallbackImage}`], { timeout: 60_000 })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return fallbackImage
}

interface PodContainer {
  node: string
  pod: string
  container: string
  attempt: number
  script: string
}

async function runContainer(t: { teardown(fn: () => unknown): void }, image: string, c: PodContainer): Promise<Dockerode.Container> {
  const container = await docker.createContainer({
    name: `skiff-test-${c.node}-${c.pod}-${c.container}-${c.attempt}`,
    Image: image,
    Entrypoint: ['sh'],
    Cmd: ['-c', c.script],
    Labels: {
      'skiff.node': c.node,
      'skiff.pod.namespace': 'default',
      'skiff.pod.name': c.pod,
      'skiff.container.name': c.container,
      'skiff.container.role': 'app',
      'skiff.container.attempt': String(c.attempt),
    },
  })
  t.teardown(() => container.remove({ force: true }).catch(() => {}))
  await container.start()
  return container
}

/** GET on a kubelet server over TLS with these client options (the kubelet's certificate is always verified against `ca`). */
function kubeletGet(port: number, path: string, tls: RequestOptions): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, ...tls }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('kubectl logs and exec through the apiserver to a kubelet server', async (t) => {
  const id = randomBytes(3).toString('hex')
  const node = `logs-exec-${id}`
  const c = await startTestCluster(t, { identities: [{ user: 'system:node:other', groups: [groups.nodes] }, { user: `system:node:${node}`, groups: [groups.nodes] }] })
  const image = await testImage()

  // The serving certificate as an agent gets it: its own key, signed through /skiff/v1/kubelet-certificate.
  const kubeletDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-'))
  t.teardown(() => rm(kubeletDir, { recursive: true, force: true }))
  const tls = await loadOrRequestKubeletCert({ client: c.clientFor(c.tokens.get(`system:node:${node}`)!), stateDir: kubeletDir, nodeName: node, ipAddresses: ['127.0.0.1'] })
  const kubelet = new KubeletServer({ docker, nodeName: node, host: '127.0.0.1', port: 0, tls, logger: silentLogger() })
  const { port } = await kubelet.start()
  t.teardown(() => kubelet.stop())

  const makeNode = async (name: string, kubeletPort: number) => {
    await c.client.create(nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name } })
    const status = { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } } }
    await c.client.patch(nodes, undefined, name, status, 'application/merge-patch+json', 'status')
  }
  await makeNode(node, port)
  await makeNode(`down-${id}`, await freePort()) // registered, but no agent listens
  // Two kubelets the apiserver must not trust: a self-signed certificate, and node's genuine one on another node's endpoint.
  const selfSigned = new KubeletServer({ docker, nodeName: `fake-${id}`, host: '127.0.0.1', port: 0, tls: { ...selfSignedCert({ commonName: `system:node:fake-${id}`, ipAddresses: ['127.0.0.1'] }), caPem: c.caPem }, logger: silentLogger() })
  const borrowed = new KubeletServer({ docker, nodeName: `borrowed-${id}`, host: '127.0.0.1', port: 0, tls, logger: silentLogger() })
  t.teardown(() => selfSigned.stop())
  t.teardown(() => borrowed.stop())
  await makeNode(`fake-${id}`, (await selfSigned.start()).port)
  await makeNode(`borrowed-${id}`, (await borrowed.start()).port)
  const makePod = async (name: string, nodeName: string) => {
    await c.client.create(pods, 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName, containers: [{ name: 'app', image }] } })
    await c.client.patch(pods, 'default', name, { status: { phase: 'Running' } }, 'application/merge-patch+json', 'status')
  }
  await makePod('talker', node)
  await makePod('waiting', node)
  await makePod('lost', `ghost-${id}`)
  await makePod('stranded', `down-${id}`)
  await makePod('faked', `fake-${id}`)
  await makePod('borrowing', `borrowed-${id}`)

  // Attempt 0 ran and exited (the "previous" container); attempt 1 is current.
  const first = await runContainer(t, image, { node, pod: 'talker', container: 'app', attempt: 0, script: 'echo first attempt; exit 1' })
  await first.wait()
  const tickLoop = 'i=0; while [ $i -lt 300 ]; do echo tick $i; i=$((i+1)); sleep 1; done'
  await runContainer(t, image, { node, pod: 'talker', container: 'app', attempt: 1, script: `echo hello 1; echo hello 2; echo hello 3; ${tickLoop}` })

  await t.test('logs shows the lines', async (t) => {
    const out = await eventually(async () => {
      const r = await c.kubectl(['logs', 'talker'])
      return r.stdout.includes('hello 3') && r.stdout
    }, { timeout: 30_000, what: 'the container log' })
    t.match(out, /^hello 1\nhello 2\nhello 3\n/)
    t.notMatch(out, 'first attempt', 'the current container only')
  })

  await t.test('--tail=1 and --timestamps', async (t) => {
    const tail = await c.kubectl(['logs', 'talker', '--tail=1'])
    t.equal(tail.stdout.trimEnd().split('\n').length, 1)
    const stamped = await c.kubectl(['logs', 'talker', '--tail=1', '--timestamps'])
    t.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \S/)
  })

  await t.test('-f streams new lines', async (t) => {
    const cache = await mkdtemp(join(tmpdir(), 'skiff-kubectl-f-'))
    t.teardown(() => rm(cache, { recursive: true, force: true }))
    const child = spawn('kubectl', ['--kubeconfig', c.kubeconfig, '--cache-dir', cache, 'logs', '-f', 'talker', '--tail=1'], { env: { ...process.env, HOME: cache } })
    t.teardown(() => child.kill('SIGKILL'))
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const ticks = await eventually(() => {
      const lines = out.split('\n').filter((l) => l.startsWith('tick'))
      return lines.length >= 2 && lines
    }, { timeout: 30_000, what: `a second tick line from kubectl logs -f (stderr: ${err})` })
    t.not(ticks[0], ticks[1], 'a line written after the stream opened arrived')
    t.equal(child.exitCode, null, 'kubectl logs -f keeps streaming')
  })

  await t.test('--previous shows the container before the current one', async (t) => {
    const r = await c.kubectl(['logs', 'talker', '--previous'])
    t.equal(r.stdout, 'first attempt\n')
  })

  await t.test('exec returns output and the exit code', async (t) => {
    const r = await c.kubectl(['exec', 'talker', '--', 'sh', '-c', 'echo ok; echo oops >&2; exit 3'], { allowFail: true })
    t.equal(r.code, 3, r.stderr)
    t.equal(r.stdout, 'ok\n')
    t.match(r.stderr, 'oops')
    const ok = await c.kubectl(['exec', 'talker', '--', 'echo', 'fine'])
    t.equal(ok.stdout, 'fine\n')
  })

  await t.test('exec -i forwards stdin until EOF', async (t) => {
    const r = await c.kubectl(['exec', '-i', 'talker', '--', 'cat'], { stdin: 'ping\npong\n' })
    t.equal(r.stdout, 'ping\npong\n')
  })

  await t.test('the kubelet server takes TLS only, and only the apiserver\'s client certificate', async (t) => {
    const path = '/containerLogs/default/talker/app'
    const apiserver = await kubeletClientTLS(c)
    t.equal((await kubeletGet(port, path, apiserver)).code, 200, 'the apiserver\'s certificate')
    const none = await kubeletGet(port, path, { ca: c.caPem })
    t.equal(none.code, 401, 'no client certificate')
    t.match(none.body, 'needs a client certificate from the cluster CA')
    const own = await kubeletGet(port, path, { ca: c.caPem, cert: tls.certPem, key: tls.keyPem })
    t.equal(own.code, 401, 'the node\'s own serving certificate is no client certificate')
    const ca = await loadOrCreateCA(join(c.stateDir, 'pki'))
    const other = issueClientCert(ca, { commonName: 'system:node:other' })
    const wrongCN = await kubeletGet(port, path, { ca: c.caPem, cert: other.certPem, key: other.keyPem })
    t.equal(wrongCN.code, 403, 'a cluster client certificate with another CN')
    t.match(wrongCN.body, 'only the apiserver (CN skiff:apiserver-kubelet-client) may')
    const foreign = selfSignedCert({ commonName: 'skiff:apiserver-kubelet-client', dnsNames: ['foreign.invalid'] })
    t.equal((await kubeletGet(port, path, { ca: c.caPem, cert: foreign.certPem, key: foreign.keyPem })).code, 401, 'the right CN from another CA')
    t.equal((await kubeletGet(port, '/healthz', { ca: c.caPem })).code, 200, '/healthz is open')
    const plain = await new Promise<string>((resolve) => {
      const req = plainGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume()
        resolve(`HTTP ${res.statusCode}`)
      })
      req.on('error', (e) => resolve(`error: ${e.message}`))
    })
    t.match(plain, /^error: /, `plain HTTP gets no answer (${plain})`)
  })

  await t.test('the apiserver trusts only the certificate the cluster CA issued to that node', async (t) => {
    const faked = await c.kubectl(['logs', 'faked'], { allowFail: true })
    t.not(faked.code, 0)
    t.match(faked.stderr, `the node agent for node fake-${id} at 127.0.0.1:`)
    t.match(faked.stderr, 'is not trusted')
    const borrowing = await c.kubectl(['exec', 'borrowing', '--', 'true'], { allowFail: true })
    t.not(borrowing.code, 0)
    t.match(borrowing.stderr, `is for "system:node:${node}", not system:node:borrowed-${id}`)
  })

  await t.test('clear errors', async (t) => {
    const lost = await c.kubectl(['logs', 'lost'], { allowFail: true })
    t.not(lost.code, 0)
    t.match(lost.stderr, `ghost-${id}`)
    t.match(lost.stderr, 'not registered')
    const lostExec = await c.kubectl(['exec', 'lost', '--', 'true'], { allowFail: true })
    t.not(lostExec.code, 0)
    t.match(lostExec.stderr, 'not registered')
    const stranded = await c.kubectl(['logs', 'stranded'], { allowFail: true })
    t.not(stranded.code, 0)
    t.match(stranded.stderr, `the node agent for node down-${id} is not reachable`)
    const strandedExec = await c.kubectl(['exec', 'stranded', '--', 'true'], { allowFail: true })
    t.match(strandedExec.stderr, `the node agent for node down-${id} is not reachable`)
    const waiting = await c.kubectl(['exec', 'waiting', '--', 'true'], { allowFail: true })
    t.not(waiting.code, 0)
    t.match(waiting.stderr, 'waiting to start', 'the kubelet\'s reason survives kubectl\'s SPDY fallback')
    const other = c.clientFor(c.tokens.get('system:node:other')!)
    const denied = await other.request('GET', resourcePath(pods, 'default', 'talker', 'log'), { query: { container: 'app' } })
    t.equal(denied.status, 403, 'a node may not read pod logs')
  })
})
