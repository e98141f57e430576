// The HorizontalPodAutoscaler controller (kube-controller-manager's
// podautoscaler): every sync period (15 s by default, config.hpaSyncPeriodMs)
// each HPA reads its target's scale subresource (any kind that serves one:
// Deployments, ReplicaSets, StatefulSets), the pods of the scale's selector
// from the informer cache, their usage from metrics.k8s.io, computes the
// replicas each metric proposes (hpa-replicas.ts), applies the behavior
// (stabilization windows, rate policies) and min/max, writes the scale when
// it changes (SuccessfulRescale Event), and the status with its conditions.
// Recommendations and scale events live in memory, as in Kubernetes: a new
// leader starts with empty windows.

import { completeRules, defaultScaleDown, defaultScaleUp, type ScalingRules } from '../api/autoscaling.ts'
import { lookupKind, lookupResource } from '../api/resources.ts'
import { parseLabelSelector, matchesLabels } from '../api/selectors.ts'
import { parseQuantity } from '../api/validation.ts'
import type { KubeObject } from '../api/types.ts'
import { resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { averageValueReplicas, limitByRate, resourceReplicas, stabilize, type PodMetric, type Recommendation, type ScaleEvent } from './hpa-replicas.ts'
import { isoSeconds } from './pod-template.ts'
import { SyncLoop } from './workload-loop.ts'
import type { Controller, ControllerContext } from './types.ts'

export const hpaInfo = lookupResource('autoscaling', 'v2', 'horizontalpodautoscalers')!
const podsInfo = lookupResource('', 'v1', 'pods')!

type Obj = Record<string, any>
type Condition = { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string; lastTransitionTime?: string }

/** Conditions with lastTransitionTime kept while the status does not change. Pure. */
export function mergeConditions(old: readonly Condition[] | undefined, next: readonly Condition[], now: number): Condition[] {
  return next.map((c) => {
    const prev = (old ?? []).find((o) => o.type === c.type)
    return { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : isoSeconds(now) }
  })
}

function cpuMilli(q: unknown): number {
  return Math.round((parseQuantity(String(q ?? '0')) ?? 0) * 1000)
}

function metricName(spec: Obj): string {
  const src = spec.resource ?? spec.containerResource
  if (spec.type === 'Resource' || spec.type === 'ContainerResource') {
    const prefix = spec.type === 'ContainerResource' ? `${src.name} container resource` : `${src.name} resource`
    return src.target?.type === 'Utilization' ? `${prefix} utilization (percentage of request)` : prefix
  }
  return `${spec.type} metric ${spec[spec.type.charAt(0).toLowerCase() + spec.type.slice(1)]?.metric?.name ?? ''}`
}

const formatValue = (resource: string, v: number) => (resource === 'cpu' ? `${v}m` : `${v}`)

export class HorizontalPodAutoscalerController implements Controller {
  readonly name = 'horizontal-pod-autoscaler'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #hpaInf?: Informer
  #podInf?: Informer
  #recommendations = new Map<string, Recommendation[]>()
  #upEvents = new Map<string, ScaleEvent[]>()
  #downEvents = new Map<string, ScaleEvent[]>()

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const hpaInf = (this.#hpaInf = ctx.informers.for(hpaInfo))
    this.#podInf = ctx.informers.for(podsInfo)
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [hpaInf, this.#podInf], sync: (k) => this.#sync(k), workers: 2 }))
    hpaInf.addHandlers({
      onAdd: (o) => loop.enqueue(keyFor(o)),
      onUpdate: (a, b) => {
        if (JSON.stringify(a.spec) !== JSON.stringify(b.spec)) loop.enqueue(keyFor(b))
      },
      onDelete: (o) => {
        this.#recommendations.delete(keyFor(o))
        this.#upEvents.delete(keyFor(o))
        this.#downEvents.delete(keyFor(o))
      },
    })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
  }

  get #period(): number {
    return this.#ctx!.config.hpaSyncPeriodMs ?? 15_000
  }

  async #sync(key: string): Promise<number | void> {
    const hpa = this.#hpaInf!.get(key)
    if (!hpa || hpa.metadata.deletionTimestamp) return
    await this.#reconcile(key, hpa)
    return this.#period
  }

  async #reconcile(key: string, hpa: KubeObject): Promise<void> {
    const ctx = this.#ctx!
    const now = Date.now()
    const ns = hpa.metadata.namespace!
    const spec: Obj = hpa.spec ?? {}
    const ref: Obj = spec.scaleTargetRef ?? {}
    const min: number = spec.minReplicas ?? 1
    const max: number = spec.maxReplicas
    const conditions: Condition[] = []
    const target = lookupKind(ref.apiVersion ?? '', ref.kind ?? '')
    const status = (s: Obj) => this.#writeStatus(hpa, { ...s, conditions: mergeConditions(hpa.status?.conditions, [...conditions, ...(s.extraConditions ?? [])], now) })
    if (!target || !(target.subresources ?? []).includes('scale')) {
      const msg = `the HPA controller was unable to get the target's current scale: no scale subresource for ${ref.apiVersion} ${ref.kind}`
      ctx.events.event(hpa, 'Warning', 'FailedGetScale', msg)
      conditions.push({ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale', message: msg })
      return await status({ currentReplicas: hpa.status?.currentReplicas ?? 0, desiredReplicas: hpa.status?.desiredReplicas ?? 0 })
    }
    const scalePath = resourcePath(target, ns, ref.name, 'scale')
    let scale: Obj
    try {
      scale = await ctx.client.call('GET', scalePath)
    } catch (e) {
      const msg = `the HPA controller was unable to get the target's current scale: ${(e as Error).message}`
      ctx.events.event(hpa, 'Warning', 'FailedGetScale', msg)
      conditions.push({ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale', message: msg })
      return await status({ currentReplicas: hpa.status?.currentReplicas ?? 0, desiredReplicas: hpa.status?.desiredReplicas ?? 0 })
    }
    conditions.push({ type: 'AbleToScale', status: 'True', reason: 'SucceededGetScale', message: "the HPA controller was able to get the target's current scale" })
    const current: number = scale.spec?.replicas ?? 0
    let desired = 0
    let rescaleReason = ''
    let currentMetrics: Obj[] | undefined
    const up = completeRules(spec.behavior?.scaleUp, defaultScaleUp())
    const down = completeRules(spec.behavior?.scaleDown, defaultScaleDown())
    if (current === 0 && min !== 0) {
      conditions.push({ type: 'ScalingActive', status: 'False', reason: 'ScalingDisabled', message: 'scaling is disabled since the replica count of the target is zero' })
    } else if (current > max) {
      desired = max
      rescaleReason = 'Current number of replicas above Spec.MaxReplicas'
    } else if (current < min) {
      desired = min
      rescaleReason = 'Current number of replicas below Spec.MinReplicas'
    } else {
      const computed = await this.#computeReplicas(hpa, scale, current, now)
      currentMetrics = computed.statuses
      if (computed.replicas < 0) {
        conditions.push({ type: 'ScalingActive', status: 'False', reason: computed.reason!, message: `the HPA was unable to compute the replica count: ${computed.error}` })
        ctx.events.event(hpa, 'Warning', 'FailedComputeMetricsReplicas', `invalid metrics (${computed.invalid} invalid out of ${(spec.metrics ?? []).length}), first error is: ${computed.error}`)
        return await status({ currentReplicas: current, desiredReplicas: hpa.status?.desiredReplicas ?? current, currentMetrics, lastScaleTime: hpa.status?.lastScaleTime })
      }
      conditions.push({ type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound', message: `the HPA was able to successfully calculate a replica count from ${computed.metric}` })
      desired = computed.replicas
      if (desired > current) rescaleReason = `${computed.metric} above target`
      if (desired < current) rescaleReason = 'All metrics below target'
      const s = this.#normalize(key, { desired, current, min, max, up, down, now })
      desired = s.replicas
      conditions[0] = s.able
      conditions.push(s.limited)
    }
    const rescale = desired !== current && !(current === 0 && min !== 0)
    let lastScaleTime = hpa.status?.lastScaleTime
    if (rescale) {
      try {
        await ctx.client.call('PATCH', scalePath, { body: { spec: { replicas: desired } }, contentType: 'application/merge-patch+json' })
      } catch (e) {
        const msg = `the HPA controller was unable to update the target scale: ${(e as Error).message}`
        ctx.events.event(hpa, 'Warning', 'FailedRescale', `New size: ${desired}; reason: ${rescaleReason}; error: ${(e as Error).message}`)
        conditions[0] = { type: 'AbleToScale', status: 'False', reason: 'FailedUpdateScale', message: msg }
        return await status({ currentReplicas: current, desiredReplicas: hpa.status?.desiredReplicas ?? current, currentMetrics, lastScaleTime })
      }
      conditions[0] = { type: 'AbleToScale', status: 'True', reason: 'SucceededRescale', message: `the HPA controller was able to update the target scale to ${desired}` }
      ctx.events.event(hpa, 'Normal', 'SuccessfulRescale', `New size: ${desired}; reason: ${rescaleReason}`)
      const events = desired > current ? this.#upEvents : this.#downEvents
      events.set(key, [...(events.get(key) ?? []).filter((e) => e.atMs > now - 1800_000), { change: Math.abs(desired - current), atMs: now }])
      lastScaleTime = isoSeconds(now)
    }
    await status({ currentReplicas: current, desiredReplicas: desired, currentMetrics, lastScaleTime })
  }

  /** Stabilization and rate limits (normalizeDesiredReplicasWithBehaviors). */
  #normalize(key: string, o: { desired: number; current: number; min: number; max: number; up: ScalingRules; down: ScalingRules; now: number }) {
    const history = this.#recommendations.get(key) ?? [{ replicas: o.current, atMs: o.now }]
    const st = stabilize({ desired: o.desired, current: o.current, up: o.up, down: o.down, history, now: o.now })
    this.#recommendations.set(key, st.history)
    const able: Condition = st.replicas !== o.desired
      ? { type: 'AbleToScale', status: 'True', reason: st.reason, message: st.message }
      : { type: 'AbleToScale', status: 'True', reason: 'ReadyForNewScale', message: 'recommended size matches current size' }
    const lim = limitByRate({ desired: st.replicas, current: o.current, min: o.min, max: o.max, up: o.up, down: o.down, upEvents: this.#upEvents.get(key) ?? [], downEvents: this.#downEvents.get(key) ?? [], now: o.now })
    const limited: Condition = lim.replicas === st.replicas
      ? { type: 'ScalingLimited', status: 'False', reason: lim.reason, message: lim.message }
      : { type: 'ScalingLimited', status: 'True', reason: lim.reason, message: lim.message }
    return { replicas: lim.replicas, able, limited }
  }

  /** The largest proposal over the metrics (computeReplicasForMetrics); -1 when none could be computed. */
  async #computeReplicas(hpa: KubeObject, scale: Obj, current: number, now: number) {
    const ctx = this.#ctx!
    const ns = hpa.metadata.namespace!
    const metrics: Obj[] = hpa.spec?.metrics ?? []
    const statuses: Obj[] = []
    let best = -1
    let bestMetric = ''
    let invalid = 0
    let firstError = ''
    let firstReason = ''
    const selectorText: string = scale.status?.selector ?? ''
    const selector = selectorText ? parseLabelSelector(selectorText) : undefined
    const pods = selector ? this.#podInf!.list((p) => p.metadata.namespace === ns && matchesLabels(selector, p.metadata.labels ?? {})) : []
    for (const m of metrics) {
      const src = m.type === 'Resource' ? m.resource : m.type === 'ContainerResource' ? m.containerResource : undefined
      try {
        if (!src) throw Object.assign(new Error(`metric type ${m.type} is not supported: Skiff serves resource metrics only`), { reason: 'FailedGetExternalMetric' })
        if (!selector) throw new Error('the HPA target\'s scale is missing a selector')
        const usage = await this.#podUsage(ns, selectorText, src.name, m.type === 'ContainerResource' ? src.container : undefined)
        const target = src.target ?? {}
        const p = target.type === 'Utilization'
          ? resourceReplicas({ currentReplicas: current, targetUtilization: target.averageUtilization, resource: src.name, container: src.container, pods, metrics: usage, now })
          : averageValueReplicas({ currentReplicas: current, targetAverage: src.name === 'cpu' ? cpuMilli(target.averageValue) : parseQuantity(String(target.averageValue)) ?? 0, resource: src.name, pods, metrics: usage, now })
        const key = m.type === 'Resource' ? 'resource' : 'containerResource'
        const currentValue: Obj = { averageValue: formatValue(src.name, p.rawAverage), ...(target.type === 'Utilization' ? { averageUtilization: p.utilization } : {}) }
        statuses.push({ type: m.type, [key]: { name: src.name, ...(src.container ? { container: src.container } : {}), current: currentValue } })
        if (p.replicas > best) {
          best = p.replicas
          bestMetric = metricName(m)
        }
      } catch (e) {
        invalid++
        const reason = (e as { reason?: string }).reason ?? (m.type === 'ContainerResource' ? 'FailedGetContainerResourceMetric' : 'FailedGetResourceMetric')
        ctx.events.event(hpa, 'Warning', reason, (e as Error).message)
        if (!firstError) {
          firstError = (e as Error).message
          firstReason = reason
        }
        statuses.push({ type: '' })
      }
    }
    // Kubernetes acts on the valid metrics when some failed, unless they propose scaling down.
    if (invalid > 0 && (best < 0 || best < current)) return { replicas: -1, statuses, invalid, error: firstError, reason: firstReason, metric: '' }
    return { replicas: best, statuses, invalid, metric: bestMetric }
  }

  /** Per-pod usage from metrics.k8s.io: milli-cores for cpu, bytes for memory. */
  async #podUsage(ns: string, selector: string, resource: string, container?: string): Promise<Map<string, PodMetric>> {
    let list: Obj
    try {
      list = await this.#ctx!.client.call('GET', `/apis/metrics.k8s.io/v1beta1/namespaces/${encodeURIComponent(ns)}/pods`, { query: { labelSelector: selector } })
    } catch (e) {
      throw new Error(`unable to get metrics for resource ${resource}: unable to fetch metrics from resource metrics API: ${(e as Error).message}`)
    }
    const items: Obj[] = list.items ?? []
    if (!items.length) throw new Error(`unable to get metrics for resource ${resource}: no metrics returned from resource metrics API`)
    const out = new Map<string, PodMetric>()
    for (const pm of items) {
      let value = 0
      for (const c of pm.containers ?? []) {
        if (container && c.name !== container) continue
        const q = c.usage?.[resource]
        if (q === undefined) continue
        value += resource === 'cpu' ? cpuMilli(q) : (parseQuantity(String(q)) ?? 0)
      }
      out.set(pm.metadata.name, { value, timestampMs: Date.parse(pm.timestamp), windowMs: windowMs(pm.window) })
    }
    return out
  }

  async #writeStatus(hpa: KubeObject, s: Obj): Promise<void> {
    const next: Obj = {
      observedGeneration: hpa.metadata.generation,
      ...(s.lastScaleTime ? { lastScaleTime: s.lastScaleTime } : {}),
      currentReplicas: s.currentReplicas,
      desiredReplicas: s.desiredReplicas,
      ...(s.currentMetrics ? { currentMetrics: s.currentMetrics } : hpa.status?.currentMetrics ? { currentMetrics: hpa.status.currentMetrics } : {}),
      conditions: s.conditions,
    }
    if (JSON.stringify(next) === JSON.stringify(hpa.status ?? {})) return
    const updated = { ...hpa, status: next }
    await this.#ctx!.client.update(hpaInfo, updated, 'status').catch((e) => this.#ctx!.logger.info({ hpa: keyFor(hpa), err: (e as Error).message }, 'HPA status not written; next sync retries'))
  }
}

/** A metav1.Duration string (`15.002s`, `1m0s`, `500ms`) in ms. Pure. */
export function windowMs(d: unknown): number {
  if (typeof d !== 'string') return 0
  let total = 0
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    const v = Number(m[1])
    total += m[2] === 'h' ? v * 3600_000 : m[2] === 'm' ? v * 60_000 : m[2] === 's' ? v * 1000 : m[2] === 'ms' ? v : 0
  }
  return total
}
