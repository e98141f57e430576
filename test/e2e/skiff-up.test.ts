// `skiff up --nodes 3 --demo` as a user runs it (what `npm start` does, on its
// own LAN and pod network): three simulated hosts become Ready, two external
// ingress nodes and one internal one are printed with their addresses, the
// demo answers on its pod IP and through the external ingress nodes. Then
// restarts lose nothing: kill -9 of Redis, of the server and of an agent are
// each repaired by the supervisor within 15 s with every object kept and no
// pod restarted; a host whose Engine and agent die loses nothing; `skiff
// stop` then `skiff up` resumes the same cluster (objects, pods, the old
// kubeconfig); and `skiff down` leaves no process, namespace, bridge, route,
// rule, mount or file behind.

import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { names } from '../../cli/cluster-spec.ts'
import { processMatches, processesUsing } from '../../cli/procs.ts'
import { readSupervisorState } from '../../cli/supervisor.ts'
import { isReady } from '../harness/cross-host.ts'
import { skiffCli, upCluster } from '../harness/skiff-up.ts'
import { artifactsDir, startBrowser } from '../harness/browser.ts'
import { readKubeconfig } from '../../cli/kubeconfig.ts'

const exec = promisify(execFile)
// The dashboard subtest's page functions (page.evaluate, waitForFunction) run in the browser: its globals, untyped here.
declare const document: any
declare const window: any
const configmaps = lookupResource('', 'v1', 'configmaps')!
const pods = lookupResource('', 'v1', 'pods')!

/** What must not change when a process restarts: each pod's uid, its containers' ids and restart counts. */
function podFacts(list: KubeObject[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of list) out[p.metadata.name!] = `${p.metadata.uid} ${(p.status?.containerStatuses ?? []).map((c: any) => `${c.containerID}#${c.restartCount}`).join(',')}`
  return out
}

t.test('skiff up --nodes 3 --demo', async (t) => {
  const c = await upCluster(t, ['--nodes', '3', '--demo'])
  const { up, spec, stateDir } = c
  t.match(up.stderr, /node node-1 is Ready/)
  t.match(up.stdout, /node-1\s+Ready/)
  t.match(up.stdout, /The demo runs:/)
  const ext = /^ingress external: point the DNS names of external Ingress hosts at (\S+), (\S+) \(ports 80 and 443\)$/m.exec(up.stdout)
  const int = /^ingress internal: point the DNS names of internal Ingress hosts at (\S+) \(ports 80 and 443\)$/m.exec(up.stdout)
  t.ok(ext && int, `two external and one internal ingress address printed:\n${up.stdout}`)
  t.same([ext?.[1], ext?.[2]], spec.hosts.filter((h) => h.pool === 'external').map((h) => h.externalIP), 'the external addresses are the external nodes\' ExternalIPs')

  await t.test('the demo answers on its pod IP and through the external ingress nodes, from this machine', async (t) => {
    const list = await c.kubectl(['get', 'pods', '-n', 'demo', '-o', 'wide'])
    const rows = list.stdout.trim().split('\n').slice(1)
    t.equal(rows.length, 3)
    t.ok(rows.every((r) => /1\/1\s+Running/.test(r)), 'three demo pods Running and Ready')
    const ip = rows[0]!.trim().split(/\s+/)[5]!
    const page = (await exec('curl', ['-s', '--max-time', '5', `http://${ip}:8080/`])).stdout
    t.match(page, /demo/i, 'the demo page answers on its pod IP (this machine routes every podCIDR to its host)')
    for (const addr of [ext?.[1], ext?.[2]]) {
      const via = (await exec('curl', ['-s', '--fail', '--retry', '15', '--retry-all-errors', '--retry-delay', '1', '--max-time', '5', '-H', 'Host: demo.skiff.test', `http://${addr}/`])).stdout
      t.match(via, /demo/i, `the demo answers through the external ingress node ${addr}`)
    }
    const internal = (await exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-H', 'Host: demo.skiff.test', `http://${int?.[1]}/`])).stdout
    t.equal(internal, '404', 'the external demo Ingress is not served on the internal node')
    const route = await c.skiff(['route', 'GET', 'http://demo.skiff.test/'])
    t.match(route.stdout, /result: demo\/demo rule 0 path 0 \(Prefix \/\) -> demo\/service demo port http/, 'skiff route explains the demo route')
    const again = await c.skiff(['up'])
    t.equal(again.code, 0)
    t.match(again.stderr, /already running/)
  })

  await t.test('skiff service demo --url: every URL answers with the demo page, which names its namespace demo', async (t) => {
    const r = await c.skiff(['service', 'demo', '-n', 'demo', '--url'])
    t.equal(r.code, 0, r.stderr)
    const urls = r.stdout.trim().split('\n').filter(Boolean)
    const nodePorts = urls.filter((u) => /^http:\/\/[\d.]+:\d+$/.test(u))
    t.equal(nodePorts.length, 5, `a NodePort URL per node address (3 InternalIPs, 2 ExternalIPs): ${urls.join(' ')}`)
    t.ok(urls.includes('http://demo.skiff.test/'), 'the Ingress URL')
    for (const url of urls) {
      // The Ingress host has no DNS here: resolve it to an external ingress node, as a user's DNS would.
      const resolve = url.startsWith('http://demo.skiff.test') ? ['--resolve', `demo.skiff.test:80:${ext?.[1]}`] : []
      const page = (await exec('curl', ['-s', '--fail', '--retry', '10', '--retry-all-errors', '--retry-delay', '1', '--max-time', '5', ...resolve, url])).stdout
      t.match(page, /<dd id="namespace">demo<\/dd>/, `${url} answers with the demo page in namespace demo`)
    }
  })

  await t.test('the dashboard in headless Chromium: login, nodes and pods, a new pod without a reload, the traffic map, a followed log, the kept log of a deleted pod, a token without rights', async (t) => {
    const shots = join(artifactsDir, 'dashboard')
    mkdirSync(shots, { recursive: true })
    const shot = async (page: import('playwright-core').Page, name: string) => {
      const path = join(shots, `${name}.png`)
      await page.screenshot({ path, fullPage: true })
      t.comment(`screenshot ${path}`)
    }
    const server = readKubeconfig(c.kubeconfig)
    const adminToken = server.token
    const { context } = await startBrowser(t)
    const page = await context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))
    const wait = { timeout: 30_000 }

    // 1. Login with the kubeconfig's token: the 3 nodes and the demo pods.
    await page.goto(`${server.server}/dashboard/`)
    await page.fill('#token', adminToken)
    await page.click('#login button[type=submit]')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=nodes] tbody tr').length === 3, undefined, wait)
    const nodeNames = await page.locator('[data-testid=nodes] tbody tr td:first-child').allTextContents()
    t.same(nodeNames, ['node-1', 'node-2', 'node-3'], 'the three nodes are listed')
    t.match(await page.locator('[data-testid=nodes]').textContent(), /Ready[\s\S]*external[\s\S]*internal/, 'with their status and ingress pools')
    const demoPods = (await c.kubectl(['get', 'pods', '-n', 'demo', '-o', 'name'])).stdout.trim().split('\n').map((x) => x.replace('pod/', ''))
    for (const pod of demoPods) await page.locator('[data-testid=pods]').getByText(pod, { exact: true }).waitFor(wait)
    t.pass(`the demo pods are listed: ${demoPods.join(', ')}`)
    t.match(await page.locator('#who').textContent(), /logged in as /, 'the page says who is logged in')
    await shot(page, '1-login-nodes-pods')

    // 2. Scale through kubectl: the new pod appears without a reload.
    await page.evaluate(() => ((window as any).__noReload = true))
    await c.kubectl(['scale', 'deployment/demo', '-n', 'demo', '--replicas', '4'])
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=pods] tbody tr')].filter((r) => r.textContent?.startsWith('demo')).length === 4, undefined, wait)
    t.equal(await page.evaluate(() => (window as any).__noReload), true, 'the fourth demo pod appeared with no page reload')
    await shot(page, '2-scaled-to-4')

    // 3. The traffic map: external ingress nodes -> Ingress demo/demo -> Service demo/demo -> the demo pods, with rates.
    const ingressAddr = spec.hosts.find((h) => h.pool === 'external')!.externalIP!
    const load = (async () => {
      for (let i = 0; i < 120; i++) await exec('curl', ['-s', '-o', '/dev/null', '--max-time', '2', '-H', 'Host: demo.skiff.test', `http://${ingressAddr}/`]).catch(() => undefined)
    })()
    await page.click('a[href="#/map"]')
    const route = page.locator('[data-testid="map-route/Ingress/demo/demo"]')
    await route.waitFor(wait)
    await page.waitForFunction(() => /req\/s/.test(document.querySelector('[data-testid="map-route/Ingress/demo/demo"]')?.textContent ?? ''), undefined, { timeout: 60_000 })
    t.match(await route.textContent(), /external · demo\.skiff\.test[\s\S]*\d+\.\d req\/s/, 'the Ingress box shows its class, host and request rate')
    const edges = await page.evaluate(() => [...document.querySelectorAll('.map path')].map((p) => (p as any).dataset.edge))
    for (const n of spec.hosts.filter((h) => h.pool === 'external')) t.ok(edges.includes(`ingress/${n.name} route/Ingress/demo/demo`), `edge ${n.name} -> Ingress demo/demo`)
    t.ok(edges.includes('route/Ingress/demo/demo service/demo/demo'), 'edge Ingress -> Service demo/demo')
    const running = (await c.kubectl(['get', 'pods', '-n', 'demo', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}'])).stdout.trim().split('\n')
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid^="map-pod/demo/"]').length === n, running.length, wait)
    const mapEdges = await page.evaluate(() => [...document.querySelectorAll('.map path')].map((p) => (p as any).dataset.edge))
    for (const pod of running) t.ok(mapEdges.includes(`service/demo/demo pod/demo/${pod}`), `edge Service demo/demo -> pod ${pod}`)
    t.notOk(edges.some((e) => e?.startsWith('ingress/node-3 ')), 'the internal node routes none of it')
    await load
    await shot(page, '3-traffic-map')

    // 4. A pod's page: YAML, and its log followed; a request with a unique path shows up in it.
    const pod = running[0]!
    const ip = (await c.kubectl(['get', 'pod', pod, '-n', 'demo', '-o', 'jsonpath={.status.podIP}'])).stdout.trim()
    await page.click(`[data-testid="map-pod/demo/${pod}"] a`)
    await page.locator('[data-testid=yaml]').waitFor(wait)
    t.match(await page.locator('[data-testid=yaml]').textContent(), new RegExp(`kind: Pod[\\s\\S]*name: ${pod}`), 'the pod\'s YAML')
    await page.locator('[data-testid=logs]').waitFor(wait)
    const marker = `/dashboard-e2e-${process.pid}-${Date.now()}`
    await page.waitForTimeout(1_000)
    await exec('curl', ['-s', '-o', '/dev/null', '--max-time', '5', `http://${ip}:8080${marker}`])
    await page.waitForFunction((m) => document.querySelector('[data-testid=logs]')?.textContent?.includes(m), marker, wait)
    t.pass(`the followed log shows the line the test caused (GET ${marker})`)
    await shot(page, '4-pod-logs')

    // 5. That pod deleted: once its replacement runs, the Deployment's page lists its kept log, which still has the line.
    const uid = (await c.kubectl(['get', 'pod', pod, '-n', 'demo', '-o', 'jsonpath={.metadata.uid}'])).stdout.trim()
    await c.kubectl(['delete', 'pod', pod, '-n', 'demo', '--wait=true'])
    await eventually(async () => (await c.client.list(pods, 'demo')).items.filter((p) => p.metadata.uid !== uid && isReady(p)).length === 4, { timeout: 60_000, what: 'the replacement Running and Ready' })
    await page.goto(`${server.server}/dashboard/#/obj/Deployment/demo/demo`)
    const goneRow = page.locator('[data-testid=gone] a', { hasText: pod })
    await goneRow.waitFor({ timeout: 60_000 })
    await goneRow.click()
    await page.waitForFunction((m) => document.querySelector('[data-testid=gone-logs]')?.textContent?.includes(m), marker, wait)
    t.pass(`the deleted pod ${pod}'s kept log still shows GET ${marker}`)
    await shot(page, '5-deleted-pod-logs')

    // 6. A token without rights sees no objects.
    await c.kubectl(['create', 'serviceaccount', 'dashboard-nobody', '-n', 'demo'])
    const nobody = (await c.kubectl(['create', 'token', 'dashboard-nobody', '-n', 'demo'])).stdout.trim()
    await page.click('#logout')
    await page.goto(`${server.server}/dashboard/#/`)
    await page.fill('#token', nobody)
    await page.click('#login button[type=submit]')
    await page.getByText('no access to Pod objects').waitFor(wait)
    await page.getByText('no access to Node objects').waitFor(wait)
    t.equal(await page.locator('[data-testid=nodes] tbody tr').count(), 0, 'no nodes')
    t.equal(await page.locator('[data-testid=pods] tbody tr').count(), 0, 'no pods')
    t.equal(await page.locator('[data-testid=workloads] tbody tr').count(), 0, 'no workloads')
    t.match(await page.locator('#who').textContent(), /system:serviceaccount:demo:dashboard-nobody/, 'logged in as the ServiceAccount')
    await page.click('a[href="#/map"]')
    await page.getByText('no request rates: reading them needs get on nodes/metrics').waitFor(wait)
    t.equal(await page.locator('.map .box').count(), 0, 'an empty traffic map')
    await shot(page, '6-no-rights')
    t.same(pageErrors, [], 'no script errors on the page')
    // Back to the 3 replicas the later subtests count, and only once the fourth pod is gone.
    await c.kubectl(['scale', 'deployment/demo', '-n', 'demo', '--replicas', '3'])
    await eventually(async () => (await c.client.list(pods, 'demo')).items.length === 3, { timeout: 60_000, what: 'the demo back at 3 pods' })
  })

  await t.test('pods reach the API through default/kubernetes (first service address, port 443, the serving apiserver behind it)', async (t) => {
    const svc = await c.kubectl(['get', 'service', 'kubernetes', '-n', 'default', '-o', 'jsonpath={.spec.clusterIP} {.spec.ports[0].port} {.spec.ports[0].name}'])
    t.equal(svc.stdout, '10.96.0.1 443 https')
    const server = new URL(c.client.server).hostname
    const slice = await c.kubectl(['get', 'endpointslice', 'kubernetes', '-n', 'default', '-o', 'jsonpath={.endpoints[*].addresses[0]} {.ports[0].port}'])
    t.match(slice.stdout, new RegExp(`^${server.replaceAll('.', '\\.')} \\d+$`), `the EndpointSlice lists the server (${slice.stdout})`)
    const pod = (await c.client.list(pods, 'demo')).items[0]!.metadata.name!
    const env = await c.kubectl(['exec', '-n', 'demo', pod, '--', 'sh', '-c', 'echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT $KUBERNETES_PORT_443_TCP_ADDR'])
    t.equal(env.stdout.trim(), '10.96.0.1:443 10.96.0.1', 'the kubelet variables name the Service')
    const script = "require('https').get({host:process.env.KUBERNETES_SERVICE_HOST,port:+process.env.KUBERNETES_SERVICE_PORT,path:'/version',servername:'kubernetes.default.svc',ca:require('fs').readFileSync(0)},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(r.statusCode,JSON.parse(b).gitVersion))}).on('error',e=>{console.log('error',e.message);process.exit(1)})"
    const version = await c.kubectl(['exec', '-i', '-n', 'demo', pod, '--', 'node', '-e', script], { stdin: c.client.config.caPem, allowFail: true })
    t.match(version.stdout, /^200 v1\.32/, `GET /version through the Service, the certificate verified as kubernetes.default.svc (${version.stdout}${version.stderr})`)
  })

  await t.test('a pod lists what its ServiceAccount\'s Role allows with only its mounted token, and gets 403 for the rest; automount false mounts nothing', async (t) => {
    const rbac = [
      'apiVersion: v1', 'kind: ServiceAccount', 'metadata: {name: reader, namespace: demo}',
      '---', 'apiVersion: rbac.authorization.k8s.io/v1', 'kind: Role', 'metadata: {name: pod-reader, namespace: demo}',
      'rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]',
      '---', 'apiVersion: rbac.authorization.k8s.io/v1', 'kind: RoleBinding', 'metadata: {name: reader-pods, namespace: demo}',
      'roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}', 'subjects: [{kind: ServiceAccount, name: reader, namespace: demo}]',
      '---', 'apiVersion: v1', 'kind: Pod', 'metadata: {name: api-client, namespace: demo}',
      'spec: {serviceAccountName: reader, containers: [{name: c, image: skiff/echo:local}]}',
      '---', 'apiVersion: v1', 'kind: Pod', 'metadata: {name: no-token, namespace: demo}',
      'spec: {automountServiceAccountToken: false, containers: [{name: c, image: skiff/echo:local}]}',
    ].join('\n')
    await c.kubectl(['apply', '-f', '-'], { stdin: rbac })
    await c.kubectl(['wait', '--for=condition=Ready', 'pod/api-client', 'pod/no-token', '-n', 'demo', '--timeout=90s'], { timeoutMs: 100_000 })
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount'
    const script = `const fs=require('fs');const d='${sa}/';const get=(p)=>new Promise(r=>require('https').get({host:process.env.KUBERNETES_SERVICE_HOST,port:+process.env.KUBERNETES_SERVICE_PORT,path:p,servername:'kubernetes.default.svc',ca:fs.readFileSync(d+'ca.crt'),headers:{authorization:'Bearer '+fs.readFileSync(d+'token','utf8')}},s=>{s.resume();s.on('end',()=>r(s.statusCode))}).on('error',e=>r(e.message)));const ns=fs.readFileSync(d+'namespace','utf8');(async()=>console.log(ns,await get('/api/v1/namespaces/'+ns+'/pods'),await get('/api/v1/namespaces/'+ns+'/secrets')))()`
    const r = await c.kubectl(['exec', '-n', 'demo', 'api-client', '--', 'node', '-e', script], { allowFail: true })
    t.equal(r.stdout.trim(), 'demo 200 403', `pods allowed, secrets forbidden (${r.stdout}${r.stderr})`)
    const none = await c.kubectl(['exec', '-n', 'demo', 'no-token', '--', 'ls', sa], { allowFail: true })
    t.not(none.code, 0, 'nothing is mounted with automountServiceAccountToken: false')
    await c.kubectl(['delete', 'pod', 'api-client', 'no-token', '-n', 'demo', '--grace-period=1'])
  })

  for (const i of [1, 2, 3]) await c.client.create(configmaps, 'default', { metadata: { name: `keep-${i}` }, data: { i: String(i) } })
  const demoPods = async () => (await c.client.list(pods, 'demo')).items

  await t.test('kill -9 of Redis, of the server and of an agent: each back by itself within 15 s, every object kept, no pod restarted', async (t) => {
    const before = podFacts(await demoPods())
    for (const child of ['redis', 'server', 'agent/node-2']) {
      const old = readSupervisorState(stateDir)!.children[child]!.pid!
      t.ok(processMatches(old, child === 'redis' ? 'redis-server' : 'skiff.ts'), `${child} runs (pid ${old})`)
      const killed = Date.now()
      process.kill(old, 'SIGKILL')
      const pid = await eventually(() => {
        const now = readSupervisorState(stateDir)?.children[child]?.pid
        return now && now !== old && processMatches(now, child === 'redis' ? 'redis-server' : 'skiff.ts') && now
      }, { timeout: 15_000, interval: 100, what: `${child} restarted` })
      // Serving again: a write needs Redis and the server; the agent renews its Lease.
      await eventually(async () => {
        if (child === 'agent/node-2') {
          const lease = await c.client.get(lookupResource('coordination.k8s.io', 'v1', 'leases')!, 'kube-node-lease', 'node-2')
          return Date.parse(lease.spec.renewTime) > killed + 500
        }
        await c.client.create(configmaps, 'default', { metadata: { generateName: 'probe-' } })
        return true
      }, { timeout: 15_000, interval: 200, what: `${child} serving again` })
      const took = Date.now() - killed
      t.ok(took <= 15_000, `${child} is back (pid ${pid}) and serving ${took} ms after kill -9`)
    }
    const kept = (await c.client.list(configmaps, 'default')).items.map((x) => x.metadata.name).filter((n) => n?.startsWith('keep-'))
    t.same(kept.sort(), ['keep-1', 'keep-2', 'keep-3'], 'every object is still there')
    t.same(podFacts(await demoPods()), before, 'no pod was restarted or replaced (same uids, container ids, restart counts)')
  })

  await t.test('a simulated host whose Engine and agent are killed and started again loses nothing', async (t) => {
    const before = (await demoPods()).filter((p) => p.spec.nodeName === 'node-3').map((p) => p.metadata.uid).sort()
    const st = readSupervisorState(stateDir)!
    for (const child of ['dockerd/node-3', 'agent/node-3']) process.kill(st.children[child]!.pid!, 'SIGKILL')
    await eventually(() => {
      const now = readSupervisorState(stateDir)!.children
      return ['dockerd/node-3', 'agent/node-3'].every((n) => now[n]?.pid && now[n]!.pid !== st.children[n]!.pid && processMatches(now[n]!.pid, n.startsWith('agent') ? 'skiff.ts' : 'dockerd'))
    }, { timeout: 60_000, interval: 200, what: 'the Engine and agent of node-3 restarted' })
    const after = await eventually(async () => {
      const list = await demoPods()
      return list.filter(isReady).length === 3 && list
    }, { timeout: 90_000, interval: 500, what: 'three Ready demo pods' })
    t.same(after.filter((p) => p.spec.nodeName === 'node-3').map((p) => p.metadata.uid).sort(), before, 'node-3 keeps the same pods')
    t.equal(after.length, 3, 'no pod was added or lost')
  })

  await t.test('skiff stop, then skiff up: the same objects and pods, and the old kubeconfig still works', async (t) => {
    const saved = join(stateDir, '..', `${stateDir.split('/').pop()}-kubeconfig-copy`)
    writeFileSync(saved, readFileSync(c.kubeconfig))
    t.teardown(() => exec('rm', ['-f', saved]))
    const uids = (await demoPods()).map((p) => p.metadata.uid).sort()
    const stop = await c.skiff(['stop'])
    t.equal(stop.code, 0, stop.stderr)
    t.same(processesUsing([stateDir, names.runDir(spec)]).map((p) => p.argv.join(' ')), [], 'no process of the cluster is left')
    t.ok(existsSync(join(stateDir, 'cluster.json')) && existsSync(join(stateDir, 'pki', 'ca.key')), 'the state stays')
    const up2 = await c.skiff(['up'])
    t.equal(up2.code, 0, up2.stderr)
    t.match(up2.stderr, /resuming the cluster/)
    const kept = await c.kubectl(['--kubeconfig', saved, 'get', 'configmaps', '-o', 'name'])
    t.match(kept.stdout, /configmap\/keep-1[\s\S]*configmap\/keep-2[\s\S]*configmap\/keep-3/, 'the old kubeconfig works and the objects are there')
    const again = await eventually(async () => {
      const list = await demoPods()
      return list.filter(isReady).length === 3 && list
    }, { timeout: 90_000, interval: 500, what: 'three Ready demo pods after the resume' })
    t.same(again.map((p) => p.metadata.uid).sort(), uids, 'the same demo pods')
  })

  await t.test('skiff down leaves nothing behind', async (t) => {
    // A skiff process started by hand, from another folder, with a relative --state-dir: down stops it too.
    const parent = join(stateDir, '..')
    const hand = spawn(process.execPath, [skiffCli, '--state-dir', stateDir.split('/').pop()!, 'get', 'pods', '-A', '-w'], { cwd: parent, stdio: 'ignore', detached: true })
    hand.unref()
    t.teardown(() => { if (processMatches(hand.pid, 'skiff.ts')) process.kill(hand.pid!, 'SIGKILL') })
    await eventually(() => processesUsing([stateDir]).some((p) => p.pid === hand.pid), { timeout: 10_000, what: 'the hand-started skiff process found as one of the cluster\'s' })
    const down = await c.skiff(['down'])
    t.equal(down.code, 0, down.stderr)
    t.same(processesUsing([stateDir, names.runDir(spec)]).map((p) => p.argv.join(' ')), [], 'no process')
    t.notOk(processMatches(hand.pid, 'skiff.ts'), 'the hand-started one is gone too')
    const netns = (await exec('ip', ['netns', 'list'])).stdout
    t.notMatch(netns, `skiff-${spec.id}-`, 'no host namespace')
    const links = (await exec('ip', ['-o', 'link'])).stdout
    t.notMatch(links, spec.lan.bridge, 'no LAN bridge')
    t.notMatch(links, `skh${spec.id}-`, 'no host legs')
    const routes = (await exec('ip', ['route'])).stdout
    t.notMatch(routes, spec.lan.cidr.replace('.0/24', '.'), 'no route through the LAN')
    const rules = (await exec('iptables', ['-S'])).stdout
    t.notMatch(rules, `skiff-lan:${spec.id}`, 'no forwarding rule')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), stateDir, 'no mount')
    t.notOk(existsSync(stateDir), 'no state folder')
    t.notOk(existsSync(names.runDir(spec)), 'no run folder')
  })
})
