// Pod startup latency: N pods created at once (image present), each timed
// from the start of its create request to the watch event that shows it
// Ready. A real cluster from `skiff up --nodes 3` (server, scheduler,
// controllers, 3 agents on Docker). Two images, each reported:
//   light: busybox httpd from skiff/pause:local (a static binary, starts in
//          milliseconds), readiness by tcpSocket: what Skiff itself adds;
//   echo:  the Node.js test server, readiness by httpGet /healthz: what an
//          app with a runtime to start costs (30 Node.js processes on 2 cores).
// Per pod, the watch dates each phase as the bench sees it (scheduled:
// spec.nodeName set; sandbox: status.podIP set; started: every
// containerStatus running; Ready), and the nodes' Engines date each container
// (Docker's Created and State.StartedAt). The CPU time of every process of
// the cluster over the pod phase is reported by category (cluster-procs.ts).
//
//   node bench/pod-startup.ts    (BENCH_PODS=30, BENCH_IMAGES=light,echo, BENCH_RATE=0: all at once; N: pods/s)
//   NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bench/pod-startup.ts
//     then node bench/cpuprofile-summary.ts /tmp/prof/FILE.cpuprofile 20 FROM-TO
//     with the pod phase's window that the run prints last
//
// References in the same run, the direct path: the same N pods (a pause
// container and the app joined to its network namespace) created and started
// straight through the Docker API, each timed from its first create call until
// it answers (HTTP /healthz for echo, a TCP connect for light):
//   - on the cluster's own three Engines and pod networks, round-robin, while
//     the cluster idles: the same Engine work as Skiff's pods, so the ratio;
//   - on this machine's one Engine, after the cluster is down, with and
//     without the pause container, for scale.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient, ApiClientError, resourcePath } from '../controlplane/client/client.ts'
import { readKubeconfig } from '../cli/kubeconfig.ts'
import { eventually } from '../lib/net.ts'
import { pickClusterCIDR } from '../test/harness/node.ts'
import { log, pct, skiffCmd } from './harness.ts'
import { names, type ClusterSpec } from '../cli/cluster-spec.ts'
import { labels, networkName } from '../node/labels.ts'
import { categories, clusterProcesses, cpuOver, machineCpu } from './cluster-procs.ts'

const count = Number(process.env.BENCH_PODS ?? 30)
const images = (process.env.BENCH_IMAGES ?? 'light,echo').split(',') as Array<keyof typeof variants>
/** Pods per second, each path creating its pods in a steady stream; 0: all at once. */
const rate = Number(process.env.BENCH_RATE ?? 0)
/** Before the i-th pod's create: nothing when all start at once, else its slot in the stream. */
const slot = (i: number) => (rate > 0 ? new Promise((r) => setTimeout(r, (1000 * i) / rate)) : undefined)
const pods = lookupResource('', 'v1', 'pods')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!
const now = () => performance.now()

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
/** What each node's Engine recorded (Docker's Created and State.StartedAt, nanosecond wall clock), per pod. */
const enginePhases = ['sandboxCreated', 'sandboxStarted', 'appCreated', 'appStarted'] as const
type EnginePhases = Partial<Record<(typeof enginePhases)[number], number>>
interface RunResult { watch: Phases[]; engine: EnginePhases[]; cpu: CpuUse; seconds: number; window: string }
type CpuUse = ReturnType<ReturnType<typeof cpuOver>>

/**
 * N pods at once in a fresh namespace; per pod, ms from its create request to
 * each phase seen in the watch, and to each container event the node's Engine
 * dated (read from every host's dockerd once all are Ready).
 */
async function skiffRun(client: ApiClient, stateDir: string, engines: Dockerode[], v: (typeof variants)[keyof typeof variants], ns: string): Promise<RunResult> {
  const podSpec = {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'app', image: v.image, ...(v.command ? { command: v.command } : {}), ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: v.readinessProbe }],
  }
  await client.create(nsInfo, undefined, { metadata: { name: ns } })
  const started = new Map<string, number>()
  const startedWall = new Map<string, number>()
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
  const cpu = cpuOver(stateDir)
  const first = now()
  const fromUs = process.hrtime.bigint() / 1000n
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    await slot(i)
    started.set(`p${i}`, now())
    startedWall.set(`p${i}`, Date.now())
    await client.create(pods, ns, { metadata: { name: `p${i}` }, spec: podSpec })
  }))
  await eventually(() => ready === count, { timeout: 180_000, interval: 50, what: `${count} pods Ready (${ready} so far)` })
  const used = cpu()
  const seconds = (now() - first) / 1000
  const window = `${fromUs}-${process.hrtime.bigint() / 1000n}`
  w.stop()
  const engine = new Map<string, EnginePhases>()
  for (const docker of engines) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${labels.podNamespace}=${ns}`] } })) {
      const name = c.Labels[labels.podName]!
      const t0 = startedWall.get(name)
      if (t0 === undefined) continue
      const info = await docker.getContainer(c.Id).inspect()
      const role = c.Labels[labels.role] === 'sandbox' ? 'sandbox' : 'app'
      const e = engine.get(name) ?? {}
      e[`${role}Created`] = Date.parse(info.Created) - t0
      e[`${role}Started`] = Date.parse(info.State.StartedAt) - t0
      engine.set(name, e)
    }
  }
  await client.delete(nsInfo, undefined, ns).catch(() => undefined)
  return { watch: [...phases.values()], engine: [...engine.values()], cpu: used, seconds, window }
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

/** Where direct-path containers go: an Engine and a network on it (the node's pod network, or one this run creates). */
interface Target { docker: Dockerode; network: string }

/**
 * The direct path: N containers created and started through the Docker API,
 * spread round-robin over `targets`, each timed until it answers. With
 * `sandbox`, each is what a pod is: a pause container on the network and the
 * app joined to its network namespace (NetworkMode container:ID), as Skiff
 * and every CRI runtime do.
 */
async function dockerRun(targets: Target[], v: (typeof variants)[keyof typeof variants], sandbox: boolean, answered?: () => void): Promise<number[]> {
  const made: Array<{ docker: Dockerode; id: string }> = []
  const labels = { 'skiff.bench': 'pod-startup' }
  try {
    const times = await Promise.all(Array.from({ length: count }, async (_, i) => {
      const { docker, network } = targets[i % targets.length]!
      await slot(i)
      const t0 = now()
      let ipOf: string | undefined
      let mode = network
      if (sandbox) {
        const pause = await docker.createContainer({ Image: 'skiff/pause:local', Labels: labels, HostConfig: { NetworkMode: network } })
        made.push({ docker, id: pause.id })
        await pause.start()
        mode = `container:${pause.id}`
        ipOf = pause.id
      }
      const c = await docker.createContainer({ Image: v.image, ...(v.command ? { Cmd: v.command } : {}), Labels: labels, HostConfig: { NetworkMode: mode } })
      made.push({ docker, id: c.id })
      await c.start()
      const ip = (await docker.getContainer(ipOf ?? c.id).inspect()).NetworkSettings.Networks[network]!.IPAddress
      await eventually(() => (v.command ? tcpOpen(ip) : healthz(ip)), { timeout: 60_000, interval: 50, what: `container ${c.id.slice(0, 12)} answering` })
      return now() - t0
    }))
    answered?.()
    return times
  } finally {
    await Promise.all(made.map(({ docker, id }) => docker.getContainer(id).remove({ force: true }).catch(() => undefined)))
  }
}

/** The direct path on this machine's own Engine, on a network of its own. */
async function localDockerRun(cidr: string, v: (typeof variants)[keyof typeof variants], sandbox: boolean): Promise<number[]> {
  const docker = new Dockerode()
  const network = `skiff-bench-${process.pid}`
  const net = await docker.createNetwork({ Name: network, IPAM: { Config: [{ Subnet: cidr }] }, Labels: { 'skiff.bench': 'pod-startup' } })
  try {
    return await dockerRun([{ docker, network }], v, sandbox)
  } finally {
    // Right after its containers are removed the network may still have endpoints: retry a little.
    await eventually(() => net.remove().then(() => true, () => false), { timeout: 10_000, interval: 250, what: `network ${network} removed` }).catch((e) => log((e as Error).message))
  }
}

/** Until the machine is at most 25% busy over 2 s (the cluster's own start-up over), at most 60 s. */
async function settle(): Promise<void> {
  const deadline = now() + 60_000
  for (;;) {
    const a = machineCpu()
    await new Promise((r) => setTimeout(r, 2_000))
    const busy = (machineCpu().busy - a.busy) / (2 * a.cores)
    if (busy <= 0.25 || now() > deadline) {
      log(`machine ${(busy * 100).toFixed(0)}% busy over 2 s: starting`)
      return
    }
  }
}

async function main() {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-startup-'))
  const { clusterCIDR, podCIDR } = await pickClusterCIDR()
  const f = (x: number | undefined) => (x === undefined ? '-' : (x / 1000).toFixed(2))
  const out: string[] = [`Pod startup, ${count} pods ${rate > 0 ? `at ${rate}/s` : 'at once'}, image present, 3 nodes (s); load before: ${readFileSync('/proc/loadavg', 'utf8').trim()}`, '']
  try {
    log('skiff up --nodes 3')
    await skiffCmd(stateDir, ['up', '--port', '0', '--nodes', '3', '--cluster-cidr', clusterCIDR])
    const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
    const spec = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterSpec
    const engines = spec.hosts.map((h) => new Dockerode({ socketPath: names.dockerSock(spec, h) }))
    const windows: string[] = []
    const skiffPids = clusterProcesses(stateDir).filter((p) => p.category === 'skiff server' || p.category === 'skiff agents').map((p) => `${p.category === 'skiff server' ? 'server' : 'agent'} ${p.pid}`)
    const nodeTargets: Target[] = spec.hosts.map((h, i) => ({ docker: engines[i]!, network: networkName(h.name) }))
    const results: Array<{ name: string; skiff: Phases[]; engine: EnginePhases[]; cpu: CpuUse; seconds: number; nodes: number[]; nodesCpu: CpuUse; nodesSeconds: number }> = []
    for (const name of images) {
      await settle()
      log(`${name}: creating ${count} pods ${rate > 0 ? `at ${rate}/s` : 'at once'}`)
      const r = await skiffRun(client, stateDir, engines, variants[name], `bench-startup-${name}`)
      windows.push(`${name} ${r.window}`)
      // The namespace and its pods gone before anything else runs on the Engines.
      await eventually(() => client.get(nsInfo, undefined, `bench-startup-${name}`).then(() => false, (e) => e instanceof ApiClientError && e.status === 404), { timeout: 120_000, interval: 250, what: `namespace bench-startup-${name} deleted` })
      // The same pods straight on the nodes' Engines and pod networks (the cluster idle): the same Engine work, no Skiff.
      log(`${name}: direct path on the nodes' Engines, ${count} pods (sandbox + app) through the Docker API`)
      const cpu = cpuOver(stateDir)
      const t0 = now()
      let nodesSeconds = 0
      let nodesCpu: CpuUse | undefined
      const nodes = await dockerRun(nodeTargets, variants[name], true, () => {
        nodesSeconds = (now() - t0) / 1000
        nodesCpu = cpu()
      })
      results.push({ name, skiff: r.watch, engine: r.engine, cpu: r.cpu, seconds: r.seconds, nodes, nodesCpu: nodesCpu!, nodesSeconds })
    }
    client.close()
    await skiffCmd(stateDir, ['down'])
    out.push('| image | path | p50 | p99 | vs direct on the nodes\' Engines (p50) |', '| --- | --- | --- | --- | --- |')
    const phaseRows: string[] = []
    const engineRows: string[] = []
    const cpuRows: string[] = []
    for (const r of results) {
      log(`${r.name}: direct path on this machine's Engine, ${count} pods (sandbox + app) and ${count} lone containers`)
      const v = variants[r.name as keyof typeof variants]
      const d = await localDockerRun(podCIDR(200), v, true)
      const lone = await localDockerRun(podCIDR(200), v, false)
      const ready = r.skiff.map((p) => p.ready!)
      const vs = (xs: number[]) => `${(pct(xs, 50) / pct(r.nodes, 50)).toFixed(2)}x`
      out.push(`| ${r.name} | skiff: create request → Ready (watch) | ${f(pct(ready, 50))} | ${f(pct(ready, 99))} | **${vs(ready)}** |`)
      out.push(`| ${r.name} | direct, the 3 nodes' Engines: pause + app created and started → answers | ${f(pct(r.nodes, 50))} | ${f(pct(r.nodes, 99))} | 1.00x |`)
      out.push(`| ${r.name} | direct, this machine's one Engine: pause + app → answers | ${f(pct(d, 50))} | ${f(pct(d, 99))} | ${vs(d)} |`)
      out.push(`| ${r.name} | direct, this machine's one Engine: one container, no sandbox → answers | ${f(pct(lone, 50))} | ${f(pct(lone, 99))} | ${vs(lone)} |`)
      const at = (k: (typeof phaseNames)[number]) => r.skiff.map((p) => p[k]).filter((x): x is number => x !== undefined)
      phaseRows.push(`| ${r.name} | ${phaseNames.map((k) => `${f(pct(at(k), 50))} / ${f(pct(at(k), 99))}`).join(' | ')} |`)
      const eat = (k: (typeof enginePhases)[number]) => r.engine.map((p) => p[k]).filter((x): x is number => x !== undefined)
      const cpuRow = (path: string, seconds: number, c: CpuUse) => `| ${r.name} | ${path} | ${seconds.toFixed(1)} | ${c.machine.toFixed(1)} | ${[...categories, 'other' as const].map((k) => c[k].toFixed(1)).join(' | ')} |`
      cpuRows.push(cpuRow('skiff', r.seconds, r.cpu), cpuRow('direct, nodes\' Engines', r.nodesSeconds, r.nodesCpu))
      engineRows.push(`| ${r.name} | ${f(pct(at('scheduled'), 50))} | ${enginePhases.map((k) => f(pct(eat(k), 50))).join(' | ')} | ${f(pct(ready, 50))} |`)
    }
    out.push('', 'Phases, time from the create request to when the watch first showed it (s, p50 / p99):', '', `| image | ${phaseNames.join(' | ')} |`, `| --- | ${phaseNames.map(() => '---').join(' | ')} |`, ...phaseRows,
      '', 'The same pods as the nodes\' Engines dated them (Docker Created and StartedAt), from the create request (s, p50):', '',
      `| image | scheduled (watch) | ${enginePhases.join(' | ')} | Ready (watch) |`, `| --- | --- | ${enginePhases.map(() => '---').join(' | ')} | --- |`, ...engineRows,
      '', `CPU seconds from the first create to the last pod Ready (or answering), by process (the machine has ${machineCpu().cores} cores; "other" is busy time of no long-lived cluster process: runc, short-lived shims, the kernel, this benchmark):`, '',
      `| image | path | wall (s) | machine busy | ${categories.join(' | ')} | other |`, `| --- | --- | --- | --- | ${categories.map(() => '---').join(' | ')} | --- |`, ...cpuRows)
    out.push('', `Pod phase windows for \`node bench/cpuprofile-summary.ts FILE [top] FROM-TO\` (CLOCK_MONOTONIC µs): ${windows.join(', ')}; the profiles' PIDs: ${skiffPids.join(', ')}`)
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    await skiffCmd(stateDir, ['down']).catch(() => undefined)
    rmSync(stateDir, { recursive: true, force: true })
  }
}

await main()
