// What Kubernetes' storage admission plugins do at create, in one place:
//  - DefaultStorageClass: a claim without spec.storageClassName gets the
//    default class's name (none when no class is the default);
//  - StorageObjectInUseProtection: claims get kubernetes.io/pvc-protection,
//    volumes kubernetes.io/pv-protection;
//  - status reset to Pending (the strategies' PrepareForCreate);
//  - PersistentVolumeClaimResize (on update): a larger request only when
//    the claim's class says allowVolumeExpansion: true;
//  - Skiff's hostPath rule with the nodes' own reserved paths (their state
//    directories and container engine sockets, published by each agent in
//    `skiff.dev/reserved-host-paths`): a pod hostPath volume, or a
//    hostPath/local volume, that is, contains or lies under one is a 422 with
//    the field path. A local volume inside a node's
//    `skiff.dev/local-volume-dir` is allowed (the local provisioner's).

import type { ResourceInfo } from '../api/resources.ts'
import type { KubeObject, StatusCause } from '../api/types.ts'
import { ApiError, invalid } from '../api/errors.ts'
import { alwaysReservedHostPaths, claimClass, claimRequest, isUnder, pickDefaultClass, storageFinalizers } from '../api/storage.ts'
import { validateHostPath } from '../api/validation/storage.ts'
import { readSkiffAnnotation } from '../api/validation.ts'
import type { Store } from '../store/types.ts'

/** Pure: the claim as the DefaultStorageClass plugin leaves it. */
export function admitDefaultClass(pvc: KubeObject, classes: readonly KubeObject[]): void {
  const spec = (pvc.spec ??= {})
  if (spec.storageClassName !== undefined && spec.storageClassName !== null) return
  if (pvc.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'] !== undefined) return
  const def = pickDefaultClass(classes)
  if (def) spec.storageClassName = def.metadata.name
}

export function addFinalizer(obj: KubeObject, f: string): void {
  const list = (obj.metadata.finalizers ??= [])
  if (!list.includes(f)) list.push(f)
}

/** Pure: reserved paths and local-volume roots the nodes publish. */
export function nodeHostPaths(nodes: readonly KubeObject[]): { reserved: string[]; localRoots: string[] } {
  const reserved: string[] = [...alwaysReservedHostPaths]
  const localRoots: string[] = []
  for (const n of nodes) {
    reserved.push(...(readSkiffAnnotation(n, 'skiff.dev/reserved-host-paths') ?? []))
    const root = readSkiffAnnotation(n, 'skiff.dev/local-volume-dir')
    if (root) localRoots.push(root)
  }
  return { reserved, localRoots }
}

/** Pure: the causes for a pod's or volume's host paths against the nodes' reserved paths. */
export function hostPathCauses(info: ResourceInfo, obj: KubeObject, paths: { reserved: string[]; localRoots: string[] }): StatusCause[] {
  if (info.resource === 'pods') {
    return (obj.spec?.volumes ?? []).flatMap((v: any, i: number) => (v?.hostPath ? validateHostPath(v.hostPath.path, `spec.volumes[${i}].hostPath.path`, paths.reserved) : []))
  }
  if (info.resource === 'persistentvolumes') {
    if (obj.spec?.hostPath) return validateHostPath(obj.spec.hostPath.path, 'spec.hostPath.path', paths.reserved)
    const local = obj.spec?.local?.path
    if (typeof local === 'string' && !paths.localRoots.some((r) => isUnder(local, r) && local !== r)) return validateHostPath(local, 'spec.local.path', paths.reserved)
  }
  return []
}

export async function admitStorage(store: Store, info: ResourceInfo, obj: KubeObject): Promise<void> {
  // Status is the controller's: a new claim or volume starts Pending, whatever the body says (PrepareForCreate).
  if (info.resource === 'persistentvolumeclaims') obj.status = { phase: 'Pending' }
  if (info.resource === 'persistentvolumes') obj.status = { phase: 'Pending', lastPhaseTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }
  if (info.resource === 'persistentvolumeclaims') {
    admitDefaultClass(obj, (await store.list('storageclasses.storage.k8s.io')).items)
    addFinalizer(obj, storageFinalizers.pvc)
    return
  }
  if (info.resource === 'persistentvolumes') addFinalizer(obj, storageFinalizers.pv)
  if (info.resource !== 'pods' && info.resource !== 'persistentvolumes') return
  const uses = info.resource === 'pods' ? (obj.spec?.volumes ?? []).some((v: any) => v?.hostPath) : !!(obj.spec?.hostPath || obj.spec?.local)
  if (!uses) return
  const causes = hostPathCauses(info, obj, nodeHostPaths((await store.list('nodes')).items))
  if (causes.length) throw invalid(info.kind, obj.metadata?.name ?? '', causes)
}

/** PersistentVolumeClaimResize: may the claim grow from `old` to `obj`? Pure; `sc` is the claim's class. */
export function resizeRefusal(obj: KubeObject, old: KubeObject, sc: KubeObject | undefined): string | undefined {
  if (claimRequest(obj) <= claimRequest(old)) return undefined
  if ((sc as any)?.allowVolumeExpansion === true) return undefined
  return `persistentvolumeclaims "${obj.metadata.name}" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize`
}

export async function admitStorageUpdate(store: Store, info: ResourceInfo, obj: KubeObject, old: KubeObject): Promise<void> {
  if (info.resource !== 'persistentvolumeclaims' || claimRequest(obj) <= claimRequest(old)) return
  const cls = claimClass(old)
  const sc = cls ? await store.get('storageclasses.storage.k8s.io', cls) : undefined
  const refusal = resizeRefusal(obj, old, sc)
  if (refusal) throw new ApiError('Forbidden', refusal)
}
