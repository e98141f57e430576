// The scheduling framework: the plugin interfaces, the plugin registry and
// the profiles. A reader who knows this file and cycle.ts knows the shape of
// the scheduler; each plugin is one small file in plugins/.
//
// One scheduling cycle places one pod (cycle.ts):
//
//   PreFilter (once) -> Filter (per node) -> PreScore (once, feasible nodes)
//     -> Score (per feasible node) -> NormalizeScore (once) -> weighted sum
//     -> the highest total wins; ties go to the node whose name sorts first.
//
// A cycle is synchronous and pure: plugins read the pod and NodeInfos and
// never do I/O, so the cache cannot change under a cycle and a table test
// can run any cycle without a cluster.

import type { KubeObject } from '../api/types.ts'
import { nodeAffinity } from './plugins/node-affinity.ts'
import { nodePorts } from './plugins/node-ports.ts'
import { nodeReady } from './plugins/node-ready.ts'
import { nodeResourcesFit } from './plugins/node-resources-fit.ts'
import { nodeSelector } from './plugins/node-selector.ts'
import { leastAllocated } from './plugins/least-allocated.ts'
import { mostAllocated } from './plugins/most-allocated.ts'
import { ownerSpread } from './plugins/owner-spread.ts'
import { taintToleration } from './plugins/taint-toleration.ts'
import { volumeBinding } from './plugins/volume-binding.ts'

// Plugins import runtime helpers from status.ts, never from this file: this
// file imports every plugin, and a cycle would leave the registry half-built.
export { maxNodeScore } from './status.ts'

/**
 * Per-cycle scratch space shared by the plugins of one cycle. A plugin keys
 * its entries by its own name; PreFilter/PreScore write what Filter/Score
 * would otherwise recompute for every node (the pod's requests, its ports).
 * It is thrown away when the cycle ends.
 */
export type CycleState = Map<string, unknown>

/**
 * The outcome of a filter. `Unschedulable` carries one or more reasons in
 * the words users see in the pod's PodScheduled condition; the cycle counts
 * each reason per node ("2 Insufficient cpu"), so a reason must not contain
 * anything node-specific (no node names, no amounts).
 */
export type Status = { code: 'Success' } | { code: 'Unschedulable'; reasons: string[] }

/** Resources as the scheduler counts them: whole milli-CPUs and bytes. */
export interface Resources {
  milliCPU: number
  memory: number
  /** Extended resources (`example.com/gpu`), hugepages and ephemeral-storage, in their base unit. */
  scalar: Record<string, number>
}

export interface HostPort {
  /** '0.0.0.0' when the pod did not name an address (all addresses). */
  hostIP: string
  protocol: string
  port: number
}

/**
 * A node as the scheduler sees it: the Node object plus what the pods bound
 * to it (and pods the scheduler has assumed onto it but the informer has not
 * yet shown bound) already use. Read-only for plugins; the cache owns it.
 */
export interface NodeInfo {
  readonly name: string
  readonly node: KubeObject
  /** Bound and assumed pods that are not terminal (Succeeded/Failed), by `namespace/name`. */
  readonly pods: ReadonlyMap<string, KubeObject>
  /** From status.allocatable (status.capacity when allocatable is missing); missing entries are 0. */
  readonly allocatable: Resources
  readonly allowedPodNumber: number
  /** Sum of the pods' requests; a request that is not set counts 0. */
  readonly requested: Resources
  /**
   * Sum of the pods' requests where an unset cpu request counts 100m and an
   * unset memory request 200Mi (kube-scheduler's non-zero defaults), so that
   * scoring still tells a node with 30 best-effort pods from an empty one.
   */
  readonly nonZeroRequested: Resources
  readonly usedPorts: readonly HostPort[]
  /** How many non-terminating pods of each controller (ownerReference uid) run here. */
  readonly controllerPods: ReadonlyMap<string, number>
}

export interface PreFilterPlugin {
  readonly name: string
  /**
   * Runs once per cycle before any Filter. It may store per-pod data in
   * `state` for its Filter. An Unschedulable status fails the pod on every
   * node with that status (the pod can never fit, e.g. a malformed affinity).
   */
  preFilter?(state: CycleState, pod: KubeObject): Status | undefined
}

/**
 * A FilterPlugin decides whether the pod may run on one node. Contract:
 *  - filter() is called once per node per cycle (after preFilter, if any),
 *    in the profile's plugin order; a node is dropped at the first plugin
 *    that does not return Success, so later plugins do not see it.
 *  - It must be pure and fast: no I/O, no mutation of pod, node or state
 *    entries it did not write in preFilter; it runs for up to every node.
 *  - It returns Unschedulable with reasons in Kubernetes' words when the
 *    pod does not fit, never throws for an odd object (treat bad data as
 *    "does not match").
 */
export interface FilterPlugin extends PreFilterPlugin {
  filter(state: CycleState, pod: KubeObject, nodeInfo: NodeInfo): Status
}

export interface NodeScore {
  name: string
  score: number
}

/**
 * A ScorePlugin ranks the nodes that passed every filter. Contract:
 *  - preScore(), if present, runs once with the feasible nodes.
 *  - score() runs once per feasible node and returns an integer; without
 *    normalizeScore it must be in 0..maxNodeScore.
 *  - normalizeScore(), if present, rewrites every score into 0..maxNodeScore
 *    in place (e.g. "fewest pods of this owner" needs the maximum first).
 *  - The node's total is the sum of score * weight over the profile's
 *    plugins; `weight` is the plugin's default weight in the profiles.
 *  - Pure and fast, like filters.
 */
export interface ScorePlugin {
  readonly name: string
  readonly weight: number
  preScore?(state: CycleState, pod: KubeObject, nodes: readonly NodeInfo[]): void
  score(state: CycleState, pod: KubeObject, nodeInfo: NodeInfo): number
  normalizeScore?(state: CycleState, pod: KubeObject, scores: NodeScore[]): void
}

export interface Profile {
  readonly name: ProfileName
  readonly filters: readonly FilterPlugin[]
  readonly scores: readonly ScorePlugin[]
}

export type ProfileName = 'default' | 'bin-packing'

/** Every plugin, in the order filters run: cheap checks first, like kube-scheduler. */
export const plugins = {
  filters: [nodeReady, taintToleration, nodeSelector, nodeAffinity, nodePorts, nodeResourcesFit, volumeBinding],
  scores: [ownerSpread, leastAllocated, mostAllocated],
} as const

/**
 * `default` spreads the pods of one owner across nodes, then prefers the
 * emptiest node. `bin-packing` fills the fullest node that still fits and
 * does not spread (spreading would undo the packing for replicas).
 */
export const profiles: Readonly<Record<ProfileName, Profile>> = {
  default: { name: 'default', filters: plugins.filters, scores: [ownerSpread, leastAllocated] },
  'bin-packing': { name: 'bin-packing', filters: plugins.filters, scores: [mostAllocated] },
}

export function isProfileName(s: string): s is ProfileName {
  return Object.hasOwn(profiles, s)
}
