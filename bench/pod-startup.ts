// Pod startup latency: N pods created at once (image present), each timed
// from the start of its create request to the watch event that shows it
// Ready (readiness probe on the echo server). A real cluster from
// `skiff up --nodes 3` (server, scheduler, controllers, 3 agents on Docker).
//
//   node bench/pod-startup.ts            (BENCH_PODS=30 by default)
//
// Reference in the same run, the direct path: the same N echo containers
// started straight through the Docker API on one network, each timed from
// its create call until its /healthz answers over HTTP.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Dockerode from 'dockerode'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient, resourcePath } from '../controlplane/client/client.ts'
import { readKubeconfig } from '../cli/kubeconfig.ts'
import { eventually } from '../lib/net.ts'
import { pickClusterCIDR } from '../test/harness/node.ts'

const count = Number(process.env.BENCH_PODS ?? 30)
const skiff = fileURLToPath(new URL('../cli/skiff.ts', import.meta.url))
const pods = lookupResource('', 'v1', 'pods')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)
const now = () => performance.now()

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

function skiffCmd(stateDir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [skiff, '--state-dir', stateDir, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`skiff ${args.join(' ')} exited ${code}`))))
  })
}

const podSpec = {
  terminationGracePeriodSeconds: 1,
  containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 } }],
}

async function skiffRun(client: ApiClient): Promise<number[]> {
  await client.create(nsInfo, undefined, { metadata: { name: 'bench-startup' } })
  const started = new Map<string, number>()
  const lat = new Map<string, number>()
  const w = client.watch(resourcePath(pods, 'bench-startup'), { resourceVersion: '0' }, (ev) => {
    const name = ev.object.metadata?.name ?? ''
    const ready = (ev.object.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
    if (ready && started.has(name) && !lat.has(name)) lat.set(name, now() - started.get(name)!)
  }, () => {})
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    started.set(`p${i}`, now())
    await client.create(pods, 'bench-startup', { metadata: { name: `p${i}` }, spec: podSpec })
  }))
  await eventually(() => lat.size === count, { timeout: 180_000, interval: 200, what: `${count} pods Ready (${lat.size} so far)` })
  w.stop()
  return [...lat.values()]
}

function healthz(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: ip, port: 8080, path: '/healthz', timeout: 500 }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

async function dockerRun(cidr: string): Promise<number[]> {
  const docker = new Dockerode()
  const net = await docker.createNetwork({ Name: `skiff-bench-${process.pid}`, IPAM: { Config: [{ Subnet: cidr }] }, Labels: { 'skiff.bench': 'pod-startup' } })
  const ids: string[] = []
  try {
    return await Promise.all(Array.from({ length: count }, async () => {
      const t0 = now()
      const c = await docker.createContainer({ Image: 'skiff/echo:local', Labels: { 'skiff.bench': 'pod-startup' }, HostConfig: { NetworkMode: `skiff-bench-${process.pid}` } })
      ids.push(c.id)
      await c.start()
      const ip = (await c.inspect()).NetworkSettings.Networks[`skiff-bench-${process.pid}`]!.IPAddress
      await eventually(() => healthz(ip), { timeout: 60_000, interval: 50, what: `container ${c.id.slice(0, 12)} /healthz` })
      return now() - t0
    }))
  } finally {
    await Promise.all(ids.map((id) => docker.getContainer(id).remove({ force: true }).catch(() => undefined)))
    await net.remove().catch(() => undefined)
  }
}

async function main() {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-startup-'))
  const { clusterCIDR, podCIDR } = await pickClusterCIDR()
  try {
    log('skiff up --nodes 3')
    await skiffCmd(stateDir, ['up', '--port', '0', '--nodes', '3', '--cluster-cidr', clusterCIDR])
    const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
    log(`creating ${count} pods at once`)
    const s = await skiffRun(client)
    client.close()
    await skiffCmd(stateDir, ['down'])
    log(`direct path: ${count} containers through the Docker API`)
    const d = await dockerRun(podCIDR(200))
    const f = (x: number) => (x / 1000).toFixed(2)
    process.stdout.write(`Pod startup, ${count} pods at once, image present (s, p50 / p99):

| path | p50 | p99 |
| --- | --- | --- |
| skiff: create request → Ready (watch), 3 nodes | ${f(pct(s, 50))} | ${f(pct(s, 99))} |
| direct: docker create+start → /healthz answers | ${f(pct(d, 50))} | ${f(pct(d, 99))} |

skiff p50 is ${(pct(s, 50) / pct(d, 50)).toFixed(1)}x the direct path.
`)
  } finally {
    await skiffCmd(stateDir, ['down']).catch(() => undefined)
    rmSync(stateDir, { recursive: true, force: true })
  }
}

await main()
