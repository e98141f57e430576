// Storage kinds (printPersistentVolume, printPersistentVolumeClaim,
// printStorageClass in Kubernetes' pkg/printers/internalversion).

import type { KubeObject } from '../types.ts'
import { isDefaultClass, volumeClass, claimClass } from '../storage.ts'
import { age } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

const modeShort: Array<[string, string]> = [['ReadWriteOnce', 'RWO'], ['ReadOnlyMany', 'ROX'], ['ReadWriteMany', 'RWX'], ['ReadWriteOncePod', 'RWOP']]

/** GetAccessModesAsString: the short forms in a fixed order, each once. */
export function accessModesString(modes: unknown): string {
  const list = Array.isArray(modes) ? modes : []
  return modeShort.filter(([m]) => list.includes(m)).map(([, s]) => s).join(',')
}

const capacityOf = (v: unknown) => (v === undefined || v === null ? '' : String(v))

export const persistentVolumePrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Capacity', 'The storage capacity of the persistent volume.'),
    col('Access Modes', 'The access modes that the persistent volume supports.'),
    col('Reclaim Policy', 'The reclaim policy of the persistent volume.'),
    col('Status', 'The current phase of the persistent volume.'),
    col('Claim', 'The claim bound to the persistent volume.'),
    col('StorageClass', 'The storage class of the persistent volume.'),
    col('VolumeAttributesClass', 'The volume attributes class of the persistent volume.'),
    col('Reason', 'The reason the persistent volume is in its phase.'),
    ageCol,
    col('VolumeMode', 'Whether the volume is a filesystem or a raw block device.', { priority: 1 }),
  ],
  cells(pv, now) {
    const ref = pv.spec?.claimRef
    const claim = ref?.name ? `${ref.namespace ?? ''}/${ref.name}` : ''
    const phase = pv.metadata?.deletionTimestamp ? 'Terminating' : (pv.status?.phase ?? '')
    return [
      pv.metadata?.name ?? '', capacityOf(pv.spec?.capacity?.storage), accessModesString(pv.spec?.accessModes), pv.spec?.persistentVolumeReclaimPolicy ?? '',
      phase, claim, volumeClass(pv), pv.spec?.volumeAttributesClassName || '<unset>', pv.status?.reason ?? '', age(pv, now), pv.spec?.volumeMode ?? '<unset>',
    ]
  },
}

export const persistentVolumeClaimPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Status', 'The current phase of the claim.'),
    col('Volume', 'The volume bound to the claim.'),
    col('Capacity', 'The capacity of the bound volume.'),
    col('Access Modes', 'The access modes of the bound volume.'),
    col('StorageClass', 'The storage class of the claim.'),
    col('VolumeAttributesClass', 'The volume attributes class of the claim.'),
    ageCol,
    col('VolumeMode', 'Whether the volume is a filesystem or a raw block device.', { priority: 1 }),
  ],
  cells(pvc: KubeObject, now) {
    const phase = pvc.metadata?.deletionTimestamp ? 'Terminating' : (pvc.status?.phase ?? '')
    const bound = !!pvc.spec?.volumeName
    return [
      pvc.metadata?.name ?? '', phase, pvc.spec?.volumeName ?? '', bound ? capacityOf(pvc.status?.capacity?.storage) : '',
      bound ? accessModesString(pvc.status?.accessModes) : '', claimClass(pvc), pvc.status?.currentVolumeAttributesClassName || '<unset>', age(pvc, now), pvc.spec?.volumeMode ?? '<unset>',
    ]
  },
}

export const storageClassPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Provisioner', 'Indicates the type of the provisioner.'),
    col('ReclaimPolicy', 'Indicates the type of the reclaim policy.'),
    col('VolumeBindingMode', 'Indicates when volume binding and dynamic provisioning should occur.'),
    col('AllowVolumeExpansion', 'Indicates whether the storage class allow volume expand.'),
    ageCol,
  ],
  cells(sc: any, now) {
    const name = (sc.metadata?.name ?? '') + (isDefaultClass(sc) ? ' (default)' : '')
    return [name, sc.provisioner ?? '', sc.reclaimPolicy ?? 'Delete', sc.volumeBindingMode ?? 'Immediate', sc.allowVolumeExpansion === true, age(sc, now)]
  },
}
