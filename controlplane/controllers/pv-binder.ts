// The persistent volume binder's decisions, pure (kube-controller-manager's
// pkg/controller/volume/persistentvolume, in small): which volume a claim
// binds to, the next write that moves a claim or a volume towards its
// desired phase, and the volume the local provisioner makes for a claim.
// Each plan returns one step; the controller writes it and the informer
// event that follows plans the next, so every step is idempotent and a 409
// only means "plan again from a fresher cache".

import type { KubeObject } from '../api/types.ts'
import { selectorMatches } from '../api/validation/meta.ts'
import {
  claimClass, claimRequest, localProvisioner, noProvisioner, pickDefaultClass, storageAnnotations as ann, storageFinalizers, volumeCapacity, volumeClass,
} from '../api/storage.ts'
import { termMatches } from '../scheduler/plugins/node-affinity.ts'

export type Step =
  | { type: 'none'; event?: { type: 'Normal' | 'Warning'; reason: string; message: string } }
  | { type: 'updateVolume' | 'updateVolumeStatus' | 'createVolume' | 'deleteVolume'; volume: KubeObject; event?: { type: 'Normal' | 'Warning'; reason: string; message: string } }
  | { type: 'updateClaim' | 'updateClaimStatus'; claim: KubeObject; event?: { type: 'Normal' | 'Warning'; reason: string; message: string } }

const none: Step = { type: 'none' }
const clone = <T>(o: T): T => structuredClone(o)

/** Is the claim's class WaitForFirstConsumer (binding waits for a pod's node)? */
export function isDelayedBinding(pvc: KubeObject, classes: ReadonlyMap<string, KubeObject>): boolean {
  const sc = classes.get(claimClass(pvc)) as any
  return sc?.volumeBindingMode === 'WaitForFirstConsumer'
}

/** Does the volume's nodeAffinity admit the node (no affinity admits all)? */
export function volumeFitsNode(pv: KubeObject, node: KubeObject | undefined): boolean {
  const req = pv.spec?.nodeAffinity?.required
  if (!req) return true
  if (!node) return false
  const terms = Array.isArray(req.nodeSelectorTerms) ? req.nodeSelectorTerms : []
  return terms.some((t: any) => termMatches(t, node))
}

function modesSatisfied(want: unknown, have: unknown): boolean {
  const w = Array.isArray(want) ? want : []
  const h = Array.isArray(have) ? have : []
  return w.every((m) => h.includes(m))
}

/** Is `pv` claimed by `pvc` (a claimRef naming it, with its uid or none yet)? */
export function isPreBoundTo(pv: KubeObject, pvc: KubeObject): boolean {
  const ref = pv.spec?.claimRef
  if (!ref?.name) return false
  return ref.name === pvc.metadata.name && (ref.namespace ?? '') === pvc.metadata.namespace && (!ref.uid || ref.uid === pvc.metadata.uid)
}

/**
 * The volume a claim binds to (findBestMatchForClaim): one pre-bound to it
 * wins; else the smallest Available volume of the same class, volume mode
 * and access modes (a superset), with capacity >= the request, matching the
 * claim's selector and (delayed binding) reachable from the selected node.
 * Volumes being deleted or claimed by another claim are never chosen.
 */
export function findMatchingVolume(pvc: KubeObject, volumes: readonly KubeObject[], selectedNode?: KubeObject | null): KubeObject | undefined {
  const want = claimRequest(pvc)
  const cls = claimClass(pvc)
  const mode = pvc.spec?.volumeMode ?? 'Filesystem'
  let best: KubeObject | undefined
  for (const pv of volumes) {
    if (pv.metadata.deletionTimestamp) continue
    const ref = pv.spec?.claimRef
    const pre = isPreBoundTo(pv, pvc)
    if (ref?.name && !pre) continue
    if (!pre && pv.status?.phase && pv.status.phase !== 'Available' && pv.status.phase !== 'Pending') continue
    if (volumeClass(pv) !== cls) continue
    if ((pv.spec?.volumeMode ?? 'Filesystem') !== mode) continue
    if (!modesSatisfied(pvc.spec?.accessModes, pv.spec?.accessModes)) continue
    if (volumeCapacity(pv) < want) continue
    if (pvc.spec?.selector && !selectorMatches(pvc.spec.selector, pv.metadata.labels)) continue
    if (selectedNode !== undefined && !volumeFitsNode(pv, selectedNode ?? undefined)) continue
    if (pre) return pv
    if (!best || volumeCapacity(pv) < volumeCapacity(best)) best = pv
  }
  return best
}

export interface ClaimInput {
  claim: KubeObject
  volumes: readonly KubeObject[]
  /** The claim's volume by spec.volumeName, when it exists. */
  volume?: KubeObject
  classes: ReadonlyMap<string, KubeObject>
  nodes: ReadonlyMap<string, KubeObject>
  now: Date
}

function stamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z')
}

function claimRefOf(pvc: KubeObject): Record<string, unknown> {
  return { kind: 'PersistentVolumeClaim', namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid, apiVersion: 'v1', resourceVersion: pvc.metadata.resourceVersion }
}

/** Set the volume's claimRef to the claim (the first write of a binding). */
function bindVolumeStep(pv: KubeObject, pvc: KubeObject): Step {
  const next = clone(pv)
  next.spec.claimRef = claimRefOf(pvc)
  if (!isPreBoundTo(pv, pvc)) (next.metadata.annotations ??= {})[ann.boundByController] = 'yes'
  return { type: 'updateVolume', volume: next }
}

function claimStatusStep(pvc: KubeObject, status: Record<string, unknown>): Step {
  const cur = pvc.status ?? {}
  const same = Object.entries(status).every(([k, v]) => JSON.stringify(cur[k]) === JSON.stringify(v)) && Object.keys(cur).every((k) => k in status || k === 'conditions')
  if (same) return none
  return { type: 'updateClaimStatus', claim: { ...clone(pvc), status: { ...(cur.conditions ? { conditions: cur.conditions } : {}), ...status } } }
}

/** The next step for a claim (syncClaim). */
export function planClaim(input: ClaimInput): Step {
  const { claim: pvc } = input
  if (!pvc.spec?.volumeName) return planUnboundClaim(input)
  const pv = input.volume
  if (!pv) {
    // The volume is gone: a bound claim is Lost; one the user pre-bound waits for it.
    if (pvc.metadata.annotations?.[ann.bindCompleted]) {
      return { ...claimStatusStep(pvc, { phase: 'Lost' }), event: { type: 'Warning', reason: 'ClaimLost', message: 'Bound claim has lost its PersistentVolume. Data on the volume is lost!' } }
    }
    return claimStatusStep(pvc, { phase: 'Pending' })
  }
  const ref = pv.spec?.claimRef
  if (!ref?.name || (isPreBoundTo(pv, pvc) && !ref.uid)) {
    // The user named the volume in the claim: bind the volume to the claim if it fits.
    if (!ref?.name && pv.status?.phase && !['Available', 'Pending'].includes(pv.status.phase)) return claimStatusStep(pvc, { phase: 'Pending' })
    if (findMatchingVolume({ ...pvc, spec: { ...pvc.spec, selector: undefined } }, [pv]) !== pv) {
      return { ...claimStatusStep(pvc, { phase: 'Pending' }), event: { type: 'Warning', reason: 'FailedBinding', message: `volume "${pv.metadata.name}" does not match the claim` } }
    }
    return bindVolumeStep(pv, pvc)
  }
  if (ref.uid !== pvc.metadata.uid) {
    return { ...claimStatusStep(pvc, { phase: 'Lost' }), event: { type: 'Warning', reason: 'ClaimMisbound', message: 'Two claims are bound to the same volume, this one is bound incorrectly' } }
  }
  if (pv.status?.phase !== 'Bound') return volumeStatusStep(pv, 'Bound', input.now)
  if (pvc.metadata.annotations?.[ann.bindCompleted] !== 'yes') {
    const next = clone(pvc)
    const a = (next.metadata.annotations ??= {})
    a[ann.bindCompleted] = 'yes'
    return { type: 'updateClaim', claim: next }
  }
  if (claimRequest(pvc) > volumeCapacity(pv) && pv.metadata.annotations?.[ann.provisionedBy] === localProvisioner) {
    // Expansion (the apiserver let the request grow: the class allows it). A local volume is a directory: only the record grows.
    const next = clone(pv)
    next.spec.capacity = { ...(next.spec.capacity ?? {}), storage: pvc.spec.resources.requests.storage }
    return { type: 'updateVolume', volume: next, event: { type: 'Normal', reason: 'VolumeResizeSuccessful', message: `volume ${pv.metadata.name} now has ${pvc.spec.resources.requests.storage}` } }
  }
  return claimStatusStep(pvc, { phase: 'Bound', accessModes: pv.spec?.accessModes ?? [], capacity: { ...(pv.spec?.capacity ?? {}) } })
}

function planUnboundClaim(input: ClaimInput): Step {
  const { claim: pvc, classes, nodes } = input
  const pending = claimStatusStep(pvc, { phase: 'Pending' })
  if (pending.type !== 'none') return pending
  if (pvc.metadata.deletionTimestamp) return none
  // Retroactive default class (Kubernetes 1.28+): a claim created with no class at all gets the default one once there is one.
  const def = pvc.spec?.storageClassName == null && !pvc.metadata.annotations?.['volume.beta.kubernetes.io/storage-class'] ? pickDefaultClass([...classes.values()]) : undefined
  if (def) {
    const next = clone(pvc)
    next.spec.storageClassName = def.metadata.name
    return { type: 'updateClaim', claim: next }
  }
  // A volume already points at this claim (a binding in progress, or the user pre-bound the volume).
  const pre = input.volumes.find((pv) => isPreBoundTo(pv, pvc) && !pv.metadata.deletionTimestamp)
  const delayed = isDelayedBinding(pvc, classes)
  const selected = pvc.metadata.annotations?.[ann.selectedNode]
  if (pre && pre.spec?.claimRef?.uid === pvc.metadata.uid) return setVolumeName(pvc, pre)
  if (delayed && !selected) {
    return { type: 'none', event: { type: 'Normal', reason: 'WaitForFirstConsumer', message: 'waiting for first consumer to be created before binding' } }
  }
  const node = delayed ? (nodes.get(selected!) ?? null) : undefined
  const match = findMatchingVolume(pvc, input.volumes, node)
  if (match) return bindVolumeStep(match, pvc)
  const cls = claimClass(pvc)
  if (!cls) return { type: 'none', event: { type: 'Normal', reason: 'FailedBinding', message: 'no persistent volumes available for this claim and no storage class is set' } }
  const sc = classes.get(cls) as any
  if (!sc) return { type: 'none', event: { type: 'Warning', reason: 'ProvisioningFailed', message: `storageclass.storage.k8s.io "${cls}" not found` } }
  if (sc.provisioner === noProvisioner) return { type: 'none', event: { type: 'Normal', reason: 'FailedBinding', message: 'no persistent volumes available for this claim and no storage class is set' } }
  if (sc.provisioner !== localProvisioner) {
    return { type: 'none', event: { type: 'Normal', reason: 'ExternalProvisioning', message: `Waiting for a volume to be created either by the external provisioner '${sc.provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.` } }
  }
  const plan = planLocalVolume(pvc, sc, node ?? undefined, input.now)
  if ('wait' in plan) return { type: 'none', event: { type: 'Warning', reason: 'ProvisioningFailed', message: plan.wait } }
  return { type: 'createVolume', volume: plan.volume, event: { type: 'Normal', reason: 'ProvisioningSucceeded', message: `Successfully provisioned volume ${plan.volume.metadata.name}` } }
}

function setVolumeName(pvc: KubeObject, pv: KubeObject): Step {
  const next = clone(pvc)
  next.spec.volumeName = pv.metadata.name
  const a = (next.metadata.annotations ??= {})
  a[ann.bindCompleted] = 'yes'
  if (pv.metadata.annotations?.[ann.boundByController] === 'yes') a[ann.boundByController] = 'yes'
  return { type: 'updateClaim', claim: next }
}

/**
 * The volume the local provisioner makes for a claim on a node: named
 * `pvc-<claim uid>` (as external provisioners name them), a directory of
 * that name in the node's `skiff.dev/local-volume-dir`, pinned to the node,
 * bound to the claim from birth (claimRef with its uid), with the class's
 * reclaim policy and Skiff's data finalizer (the agent removes the data).
 */
export function planLocalVolume(pvc: KubeObject, sc: any, node: KubeObject | undefined, now: Date): { volume: KubeObject } | { wait: string } {
  if (!node) return { wait: `the ${localProvisioner} provisioner needs a node: use volumeBindingMode WaitForFirstConsumer and a pod that uses the claim` }
  const root = node.metadata.annotations?.['skiff.dev/local-volume-dir']
  if (!root) return { wait: `node "${node.metadata.name}" has not published skiff.dev/local-volume-dir yet (is its agent running?)` }
  if (pvc.spec?.volumeMode === 'Block') return { wait: `the ${localProvisioner} provisioner provides Filesystem volumes only` }
  const name = `pvc-${pvc.metadata.uid}`
  const volume: KubeObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      annotations: { [ann.provisionedBy]: localProvisioner, [ann.boundByController]: 'yes' },
      finalizers: [storageFinalizers.pv, storageFinalizers.localData],
    },
    spec: {
      capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '0' },
      accessModes: [...(pvc.spec?.accessModes ?? [])],
      persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
      storageClassName: sc.metadata.name,
      volumeMode: 'Filesystem',
      local: { path: `${root.replace(/\/+$/, '')}/${name}` },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node.metadata.name] }] }] } },
      claimRef: claimRefOf(pvc),
      ...(sc.mountOptions ? { mountOptions: sc.mountOptions } : {}),
    },
    status: { phase: 'Pending', lastPhaseTransitionTime: stamp(now) },
  }
  return { volume }
}

function volumeStatusStep(pv: KubeObject, phase: string, now: Date, extra: { reason?: string; message?: string } = {}): Step {
  const cur = pv.status ?? {}
  if (cur.phase === phase && (cur.message ?? '') === (extra.message ?? '') && (cur.reason ?? '') === (extra.reason ?? '')) return none
  const status: Record<string, unknown> = { phase, lastPhaseTransitionTime: cur.phase === phase ? cur.lastPhaseTransitionTime : stamp(now) }
  if (extra.reason) status.reason = extra.reason
  if (extra.message) status.message = extra.message
  return { type: 'updateVolumeStatus', volume: { ...clone(pv), status } }
}

export interface VolumeInput {
  volume: KubeObject
  /** The claim named by claimRef, as found (undefined: it does not exist). */
  claim?: KubeObject
  now: Date
}

/**
 * The next step for a volume (syncVolume): Available without a claim (or
 * with one reserved by the user), Bound to its claim, Released when the
 * claim is gone; then the reclaim policy: Retain keeps it Released, Delete
 * deletes it (volumes of the local provisioner; the agent removes the data
 * first through the finalizer), others Failed as Kubernetes without a
 * deleter or recycler plugin.
 */
export function planVolume(input: VolumeInput): Step {
  const { volume: pv, claim, now } = input
  const ref = pv.spec?.claimRef
  if (pv.metadata.deletionTimestamp) return planVolumeDeletion(pv)
  if (!ref?.name || (!ref.uid && (!claim || !claim.spec?.volumeName))) return volumeStatusStep(pv, 'Available', now)
  if (claim && (!ref.uid || claim.metadata.uid === ref.uid)) {
    if (!claim.spec?.volumeName || claim.spec.volumeName === pv.metadata.name) return volumeStatusStep(pv, 'Bound', now)
    // The claim went to another volume: a controller-made binding is undone.
    if (pv.metadata.annotations?.[ann.boundByController] === 'yes') {
      const next = clone(pv)
      delete next.spec.claimRef
      delete next.metadata.annotations![ann.boundByController]
      return { type: 'updateVolume', volume: next }
    }
    return none
  }
  // The claim is gone (or is another object of that name).
  if (pv.status?.phase !== 'Released' && pv.status?.phase !== 'Failed') return volumeStatusStep(pv, 'Released', now)
  switch (pv.spec?.persistentVolumeReclaimPolicy) {
    case 'Retain':
      return none
    case 'Delete':
      if (pv.metadata.annotations?.[ann.provisionedBy] === localProvisioner) {
        return { type: 'deleteVolume', volume: pv, event: { type: 'Normal', reason: 'VolumeDelete', message: `deleting volume ${pv.metadata.name} (reclaim policy Delete)` } }
      }
      if (pv.metadata.annotations?.[ann.provisionedBy]) return none // an external provisioner's volume: it deletes it
      return { ...volumeStatusStep(pv, 'Failed', now, { reason: 'VolumeFailedDelete', message: 'error getting deleter volume plugin for volume "' + pv.metadata.name + '": no deletable volume plugin matched' }) }
    case 'Recycle':
      return volumeStatusStep(pv, 'Failed', now, { reason: 'VolumeFailedRecycle', message: 'No recycler plugin found for the volume!' })
    default:
      return none
  }
}

/** pv-protection: a volume being deleted keeps its finalizer while it is Bound. */
function planVolumeDeletion(pv: KubeObject): Step {
  const fins: string[] = pv.metadata.finalizers ?? []
  if (!fins.includes(storageFinalizers.pv) || pv.status?.phase === 'Bound') return none
  const next = clone(pv)
  next.metadata.finalizers = fins.filter((f) => f !== storageFinalizers.pv)
  return { type: 'updateVolume', volume: next }
}

/** Does a pod that is not finished use the claim (pvc-protection)? */
export function podUsesClaim(pod: KubeObject, pvc: KubeObject): boolean {
  if (pod.metadata.namespace !== pvc.metadata.namespace) return false
  const phase = pod.status?.phase
  if (phase === 'Succeeded' || phase === 'Failed') return false
  return (pod.spec?.volumes ?? []).some((v: any) => v?.persistentVolumeClaim?.claimName === pvc.metadata.name)
}

/** pvc-protection: a claim being deleted loses its finalizer once no pod uses it. */
export function planClaimDeletion(pvc: KubeObject, pods: readonly KubeObject[]): Step {
  const fins: string[] = pvc.metadata.finalizers ?? []
  if (!pvc.metadata.deletionTimestamp || !fins.includes(storageFinalizers.pvc)) return none
  if (pods.some((p) => podUsesClaim(p, pvc))) return none
  const next = clone(pvc)
  next.metadata.finalizers = fins.filter((f) => f !== storageFinalizers.pvc)
  return { type: 'updateClaim', claim: next }
}
