// `kubectl get hpa` columns, as Kubernetes prints them: NAME REFERENCE
// TARGETS MINPODS MAXPODS REPLICAS AGE, targets like `cpu: 45%/50%`.

import type { KubeObject } from '../types.ts'
import { age, arr, rec } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

type Obj = Record<string, any>

const pct = (v: unknown) => (typeof v === 'number' ? `${v}%` : undefined)

function oneTarget(spec: Obj, status: Obj | undefined): string {
  const unknown = '<unknown>'
  switch (spec.type) {
    case 'Resource':
    case 'ContainerResource': {
      const key = spec.type === 'Resource' ? 'resource' : 'containerResource'
      const s = rec(spec[key])
      const cur = status?.[key]?.current
      if (s.target?.averageValue != null) return `${s.name}: ${cur?.averageValue ?? unknown}/${s.target.averageValue}`
      return `${s.name}: ${pct(cur?.averageUtilization) ?? unknown}/${pct(s.target?.averageUtilization) ?? '<auto>'}`
    }
    case 'Pods': {
      const s = rec(spec.pods)
      return `${s.metric?.name}: ${status?.pods?.current?.averageValue ?? unknown}/${s.target?.averageValue}`
    }
    case 'Object': {
      const s = rec(spec.object)
      const cur = status?.object?.current
      if (s.target?.averageValue != null) return `${s.metric?.name}: ${cur?.averageValue ?? unknown}/${s.target.averageValue} (avg)`
      return `${s.metric?.name}: ${cur?.value ?? unknown}/${s.target?.value}`
    }
    case 'External': {
      const s = rec(spec.external)
      const cur = status?.external?.current
      if (s.target?.averageValue != null) return `${s.metric?.name}: ${cur?.averageValue ?? unknown}/${s.target.averageValue} (avg)`
      return `${s.metric?.name}: ${cur?.value ?? unknown}/${s.target?.value}`
    }
    default:
      return '<unknown type>'
  }
}

/** The TARGETS cell: the first two metrics, then "+ N more...". Pure. */
export function formatHPATargets(hpa: KubeObject): string {
  const specs = arr(hpa.spec?.metrics) as Obj[]
  const statuses = arr(hpa.status?.currentMetrics) as Obj[]
  if (!specs.length) return '<none>'
  const list = specs.map((m, i) => oneTarget(m, statuses[i]))
  if (list.length > 2) return `${list.slice(0, 2).join(', ')} + ${list.length - 2} more...`
  return list.join(', ')
}

export const hpaPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Reference', 'Reference to the object whose scale subresource this autoscaler drives.'),
    col('Targets', 'Current and target values of the metrics.'),
    col('MinPods', 'Lower limit for the number of pods.'),
    col('MaxPods', 'Upper limit for the number of pods.', { type: 'integer' }),
    col('Replicas', 'Current number of replicas of the scaled object.', { type: 'integer' }),
    ageCol,
  ],
  cells(hpa, now) {
    const ref = rec(hpa.spec?.scaleTargetRef)
    const min = hpa.spec?.minReplicas
    return [hpa.metadata?.name ?? '', `${ref.kind}/${ref.name}`, formatHPATargets(hpa), min == null ? '<unset>' : String(min), hpa.spec?.maxReplicas ?? 0, hpa.status?.currentReplicas ?? 0, age(hpa, now)]
  },
}
