// Storage rules shared by the apiserver, the PV controller, the scheduler and
// the node agent (one home below all of them): the well-known annotations and
// finalizers, the defaults of PersistentVolume, PersistentVolumeClaim and
// StorageClass (SetDefaults_* in Kubernetes), and small readers of the
// objects (the claim's class and request, the volume's path and node).

import type { KubeObject } from './types.ts'
import { parseQuantity } from './validation/quantity.ts'

export const storageAnnotations = {
  /** StorageClass: the class a claim without storageClassName gets. */
  isDefaultClass: 'storageclass.kubernetes.io/is-default-class',
  /** Claim: the node the scheduler picked for a WaitForFirstConsumer claim (volume binder). */
  selectedNode: 'volume.kubernetes.io/selected-node',
  /** Claim: the provisioner asked to provision it. */
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  /** Claim: binding finished (the PV controller). */
  bindCompleted: 'pv.kubernetes.io/bind-completed',
  /** Claim or volume: the controller (not the user) made the binding. */
  boundByController: 'pv.kubernetes.io/bound-by-controller',
  /** Volume: which provisioner made it. */
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
} as const

export const storageFinalizers = {
  /** Kubernetes' StorageObjectInUseProtection: a claim in use by a pod stays until the pod is gone. */
  pvc: 'kubernetes.io/pvc-protection',
  /** A bound volume stays until it is released. */
  pv: 'kubernetes.io/pv-protection',
  /** Skiff: the local volume's data is removed by the node agent before the volume object goes. */
  localData: 'skiff.dev/local-volume-data',
} as const

/** The built-in local provisioner and its default class. */
export const localProvisioner = 'skiff.dev/local'
export const defaultLocalClassName = 'local-path'
export const noProvisioner = 'kubernetes.io/no-provisioner'

/** The default StorageClass Skiff creates when missing. */
export function defaultLocalStorageClass(): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: defaultLocalClassName, annotations: { [storageAnnotations.isDefaultClass]: 'true' } },
    provisioner: localProvisioner,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  } as KubeObject
}

type Obj = Record<string, any>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const unset = (v: unknown) => v === undefined || v === null || v === ''

export function defaultPersistentVolume(o: KubeObject): void {
  if (!isObj(o.spec)) o.spec = {}
  if (unset(o.spec.persistentVolumeReclaimPolicy)) o.spec.persistentVolumeReclaimPolicy = 'Retain'
  if (unset(o.spec.volumeMode)) o.spec.volumeMode = 'Filesystem'
  if (!isObj(o.status)) o.status = {}
  if (unset(o.status.phase)) o.status.phase = 'Pending'
}

export function defaultPersistentVolumeClaim(o: KubeObject): void {
  if (!isObj(o.spec)) o.spec = {}
  if (unset(o.spec.volumeMode)) o.spec.volumeMode = 'Filesystem'
  if (!isObj(o.status)) o.status = {}
  if (unset(o.status.phase)) o.status.phase = 'Pending'
}

export function defaultStorageClass(o: KubeObject): void {
  const sc = o as Obj
  if (unset(sc.reclaimPolicy)) sc.reclaimPolicy = 'Delete'
  if (unset(sc.volumeBindingMode)) sc.volumeBindingMode = 'Immediate'
}

/** Is this class the default one (the annotation is "true")? */
export function isDefaultClass(sc: KubeObject): boolean {
  return sc.metadata?.annotations?.[storageAnnotations.isDefaultClass] === 'true'
}

/**
 * The class a claim without one gets, as the DefaultStorageClass admission
 * plugin picks it: among the default classes, the newest (then the name that
 * sorts first); undefined when there is none.
 */
export function pickDefaultClass(classes: readonly KubeObject[]): KubeObject | undefined {
  const defaults = classes.filter(isDefaultClass)
  defaults.sort((a, b) => String(b.metadata.creationTimestamp ?? '').localeCompare(String(a.metadata.creationTimestamp ?? '')) || String(a.metadata.name).localeCompare(String(b.metadata.name)))
  return defaults[0]
}

/** The class of a claim ('' for none; storageClassName wins over the beta annotation). */
export function claimClass(pvc: KubeObject): string {
  const v = pvc.spec?.storageClassName
  if (typeof v === 'string') return v
  return pvc.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? ''
}

export function volumeClass(pv: KubeObject): string {
  const v = pv.spec?.storageClassName
  if (typeof v === 'string') return v
  return pv.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? ''
}

/** Bytes the claim asks for (0 when unset). */
export function claimRequest(pvc: KubeObject): number {
  return parseQuantity(pvc.spec?.resources?.requests?.storage) ?? 0
}

export function volumeCapacity(pv: KubeObject): number {
  return parseQuantity(pv.spec?.capacity?.storage) ?? 0
}

/** The host path of a local or hostPath volume, if it is one. */
export function volumePath(pv: KubeObject): string | undefined {
  return pv.spec?.local?.path ?? pv.spec?.hostPath?.path
}

/**
 * The one node a volume is pinned to, when its nodeAffinity is a single
 * `kubernetes.io/hostname In [node]` (or matchFields metadata.name) term, as
 * the local provisioner writes it.
 */
export function pinnedNode(pv: KubeObject): string | undefined {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms
  if (!Array.isArray(terms) || terms.length !== 1) return undefined
  const t = terms[0] ?? {}
  const reqs = [...(t.matchExpressions ?? []).map((r: any) => ({ ...r, field: false })), ...(t.matchFields ?? []).map((r: any) => ({ ...r, field: true }))]
  if (reqs.length !== 1) return undefined
  const r = reqs[0]
  const keyOk = r.field ? r.key === 'metadata.name' : r.key === 'kubernetes.io/hostname'
  return keyOk && r.operator === 'In' && Array.isArray(r.values) && r.values.length === 1 ? String(r.values[0]) : undefined
}

/** Normalise an absolute path lexically (`/a//b/../c/` → `/a/c`). */
export function cleanPath(p: string): string {
  const out: string[] = []
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') out.pop()
    else out.push(seg)
  }
  return '/' + out.join('/')
}

/** Is `p` the same as `root` or under it (both absolute)? */
export function isUnder(p: string, root: string): boolean {
  const a = cleanPath(p)
  const b = cleanPath(root)
  return a === b || b === '/' || a.startsWith(b + '/')
}

/** Paths no hostPath may name on any node: the Docker Engine's sockets. Nodes add their own (state dir, engine socket) in `skiff.dev/reserved-host-paths`. */
export const alwaysReservedHostPaths = ['/var/run/docker.sock', '/run/docker.sock'] as const

/** The reserved path `p` falls on (equal or under), if any. */
export function reservedHostPath(p: string, reserved: readonly string[]): string | undefined {
  return reserved.find((r) => isUnder(p, r))
}
