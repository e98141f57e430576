// PodNetwork: routes to the other nodes' podCIDRs (host-gw or vxlan) and the
// node's masquerade/forward table, kept in line with the Node objects. The
// agent calls start() once it knows its podCIDR and InternalIP (it returns
// the MTU the pod network needs and the annotations to publish), update()
// with the whole Node list on every change, and stop(). A reconcile reads
// the kernel, plans (plan.ts, pure), and applies only the differences; it
// runs on every update and every resyncMs (10 s), so routes someone deleted
// come back and stale ones go. It runs `ip`, `bridge` and `nft` in the
// current network namespace: one PodNetwork per host.

import { readFile, writeFile } from 'node:fs/promises'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { Logger } from '../../lib/log.ts'
import { cidrContains, formatCidr, intToIp, parseCidr } from '../../lib/ipv4.ts'
import type { Registry } from '../../lib/metrics.ts'
import { PodNetworkError } from './errors.ts'
import {
  connectedSubnets, fdbDeleteArgs, fdbReplaceArgs, mustRun, neighDeleteArgs, neighReplaceArgs, readAddresses, readFdb,
  readNeighbours, readRoutes, routeDeleteArgs, routeReplaceArgs, type LocalAddress,
} from './kernel.ts'
import { createPodNetworkMetrics, type PodNetworkMetrics } from './metrics.ts'
import { applyNftTable, deleteNftTable, listNftTable, nftSupportsRandomFully, renderNftTable } from './nft.ts'
import {
  nodeView, overlayProblems, planFdbChanges, planNeighChanges, planPodNetwork, planRouteChanges, podMtu, podNetworkAnnotations, podNetworkModes, vxlanDefaults,
  type DesiredState, type NodeView, type OverlayCheck, type PeerPlan, type PodNetworkMode, type Problem,
} from './plan.ts'
import { tcpProbe } from './probe.ts'
import { deleteLink, disableTxChecksumOffload, ensureVxlanDevice, loadVtepMac, type VxlanDeviceSpec } from './vxlan.ts'

export interface PodNetworkOptions {
  mode: PodNetworkMode
  nodeName: string
  /** The node's InternalIP: an address of this host (its interface is the underlay). */
  nodeIP: string
  /** The node's spec.podCIDR. */
  podCIDR: string
  clusterCIDR: string
  /** The agent's state dir: the VTEP MAC is kept in `<stateDir>/vtep-mac`. */
  stateDir: string
  logger: Logger
  registry?: Registry
  /** Reconcile at least this often (default 10 s). */
  resyncMs?: number
  /** vxlan: `ethtool -K skiff.1 tx-checksum-ip-generic off` (flannel's fix for the checksum bug class; costs throughput, default off). */
  disableTxChecksumOffload?: boolean
}

export interface PodNetworkStart {
  /** The MTU pods must use (the Docker network's com.docker.network.driver.mtu). */
  mtu: number
  /** Annotations the agent must set on its Node (peers read them). */
  annotations: Record<string, string>
  /** The interface holding the InternalIP. */
  underlay: string
}

export interface PodNetworkStatus {
  mode: PodNetworkMode
  nodeName: string
  podCIDR: string
  nodeIP: string
  mtu?: number
  /** Whether a Node list arrived (nothing is routed before). */
  synced: boolean
  peers: PeerPlan[]
  problems: Problem[]
  /** Coded messages: every refused peer, and every command that failed in the last reconcile. */
  errors: string[]
  /** Routes of the module in the kernel after the last reconcile. */
  routes: number
  lastReconcile?: string
}

/** Remove everything a PodNetwork makes in the current namespace (routes, device, table), whoever made it. */
export async function cleanupPodNetwork(): Promise<void> {
  for (const r of await readRoutes()) await mustRun('ip', routeDeleteArgs(r)).catch(() => undefined)
  await deleteLink(vxlanDefaults.device)
  await deleteNftTable()
}

function validate(o: PodNetworkOptions): void {
  const bad = (m: string) => new PodNetworkError('InvalidOption', m)
  if (!(podNetworkModes as readonly string[]).includes(o.mode)) throw bad(`pod network mode ${JSON.stringify(o.mode)} is not one of ${podNetworkModes.join(', ')}`)
  for (const [k, v] of [['podCIDR', o.podCIDR], ['clusterCIDR', o.clusterCIDR]] as const) {
    try {
      if (formatCidr(parseCidr(v)) !== v) throw new Error()
    } catch {
      throw bad(`${k} ${JSON.stringify(v)} is not an IPv4 network such as 10.244.1.0/24`)
    }
  }
  if (!cidrContains(o.clusterCIDR, intToIp(parseCidr(o.podCIDR).base)) || parseCidr(o.podCIDR).bits < parseCidr(o.clusterCIDR).bits) throw bad(`podCIDR ${o.podCIDR} is not inside the cluster CIDR ${o.clusterCIDR}; use the same --cluster-cidr as the server`)
  try {
    parseCidr(`${o.nodeIP}/32`)
  } catch {
    throw bad(`nodeIP ${JSON.stringify(o.nodeIP)} is not an IPv4 address; pass --node-ip`)
  }
  if (o.resyncMs !== undefined && !(o.resyncMs >= 100)) throw bad(`resyncMs must be at least 100 (got ${o.resyncMs})`)
}

export class PodNetwork {
  readonly metrics: PodNetworkMetrics
  #o: PodNetworkOptions
  #log: Logger
  #device: string = vxlanDefaults.device
  #vxlan?: VxlanDeviceSpec
  #mtu?: number
  #nftScript?: string
  #nftListing?: string
  #nodes?: NodeView[]
  #timer?: NodeJS.Timeout
  #running?: Promise<void>
  #dirty = false
  #stopped = false
  #status: PodNetworkStatus
  #problemsKey = ''
  #desired?: DesiredState
  #commandErrors: string[] = []
  /** vxlan: the overlay self-check per routed peer, keyed by node; `key` is what was probed (podCIDR and address). */
  /** Overlay probe results per peer; `at` is performance.now() (a wall-clock step must not pause the probes). */
  #overlay = new Map<string, OverlayCheck & { key: string; at: number }>()
  #probing?: Promise<void>

  constructor(o: PodNetworkOptions) {
    validate(o)
    this.#o = o
    this.#log = o.logger.child({ component: 'pod-network', mode: o.mode })
    this.metrics = createPodNetworkMetrics(o.registry)
    this.#status = { mode: o.mode, nodeName: o.nodeName, podCIDR: o.podCIDR, nodeIP: o.nodeIP, synced: false, peers: [], problems: [], errors: [], routes: 0 }
  }

  /** Set up the table and (vxlan) the device; routes follow with the first update(). */
  async start(): Promise<PodNetworkStart> {
    const o = this.#o
    this.#stopped = false
    const underlay = underlayOf(o.nodeIP, await readAddresses())
    this.#mtu = podMtu(o.mode, underlay.mtu)
    this.#status.mtu = this.#mtu
    await ensureForwarding(this.#log)
    this.#nftScript = renderNftTable({ podCIDR: o.podCIDR, clusterCIDR: o.clusterCIDR, randomFully: await nftSupportsRandomFully() })
    await this.#ensureNft()
    const annotations: Record<string, string> = { [podNetworkAnnotations.mode]: o.mode }
    if (o.mode === 'vxlan') {
      const { mac, created } = await loadVtepMac(o.stateDir)
      this.#vxlan = {
        name: this.#device, vni: vxlanDefaults.vni, port: vxlanDefaults.port, local: o.nodeIP, underlay: underlay.dev,
        mtu: this.#mtu, mac, address: `${intToIp(parseCidr(o.podCIDR).base)}/32`,
      }
      await this.#ensureDevice()
      annotations[podNetworkAnnotations.vtepMac] = mac
      if (created) this.#log.info({ mac, file: `${o.stateDir}/vtep-mac` }, 'new VTEP MAC')
    } else if (await deleteLink(this.#device)) {
      this.#log.info({ device: this.#device }, 'removed the vxlan device of an earlier run')
    }
    this.#timer = setInterval(() => void this.#kick().catch(() => undefined), o.resyncMs ?? 10_000)
    this.#timer.unref()
    this.#log.info({ underlay: underlay.dev, mtu: this.#mtu, podCIDR: o.podCIDR, nodeIP: o.nodeIP }, 'pod network started')
    return { mtu: this.#mtu, annotations, underlay: underlay.dev }
  }

  /** The whole Node list (this node included or not); resolves once a reconcile that saw it has run. */
  async update(nodes: KubeObject[]): Promise<PodNetworkStatus> {
    const views = nodes.map(nodeView)
    // A Node's heartbeat changes nothing the routes depend on: no reconcile, which spawns ip and nft
    // (the periodic resync still repairs what someone changed, and a failed reconcile is tried again).
    const same = this.#nodes !== undefined && this.#status.synced && this.#commandErrors.length === 0 && JSON.stringify(views) === JSON.stringify(this.#nodes)
    this.#nodes = views
    if (!same) await this.#kick()
    return this.status()
  }

  status(): PodNetworkStatus {
    return structuredClone(this.#status)
  }

  /** Stop reconciling. Routes, device and table stay (traffic keeps flowing while the agent restarts) unless cleanup. */
  async stop(o: { cleanup?: boolean } = {}): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    while (this.#running) await this.#running
    await this.#probing
    if (o.cleanup) {
      await cleanupPodNetwork()
      this.#log.info('pod network removed (routes, device, table)')
    }
  }

  /** Runs a reconcile unless one that starts after this call is already due. */
  async #kick(): Promise<void> {
    this.#dirty = true
    while (this.#running) await this.#running
    if (!this.#dirty || this.#stopped || !this.#nodes) return
    this.#dirty = false
    this.#running = this.#reconcile().finally(() => (this.#running = undefined))
    await this.#running
  }

  async #reconcile(): Promise<void> {
    const t0 = performance.now()
    const errors: string[] = []
    const o = this.#o
    let desired: DesiredState | undefined
    let routes = this.#status.routes
    try {
      await this.#ensureNft()
      if (this.#vxlan) await this.#ensureDevice()
      const connected = connectedSubnets(await readAddresses(), [this.#device])
      desired = planPodNetwork({ mode: o.mode, self: { name: o.nodeName, podCIDR: o.podCIDR, nodeIP: o.nodeIP, vtepMac: this.#vxlan?.mac }, clusterCIDR: o.clusterCIDR, nodes: this.#nodes!, connected, vxlanDevice: this.#device })
      await this.#apply(desired, errors)
      routes = (await readRoutes()).length
    } catch (e) {
      errors.push((e as Error).message)
    }
    const m = this.metrics
    m.reconciles.inc()
    if (errors.length) {
      m.reconcileErrors.inc()
      this.#log.error({ errors }, 'pod network reconcile failed in part; retrying at the next resync')
    }
    m.routes.set(routes)
    m.lastReconcile.set(Date.now() / 1000)
    m.reconcileDuration.observe((performance.now() - t0) / 1000)
    this.#desired = desired ?? this.#desired
    this.#commandErrors = errors
    this.#status = { ...this.#status, synced: true, routes, lastReconcile: new Date().toISOString() }
    this.#publish()
    if (o.mode === 'vxlan') this.#startProbes()
  }

  /** The status, metrics and logs from the last plan, the last command errors and the overlay checks. */
  #publish(): void {
    const d = this.#desired
    const problems = [...(d?.problems ?? []), ...overlayProblems([...this.#overlay.values()])]
    this.#reportProblems(problems)
    const m = this.metrics
    if (d) for (const state of ['routed', 'skipped', 'refused']) m.peers.set({ state }, d.peers.filter((p) => p.state === state).length)
    m.problems.reset()
    for (const p of problems) m.problems.inc({ reason: p.reason })
    this.#status = { ...this.#status, peers: d?.peers ?? [], problems, errors: [...problems.map((p) => p.message), ...this.#commandErrors] }
  }

  /**
   * Probe the overlay to each routed peer, at most once per resync period
   * per peer (at once when its address or podCIDR changed), in the
   * background: a reconcile never waits for it. One SYN and its answer per
   * peer every 10 s.
   */
  #startProbes(): void {
    if (this.#probing || this.#stopped || !this.#desired) return
    const peers = this.#desired.peers.filter((p) => p.state === 'routed')
    for (const node of [...this.#overlay.keys()]) if (!peers.some((p) => p.node === node)) this.#overlay.delete(node)
    const keyOf = (p: PeerPlan) => `${p.podCIDR}|${p.internalIP}`
    const now = performance.now()
    const every = this.#o.resyncMs ?? 10_000
    const due = peers.filter((p) => {
      const c = this.#overlay.get(p.node)
      return !c || c.key !== keyOf(p) || now - c.at >= every
    })
    if (!due.length) return
    this.#probing = Promise.all(due.map(async (p) => {
      const detail = await tcpProbe(intToIp(parseCidr(p.podCIDR!).base))
      const prev = this.#overlay.get(p.node)
      const failures = detail ? (prev?.key === keyOf(p) ? prev.failures : 0) + 1 : 0
      this.#overlay.set(p.node, { node: p.node, internalIP: p.internalIP, key: keyOf(p), at: now, failures, ...(detail ? { detail } : {}) })
    })).then(() => this.#publish()).finally(() => (this.#probing = undefined))
  }

  /** Removals first for routes (nothing points at an entry that goes), additions in flannel's order: FDB, neighbour, route. */
  async #apply(d: DesiredState, errors: string[]): Promise<void> {
    const dev = this.#device
    const peerOf = new Map(d.peers.map((p) => [p.podCIDR ? formatCidr(parseCidr(p.podCIDR)) : '', p.node]))
    const step = async (kind: string, op: string, cmd: string, args: string[], what: Record<string, unknown>) => {
      try {
        await mustRun(cmd, args)
        this.metrics.changes.inc({ kind, op })
        this.#log.info({ kind, op, ...what }, `${kind} ${op === 'delete' ? 'deleted' : 'written'}`)
      } catch (e) {
        errors.push((e as Error).message)
      }
    }
    const routes = planRouteChanges(d.routes, await readRoutes())
    for (const r of routes.remove) await step('route', 'delete', 'ip', routeDeleteArgs(r), { dst: r.dst, via: r.via, dev: r.dev })
    if (this.#vxlan) {
      const fdb = planFdbChanges(d.fdb, await readFdb(dev))
      const neigh = planNeighChanges(d.neighbours, await readNeighbours(dev))
      for (const f of fdb.replace) await step('fdb', 'replace', 'bridge', fdbReplaceArgs(f), { mac: f.mac, dst: f.dst })
      for (const n of neigh.replace) await step('neigh', 'replace', 'ip', neighReplaceArgs(n), { ip: n.ip, mac: n.mac })
      for (const r of routes.replace) await step('route', 'replace', 'ip', routeReplaceArgs(r), { node: peerOf.get(r.dst), dst: r.dst, via: r.via, dev: r.dev })
      for (const n of neigh.remove) await step('neigh', 'delete', 'ip', neighDeleteArgs(n, dev), { ip: n.ip, mac: n.mac })
      for (const f of fdb.remove) await step('fdb', 'delete', 'bridge', fdbDeleteArgs(f, dev), { mac: f.mac, dst: f.dst })
    } else {
      for (const r of routes.replace) await step('route', 'replace', 'ip', routeReplaceArgs(r), { node: peerOf.get(r.dst), dst: r.dst, via: r.via, dev: r.dev })
    }
  }

  /** Log each problem when the set changes (not at every resync). */
  #reportProblems(problems: Problem[]): void {
    const key = JSON.stringify(problems.map((p) => [p.node, p.reason]))
    if (key === this.#problemsKey) return
    this.#problemsKey = key
    for (const p of problems) this.#log.error({ peer: p.node, code: p.code, reason: p.reason }, p.message)
    if (!problems.length) this.#log.info('no pod network problems with the other nodes')
  }

  async #ensureNft(): Promise<void> {
    const listing = await listNftTable()
    if (listing !== undefined && listing === this.#nftListing) return
    if (this.#nftListing !== undefined) this.#log.warn('table ip skiff-podnet was missing or changed; writing it again')
    await applyNftTable(this.#nftScript!)
    this.#nftListing = await listNftTable()
  }

  async #ensureDevice(): Promise<void> {
    const v = this.#vxlan!
    const action = await ensureVxlanDevice(v)
    if (action === 'none') return
    this.#log.info({ device: v.name, action, mac: v.mac, mtu: v.mtu, local: v.local, underlay: v.underlay }, 'vxlan device set up')
    if (this.#o.disableTxChecksumOffload) await disableTxChecksumOffload(v.name)
  }

  #overlayText(node: string): string {
    const c = this.#overlay.get(node)
    return !this.#vxlan || !c ? '-' : c.failures ? `no answer x${c.failures}` : 'ok'
  }

  debugText(): string {
    const s = this.#status
    const lines = [
      `pod network ${s.mode} on ${s.nodeName}: podCIDR ${s.podCIDR}, InternalIP ${s.nodeIP}, pod MTU ${s.mtu ?? '?'}`,
      `${this.#vxlan ? `device ${this.#vxlan.name} VNI ${this.#vxlan.vni} port ${this.#vxlan.port} VTEP MAC ${this.#vxlan.mac} on ${this.#vxlan.underlay}` : 'no overlay device'}`,
      `last reconcile ${s.lastReconcile ?? 'never'}${s.synced ? '' : ' (waiting for the Node list)'}; ${s.routes} routes (proto 152)`,
      '',
      'PEER\tSTATE\tPODCIDR\tINTERNAL-IP\tOVERLAY\tREASON',
      ...s.peers.map((p) => [p.node, p.state, p.podCIDR ?? '-', p.internalIP ?? '-', this.#overlayText(p.node), p.reason ?? ''].join('\t')),
      '',
      ...(s.errors.length ? ['errors:', ...s.errors.map((e) => `  ${e}`)] : ['no errors']),
      '',
    ]
    return lines.join('\n')
  }
}

/** The interface holding the InternalIP (the underlay) and its MTU. */
export function underlayOf(nodeIP: string, addrs: LocalAddress[]): LocalAddress {
  const a = addrs.find((x) => x.ip === nodeIP)
  if (!a) {
    const have = addrs.filter((x) => x.dev !== 'lo').map((x) => `${x.ip} (${x.dev})`).join(', ') || 'none'
    throw new PodNetworkError('NodeIP', `no interface of this host has the InternalIP ${nodeIP} (it has ${have}); pass one of this host's addresses with --node-ip`)
  }
  return a
}

/** Pods on other hosts are reached through this one: the kernel must forward. */
async function ensureForwarding(log: Logger): Promise<void> {
  const file = '/proc/sys/net/ipv4/ip_forward'
  if ((await readFile(file, 'utf8')).trim() === '1') return
  await writeFile(file, '1')
  log.warn('net.ipv4.ip_forward was 0: turned it on (pods on other hosts route through this one)')
}
