// `skiff supervise`: the one background process `skiff up` leaves running. It
// builds the simulated hosts (simhost.ts), starts Redis, the server, and each
// host's dockerd and agent, and restarts any of them that dies (0.5 s, then
// doubling to 10 s while it keeps dying young). It records every pid in
// state.json, so a supervisor started again (after its own crash) adopts the
// processes still running instead of starting them twice. Control, over
// <run-dir>/supervisor.sock (HTTP): GET /status, POST /stop (everything stops,
// the state stays), POST /down (containers removed too, for `skiff down`),
// POST /hosts/<name>/kill and /start (a host dies: its processes SIGKILLed,
// its leg down, nothing restarted until /start).

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import type { ClusterSpec, HostSpec } from './cluster-spec.ts'
import { controlPlaneMachines, names } from './cluster-spec.ts'
import { agentChild, dockerdChild, haRedisChildren, redisChild, server2Child, serverChild, type ChildSpec } from './supervisor-plan.ts'
import { ensureHost, ensureLan, loadImages, pidsInNetns, setHostLink, sh, shimTrees, syncHostRoutes } from './simhost.ts'
import { killNow, pidsMatching, processMatches, stopPids } from './procs.ts'
import { readSpec, ensureRedisConfig, waitRedis, waitApiserver, ensureNodeToken, agentJoinArgs, localImages, apiserverURLs, ensureHaRedisConfig, ensureServerTokenFile } from './supervisor-steps.ts'
import { readKubeconfig } from './kubeconfig.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { lookupResource } from '../controlplane/api/resources.ts'

export interface ChildState {
  pid?: number
  startedAt?: string
  restarts: number
}

export interface SupervisorState {
  supervisor: { pid: number; startedAt: string }
  phase: 'starting' | 'running' | 'stopping' | 'failed'
  error?: string
  children: Record<string, ChildState>
  downHosts: string[]
}

export const statePath = (stateDir: string) => join(stateDir, 'state.json')

export function readSupervisorState(stateDir: string): SupervisorState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(stateDir), 'utf8')) as SupervisorState
  } catch {
    return undefined
  }
}

class Child {
  readonly spec: ChildSpec
  pid?: number
  startedAtMs = 0
  restarts = 0
  #youngDeaths = 0
  #wanted = false
  #timer?: NodeJS.Timeout
  #proc?: ChildProcess
  #onChange: () => void
  #log: (msg: string, extra?: Record<string, unknown>) => void

  constructor(spec: ChildSpec, onChange: () => void, log: (msg: string, extra?: Record<string, unknown>) => void) {
    this.spec = spec
    this.#onChange = onChange
    this.#log = log
  }

  get running(): boolean {
    return processMatches(this.pid, this.spec.needle)
  }

  /** Start it, or adopt the pid a previous supervisor left running. */
  start(adoptPid?: number): void {
    this.#wanted = true
    if (adoptPid && processMatches(adoptPid, this.spec.needle)) {
      this.pid = adoptPid
      this.#log(`adopted ${this.spec.name} (pid ${adoptPid})`)
      return
    }
    this.#spawn()
  }

  #spawn(): void {
    const s = this.spec
    if (s.stale) killNow(pidsMatching(s.stale))
    const log = openSync(s.log, 'a')
    const [cmd, args] = s.netns ? ['nsenter', [`--net=/run/netns/${s.netns}`, s.cmd, ...s.args]] : [s.cmd, s.args]
    const proc = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...s.env } })
    proc.on('error', (e) => this.#log(`cannot start ${s.name}: ${e.message}`))
    proc.on('exit', (code, signal) => {
      if (this.#proc === proc) this.#exited(code, signal)
    })
    this.#proc = proc
    this.pid = proc.pid
    this.startedAtMs = Date.now()
    this.#onChange()
  }

  #exited(code: number | null, signal: string | null): void {
    this.#proc = undefined
    const lived = Date.now() - this.startedAtMs
    this.pid = undefined
    this.#onChange()
    if (!this.#wanted) return
    this.#youngDeaths = lived < 30_000 ? this.#youngDeaths + 1 : 0
    const delay = Math.min(10_000, 500 * 2 ** Math.max(0, this.#youngDeaths - 1))
    this.#log(`${this.spec.name} exited (${signal ?? `code ${code}`}) after ${Math.round(lived / 1000)} s; restarting in ${delay} ms`, { child: this.spec.name, code, signal })
    this.#timer = setTimeout(() => {
      if (!this.#wanted) return
      this.restarts++
      this.#spawn()
    }, delay)
  }

  /** For adopted processes (not our children): notice their death by polling. */
  poll(): void {
    if (this.#wanted && !this.#proc && this.pid && !this.running) this.#exited(null, 'gone')
  }

  async stop(graceMs = this.spec.stopGraceMs): Promise<void> {
    this.#wanted = false
    clearTimeout(this.#timer)
    if (this.pid && this.running) await stopPids([this.pid], graceMs)
    this.pid = undefined
    this.#onChange()
  }

  /** SIGKILL, no restart (a host dying). */
  kill(): void {
    this.#wanted = false
    clearTimeout(this.#timer)
    if (this.pid) killNow([this.pid])
  }
}

export class Supervisor {
  #stateDir: string
  #spec: ClusterSpec
  #children = new Map<string, Child>()
  #state: SupervisorState
  #server?: Server
  #messages: Array<{ at: string; msg: string }> = []
  #poll?: NodeJS.Timeout
  #routes?: NodeJS.Timeout
  #client?: ApiClient
  #stopping?: Promise<void>

  constructor(stateDir: string) {
    this.#stateDir = stateDir
    this.#spec = readSpec(stateDir)
    const prev = readSupervisorState(stateDir)
    this.#state = { supervisor: { pid: process.pid, startedAt: new Date().toISOString() }, phase: 'starting', children: prev?.children ?? {}, downHosts: prev?.downHosts ?? [] }
  }

  log(msg: string, extra: Record<string, unknown> = {}): void {
    const at = new Date().toISOString()
    this.#messages.push({ at, msg })
    if (this.#messages.length > 200) this.#messages.shift()
    process.stdout.write(JSON.stringify({ time: at, component: 'supervisor', msg, ...extra }) + '\n')
  }

  #save(): void {
    const children: Record<string, ChildState> = {}
    for (const [name, c] of this.#children) children[name] = { pid: c.pid, startedAt: c.startedAtMs ? new Date(c.startedAtMs).toISOString() : undefined, restarts: c.restarts }
    this.#state.children = { ...this.#state.children, ...children }
    writeFileSync(statePath(this.#stateDir), JSON.stringify(this.#state, null, 2) + '\n')
  }

  #child(spec: ChildSpec): Child {
    let c = this.#children.get(spec.name)
    if (!c) {
      c = new Child(spec, () => this.#save(), (m, e) => this.log(m, e))
      this.#children.set(spec.name, c)
    }
    return c
  }

  #startChild(spec: ChildSpec): Child {
    const c = this.#child(spec)
    c.start(this.#state.children[spec.name]?.pid)
    this.#save()
    return c
  }

  async run(): Promise<void> {
    const s = this.#spec
    mkdirSync(names.runDir(s), { recursive: true })
    writeFileSync(join(this.#stateDir, 'supervisor.pid'), `${process.pid}\n`)
    await this.#listen()
    process.on('SIGTERM', () => void this.shutdown('stop'))
    process.on('SIGINT', () => void this.shutdown('stop'))
    this.#poll = setInterval(() => {
      for (const c of this.#children.values()) c.poll()
    }, 500)
    try {
      this.log(`building the LAN ${s.lan.cidr} (bridge ${s.lan.bridge}, this machine ${s.lan.hostIP})`)
      await ensureLan(s)
      for (const h of s.hosts) await ensureHost(s, h)
      if (s.ha) await this.#startHaRedis()
      else {
        ensureRedisConfig(this.#stateDir, s.redisPort)
        this.log('starting redis-server (AOF, fsync always, password)')
        this.#startChild(redisChild(this.#stateDir))
        await waitRedis(this.#stateDir, s.redisPort)
      }
      this.log(`starting skiff server on https://${s.lan.hostIP}:${s.apiPort}`)
      this.#startChild(serverChild(s, this.#stateDir))
      await waitApiserver(this.#stateDir, s)
      if (s.ha && !this.#state.downHosts.includes(s.hosts[0]!.name)) {
        const url = apiserverURLs(s)[1]!
        this.log(`starting the second skiff server on ${url} (host ${s.hosts[0]!.name}), joined to the first`)
        this.#startChild(server2Child(s, this.#stateDir, await ensureServerTokenFile(this.#stateDir)))
        await waitApiserver(this.#stateDir, s, 60_000, url)
      }
      const token = s.hosts.length ? await ensureNodeToken(this.#stateDir) : ''
      await Promise.all(s.hosts.filter((h) => !this.#state.downHosts.includes(h.name)).map((h) => this.#startHost(h, agentJoinArgs(s, h, token))))
      this.#client = new ApiClient(readKubeconfig(join(this.#stateDir, 'kubeconfig')))
      this.#routes = setInterval(() => void this.#syncRoutes(), 2_000)
      this.#state.phase = 'running'
      this.#save()
      this.log('every process started')
    } catch (e) {
      this.#state.phase = 'failed'
      this.#state.error = (e as Error).message
      this.#save()
      this.log(`failed: ${(e as Error).message}`)
      await this.shutdown('stop')
    }
  }

  /** --ha: the hosts' namespaces first (replicas and sentinels live there), then Redis and a sentinel on each machine. */
  async #startHaRedis(): Promise<void> {
    const s = this.#spec
    const machines = controlPlaneMachines(s).filter((m) => !m.host || !this.#state.downHosts.includes(m.host.name))
    this.log(`starting Redis under Sentinel: a primary on ${machines[0]!.ip}, replicas on ${machines.slice(1).map((m) => m.ip).join(' and ')}, a sentinel on each (port ${s.ha!.sentinelPort})`)
    for (const m of machines) {
      const conf = ensureHaRedisConfig(this.#stateDir, s, m)
      const [redis] = haRedisChildren(s, this.#stateDir, m, conf)
      this.#startChild(redis!)
    }
    for (const m of machines) await waitRedis(this.#stateDir, s.redisPort, 30_000, m.ip, `redis-${m.index}`)
    for (const m of machines) this.#startChild(haRedisChildren(s, this.#stateDir, m, ensureHaRedisConfig(this.#stateDir, s, m))[1]!)
    for (const m of machines) await waitRedis(this.#stateDir, s.ha!.sentinelPort, 30_000, m.ip, `redis-sentinel-${m.index}`)
  }

  async #startHost(h: HostSpec, extraArgs: string[]): Promise<void> {
    const s = this.#spec
    mkdirSync(join(names.runDir(s), h.name), { recursive: true })
    mkdirSync(join(names.hostRoot(this.#stateDir, h), 'docker'), { recursive: true })
    this.log(`host ${h.name}: starting dockerd in namespace ${names.netns(s, h)} (${h.ip})`)
    this.#startChild(dockerdChild(s, h, this.#stateDir))
    const docker = new Dockerode({ socketPath: names.dockerSock(s, h) })
    const deadline = Date.now() + 60_000
    for (;;) {
      try {
        await docker.ping()
        break
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`dockerd of ${h.name} did not answer within 60 s (${(e as Error).message}); see ${join(this.#stateDir, 'logs', `dockerd-${h.name}.log`)}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    const loaded = await loadImages(s, h, localImages)
    if (loaded.length) this.log(`host ${h.name}: loaded ${loaded.join(', ')} into its Engine`)
    this.log(`host ${h.name}: starting skiff agent`)
    this.#startChild(agentChild(s, h, this.#stateDir, extraArgs))
  }

  async #syncRoutes(): Promise<void> {
    try {
      const nodes = await this.#client!.list(lookupResource('', 'v1', 'nodes')!)
      const byName = new Map(this.#spec.hosts.map((h) => [h.name, h.ip]))
      const want = nodes.items.filter((n) => n.spec?.podCIDR && byName.has(n.metadata.name!)).map((n) => ({ podCIDR: n.spec.podCIDR as string, ip: byName.get(n.metadata.name!)! }))
      await syncHostRoutes(this.#spec, want)
    } catch {
      // the apiserver may be restarting: next round
    }
  }

  /** A host dies: every process it has (agent, Engine, containers) SIGKILLed, its leg down, nothing restarted. */
  async killHost(name: string): Promise<void> {
    const s = this.#spec
    const h = s.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name}`)
    if (!this.#state.downHosts.includes(name)) this.#state.downHosts.push(name)
    // Everything the host runs: agent, Engine, and with --ha its Redis, sentinel and server.
    for (const c of this.#children.values()) if (c.spec.host === name) c.kill()
    killNow([...(await shimTrees(s, h)), ...(await pidsInNetns(names.netns(s, h)))])
    await setHostLink(s, h, false)
    this.#save()
    this.log(`host ${name} killed`)
  }

  async startHost(name: string): Promise<void> {
    const s = this.#spec
    const h = s.hosts.find((x) => x.name === name)
    if (!h) throw new Error(`no host ${name}`)
    this.#state.downHosts = this.#state.downHosts.filter((x) => x !== name)
    await setHostLink(s, h, true)
    await ensureHost(s, h)
    // --ha: the host's share of the control plane first (a replica and a sentinel; the second server on the first host).
    const m = controlPlaneMachines(s).find((x) => x.host?.name === name)
    if (m) for (const c of haRedisChildren(s, this.#stateDir, m, ensureHaRedisConfig(this.#stateDir, s, m))) this.#startChild(c)
    if (s.ha && s.hosts[0]!.name === name) this.#startChild(server2Child(s, this.#stateDir, await ensureServerTokenFile(this.#stateDir)))
    await this.#startHost(h, agentJoinArgs(s, h, await ensureNodeToken(this.#stateDir)))
    this.#save()
  }

  /** Stop every process (agents first, so nothing rebuilds what goes). `down` also removes every container. */
  shutdown(mode: 'stop' | 'down'): Promise<void> {
    this.#stopping ??= this.#shutdown(mode)
    return this.#stopping
  }

  async #shutdown(mode: 'stop' | 'down'): Promise<void> {
    this.#state.phase = 'stopping'
    this.#save()
    this.log(mode === 'down' ? 'removing the cluster: stopping every process' : 'stopping every process (the state stays)')
    clearInterval(this.#routes)
    this.#client?.close()
    const of = (prefix: string) => [...this.#children.values()].filter((c) => c.spec.name.startsWith(prefix))
    await Promise.all(of('agent/').map((c) => c.stop()))
    if (mode === 'down') {
      await Promise.all(this.#spec.hosts.map(async (h) => {
        const ids = (await sh('docker', ['-H', `unix://${names.dockerSock(this.#spec, h)}`, 'ps', '-aq'], { allowFail: true })).stdout.split('\n').filter(Boolean)
        if (ids.length) await sh('docker', ['-H', `unix://${names.dockerSock(this.#spec, h)}`, 'rm', '-f', '-v', ...ids], { allowFail: true, timeoutMs: 60_000 })
      }))
    }
    await Promise.all(of('dockerd/').map((c) => c.stop()))
    await Promise.all(of('server').map((c) => c.stop()))
    await Promise.all(of('redis').map((c) => c.stop()))
    clearInterval(this.#poll)
    this.#state.children = {}
    this.#save()
    rmSync(join(this.#stateDir, 'supervisor.pid'), { force: true })
    this.log('stopped')
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()))
    rmSync(names.controlSock(this.#spec), { force: true })
    setTimeout(() => process.exit(0), 100)
  }

  async #listen(): Promise<void> {
    const sock = names.controlSock(this.#spec)
    if (existsSync(sock)) rmSync(sock)
    const server = createServer((req, res) => {
      const reply = (code: number, body: unknown) => res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body) + '\n')
      const url = req.url ?? '/'
      const host = /^\/hosts\/([^/]+)\/(kill|start)$/.exec(url)
      const run = (p: Promise<void>) => p.then(() => reply(200, { ok: true }), (e) => reply(500, { error: (e as Error).message }))
      if (req.method === 'GET' && url === '/status') return reply(200, { ...this.#state, messages: this.#messages })
      if (req.method === 'POST' && (url === '/stop' || url === '/down')) {
        reply(202, { ok: true })
        return void this.shutdown(url === '/down' ? 'down' : 'stop')
      }
      if (req.method === 'POST' && host) return void run(host[2] === 'kill' ? this.killHost(host[1]!) : this.startHost(host[1]!))
      reply(404, { error: `no ${req.method} ${url}` })
    })
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(sock, () => resolve())
    })
  }
}
