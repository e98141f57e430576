// Pod startup latency: N pods created at once (image present), each timed
// from the start of its create request to the watch event that shows it
// Ready. A real cluster from `skiff up --nodes 3` (server, scheduler,
// controllers, 3 agents on Docker). Two images, each reported:
//   light: busybox httpd from skiff/pause:local (a static binary, starts in
//          milliseconds), readiness by tcpSocket: what Skiff itself adds;
//   echo:  the Node.js test server, readiness by httpGet /healthz: what an
//          app with a runtime to start costs (30 Node.js processes on 2 cores).
// Per pod, the watch also dates each phase as the bench sees it: scheduled
// (spec.nodeName set), sandbox up (status.podIP set), containers started
// (every containerStatus running), Ready.
//
//   node bench/pod-startup.ts            (BENCH_PODS=30, BENCH_IMAGES=light,echo by default)
//
// Reference in the same run, the direct path: the same N containers started
// straight through the Docker API on one network, each timed from its create
// call until it answers (HTTP /healthz for echo, a TCP connect for light).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient, resourcePath } from '../controlplane/client/client.ts'
import { readKubeconfig } from '../cli/kubeconfig.ts'
import { eventually } from '../lib/net.ts'
import { pickClusterCIDR } from '../test/harness/node.ts'
import { skiffCmd } from './harness.ts'

const count = Number(process.env.BENCH_PODS ?? 30)
const images = (process.env.BENCH_IMAGES ?? 'light,echo').split(',') as Array<keyof typeof variants>
const pods = lookupResource('', 'v1', 'pods')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)
const now = () => performance.now()

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

const variants = {
  light: {
    image: 'skiff/pause:local',
    command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc'],
    readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
  },
  echo: {
    image: 'skiff/echo:local',
    command: undefined,
    readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
  },
}

const phaseNames = ['scheduled', 'sandbox', 'started', 'ready'] as const
type Phases = Partial<Record<(typeof phaseNames)[number], number>>

/** N pods at once in a fresh namespace; per pod, ms from its create request to each phase seen in the watch. */
async function skiffRun(client: ApiClient, v: (typeof variants)[keyof typeof variants], ns: string): Promise<Phases[]> {
  const podSpec = {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'app', image: v.image, ...(v.command ? { command: v.command } : {}), ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: v.readinessProbe }],
  }
  await client.create(nsInfo, undefined, { metadata: { name: ns } })
  const started = new Map<string, number>()
  const phases = new Map<string, Phases>()
  let ready = 0
  const w = client.watch(resourcePath(pods, ns), { resourceVersion: '0' }, (ev) => {
    const name = ev.object.metadata?.name ?? ''
    const t0 = started.get(name)
    if (t0 === undefined) return
    const p = phases.get(name) ?? {}
    const wasReady = p.ready !== undefined
    const at = now() - t0
    const st = ev.object.status ?? {}
    const seen: Record<(typeof phaseNames)[number], boolean> = {
      scheduled: Boolean(ev.object.spec?.nodeName),
      sandbox: Boolean(st.podIP),
      started: (st.containerStatuses ?? []).length > 0 && (st.containerStatuses ?? []).every((c: any) => c.state?.running),
      ready: (st.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    }
    // A later phase seen implies the earlier ones (a status write can carry several at once).
    for (let i = phaseNames.length - 1; i >= 0; i--) {
      if (seen[phaseNames[i]!]) for (let j = 0; j <= i; j++) p[phaseNames[j]!] ??= at
    }
    if (p.ready !== undefined && !wasReady) ready++
    phases.set(name, p)
  }, () => {})
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    started.set(`p${i}`, now())
    await client.create(pods, ns, { metadata: { name: `p${i}` }, spec: podSpec })
  }))
  await eventually(() => ready === count, { timeout: 180_000, interval: 200, what: `${count} pods Ready (${ready} so far)` })
  w.stop()
  await client.delete(nsInfo, undefined, ns).catch(() => undefined)
  return [...phases.values()]
}

function tcpOpen(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port: 8080, timeout: 500 }, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
    s.on('timeout', () => {
      s.destroy()
      resolve(false)
    })
  })
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

/**
 * The direct path: N containers created and started through the Docker API on
 * one network, each timed until it answers. With `sandbox`, each is what a pod
 * is: a pause container on the network and the app joined to its network
 * namespace (NetworkMode container:ID), as Skiff and every CRI runtime do.
 */
async function dockerRun(cidr: string, v: (typeof variants)[keyof typeof variants], sandbox: boolean): Promise<number[]> {
  const docker = new Dockerode()
  const network = `skiff-bench-${process.pid}`
  const net = await docker.createNetwork({ Name: network, IPAM: { Config: [{ Subnet: cidr }] }, Labels: { 'skiff.bench': 'pod-startup' } })
  const ids: string[] = []
  const labels = { 'skiff.bench': 'pod-startup' }
  try {
    return await Promise.all(Array.from({ length: count }, async () => {
      const t0 = now()
      let ipOf = network
      let mode = network
      if (sandbox) {
        const pause = await docker.createContainer({ Image: 'skiff/pause:local', Labels: labels, HostConfig: { NetworkMode: network } })
        ids.push(pause.id)
        await pause.start()
        mode = `container:${pause.id}`
        ipOf = pause.id
      }
      const c = await docker.createContainer({ Image: v.image, ...(v.command ? { Cmd: v.command } : {}), Labels: labels, HostConfig: { NetworkMode: mode } })
      ids.push(c.id)
      await c.start()
      const ip = (await docker.getContainer(ipOf === network ? c.id : ipOf).inspect()).NetworkSettings.Networks[network]!.IPAddress
      await eventually(() => (v.command ? tcpOpen(ip) : healthz(ip)), { timeout: 60_000, interval: 50, what: `container ${c.id.slice(0, 12)} answering` })
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
  const f = (x: number | undefined) => (x === undefined ? '-' : (x / 1000).toFixed(2))
  const out: string[] = [`Pod startup, ${count} pods at once, image present, 3 nodes (s); load before: ${readFileSync('/proc/loadavg', 'utf8').trim()}`, '']
  try {
    log('skiff up --nodes 3')
    await skiffCmd(stateDir, ['up', '--port', '0', '--nodes', '3', '--cluster-cidr', clusterCIDR])
    const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
    const results: Array<{ name: string; skiff: Phases[] }> = []
    for (const name of images) {
      log(`${name}: creating ${count} pods at once`)
      results.push({ name, skiff: await skiffRun(client, variants[name], `bench-startup-${name}`) })
      await new Promise((r) => setTimeout(r, 5_000)) // let the namespace's pods go before the next round
    }
    client.close()
    await skiffCmd(stateDir, ['down'])
    out.push('| image | path | p50 | p99 | vs direct (p50) |', '| --- | --- | --- | --- | --- |')
    const phaseRows: string[] = []
    for (const r of results) {
      log(`${r.name}: direct path, ${count} pods (sandbox + app) and ${count} lone containers through the Docker API`)
      const v = variants[r.name as keyof typeof variants]
      const d = await dockerRun(podCIDR(200), v, true)
      const lone = await dockerRun(podCIDR(200), v, false)
      const ready = r.skiff.map((p) => p.ready!)
      out.push(`| ${r.name} | skiff: create request → Ready (watch) | ${f(pct(ready, 50))} | ${f(pct(ready, 99))} | ${(pct(ready, 50) / pct(d, 50)).toFixed(2)}x |`)
      out.push(`| ${r.name} | direct: pause + app containers created and started → answers | ${f(pct(d, 50))} | ${f(pct(d, 99))} | |`)
      out.push(`| ${r.name} | direct: one container, no sandbox → answers | ${f(pct(lone, 50))} | ${f(pct(lone, 99))} | |`)
      const at = (k: (typeof phaseNames)[number]) => r.skiff.map((p) => p[k]).filter((x): x is number => x !== undefined)
      phaseRows.push(`| ${r.name} | ${phaseNames.map((k) => `${f(pct(at(k), 50))} / ${f(pct(at(k), 99))}`).join(' | ')} |`)
    }
    out.push('', 'Phases, time from the create request to when the watch first showed it (s, p50 / p99):', '', `| image | ${phaseNames.join(' | ')} |`, `| --- | ${phaseNames.map(() => '---').join(' | ')} |`, ...phaseRows)
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    await skiffCmd(stateDir, ['down']).catch(() => undefined)
    rmSync(stateDir, { recursive: true, force: true })
  }
}

await main()
