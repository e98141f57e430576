// Whole clusters as a user makes them: the real `skiff up` CLI in a child
// process (supervisor, Redis, server, simulated hosts with their own Engines
// and agents), a fresh state folder, a cluster CIDR no other test uses, and
// `skiff down` in t.teardown, also when the test fails. Plus a client: a
// network namespace on the cluster's LAN that is not a node, as another
// machine of the LAN would be.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { sh } from '../../lib/exec.ts'
import { cidrsOverlap } from '../../lib/ipv4.ts'
import { usedCIDRs } from '../../cli/simhost.ts'
import { readSpecIfAny } from '../../cli/cluster.ts'
import { names, type ClusterSpec, type HostSpec } from '../../cli/cluster-spec.ts'
import { readKubeconfig } from '../../cli/kubeconfig.ts'
import { ApiClient } from '../../controlplane/client/client.ts'
import { runKubectl } from './cluster.ts'

export const skiffCli = fileURLToPath(new URL('../../cli/skiff.ts', import.meta.url))

interface Teardown {
  teardown(fn: () => unknown): void
  /** tap's t.passing(): false once something in the test failed. */
  passing?(): boolean
}

/** How long `skiff up` may take in a test before it is stopped and its logs shown (tap's own file timeout is longer, so this fires first and says where it stood). */
export const upTimeoutMs = 240_000

/** The last lines of every log of a `skiff up` state folder (supervisor, servers, agents, Engines, Redis): what a reader of a CI failure needs. */
export function logTails(stateDir: string, lines = 25): string {
  const dir = join(stateDir, 'logs')
  if (!existsSync(dir)) return `(no logs in ${dir})`
  return readdirSync(dir).sort().map((f) => {
    const text = readFileSync(join(dir, f), 'utf8').trimEnd().split('\n')
    return `--- ${f} (last ${Math.min(lines, text.length)} of ${text.length} lines)\n${text.slice(-lines).map((l) => l.slice(0, 400)).join('\n')}`
  }).join('\n')
}

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** The real skiff CLI against a state folder. */
export function runSkiff(stateDir: string, args: string[], o: { stdin?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [skiffCli, '--state-dir', stateDir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 600_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
    // A child that exits before reading its stdin (kubectl refused at once) makes the write fail with EPIPE: its exit code says what happened.
    child.stdin.on('error', () => undefined)
    child.stdin.end(o.stdin ?? '')
  })
}

/**
 * A cluster CIDR for a `skiff up` of a test: a 10.X.0.0/16 with X in 32..63
 * that no address or route of this machine overlaps. (The in-process harness
 * uses 10.128-240, the service range is 10.96/12, `npm start` uses 10.244.)
 */
export async function pickUpClusterCIDR(): Promise<string> {
  const used = await usedCIDRs()
  for (let i = 0; i < 32; i++) {
    const x = 32 + ((process.pid + i) % 32)
    const cidr = `10.${x}.0.0/16`
    if (!used.some((u) => cidrsOverlap(u, cidr))) return cidr
  }
  throw new Error('no free 10.X.0.0/16 (X in 32..63) on this machine: run skiff down on stale test clusters')
}

export interface UpCluster {
  stateDir: string
  spec: ClusterSpec
  kubeconfig: string
  client: ApiClient
  up: Run
  kubectl(args: string[], o?: { stdin?: string; allowFail?: boolean; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>
  skiff(args: string[], o?: { stdin?: string; timeoutMs?: number }): Promise<Run>
  /** Run a command inside a simulated host's network namespace. */
  onHost(host: string, cmd: string, args: string[], o?: { allowFail?: boolean }): Promise<{ code: number; stdout: string; stderr: string }>
  host(name: string): HostSpec
}

/** `skiff up` with these arguments (plus a free port and cluster CIDR); `skiff down` at teardown. */
export async function upCluster(t: Teardown, args: string[], o: { keep?: boolean } = {}): Promise<UpCluster> {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-e2e-'))
  const cache = mkdtempSync(join(tmpdir(), 'skiff-e2e-kubectl-'))
  let client: ApiClient | undefined
  t.teardown(async () => {
    client?.close()
    if (t.passing && !t.passing()) process.stderr.write(`[skiff-up harness] the test failed; the cluster's logs:\n${logTails(stateDir)}\n`)
    if (!o.keep) {
      const d = await runSkiff(stateDir, ['down'])
      if (d.code !== 0) process.stderr.write(`skiff down failed: ${d.stderr}\n`)
    }
    rmSync(stateDir, { recursive: true, force: true })
    rmSync(cache, { recursive: true, force: true })
  })
  const clusterCIDR = await pickUpClusterCIDR()
  const started = Date.now()
  const up = await runSkiff(stateDir, ['up', '--port', '0', '--cluster-cidr', clusterCIDR, ...args], { timeoutMs: upTimeoutMs })
  if (up.code !== 0) {
    const how = Date.now() - started >= upTimeoutMs ? `did not finish within ${upTimeoutMs / 1000} s and was killed` : `failed (${up.code})`
    throw new Error(`skiff up ${how}:\n${up.stderr}\n${up.stdout}\n${logTails(stateDir)}`)
  }
  const spec = readSpecIfAny(stateDir)!
  const kubeconfig = join(stateDir, 'kubeconfig')
  client = new ApiClient(readKubeconfig(kubeconfig))
  return {
    stateDir, spec, kubeconfig, client, up,
    kubectl: (a, ko = {}) => runKubectl(kubeconfig, cache, a, ko),
    skiff: (a, so) => runSkiff(stateDir, a, so),
    onHost: async (host, cmd, a, ho = {}) => {
      const h = spec.hosts.find((x) => x.name === host)
      if (!h) throw new Error(`no host ${host}`)
      return await nsExec(names.netns(spec, h), cmd, a, ho)
    },
    host: (name) => spec.hosts.find((x) => x.name === name)!,
  }
}

export async function nsExec(netns: string, cmd: string, args: string[], o: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return await sh(cmd, args, { netns, ...o })
}

export interface LanClient {
  netns: string
  ip: string
  run(cmd: string, args: string[], o?: { allowFail?: boolean; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>
}

/** A machine on the cluster's LAN that is not a node: a namespace with one leg on the bridge, at .250. */
export async function lanClient(t: Teardown, spec: ClusterSpec, n = 250): Promise<LanClient> {
  const tag = randomBytes(3).toString('hex')
  const netns = `skc-${tag}`
  const veth = `skc${tag}`
  const ip = spec.lan.cidr.replace(/\.0\/24$/, `.${n}`)
  t.teardown(async () => {
    await sh('ip', ['netns', 'del', netns], { allowFail: true })
    await sh('ip', ['link', 'del', veth], { allowFail: true })
  })
  await sh('ip', ['netns', 'add', netns])
  await sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns])
  await sh('ip', ['link', 'set', veth, 'master', spec.lan.bridge, 'up'])
  const run = (cmd: string, args: string[], o?: { allowFail?: boolean; timeoutMs?: number }) => nsExec(netns, cmd, args, o)
  await run('ip', ['link', 'set', 'lo', 'up'])
  await run('ip', ['link', 'set', 'eth0', 'up'])
  await run('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0'])
  return { netns, ip, run }
}

export interface ExtraHost {
  host: HostSpec
  netns: string
  agentDir: string
  /** The agent process's exit: code and output (it may also run until teardown). */
  agentExit: Promise<Run>
  stop(): Promise<void>
}

/**
 * Another machine joining a running `skiff up` cluster as a user adds one: a
 * namespace on the cluster's LAN with its own dockerd (the local images
 * loaded), and `skiff agent --server ... --token ...` in it. Removed at
 * teardown (processes, mounts, namespace), also when the test fails.
 */
export async function joinExtraHost(t: Teardown, c: UpCluster, o: { name: string; index: number; token: string; extraArgs?: string[] }): Promise<ExtraHost> {
  const { ensureHost, dockerdArgs, loadImages, removeHost, sh } = await import('../../cli/simhost.ts')
  const { pidsMatching, stopPids } = await import('../../cli/procs.ts')
  const { localImages } = await import('../../cli/supervisor-steps.ts')
  const { mkdirSync } = await import('node:fs')
  const spec = c.spec
  const host: HostSpec = { name: o.name, index: o.index, ip: spec.lan.cidr.replace(/\.0\/24$/, `.${10 + o.index}`) }
  const netns = names.netns(spec, host)
  const root = names.hostRoot(c.stateDir, host)
  const run = join(names.runDir(spec), host.name)
  const stop = async () => {
    await stopPids([...pidsMatching(`${root} agent`), ...pidsMatching(names.dockerSock(spec, host))], 20_000)
    await stopPids(pidsMatching(names.execRoot(spec, host)), 5_000)
    const mounts = (await sh('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/self/mountinfo || true`])).stdout.split('\n').map((s) => s.trim()).filter(Boolean)
    for (const m of mounts.sort((a, b) => b.length - a.length)) await sh('umount', ['-l', m], { allowFail: true })
    await removeHost(spec, host)
    rmSync(run, { recursive: true, force: true })
  }
  t.teardown(stop)
  mkdirSync(run, { recursive: true })
  mkdirSync(join(root, 'docker'), { recursive: true })
  await ensureHost(spec, host)
  const dockerd = spawn('nsenter', [`--net=/run/netns/${netns}`, 'dockerd', ...dockerdArgs(spec, host, c.stateDir)], { detached: true, stdio: 'ignore' })
  dockerd.unref()
  const { eventually } = await import('../../lib/net.ts')
  await eventually(async () => (await sh('docker', ['-H', `unix://${names.dockerSock(spec, host)}`, 'version'], { allowFail: true })).code === 0, { timeout: 60_000, interval: 250, what: `dockerd of ${host.name}` })
  await loadImages(spec, host, localImages)
  const agentExit = new Promise<Run>((resolve) => {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, skiffCli, '--state-dir', root, 'agent', '--node-name', host.name,
      '--server', `https://${spec.lan.hostIP}:${spec.apiPort}`, '--token', o.token, '--cluster-cidr', spec.clusterCIDR, '--heartbeat-ms', '2000', ...(o.extraArgs ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOCKER_HOST: `unix://${names.dockerSock(spec, host)}` } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
  return { host, netns, agentDir: join(root, 'agents', host.name), agentExit, stop }
}

/** `skiff agent` joining from the LAN client's namespace, for refusals: it must exit, with its message. */
export function tryJoin(netns: string, o: { server: string; token: string; name: string; stateDir: string }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, skiffCli, '--state-dir', o.stateDir, 'agent', '--node-name', o.name, '--server', o.server, '--token', o.token], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}
