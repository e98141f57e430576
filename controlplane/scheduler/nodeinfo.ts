// The mutable NodeInfo the cache keeps per node: the Node object and running
// sums over its pods, updated incrementally so a cycle over 1,000 nodes
// reads sums instead of walking every pod. Plugins see it read-only.

import type { KubeObject } from '../api/types.ts'
import type { HostPort, NodeInfo, Resources } from './framework.ts'
import { addResources, controllerUid, emptyResources, nodeAllocatable, podHostPorts, podNonZeroRequests, podRequests } from './resources.ts'

interface PodEntry {
  pod: KubeObject
  requests: Resources
  nonZero: Resources
  ports: HostPort[]
  /** Counted in controllerPods (non-terminating pods with a controller). */
  owner?: string
}

export class MutableNodeInfo implements NodeInfo {
  readonly name: string
  #node?: KubeObject
  readonly pods = new Map<string, KubeObject>()
  #entries = new Map<string, PodEntry>()
  allocatable: Resources = emptyResources()
  allowedPodNumber = 0
  readonly requested: Resources = emptyResources()
  readonly nonZeroRequested: Resources = emptyResources()
  usedPorts: HostPort[] = []
  readonly controllerPods = new Map<string, number>()

  constructor(name: string) {
    this.name = name
  }

  /** The Node object; only NodeInfos with one are handed to plugins. */
  get node(): KubeObject {
    return this.#node!
  }

  get hasNode(): boolean {
    return this.#node !== undefined
  }

  setNode(node: KubeObject | undefined): void {
    this.#node = node
    const a = node ? nodeAllocatable(node) : { resources: emptyResources(), pods: 0 }
    this.allocatable = a.resources
    this.allowedPodNumber = a.pods
  }

  /** Add or replace the pod under `key`. */
  addPod(key: string, pod: KubeObject): void {
    if (this.#entries.has(key)) this.removePod(key)
    const entry: PodEntry = { pod, requests: podRequests(pod), nonZero: podNonZeroRequests(pod), ports: podHostPorts(pod) }
    const owner = controllerUid(pod)
    if (owner && !pod.metadata.deletionTimestamp) {
      entry.owner = owner
      this.controllerPods.set(owner, (this.controllerPods.get(owner) ?? 0) + 1)
    }
    this.#entries.set(key, entry)
    this.pods.set(key, pod)
    addResources(this.requested, entry.requests)
    addResources(this.nonZeroRequested, entry.nonZero)
    if (entry.ports.length) this.usedPorts = [...this.usedPorts, ...entry.ports]
  }

  removePod(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    this.#entries.delete(key)
    this.pods.delete(key)
    addResources(this.requested, entry.requests, -1)
    addResources(this.nonZeroRequested, entry.nonZero, -1)
    if (entry.owner) {
      const n = (this.controllerPods.get(entry.owner) ?? 0) - 1
      if (n > 0) this.controllerPods.set(entry.owner, n)
      else this.controllerPods.delete(entry.owner)
    }
    // Ports are rare: rebuild rather than track which entry of the array is whose.
    if (entry.ports.length) this.usedPorts = [...this.#entries.values()].flatMap((e) => e.ports)
  }
}
