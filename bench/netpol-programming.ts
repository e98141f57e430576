// NetworkPolicy programming latency at 1,000 NetworkPolicies: from an API
// write (a pod label flipped so that policies start / stop selecting it, a
// policy created / deleted) until every node's enforcer has committed an nft
// transaction whose table contains the change.
//
//   node bench/netpol-programming.ts
//   BENCH_POLICIES=1000 BENCH_NAMESPACES=20 BENCH_PODS=1000 BENCH_POD_NODES=10 BENCH_NODES=2 BENCH_CHANGES=50 BENCH_GAP_MS=300 node bench/netpol-programming.ts
//   BENCH_CPU_PROFILE=/tmp/npp.cpuprofile ...   (a CPU profile of the process during the changes)
//
// A real apiserver on a real redis-server, no controller manager, and
// BENCH_NODES NetworkPolicyEnforcers in this process: the class the agent
// runs, with the options the agent gives it (the node's own identity as its
// client, its addresses), each applying its table to this machine's kernel.
// The pods are API objects only (spec.nodeName + status.podIP written as
// admin): the enforcer derives its rules from Pod objects alone (compile.ts:
// podIP, nodeName, labels, container ports, phase), never from containers,
// and a whole agent would start containers for every pod bound to it. So the
// nodes are enforcers without a kubelet, service proxy or DNS server in
// their event loop; the pods spread over BENCH_POD_NODES node names (the
// enforcers' nodes among them), the others are peers only. Addresses come
// from a cluster CIDR no Docker network uses, so the live tables drop
// nothing real.
//
// A node counts as done when the script its enforcer last committed
// (debugText(), set after nft returned success) equals the one computed here
// for the cluster after the change (compileNetworkPolicy + renderNetpol on
// this benchmark's own copy of the objects); polled every millisecond. Every
// change is chosen to change every node's table (checked, and reported when
// not). The last change is also checked with `nft list table` on every node.
//
// Reference in the same run: `nft -f` of node 1's rendered table from a file
// under another table name (created, then replaced: the floor of any sync,
// since every sync replaces the whole table), and the pure steps (compile,
// render) at this size.

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { compileNetworkPolicy } from '../dataplane/network-policy/compile.ts'
import { NetworkPolicyEnforcer, removeNetpolTable } from '../dataplane/network-policy/enforcer.ts'
import { netpolTableName, renderNetpol } from '../dataplane/network-policy/render.ts'
import { silentLogger } from '../lib/log.ts'
import { startTestCluster } from '../test/harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, testNodeNames } from '../test/harness/node.ts'
import { bucketPct, inBatches, log, pct, snap, teardowns, timeNft, type Snap, cleanupOnSignal } from './harness.ts'

const run = promisify(execFile)
const nPolicies = Number(process.env.BENCH_POLICIES ?? 1000)
const nNs = Number(process.env.BENCH_NAMESPACES ?? 20)
const nPods = Number(process.env.BENCH_PODS ?? 1000)
const podNodes = Number(process.env.BENCH_POD_NODES ?? 10)
const nNodes = Number(process.env.BENCH_NODES ?? 2)
const nChanges = Number(process.env.BENCH_CHANGES ?? 50)
const gapMs = Number(process.env.BENCH_GAP_MS ?? 300)
const perNs = Math.ceil(nPolicies / nNs)
const podsPerNs = Math.ceil(nPods / nNs)
const podsInfo = lookupResource('', 'v1', 'pods')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const npInfo = lookupResource('networking.k8s.io', 'v1', 'networkpolicies')!
const now = () => performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const tiers = ['web', 'api', 'db']

const nsName = (i: number) => `bench-npp-${i}`

/**
 * The standing policies of namespace i (perNs of them): default deny, same-namespace allow, the two the label
 * flips use, and a mix of podSelector / namespaceSelector (with and without a podSelector, matchExpressions),
 * ipBlock with except, numeric, named and ranged ports, egress with DNS and an ipBlock.
 */
function policiesOf(i: number, cidr16: string): KubeObject[] {
  const ns = nsName(i)
  const out: KubeObject[] = [
    { metadata: { name: 'default-deny-ingress' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } },
    { metadata: { name: 'allow-same-namespace' }, spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] } },
    // Label flips: a pod with access=granted is a peer of every pod of its namespace, and egress-isolated itself.
    { metadata: { name: 'allow-granted' }, spec: { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { access: 'granted' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] } },
    { metadata: { name: 'granted-egress' }, spec: { podSelector: { matchLabels: { access: 'granted' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }], ports: [{ protocol: 'TCP', port: 443 }] }] } },
  ]
  for (let k = out.length; k < perNs; k++) {
    const app = `a${k % 10}`
    const name = `p${String(k).padStart(3, '0')}`
    switch (k % 6) {
      case 0: out.push({ metadata: { name }, spec: { podSelector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] } }); break
      case 1: out.push({ metadata: { name }, spec: { podSelector: { matchLabels: { app, tier: 'api' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${(i + k) % 5}` } }, podSelector: { matchLabels: { app: `a${(k + 1) % 10}` } } }], ports: [{ port: 'http' }] }] } }); break
      case 2: out.push({ metadata: { name }, spec: { podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'db'] }] }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: [cidr16.replace(/\.0\.0\/16$/, '.200.0/24')] } }], ports: [{ protocol: 'TCP', port: 9000, endPort: 9100 }] }] } }); break
      case 3: out.push({ metadata: { name }, spec: { podSelector: { matchLabels: { app } }, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: `a${(k + 3) % 10}` } } }] }], egress: [
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }], ports: [{ protocol: 'TCP', port: 443 }] },
        { to: [{ namespaceSelector: { matchLabels: { team: 't0', env: 'prod' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
        { to: [{ podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ protocol: 'TCP', port: 5432 }] },
      ] } }); break
      case 4: out.push({ metadata: { name }, spec: { podSelector: { matchLabels: { app, version: `v${k % 2}` } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ protocol: 'TCP', port: 9090 }, { protocol: 'UDP', port: 9091 }] }] } }); break
      default: out.push({ metadata: { name }, spec: { podSelector: { matchLabels: { tier: 'db', app } }, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'api' } } }, { ipBlock: { cidr: '192.168.0.0/16' } }], ports: [{ protocol: 'TCP', port: 5432 }] }] } })
    }
  }
  return out.map((p) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...p, metadata: { ...p.metadata, namespace: ns } }))
}

/** The policy a create / delete change adds / removes. */
function changePolicy(ns: string, k: number): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
    metadata: { name: `bench-change-${k}`, namespace: ns },
    spec: {
      podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${k % 5}` } }, podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ protocol: 'TCP', port: 8443 }] }],
    },
  }
}

async function main() {
  const t = teardowns()
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-bench-npp-'))
  const refTable = `skiff-npbench-${process.pid}`
  const enforcers: NetworkPolicyEnforcer[] = []
  let names: string[] = []
  const cleanup = cleanupOnSignal(async () => {
    for (const e of enforcers) await e.stop({ cleanup: true }).catch(() => undefined)
    for (const n of names) await removeNetpolTable(n).catch(() => undefined)
    await run('nft', ['delete', 'table', 'inet', refTable]).catch(() => undefined)
    rmSync(tmp, { recursive: true, force: true })
    await t.run()
  })
  try {
    const net = await pickClusterCIDR()
    names = testNodeNames(podNodes, 'npp')
    const measured = names.slice(0, nNodes)
    const c = await startTestCluster(t, { identities: nodeIdentities(measured) })
    const load0 = now()
    // The objects as this benchmark knows them (what the server returned), for the expected tables.
    const namespaces: KubeObject[] = []
    const pods = new Map<string, KubeObject>()
    const policies = new Map<string, KubeObject>()
    const key = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`
    for (let i = 0; i < nNs; i++) namespaces.push(await c.client.create(nsInfo, undefined, { metadata: { name: nsName(i), labels: { team: `t${i % 5}`, env: i % 2 ? 'prod' : 'dev' } } }))
    log(`creating ${nNs * podsPerNs} pods (API objects with status.podIP) over ${podNodes} node names`)
    const perNode = new Map<number, number>()
    await inBatches(nNs * podsPerNs, 25, async (x) => {
      const i = Math.floor(x / podsPerNs)
      const j = x % podsPerNs
      // Spread so that every (namespace, tier) has pods on many nodes.
      const node = (j * 7 + i * 3 + Math.floor(j / 10)) % podNodes
      const body = {
        metadata: { name: `pod-${j}`, labels: { app: `a${j % 10}`, tier: tiers[j % 3]!, version: `v${Math.floor(j / 3) % 2}` } },
        spec: { nodeName: names[node]!, containers: [{ name: 'app', image: 'skiff/pause:local', ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }] }] },
      }
      await c.client.create(podsInfo, nsName(i), body)
      const n = perNode.get(node) ?? 0
      perNode.set(node, n + 1)
      const ip = net.podCIDR(node + 1).replace(/\.\d+\.0\/24$/, `.${node + 1 + Math.floor(n / 250) * 20}.${(n % 250) + 2}`)
      const p = await c.client.patch(podsInfo, nsName(i), `pod-${j}`, { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, 'application/merge-patch+json', 'status')
      if (p.status?.podIP !== ip) throw new Error(`pod ${nsName(i)}/pod-${j}: status.podIP not set (${JSON.stringify(p.status)})`)
      pods.set(key(p), p)
    })
    log(`creating ${nNs * perNs} NetworkPolicies`)
    const all = Array.from({ length: nNs }, (_, i) => policiesOf(i, net.clusterCIDR)).flat()
    await inBatches(all.length, 25, async (x) => { const p = await c.client.create(npInfo, all[x]!.metadata.namespace, all[x]!); policies.set(key(p), p) })
    log(`loaded in ${((now() - load0) / 1000).toFixed(1)} s; starting ${nNodes} enforcers`)

    const nodeIPs = (i: number) => [`192.0.2.${i + 1}`]
    const start0 = now()
    for (const [i, name] of measured.entries()) {
      const e = new NetworkPolicyEnforcer({ client: c.clientFor(c.tokens.get(`system:node:${name}`)!), nodeName: name, nodeIPs: nodeIPs(i), logger: silentLogger() })
      enforcers.push(e)
      await e.start()
    }
    const startS = (now() - start0) / 1000
    const expected = (i: number) => renderNetpol(compileNetworkPolicy({ node: measured[i]!, nodeIPs: nodeIPs(i), policies: [...policies.values()], pods: [...pods.values()], namespaces }), netpolTableName(measured[i]!)).script
    let current = measured.map((_, i) => expected(i))
    for (const [i, e] of enforcers.entries()) if (e.debugText() !== current[i]) throw new Error(`node ${measured[i]}: the first applied table is not the expected one`)
    const sizes = enforcers.map((e) => ({ chains: e.table!.ingress.length + e.table!.egress.length, rules: 0 }))
    for (const [i, s] of sizes.entries()) s.rules = renderNetpol(enforcers[i]!.table!).rules
    log(`enforcers started in ${startS.toFixed(1)} s (${sizes.map((s, i) => `${measured[i]}: ${s.chains} pod chains, ${s.rules} rules`).join('; ')}); settling`)
    await sleep(2000)

    const before = await Promise.all(enforcers.map(async (e) => ({ prog: await snap(e.metrics.programmingLatency), sync: await snap(e.metrics.syncDuration) })))
    const lat: number[] = []
    const perKind = new Map<string, number[]>()
    const ack: number[] = []
    let unchanged = 0
    let marker = { comment: '', present: false }
    const loopAll = monitorEventLoopDelay({ resolution: 10 })
    loopAll.enable()
    const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined
    if (profiler) { profiler.connect(); await profiler.post('Profiler.enable'); await profiler.post('Profiler.start') }
    let flipped: KubeObject | undefined
    let created: KubeObject | undefined
    for (let k = 0; k < nChanges; k++) {
      const ns = nsName(Math.floor(k / 4) % nNs)
      let kind: string
      let write: () => Promise<KubeObject | undefined>
      if (k % 2 === 0) {
        // A label flip: on (access=granted: allow-granted now has a peer on every node, granted-egress selects it), then off.
        const on = !flipped
        kind = on ? 'pod label added (policies start selecting it)' : 'pod label removed (policies stop selecting it)'
        const target = flipped ?? [...pods.values()].find((p) => p.metadata.namespace === ns && p.spec.nodeName === measured[Math.floor(k / 4) % nNodes])!
        const labels = { ...target.metadata.labels }
        if (on) labels.access = 'granted'
        else delete labels.access
        pods.set(key(target), { ...target, metadata: { ...target.metadata, labels } })
        flipped = on ? target : undefined
        marker = { comment: `${target.metadata.namespace}/allow-granted`, present: on }
        write = async () => c.client.patch(podsInfo, target.metadata.namespace, target.metadata.name!, { metadata: { labels: { access: on ? 'granted' : null } } }, 'application/merge-patch+json')
      } else if (!created) {
        const p = changePolicy(ns, k)
        kind = 'policy created'
        policies.set(key(p), p)
        created = p
        marker = { comment: key(p), present: true }
        write = () => c.client.create(npInfo, ns, p)
      } else {
        const p = created
        kind = 'policy deleted'
        policies.delete(key(p))
        created = undefined
        marker = { comment: key(p), present: false }
        write = async () => { await c.client.delete(npInfo, p.metadata.namespace, p.metadata.name!); return undefined }
      }
      const want = measured.map((_, i) => expected(i))
      const changing = measured.map((_, i) => want[i] !== current[i])
      unchanged += changing.filter((x) => !x).length
      const seenTable = enforcers.map((e) => e.table)
      const t0 = now()
      const written = write()
      written.then(() => ack.push(now() - t0), () => undefined)
      const done = new Map<number, number>()
      const deadline = t0 + 30_000
      while (done.size < nNodes && now() < deadline) {
        for (const [i, e] of enforcers.entries()) {
          if (done.has(i)) continue
          if (!changing[i]) { done.set(i, 0); continue }
          if (e.table !== seenTable[i]) {
            seenTable[i] = e.table
            if (e.debugText() === want[i]) done.set(i, now() - t0)
          }
        }
        if (done.size < nNodes) await sleep(1)
      }
      const w = await written
      if (w && kind.startsWith('pod')) pods.set(key(w), w)
      if (w && kind === 'policy created') { policies.set(key(w), w); created = w }
      if (done.size < nNodes) throw new Error(`change ${k + 1} (${kind}) not applied on every node within 30 s: ${measured.filter((_, i) => !done.has(i)).join(', ')}`)
      current = want
      const ms = Math.max(...done.values())
      lat.push(ms)
      perKind.set(kind, [...(perKind.get(kind) ?? []), ms])
      if ((k + 1) % 5 === 0) log(`change ${k + 1}/${nChanges} (${kind}): ${ms.toFixed(0)} ms`)
      await sleep(gapMs)
    }
    loopAll.disable()
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop')
      writeFileSync(process.env.BENCH_CPU_PROFILE!, JSON.stringify(profile))
      profiler.disconnect()
    }
    const after = await Promise.all(enforcers.map(async (e) => ({ prog: await snap(e.metrics.programmingLatency), sync: await snap(e.metrics.syncDuration) })))

    // The kernel has the last change, on every node.
    for (const [i, name] of measured.entries()) {
      const { stdout } = await run('nft', ['list', 'table', 'inet', netpolTableName(name)], { maxBuffer: 1 << 28 })
      if (stdout.includes(`comment "${marker.comment}"`) !== marker.present) throw new Error(`node ${name}: the kernel table ${marker.present ? 'lacks' : 'still has'} rules of ${marker.comment}`)
      if (i === 0) log(`nft list table on every node: rules of ${marker.comment} ${marker.present ? 'present' : 'absent'} as expected`)
    }

    // Reference and breakdown at this size, node 1's inputs.
    const input = { node: measured[0]!, nodeIPs: nodeIPs(0), policies: [...policies.values()], pods: [...pods.values()], namespaces }
    const compileMs: number[] = []
    const renderMs: number[] = []
    let script = ''
    let rules = 0
    for (let r = 0; r < 3; r++) {
      let b0 = now()
      const tb = compileNetworkPolicy(input)
      compileMs.push(now() - b0)
      b0 = now()
      ;({ script, rules } = renderNetpol(tb, refTable))
      renderMs.push(now() - b0)
    }
    const file = join(tmp, 'netpol.nft')
    writeFileSync(file, script)
    const createMs = await timeNft(file)
    const replaceMs = [await timeNft(file), await timeNft(file), await timeNft(file)]
    await run('nft', ['delete', 'table', 'inet', refTable])

    const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
    const mean = (a: Snap, b: Snap) => ((b.sum - a.sum) / Math.max(1, b.count - a.count)) * 1000
    const rows = measured.map((n, i) => {
      const a = before[i]!; const b = after[i]!
      return `| ${n} | ${sizes[i]!.chains} / ${sizes[i]!.rules} | ${b.sync.count - a.sync.count} | ${f(mean(a.sync, b.sync))} | ${b.prog.count - a.prog.count} | ≤ ${bucketPct(a.prog, b.prog, 50) * 1000} / ≤ ${bucketPct(a.prog, b.prog, 99) * 1000} |`
    })
    process.stdout.write(`NetworkPolicy programming, ${nNodes} enforcers (nodes ${measured.join(', ')}), ${policies.size} NetworkPolicies in ${nNs} namespaces, ${pods.size} pods over ${podNodes} nodes; ${nChanges} changes ${gapMs} ms apart (label flips, policy creates and deletes, in turn).
Measured: the enforcer's nft transaction has committed a table equal to the expected one after the change (every change changes every node's table${unchanged ? `; except ${unchanged} node-changes that did not, counted as 0 ms` : ''}).

| measure | p50 ms | p99 ms | max ms |
| --- | --- | --- | --- |
| API write → committed on every node | ${f(pct(lat, 50))} | ${f(pct(lat, 99))} | ${f(Math.max(...lat))} |
${[...perKind].map(([kind, xs]) => `| of which: ${kind} (${xs.length}) | ${f(pct(xs, 50))} | ${f(pct(xs, 99))} | ${f(Math.max(...xs))} |`).join('\n')}
| API write → write acknowledged | ${f(pct(ack, 50))} | ${f(pct(ack, 99))} | ${f(Math.max(...ack))} |

Slowest changes: ${[...lat].sort((a, b) => b - a).slice(0, 5).map((x) => f(x)).join(', ')} ms.
Event-loop delay of the one process during the changes (apiserver + every enforcer + this loop): p99 ${f(loopAll.percentile(99) / 1e6)} ms, max ${f(loopAll.max / 1e6)} ms.

Enforcer metrics during the changes (skiff_netpol_sync_duration_seconds, skiff_netpol_network_programming_duration_seconds; percentiles are bucket bounds):

| node | pod chains / rules | syncs | mean sync ms | programming samples | programming p50 / p99 ms |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

One sync at this size, taken apart (node 1's inputs, ${(script.length / 1024).toFixed(0)} KiB script, ${rules} rules):

| step | ms |
| --- | --- |
| compileNetworkPolicy (pure), median of 3 | ${f(pct(compileMs, 50))} |
| renderNetpol (pure), median of 3 | ${f(pct(renderMs, 50))} |
| reference: nft -f <file>, new table | ${f(createMs)} |
| reference: nft -f <file>, replacing the table (what every sync does), median of 3 | ${f(pct(replaceMs, 50))} |

Enforcers' start (list + first sync): ${startS.toFixed(1)} s.
`)
  } finally {
    await cleanup()
  }
}

await main()
