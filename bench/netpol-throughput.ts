// ClusterIP throughput with 100 NetworkPolicies in place against none: the
// per-connection cost of the policy chains on the data path.
//
//   node bench/netpol-throughput.ts
//   BENCH_POLICIES=100 BENCH_SECONDS=6 BENCH_ROUNDS=5 BENCH_LARGE_KIB=1024 BENCH_CONNECTIONS=8 node bench/netpol-throughput.ts
//
// A real one-node cluster in this process (startTestCluster with controllers
// + startTestNode: nftables service proxy, NetworkPolicy enforcer), two pods:
// `echo` running busybox httpd (as bench/service-proxy-throughput.ts: C, a
// process per connection, no keep-alive, so every request is a new
// connection and meets the policy chains) behind a ClusterIP Service, and
// `client`, a sleeping pod in whose network namespace the host's wrk runs
// (nsenter -n): the traffic is pod → ClusterIP → pod, DNATed in prerouting
// and then routed, so it passes the inet forward hook where the policy table
// sits. (wrk on the host would not: host → pod traffic leaves through the
// output hook, which the table does not hook.)
//
// Per round, same cluster, same pods: the ClusterIP with no NetworkPolicy at
// all (the table holds only its base chains and empty maps), then with
// BENCH_POLICIES policies that all select both pods for ingress and egress
// and allow this traffic only in the last of them (`np-<n-1>`, last in the
// chains): every new connection walks the client's egress chain and the
// echo pod's ingress chain to their end. The others allow other ipBlocks on
// the same port and the same peers on other ports, so their rules exist and
// do not match. Then the policies are deleted again for the next round. The
// ratio is policies / none, round by round. BENCH_SWITCH=labels keeps the
// policies and switches the pods' label they select instead (see switchBy):
// the two runs of a pair are adjacent, so a change of machine state between
// them is less likely.
//   BENCH_SWITCH=labels BENCH_SECONDS=3 BENCH_ROUNDS=10 node bench/netpol-throughput.ts

import { execFile } from 'node:child_process'
import { loadavg } from 'node:os'
import { promisify } from 'node:util'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { renderNetpol } from '../dataplane/network-policy/render.ts'
import { eventually } from '../lib/net.ts'
import { ensureImages } from '../node/images/build.ts'
import { labels } from '../node/labels.ts'
import { startTestCluster } from '../test/harness/cluster.ts'
import { docker, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../test/harness/node.ts'
import { httpdContainer, inBatches, log, parseWrk, teardowns, wrkLoad, type WrkResult, cleanupOnSignal } from './harness.ts'

const run = promisify(execFile)
const { seconds, sizes, rounds, connections } = wrkLoad
const nPolicies = Number(process.env.BENCH_POLICIES ?? 100)
// How 'none' and 'policies' take turns. objects: the policies are created and deleted (none = no NetworkPolicy at
// all; runs of a round are seconds apart). labels: the policies stay and select the two pods (label np=on) or not;
// a table where no pod is selected is the same table as one without policies (no pod chain, empty maps; checked),
// and a switch is two label writes, so each size's two runs are adjacent, in alternating order.
const switchBy = process.env.BENCH_SWITCH === 'labels' ? 'labels' : 'objects'
const ns = 'bench-nptp'
const podsInfo = lookupResource('', 'v1', 'pods')!
const svcs = lookupResource('', 'v1', 'services')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const npInfo = lookupResource('networking.k8s.io', 'v1', 'networkpolicies')!

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

/** Policy i of n: all select both pods, both directions; only the last allows client → echo:8080. */
function policy(i: number, n: number): KubeObject {
  const name = `np-${String(i).padStart(3, '0')}`
  const last = i === n - 1
  return {
    metadata: { name },
    spec: {
      podSelector: { matchLabels: { np: 'on' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: last
        ? [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }]
        : [
          { from: [{ ipBlock: { cidr: `172.16.${i % 256}.0/24` } }], ports: [{ protocol: 'TCP', port: 8080 }] },
          { from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ protocol: 'TCP', port: 9000 + i }] },
        ],
      egress: last
        ? [{ to: [{ podSelector: { matchLabels: { app: 'echo' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }]
        : [
          { to: [{ ipBlock: { cidr: `172.17.${i % 256}.0/24` } }], ports: [{ protocol: 'TCP', port: 8080 }] },
          { to: [{ podSelector: { matchLabels: { app: 'echo' } } }], ports: [{ protocol: 'TCP', port: 9000 + i }] },
        ],
    },
  }
}

interface Row { round: number; size: string; mode: string; r: WrkResult }

async function main() {
  for (const bin of ['wrk', 'nsenter']) {
    await run(bin, ['--version']).catch((e: any) => {
      if (e.code === 'ENOENT') throw new Error(`${bin} not found (Debian packages wrk, util-linux)`)
    })
  }
  await ensureImages({ progress: null, only: ['pause'] })
  const t = teardowns()
  const cleanup = cleanupOnSignal(() => t.run())
  const rows: Row[] = []
  let chainRules = ''
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ')
  const loadAtStart = load()
  try {
    const net = await pickClusterCIDR()
    const [name] = testNodeNames(1, 'nptp')
    const c = await startTestCluster(t, { identities: nodeIdentities([name!]), controllers: { clusterCIDR: net.clusterCIDR } })
    const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend: 'nftables' }, dnsPort: 0 })
    await c.client.create(nsInfo, undefined, { metadata: { name: ns } })
    await c.client.create(podsInfo, ns, {
      metadata: { name: 'echo', labels: { app: 'echo', ...(switchBy === 'objects' ? { np: 'on' } : {}) } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [httpdContainer()],
      },
    })
    await c.client.create(podsInfo, ns, {
      metadata: { name: 'client', labels: { role: 'client', ...(switchBy === 'objects' ? { np: 'on' } : {}) } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'sleep', image: 'skiff/pause:local', command: ['sleep', '3600'] }] },
    })
    const svc = await c.client.create(svcs, ns, { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
    await eventually(async () => ready(await c.client.get(podsInfo, ns, 'echo')) && ready(await c.client.get(podsInfo, ns, 'client')), { timeout: 90_000, what: 'echo and client pods Ready' })
    await eventually(() => node.agent.serviceProxy?.table?.ports.some((p) => p.service === 'echo' && p.clusterEndpoints.length === 1), { timeout: 30_000, what: 'the Service endpoint applied' })
    const [sandbox] = await docker.listContainers({ filters: { label: [`${labels.node}=${name}`, `${labels.podNamespace}=${ns}`, `${labels.podName}=client`, `${labels.role}=sandbox`] } })
    if (!sandbox) throw new Error('no sandbox container for the client pod')
    const pid = String((await docker.getContainer(sandbox.Id).inspect()).State.Pid)
    // A new connection per request fills the client namespace's ephemeral ports with TIME_WAIT (60 s): from about
    // 14,100 of them (the even half of 32768-60999, which connect() tries first) every connect() searches the
    // whole range and the load drops to ~460 requests/s until they expire, whatever the policies (seen at
    // 22:05 with ss in the client's namespace). tcp_tw_reuse=1 (per namespace) lets connect() reuse them, as a
    // client doing this in production would be configured.
    await run('nsenter', ['-t', pid, '-n', 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1'])
    const proxied = `http://${svc.spec.clusterIP}/`
    const wrk = async (url: string, secs: number): Promise<WrkResult> => {
      const { stdout } = await run('nsenter', ['-t', pid, '-n', 'wrk', '-t1', `-c${connections}`, `-d${secs}s`, '--latency', url], { timeout: (secs + 30) * 1000 })
      return parseWrk(stdout)
    }
    await eventually(async () => (await wrk(proxied, 1)).rps > 0, { timeout: 30_000, what: `${proxied} answers from the client pod` })
    const enforcer = node.agent.networkPolicy!
    const rulesOf = (pod: string, dir: 'ingress' | 'egress') => enforcer.table?.[dir].find((r) => r.pod === `${ns}/${pod}`)
    const applied = () => eventually(() => {
        const a = rulesOf('echo', 'ingress'); const b = rulesOf('client', 'egress')
        return !!a && !!b && new Set(a.allows.map((x) => x.policy)).size === nPolicies && new Set(b.allows.map((x) => x.policy)).size === nPolicies
    }, { timeout: 60_000, interval: 20, what: `${nPolicies} policies applied` })
    const empty = renderNetpol({ ...enforcer.table!, ingress: [], egress: [] }).script
    const removed = () => eventually(() => enforcer.debugText() === empty, { timeout: 60_000, interval: 20, what: 'no pod isolated: the table of no policies' })
    const label = (on: boolean) => Promise.all(['echo', 'client'].map((p) => c.client.patch(podsInfo, ns, p, { metadata: { labels: { np: on ? 'on' : null } } }, 'application/merge-patch+json')))
    const apply = async () => {
      if (switchBy === 'objects') await inBatches(nPolicies, 25, (i) => c.client.create(npInfo, ns, policy(i, nPolicies)))
      else await label(true)
      await applied()
    }
    const remove = async () => {
      if (switchBy === 'objects') await inBatches(nPolicies, 25, (i) => c.client.delete(npInfo, ns, policy(i, nPolicies).metadata.name!))
      else await label(false)
      await removed()
    }
    if (switchBy === 'labels') await inBatches(nPolicies, 25, (i) => c.client.create(npInfo, ns, policy(i, nPolicies)))
    log(`warm-up: 2 s per size without and with ${nPolicies} policies`)
    for (const [, file] of sizes) await wrk(proxied + file, 2)
    await apply()
    const r = renderNetpol(enforcer.table!)
    chainRules = `${r.rules} rules in the table; the echo pod's ingress chain ${rulesOf('echo', 'ingress')!.allows.length} allows, the client's egress chain ${rulesOf('client', 'egress')!.allows.length}`
    for (const [, file] of sizes) await wrk(proxied + file, 2)
    // The traffic is allowed with the policies (a denied connection would show as wrk errors / 0 requests).
    const check = await wrk(proxied, 1)
    if (!(check.rps > 0) || check.errors > 0) throw new Error(`the ClusterIP with the policies in place: ${check.rps} requests/s, ${check.errors} errors`)
    await remove()
    log(`${rounds} rounds of ${seconds} s per size and mode from the client pod to ${proxied} (${chainRules})`)
    for (let round = 1; round <= rounds; round++) {
      if (switchBy === 'objects') {
        for (const [size, file] of sizes) rows.push({ round, size, mode: 'none', r: await wrk(proxied + file, seconds) })
        await apply()
        for (const [size, file] of sizes) rows.push({ round, size, mode: `${nPolicies} policies`, r: await wrk(proxied + file, seconds) })
        await remove()
      } else {
        for (const [size, file] of sizes) {
          for (const on of round % 2 ? [false, true] : [true, false]) {
            if (on) await apply()
            rows.push({ round, size, mode: on ? `${nPolicies} policies` : 'none', r: await wrk(proxied + file, seconds) })
            if (on) await remove()
          }
        }
      }
      log(`round ${round}/${rounds} done`)
    }
  } finally {
    await cleanup()
  }
  const k = (x: number) => Math.round(x).toLocaleString('en-US')
  const f1 = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(2))
  const out = [
    `ClusterIP from a client pod (nsenter wrk -t1 -c${connections} -d${seconds}s) to a busybox httpd pod, no NetworkPolicy vs ${nPolicies} (${chainRules}), switched by ${switchBy === 'objects' ? 'creating and deleting the policies' : 'the pods\' label np=on (the policies stay)'}; ${new Date().toISOString()}, load average ${loadAtStart} at the start, ${load()} at the end:`,
    '',
    '| round | response | policies | requests/s | p50 ms | p99 ms | errors |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((x) => `| ${x.round} | ${x.size} | ${x.mode} | ${k(x.r.rps)} | ${f1(x.r.p50)} | ${f1(x.r.p99)} | ${x.r.errors} |`),
    '',
    `| response | with ${nPolicies} policies / none, mean of rounds | median | per round | aim |`,
    '| --- | --- | --- | --- | --- |',
  ]
  for (const [size] of sizes) {
    const mine = rows.filter((x) => x.size === size)
    const ratios = [...new Set(mine.map((x) => x.round))].map((r) => mine.find((x) => x.round === r && x.mode !== 'none')!.r.rps / mine.find((x) => x.round === r && x.mode === 'none')!.r.rps)
    const mean = ratios.reduce((a, x) => a + x, 0) / ratios.length
    const median = [...ratios].sort((a, x) => a - x)[Math.floor(ratios.length / 2)]!
    out.push(`| ${size} | ${mean.toFixed(2)}x | ${median.toFixed(2)}x | ${ratios.map((x) => x.toFixed(2)).join(', ')} | ≥ 0.95x |`)
  }
  process.stdout.write(out.join('\n') + '\n')
}

await main()
