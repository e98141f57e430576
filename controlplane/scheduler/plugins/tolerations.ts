// Taint/toleration matching, shared by TaintToleration and NodeReady (which
// lets pods that tolerate the not-ready and unschedulable taints through,
// as DaemonSet pods do in Kubernetes).

export interface Taint {
  key: string
  value?: string
  effect: string
}

export interface Toleration {
  key?: string
  operator?: string
  value?: string
  effect?: string
}

/**
 * Kubernetes' ToleratesTaint: an empty effect matches every effect, an
 * empty key matches every key (validation allows it only with Exists, so
 * `{operator: Exists}` tolerates everything), Exists ignores the value,
 * Equal (the default) compares it.
 */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false
  if (t.key && t.key !== taint.key) return false
  switch (t.operator || 'Equal') {
    case 'Exists':
      return true
    case 'Equal':
      return (t.value ?? '') === (taint.value ?? '')
    default:
      return false
  }
}

export function podTolerations(pod: { spec?: any }): Toleration[] {
  const list = pod.spec?.tolerations
  return Array.isArray(list) ? list.filter((t) => t && typeof t === 'object') : []
}

export function tolerates(tolerations: readonly Toleration[], taint: Taint): boolean {
  return tolerations.some((t) => toleratesTaint(t, taint))
}
