// Pod-to-pod TCP throughput across hosts (host-gw, vxlan) against the same
// pair of pods on one host, in the same run and the same namespaces. Two
// simulated hosts (test/harness/netns-hosts.ts: a LAN bridge, a namespace per
// host with a pod bridge, two pod namespaces per host), each running its
// PodNetwork in a child process; pods get the MTU the module returns. iperf3
// (one stream, -t BENCH_SECONDS) alternates the same-host pair (h1p1 ->
// h1p2) and the cross-host pair (h1p1 -> h2p1), BENCH_ROUNDS times per mode.
// `vxlan-csum-off` is vxlan with `ethtool -K skiff.1 tx-checksum-ip-generic
// off` (flannel's documented workaround), to show what it costs.
//
//   node bench/pod-network.ts            BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_MODES=host-gw,vxlan,vxlan-csum-off

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSimNet, sh, type SimNet } from '../test/harness/netns-hosts.ts'
import { PodNetworkHost, simNode } from '../test/harness/pod-network-host.ts'
import { log, teardowns } from './harness.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const modes = (process.env.BENCH_MODES ?? 'host-gw,vxlan,vxlan-csum-off').split(',')
const port = 5201

/** One iperf3 client run from a namespace: received Gbit/s and retransmits. */
async function iperf(ns: string, server: string): Promise<{ gbps: number; retransmits: number }> {
  const r = await sh('iperf3', ['-c', server, '-p', String(port), '-t', String(seconds), '-J'], { netns: ns, timeoutMs: (seconds + 15) * 1000, allowFail: true })
  let j: any
  try {
    j = JSON.parse(r.stdout)
  } catch {
    throw new Error(`iperf3 to ${server} failed (${r.code}): ${r.stderr.trim() || r.stdout.slice(0, 300)}; is iperf3 installed? (scripts/setup.sh installs it)`)
  }
  if (j.error) throw new Error(`iperf3 to ${server}: ${j.error}`)
  return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0 }
}

function iperfServer(ns: string, ip: string): ChildProcess {
  return spawn('nsenter', [`--net=/run/netns/${ns}`, 'iperf3', '-s', '-B', ip, '-p', String(port)], { stdio: 'ignore' })
}

interface Row { mode: string; round: number; same: number; cross: number; sameRetr: number; crossRetr: number }

async function measure(mode: string): Promise<Row[]> {
  const t = teardowns()
  const rows: Row[] = []
  try {
    const net: SimNet = await createSimNet({ hosts: 2, podsPerHost: 2 })
    t.teardown(() => net.remove())
    const stateRoot = await mkdtemp(join(tmpdir(), 'skiff-podnet-bench-'))
    t.teardown(() => rm(stateRoot, { recursive: true, force: true }))
    const kind = mode.startsWith('vxlan') ? 'vxlan' : 'host-gw'
    const annotations: Record<string, Record<string, string>> = {}
    let mtu = 0
    const procs: PodNetworkHost[] = []
    t.teardown(() => procs.forEach((p) => p.kill()))
    for (const h of net.hosts) {
      const p = new PodNetworkHost(h)
      procs.push(p)
      const s = await p.start({ mode: kind, nodeName: h.name, nodeIP: h.ip, podCIDR: h.podCIDR, clusterCIDR: net.clusterCIDR, stateDir: join(stateRoot, h.name), disableTxChecksumOffload: mode === 'vxlan-csum-off' })
      annotations[h.name] = s.annotations
      mtu = s.mtu
    }
    await net.setPodMtu(mtu)
    const nodes = net.hosts.map((h) => simNode(h, { annotations: annotations[h.name] }))
    for (const p of procs) {
      const st = await p.update(nodes)
      if (st.errors.length) throw new Error(`${p.host.name}: ${st.errors.join('; ')}`)
    }
    const [h1, h2] = net.hosts
    const same = h1!.pods[1]!
    const cross = h2!.pods[0]!
    const servers = [iperfServer(same.ns, same.ip), iperfServer(cross.ns, cross.ip)]
    t.teardown(() => servers.forEach((s) => s.kill('SIGKILL')))
    await new Promise((r) => setTimeout(r, 500)) // iperf3 -s has no readiness signal; a failed first run would say so
    log(`${mode}: pod MTU ${mtu}, ${rounds} rounds of ${seconds} s per path`)
    for (let round = 1; round <= rounds; round++) {
      const a = await iperf(h1!.pods[0]!.ns, same.ip)
      const b = await iperf(h1!.pods[0]!.ns, cross.ip)
      rows.push({ mode, round, same: a.gbps, cross: b.gbps, sameRetr: a.retransmits, crossRetr: b.retransmits })
      log(`${mode} round ${round}: same host ${a.gbps.toFixed(2)} Gbit/s, across hosts ${b.gbps.toFixed(2)} Gbit/s (${(b.gbps / a.gbps).toFixed(2)}x)`)
    }
  } finally {
    await t.run()
  }
  return rows
}

const all: Row[] = []
for (const mode of modes) all.push(...(await measure(mode)))
const f = (n: number) => n.toFixed(2)
console.log(`\nPod-to-pod TCP throughput, one iperf3 stream, ${seconds} s per run (Gbit/s received)\n`)
console.log('| mode | round | same host | across hosts | ratio | retransmits same / across |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const r of all) console.log(`| ${r.mode} | ${r.round} | ${f(r.same)} | ${f(r.cross)} | ${f(r.cross / r.same)}x | ${r.sameRetr} / ${r.crossRetr} |`)
console.log('\nacross / same host (median of the rounds; total across / total same host; every round):')
for (const mode of modes) {
  const rs = all.filter((r) => r.mode === mode)
  const ratios = rs.map((r) => r.cross / r.same)
  const sorted = [...ratios].sort((a, b) => a - b)
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
  const total = rs.reduce((a, r) => a + r.cross, 0) / rs.reduce((a, r) => a + r.same, 0)
  const aim = mode === 'host-gw' ? ' (aim >= 0.9x)' : mode === 'vxlan' ? ' (aim >= 0.7x)' : ''
  console.log(`  ${mode}: median ${f(median)}x, totals ${f(total)}x${aim}; rounds ${ratios.map(f).join(', ')}`)
}
console.log(`\nreproduce: BENCH_SECONDS=${seconds} BENCH_ROUNDS=${rounds} BENCH_MODES=${modes.join(',')} node bench/pod-network.ts`)
