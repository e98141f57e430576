// core/v1 storage kinds: PersistentVolume and PersistentVolumeClaim (the
// claim's spec, PersistentVolumeClaimSpec, is in core-pod.ts because pod
// ephemeral volumes embed it). Field numbers follow
// k8s.io/api/core/v1/generated.proto. Of PersistentVolumeSource only the
// sources a Skiff node can use or that manifests commonly carry are known
// (hostPath, local, nfs, csi); another source is an unknown field.

import { atomic, byType, conditionStatus, req } from './common.ts'
import { listOf, object, type } from './dsl.ts'

const meta = (what: string) => [1, 'meta.ObjectMeta', `Standard object metadata of the ${what}.`] as const
const accessModes = [3, '[]string', 'ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod.', atomic] as const

export const storageCoreTypes = {
  PersistentVolume: object('A piece of storage in the cluster, provisioned by an administrator or a provisioner.', {
    metadata: meta('volume'),
    spec: [2, 'PersistentVolumeSpec', 'What the volume is and who may use it.'],
    status: [3, 'PersistentVolumeStatus', 'Observed state of the volume.'],
  }),
  PersistentVolumeList: listOf('PersistentVolume'),
  PersistentVolumeSpec: type('What a persistent volume is and who may use it.', {
    capacity: [1, 'map[Quantity]', 'Size of the volume (storage).'],
    persistentVolumeSource: [2, 'PersistentVolumeSource', 'Where the volume is; set one source.', { inline: true }],
    accessModes,
    claimRef: [4, '*ObjectReference', 'The claim bound to the volume (or reserved for it).'],
    persistentVolumeReclaimPolicy: [5, 'string', 'Retain, Delete or Recycle: what happens when the claim is released.', { enum: ['Delete', 'Recycle', 'Retain'] }],
    storageClassName: [6, 'string', 'StorageClass the volume belongs to; empty for none.'],
    mountOptions: [7, '[]string', 'Mount options.', atomic],
    volumeMode: [8, '*string', 'Filesystem or Block.', { enum: ['Block', 'Filesystem'] }],
    nodeAffinity: [9, '*VolumeNodeAffinity', 'Nodes the volume can be reached from.'],
    volumeAttributesClassName: [10, '*string', 'VolumeAttributesClass.'],
  }),
  PersistentVolumeSource: type('The source of a persistent volume; exactly one field is set.', {
    hostPath: [3, '*HostPathVolumeSource', 'A directory of one host (single-node testing).'],
    nfs: [5, '*NFSVolumeSource', 'An NFS export.'],
    local: [20, '*LocalVolumeSource', 'A directory or disk of one node; needs nodeAffinity.'],
    csi: [22, '*CSIPersistentVolumeSource', 'A volume of a CSI driver.'],
  }),
  LocalVolumeSource: type('A local directory or disk.', {
    path: [1, 'string', 'Full path on the node.', req],
    fsType: [2, '*string', 'Filesystem type of a block device.'],
  }),
  CSIPersistentVolumeSource: type('A volume of a CSI driver.', {
    driver: [1, 'string', 'Driver name.', req],
    volumeHandle: [2, 'string', 'The volume ID the driver gave.', req],
    readOnly: [3, 'bool', 'Mount read-only.'],
    fsType: [4, 'string', 'Filesystem type.'],
    volumeAttributes: [5, 'map[string]', 'Driver attributes.'],
    controllerPublishSecretRef: [6, '*SecretReference', 'Secret for ControllerPublish.'],
    nodeStageSecretRef: [7, '*SecretReference', 'Secret for NodeStage.'],
    nodePublishSecretRef: [8, '*SecretReference', 'Secret for NodePublish.'],
    controllerExpandSecretRef: [9, '*SecretReference', 'Secret for ControllerExpand.'],
    nodeExpandSecretRef: [10, '*SecretReference', 'Secret for NodeExpand.'],
  }),
  VolumeNodeAffinity: type('Nodes a volume can be reached from.', {
    required: [1, '*NodeSelector', 'The nodes; the volume is usable only there.'],
  }),
  PersistentVolumeStatus: type('Observed state of a persistent volume.', {
    phase: [1, 'string', 'Pending, Available, Bound, Released or Failed.', { enum: ['Available', 'Bound', 'Failed', 'Pending', 'Released'] }],
    message: [2, 'string', 'Why the volume is in this phase.'],
    reason: [3, 'string', 'Short CamelCase reason.'],
    lastPhaseTransitionTime: [4, '*Time', 'When the phase last changed.'],
  }),
  PersistentVolumeClaim: object('A request for storage by a user.', {
    metadata: meta('claim'),
    spec: [2, 'PersistentVolumeClaimSpec', 'What storage the claim asks for.'],
    status: [3, 'PersistentVolumeClaimStatus', 'Observed state of the claim.'],
  }),
  PersistentVolumeClaimList: listOf('PersistentVolumeClaim'),
  PersistentVolumeClaimStatus: type('Observed state of a claim.', {
    phase: [1, 'string', 'Pending, Bound or Lost.', { enum: ['Bound', 'Lost', 'Pending'] }],
    accessModes: [2, '[]string', 'Access modes of the bound volume.', atomic],
    capacity: [3, 'map[Quantity]', 'Capacity of the bound volume.'],
    conditions: [4, '[]PersistentVolumeClaimCondition', 'Current conditions (Resizing, ...).', byType],
    allocatedResources: [5, 'map[Quantity]', 'Resources allocated to the claim.'],
    allocatedResourceStatuses: [7, 'map[string]', 'Resize status per resource.', { mapType: 'granular' }],
    currentVolumeAttributesClassName: [8, '*string', 'VolumeAttributesClass in effect.'],
    modifyVolumeStatus: [9, '*ModifyVolumeStatus', 'Status of a volume modification.'],
  }),
  PersistentVolumeClaimCondition: type('One condition of a claim.', {
    type: [1, 'string', 'Condition type.', req],
    status: [2, 'string', 'True, False or Unknown.', { required: true, enum: conditionStatus }],
    lastProbeTime: [3, 'Time', 'Last check.'],
    lastTransitionTime: [4, 'Time', 'Last status change.'],
    reason: [5, 'string', 'CamelCase reason.'],
    message: [6, 'string', 'Details.'],
  }),
  ModifyVolumeStatus: type('Status of a volume modification.', {
    targetVolumeAttributesClassName: [1, 'string', 'VolumeAttributesClass being applied.'],
    status: [2, 'string', 'Pending, InProgress or Infeasible.', req],
  }),
  TopologySelectorTerm: type('Topology labels, ANDed.', {
    matchLabelExpressions: [1, '[]TopologySelectorLabelRequirement', 'Label requirements.', atomic],
  }, { structType: 'atomic' }),
  TopologySelectorLabelRequirement: type('A topology label and its allowed values.', {
    key: [1, 'string', 'Label key.', req],
    values: [2, '[]string', 'Allowed values.', { required: true, listType: 'atomic' }],
  }),
} as const
