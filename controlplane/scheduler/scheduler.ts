// The scheduler loop (a Controller): informer handlers keep the cache and
// the queue up to date and only enqueue pod keys; one worker runs one cycle
// at a time (cycle.ts, pure), assumes the pod onto the chosen node in the
// cache and starts the bind (bind.ts: one POST to pods/NAME/binding) without
// waiting for it, so the next cycle runs while the apiserver writes. A failed bind forgets the
// assumption and retries the pod after its backoff.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import type { Controller, ControllerContext } from '../controllers/types.ts'
import type { Logger } from '../../lib/log.ts'
import { bindPod, hasCondition, patchPodScheduled, podScheduledCondition, podsInfo } from './bind.ts'
import { SchedulerCache } from './cache.ts'
import { fitErrorMessage, runCycle } from './cycle.ts'
import { SchedulerError } from './errors.ts'
import { isProfileName, profiles, type Profile, type ProfileName } from './framework.ts'
import { createSchedulerMetrics, type SchedulerMetrics } from './metrics.ts'
import { SchedulingQueue } from './queue.ts'
import { isTerminal } from './resources.ts'
import { defaultSchedulerName, isPendingFor, nodeSchedulingChanged, podSpecChanged } from './triggers.ts'
import { selectNodeForClaims, watchVolumes } from './volumes.ts'
import type { VolumeLookup } from './plugins/volume-binding.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!

export interface SchedulerOptions {
  /** `default` (spread, then least allocated) or `bin-packing` (most allocated). */
  profile?: ProfileName
  /** Pods whose spec.schedulerName is this (unset counts as default-scheduler). */
  schedulerName?: string
  /** Share of nodes to find feasible before scoring: 0 = adaptive like kube-scheduler, 100 = all. */
  percentageOfNodesToScore?: number
  /** Every pending pod is tried again this often, whatever changed (default 30 s). */
  retryIntervalMs?: number
  /** Per-pod backoff after a failed attempt: initial, doubling up to max (default 1 s .. 10 s). */
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** Binds in flight before the worker waits for one to finish (default 256). */
  maxInflightBinds?: number
}

type ResolvedOptions = Required<SchedulerOptions>

function resolveOptions(o: SchedulerOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    profile: 'default',
    schedulerName: defaultSchedulerName,
    percentageOfNodesToScore: 0,
    retryIntervalMs: 30_000,
    initialBackoffMs: 1_000,
    maxBackoffMs: 10_000,
    maxInflightBinds: 256,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  }
  if (!isProfileName(r.profile)) throw new SchedulerError('UnknownProfile', `profile "${r.profile}" is not one of ${Object.keys(profiles).join(', ')}`)
  if (!(r.percentageOfNodesToScore >= 0 && r.percentageOfNodesToScore <= 100)) throw new SchedulerError('InvalidOption', 'percentageOfNodesToScore must be within 0..100')
  for (const k of ['retryIntervalMs', 'initialBackoffMs', 'maxBackoffMs', 'maxInflightBinds'] as const) {
    if (!(Number.isFinite(r[k]) && r[k] > 0)) throw new SchedulerError('InvalidOption', `${k} must be a positive number`)
  }
  return Object.freeze(r)
}

export class Scheduler implements Controller {
  readonly name = 'scheduler'
  readonly options: ResolvedOptions
  #cache = new SchedulerCache()
  #profile: Profile
  #ctx?: ControllerContext
  #log!: Logger
  #m!: SchedulerMetrics
  #queue?: SchedulingQueue
  #pods?: Informer
  #volumes?: VolumeLookup
  #flush?: NodeJS.Timeout
  #stopped = true
  /** Bumped by every start(): handlers left on an earlier term's informers see a stale value and do nothing. */
  #term = 0
  #nextStart = 0
  /** Binds in flight (they hold the worker back at maxInflightBinds). */
  #binds = new Set<Promise<void>>()
  /** Other writes in flight (conditions): awaited by stop(), never block a cycle. */
  #background = new Set<Promise<void>>()
  /** When each pending pod first entered the queue, for the e2e latency. */
  #firstSeen = new Map<string, number>()
  /** The last unschedulable message written per pod, so a retry that fails the same way writes nothing. */
  #lastMessage = new Map<string, string>()

  constructor(opts: SchedulerOptions = {}) {
    this.options = resolveOptions(opts)
    this.#profile = profiles[this.options.profile]
  }

  /** What the scheduler believes is on each node (read-only; for tests and the benchmark). */
  get cache(): SchedulerCache {
    return this.#cache
  }

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#stopped = false
    // A new start (a new leadership term) begins from the new informers' view, not the last term's.
    this.#cache = new SchedulerCache()
    this.#firstSeen.clear()
    this.#lastMessage.clear()
    this.#nextStart = 0
    const term = ++this.#term
    const live = (fn: () => unknown) => {
      if (!this.#stopped && term === this.#term) fn()
    }
    this.#log = ctx.logger.child({ component: 'scheduler', profile: this.#profile.name })
    const queue = new SchedulingQueue({ logger: this.#log, backoff: { initialMs: this.options.initialBackoffMs, maxMs: this.options.maxBackoffMs } })
    this.#queue = queue
    this.#m = createSchedulerMetrics(ctx.metrics, () => queue.counts)
    const nodes = ctx.informers.for(nodesInfo)
    const pods = ctx.informers.for(podsInfo)
    this.#pods = pods
    nodes.addHandlers({
      onAdd: (n) => live(() => this.#nodeChanged(undefined, n)),
      onUpdate: (o, n) => live(() => o !== n && this.#nodeChanged(o, n)),
      onDelete: (n) => live(() => this.#cache.removeNode(n.metadata.name!)),
    })
    pods.addHandlers({
      onAdd: (p) => live(() => this.#podChanged(undefined, p)),
      onUpdate: (o, p) => live(() => o !== p && this.#podChanged(o, p)),
      onDelete: (p) => live(() => this.#podDeleted(p)),
    })
    this.#volumes = watchVolumes(ctx, () => live(() => queue.moveAllToActive()))
    await ctx.informers.start()
    if (this.#stopped || term !== this.#term) return // stopped while the informers synced
    // The informers may have synced before our handlers were added (shared
    // with other controllers): replay their caches; every step is an upsert.
    for (const n of nodes.list()) this.#nodeChanged(undefined, n)
    for (const p of pods.list()) this.#podChanged(undefined, p)
    queue.start((key) => this.#scheduleOne(key))
    this.#flush = setInterval(() => live(() => this.#activateAllPending()), this.options.retryIntervalMs)
    this.#flush.unref()
    this.#log.info({ nodes: nodes.list().length, options: this.options }, 'scheduler started')
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#flush)
    this.#queue?.stop()
    await Promise.allSettled([...this.#binds, ...this.#background])
  }

  #nodeChanged(old: KubeObject | undefined, node: KubeObject): void {
    this.#cache.upsertNode(node)
    if (!old || nodeSchedulingChanged(old, node)) this.#queue!.moveAllToActive()
  }

  #podChanged(old: KubeObject | undefined, pod: KubeObject): void {
    const key = keyFor(pod)
    if (pod.spec?.nodeName) {
      this.#cache.upsertPod(pod)
      if (!old || !old.spec?.nodeName) this.#done(key)
      // A finished pod frees its resources.
      if (isTerminal(pod) && old && !isTerminal(old)) this.#queue!.moveAllToActive()
      return
    }
    if (!isPendingFor(pod, this.options.schedulerName)) return this.#done(key)
    if (old && !podSpecChanged(old, pod)) return
    if (!this.#firstSeen.has(key)) this.#firstSeen.set(key, performance.now())
    this.#queue!.activate(key)
  }

  #podDeleted(pod: KubeObject): void {
    const key = keyFor(pod)
    const held = !!pod.spec?.nodeName || this.#cache.isAssumed(key)
    this.#cache.removePod(key)
    this.#done(key)
    if (held) this.#queue!.moveAllToActive()
  }

  /** The pod is bound or gone: drop its queue state. */
  #done(key: string): void {
    this.#queue!.forget(key)
    this.#firstSeen.delete(key)
    this.#lastMessage.delete(key)
  }

  /** Level-based repair: every pending pod, wherever it is (or is not) queued, gets another attempt. */
  #activateAllPending(): void {
    for (const p of this.#pods!.list()) {
      const key = keyFor(p)
      if (isPendingFor(p, this.options.schedulerName) && !this.#cache.isAssumed(key)) this.#queue!.activate(key)
    }
  }

  async #scheduleOne(key: string): Promise<void> {
    const pod = this.#pods!.get(key)
    if (this.#stopped || !pod || !isPendingFor(pod, this.options.schedulerName) || this.#cache.isAssumed(key)) return
    const t0 = performance.now()
    const r = runCycle({ pod, nodes: this.#cache.nodeInfos(), profile: this.#profile, startIndex: this.#nextStart, percentageOfNodesToScore: this.options.percentageOfNodesToScore, volumes: this.#volumes })
    this.#nextStart = r.nextStartIndex
    this.#m.algorithm.observe({ profile: this.#profile.name }, (performance.now() - t0) / 1000)
    if ('fitError' in r) {
      this.#m.attempts.inc({ result: 'unschedulable', profile: this.#profile.name })
      this.#queue!.markUnschedulable(key)
      this.#track(this.#background, this.#reportUnschedulable(pod, fitErrorMessage(r.fitError)))
      return
    }
    this.#cache.assume(pod, r.node)
    this.#track(this.#binds, this.#bind(pod, r.node))
    // Backpressure: never more than maxInflightBinds binds outstanding.
    while (this.#binds.size >= this.options.maxInflightBinds) await Promise.race(this.#binds)
  }

  #track(set: Set<Promise<void>>, p: Promise<void>): void {
    const q = p.catch((e) => this.#log.error({ err: (e as Error).message }, 'unexpected scheduler error'))
    set.add(q)
    void q.finally(() => set.delete(q))
  }

  async #bind(pod: KubeObject, node: string): Promise<void> {
    const key = keyFor(pod)
    const ctx = this.#ctx!
    // Read before the bind: the informer may deliver the bound pod (which forgets the key) before bindPod returns.
    const first = this.#firstSeen.get(key)
    try {
      if (this.#volumes) await selectNodeForClaims(ctx, pod, node, this.#volumes)
      const out = await bindPod(ctx.client, pod, node)
      if ('gone' in out) {
        // Deleted, or bound by someone else meanwhile: the informer shows the truth.
        this.#cache.forget(key)
        this.#log.debug({ pod: key, node, why: out.gone }, 'pod not bound')
        return
      }
      this.#m.attempts.inc({ result: 'scheduled', profile: this.#profile.name })
      if (first !== undefined) this.#m.e2e.observe({ profile: this.#profile.name }, (performance.now() - first) / 1000)
      this.#log.debug({ pod: key, node, attempts: this.#queue!.attempts(key) + 1 }, 'pod bound')
      this.#done(key)
      // PodScheduled=True came with the binding; the Event is queued, written off this path by the recorder.
      ctx.events.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${key} to ${node}`)
    } catch (e) {
      this.#m.attempts.inc({ result: 'error', profile: this.#profile.name })
      this.#log.warn({ pod: key, node, err: (e as Error).message }, 'bind failed; retrying after backoff')
      // The assumed pod no longer holds room on the node: parked pods may fit.
      if (this.#cache.forget(key)) this.#queue!.moveAllToActive()
      if (!this.#stopped) this.#queue!.retryLater(key)
    }
  }

  async #reportUnschedulable(pod: KubeObject, message: string): Promise<void> {
    const key = keyFor(pod)
    // Every failed attempt, as kube-scheduler: the recorder makes repeats one Event whose count grows.
    this.#ctx!.events.event(pod, 'Warning', 'FailedScheduling', message)
    if (this.#lastMessage.get(key) === message) return
    this.#lastMessage.set(key, message)
    this.#log.info({ pod: key, message }, 'pod is unschedulable')
    const cond = podScheduledCondition('False', new Date(), message)
    if (hasCondition(pod, cond)) return
    await patchPodScheduled(this.#ctx!.client, pod, cond).catch((e) => {
      this.#lastMessage.delete(key)
      this.#log.debug({ pod: key, err: (e as Error).message }, 'PodScheduled=False not written')
    })
  }
}
