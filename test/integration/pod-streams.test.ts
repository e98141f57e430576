// The streaming pod subresources end to end: exec over every channel
// protocol, attach (with and without a TTY), resize, `kubectl cp` both ways,
// port-forward (kubectl 1.32's SPDY-over-WebSocket tunnel and the v4
// WebSocket protocol of client libraries), and @kubernetes/client-node's
// exec, port-forward, followed log and informer. The real kubectl and
// client library -> the real apiserver -> (mutual TLS) a KubeletServer on
// 127.0.0.1 -> containers on the real Docker Engine. As in
// pod-logs-exec.test.ts no agent runs: the test starts the pod's sandbox and
// containers itself, labelled as the agent labels them, and writes the Node
// and Pod. Heavy (Docker): run under the heavy lock.

import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import WebSocket from 'ws'
import { CoreV1Api, Exec, KubeConfig, Log, makeInformer, PortForward, type V1ConfigMap, type V1Status } from '@kubernetes/client-node'
import { PassThrough, Readable, Writable } from 'node:stream'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { groups } from '../../controlplane/apiserver/authn.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { loadOrRequestKubeletCert } from '../../node/kubelet-cert.ts'
import { KubeletServer } from '../../node/kubelet-server.ts'
import { startTestCluster } from '../harness/cluster.ts'

const nodes = lookupResource('', 'v1', 'nodes')!
const pods = lookupResource('', 'v1', 'pods')!
const services = lookupResource('', 'v1', 'services')!
const deployments = lookupResource('apps', 'v1', 'deployments')!
const docker = new Dockerode()

// In the pod: an HTTP server on 127.0.0.1:80 only (reachable through the pod's
// network namespace, not its IP): GET /big?n=N answers N bytes, POST echoes the body.
const httpServer = `
require('http').createServer((req, res) => {
  if (req.method === 'POST') { req.pipe(res); return }
  const n = Number(new URL(req.url, 'http://x').searchParams.get('n') || 10)
  const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = 97 + (i % 26)
  res.end(b)
}).listen(80, '127.0.0.1', () => console.log('listening'))
setInterval(() => {}, 1 << 30)
`

/** A shell command that prints the terminal size once it is rows x cols (the resize arrived), or after 5 s whatever it is. */
const untilSize = (rows: number, cols: number) =>
  `i=0; s=$(busybox stty size 2>/dev/null); while [ "$s" != "${rows} ${cols}" ] && [ $i -lt 25 ]; do sleep 0.2; i=$((i+1)); s=$(busybox stty size 2>/dev/null); done; echo "$s"`

type Tap = { teardown(fn: () => unknown): void }
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

t.test('pod streams through the apiserver to a kubelet server', async (t) => {
  const id = randomBytes(3).toString('hex')
  const node = `streams-${id}`
  const c = await startTestCluster(t, { identities: [{ user: `system:node:${node}`, groups: [groups.nodes] }] })
  await ensureImages({ only: ['pause', 'echo'], progress: null })

  const kubeletDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-'))
  t.teardown(() => rm(kubeletDir, { recursive: true, force: true }))
  const tls = await loadOrRequestKubeletCert({ client: c.clientFor(c.tokens.get(`system:node:${node}`)!), stateDir: kubeletDir, nodeName: node, ipAddresses: ['127.0.0.1'] })
  const kubelet = new KubeletServer({ docker, nodeName: node, host: '127.0.0.1', port: 0, tls, logger: process.env.SKIFF_TEST_LOG ? createLogger({ level: 'debug', destination: 2 }) : silentLogger() })
  const { port } = await kubelet.start()
  t.teardown(() => kubelet.stop())
  await c.client.create(nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: node } })
  const status = { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: port } } } }
  await c.client.patch(nodes, undefined, node, status, 'application/merge-patch+json', 'status')

  // Pod "box": a sandbox owning the network namespace, and app containers in it, labelled as the agent labels them.
  const containers = [
    { name: 'app', image: 'skiff/echo:local', ports: [{ containerPort: 80 }] },
    { name: 'tty', image: 'skiff/echo:local', stdin: true, tty: true },
    { name: 'plain', image: 'skiff/echo:local', stdin: true, stdinOnce: true },
    { name: 'ticker', image: 'skiff/echo:local' },
  ]
  await c.client.create(pods, 'default', {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'box', labels: { app: 'box' }, annotations: { 'kubectl.kubernetes.io/default-container': 'app' } },
    spec: { nodeName: node, containers },
  })
  await c.client.patch(pods, 'default', 'box', {
    status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: containers.map((x) => ({ name: x.name, ready: true, image: x.image, imageID: '', restartCount: 0, started: true, state: { running: {} } })) },
  }, 'application/merge-patch+json', 'status')
  const started: Dockerode.Container[] = []
  t.teardown(() => Promise.all(started.map((x) => x.remove({ force: true }).catch(() => {}))))
  const run = async (name: string, role: string, opts: Partial<Dockerode.ContainerCreateOptions>) => {
    const container = await docker.createContainer({
      name: `skiff-test-${node}-box-${name}`,
      Labels: { 'skiff.node': node, 'skiff.pod.namespace': 'default', 'skiff.pod.name': 'box', 'skiff.container.name': name, 'skiff.container.role': role, 'skiff.container.attempt': '0' },
      ...opts,
    })
    started.push(container)
    await container.start()
    return container
  }
  const sandbox = await run('POD', 'sandbox', { Image: 'skiff/pause:local', HostConfig: { NetworkMode: 'none' } })
  const inPod = { NetworkMode: `container:${sandbox.id}` }
  await run('app', 'app', { Image: 'skiff/echo:local', Entrypoint: ['node', '-e', httpServer], HostConfig: inPod })
  await run('tty', 'app', { Image: 'skiff/echo:local', Entrypoint: ['sh'], Tty: true, OpenStdin: true, HostConfig: inPod })
  await run('plain', 'app', { Image: 'skiff/echo:local', Entrypoint: ['sh', '-c', 'while read l; do echo "got $l"; done; echo bye'], OpenStdin: true, StdinOnce: true, HostConfig: inPod })

  /** One exec over a raw WebSocket to the apiserver, offering `protocols`; collects every channel until the socket closes. */
  const wsExec = (path: string, protocols: string[], input: Array<Buffer | string> = [], delayMs = 0) =>
    new Promise<{ protocol: string; channels: Map<number, Buffer>; text: boolean[] }>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${new URL(c.url).port}${path}`, protocols, { ca: c.caPem, headers: { Authorization: `Bearer ${c.token}` } })
      const channels = new Map<number, Buffer>()
      const text: boolean[] = []
      const timer = setTimeout(() => ws.terminate(), 20_000)
      ws.on('open', () => setTimeout(() => input.forEach((m) => ws.send(m)), delayMs))
      ws.on('message', (data: Buffer, isBinary) => {
        text.push(!isBinary)
        const [ch, payload] = isBinary ? [data[0]!, data.subarray(1)] : [data[0]! - 48, Buffer.from(data.subarray(1).toString(), 'base64')]
        channels.set(ch, Buffer.concat([channels.get(ch) ?? Buffer.alloc(0), payload]))
      })
      ws.on('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (d) => (body += d)).on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${body}`)))
      })
      ws.on('error', reject)
      ws.on('close', () => {
        clearTimeout(timer)
        resolve({ protocol: ws.protocol, channels, text })
      })
    })
  const execPath = (cmd: string, q = 'stdout=true&stderr=true') => `/api/v1/namespaces/default/pods/box/exec?container=app&${q}&command=sh&command=-c&command=${encodeURIComponent(cmd)}`
  const str = (b: Buffer | undefined) => (b ?? Buffer.alloc(0)).toString()

  await t.test('exec over every channel protocol, picked in the client\'s order', async (t) => {
    const cmd = 'echo out; echo err >&2; exit 3'
    const jsonFailure = /^\{"metadata":\{\},"status":"Failure","message":"command terminated with non-zero exit code: .*exit code 3","reason":"NonZeroExitCode","details":\{"causes":\[\{"reason":"ExitCode","message":"3"\}\]\}\}$/
    const textFailure = /^command terminated with non-zero exit code: error executing command \[sh -c .*\], exit code 3$/
    for (const [offer, want, status] of [
      [['v5.channel.k8s.io'], 'v5.channel.k8s.io', jsonFailure],
      [['v4.channel.k8s.io', 'v5.channel.k8s.io'], 'v4.channel.k8s.io', jsonFailure],
      [['v4.base64.channel.k8s.io'], 'v4.base64.channel.k8s.io', jsonFailure],
      [['v3.channel.k8s.io', 'v2.channel.k8s.io'], 'v3.channel.k8s.io', textFailure],
      [['v2.channel.k8s.io'], 'v2.channel.k8s.io', textFailure],
      [['x.unknown.k8s.io', 'channel.k8s.io'], 'channel.k8s.io', textFailure],
      [['base64.channel.k8s.io'], 'base64.channel.k8s.io', textFailure],
    ] as const) {
      const r = await wsExec(execPath(cmd), [...offer])
      t.equal(r.protocol, want, `${offer.join(',')} negotiates ${want}`)
      t.equal(str(r.channels.get(1)), 'out\n', `${want}: stdout`)
      t.equal(str(r.channels.get(2)), 'err\n', `${want}: stderr`)
      t.match(str(r.channels.get(3)), status, `${want}: status channel`)
      t.equal(r.text.every((x) => x === want.includes('base64')), true, `${want}: ${want.includes('base64') ? 'text' : 'binary'} messages`)
    }
    const ok = await wsExec(execPath('true'), ['v4.channel.k8s.io'])
    t.equal(str(ok.channels.get(3)), '{"metadata":{},"status":"Success"}', 'v4: success is a Status too')
    const okV1 = await wsExec(execPath('true'), ['channel.k8s.io'])
    t.equal(okV1.channels.get(3), undefined, 'v1: nothing on the status channel for success')
    const none = await wsExec(execPath('echo plain'), [])
    t.equal(none.protocol, '', 'no subprotocol offered: binary channel framing, as the kubelet')
    t.equal(str(none.channels.get(1)), 'plain\n')
    await t.rejects(wsExec(execPath('true'), ['v9.channel.k8s.io']), /HTTP 400: .*subprotocol/, 'an unknown protocol is refused before the upgrade')
  })

  await t.test('stdin: v5 closes it with [255, 0]; base64 carries it as text', async (t) => {
    const v5 = await wsExec(execPath('cat; echo done', 'stdin=true&stdout=true&stderr=true'), ['v5.channel.k8s.io'], [Buffer.from([0, ...Buffer.from('abc\n')]), Buffer.from([255, 0])])
    t.equal(str(v5.channels.get(1)), 'abc\ndone\n')
    t.equal(str(v5.channels.get(3)), '{"metadata":{},"status":"Success"}')
    const b64 = await wsExec(execPath('head -c 4; echo', 'stdin=true&stdout=true&stderr=true'), ['v4.base64.channel.k8s.io'], [`0${Buffer.from('wxyz').toString('base64')}`])
    t.equal(str(b64.channels.get(1)), 'wxyz\n')
  })

  await t.test('resize with a TTY (from v3 on; v2 has no resize channel)', async (t) => {
    const resize = Buffer.from([4, ...Buffer.from('{"Width":123,"Height":45}')])
    const v5 = await wsExec(execPath(untilSize(45, 123), 'stdout=true&tty=true'), ['v5.channel.k8s.io'], [resize])
    t.equal(str(v5.channels.get(1)).trim(), '45 123')
    const v3 = await wsExec(execPath(untilSize(45, 123), 'stdout=true&tty=true'), ['v3.channel.k8s.io'], [resize])
    t.equal(str(v3.channels.get(1)).trim(), '45 123')
    const v2 = await wsExec(execPath('sleep 1; busybox stty size', 'stdout=true&tty=true'), ['v2.channel.k8s.io'], [resize])
    t.not(str(v2.channels.get(1)).trim(), '45 123', 'v2 ignores channel 4')
  })

  await t.test('kubectl exec -it resizes; kubectl exec exit codes', async (t) => {
    const r = await c.kubectl(['exec', 'box', '--', 'sh', '-c', 'exit 7'], { allowFail: true })
    t.equal(r.code, 7)
    const tty = await viaPty(c, ['exec', '-it', 'box', '-c', 'app', '--', 'sh', '-c', untilSize(33, 77)], '', 77, 33)
    t.match(tty.out, /33 77/, 'the terminal size kubectl sent')
  })

  await t.test('kubectl exec over SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): exit code, stdin until EOF, resize', async (t) => {
    const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }
    const r = await kubectlWith(c, ['exec', 'box', '--', 'sh', '-c', 'echo over-spdy; echo e >&2; exit 5'], env)
    t.equal(r.code, 5, r.err)
    t.equal(r.out, 'over-spdy\n')
    t.match(r.err, /^e\n/, 'stderr apart')
    const cat = await kubectlWith(c, ['exec', '-i', 'box', '--', 'cat'], env, 'line one\nline two\n')
    t.equal(cat.out, 'line one\nline two\n', 'stdin EOF is the stdin stream\'s FIN')
    const tty = await viaPty(c, ['exec', '-it', 'box', '-c', 'app', '--', 'sh', '-c', untilSize(22, 66)], '', 66, 22, 0, env)
    t.match(tty.out, /22 66/, 'the resize stream')
  })

  await t.test('kubectl attach -it to a container started with stdin and tty', async (t) => {
    const r = await viaPty(c, ['attach', '-it', 'box', '-c', 'tty'], 'echo hi-$((40+2))\nexit\n', 90, 20, 1000)
    t.match(r.out, /hi-42/, r.out)
    t.equal(r.code, 0, r.out)
  })

  await t.test('kubectl attach -i without a tty: stdin until EOF, output until the container exits', async (t) => {
    const r = await c.kubectl(['attach', '-i', 'box', '-c', 'plain'], { stdin: 'one\ntwo\n', timeoutMs: 30_000 })
    t.equal(r.stdout, 'got one\ngot two\nbye\n')
    t.equal(r.code, 0)
  })

  await t.test('kubectl cp both ways (tar over exec)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-cp-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const body = randomBytes(200_000)
    await writeFile(join(dir, 'up.bin'), body)
    await c.kubectl(['cp', join(dir, 'up.bin'), 'default/box:/tmp/up.bin', '-c', 'app'])
    const inPodSum = await c.kubectl(['exec', 'box', '-c', 'app', '--', 'sha256sum', '/tmp/up.bin'])
    t.equal(inPodSum.stdout.split(' ')[0], sha(body), 'uploaded intact')
    await c.kubectl(['exec', 'box', '-c', 'app', '--', 'sh', '-c', 'mkdir -p /tmp/d && echo made in the pod > /tmp/d/note.txt'])
    await c.kubectl(['cp', 'default/box:/tmp/d/note.txt', join(dir, 'note.txt'), '-c', 'app'])
    t.equal(await readFile(join(dir, 'note.txt'), 'utf8'), 'made in the pod\n')
    await c.kubectl(['cp', 'default/box:/tmp/up.bin', join(dir, 'down.bin'), '-c', 'app'])
    t.equal(sha(await readFile(join(dir, 'down.bin'))), sha(body), 'downloaded intact')
  })

  /** `kubectl port-forward TARGET LOCAL:REMOTE`, running until the test ends; resolves once kubectl listens. */
  const portForward = async (t: Tap, target: string, remote: number, env: Record<string, string> = {}) => {
    const local = await freePort()
    const home = await mkdtemp(join(tmpdir(), 'skiff-kubectl-pf-'))
    const child = spawn('kubectl', ['--kubeconfig', c.kubeconfig, '--cache-dir', home, 'port-forward', '--address', '127.0.0.1', target, `${local}:${remote}`], { env: { ...process.env, HOME: home, ...env } })
    const out = { text: '' }
    child.stdout.on('data', (d) => (out.text += d))
    child.stderr.on('data', (d) => (out.text += d))
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
    t.teardown(async () => {
      child.kill('SIGKILL')
      await exited
      await rm(home, { recursive: true, force: true })
    })
    await eventually(() => out.text.includes(`Forwarding from 127.0.0.1:${local} -> `) || child.exitCode !== null, { timeout: 20_000, what: `kubectl port-forward ${target} listening` }).catch((e: Error) => {
      throw new Error(`${e.message}; kubectl said: ${out.text}`)
    })
    return { local, out, exited }
  }

  await t.test('kubectl port-forward pod/box carries HTTP both ways, beyond the 64 KiB window, two connections at once', async (t) => {
    const { local } = await portForward(t, 'pod/box', 80)
    const upload = randomBytes(400_000)
    const [big, echoed] = await Promise.all([httpCall(local, 'GET', '/big?n=300000'), httpCall(local, 'POST', '/', upload)])
    t.equal(big.code, 200)
    t.equal(big.body.length, 300_000, 'a 300 KB answer')
    t.equal(big.body.subarray(0, 3).toString(), 'abc')
    t.equal(sha(echoed.body), sha(upload), 'a 400 KB request body came back intact')
    const again = await httpCall(local, 'GET', '/big?n=5')
    t.equal(again.body.toString(), 'abcde', 'a later connection over the same session')
  })

  await t.test('kubectl port-forward svc/NAME and deploy/NAME resolve to the pod', async (t) => {
    await c.client.create(services, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'box' }, spec: { selector: { app: 'box' }, ports: [{ port: 8080, targetPort: 80 }] } })
    await c.client.create(deployments, 'default', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'box' },
      spec: { replicas: 0, selector: { matchLabels: { app: 'box' } }, template: { metadata: { labels: { app: 'box' } }, spec: { containers: [{ name: 'app', image: 'skiff/echo:local' }] } } },
    })
    const svc = await portForward(t, 'svc/box', 8080)
    t.match(svc.out.text, `-> 80`, 'the service port translated to the target port')
    t.equal((await httpCall(svc.local, 'GET', '/big?n=4')).body.toString(), 'abcd')
    const deploy = await portForward(t, 'deploy/box', 80)
    t.equal((await httpCall(deploy.local, 'GET', '/big?n=6')).body.toString(), 'abcdef')
  })

  await t.test('kubectl port-forward to a closed port: kubectl reports the error and stops, no hang', async (t) => {
    const pf = await portForward(t, 'pod/box', 81)
    const sock = connect(pf.local, '127.0.0.1')
    sock.on('error', () => {})
    sock.write('GET / HTTP/1.0\r\n\r\n')
    const code = await Promise.race([pf.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000))])
    sock.destroy()
    t.match(pf.out.text, /an error occurred forwarding \d+ -> 81: error forwarding port 81 to pod box_default, uid : failed to connect to localhost:81 inside the pod's network namespace: can't connect to remote host \(127\.0\.0\.1\): Connection refused/)
    t.not(code, 'still running', 'kubectl exits')
    t.not(code, 0)
  })


  await t.test('kubectl port-forward over plain SPDY (KUBECTL_PORT_FORWARD_WEBSOCKETS=false)', async (t) => {
    const { local } = await portForward(t, 'pod/box', 80, { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' })
    const big = await httpCall(local, 'GET', '/big?n=200000')
    t.equal(big.body.length, 200_000)
  })

  await t.test('v4 WebSocket port-forward: the port first on each channel, a refused port on the error channel', async (t) => {
    const r = await wsExec('/api/v1/namespaces/default/pods/box/portforward?ports=81', ['v4.base64.channel.k8s.io'])
    t.equal(r.protocol, 'v4.base64.channel.k8s.io')
    t.same(r.channels.get(0), Buffer.from([81, 0]), 'data channel: the port, little-endian, and nothing else')
    t.same(r.channels.get(1)?.subarray(0, 2), Buffer.from([81, 0]))
    t.match(str(r.channels.get(1)?.subarray(2)), /^error forwarding port 81 to pod box_default, uid : failed to connect to localhost:81 inside the pod's network namespace: .*Connection refused$/)
  })

  // @kubernetes/client-node, as a program using the official JavaScript client would.
  const kc = new KubeConfig()
  kc.loadFromFile(c.kubeconfig)

  await t.test('client-node: exec returns the output and the exit status', async (t) => {
    const out = collector()
    const err = collector()
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(kc).exec('default', 'box', 'app', ['sh', '-c', 'echo from-exec; echo to-err >&2; exit 4'], out.stream, err.stream, null, false, resolve).catch(reject)
    })
    t.equal(status.status, 'Failure')
    t.equal(status.reason, 'NonZeroExitCode')
    t.same(status.details?.causes, [{ reason: 'ExitCode', message: '4' }])
    t.equal(out.text(), 'from-exec\n')
    t.equal(err.text(), 'to-err\n')
    const ok = await new Promise<V1Status>((resolve, reject) => {
      new Exec(kc).exec('default', 'box', 'app', ['cat'], collector().stream, null, Readable.from(['x']), false, resolve).catch(reject)
    })
    t.equal(ok.status, 'Success', 'stdin ends (v5 close signal) and the command exits 0')
  })

  await t.test('client-node: port-forward carries bytes (v4.channel.k8s.io)', async (t) => {
    const out = collector()
    const input = new PassThrough()
    const ws = (await new PortForward(kc).portForward('default', 'box', [80], out.stream, null, input)) as unknown as WebSocket
    t.equal(ws.protocol, 'v4.channel.k8s.io')
    const closed = new Promise((resolve) => ws.once('close', resolve))
    input.write('GET /big?n=70000 HTTP/1.0\r\n\r\n')
    await Promise.race([closed, new Promise((r) => setTimeout(r, 20_000))])
    const text = out.text()
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/)
    t.equal(text.slice(text.indexOf('\r\n\r\n') + 4).length, 70_000, 'the whole answer; the socket closes when the pod side does')
    input.end()
  })

  await t.test('client-node: a followed log streams', async (t) => {
    // A container that writes 8 lines over about 2 s, then exits: the followed log ends with it.
    const ticker = await run('ticker', 'app', { Image: 'skiff/echo:local', Entrypoint: ['sh', '-c', 'i=0; while [ $i -lt 8 ]; do echo tick $i; i=$((i+1)); sleep 0.25; done'], HostConfig: inPod })
    const out = collector()
    const ended = new Promise((resolve) => out.stream.once('finish', resolve))
    await new Log(kc).log('default', 'box', 'ticker', out.stream, { follow: true })
    await eventually(() => out.text().split('\n').filter((l) => l.startsWith('tick')).length >= 2, { timeout: 20_000, what: 'two tick lines from a followed log' })
    t.equal((await ticker.inspect()).State.Running, true, 'lines arrive while the container still writes')
    await Promise.race([ended, new Promise((r) => setTimeout(r, 20_000))])
    t.equal(out.text(), Array.from({ length: 8 }, (_, i) => `tick ${i}\n`).join(''), 'every line, and the stream ends when the container exits')
  })

  await t.test('client-node: an informer (list and watch) sees a create, an update and a delete', async (t) => {
    const core = kc.makeApiClient(CoreV1Api)
    const informer = makeInformer<V1ConfigMap>(kc, '/api/v1/namespaces/default/configmaps', () => core.listNamespacedConfigMap({ namespace: 'default' }))
    const seen: string[] = []
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name} ${o.data?.k}`))
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.data?.k}`))
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`))
    informer.on('error', (e) => seen.push(`error ${String(e)}`))
    await informer.start()
    t.teardown(() => informer.stop())
    const cm = lookupResource('', 'v1', 'configmaps')!
    await c.client.create(cm, 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'watched' }, data: { k: 'one' } })
    await eventually(() => seen.includes('add watched one'), { timeout: 10_000, what: `the add (seen: ${seen})` })
    await c.client.patch(cm, 'default', 'watched', { data: { k: 'two' } }, 'application/merge-patch+json')
    await eventually(() => seen.includes('update watched two'), { timeout: 10_000, what: 'the update' })
    t.equal(informer.get('watched', 'default')?.data?.k, 'two', 'the cache follows')
    await c.client.delete(cm, 'default', 'watched')
    await eventually(() => seen.includes('delete watched'), { timeout: 10_000, what: 'the delete' })
    t.same(seen.filter((x) => x.includes('watched')), ['add watched one', 'update watched two', 'delete watched'])
  })
})

/** kubectl under a pseudo-terminal (script(1)), with a terminal of cols x rows; stdin written after `delayMs`. */
async function viaPty(c: { kubeconfig: string }, args: string[], input: string, cols: number, rows: number, delayMs = 0, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const home = await mkdtemp(join(tmpdir(), 'skiff-kubectl-pty-'))
  try {
    const cmd = `stty cols ${cols} rows ${rows}; exec kubectl --kubeconfig ${c.kubeconfig} --cache-dir ${home} ${args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}`
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { ...process.env, HOME: home, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    return await finish(child, input, delayMs)
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}

/** A writable that keeps what it was given. */
function collector(): { stream: Writable; text(): string } {
  const chunks: Buffer[] = []
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(Buffer.from(chunk)); cb() } })
  return { stream, text: () => Buffer.concat(chunks).toString() }
}

/** One HTTP/1.1 request on a fresh connection; bounded in time. */
function httpCall(port: number, method: string, path: string, body?: Buffer): Promise<{ code: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, timeout: 20_000, headers: body ? { 'Content-Length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** kubectl with extra environment; stdout and stderr apart; bounded in time. */
async function kubectlWith(c: { kubeconfig: string }, args: string[], env: Record<string, string>, input = ''): Promise<{ code: number | null; out: string; err: string }> {
  const home = await mkdtemp(join(tmpdir(), 'skiff-kubectl-env-'))
  try {
    const child = spawn('kubectl', ['--kubeconfig', c.kubeconfig, '--cache-dir', home, ...args], { env: { ...process.env, HOME: home, ...env } })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.stdin.end(input)
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    clearTimeout(timer)
    return { code, out, err }
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}

function finish(child: ChildProcess, input: string, delayMs: number): Promise<{ code: number | null; out: string }> {
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  setTimeout(() => {
    if (input) child.stdin!.write(input)
  }, delayMs)
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer)
    resolve({ code, out })
  }))
}

