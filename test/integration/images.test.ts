// Local images end to end on the real Docker Engine: ensureImages builds (or
// finds current) skiff/pause, skiff/echo and skiff/demo; a second call builds
// nothing. Then a pod the way the agent will run one: pause owns the network
// namespace on a Docker network this test creates, echo joins it, and the
// host talks to it at the sandbox's IP: HTTP JSON, status codes, readiness,
// WebSocket, TCP and UDP echo, `sh -c` through docker exec, and a prompt
// graceful stop of both. The demo app serves its page. Containers and the
// network are removed in teardown; the images stay (other tests share them).

import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { WebSocket } from 'ws'
import { eventually } from '../../lib/net.ts'
import { ensureImages, parseBuildEvent } from '../../node/images/build.ts'
import { chooseApplets, hashPlan, isStaticElf, parseLdd, planImage, selectImages, type HostFacts } from '../../node/images/spec.ts'

interface Run {
  code: number
  stdout: string
  stderr: string
}

function docker(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

async function dockerOk(args: string[]): Promise<string> {
  const r = await docker(args)
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout.trim()
}

t.test('plans and parsers', async (t) => {
  const ldd = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n`
  t.same(parseLdd(ldd), ['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'])
  t.throws(() => parseLdd('libfoo.so.1 => not found'), { code: 'SKIFF_ERR_IMAGES_NODE_MISSING' })
  t.notOk(isStaticElf(Buffer.from('#!/bin/sh\n'.padEnd(128, ' '))), 'a script is not a static ELF')

  const applets = chooseApplets(['sh', 'sleep', 'nc', 'nslookup', 'cat', 'echo', 'ls', 'ps', 'ip', 'ifconfig', 'hostname', 'env', 'wget', 'grep'])
  t.ok(applets.includes('grep') && !applets.includes('wget'), 'wget is never linked')
  t.throws(() => chooseApplets(['sh']), { code: 'SKIFF_ERR_IMAGES_BUSYBOX_MISSING' })

  t.same(selectImages(['skiff/demo:local', 'pause']), ['pause', 'demo'])
  t.throws(() => selectImages(['nginx']), { code: 'SKIFF_ERR_IMAGES_UNKNOWN_IMAGE' })

  const facts: HostFacts = {
    busybox: '/bin/busybox',
    applets: ['sh', 'sleep', 'nc', 'nslookup', 'cat', 'echo', 'ls', 'ps', 'ip', 'ifconfig', 'hostname', 'env'],
    node: '/n/node',
    libs: ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'],
    canStrip: true,
    wsDir: '/ws',
    wsFiles: ['index.js'],
    sourcesDir: '/src',
  }
  const echo = planImage('echo', facts)
  t.ok(echo.entries.some((e) => e.path === 'node/lib64/ld-linux-x86-64.so.2'), 'libraries keep their paths')
  t.ok(echo.entries.some((e) => e.path === 'app/node_modules/ws/index.js'), 'ws ships beside the server')
  t.notOk(planImage('pause', facts).entries.some((e) => e.path.startsWith('node/')), 'pause has no node')
  const hashA = hashPlan(echo, () => 'a')
  t.equal(hashPlan(planImage('echo', facts), () => 'a'), hashA, 'same content, same hash')
  t.not(hashPlan(echo, (s) => (s === '/src/echo/server.mjs' ? 'b' : 'a')), hashA, 'a changed file changes the hash')

  t.same(parseBuildEvent('{"stream":"Step 2/9 : COPY base/ /\\n"}'), { step: 'Step 2/9 : COPY base/ /' })
  t.same(parseBuildEvent('{"stream":" ---\\u003e abc\\n"}'), {})
  t.same(parseBuildEvent('{"errorDetail":{"message":"boom"},"error":"boom"}'), { error: 'boom' })
})

t.test('local images on the real Docker Engine', async (t) => {
  const first = await ensureImages({ progress: (line) => t.comment(line) })
  t.same(first.map((r) => r.tag), ['skiff/pause:local', 'skiff/echo:local', 'skiff/demo:local'])
  const again = await ensureImages({ progress: null })
  t.same(again.map((r) => [r.id, r.built]), first.map((r) => [r.id, false]), 'a second ensure builds nothing')
  for (const r of first) {
    t.equal(await dockerOk(['image', 'inspect', '-f', '{{index .Config.Labels "skiff.image.hash"}}', r.tag]), r.hash, `${r.tag} carries its hash`)
  }

  const id = randomBytes(4).toString('hex')
  const net = `skiff-images-test-${id}`
  const containers: string[] = []
  t.teardown(async () => {
    if (containers.length) await docker(['rm', '-f', ...containers])
    await docker(['network', 'rm', net])
  })
  await dockerOk(['network', 'create', net])
  const gateway = await dockerOk(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', net])
  const run = async (name: string, args: string[]) => {
    containers.push(`skiff-images-${name}-${id}`)
    return await dockerOk(['run', '-d', '--name', `skiff-images-${name}-${id}`, ...args])
  }

  // A pod: the sandbox owns the network namespace, the app container joins it.
  const pause = await run('pause', ['--network', net, 'skiff/pause:local'])
  const podIP = await dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, pause])
  const podEnv = ['-e', 'POD_NAME=echo-1', '-e', 'POD_NAMESPACE=shop', '-e', 'NODE_NAME=node-a', '-e', `POD_IP=${podIP}`]
  const echo = await run('echo', ['--network', `container:${pause}`, ...podEnv, 'skiff/echo:local'])
  const base = `http://${podIP}:8080`
  await eventually(async () => (await fetch(`${base}/healthz`)).status === 200, { timeout: 30_000, what: 'the echo server to answer' })

  await t.test('HTTP answers who served it and what arrived', async (t) => {
    const res = await fetch(`${base}/some/path?a=1&b=two`, { method: 'PUT', headers: { 'x-test': 'yes' } })
    t.equal(res.status, 200)
    const body = (await res.json()) as Record<string, unknown>
    t.match(body, { pod: 'echo-1', namespace: 'shop', node: 'node-a', podIP, clientIP: gateway, method: 'PUT', path: '/some/path' })
    t.same(body.query, { a: '1', b: 'two' })
    t.match(body.headers, { 'x-test': 'yes' })
    t.equal((await fetch(`${base}/status/418`)).status, 418)
    t.equal((await fetch(`${base}/slow?ms=50`)).status, 200)
    const logs = await docker(['logs', echo])
    t.match(logs.stdout, /PUT \/some\/path\?a=1&b=two 200/, 'one log line per request')
  })

  await t.test('readiness switch', async (t) => {
    t.equal((await fetch(`${base}/ready`)).status, 200)
    t.equal((await fetch(`${base}/ready/off`, { method: 'POST' })).status, 200)
    t.equal((await fetch(`${base}/ready`)).status, 503)
    t.equal((await fetch(`${base}/healthz`)).status, 200, 'liveness is unaffected')
    await fetch(`${base}/ready/on`, { method: 'POST' })
    t.equal((await fetch(`${base}/ready`)).status, 200)
  })

  await t.test('WebSocket echo at /ws', async (t) => {
    const ws = new WebSocket(`ws://${podIP}:8080/ws`)
    t.teardown(() => ws.terminate())
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))))
    ws.send('hello ws')
    t.equal(await reply, 'hello ws')
  })

  await t.test('TCP echo on 9000', async (t) => {
    const sock = connect(9000, podIP)
    t.teardown(() => sock.destroy())
    let got = ''
    sock.on('data', (d) => (got += d))
    sock.write('hello tcp\n')
    await eventually(() => got === 'hello tcp\n', { timeout: 30_000, what: 'the TCP echo' })
    t.equal(got, 'hello tcp\n')
  })

  await t.test('UDP echo on 9001', async (t) => {
    const sock = createSocket('udp4')
    t.teardown(() => sock.close())
    let got = ''
    sock.on('message', (m) => (got = String(m)))
    // A datagram may be lost: resend on each poll (bounded by eventually's timeout).
    await eventually(
      () => {
        if (!got) sock.send('hello udp', 9001, podIP)
        return got
      },
      { timeout: 30_000, interval: 500, what: 'the UDP echo' },
    )
    t.equal(got, 'hello udp')
  })

  await t.test("docker exec sh -c 'echo ok; exit 3'", async (t) => {
    const r = await docker(['exec', echo, 'sh', '-c', 'echo ok; exit 3'])
    t.equal(r.stdout, 'ok\n')
    t.equal(r.code, 3)
  })

  await t.test('without the pod env: hostname, own IP, and READY_DELAY_MS', async (t) => {
    const plain = await run('plain', ['--network', net, '-e', 'READY_DELAY_MS=3600000', 'skiff/echo:local'])
    const ip = await dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, plain])
    const hostname = await dockerOk(['inspect', '-f', '{{.Config.Hostname}}', plain])
    await eventually(async () => (await fetch(`http://${ip}:8080/healthz`)).status === 200, { timeout: 30_000, what: 'the second echo' })
    t.equal((await fetch(`http://${ip}:8080/ready`)).status, 503, 'not ready during the delay')
    t.match(await (await fetch(`http://${ip}:8080/`)).json(), { pod: hostname, podIP: ip, namespace: '', node: '' })
  })

  await t.test('SIGTERM stops echo and pause before the kill timeout', async (t) => {
    for (const c of [echo, pause]) {
      await dockerOk(['stop', '-t', '8', c])
      const state = await dockerOk(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', c])
      const [running, code] = state.split(' ')
      t.equal(running, 'false')
      t.not(Number(code), 137, 'not killed after the timeout')
      t.ok([0, 143].includes(Number(code)), `exit code ${code} is a graceful one`)
    }
  })

  await t.test('the demo app serves its page', async (t) => {
    const demo = await run('demo', ['--network', net, '-e', 'POD_NAME=demo-1', '-e', 'NODE_NAME=node-b', 'skiff/demo:local'])
    const ip = await dockerOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, demo])
    await eventually(async () => (await fetch(`http://${ip}:8080/healthz`)).status === 200, { timeout: 30_000, what: 'the demo app' })
    const page = await (await fetch(`http://${ip}:8080/`)).text()
    t.match(page, /<dd id="pod">demo-1<\/dd>/)
    t.match(page, /<dd id="node">node-b<\/dd>/)
    t.match(page, /id="visits">1</)
    t.match(await (await fetch(`http://${ip}:8080/`)).text(), /id="visits">2</, 'the counter counts')
  })
})
