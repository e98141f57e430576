// The skiff CLI end to end: `up` starts Redis and the server in the
// background, `kubeconfig` works with the real kubectl, apply/get/describe/
// delete behave like kubectl's, bad YAML names file and line, and `down`
// stops every process and removes the state folder.

import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from '../../lib/net.ts'
import { processMatches, readState } from '../../cli/cluster.ts'
import { runKubectl } from '../harness/cluster.ts'

const skiff = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))
const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/manifests/${f}`, import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(stateDir: string, args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [skiff, '--state-dir', stateDir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(stdin)
  })
}

t.test('skiff up, use, down', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-up-'))
  t.teardown(async () => {
    await run(stateDir, ['down'])
    rmSync(stateDir, { recursive: true, force: true })
  })
  const up = await run(stateDir, ['up', '--port', '0', '--nodes', '0'])
  t.equal(up.code, 0, up.stderr)
  t.match(up.stderr, /starting redis-server/)
  t.match(up.stdout, /Use it with kubectl/)
  const st = readState(stateDir)!
  t.ok(processMatches(st.redis.pid, 'redis-server'), 'redis-server runs in the background')
  t.ok(processMatches(st.server.pid, 'skiff.ts'), 'the server runs in the background')

  const again = await run(stateDir, ['up'])
  t.equal(again.code, 0)
  t.match(again.stderr, /already running/)

  await t.test('kubeconfig works with the real kubectl', async (t) => {
    const kc = await run(stateDir, ['kubeconfig'])
    t.equal(kc.code, 0)
    const file = join(stateDir, 'kc-copy')
    writeFileSync(file, kc.stdout)
    const cache = mkdtempSync(join(tmpdir(), 'skiff-kc-cache-'))
    t.teardown(() => rmSync(cache, { recursive: true, force: true }))
    const r = await runKubectl(file, cache, ['get', 'namespaces'])
    t.match(r.stdout, /default\s+Active/)
    t.match(r.stdout, /kube-system\s+Active/)
  })

  await t.test('apply, get, describe, delete', async (t) => {
    const a = await run(stateDir, ['apply', '-f', fixture('app.yaml')])
    t.equal(a.code, 0, a.stderr)
    t.match(a.stdout, 'deployment.apps/web created')
    t.match(a.stdout, 'ingress.networking.k8s.io/web created')
    const a2 = await run(stateDir, ['apply', '-f', fixture('app-v2.yaml')])
    t.match(a2.stdout, 'deployment.apps/web configured')
    t.match(a2.stdout, 'service/web unchanged')
    const json = JSON.parse((await run(stateDir, ['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])).stdout)
    t.same(json.spec.template.spec.containers[0].ports, [{ containerPort: 8080, name: 'http', protocol: 'TCP' }], 'ports kept')
    t.equal(json.spec.replicas, 3)

    const wide = await run(stateDir, ['get', 'svc', '-n', 'shop', '-o', 'wide'])
    t.match(wide.stdout, /NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR/)
    t.match(wide.stdout, /web-np\s+NodePort\s+10\.\S+\s+<none>\s+80:30555\/TCP/)
    const yaml = await run(stateDir, ['get', 'cm', 'web-config', '-n', 'shop', '-o', 'yaml'])
    t.match(yaml.stdout, /greeting: hello-v2/)
    const sel = await run(stateDir, ['get', 'deploy', '-A', '-l', 'app=web'])
    t.match(sel.stdout, /NAMESPACE\s+NAME\s+READY/)
    t.match(sel.stdout, /shop\s+web\s+0\/3/)
    const none = await run(stateDir, ['get', 'deploy', '-A', '-l', 'app notin (web)'])
    t.match(none.stderr, /No resources found/)
    const d = await run(stateDir, ['describe', 'svc', 'web', '-n', 'shop'])
    t.match(d.stdout, /Name:\s+web/)
    t.match(d.stdout, /clusterIP: 10\./)
  })

  await t.test('get -w prints a change', async (t) => {
    const child = spawn(process.execPath, [skiff, '--state-dir', stateDir, 'get', 'cm', '-n', 'shop', '-w'])
    t.teardown(() => child.kill('SIGKILL'))
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    await eventually(() => out.includes('web-config'), { timeout: 15_000, what: 'initial list' })
    const r = await run(stateDir, ['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: shop\ndata:\n  a: "1"\n')
    t.match(r.stdout, 'configmap/watched created')
    await eventually(() => /watched\s+1/.test(out), { timeout: 15_000, what: 'the watched row' })
    t.pass('watch printed the change')
  })

  await t.test('clear errors', async (t) => {
    const bad = join(stateDir, 'bad.yaml')
    writeFileSync(bad, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n')
    const r = await run(stateDir, ['apply', '-f', bad])
    t.equal(r.code, 1)
    t.match(r.stderr, new RegExp(`${bad.replaceAll('/', '\\/')}:5:\\d+: invalid YAML`))
    const srv = await run(stateDir, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 70000\n')
    t.equal(srv.code, 1)
    t.match(srv.stderr, /spec\.ports\[0\]\.port/)
    const nf = await run(stateDir, ['get', 'svc', 'nope'])
    t.equal(nf.code, 1)
    t.match(nf.stderr, /Error from server \(NotFound\): services "nope" not found/)
    const type = await run(stateDir, ['get', 'widgets'])
    t.match(type.stderr, /doesn't have a resource type "widgets"/)
  })

  await t.test('delete -f', async (t) => {
    const r = await run(stateDir, ['delete', '-f', fixture('app.yaml')])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, 'namespaces "shop" deleted')
    await eventually(async () => (await run(stateDir, ['get', 'ns', 'shop'])).code === 1, { timeout: 20_000, what: 'namespace gone' })
  })

  const down = await run(stateDir, ['down'])
  t.equal(down.code, 0)
  t.notOk(processMatches(st.redis.pid, 'redis-server'), 'redis-server stopped')
  t.notOk(processMatches(st.server.pid, 'skiff.ts'), 'server stopped')
  t.notOk(existsSync(join(stateDir, 'state.json')), 'state removed')
})
