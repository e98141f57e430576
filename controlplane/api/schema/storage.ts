// storage.k8s.io/v1 StorageClass. Field numbers follow
// k8s.io/api/storage/v1/generated.proto.

import { atomic, req } from './common.ts'
import { definePackage, listOf, object } from './dsl.ts'

export const storage = definePackage('storage', 'io.k8s.api.storage.v1', {
  StorageClass: object('A class of dynamically provisioned volumes.', {
    metadata: [1, 'meta.ObjectMeta', 'Standard object metadata.'],
    provisioner: [2, 'string', 'Who provisions volumes of the class (skiff.dev/local, kubernetes.io/no-provisioner, a CSI driver).', req],
    parameters: [3, 'map[string]', 'Parameters for the provisioner.'],
    reclaimPolicy: [4, '*string', 'Delete or Retain for provisioned volumes. Defaults to Delete.', { enum: ['Delete', 'Recycle', 'Retain'] }],
    mountOptions: [5, '[]string', 'Mount options of provisioned volumes.', atomic],
    allowVolumeExpansion: [6, '*bool', 'Claims may ask for more storage.'],
    volumeBindingMode: [7, '*string', 'Immediate or WaitForFirstConsumer. Defaults to Immediate.', { enum: ['Immediate', 'WaitForFirstConsumer'] }],
    allowedTopologies: [8, '[]core.TopologySelectorTerm', 'Where volumes may be provisioned.', atomic],
  }),
  StorageClassList: listOf('StorageClass'),
})
