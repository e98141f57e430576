// The scheduler's own view of nodes and the pods bound to them, fed by the
// informers and by the scheduler itself: a pod is "assumed" onto its node
// the moment a cycle picks the node, before the bind reaches the apiserver,
// so the next cycle already counts it (a burst of pods does not all land on
// the node that looked emptiest). The informer later shows the pod bound,
// which confirms the assumption; a failed bind forgets it.
//
// Every method is an idempotent upsert or removal, so replaying an
// informer's list (or seeing an event twice) does no harm.

import { keyFor } from '../client/informer.ts'
import type { KubeObject } from '../api/types.ts'
import type { NodeInfo } from './framework.ts'
import { MutableNodeInfo } from './nodeinfo.ts'
import { isTerminal } from './resources.ts'

export class SchedulerCache {
  #infos = new Map<string, MutableNodeInfo>()
  /** pod key -> node name, for every pod counted on some node. */
  #podNode = new Map<string, string>()
  #assumed = new Set<string>()
  #sorted?: MutableNodeInfo[]

  #info(name: string): MutableNodeInfo {
    let info = this.#infos.get(name)
    if (!info) {
      info = new MutableNodeInfo(name)
      this.#infos.set(name, info)
    }
    return info
  }

  /** Drop a NodeInfo that has neither a Node nor pods left. */
  #gc(info: MutableNodeInfo): void {
    if (!info.hasNode && info.pods.size === 0) this.#infos.delete(info.name)
  }

  upsertNode(node: KubeObject): void {
    const info = this.#info(node.metadata.name!)
    if (!info.hasNode) this.#sorted = undefined
    info.setNode(node)
  }

  /** Pods of a deleted node stay counted until they are deleted too (their node may come back). */
  removeNode(name: string): void {
    const info = this.#infos.get(name)
    if (!info) return
    info.setNode(undefined)
    this.#sorted = undefined
    this.#gc(info)
  }

  /**
   * A pod as the informer shows it. Bound, non-terminal pods are counted on
   * their node (confirming an assumption); terminal ones are dropped; an
   * unbound pod is dropped unless the scheduler has assumed it.
   */
  upsertPod(pod: KubeObject): void {
    const key = keyFor(pod)
    const nodeName = pod.spec?.nodeName as string | undefined
    if (isTerminal(pod) || (!nodeName && !this.#assumed.has(key))) return this.removePod(key)
    if (!nodeName) return
    this.#assumed.delete(key)
    this.#place(key, pod, nodeName)
  }

  removePod(key: string): void {
    const node = this.#podNode.get(key)
    this.#assumed.delete(key)
    if (node === undefined) return
    this.#podNode.delete(key)
    const info = this.#infos.get(node)
    if (!info) return
    info.removePod(key)
    this.#gc(info)
  }

  /** Count `pod` on `nodeName` now; the bind follows. */
  assume(pod: KubeObject, nodeName: string): void {
    const key = keyFor(pod)
    // A shallow copy with nodeName set: cached informer objects are never mutated.
    this.#place(key, { ...pod, spec: { ...pod.spec, nodeName } }, nodeName)
    this.#assumed.add(key)
  }

  /** Undo assume() after a failed bind. True when there was something to undo. */
  forget(key: string): boolean {
    if (!this.#assumed.has(key)) return false
    this.removePod(key)
    return true
  }

  isAssumed(key: string): boolean {
    return this.#assumed.has(key)
  }

  /** The nodes that exist, sorted by name (so cycles are deterministic). */
  nodeInfos(): readonly NodeInfo[] {
    this.#sorted ??= [...this.#infos.values()].filter((i) => i.hasNode).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return this.#sorted
  }

  nodeInfo(name: string): NodeInfo | undefined {
    const info = this.#infos.get(name)
    return info?.hasNode ? info : undefined
  }

  get assumedCount(): number {
    return this.#assumed.size
  }

  #place(key: string, pod: KubeObject, nodeName: string): void {
    const prev = this.#podNode.get(key)
    if (prev !== undefined && prev !== nodeName) {
      const old = this.#infos.get(prev)
      old?.removePod(key)
      if (old) this.#gc(old)
    }
    this.#podNode.set(key, nodeName)
    this.#info(nodeName).addPod(key, pod)
  }
}
