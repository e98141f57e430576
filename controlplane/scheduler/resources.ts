// What a pod asks for and what a node offers, as plain numbers: cpu in
// millicores, memory and storage in bytes, other resources in their base
// unit. Pure functions over the JSON objects; table-tested.

import { parseQuantity } from '../api/validation/quantity.ts'
import type { KubeObject, OwnerReference } from '../api/types.ts'
import type { HostPort, Resources } from './framework.ts'

/** kube-scheduler's defaults for a container without requests, used only for scoring. */
export const defaultMilliCPURequest = 100
export const defaultMemoryRequest = 200 * 1024 * 1024

export function emptyResources(): Resources {
  return { milliCPU: 0, memory: 0, scalar: {} }
}

/** A quantity in the unit the scheduler counts `name` in; unparseable or missing is 0. */
export function quantityValue(name: string, q: unknown): number {
  const v = parseQuantity(q)
  if (v === undefined || !(v > 0)) return 0
  // Rounding, not ceil: '100m' parses to 0.1 and 0.1 * 1000 is 100.00000000000001.
  return name === 'cpu' ? Math.round(v * 1000) : Math.round(v)
}

/** A ResourceList (`{cpu: '500m', memory: '1Gi'}`) as Resources. `pods` is not a resource here. */
export function toResources(list: unknown): Resources {
  const r = emptyResources()
  if (!list || typeof list !== 'object') return r
  for (const [name, q] of Object.entries(list as Record<string, unknown>)) {
    if (name === 'pods') continue
    const v = quantityValue(name, q)
    if (name === 'cpu') r.milliCPU = v
    else if (name === 'memory') r.memory = v
    else if (v > 0) r.scalar[name] = v
  }
  return r
}

export function addResources(into: Resources, r: Resources, sign = 1): void {
  into.milliCPU += sign * r.milliCPU
  into.memory += sign * r.memory
  for (const [k, v] of Object.entries(r.scalar)) {
    const next = (into.scalar[k] ?? 0) + sign * v
    if (next === 0) delete into.scalar[k]
    else into.scalar[k] = next
  }
}

function maxResources(a: Resources, b: Resources): Resources {
  const out: Resources = { milliCPU: Math.max(a.milliCPU, b.milliCPU), memory: Math.max(a.memory, b.memory), scalar: { ...a.scalar } }
  for (const [k, v] of Object.entries(b.scalar)) out.scalar[k] = Math.max(out.scalar[k] ?? 0, v)
  return out
}

const list = (v: unknown): any[] => (Array.isArray(v) ? v : [])

/**
 * What the pod needs on a node while it runs (kube's computePodResourceRequest):
 * the sum over app containers and sidecars (init containers with
 * restartPolicy Always), or the largest ordinary init container if that is
 * more, plus spec.overhead.
 */
export function podRequests(pod: KubeObject): Resources {
  const spec = pod.spec ?? {}
  const sum = emptyResources()
  let initMax = emptyResources()
  for (const c of list(spec.containers)) addResources(sum, toResources(c?.resources?.requests))
  for (const c of list(spec.initContainers)) {
    const r = toResources(c?.resources?.requests)
    if (c?.restartPolicy === 'Always') addResources(sum, r)
    else initMax = maxResources(initMax, r)
  }
  const out = maxResources(sum, initMax)
  addResources(out, toResources(spec.overhead))
  return out
}

/** cpu and memory for scoring: containers without a request count the defaults above. */
export function podNonZeroRequests(pod: KubeObject): Resources {
  const out = emptyResources()
  const spec = pod.spec ?? {}
  const containers = [...list(spec.containers), ...list(spec.initContainers).filter((c) => c?.restartPolicy === 'Always')]
  for (const c of containers) {
    const r = toResources(c?.resources?.requests)
    out.milliCPU += r.milliCPU || defaultMilliCPURequest
    out.memory += r.memory || defaultMemoryRequest
  }
  const overhead = toResources(spec.overhead)
  out.milliCPU += overhead.milliCPU
  out.memory += overhead.memory
  return out
}

/** status.allocatable, or status.capacity when a node reports no allocatable. */
export function nodeAllocatable(node: KubeObject): { resources: Resources; pods: number } {
  const src = node.status?.allocatable ?? node.status?.capacity ?? {}
  const pods = parseQuantity(src.pods)
  return { resources: toResources(src), pods: pods === undefined ? 0 : Math.floor(pods) }
}

/** The host ports the pod's containers (and init containers) ask for. */
export function podHostPorts(pod: KubeObject): HostPort[] {
  const out: HostPort[] = []
  const spec = pod.spec ?? {}
  for (const c of [...list(spec.containers), ...list(spec.initContainers)]) {
    for (const p of list(c?.ports)) {
      const port = Number(p?.hostPort)
      if (!Number.isInteger(port) || port <= 0) continue
      out.push({ hostIP: p.hostIP || '0.0.0.0', protocol: p.protocol || 'TCP', port })
    }
  }
  return out
}

/** The uid of the pod's controller (the ownerReference with controller: true). */
export function controllerUid(pod: KubeObject): string | undefined {
  const refs = pod.metadata.ownerReferences as OwnerReference[] | undefined
  return Array.isArray(refs) ? refs.find((r) => r?.controller === true)?.uid : undefined
}

/** Succeeded and Failed pods hold no resources on their node. */
export function isTerminal(pod: KubeObject): boolean {
  const phase = pod.status?.phase
  return phase === 'Succeeded' || phase === 'Failed'
}
