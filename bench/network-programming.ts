// Network programming latency of the nftables service proxy at 1,000 Services
// and 10,000 endpoints: from an EndpointSlice write to the API until every
// node's proxier has the change in the kernel (its nft transaction for a
// table containing the change has returned successfully).
//
//   node bench/network-programming.ts
//   BENCH_SERVICES=1000 BENCH_ENDPOINTS=10 BENCH_CHANGES=50 BENCH_GAP_MS=300 BENCH_NODES=2 node bench/network-programming.ts
//   BENCH_CPU_PROFILE=/tmp/np.cpuprofile ...   (a CPU profile of the process during the changes)
//   BENCH_DNS=0 ...   (agents without their cluster DNS server: the proxier alone in the event loop)
//
// A real apiserver on a real redis-server and BENCH_NODES real agents in this
// process (nftables backend), no controller manager: the Services have no
// selector and their EndpointSlices are written by this benchmark as admin,
// with endpoint addresses inside the nodes' podCIDRs but no pods behind them.
// Traffic cannot follow a fake endpoint, so this measures rules in the
// kernel, not packets. A node counts as done when the table its proxier
// applied last (ServiceProxier.table, set after nft committed its transaction) has the
// change; it is polled every millisecond. The last change is also checked
// with `nft list chain` on every node. Also reported: when each node's
// proxier received the EndpointSlice event (delivery vs apply), the event-loop
// delay of the one process, and per node the syncs by kind (partial / full /
// none) with the time spent in model+plan (JavaScript) and in nft.
//
// Reference in the same run: `nft -f` applying the same full ruleset (the
// node's rendered table, under another table name) from a file, the floor of
// any full-table sync; and, on that table, a partial transaction (one
// endpoint added / removed), the floor of a partial sync.

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { NftablesBackend } from '../dataplane/service-proxy/nftables.ts'
import { buildNftModel, nftTableName, planNftSync, renderNftables, serviceChainName } from '../dataplane/service-proxy/nftables-render.ts'
import { triggerTimeAnnotation } from '../dataplane/service-proxy/proxier.ts'
import { buildRoutingTable } from '../dataplane/service-proxy/table.ts'
import { eventually } from '../lib/net.ts'
import { startTestCluster } from '../test/harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames, type TestNode } from '../test/harness/node.ts'
import { bucketPct, inBatches, log, pct, snap, teardowns, timeNft, type Snap, cleanupOnSignal } from './harness.ts'

const run = promisify(execFile)
const nServices = Number(process.env.BENCH_SERVICES ?? 1000)
const perService = Number(process.env.BENCH_ENDPOINTS ?? 10)
const nChanges = Number(process.env.BENCH_CHANGES ?? 50)
const gapMs = Number(process.env.BENCH_GAP_MS ?? 300)
const nNodes = Number(process.env.BENCH_NODES ?? 2)
// Every agent also runs the cluster DNS server, which rebuilds its zone on each EndpointSlice change in the
// same event loop (here: every agent's, one process). BENCH_DNS=0 starts the agents without it: the proxier alone.
const withDns = process.env.BENCH_DNS !== '0'
const ns = 'bench-np'
const svcs = lookupResource('', 'v1', 'services')!
const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const now = () => performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Ep { ip: string; nodeName: string }

function sliceBody(svc: number, eps: Ep[]) {
  return {
    metadata: { name: `s${svc}-1`, labels: { 'kubernetes.io/service-name': `s${svc}`, 'endpointslice.kubernetes.io/managed-by': 'bench.skiff.dev' }, annotations: { [triggerTimeAnnotation]: new Date().toISOString() } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.nodeName, conditions: { ready: true, serving: true, terminating: false } })),
  }
}

function hasEndpoints(node: TestNode, svc: number, want: Set<string>): boolean {
  const p = node.agent.serviceProxy?.table?.ports.find((x) => x.id === `${ns}/s${svc}:http`)
  if (!p || p.clusterEndpoints.length !== want.size) return false
  return p.clusterEndpoints.every((e) => want.has(e.ip))
}

async function main() {
  const t = teardowns()
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-np-'))
  const refTable = `skiff-bench-${process.pid}`
  const cleanup = cleanupOnSignal(async () => {
    await run('nft', ['delete', 'table', 'ip', refTable]).catch(() => undefined)
    rmSync(tmp, { recursive: true, force: true })
    await t.run()
  })
  try {
    const net = await pickClusterCIDR()
    const names = testNodeNames(nNodes, 'np')
    const c = await startTestCluster(t, { identities: nodeIdentities(names) })
    const nodes: TestNode[] = []
    for (const [i, name] of names.entries()) nodes.push(await startTestNode(t, c, { name, clusterCIDR: net.clusterCIDR, podCIDR: net.podCIDR(i + 1), serviceProxy: { backend: 'nftables' }, ...(withDns ? {} : { dnsPort: 0 }) }))
    // Endpoint j of Service i: on node j % nNodes, an address of its /24 (.2-.251; addresses repeat across Services).
    const epsOf = new Map<number, Ep[]>()
    for (let i = 0; i < nServices; i++) {
      epsOf.set(i, Array.from({ length: perService }, (_, j) => {
        const node = nodes[j % nNodes]!
        return { ip: node.podCIDR.replace(/\.0\/24$/, `.${((i * perService + j) % 250) + 2}`), nodeName: node.name }
      }))
    }
    await c.client.create(nsInfo, undefined, { metadata: { name: ns } })
    const load0 = now()
    log(`creating ${nServices} Services and ${nServices} EndpointSlices (${nServices * perService} endpoints)`)
    const services: KubeObject[] = []
    const slices = new Map<number, KubeObject>()
    await inBatches(nServices, 25, async (i) => void services.push(await c.client.create(svcs, ns, { metadata: { name: `s${i}` }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } })))
    await inBatches(nServices, 25, async (i) => void slices.set(i, await c.client.create(slicesInfo, ns, sliceBody(i, epsOf.get(i)!))))
    const total = nServices * perService
    await eventually(() => nodes.every((n) => {
      const tb = n.agent.serviceProxy?.table
      return tb !== undefined && tb.ports.length === nServices && tb.ports.reduce((a, p) => a + p.clusterEndpoints.length, 0) === total
    }), { timeout: 600_000, interval: 200, what: `every node's table at ${nServices} Services / ${total} endpoints` })
    const loadS = (now() - load0) / 1000
    log(`loaded in ${loadS.toFixed(1)} s; settling`)
    await sleep(3000)

    const proxiers = nodes.map((n) => n.agent.serviceProxy!)
    const modes = () => proxiers.map((p) => ({ ...(p.backend as NftablesBackend).syncs, ...(p.backend as NftablesBackend).totals }))
    const modesBefore = modes()
    const before = await Promise.all(proxiers.map(async (p) => ({ prog: await snap(p.metrics.programmingLatency), sync: await snap(p.metrics.syncDuration) })))
    const lat: number[] = []
    const delivered: number[] = []
    const eventToApplied: number[] = []
    const ack: number[] = []
    // Everything (apiserver, both agents, this loop) shares one event loop: a long block delays every node at once.
    const loop = monitorEventLoopDelay({ resolution: 10 })
    const loopAll = monitorEventLoopDelay({ resolution: 10 })
    loopAll.enable()
    let last = 0
    // BENCH_CPU_PROFILE=<file>: a V8 CPU profile of the one process during the changes only.
    const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined
    if (profiler) { profiler.connect(); await profiler.post('Profiler.enable'); await profiler.post('Profiler.start') }
    for (let k = 0; k < nChanges; k++) {
      const svc = (k * 97) % nServices
      last = svc
      const eps = [...epsOf.get(svc)!]
      // Even changes remove an endpoint, odd ones add one (.253 is outside the .2-.251 the others use).
      if (k % 2 === 0) eps.pop()
      else eps.push({ ip: nodes[0]!.podCIDR.replace(/\.0\/24$/, '.253'), nodeName: nodes[0]!.name })
      epsOf.set(svc, eps)
      const want = new Set(eps.map((e) => e.ip))
      const body = sliceBody(svc, eps)
      loop.reset(); loop.enable()
      const t0 = now()
      const written = c.client.patch(slicesInfo, ns, `s${svc}-1`, { metadata: { annotations: body.metadata.annotations }, endpoints: body.endpoints }, 'application/merge-patch+json')
      written.then(() => ack.push(now() - t0), () => undefined)
      const done = new Map<string, number>()
      const seen = new Map<string, number>()
      const deadline = t0 + 30_000
      while (done.size < nodes.length && now() < deadline) {
        for (const n of nodes) {
          const at = n.agent.serviceProxy!.lastSliceEventAt
          if (!seen.has(n.name) && at > t0) seen.set(n.name, at - t0)
          if (!done.has(n.name) && hasEndpoints(n, svc, want)) done.set(n.name, now() - t0)
        }
        if (done.size < nodes.length) await sleep(1)
      }
      slices.set(svc, await written)
      if (done.size < nodes.length) throw new Error(`change ${k} (s${svc}) not applied on every node within 30 s`)
      lat.push(Math.max(...done.values()))
      delivered.push(Math.max(...seen.values()))
      for (const [n, ms] of done) if (seen.has(n)) eventToApplied.push(ms - seen.get(n)!)
      loop.disable()
      if (lat.at(-1)! > 1000) {
        log(`  longest event-loop block during change ${k + 1}: ${(loop.max / 1e6).toFixed(0)} ms`)
        const last = (n: string) => (nodes.find((x) => x.name === n)!.agent.serviceProxy!.backend as NftablesBackend).lastSync
        log(`change ${k + 1} (s${svc}) took ${lat.at(-1)!.toFixed(0)} ms: ${[...done].map(([n, ms]) => `${n} ${ms.toFixed(0)} (slice event after ${seen.get(n)?.toFixed(0)} ms; last sync ${last(n)?.mode}: model+plan ${last(n)?.planMs.toFixed(0)} ms, nft ${last(n)?.nftMs.toFixed(0)} ms)`).join(', ')}`)
      }
      if ((k + 1) % 5 === 0) log(`change ${k + 1}/${nChanges}: ${Math.max(...done.values()).toFixed(0)} ms`)
      await sleep(gapMs)
    }
    loopAll.disable()
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop')
      writeFileSync(process.env.BENCH_CPU_PROFILE!, JSON.stringify(profile))
      profiler.disconnect()
    }
    const modesAfter = modes()
    const after = await Promise.all(proxiers.map(async (p) => ({ prog: await snap(p.metrics.programmingLatency), sync: await snap(p.metrics.syncDuration) })))

    // The kernel has it: the last change's chooser chain on every node has the right endpoint count.
    for (const n of nodes) {
      const chain = serviceChainName(n.agent.serviceProxy!.table!.ports.find((p) => p.id === `${ns}/s${last}:http`)!)
      const { stdout } = await run('nft', ['list', 'chain', 'ip', nftTableName(n.name), chain])
      const k = Number(/numgen random mod (\d+)/.exec(stdout)?.[1] ?? (/dnat to [\d.]+:\d+|goto ep-/.test(stdout) ? 1 : 0))
      if (k !== epsOf.get(last)!.length) throw new Error(`node ${n.name}: kernel chain ${chain} has ${k} endpoints, want ${epsOf.get(last)!.length}`)
    }

    // Reference and breakdown at full size, from node 1's table.
    const table = nodes[0]!.agent.serviceProxy!.table!
    let b0 = now()
    const tableCache = { entries: new Map() }
    buildRoutingTable(services, [...slices.values()], table.node, 1, tableCache)
    const buildMs = now() - b0
    // What a sync does: the same objects but one EndpointSlice at a new resourceVersion.
    const changed = [...slices.values()].map((s, i) => (i === 0 ? { ...s, metadata: { ...s.metadata, resourceVersion: `${s.metadata.resourceVersion}0` } } : s))
    b0 = now()
    buildRoutingTable(services, changed, table.node, 2, tableCache)
    const incMs = now() - b0
    b0 = now()
    const { script, rules } = renderNftables(table, refTable)
    const chains = buildNftModel(table).chains.size
    const renderMs = now() - b0
    const file = join(tmp, 'ruleset.nft')
    writeFileSync(file, script)
    const createMs = await timeNft(file)
    const replaceMs = [await timeNft(file), await timeNft(file), await timeNft(file)]
    // A partial transaction at this size, on the reference table: one endpoint added to one Service, then removed again.
    b0 = now()
    const model = buildNftModel(table)
    const modelMs = now() - b0
    const sp = table.ports[0]!
    const grown = { ...table, ports: [{ ...sp, clusterEndpoints: [...sp.clusterEndpoints, { ip: sp.clusterEndpoints[0]!.ip.replace(/\.\d+$/, '.254'), port: 8080, ready: true, serving: true, terminating: false }] }, ...table.ports.slice(1)] }
    // What a sync does: the model with the fragments of the previous one (the backend's cache), then the plan.
    const cache = { fragments: new Map() }
    const cached = buildNftModel(table, cache)
    b0 = now()
    const grownModel = buildNftModel(grown, cache)
    const warmMs = now() - b0
    b0 = now()
    const up = planNftSync({ prev: cached, next: grownModel, tableName: refTable, mode: 'partial' })
    const planMs = now() - b0
    const down = planNftSync({ prev: grownModel, next: cached, tableName: refTable, mode: 'partial' })
    const partialMs: number[] = []
    for (let i = 0; i < 3; i++) for (const plan of [up, down]) {
      writeFileSync(file, plan.script)
      partialMs.push(await timeNft(file))
    }

    const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
    const mean = (a: Snap, b: Snap) => ((b.sum - a.sum) / Math.max(1, b.count - a.count)) * 1000
    const rows = nodes.map((n, i) => {
      const a = before[i]!; const b = after[i]!
      const m0 = modesBefore[i]!; const m1 = modesAfter[i]!
      const nSync = Math.max(1, b.sync.count - a.sync.count)
      return `| ${n.name} | ${b.sync.count - a.sync.count} (${m1.partial - m0.partial} / ${m1.full - m0.full} / ${m1.none - m0.none}) | ${f(mean(a.sync, b.sync))} | ${f((m1.planMs - m0.planMs) / nSync)} / ${f((m1.nftMs - m0.nftMs) / nSync)} | ${b.prog.count - a.prog.count} | ≤ ${bucketPct(a.prog, b.prog, 50) * 1000} / ≤ ${bucketPct(a.prog, b.prog, 99) * 1000} |`
    })
    process.stdout.write(`Network programming, nftables backend, ${nNodes} nodes (${withDns ? 'each with its cluster DNS server' : 'without their DNS servers'}), ${nServices} Services, ${total} endpoints (${rules} rules + map elements, ${chains} chains per node); ${nChanges} EndpointSlice changes (one endpoint added or removed), ${gapMs} ms apart.
Measured: rules in the kernel (the proxier's nft transaction has committed), not traffic: the endpoints are fake addresses without pods.

| measure | p50 ms | p99 ms | max ms |
| --- | --- | --- | --- |
| API write → applied on every node | ${f(pct(lat, 50))} | ${f(pct(lat, 99))} | ${f(Math.max(...lat))} |
| API write → the EndpointSlice event reached every node's proxier | ${f(pct(delivered, 50))} | ${f(pct(delivered, 99))} | ${f(Math.max(...delivered))} |
| one node: the EndpointSlice event → applied on that node | ${f(pct(eventToApplied, 50))} | ${f(pct(eventToApplied, 99))} | ${f(Math.max(...eventToApplied))} |
| API write → write acknowledged | ${f(pct(ack, 50))} | ${f(pct(ack, 99))} | ${f(Math.max(...ack))} |

Slowest changes (API write → applied on every node): ${[...lat].sort((a, b) => b - a).slice(0, 5).map((x) => f(x)).join(', ')} ms.

Event-loop delay of the one process during the changes (apiserver + every agent + this loop): p99 ${f(loopAll.percentile(99) / 1e6)} ms, max ${f(loopAll.max / 1e6)} ms.

Proxier metrics during the changes (skiff_proxy_sync_duration_seconds, skiff_proxy_network_programming_duration_seconds; percentiles are histogram bucket bounds):

| node | syncs (partial / full / none) | mean sync ms | of which model+plan / nft ms | programming samples | programming p50 / p99 ms |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Full sync at this size, taken apart (node 1's table, ${(script.length / 1024).toFixed(0)} KiB script):

| step | ms |
| --- | --- |
| buildRoutingTable, whole (pure) | ${f(buildMs)} |
| buildRoutingTable, incremental: one EndpointSlice changed (what a sync does) | ${f(incMs)} |
| renderNftables (pure, model + full script) | ${f(renderMs)} |
| buildNftModel, from nothing (pure) | ${f(modelMs)} |
| buildNftModel, one endpoint added, unchanged ports from the cache (what a sync does) | ${f(warmMs)} |
| planNftSync, one endpoint added (pure) | ${f(planMs)} |
| reference: nft -f <file>, new table | ${f(createMs)} |
| reference: nft -f <file>, replacing the table (the full sync), median of 3 | ${f(pct(replaceMs, 50))} |
| nft -f <file>, partial transaction (${up.ops} commands: one endpoint added or removed), median of 6 | ${f(pct(partialMs, 50))} |

Loading ${nServices} Services + slices until every node had them: ${loadS.toFixed(1)} s.
`)
  } finally {
    await cleanup()
  }
}

await main()
