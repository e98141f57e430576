// HorizontalPodAutoscaler: Kubernetes' defaults for autoscaling/v2 (the
// stored version) and the conversion between autoscaling/v1 and v2. Pure.
//
// Conversion as Kubernetes does it: v1's targetCPUUtilizationPercentage is
// the v2 `Resource cpu Utilization` metric (80% when unset); what v1 cannot
// say travels in annotations on the v1 object: the other metrics
// (`autoscaling.alpha.kubernetes.io/metrics`), the current metrics, the
// conditions and the behavior. Skiff writes them as v2 JSON (Kubernetes
// writes its older v2beta forms), so a v1 client's round trip keeps them.

import { clone, type KubeObject } from './types.ts'

type Obj = Record<string, any>

export interface ScalingPolicy {
  type: 'Pods' | 'Percent'
  value: number
  periodSeconds: number
}

export interface ScalingRules {
  stabilizationWindowSeconds: number
  selectPolicy: 'Max' | 'Min' | 'Disabled'
  policies: ScalingPolicy[]
}

/** Kubernetes' scale-up rules: no stabilization, the larger of +100% and +4 pods per 15 s. */
export function defaultScaleUp(): ScalingRules {
  return { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] }
}

/** Kubernetes' scale-down rules: a 300 s stabilization window, then down to any size (100% per 15 s). */
export function defaultScaleDown(): ScalingRules {
  return { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] }
}

/** Fill the unset fields of given rules (GenerateHPAScale{Up,Down}Rules). */
export function completeRules(given: Obj | undefined, defaults: ScalingRules): ScalingRules {
  if (!given || typeof given !== 'object') return defaults
  return {
    stabilizationWindowSeconds: given.stabilizationWindowSeconds ?? defaults.stabilizationWindowSeconds,
    selectPolicy: given.selectPolicy ?? defaults.selectPolicy,
    policies: Array.isArray(given.policies) && given.policies.length ? given.policies : defaults.policies,
  }
}

export const defaultCPUUtilization = 80

function cpuMetric(percent: number): Obj {
  return { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: percent } } }
}

/** SetDefaults_HorizontalPodAutoscaler (v2): minReplicas 1, 80% CPU without metrics, behavior completed when given. */
export function defaultHorizontalPodAutoscaler(o: KubeObject): void {
  if (!o.spec || typeof o.spec !== 'object') return
  const spec = o.spec as Obj
  if (spec.minReplicas === undefined || spec.minReplicas === null) spec.minReplicas = 1
  if (!Array.isArray(spec.metrics) || spec.metrics.length === 0) spec.metrics = [cpuMetric(defaultCPUUtilization)]
  if (spec.behavior && typeof spec.behavior === 'object') {
    spec.behavior.scaleUp = completeRules(spec.behavior.scaleUp, defaultScaleUp())
    spec.behavior.scaleDown = completeRules(spec.behavior.scaleDown, defaultScaleDown())
  }
}

export const v1Annotations = {
  metrics: 'autoscaling.alpha.kubernetes.io/metrics',
  currentMetrics: 'autoscaling.alpha.kubernetes.io/current-metrics',
  conditions: 'autoscaling.alpha.kubernetes.io/conditions',
  behavior: 'autoscaling.alpha.kubernetes.io/behavior',
} as const

const isCpuUtilization = (m: Obj) => m?.type === 'Resource' && m.resource?.name === 'cpu' && m.resource?.target?.type === 'Utilization'

function parseAnnotation(annotations: Obj, key: string): any {
  const v = annotations[key]
  delete annotations[key]
  if (typeof v !== 'string') return undefined
  try {
    return JSON.parse(v)
  } catch {
    return undefined
  }
}

/** An autoscaling/v1 HorizontalPodAutoscaler as the stored v2 object. */
export function hpaV1ToV2(v1: KubeObject): KubeObject {
  const o = clone(v1)
  o.apiVersion = 'autoscaling/v2'
  const annotations: Obj = { ...(o.metadata?.annotations ?? {}) }
  const extra = parseAnnotation(annotations, v1Annotations.metrics)
  const currentExtra = parseAnnotation(annotations, v1Annotations.currentMetrics)
  const conditions = parseAnnotation(annotations, v1Annotations.conditions)
  const behavior = parseAnnotation(annotations, v1Annotations.behavior)
  if (o.metadata) {
    if (Object.keys(annotations).length) o.metadata.annotations = annotations
    else delete o.metadata.annotations
  }
  if (o.spec && typeof o.spec === 'object') {
    const { targetCPUUtilizationPercentage: target, ...rest } = o.spec as Obj
    const metrics = [...(target != null ? [cpuMetric(target)] : []), ...(Array.isArray(extra) ? extra : [])]
    o.spec = { ...rest, ...(metrics.length ? { metrics } : {}), ...(behavior ? { behavior } : {}) }
  }
  if (o.status && typeof o.status === 'object') {
    const { currentCPUUtilizationPercentage: current, ...rest } = o.status as Obj
    const currentMetrics = [
      ...(current != null ? [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: current } } }] : []),
      ...(Array.isArray(currentExtra) ? currentExtra : []),
    ]
    o.status = { ...rest, ...(currentMetrics.length ? { currentMetrics } : {}), ...(Array.isArray(conditions) ? { conditions } : {}) }
  }
  return o
}

/** The stored v2 object as autoscaling/v1 shows it. */
export function hpaV2ToV1(v2: KubeObject): KubeObject {
  const o = clone(v2)
  o.apiVersion = 'autoscaling/v1'
  const annotations: Obj = { ...(o.metadata?.annotations ?? {}) }
  const spec: Obj = o.spec ?? {}
  const metrics: Obj[] = Array.isArray(spec.metrics) ? spec.metrics : []
  const cpu = metrics.find(isCpuUtilization)
  const others = metrics.filter((m) => m !== cpu)
  if (others.length) annotations[v1Annotations.metrics] = JSON.stringify(others)
  if (spec.behavior) annotations[v1Annotations.behavior] = JSON.stringify(spec.behavior)
  const { metrics: _m, behavior: _b, ...specRest } = spec
  o.spec = { ...specRest, ...(cpu ? { targetCPUUtilizationPercentage: cpu.resource.target.averageUtilization } : {}) }
  if (o.status && typeof o.status === 'object') {
    const { currentMetrics, conditions, ...rest } = o.status as Obj
    const current: Obj[] = Array.isArray(currentMetrics) ? currentMetrics : []
    const cpuNow = current.find((m) => m?.type === 'Resource' && m.resource?.name === 'cpu' && m.resource?.current?.averageUtilization != null)
    const otherNow = current.filter((m) => m !== cpuNow)
    if (otherNow.length) annotations[v1Annotations.currentMetrics] = JSON.stringify(otherNow)
    if (Array.isArray(conditions) && conditions.length) annotations[v1Annotations.conditions] = JSON.stringify(conditions)
    o.status = { currentReplicas: 0, desiredReplicas: 0, ...rest, ...(cpuNow ? { currentCPUUtilizationPercentage: cpuNow.resource.current.averageUtilization } : {}) }
  }
  if (Object.keys(annotations).length) o.metadata = { ...o.metadata, annotations }
  return o
}
