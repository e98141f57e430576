// Fault scenario (issue 11): the wall clock stepped 10 minutes forward and
// back on a node (and on the servers): no Lease is taken early, nothing
// restarts.
//
// Real processes: Redis, two `skiff server`s (the second joined to the
// first; the scheduler and controllers under one leader Lease) and two
// `skiff agent`s on this machine's Docker Engine (nftables service proxies,
// both `external` ingress nodes, so the ingress status is elected too). Each
// of the four runs under libfaketime with its own clock file
// (harness/faketime.ts): Date.now() steps, performance.now() and timers go
// on, as with a real step of the system clock. The second agent even joins
// with its clock 10 minutes behind the servers'. Then every clock steps to
// +10 min, one process after the other (so machines also disagree by 10-20
// minutes for a while), holds, steps to -10 min (20 minutes back), holds.
// The node grace period is 5 s (heartbeats every 2 s, checked every second),
// pods are evicted 5 s after NotReady, so each hold spans many of those, and
// more than one period of the controller-manager Lease (15 s), the ingress
// presence Leases (15 s) and the apiserver identity Leases (30 s).
//
// Pass: no node leaves Ready; the controller-manager and ingress-status
// leader Leases keep their holder and transition count; the same pods with
// the same containers and 0 restarts; a GET every 100 ms to the ClusterIP and
// to each ingress node never fails; the Ingress keeps both node addresses in
// its status; a Service created after each step answers within 15 s and
// every node reports it applied (the service proxies keep syncing); the
// Applied column stays 2/2 through both servers; pods/log answers through
// both servers (the kubelet and apiserver certificates across the skew).
// SKIFF_FAULT_CLOCK_HOLD_S sets the hold (default 25 s).

import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { proxyAppliedAnnotation } from '../../controlplane/api/routing-applied.ts'
import { ApiClient, ApiClientError } from '../../controlplane/client/client.ts'
import { adminToken } from '../../controlplane/server.ts'
import { createToken } from '../../cli/token.ts'
import { storeGuardTable } from '../../node/store-guard.ts'
import { run } from '../../lib/exec.ts'
import { eventually, freePort } from '../../lib/net.ts'
import { ensureImages } from '../../node/images/build.ts'
import { steppedClock, type SteppedClock } from '../harness/faketime.ts'
import { cleanupNode, pickClusterCIDR, testNodeNames } from '../harness/node.ts'
import { startRedis } from '../harness/redis.ts'
import { spawnSkiff, type SkiffProcess } from '../harness/skiff-process.ts'
import { deployWeb, httpGet, ingressesInfo, podsInfo, servicesInfo, type GetResult } from '../harness/web-app.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!

const holdMs = Number(process.env.SKIFF_FAULT_CLOCK_HOLD_S ?? 25) * 1000
const leaderLeases = ['skiff-controller-manager', 'ingress-external-status']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const readyOf = (n: KubeObject) => (n.status?.conditions ?? []).find((c: any) => c.type === 'Ready')?.status as string | undefined
const internalIP = (n: KubeObject) => (n.status?.addresses ?? []).find((a: any) => a.type === 'InternalIP')?.address as string

interface Proc {
  proc: SkiffProcess
  clock: SteppedClock
}

t.test('the wall clock stepped 10 minutes forward and back: no Lease taken early, nothing restarts', async (t) => {
  await ensureImages({ progress: null })
  const net = await pickClusterCIDR()
  const names = testNodeNames(2, 'ck')
  const work = await mkdtemp(join(tmpdir(), 'skiff-clock-'))
  const redis = await startRedis()
  const procs: Record<string, Proc> = {}
  const clients: ApiClient[] = []
  // Teardowns run last-registered first: the processes (agents first, removing their pods) stop before this one.
  t.teardown(async () => {
    if (!t.passing()) for (const [name, p] of Object.entries(procs)) t.comment(`--- ${name}, last log lines:\n${p.proc.tail(15)}`)
    for (const c of clients) c.close()
    await Promise.all(names.map((n) => procs[n]?.proc.stop(30_000)))
    for (const n of names) {
      await cleanupNode(n).catch(() => undefined)
      await run('nft', ['delete', 'table', 'ip', storeGuardTable(n)]).catch(() => undefined)
    }
    await Promise.all(['s1', 's2'].map((s) => procs[s]?.proc.stop()))
    await redis.stop()
    await rm(work, { recursive: true, force: true })
  })

  // --- the control plane: two servers on one Redis
  const passwordFile = join(work, 'redis-password')
  await writeFile(passwordFile, redis.password, { mode: 0o600 })
  const ports = [await freePort(), await freePort()]
  const urls = ports.map((p) => `https://127.0.0.1:${p}`)
  const serverArgs = (i: number) => [
    'server', '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--port', String(ports[i]),
    '--redis-host', redis.host, '--redis-port', String(redis.port), '--redis-password-file', passwordFile,
    '--cluster-cidr', net.clusterCIDR, '--node-monitor-grace-period', '5', '--node-monitor-period', '1', '--pod-eviction-timeout', '5',
  ]
  const start = async (name: string, o: { stateDir: string; args: string[]; offset?: string }) => {
    const clock = await steppedClock(t, work, name, o.offset)
    procs[name] = { clock, proc: spawnSkiff(t, { name, stateDir: o.stateDir, args: o.args, logDir: work, env: clock.env }) }
  }
  const stateOf = (name: string) => join(work, name)
  await start('s1', { stateDir: stateOf('s1'), args: serverArgs(0) })
  const caPem = await eventually(async () => existsSync(join(stateOf('s1'), 'server.json')) && (await readFile(join(stateOf('s1'), 'pki', 'ca.crt'), 'utf8')), { timeout: 60_000, what: 'the first server ready (server.json written)' })
  const client = (url: string) => {
    const c = new ApiClient({ server: url, caPem, token: adminToken(stateOf('s1')) })
    clients.push(c)
    return c
  }
  const admin = client(urls[0]!)
  await eventually(() => admin.get(nodesInfo, undefined, 'x').catch((e) => e instanceof ApiClientError && e.status === 404), { timeout: 60_000, what: 'the first server answers' })
  const serverTokenFile = join(work, 'server-token')
  await writeFile(serverTokenFile, await createToken(admin, { ttl: '1h', server: true }), { mode: 0o600 })
  await start('s2', { stateDir: stateOf('s2'), args: [...serverArgs(1), '--join', urls[0]!, '--token-file', serverTokenFile] })
  const admin2 = client(urls[1]!)
  await eventually(() => admin2.get(nodesInfo, undefined, 'x').catch((e) => e instanceof ApiClientError && e.status === 404), { timeout: 60_000, what: 'the second server answers' })

  // --- watching, from before the agents join: nodes, leader Leases, the Ingress status
  const notReady: string[] = []
  const wasReady = new Set<string>()
  const holders = new Map<string, Set<string>>(leaderLeases.map((l) => [l, new Set()]))
  const statusDrops: string[] = []
  let wantStatus: string | undefined
  let looks = 0
  let watching = true
  const watcher = (async () => {
    while (watching) {
      const [nodes, leases, ing] = await Promise.all([
        admin.list(nodesInfo).catch(() => undefined),
        admin.list(leasesInfo, 'kube-system').catch(() => undefined),
        admin.get(ingressesInfo, 'default', 'web').catch(() => undefined),
      ])
      if (nodes && leases) looks++
      for (const n of nodes?.items ?? []) {
        const name = n.metadata.name!
        if (readyOf(n) === 'True') wasReady.add(name)
        else if (wasReady.delete(name)) notReady.push(`${name}: Ready=${readyOf(n)} at ${new Date().toISOString()}`)
      }
      for (const l of leases?.items ?? []) holders.get(l.metadata.name!)?.add(`${l.spec?.holderIdentity}#${l.spec?.leaseTransitions ?? 0}`)
      const addresses = ((ing?.status?.loadBalancer?.ingress ?? []) as any[]).map((a) => a.ip).sort().join(',')
      if (wantStatus !== undefined && ing && addresses !== wantStatus) statusDrops.push(`${addresses || '<none>'} at ${new Date().toISOString()}`)
      await sleep(250)
    }
  })()
  t.teardown(() => (watching = false))

  // --- the agents join: the second with its clock 10 minutes behind
  const joinToken = await createToken(admin, { ttl: '1h', ingressPools: 'external' })
  for (const [i, name] of names.entries()) {
    await start(name, {
      stateDir: stateOf(name), offset: i === 1 ? '-10m' : '+0',
      args: [
        'agent', '--node-name', name, '--server', urls.join(','), '--token', joinToken, '--cluster-cidr', net.clusterCIDR,
        '--kubelet-port', '0', '--heartbeat-ms', '2000', '--service-proxy', 'nftables', '--no-lb-speaker', '--remove-pods-on-exit',
        '--node-label', 'skiff.dev/ingress-pool=external', '--ingress-workers', '1', '--ingress-status-port', '0', '--ingress-drain-ms', '1000',
      ],
    })
  }
  const nodes = await eventually(async () => {
    const list = (await admin.list(nodesInfo)).items.filter((n) => names.includes(n.metadata.name!))
    return list.length === 2 && list.every((n) => readyOf(n) === 'True' && internalIP(n)) ? list : undefined
  }, { timeout: 120_000, what: 'both nodes joined and Ready' })
  const nodeIPs = names.map((n) => internalIP(nodes.find((x) => x.metadata.name === n)!))
  t.comment(`nodes ${names.join(', ')} at ${nodeIPs.join(', ')}; servers ${urls.join(', ')}`)

  const clusterIP = await deployWeb(admin, { replicas: 2 })
  const targets: Record<string, () => Promise<GetResult>> = {
    clusterIP: () => httpGet(clusterIP, 80, '/', { timeoutMs: 5_000 }),
    ...Object.fromEntries(nodeIPs.map((ip, i) => [`ingress@${names[i]}`, () => httpGet(ip, 80, '/', { timeoutMs: 5_000 })])),
  }
  await eventually(async () => (await Promise.all(Object.values(targets).map((f) => f()))).every((r) => r.status === 200), { timeout: 60_000, what: 'the ClusterIP and both ingress nodes answer' })
  const bothAddresses = [...nodeIPs].sort().join(',')
  await eventually(async () => ((await admin.get(ingressesInfo, 'default', 'web')).status?.loadBalancer?.ingress ?? []).map((a: any) => a.ip).sort().join(',') === bothAddresses, { timeout: 60_000, what: 'the Ingress status lists both nodes' })
  wantStatus = bothAddresses

  // --- before
  const leaderBefore = new Map(await Promise.all(leaderLeases.map(async (l) => {
    const lease = await eventually(() => admin.get(leasesInfo, 'kube-system', l).then((x) => x.spec?.holderIdentity && x), { timeout: 30_000, what: `${l} held` })
    return [l, `${lease.spec.holderIdentity}#${lease.spec.leaseTransitions ?? 0}`] as const
  })))
  for (const [l, h] of leaderBefore) t.comment(`${l}: ${h}`)
  const podState = async () => (await admin.list(podsInfo, 'default', { labelSelector: 'app=web' })).items
    .map((p) => ({ uid: p.metadata.uid!, node: p.spec.nodeName, containers: (p.status?.containerStatuses ?? []).map((s: any) => `${s.name}=${s.containerID}`).sort().join(','), restarts: (p.status?.containerStatuses ?? []).reduce((n: number, s: any) => n + (s.restartCount ?? 0), 0) }))
    .sort((a, b) => (a.uid < b.uid ? -1 : 1))
  const podsBefore = await podState()
  t.comment(`pods: ${podsBefore.map((p) => `${p.uid.slice(0, 8)} on ${p.node}`).join(', ')}`)
  const notReadyBefore = notReady.length

  // --- load: every 100 ms a GET to each target
  const tally = new Map(Object.keys(targets).map((k) => [k, { sent: 0, failed: 0 }]))
  const failures: string[] = []
  const inflight = new Set<Promise<void>>()
  const load = setInterval(() => {
    for (const [name, get] of Object.entries(targets)) {
      const x = tally.get(name)!
      x.sent++
      const p = get().then((r) => {
        if (r.status !== 200) (x.failed++, failures.push(`${name}: ${r.error ?? `HTTP ${r.status}`} at ${new Date().toISOString()}`))
      })
      inflight.add(p)
      void p.finally(() => inflight.delete(p))
    }
  }, 100)
  t.teardown(() => clearInterval(load))

  /** A new Service answers on its ClusterIP and every node reports it applied: the proxies still sync. */
  const newServiceServed = (name: string) => serviceServed(name).catch((e) => t.fail((e as Error).message))
  const serviceServed = async (name: string) => {
    const startedAt = performance.now()
    const svc = await admin.create(servicesInfo, 'default', { metadata: { name }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } } as KubeObject)
    const ip = svc.spec.clusterIP as string
    await eventually(async () => (await httpGet(ip, 80, '/', { timeoutMs: 2_000 })).status === 200, { timeout: 15_000, what: `Service ${name} answers on ${ip}` })
    const target = Math.max(Number(svc.metadata.resourceVersion), ...(await admin.list(slicesInfo, 'default', { labelSelector: `kubernetes.io/service-name=${name}` })).items.map((s) => Number(s.metadata.resourceVersion)))
    await eventually(async () => {
      const leases = await Promise.all(names.map((n) => admin.get(leasesInfo, 'kube-node-lease', n)))
      return leases.every((l) => Number(l.metadata.annotations?.[proxyAppliedAnnotation] ?? 0) >= target)
    }, { timeout: 15_000, what: `every node applied Service ${name} (revision ${target})` })
    t.pass(`Service ${name} answered and was applied on both nodes ${((performance.now() - startedAt) / 1000).toFixed(1)} s after its creation`)
  }
  /** What each server says: the Applied column of Service web, and pods/log of every web pod. */
  const throughBothServers = async (when: string) => {
    for (const [i, c] of [admin, admin2].entries()) {
      const applied = await eventually(async () => {
        const table = await c.call('GET', '/api/v1/namespaces/default/services/web', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })
        const col = table.columnDefinitions.findIndex((d: any) => d.name === 'Applied')
        const cell = table.rows[0].cells[col]
        return cell === '2/2' ? cell : undefined
      }, { timeout: 10_000, what: `Applied 2/2 through server ${i + 1} ${when}` }).catch((e) => (e as Error).message)
      t.equal(applied, '2/2', `${when}: Applied 2/2 through server ${i + 1}`)
      for (const p of podsBefore) {
        const pod = (await admin.list(podsInfo, 'default', { labelSelector: 'app=web' })).items.find((x) => x.metadata.uid === p.uid)
        const log = pod && (await c.call('GET', `/api/v1/namespaces/default/pods/${pod.metadata.name}/log`).then(() => 'ok', (e) => (e as Error).message))
        t.equal(log, 'ok', `${when}: pods/log of ${pod?.metadata.name ?? p.uid} through server ${i + 1}`)
      }
    }
  }

  /**
   * How far a process's wall clock is from ours, as it shows: the Date header
   * of a server's answers, the renewTime an agent writes into its Lease.
   */
  const offsetOf = async (name: string): Promise<number> => {
    const server = { s1: admin, s2: admin2 }[name]
    if (server) return Date.parse((await server.request('GET', '/version')).headers.date ?? '') - Date.now()
    return Date.parse((await admin.get(leasesInfo, 'kube-node-lease', name)).spec.renewTime) - Date.now()
  }
  const minutes = (o: string) => Number(o.replace(/m$/, '')) * 60_000
  /** The fault really happened: the process's clock reads real time + offset (a minute's tolerance). */
  const stepSeen = (name: string, offset: string) =>
    eventually(async () => Math.abs((await offsetOf(name)) - minutes(offset)) < 60_000, { timeout: 15_000, what: `${name}'s wall clock at ${offset}` })
  await stepSeen(names[1]!, '-10m')

  await sleep(2_000)
  for (const [label, offset] of [['forward', '+10m'], ['back', '-10m']] as const) {
    for (const name of ['s2', names[0]!, 's1', names[1]!]) {
      const from = procs[name]!.clock.offset
      await procs[name]!.clock.set(offset)
      await stepSeen(name, offset)
      t.comment(`${name}: wall clock ${from} -> ${offset} (seen: ${((await offsetOf(name)) / 60_000).toFixed(1)} min)`)
      await sleep(2_000)
    }
    const stepped = performance.now()
    await newServiceServed(`web-${label}`)
    await sleep(Math.max(0, holdMs - (performance.now() - stepped)))
    await throughBothServers(`after the step ${label}`)
  }

  clearInterval(load)
  await Promise.all([...inflight])
  watching = false
  await watcher

  // --- after
  for (const [name, x] of tally) t.comment(`${name}: ${x.sent} sent, ${x.failed} failed`)
  t.same(failures.slice(0, 10), [], 'no request failed (first failures shown)')
  for (const [name, x] of tally) t.ok(x.sent > (holdMs / 100) * 2 && x.failed === 0, `${name}: 0 of ${x.sent} failed`)
  t.ok(looks > holdMs / 250, `nodes and Leases were looked at ${looks} times`)
  t.comment(`NotReady transitions: ${notReady.length}`)
  t.same(notReady, [], 'no node left Ready (from the join on)')
  t.equal(notReadyBefore, 0, 'none before the steps either (the second agent joined 10 minutes behind)')
  for (const l of leaderLeases) {
    const after = await admin.get(leasesInfo, 'kube-system', l)
    t.comment(`${l}: ${Number(after.spec.leaseTransitions ?? 0) - Number(leaderBefore.get(l)!.split('#')[1])} transitions, holder ${after.spec.holderIdentity === leaderBefore.get(l)!.split('#')[0] ? 'unchanged' : 'changed'}`)
    t.equal(`${after.spec.holderIdentity}#${after.spec.leaseTransitions ?? 0}`, leaderBefore.get(l), `${l}: same holder and transitions`)
    t.same([...holders.get(l)!].filter((h) => h !== leaderBefore.get(l) && !h.startsWith('undefined')), [], `${l}: no other holder seen meanwhile`)
  }
  t.same(statusDrops, [], 'the Ingress status kept both node addresses')
  const podsAfter = await podState()
  t.same(podsAfter.map((p) => p.uid), podsBefore.map((p) => p.uid), 'the same pods (none evicted or replaced)')
  t.same(podsAfter.map((p) => p.containers), podsBefore.map((p) => p.containers), 'the same containers')
  const restarts = podsAfter.reduce((n, p) => n + p.restarts, 0)
  t.comment(`container restarts: ${restarts}`)
  t.equal(restarts, 0, 'no container restarted')
  for (const [name, p] of Object.entries(procs)) t.ok(p.proc.alive(), `${name} still runs`)
})
