// PodDisruptionBudgets (pkg/apis/policy/validation): at most one of
// minAvailable and maxUnavailable, each a non-negative integer or a
// percentage up to 100%, a valid selector, a known unhealthyPodEvictionPolicy,
// and a status whose counts are not negative.

import { intOrPercent, notMoreThan100Percent } from './apps.ts'
import { invalid, isRecord, nonNegative, notSupported, raw, required } from './field.ts'
import type { Causes } from './field.ts'
import { validateLabelSelector } from './meta.ts'
import type { KubeObject } from '../types.ts'

export const unhealthyPodEvictionPolicies = ['AlwaysAllow', 'IfHealthyBudget'] as const

const isSet = (v: unknown) => v !== undefined && v !== null

export function validatePodDisruptionBudgetSpec(spec: unknown, path = 'spec'): Causes {
  if (!isRecord(spec)) return [required(path)]
  const out: Causes = []
  if (isSet(spec.minAvailable) && isSet(spec.maxUnavailable)) {
    out.push(invalid(path, raw(`{minAvailable: ${spec.minAvailable}, maxUnavailable: ${spec.maxUnavailable}}`), 'minAvailable and maxUnavailable cannot be both set'))
  }
  for (const f of ['minAvailable', 'maxUnavailable'] as const) {
    if (!isSet(spec[f])) continue
    out.push(...intOrPercent(spec[f], `${path}.${f}`), ...notMoreThan100Percent(spec[f], `${path}.${f}`))
  }
  if (isSet(spec.selector)) out.push(...validateLabelSelector(spec.selector, `${path}.selector`))
  const policy = spec.unhealthyPodEvictionPolicy
  if (isSet(policy) && !(unhealthyPodEvictionPolicies as readonly unknown[]).includes(policy)) out.push(notSupported(`${path}.unhealthyPodEvictionPolicy`, policy, unhealthyPodEvictionPolicies))
  return out
}

function validateStatus(status: unknown): Causes {
  if (!isRecord(status)) return []
  return (['disruptionsAllowed', 'currentHealthy', 'desiredHealthy', 'expectedPods'] as const).flatMap((f) => nonNegative(`status.${f}`, status[f]))
}

export function validatePodDisruptionBudget(obj: KubeObject): Causes {
  return [...validatePodDisruptionBudgetSpec(obj.spec), ...validateStatus(obj.status)]
}
