// `skiff up` / `stop` / `down` / `host`: a local cluster on this machine, in
// the background, its state under one folder (.skiff/ by default):
//   cluster.json      what the cluster is (cluster-spec.ts): kept, so `up` resumes it
//   state.json        the supervisor's pids and phase (supervisor.ts)
//   redis/            redis.conf (0600, holds the password), AOF data
//   pki/, tokens.csv, encryption.key, kubeconfig   (the server's state)
//   hosts/<node>/     each simulated host's disk: its Engine's data-root, its agent's state
//   logs/             supervisor, redis, server, dockerd-<node>, agent-<node>
// `up` returns once every node is Ready and every ingress controller serves.
// Run again it reports the running cluster; on a stopped or half-running one
// it resumes it with the same data, CA, tokens and pods. It never deletes
// state: only `down` does.

import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { join, resolve } from 'node:path'
import { freePort, eventually } from '../lib/net.ts'
import { readKubeconfig } from './kubeconfig.ts'
import { waitIngressServing, waitNodesReady } from './nodes.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { ensureImages } from '../node/images/build.ts'
import { lookupResource } from '../controlplane/api/resources.ts'
import { publishedIP } from '../dataplane/ingress/status.ts'
import { defaultIngressPools, ignoredFlags, names, planCluster, type ClusterSpec, type PodNetworkMode, type SpecOptions } from './cluster-spec.ts'
import { processMatches, processesUsing, stopPids } from './procs.ts'
import { readSupervisorState } from './supervisor.ts'
import { skiffEntry } from './supervisor-plan.ts'
import { apiserverURL, kubeconfigFor, readSpecIfAny, readyz, writeSpec } from './supervisor-steps.ts'
import { removeHost, removeLan, sh, usedCIDRs } from './simhost.ts'

export { kubeconfigFor, defaultIngressPools }
export { processMatches } from './procs.ts'

export interface ClusterState {
  stateDir: string
  spec: ClusterSpec
  supervisor: { pid: number }
  redis: { pid?: number; port: number }
  server: { pid?: number; url: string }
  agents: Array<{ name: string; pid?: number }>
  /** Node name → ingress class whose controller it runs. */
  ingressPools: Record<string, string>
}

export interface UpOptions {
  stateDir: string
  port?: number
  /** Simulated hosts to create (default 3); an existing cluster keeps its own. */
  nodes?: number
  clusterCIDR?: string
  podNetwork?: PodNetworkMode
  lanCIDR?: string
  /** Ingress nodes per class (default 2 external, 1 internal; fewer when there are fewer nodes). */
  ingress?: { external: number; internal: number }
  /** ACME for the external class: directory URL, contact, and a CA bundle to trust the directory's TLS. */
  acme?: { directory: string; email?: string; caFile?: string }
  timers?: SpecOptions['timers']
  /** An HA control plane: Redis under Sentinel (3 Redis, 3 sentinels) and 2 servers (a new cluster only). */
  ha?: boolean
}

function progress(msg: string): void {
  process.stderr.write(`[skiff up] ${msg}\n`)
}

export { readSpecIfAny }

/** The supervisor's pid when it runs. */
export function supervisorPid(stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(stateDir, 'supervisor.pid'), 'utf8').trim())
    return processMatches(pid, `${stateDir} supervise`) ? pid : undefined
  } catch {
    return undefined
  }
}

export function readState(stateDir: string): ClusterState | undefined {
  const spec = readSpecIfAny(stateDir)
  const st = readSupervisorState(stateDir)
  if (!spec || !st) return undefined
  const pid = (name: string) => st.children[name]?.pid
  return {
    stateDir, spec,
    supervisor: { pid: st.supervisor.pid },
    redis: { pid: pid('redis'), port: spec.redisPort },
    server: { pid: pid('server'), url: apiserverURL(spec) },
    agents: spec.hosts.map((h) => ({ name: h.name, pid: pid(`agent/${h.name}`) })),
    ingressPools: Object.fromEntries(spec.hosts.filter((h) => h.pool).map((h) => [h.name, h.pool!])),
  }
}

/** The running cluster: its supervisor runs and its apiserver answers. */
export async function clusterRunning(stateDir: string): Promise<ClusterState | undefined> {
  const dir = resolve(stateDir)
  const st = readState(dir)
  if (!st || !supervisorPid(dir)) return undefined
  const caPath = join(dir, 'pki', 'ca.crt')
  if (!existsSync(caPath) || !(await readyz(st.server.url, readFileSync(caPath, 'utf8')))) return undefined
  return st
}

/** A request to the supervisor's control socket. */
export async function control(spec: ClusterSpec, method: 'GET' | 'POST', path: string, timeoutMs = 120_000): Promise<any> {
  return await new Promise((resolvePromise, reject) => {
    const req = request({ socketPath: names.controlSock(spec), method, path, timeout: timeoutMs }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        const parsed = body ? JSON.parse(body) : {}
        if ((res.statusCode ?? 500) >= 400) reject(new Error(parsed.error ?? `supervisor answered ${res.statusCode}`))
        else resolvePromise(parsed)
      })
    })
    req.on('timeout', () => req.destroy(new Error(`the supervisor did not answer ${path} within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function newSpec(o: UpOptions): Promise<ClusterSpec> {
  const wanted = o.port ?? 6443
  const apiPort = wanted !== 0 && (await portFree(wanted)) ? wanted : await freePort()
  if (apiPort !== wanted && wanted !== 0) progress(`port ${wanted} is busy; the apiserver uses ${apiPort}`)
  const nodes = o.nodes ?? 3
  return planCluster({
    stateDir: o.stateDir, apiPort, redisPort: await freePort(), nodes, clusterCIDR: o.clusterCIDR, podNetwork: o.podNetwork,
    lanCIDR: o.lanCIDR, ingress: o.ingress ?? defaultIngressPools(nodes), acme: o.acme, timers: o.timers,
    ...(o.ha ? { ha: { sentinelPort: await freePort() } } : {}),
  }, await usedCIDRs())
}

export async function up(opts: UpOptions): Promise<ClusterState> {
  const stateDir = resolve(opts.stateDir)
  const o = { ...opts, stateDir }
  let spec = readSpecIfAny(stateDir)
  if (supervisorPid(stateDir) && spec) {
    const running = await clusterRunning(stateDir)
    if (running) {
      progress(`a cluster is already running from ${stateDir} (apiserver ${running.server.url})`)
      return running
    }
    progress('the cluster is starting; waiting for it')
  } else {
    if (spec) {
      progress(`resuming the cluster in ${stateDir} (created ${spec.createdAt}): same data, CA, tokens and pods`)
      const ignored = ignoredFlags(spec, { ...o, ha: undefined })
      if (o.ha && !spec.ha) ignored.push('--ha (it was created without; `skiff down` and up again to change)')
      if (ignored.length) progress(`ignoring ${ignored.join(', ')}: an existing cluster keeps its shape (skiff down first to change it)`)
    } else {
      spec = await newSpec(o)
      writeSpec(stateDir, spec)
      progress(`a new cluster: ${spec.hosts.length} simulated hosts on the LAN ${spec.lan.cidr}, pod network ${spec.podNetwork}`)
    }
    if (spec.hosts.length) {
      progress('checking the local images (skiff/pause, skiff/echo, skiff/demo)')
      await ensureImages()
    }
    mkdirSync(join(stateDir, 'logs'), { recursive: true })
    const log = openSync(join(stateDir, 'logs', 'supervisor.log'), 'a')
    const child = spawn(process.execPath, [skiffEntry, '--state-dir', stateDir, 'supervise'], { detached: true, stdio: ['ignore', log, log] })
    child.unref()
  }
  await followSupervisor(stateDir, spec)
  const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
  const pools = new Map(spec.hosts.filter((h) => h.pool).map((h) => [h.name, h.pool!]))
  try {
    if (spec.acme) await configureAcme(client, spec.acme)
    await waitNodesReady(client, spec.hosts.map((h) => h.name), progress)
    if (pools.size) await waitIngressServing(client, pools, progress)
  } finally {
    client.close()
  }
  progress('ready')
  return readState(stateDir)!
}

/** When this command started: older supervisor messages are not shown again. */
const startedAt = new Date().toISOString()

/** A failure the supervisor reported: no point in waiting longer. */
class Fatal extends Error {}

/** Print the supervisor's progress until every process runs (or it failed). */
async function followSupervisor(stateDir: string, spec: ClusterSpec, timeoutMs = 300_000): Promise<void> {
  const shown = new Set<string>()
  await eventually(async () => {
    if (!existsSync(names.controlSock(spec))) {
      const st = readSupervisorState(stateDir)
      if (st?.phase === 'failed' && !supervisorPid(stateDir)) throw new Fatal(st.error ?? 'failed')
      return false
    }
    const status = await control(spec, 'GET', '/status', 5_000)
    for (const m of status.messages as Array<{ at: string; msg: string }>) {
      const key = `${m.at} ${m.msg}`
      if (!shown.has(key) && m.at >= startedAt) progress(m.msg)
      shown.add(key)
    }
    if (status.phase === 'failed') throw new Fatal(status.error)
    return status.phase === 'running'
  }, { timeout: timeoutMs, interval: 300, what: `the supervisor to start every process (see ${join(stateDir, 'logs', 'supervisor.log')})` }).catch((e) => {
    throw e instanceof Fatal ? new Error(`SKIFF_ERR_UP_FAILED: ${e.message}; see ${join(stateDir, 'logs')}, then run skiff up again (or skiff down)`) : e
  })
}

/** Point the external class's ACME issuer at a directory (IngressClass annotations). */
async function configureAcme(client: ApiClient, acme: NonNullable<UpOptions['acme']>): Promise<void> {
  const classes = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
  const annotations: Record<string, string> = { 'skiff.dev/issuer': 'acme', 'skiff.dev/acme-directory': acme.directory }
  if (acme.email) annotations['skiff.dev/acme-email'] = acme.email
  await client.patch(classes, undefined, 'external', { metadata: { annotations } }, 'application/merge-patch+json')
  progress(`external ingress class: ACME directory ${acme.directory}`)
}

/** Addresses of each class's ingress nodes to point DNS at: ExternalIPs, else InternalIPs. */
export async function ingressAddresses(client: ApiClient, pools: Record<string, string>): Promise<Map<string, string[]>> {
  const nodes = await client.list(lookupResource('', 'v1', 'nodes')!)
  const out = new Map<string, string[]>()
  for (const n of nodes.items) {
    const cls = pools[n.metadata.name!]
    const ip = publishedIP(n)
    if (!cls || !ip) continue
    out.set(cls, [...(out.get(cls) ?? []), ip].sort())
  }
  return out
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net')
  return await new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(false))
    s.listen(port, () => s.close(() => res(true)))
  })
}

/** Stop the supervisor (it stops everything it runs) and every other process using the state. */
async function stopAll(stateDir: string, spec: ClusterSpec | undefined, mode: 'stop' | 'down'): Promise<void> {
  const sup = supervisorPid(stateDir)
  if (sup && spec) {
    await control(spec, 'POST', `/${mode}`, 10_000).catch(() => process.kill(sup, 'SIGTERM'))
    await eventually(() => !processMatches(sup, 'supervise'), { timeout: 180_000, interval: 200, what: `the supervisor (pid ${sup}) to stop everything` }).catch(() => stopPids([sup], 1_000))
  }
  const dirs = [stateDir, ...(spec ? [names.runDir(spec)] : [])]
  const rest = processesUsing(dirs)
  // Skiff's own processes first: an agent left running would rebuild what the rest of this removes.
  await stopPids(rest.filter((p) => p.argv.some((a) => a.endsWith('skiff.ts'))).map((p) => p.pid), 15_000)
  await stopPids(processesUsing(dirs).map((p) => p.pid), 15_000)
}

export async function stop(opts: { stateDir: string }): Promise<boolean> {
  const stateDir = resolve(opts.stateDir)
  const spec = readSpecIfAny(stateDir)
  if (!spec) {
    process.stderr.write(`[skiff stop] no cluster in ${stateDir}; nothing to stop\n`)
    return false
  }
  await stopAll(stateDir, spec, 'stop')
  process.stderr.write(`[skiff stop] stopped every process of ${stateDir}; the state stays (skiff up resumes it)\n`)
  return true
}

/** Unmount everything under these folders (a killed dockerd leaves its overlay mounts behind). */
async function unmountUnder(dirs: string[]): Promise<void> {
  const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => !!p && dirs.some((d) => p.startsWith(d + '/')))
  for (const p of [...new Set(points)].sort((a, b) => b.length - a.length)) await sh('umount', ['-l', p], { allowFail: true })
}

export async function down(opts: { stateDir: string; quiet?: boolean }): Promise<boolean> {
  const stateDir = resolve(opts.stateDir)
  const spec = readSpecIfAny(stateDir)
  if (!spec && !existsSync(stateDir)) {
    if (!opts.quiet) process.stderr.write(`[skiff down] no cluster state in ${stateDir}; nothing to stop\n`)
    return false
  }
  await stopAll(stateDir, spec, 'down')
  if (spec) {
    await unmountUnder([stateDir, names.runDir(spec)])
    for (const h of spec.hosts) await removeHost(spec, h)
    await removeLan(spec)
    rmSync(names.runDir(spec), { recursive: true, force: true })
  }
  await unmountUnder([stateDir])
  rmSync(stateDir, { recursive: true, force: true })
  if (!opts.quiet) process.stderr.write(`[skiff down] stopped every process and removed the hosts, the LAN and ${stateDir}\n`)
  return true
}

/** `skiff host kill|start <node>`: a simulated host dies (every process SIGKILLed, its leg down) or comes back. */
export async function hostAction(stateDir: string, name: string, action: 'kill' | 'start'): Promise<void> {
  const dir = resolve(stateDir)
  const spec = readSpecIfAny(dir)
  if (!spec || !supervisorPid(dir)) throw new Error(`no running cluster in ${dir}: start it with skiff up`)
  if (!spec.hosts.some((h) => h.name === name)) throw new Error(`no host ${name} in this cluster (hosts: ${spec.hosts.map((h) => h.name).join(', ')})`)
  await control(spec, 'POST', `/hosts/${encodeURIComponent(name)}/${action}`)
}
