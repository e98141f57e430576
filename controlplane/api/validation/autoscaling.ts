// HorizontalPodAutoscaler (pkg/apis/autoscaling/validation), on the stored
// v2 form after defaulting: the target reference, replica bounds, metric
// sources and targets, and the behavior's windows and policies, with
// Kubernetes' field paths and messages.

import { invalid, invalidEach, isRecord, items, notSupported, required } from './field.ts'
import type { Causes } from './field.ts'
import { isValidPathSegmentName } from './rbac.ts'
import type { KubeObject } from '../types.ts'

const metricTypes = ['Object', 'Pods', 'Resource', 'ContainerResource', 'External']
const sourceKey: Record<string, string> = { Object: 'object', Pods: 'pods', Resource: 'resource', ContainerResource: 'containerResource', External: 'external' }
const maxStabilization = 3600
const maxPeriod = 1800

function validateRef(ref: unknown, path: string): Causes {
  if (!isRecord(ref)) return [required(`${path}.kind`), required(`${path}.name`)]
  const out: Causes = []
  for (const k of ['kind', 'name'] as const) {
    const v = ref[k]
    if (typeof v !== 'string' || v === '') out.push(required(`${path}.${k}`))
    else out.push(...invalidEach(`${path}.${k}`, v, isValidPathSegmentName(v)))
  }
  return out
}

function validateTarget(t: unknown, path: string, resource: boolean): Causes {
  if (!isRecord(t)) return [required(`${path}.type`)]
  const out: Causes = []
  if (!t.type) out.push(required(`${path}.type`, 'must specify a metric target type'))
  else if (!['Utilization', 'Value', 'AverageValue'].includes(t.type)) out.push(notSupported(`${path}.type`, t.type, ['Utilization', 'Value', 'AverageValue']))
  if (t.averageUtilization != null && !(Number.isInteger(t.averageUtilization) && t.averageUtilization > 0)) out.push(invalid(`${path}.averageUtilization`, t.averageUtilization, 'must be greater than 0'))
  if (t.type === 'Utilization' && t.averageUtilization == null) out.push(required(`${path}.averageUtilization`, 'must set either a target raw value or a target utilization'))
  if (t.type === 'AverageValue' && t.averageValue == null) out.push(required(`${path}.averageValue`, 'must set either a target raw value or a target utilization'))
  if (t.type === 'Value' && t.value == null) out.push(required(`${path}.value`, 'must set either a target raw value or a target utilization'))
  if (resource && t.type === 'Value') out.push(invalid(`${path}.type`, t.type, 'must be either Utilization or AverageValue'))
  return out
}

function validateMetric(m: unknown, path: string): Causes {
  if (!isRecord(m)) return [required(`${path}.type`, 'must specify a metric source type')]
  if (!m.type) return [required(`${path}.type`, 'must specify a metric source type')]
  if (!metricTypes.includes(m.type)) return [notSupported(`${path}.type`, m.type, metricTypes)]
  const key = sourceKey[m.type]!
  const src = m[key]
  const out: Causes = []
  for (const other of Object.values(sourceKey)) if (other !== key && m[other] != null) out.push(invalid(`${path}.${other}`, '', 'must populate the given metric source only'))
  if (!isRecord(src)) return [...out, required(`${path}.${key}`, `must populate information for the given metric source`)]
  if (m.type === 'Resource' || m.type === 'ContainerResource') {
    if (!src.name) out.push(required(`${path}.${key}.name`, 'must specify a resource name'))
    if (m.type === 'ContainerResource' && !src.container) out.push(required(`${path}.${key}.container`, 'must specify a container'))
    out.push(...validateTarget(src.target, `${path}.${key}.target`, true))
  } else {
    if (!isRecord(src.metric) || !src.metric.name) out.push(required(`${path}.${key}.metric.name`, 'must specify a metric name'))
    if (m.type === 'Object') out.push(...validateRef(src.describedObject, `${path}.${key}.describedObject`))
    out.push(...validateTarget(src.target, `${path}.${key}.target`, false))
  }
  return out
}

function validateRules(r: unknown, path: string): Causes {
  if (r == null) return []
  if (!isRecord(r)) return [invalid(path, r, 'must be an object')]
  const out: Causes = []
  const w = r.stabilizationWindowSeconds
  if (w != null) {
    if (w < 0) out.push(invalid(`${path}.stabilizationWindowSeconds`, w, 'must be greater than or equal to zero'))
    else if (w > maxStabilization) out.push(invalid(`${path}.stabilizationWindowSeconds`, w, `must be less than or equal to ${maxStabilization}`))
  }
  if (r.selectPolicy != null && !['Max', 'Min', 'Disabled'].includes(r.selectPolicy)) out.push(notSupported(`${path}.selectPolicy`, r.selectPolicy, ['Disabled', 'Max', 'Min']))
  const policies = items(r.policies)
  if (policies.length === 0) out.push(required(`${path}.policies`, 'must specify at least one Policy'))
  policies.forEach((p, i) => {
    const pp = `${path}.policies[${i}]`
    if (!isRecord(p)) return
    if (!['Pods', 'Percent'].includes(p.type)) out.push(notSupported(`${pp}.type`, p.type, ['Percent', 'Pods']))
    if (!(p.periodSeconds > 0)) out.push(invalid(`${pp}.periodSeconds`, p.periodSeconds ?? 0, 'must be greater than zero'))
    else if (p.periodSeconds > maxPeriod) out.push(invalid(`${pp}.periodSeconds`, p.periodSeconds, `must be less than or equal to ${maxPeriod}`))
    if (!(p.value > 0)) out.push(invalid(`${pp}.value`, p.value ?? 0, 'must be greater than zero'))
  })
  return out
}

export function validateHorizontalPodAutoscaler(obj: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = [...validateRef(spec.scaleTargetRef, 'spec.scaleTargetRef')]
  const min = spec.minReplicas
  const max = spec.maxReplicas
  if (min != null && !(Number.isInteger(min) && min >= 1)) out.push(invalid('spec.minReplicas', min, 'must be greater than or equal to 1'))
  if (!(Number.isInteger(max) && max >= 1)) out.push(invalid('spec.maxReplicas', max ?? 0, 'must be greater than 0'))
  else if (Number.isInteger(min) && max < min) out.push(invalid('spec.maxReplicas', max, 'must be greater than or equal to `minReplicas`'))
  items(spec.metrics).forEach((m, i) => out.push(...validateMetric(m, `spec.metrics[${i}]`)))
  if (isRecord(spec.behavior)) {
    out.push(...validateRules(spec.behavior.scaleUp, 'spec.behavior.scaleUp'))
    out.push(...validateRules(spec.behavior.scaleDown, 'spec.behavior.scaleDown'))
  }
  return out
}
