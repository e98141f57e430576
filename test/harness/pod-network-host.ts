// Driving PodNetwork instances in simulated hosts (netns-hosts.ts) from a
// test or a benchmark: one child process per host, entered with
// `nsenter --net` (pod-network-child.ts), plus TCP peers in pod namespaces
// (tcp-peer.ts). Every process is killed by its own pid in kill()/stop().

import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { PodNetworkOptions, PodNetworkStart, PodNetworkStatus } from '../../node/pod-network/pod-network.ts'
import type { SimHost } from './netns-hosts.ts'

const childScript = fileURLToPath(new URL('./pod-network-child.ts', import.meta.url))
const tcpPeerScript = fileURLToPath(new URL('./tcp-peer.ts', import.meta.url))

/** A Node.js that runs .ts files (Node 24 type stripping): this one, or the project's. */
export function nodeBin(): string {
  return Number(process.versions.node.split('.')[0]) >= 23 ? process.execPath : fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))
}

export function nsSpawn(ns: string, cmd: string, args: string[]): ChildProcess {
  return spawn('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
}

export type HostOptions = Omit<PodNetworkOptions, 'logger' | 'registry'>

/** One host's PodNetwork in a child process. */
export class PodNetworkHost {
  readonly host: SimHost
  readonly logs: string[] = []
  #child: ChildProcess
  #pending: Array<{ resolve: (v: any) => void; reject: (e: Error) => void }> = []
  #buf = ''
  #exited = false

  constructor(host: SimHost) {
    this.host = host
    this.#child = nsSpawn(host.ns, nodeBin(), [childScript])
    this.#child.stderr!.on('data', (d) => this.logs.push(String(d)))
    this.#child.stdout!.on('data', (d) => {
      this.#buf += d
      for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, i)
        this.#buf = this.#buf.slice(i + 1)
        const msg = JSON.parse(line)
        const p = this.#pending.shift()
        if (msg.ok) p?.resolve(msg)
        else p?.reject(new Error(`${host.name}: ${msg.error}`))
      }
    })
    this.#child.on('exit', () => {
      this.#exited = true
      for (const p of this.#pending.splice(0)) p.reject(new Error(`${host.name}: the pod network process exited; its log:\n${this.logs.join('').slice(-3000)}`))
    })
  }

  #request(msg: unknown, timeoutMs = 30_000): Promise<any> {
    if (this.#exited) return Promise.reject(new Error(`${this.host.name}: the pod network process is gone`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.host.name}: no answer to ${JSON.stringify(msg).slice(0, 80)} in ${timeoutMs} ms`)), timeoutMs)
      this.#pending.push({ resolve: (v) => (clearTimeout(timer), resolve(v)), reject: (e) => (clearTimeout(timer), reject(e)) })
      this.#child.stdin!.write(`${JSON.stringify(msg)}\n`)
    })
  }

  async start(options: HostOptions): Promise<PodNetworkStart> {
    return (await this.#request({ op: 'start', options })).result
  }

  async update(nodes: KubeObject[]): Promise<PodNetworkStatus> {
    return (await this.#request({ op: 'update', nodes })).status
  }

  async status(): Promise<{ status: PodNetworkStatus; debug: string; metrics: string }> {
    return await this.#request({ op: 'status' })
  }

  async stop(o: { cleanup?: boolean } = {}): Promise<void> {
    if (this.#exited) return
    await this.#request({ op: 'stop', cleanup: o.cleanup })
    await new Promise<void>((r) => (this.#exited ? r() : this.#child.once('exit', () => r())))
  }

  kill(): void {
    if (!this.#exited) this.#child.kill('SIGKILL')
  }
}

/** A Node object as the API serves it, for a simulated host. */
export function simNode(h: SimHost, o: { ready?: boolean; annotations?: Record<string, string> } = {}): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: h.name, annotations: o.annotations ?? {} },
    spec: { podCIDR: h.podCIDR },
    status: {
      addresses: [{ type: 'InternalIP', address: h.ip }, { type: 'Hostname', address: h.name }],
      conditions: [{ type: 'Ready', status: o.ready === false ? 'Unknown' : 'True' }],
    },
  }
}

/** A TCP server in a namespace that tells each client the address it saw. */
export async function tcpServer(ns: string, ip: string, port: number): Promise<{ kill(): void }> {
  const child = nsSpawn(ns, nodeBin(), [tcpPeerScript, 'serve', ip, String(port)])
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcp server on ${ip}:${port} in ${ns} did not start: ${err}`)), 15_000)
    child.stdout!.once('data', () => (clearTimeout(timer), resolve()))
    child.once('exit', () => (clearTimeout(timer), reject(new Error(`tcp server on ${ip}:${port} in ${ns} exited: ${err}`))))
  })
  return { kill: () => void child.kill('SIGKILL') }
}

export interface TcpResult {
  local?: string
  seen?: string
  error?: string
}

/** One TCP connection from a namespace (3 s limit): the client's address and the address the server saw. */
export async function tcpConnect(ns: string, ip: string, port: number): Promise<TcpResult> {
  const child = nsSpawn(ns, nodeBin(), [tcpPeerScript, 'connect', ip, String(port)])
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await new Promise((r) => child.once('exit', r))
  clearTimeout(timer)
  try {
    return JSON.parse(out.trim().split('\n').pop() ?? '')
  } catch {
    return { error: `no answer from tcp-peer (${out.trim() || 'killed'})` }
  }
}
