// VolumeBinding (kube-scheduler's, in small): the pod's PersistentVolumeClaims.
//  - preFilter: every claim must exist and not be being deleted; a claim of
//    an Immediate class must already be bound; claims bound to a volume
//    that does not exist stop the pod too.
//  - filter: a bound claim's volume must be reachable from the node (its
//    nodeAffinity): "node(s) had volume node affinity conflict"; an unbound
//    WaitForFirstConsumer claim needs an Available volume that matches and
//    fits the node, or a class whose provisioner can make one there (the
//    local provisioner needs the node's `skiff.dev/local-volume-dir`):
//    "node(s) didn't find available persistent volumes to bind".
// The claims, volumes and classes come from the scheduler's informers
// through a VolumeLookup in the cycle state (set by runCycle), so the cycle
// stays pure. After the cycle, the scheduler writes the chosen node on the
// unbound claims (volume.kubernetes.io/selected-node; scheduler.ts).

import type { KubeObject } from '../../api/types.ts'
import { claimClass, localProvisioner, noProvisioner } from '../../api/storage.ts'
import { findMatchingVolume, volumeFitsNode } from '../../controllers/pv-binder.ts'
import type { CycleState, FilterPlugin, NodeInfo, Status } from '../framework.ts'
import { success, unschedulable } from '../status.ts'

const name = 'VolumeBinding'
export const volumeLookupKey = 'VolumeBinding/lookup'

/** What the plugin may read of the cluster's storage (the scheduler's informer caches). */
export interface VolumeLookup {
  claim(namespace: string, name: string): KubeObject | undefined
  volume(name: string): KubeObject | undefined
  storageClass(name: string): KubeObject | undefined
  volumes(): readonly KubeObject[]
}

export const reasonNodeConflict = 'node(s) had volume node affinity conflict'
export const reasonBindConflict = "node(s) didn't find available persistent volumes to bind"

interface PodVolumes {
  bound: KubeObject[]
  /** Unbound claims of WaitForFirstConsumer classes. */
  delayed: KubeObject[]
}

/** The pod's claim names, in volume order. */
export function podClaimNames(pod: KubeObject): string[] {
  return (pod.spec?.volumes ?? []).map((v: any) => v?.persistentVolumeClaim?.claimName).filter((n: unknown): n is string => typeof n === 'string' && n !== '')
}

function preFilter(state: CycleState, pod: KubeObject): Status | undefined {
  const lookup = state.get(volumeLookupKey) as VolumeLookup | undefined
  const names = podClaimNames(pod)
  if (!lookup || names.length === 0) return undefined
  const out: PodVolumes = { bound: [], delayed: [] }
  for (const n of names) {
    const claim = lookup.claim(pod.metadata.namespace ?? 'default', n)
    if (!claim) return unschedulable(`persistentvolumeclaim "${n}" not found`)
    if (claim.metadata.deletionTimestamp) return unschedulable(`persistentvolumeclaim "${n}" is being deleted`)
    const vn = claim.spec?.volumeName
    if (vn) {
      const pv = lookup.volume(vn)
      if (!pv) return unschedulable('node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)')
      out.bound.push(pv)
      continue
    }
    const sc = lookup.storageClass(claimClass(claim)) as any
    if (sc?.volumeBindingMode !== 'WaitForFirstConsumer') return unschedulable('pod has unbound immediate PersistentVolumeClaims')
    out.delayed.push(claim)
  }
  state.set(name, out)
  return undefined
}

/** Can an unbound delayed claim get a volume on this node? Pure. */
export function claimFitsNode(claim: KubeObject, node: KubeObject, lookup: VolumeLookup): boolean {
  if (findMatchingVolume(claim, lookup.volumes(), node)) return true
  const sc = lookup.storageClass(claimClass(claim)) as any
  if (!sc || sc.provisioner === noProvisioner) return false
  if (sc.provisioner === localProvisioner && !node.metadata.annotations?.['skiff.dev/local-volume-dir']) return false
  const topo = Array.isArray(sc.allowedTopologies) ? sc.allowedTopologies : []
  if (topo.length === 0) return true
  const labels: Record<string, string> = node.metadata.labels ?? {}
  return topo.some((t: any) => (t?.matchLabelExpressions ?? []).every((r: any) => Array.isArray(r?.values) && r.values.includes(labels[r.key])))
}

function filter(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): Status {
  const v = state.get(name) as PodVolumes | undefined
  if (!v) return success
  for (const pv of v.bound) if (!volumeFitsNode(pv, nodeInfo.node)) return unschedulable(reasonNodeConflict)
  const lookup = state.get(volumeLookupKey) as VolumeLookup
  for (const c of v.delayed) if (!claimFitsNode(c, nodeInfo.node, lookup)) return unschedulable(reasonBindConflict)
  return success
}

/** The unbound delayed claims of the pod whose selected node is not `node` yet (to annotate after the cycle). */
export function claimsToSelect(pod: KubeObject, node: string, lookup: VolumeLookup): KubeObject[] {
  const out: KubeObject[] = []
  for (const n of podClaimNames(pod)) {
    const c = lookup.claim(pod.metadata.namespace ?? 'default', n)
    if (!c || c.spec?.volumeName) continue
    const sc = lookup.storageClass(claimClass(c)) as any
    if (sc?.volumeBindingMode !== 'WaitForFirstConsumer') continue
    if (c.metadata.annotations?.['volume.kubernetes.io/selected-node'] !== node) out.push(c)
  }
  return out
}

export const volumeBinding = { name, preFilter, filter } satisfies FilterPlugin
