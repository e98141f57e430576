// `skiff up` / `skiff down`: a local cluster on this machine, in the
// background, with all its state under one folder (.skiff/ by default):
//   state.json        pids, ports and URL of what `up` started
//   redis/            redis.conf (0600, holds the password), AOF data
//   logs/             redis.log, server.log
//   pki/, tokens.csv, encryption.key, kubeconfig   (the server's state)
// `up` returns once the apiserver answers /readyz; run again, it reports the
// running cluster. `down` stops every process it started and removes the folder.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { freePort, eventually } from '../lib/net.ts'
import { adminToken } from '../controlplane/server.ts'
import { readKubeconfig, renderKubeconfig } from './kubeconfig.ts'
import { nodeNames, planIngressPools, prepareNodeTokens, removeNodeRemnants, startAgents, waitIngressServing, waitNodesReady, type AgentProcess } from './nodes.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { ensureImages } from '../node/images/build.ts'
import { lookupResource } from '../controlplane/api/resources.ts'
import { internalIP } from '../dataplane/ingress/status.ts'

export interface ClusterState {
  stateDir: string
  redis: { pid: number; port: number }
  server: { pid: number; url: string }
  agents: AgentProcess[]
  clusterCIDR: string
  /** Node name → ingress class whose controller it runs. */
  ingressPools?: Record<string, string>
  startedAt: string
}

export interface UpOptions {
  stateDir: string
  port?: number
  /** Node agents to start (default 3). */
  nodes?: number
  clusterCIDR?: string
  /** Ingress nodes per class (default 2 external, 1 internal; fewer when there are fewer nodes). */
  ingress?: { external: number; internal: number }
  /** ACME for the external class: directory URL, contact, and a CA bundle to trust the directory's TLS. */
  acme?: { directory: string; email?: string; caFile?: string }
}

const skiffEntry = fileURLToPath(new URL('./skiff.ts', import.meta.url))

function progress(msg: string): void {
  process.stderr.write(`[skiff up] ${msg}\n`)
}

export function readState(stateDir: string): ClusterState | undefined {
  const p = join(stateDir, 'state.json')
  if (!existsSync(p)) return undefined
  return JSON.parse(readFileSync(p, 'utf8')) as ClusterState
}

/** Is pid alive and running the expected program (so a reused pid is not killed)? */
export function processMatches(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle)
  } catch {
    return false
  }
}

async function readyz(url: string, caPem: string): Promise<boolean> {
  return await new Promise((res) => {
    const req = request(new URL('/readyz', url), { ca: caPem, timeout: 2000 }, (r) => {
      r.resume()
      res(r.statusCode === 200)
    })
    req.on('error', () => res(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

export async function clusterRunning(stateDir: string): Promise<ClusterState | undefined> {
  const st = readState(stateDir)
  if (!st) return undefined
  if (!processMatches(st.redis.pid, 'redis-server') || !processMatches(st.server.pid, 'skiff.ts')) return undefined
  if ((st.agents ?? []).some((a) => !processMatches(a.pid, 'skiff.ts'))) return undefined
  const caPath = join(stateDir, 'pki', 'ca.crt')
  if (!existsSync(caPath) || !(await readyz(st.server.url, readFileSync(caPath, 'utf8')))) return undefined
  return st
}

async function startRedis(stateDir: string): Promise<{ pid: number; port: number }> {
  const dir = join(stateDir, 'redis')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const password = randomBytes(24).toString('base64url')
  const port = await freePort()
  const conf = [
    `port ${port}`, 'bind 127.0.0.1', 'protected-mode yes', `dir ${dir}`, `requirepass ${password}`,
    'appendonly yes', 'appendfsync always', 'save ""', 'daemonize no',
  ].join('\n')
  writeFileSync(join(dir, 'redis.conf'), conf + '\n', { mode: 0o600 })
  writeFileSync(join(dir, 'password'), password, { mode: 0o600 })
  const log = openSync(join(stateDir, 'logs', 'redis.log'), 'a')
  const child = spawn('redis-server', [join(dir, 'redis.conf')], { detached: true, stdio: ['ignore', log, log] })
  child.on('error', () => {})
  child.unref()
  await eventually(async () => {
    const r = new Redis({ port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {}) // not up yet: polled again
    try {
      await r.connect()
      return (await r.ping()) === 'PONG'
    } finally {
      r.disconnect()
    }
  }, { timeout: 15_000, what: `redis-server on port ${port} (see ${join(stateDir, 'logs', 'redis.log')})` })
  return { pid: child.pid!, port }
}

async function startServer(stateDir: string, redisPort: number, port: number, clusterCIDR: string): Promise<{ pid: number; url: string }> {
  const log = openSync(join(stateDir, 'logs', 'server.log'), 'a')
  const args = [skiffEntry, 'server', '--state-dir', stateDir, '--port', String(port), '--redis-port', String(redisPort), '--redis-password-file', join(stateDir, 'redis', 'password'), '--cluster-cidr', clusterCIDR]
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] })
  child.unref()
  const url = `https://127.0.0.1:${port}`
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`skiff server exited with code ${child.exitCode}; see ${join(stateDir, 'logs', 'server.log')}`)
    const ca = join(stateDir, 'pki', 'ca.crt')
    return existsSync(ca) && (await readyz(url, readFileSync(ca, 'utf8')))
  }, { timeout: 30_000, what: `the apiserver at ${url} (see ${join(stateDir, 'logs', 'server.log')})` })
  return { pid: child.pid!, url }
}

export async function up(opts: UpOptions): Promise<ClusterState> {
  const stateDir = resolve(opts.stateDir)
  const running = await clusterRunning(stateDir)
  if (running) {
    progress(`a cluster is already running from ${stateDir} (apiserver ${running.server.url})`)
    return running
  }
  if (readState(stateDir)) {
    progress('found a stopped or broken cluster; cleaning it up first')
    await down({ stateDir, quiet: true })
  }
  mkdirSync(join(stateDir, 'logs'), { recursive: true })
  const clusterCIDR = opts.clusterCIDR ?? '10.244.0.0/16'
  const names = nodeNames(opts.nodes ?? 3)
  if (names.length > 0) {
    progress('checking the local images (skiff/pause, skiff/echo, skiff/demo)')
    await ensureImages()
  }
  progress('starting redis-server (AOF, fsync always, password)')
  const redis = await startRedis(stateDir)
  const wanted = opts.port ?? 6443
  const port = wanted !== 0 && (await portFree(wanted)) ? wanted : await freePort()
  if (port !== wanted && wanted !== 0) progress(`port ${wanted} is busy; the apiserver uses ${port}`)
  const pools = planIngressPools(names, opts.ingress ?? defaultIngressPools(names.length))
  prepareNodeTokens(stateDir, names, pools.values())
  progress(`starting skiff server on https://127.0.0.1:${port}`)
  let server
  try {
    server = await startServer(stateDir, redis.port, port, clusterCIDR)
  } catch (e) {
    process.kill(redis.pid, 'SIGTERM')
    throw e
  }
  const caPem = readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8')
  if (names.length) progress(`starting ${names.length} node agents (${names.join(', ')})`)
  const agentArgs = opts.acme?.caFile ? ['--acme-ca-file', resolve(opts.acme.caFile)] : []
  const agents = startAgents({ stateDir, server: server.url, caPem, names, clusterCIDR, pools, agentArgs })
  const state: ClusterState = { stateDir, redis, server, agents, clusterCIDR, ingressPools: Object.fromEntries(pools), startedAt: new Date().toISOString() }
  writeFileSync(join(stateDir, 'state.json'), JSON.stringify(state, null, 2) + '\n')
  writeFileSync(join(stateDir, 'kubeconfig'), kubeconfigFor(stateDir, server.url), { mode: 0o600 })
  const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
  try {
    if (opts.acme) await configureAcme(client, opts.acme)
    await waitNodesReady(client, names, progress)
    if (pools.size) await waitIngressServing(client, pools, progress)
  } finally {
    client.close()
  }
  progress('ready')
  return state
}

/** 2 external + 1 internal when there are 3 nodes or more; with fewer, what fits (external first). */
export function defaultIngressPools(nodes: number): { external: number; internal: number } {
  if (nodes >= 3) return { external: 2, internal: 1 }
  return { external: Math.min(nodes, 1), internal: nodes >= 2 ? 1 : 0 }
}

/** Point the external class's ACME issuer at a directory (IngressClass annotations). */
async function configureAcme(client: ApiClient, acme: NonNullable<UpOptions['acme']>): Promise<void> {
  const classes = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
  const annotations: Record<string, string> = { 'skiff.dev/issuer': 'acme', 'skiff.dev/acme-directory': acme.directory }
  if (acme.email) annotations['skiff.dev/acme-email'] = acme.email
  await client.patch(classes, undefined, 'external', { metadata: { annotations } }, 'application/merge-patch+json')
  progress(`external ingress class: ACME directory ${acme.directory}`)
}

/** InternalIP of each ingress node, by class: where DNS names of the class's hosts should point. */
export async function ingressAddresses(client: ApiClient, pools: Record<string, string>): Promise<Map<string, string[]>> {
  const nodes = await client.list(lookupResource('', 'v1', 'nodes')!)
  const out = new Map<string, string[]>()
  for (const n of nodes.items) {
    const cls = pools[n.metadata.name!]
    const ip = internalIP(n)
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
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)))
  })
}

export function kubeconfigFor(stateDir: string, url: string): string {
  return renderKubeconfig({ server: url, caPem: readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8'), token: adminToken(stateDir) })
}

async function stopPid(pid: number, needle: string): Promise<void> {
  if (!processMatches(pid, needle)) return
  process.kill(pid, 'SIGTERM')
  try {
    await eventually(() => !processMatches(pid, needle), { timeout: 10_000, what: `pid ${pid} to exit` })
  } catch {
    if (processMatches(pid, needle)) process.kill(pid, 'SIGKILL')
  }
}

export async function down(opts: { stateDir: string; quiet?: boolean }): Promise<boolean> {
  const stateDir = resolve(opts.stateDir)
  const st = readState(stateDir)
  if (!st) {
    if (!opts.quiet) process.stderr.write(`[skiff down] no cluster state in ${stateDir}; nothing to stop\n`)
    return false
  }
  await Promise.all((st.agents ?? []).map((a) => stopPid(a.pid, 'skiff.ts')))
  await stopPid(st.server.pid, 'skiff.ts')
  await stopPid(st.redis.pid, 'redis-server')
  await removeNodeRemnants((st.agents ?? []).map((a) => a.name))
  rmSync(stateDir, { recursive: true, force: true })
  if (!opts.quiet) process.stderr.write(`[skiff down] stopped the server and redis-server, removed ${stateDir}\n`)
  return true
}
