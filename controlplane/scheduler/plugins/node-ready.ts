// NodeReady: the node's Ready condition is True and it is not cordoned
// (spec.unschedulable). Kubernetes expresses both as taints
// (node.kubernetes.io/not-ready, node.kubernetes.io/unschedulable); a pod
// that tolerates those taints with effect NoSchedule passes here too.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo, Status } from '../framework.ts'
import { success, unschedulable } from '../status.ts'
import { podTolerations, tolerates } from './tolerations.ts'

const name = 'NodeReady'

export const reasonNotReady = 'node(s) were not ready'
export const reasonUnschedulable = 'node(s) were unschedulable'

const notReadyTaint = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }
const unschedulableTaint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }

// Node objects are replaced, never mutated, on update: the answer per object never changes.
const readiness = new WeakMap<KubeObject, boolean>()

export function isNodeReady(node: KubeObject): boolean {
  let ready = readiness.get(node)
  if (ready === undefined) {
    const conds = node.status?.conditions
    ready = Array.isArray(conds) && conds.some((c) => c?.type === 'Ready' && c.status === 'True')
    readiness.set(node, ready)
  }
  return ready
}

interface PodTolerance {
  notReady: boolean
  cordoned: boolean
}

function preFilter(state: CycleState, pod: KubeObject): undefined {
  const tolerations = podTolerations(pod)
  state.set(name, { notReady: tolerates(tolerations, notReadyTaint), cordoned: tolerates(tolerations, unschedulableTaint) } satisfies PodTolerance)
  return undefined
}

function filter(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): Status {
  const node = nodeInfo.node
  const tolerance = state.get(name) as PodTolerance
  if (!tolerance.notReady && !isNodeReady(node)) return unschedulable(reasonNotReady)
  if (!tolerance.cordoned && node.spec?.unschedulable === true) return unschedulable(reasonUnschedulable)
  return success
}

export const nodeReady = { name, preFilter, filter } satisfies FilterPlugin
