// ClusterIP throughput and latency against the direct pod address, for both
// service-proxy backends (nftables: kernel DNAT; userspace: Node.js listeners
// on the ClusterIP). Per backend: a real one-node cluster in this process
// (startTestCluster with controllers + startTestNode with
// serviceProxy: { backend }), one pod serving HTTP, a ClusterIP Service in
// front of it. wrk from the host, alternating direct and proxied:
//
//   node bench/service-proxy-throughput.ts
//   BENCH_SECONDS=6 BENCH_ROUNDS=5 BENCH_LARGE_KIB=1024 BENCH_CONNECTIONS=8 BENCH_BACKENDS=nftables,userspace node bench/service-proxy-throughput.ts
//   BENCH_CPU_PROFILE=/tmp/tp ...   (CPU profiles of the process during the rounds, /tmp/tp.<backend>.cpuprofile)
//
// The server must not be the bottleneck, or the ratio measures the server:
// busybox httpd (in skiff/pause:local, C, a process per connection, no
// keep-alive, so every request is a new TCP connection through the proxy)
// serving static files, not a Node.js process. Two loads: a 20-byte page
// (connections and requests per second) and a 1 MiB file (bytes per second
// through the path, where a userspace proxy copies every byte).
//
// Reference in the same run, the direct path: the same wrk load against the
// pod's own address (podIP:8080), alternated with the proxied runs round by
// round so both see the same machine load. One pod only, so both paths end at
// the same server. Needs `wrk` (Debian package wrk).

import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { request } from 'node:http'
import { promisify } from 'node:util'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { eventually } from '../lib/net.ts'
import { ensureImages } from '../node/images/build.ts'
import { startTestCluster } from '../test/harness/cluster.ts'
import { nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../test/harness/node.ts'
import { httpdContainer, log, parseWrk, teardowns, wrkLoad, type WrkResult } from './harness.ts'

const run = promisify(execFile)
const { seconds, sizes, rounds, connections } = wrkLoad
const backends = (process.env.BENCH_BACKENDS ?? 'nftables,userspace').split(',') as Array<'nftables' | 'userspace'>
const pods = lookupResource('', 'v1', 'pods')!
const svcs = lookupResource('', 'v1', 'services')!


async function wrk(url: string, secs: number): Promise<WrkResult> {
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, '--latency', url], { timeout: (secs + 30) * 1000 })
  return parseWrk(stdout)
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode === 200) })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

const ready = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

interface Row { backend: string; round: number; size: string; path: string; r: WrkResult }

async function benchBackend(backend: 'nftables' | 'userspace'): Promise<Row[]> {
  const t = teardowns()
  try {
    const net = await pickClusterCIDR()
    const [name] = testNodeNames(1, 'tp')
    const c = await startTestCluster(t, { identities: nodeIdentities([name!]), controllers: { clusterCIDR: net.clusterCIDR } })
    const node = await startTestNode(t, c, { name: name!, clusterCIDR: net.clusterCIDR, serviceProxy: { backend } })
    await c.client.create(pods, 'default', {
      metadata: { name: 'echo', labels: { app: 'echo' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [httpdContainer()],
      },
    })
    const svc = await c.client.create(svcs, 'default', { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
    const pod = await eventually(async () => {
      const p = await c.client.get(pods, 'default', 'echo')
      return ready(p) ? p : undefined
    }, { timeout: 90_000, what: 'echo pod Ready' })
    const direct = `http://${pod.status.podIP}:8080/`
    const proxied = `http://${svc.spec.clusterIP}/`
    await eventually(() => node.agent.serviceProxy?.table?.ports.some((p) => p.service === 'echo' && p.clusterEndpoints.length === 1), { timeout: 30_000, what: `${backend}: the Service's endpoint applied` })
    await eventually(async () => (await httpOk(direct)) && (await httpOk(proxied)), { timeout: 30_000, what: `${direct} and ${proxied} answer` })
    log(`${backend}: warm-up (2 s each), then ${rounds} rounds of ${seconds} s per size and path, direct ${direct} / proxied ${proxied}`)
    await wrk(direct, 2)
    await wrk(proxied, 2)
    const rows: Row[] = []
    // BENCH_CPU_PROFILE=<prefix>: a CPU profile of this process (apiserver, agent, a userspace proxy) during the rounds.
    const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined
    if (profiler) { profiler.connect(); await profiler.post('Profiler.enable'); await profiler.post('Profiler.start') }
    for (let round = 1; round <= rounds; round++) {
      for (const [size, file] of sizes) {
        rows.push({ backend, round, size, path: 'direct', r: await wrk(direct + file, seconds) })
        rows.push({ backend, round, size, path: 'ClusterIP', r: await wrk(proxied + file, seconds) })
      }
    }
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop')
      writeFileSync(`${process.env.BENCH_CPU_PROFILE}.${backend}.cpuprofile`, JSON.stringify(profile))
      profiler.disconnect()
    }
    return rows
  } finally {
    await t.run()
  }
}

const f1 = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(2))
const k = (x: number) => Math.round(x).toLocaleString('en-US')

async function main() {
  await run('wrk', ['--version']).catch((e: any) => {
    // wrk --version exits 1 after printing its version; only a missing binary is fatal.
    if (e.code === 'ENOENT') throw new Error('wrk not found: apt-get install wrk')
  })
  await ensureImages({ progress: null, only: ['pause'] })
  const server = await run('busybox', ['--list']).then((r) => r.stdout.split('\n').includes('httpd'), () => false)
  if (!server) throw new Error("the host's busybox has no httpd applet (skiff/pause:local copies it): install busybox-static")
  const rows: Row[] = []
  for (const b of backends) rows.push(...(await benchBackend(b)))
  const out = [
    `ClusterIP vs direct pod address, wrk -t1 -c${connections} -d${seconds}s from the host, one busybox httpd pod (a new connection per request), alternating (requests/s; latency ms p50 / p99):`,
    '',
    '| backend | round | response | path | requests/s | p50 ms | p99 ms | errors |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((x) => `| ${x.backend} | ${x.round} | ${x.size} | ${x.path} | ${k(x.r.rps)} | ${f1(x.r.p50)} | ${f1(x.r.p99)} | ${x.r.errors} |`),
    '',
    '| backend | response | proxied / direct requests/s (mean of rounds) | median | per round | aim |',
    '| --- | --- | --- | --- | --- | --- |',
  ]
  for (const b of backends) for (const [size] of sizes) {
    const mine = rows.filter((x) => x.backend === b && x.size === size)
    const ratios = [...new Set(mine.map((x) => x.round))].map((r) => mine.find((x) => x.round === r && x.path === 'ClusterIP')!.r.rps / mine.find((x) => x.round === r && x.path === 'direct')!.r.rps)
    const mean = ratios.reduce((a, x) => a + x, 0) / ratios.length
    const median = [...ratios].sort((a, x) => a - x)[Math.floor(ratios.length / 2)]!
    out.push(`| ${b} | ${size} | ${mean.toFixed(2)}x | ${median.toFixed(2)}x | ${ratios.map((x) => x.toFixed(2)).join(', ')} | ${b === 'nftables' ? '≥ 0.95x' : '≥ 0.5x'} |`)
  }
  process.stdout.write(out.join('\n') + '\n')
}

await main()
