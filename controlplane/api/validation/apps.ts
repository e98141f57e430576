// Deployments, ReplicaSets and DaemonSets (pkg/apis/apps/validation): a
// required selector that matches the template, a pod template that can only
// restart Always, and the rollout strategy.

import { canonical, forbidden, goStringMap, immutableMsg, invalid, invalidEach, isRecord, nonNegative, notSupported, raw, required, text } from './field.ts'
import type { Causes } from './field.ts'
import { goSelector, selectorIsEmpty, selectorMatches, validateLabelSelector } from './meta.ts'
import { isValidPercent } from './names.ts'
import { validatePodTemplate } from './pod.ts'
import type { KubeObject } from '../types.ts'

/** Selector and template rules shared by every workload kind. */
export function validateWorkloadSpec(spec: Record<string, any>, word: string): Causes {
  const out: Causes = []
  const sel = spec.selector
  if (sel === undefined || sel === null) out.push(required('spec.selector'))
  else {
    out.push(...validateLabelSelector(sel, 'spec.selector'))
    if (isRecord(sel) && selectorIsEmpty(sel)) out.push(invalid('spec.selector', goSelector(sel), `empty selector is invalid for ${word}`))
  }
  const template = spec.template
  out.push(...validatePodTemplate(template, 'spec.template'))
  if (!isRecord(template)) return out
  const labels = isRecord(template.metadata) ? template.metadata.labels : undefined
  if (isRecord(sel) && !selectorIsEmpty(sel) && !selectorMatches(sel, labels))
    out.push(invalid('spec.template.metadata.labels', goStringMap(labels), '`selector` does not match template `labels`'))
  const rp = isRecord(template.spec) ? template.spec.restartPolicy : undefined
  if (rp !== undefined && rp !== 'Always') out.push(notSupported('spec.template.spec.restartPolicy', rp, ['Always']))
  if (isRecord(template.spec) && template.spec.activeDeadlineSeconds != null)
    out.push(invalid('spec.template.spec.activeDeadlineSeconds', template.spec.activeDeadlineSeconds, `activeDeadlineSeconds in ${word} is not Supported`))
  out.push(...nonNegative('spec.minReadySeconds', spec.minReadySeconds))
  out.push(...nonNegative('spec.revisionHistoryLimit', spec.revisionHistoryLimit))
  return out
}

/** apps/v1 selectors cannot change: the controller would orphan what it already made. */
function selectorImmutable(obj: KubeObject, old?: KubeObject): Causes {
  if (!old) return []
  const now = obj.spec?.selector
  return canonical(now) === canonical(old.spec?.selector) ? [] : [invalid('spec.selector', goSelector(now), immutableMsg)]
}

export function validateDeployment(obj: KubeObject, old?: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  const out = [...validateWorkloadSpec(spec, 'deployment'), ...nonNegative('spec.replicas', spec.replicas)]
  out.push(...validateDeploymentStrategy(spec.strategy, 'spec.strategy'))
  const pds = spec.progressDeadlineSeconds
  if (pds !== undefined && pds !== null) {
    out.push(...nonNegative('spec.progressDeadlineSeconds', pds))
    if (typeof pds === 'number' && pds <= (spec.minReadySeconds ?? 0))
      out.push(invalid('spec.progressDeadlineSeconds', pds, 'must be greater than minReadySeconds'))
  }
  return [...out, ...selectorImmutable(obj, old)]
}

export function validateReplicaSet(obj: KubeObject, old?: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  return [...validateWorkloadSpec(spec, 'replicaset'), ...nonNegative('spec.replicas', spec.replicas), ...selectorImmutable(obj, old)]
}

export function validateDaemonSet(obj: KubeObject, old?: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  return [...validateWorkloadSpec(spec, 'daemonset'), ...validateDaemonSetStrategy(spec.updateStrategy, 'spec.updateStrategy'), ...selectorImmutable(obj, old)]
}

function validateDeploymentStrategy(s: unknown, path: string): Causes {
  if (s === undefined || s === null) return []
  if (!isRecord(s)) return [invalid(path, s, 'must be an object')]
  if (s.type === 'Recreate')
    return s.rollingUpdate != null ? [forbidden(`${path}.rollingUpdate`, "may not be specified when strategy `type` is 'Recreate'")] : []
  if (s.type !== 'RollingUpdate') return [notSupported(`${path}.type`, s.type ?? '', ['Recreate', 'RollingUpdate'])]
  if (!isRecord(s.rollingUpdate)) return [required(`${path}.rollingUpdate`, 'this should be defaulted and never be nil')]
  const ru = s.rollingUpdate
  const at = `${path}.rollingUpdate`
  const out = [...intOrPercent(ru.maxUnavailable, `${at}.maxUnavailable`), ...intOrPercent(ru.maxSurge, `${at}.maxSurge`)]
  if (isZero(ru.maxUnavailable) && isZero(ru.maxSurge)) out.push(invalid(`${at}.maxUnavailable`, raw(text(ru.maxUnavailable)), 'may not be 0 when `maxSurge` is 0'))
  out.push(...notMoreThan100Percent(ru.maxUnavailable, `${at}.maxUnavailable`))
  return out
}

function validateDaemonSetStrategy(s: unknown, path: string): Causes {
  if (s === undefined || s === null) return []
  if (!isRecord(s)) return [invalid(path, s, 'must be an object')]
  if (s.type === 'OnDelete') return []
  if (s.type !== 'RollingUpdate') return [notSupported(`${path}.type`, s.type ?? '', ['RollingUpdate', 'OnDelete'])]
  if (!isRecord(s.rollingUpdate)) return [required(`${path}.rollingUpdate`)]
  const ru = s.rollingUpdate
  const at = `${path}.rollingUpdate`
  const out = [...intOrPercent(ru.maxUnavailable, `${at}.maxUnavailable`), ...intOrPercent(ru.maxSurge, `${at}.maxSurge`)]
  out.push(...notMoreThan100Percent(ru.maxUnavailable, `${at}.maxUnavailable`), ...notMoreThan100Percent(ru.maxSurge, `${at}.maxSurge`))
  // A DaemonSet has one pod per node: it either surges or takes pods down, never both.
  const hasUnavailable = !isZero(ru.maxUnavailable)
  const hasSurge = !isZero(ru.maxSurge)
  if (hasUnavailable && hasSurge) out.push(invalid(`${at}.maxSurge`, text(ru.maxSurge), 'may not be set when maxUnavailable is non-zero'))
  if (!hasUnavailable && !hasSurge) out.push(required(`${at}.maxUnavailable`, 'cannot be 0 when maxSurge is 0'))
  return out
}

/** IntOrString values print bare, as their Go String() method does. */
export function intOrPercent(v: unknown, path: string): Causes {
  if (v === undefined || v === null) return []
  if (typeof v === 'string') return invalidEach(path, raw(v), isValidPercent(v))
  if (typeof v === 'number' && Number.isInteger(v)) return v < 0 ? [invalid(path, v, 'must be greater than or equal to 0')] : []
  return [invalid(path, v, 'must be an integer or a percentage')]
}

function isZero(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || v === '0%'
}

export function notMoreThan100Percent(v: unknown, path: string): Causes {
  if (typeof v !== 'string' || isValidPercent(v).length) return []
  return Number(v.slice(0, -1)) > 100 ? [invalid(path, raw(v), 'must not be greater than 100%')] : []
}
