// Which pods the scheduler takes, and which informer events may let a
// parked (unschedulable) pod fit now. Pure predicates, table-tested.

import type { KubeObject } from '../api/types.ts'
import { isTerminal } from './resources.ts'

export const defaultSchedulerName = 'default-scheduler'

/**
 * A pod this scheduler should place: its schedulerName is ours (unset means
 * default-scheduler), it is not bound, not being deleted, not finished, and
 * has no scheduling gates left.
 */
export function isPendingFor(pod: KubeObject, schedulerName: string): boolean {
  const spec = pod.spec ?? {}
  if ((spec.schedulerName || defaultSchedulerName) !== schedulerName) return false
  if (spec.nodeName || pod.metadata.deletionTimestamp || isTerminal(pod)) return false
  return !(Array.isArray(spec.schedulingGates) && spec.schedulingGates.length > 0)
}

/** The parts of a Node the filters and scores read (heartbeat timestamps excluded). */
function schedulingView(node: KubeObject): string {
  const ready = Array.isArray(node.status?.conditions) ? node.status.conditions.find((c: any) => c?.type === 'Ready')?.status : undefined
  return JSON.stringify([node.metadata.labels ?? {}, node.spec?.taints ?? [], !!node.spec?.unschedulable, node.status?.allocatable ?? node.status?.capacity ?? {}, ready])
}

/** A node update that may let a parked pod fit (labels, taints, cordon, allocatable, readiness). */
export function nodeSchedulingChanged(old: KubeObject, node: KubeObject): boolean {
  return schedulingView(old) !== schedulingView(node)
}

/** A pending pod's spec changed (e.g. a toleration added or a gate removed): try it again. */
export function podSpecChanged(old: KubeObject, pod: KubeObject): boolean {
  const [a, b] = [old.metadata.generation, pod.metadata.generation]
  if (a !== undefined || b !== undefined) return a !== b
  return JSON.stringify(old.spec) !== JSON.stringify(pod.spec)
}
