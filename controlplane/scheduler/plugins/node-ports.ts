// NodePorts: the pod's host ports are free on the node. Two ports clash when
// protocol and port are equal and either address is 0.0.0.0 (all addresses)
// or both addresses are the same.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, HostPort, NodeInfo, Status } from '../framework.ts'
import { podHostPorts } from '../resources.ts'
import { success, unschedulable } from '../status.ts'

const name = 'NodePorts'

export const reasonPortsTaken = "node(s) didn't have free ports for the requested pod ports"

const anyIP = '0.0.0.0'

export function portsConflict(a: HostPort, b: HostPort): boolean {
  return a.port === b.port && a.protocol === b.protocol && (a.hostIP === anyIP || b.hostIP === anyIP || a.hostIP === b.hostIP)
}

function preFilter(state: CycleState, pod: KubeObject): undefined {
  state.set(name, podHostPorts(pod))
  return undefined
}

function filter(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): Status {
  const wanted = state.get(name) as HostPort[]
  if (wanted.length === 0 || nodeInfo.usedPorts.length === 0) return success
  for (const w of wanted) if (nodeInfo.usedPorts.some((u) => portsConflict(w, u))) return unschedulable(reasonPortsTaken)
  return success
}

export const nodePorts = { name, preFilter, filter } satisfies FilterPlugin
