// Zero-error endpoint removal without preStop sleeps (issue 11). Before a
// terminating pod's containers get SIGTERM, the agent waits until
//  1. no EndpointSlice lists the pod as ready (the EndpointSlice controller
//     has seen the deletion), and
//  2. every serving data-plane component (each node's service proxy, each
//     ready ingress node) reports an applied revision at or above the slice
//     change that took the pod out (controlplane/api/routing-applied.ts).
// Then nothing routes new requests to the pod any more, and SIGTERM only
// has to finish what is in flight. Kubernetes has the same race and users
// paper over it with `preStop: sleep 5`.
//
// The wait is bounded (default 10 s, never longer than the grace period);
// when it runs out the pod is stopped anyway and a Warning Event names the
// nodes that had not caught up. A pod that never was an endpoint does not wait.
// A component serves while its Lease was seen renewed within its duration,
// and the wait is timed, on this agent's monotonic clock: a wall-clock step
// neither skips the wait nor stretches it.

import { lookupResource } from '../controlplane/api/resources.ts'
import { servingAppliers, type Applier } from '../controlplane/api/routing-applied.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { Informer } from '../controlplane/client/informer.ts'
import { LeaseObserver } from '../controlplane/client/lease-observer.ts'
import type { Logger } from '../lib/log.ts'
import { Histogram, type Registry } from '../lib/metrics.ts'

const slicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!
const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!

/** How long a removed address's change revision is remembered (a pod terminates within that time of leaving its slices). */
const rememberMs = 10 * 60_000

export interface WithdrawalResult {
  /** 'none': never an endpoint; 'withdrawn': every serving node caught up; 'timeout': stopped anyway. */
  outcome: 'none' | 'withdrawn' | 'timeout'
  waitedMs: number
  /** The slice change every node had to reach. */
  revision?: number
  /** Components still behind when the wait ran out. */
  behind?: Applier[]
  /** The pod was still listed as ready when the wait ran out. */
  stillListed?: boolean
}

function podIPs(pod: KubeObject): string[] {
  const ips = new Set<string>()
  for (const p of Array.isArray(pod.status?.podIPs) ? pod.status.podIPs : []) if (typeof p?.ip === 'string') ips.add(p.ip)
  if (typeof pod.status?.podIP === 'string' && pod.status.podIP) ips.add(pod.status.podIP)
  return [...ips]
}

function addresses(slice: KubeObject): Array<{ ip: string; ready: boolean }> {
  const out: Array<{ ip: string; ready: boolean }> = []
  for (const e of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
    const ready = e?.conditions?.ready !== false
    for (const ip of Array.isArray(e?.addresses) ? e.addresses : []) if (typeof ip === 'string') out.push({ ip, ready })
  }
  return out
}

export class EndpointWithdrawal {
  #o: { client: ApiClient; logger: Logger; timeoutMs: number; pollMs: number; nodeName?: string; localApplied?: () => number | undefined }
  #slices: Informer
  #nodeLeases: Informer
  #presence: Informer
  /** When the Leases were seen renewed, and the clock (monotonic) every time here is on. */
  #observer = new LeaseObserver()
  /** ip -> the revision of the last slice change that listed it before or after, and when it was seen. */
  #changes = new Map<string, { rev: number; atMs: number }>()
  #prune?: NodeJS.Timeout
  #wait?: Histogram

  /**
   * localApplied: the revision this node's own service proxy has in effect, read directly. This node counts as
   * behind while it is below the target even when its Lease does not look fresh yet (back from a partition, its
   * renewal not seen): its own stale rules may still send to the pod.
   */
  constructor(o: { client: ApiClient; logger: Logger; timeoutMs?: number; pollMs?: number; registry?: Registry; nodeName?: string; localApplied?: () => number | undefined }) {
    this.#o = { timeoutMs: 10_000, pollMs: 50, ...o }
    this.#slices = new Informer({ client: o.client, info: slicesInfo, logger: o.logger })
    this.#nodeLeases = new Informer({ client: o.client, info: leasesInfo, logger: o.logger, namespace: 'kube-node-lease' })
    this.#presence = new Informer({ client: o.client, info: leasesInfo, logger: o.logger, namespace: 'kube-system' })
    for (const i of [this.#nodeLeases, this.#presence]) i.addHandlers(this.#observer.handlers())
    /** Record change `rev` for every address `s` lists. */
    const note = (s: KubeObject, rev = Number(s.metadata.resourceVersion) || 0) => {
      const now = this.#observer.now()
      for (const a of addresses(s)) {
        const seen = this.#changes.get(a.ip)
        if (!seen || seen.rev < rev) this.#changes.set(a.ip, { rev, atMs: now })
      }
    }
    // A change counts for every address in the old and the new slice: the one it dropped included.
    this.#slices.addHandlers({
      onAdd: (s) => note(s),
      onUpdate: (a, b) => {
        if (a === b) return
        note(b)
        note(a, Number(b.metadata.resourceVersion) || 0)
      },
      onDelete: (s) => note(s),
    })
    if (o.registry) {
      this.#wait = new Histogram({
        name: 'skiff_kubelet_endpoint_withdrawal_seconds',
        help: "Time a terminating pod waited for every serving node to stop routing to it, by outcome",
        labelNames: ['outcome'],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
        registers: [o.registry],
      })
    }
  }

  async start(): Promise<void> {
    await Promise.all([this.#slices.start(), this.#nodeLeases.start(), this.#presence.start()])
    this.#prune = setInterval(() => {
      const cutoff = this.#observer.now() - rememberMs
      for (const [ip, c] of this.#changes) if (c.atMs < cutoff) this.#changes.delete(ip)
    }, 60_000)
    this.#prune.unref()
  }

  stop(): void {
    clearInterval(this.#prune)
    for (const i of [this.#slices, this.#nodeLeases, this.#presence]) i.stop()
  }

  /** True while some EndpointSlice lists one of these addresses as ready. */
  listedReady(ips: readonly string[]): boolean {
    if (ips.length === 0) return false
    for (const s of this.#slices.list()) for (const a of addresses(s)) if (a.ready && ips.includes(a.ip)) return true
    return false
  }

  /** Serving components (fresh Leases) whose applied revision is below `revision`. */
  behind(revision: number): Applier[] {
    const now = this.#observer.now()
    const out = servingAppliers([...this.#nodeLeases.list(), ...this.#presence.list()], (l) => this.#observer.fresh(l, now)).filter((a) => a.revision < revision)
    const local = this.#o.localApplied?.()
    if (local !== undefined && local < revision && !out.some((a) => a.node === this.#o.nodeName && a.component === 'service-proxy')) {
      out.push({ node: this.#o.nodeName ?? 'this node', component: 'service-proxy', revision: local })
    }
    return out
  }

  /** Wait until no serving node routes to the pod any more, at most min(timeout, budgetMs). */
  async waitFor(pod: KubeObject, budgetMs: number): Promise<WithdrawalResult> {
    const clock = this.#observer.now
    const started = clock()
    const deadline = started + Math.max(0, Math.min(this.#o.timeoutMs, budgetMs))
    const ips = podIPs(pod)
    const known = () => ips.some((ip) => this.#changes.has(ip))
    const done = (r: WithdrawalResult) => {
      this.#wait?.observe({ outcome: r.outcome }, r.waitedMs / 1000)
      return r
    }
    if (ips.length === 0 || (!known() && !this.listedReady(ips))) return done({ outcome: 'none', waitedMs: 0 })
    const sleep = () => new Promise((r) => setTimeout(r, this.#o.pollMs))
    while (this.listedReady(ips)) {
      if (clock() >= deadline) return done({ outcome: 'timeout', waitedMs: clock() - started, stillListed: true })
      await sleep()
    }
    const revision = Math.max(0, ...ips.map((ip) => this.#changes.get(ip)?.rev ?? 0))
    for (;;) {
      const behind = this.behind(revision)
      if (behind.length === 0) return done({ outcome: 'withdrawn', waitedMs: clock() - started, revision })
      if (clock() >= deadline) return done({ outcome: 'timeout', waitedMs: clock() - started, revision, behind })
      await sleep()
    }
  }
}
