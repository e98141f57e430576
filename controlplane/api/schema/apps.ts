// apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision, and autoscaling/v1 Scale (the
// scale subresource of both). Field numbers follow k8s.io/api generated.proto.

import { byType, conditionStatus, req } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const
const selector = [2, 'meta.LabelSelector', 'Pods this object manages; must match the template labels.', req] as const
const condition = (of: string) => type(`One condition of a ${of}.`, {
  type: [1, 'string', 'Condition type.', req],
  status: [2, 'string', 'True, False or Unknown.', { required: true, enum: conditionStatus }],
  lastTransitionTime: [3, 'Time', 'Last status change.'],
  reason: [4, 'string', 'CamelCase reason.'],
  message: [5, 'string', 'Details.'],
})

export const apps = definePackage('apps', 'io.k8s.api.apps.v1', {
  Deployment: object('Declarative updates of a set of identical pods through ReplicaSets.', {
    metadata: meta,
    spec: [2, 'DeploymentSpec', 'Desired state.'],
    status: [3, 'DeploymentStatus', 'Observed state.'],
  }),
  DeploymentList: listOf('Deployment'),
  DeploymentSpec: type('Desired state of a deployment.', {
    replicas: [1, '*int32', 'Number of pods. Defaults to 1.'],
    selector,
    template: [3, 'core.PodTemplateSpec', 'The pods to run.', req],
    strategy: [4, 'DeploymentStrategy', 'How pods are replaced on a change.', { patchStrategy: 'retainKeys' }],
    minReadySeconds: [5, 'int32', 'Seconds a new pod must be ready before it counts as available.'],
    revisionHistoryLimit: [6, '*int32', 'Old ReplicaSets kept for rollback. Defaults to 10.'],
    paused: [7, 'bool', 'Stop rolling out changes.'],
    progressDeadlineSeconds: [9, '*int32', 'Seconds without progress before the rollout is reported failed. Defaults to 600.'],
    podReplacementPolicy: [10, '*string', 'TerminationStarted or TerminationComplete: when replacement pods are created.'],
  }),
  DeploymentStrategy: type('How a deployment replaces pods.', {
    type: [1, 'string', 'Recreate or RollingUpdate. Defaults to RollingUpdate.', { enum: ['Recreate', 'RollingUpdate'] }],
    rollingUpdate: [2, '*RollingUpdateDeployment', 'Limits of a rolling update.'],
  }),
  RollingUpdateDeployment: type('Limits of a rolling update.', {
    maxUnavailable: [1, '*IntOrString', 'Pods that may be unavailable during the update (number or percent). Defaults to 25%.'],
    maxSurge: [2, '*IntOrString', 'Pods that may exist above replicas during the update (number or percent). Defaults to 25%.'],
  }),
  DeploymentStatus: type('Observed state of a deployment.', {
    observedGeneration: [1, 'int64', 'Generation the controller last acted on.'],
    replicas: [2, 'int32', 'Pods targeted by the deployment.'],
    updatedReplicas: [3, 'int32', 'Pods with the current template.'],
    readyReplicas: [7, 'int32', 'Ready pods.'],
    availableReplicas: [4, 'int32', 'Pods ready for minReadySeconds.'],
    unavailableReplicas: [5, 'int32', 'Pods still needed for full availability.'],
    terminatingReplicas: [9, '*int32', 'Pods being deleted.'],
    conditions: [6, '[]DeploymentCondition', 'Current conditions (Available, Progressing).', byType],
    collisionCount: [8, '*int32', 'Hash collision counter for ReplicaSet names.'],
  }),
  DeploymentCondition: type('One condition of a deployment.', {
    type: [1, 'string', 'Available, Progressing or ReplicaFailure.', req],
    status: [2, 'string', 'True, False or Unknown.', { required: true, enum: conditionStatus }],
    lastUpdateTime: [6, 'Time', 'Last update.'],
    lastTransitionTime: [7, 'Time', 'Last status change.'],
    reason: [4, 'string', 'CamelCase reason.'],
    message: [5, 'string', 'Details.'],
  }),

  ReplicaSet: object('Keeps a number of identical pods running.', {
    metadata: meta,
    spec: [2, 'ReplicaSetSpec', 'Desired state.'],
    status: [3, 'ReplicaSetStatus', 'Observed state.'],
  }),
  ReplicaSetList: listOf('ReplicaSet'),
  ReplicaSetSpec: type('Desired state of a replica set.', {
    replicas: [1, '*int32', 'Number of pods. Defaults to 1.'],
    minReadySeconds: [4, 'int32', 'Seconds a new pod must be ready before it counts as available.'],
    selector,
    template: [3, 'core.PodTemplateSpec', 'The pods to run.'],
  }),
  ReplicaSetStatus: type('Observed state of a replica set.', {
    replicas: [1, 'int32', 'Pods that exist.', req],
    fullyLabeledReplicas: [2, 'int32', 'Pods with all template labels.'],
    readyReplicas: [4, 'int32', 'Ready pods.'],
    availableReplicas: [5, 'int32', 'Pods ready for minReadySeconds.'],
    terminatingReplicas: [7, '*int32', 'Pods being deleted.'],
    observedGeneration: [3, 'int64', 'Generation last acted on.'],
    conditions: [6, '[]ReplicaSetCondition', 'Current conditions.', byType],
  }),
  ReplicaSetCondition: condition('replica set'),

  DaemonSet: object('Runs one pod on every (matching) node.', {
    metadata: meta,
    spec: [2, 'DaemonSetSpec', 'Desired state.'],
    status: [3, 'DaemonSetStatus', 'Observed state.'],
  }),
  DaemonSetList: listOf('DaemonSet'),
  DaemonSetSpec: type('Desired state of a daemon set.', {
    selector: [1, 'meta.LabelSelector', 'Pods this object manages; must match the template labels.', req],
    template: [2, 'core.PodTemplateSpec', 'The pod to run on each node.', req],
    updateStrategy: [3, 'DaemonSetUpdateStrategy', 'How pods are replaced on a change.'],
    minReadySeconds: [4, 'int32', 'Seconds a new pod must be ready before it counts as available.'],
    revisionHistoryLimit: [6, '*int32', 'Old revisions kept for rollback. Defaults to 10.'],
  }),
  DaemonSetUpdateStrategy: type('How a daemon set replaces pods.', {
    type: [1, 'string', 'RollingUpdate or OnDelete. Defaults to RollingUpdate.', { enum: ['OnDelete', 'RollingUpdate'] }],
    rollingUpdate: [2, '*RollingUpdateDaemonSet', 'Limits of a rolling update.'],
  }),
  RollingUpdateDaemonSet: type('Limits of a daemon set rolling update.', {
    maxUnavailable: [1, '*IntOrString', 'Nodes whose pod may be unavailable (number or percent). Defaults to 1.'],
    maxSurge: [2, '*IntOrString', 'Nodes that may run an extra new pod during the update. Defaults to 0.'],
  }),
  DaemonSetStatus: type('Observed state of a daemon set.', {
    currentNumberScheduled: [1, 'int32', 'Nodes running the pod that should.', req],
    numberMisscheduled: [2, 'int32', 'Nodes running the pod that should not.', req],
    desiredNumberScheduled: [3, 'int32', 'Nodes that should run the pod.', req],
    numberReady: [4, 'int32', 'Nodes with a ready pod.', req],
    observedGeneration: [5, 'int64', 'Generation last acted on.'],
    updatedNumberScheduled: [6, 'int32', 'Nodes running the current template.'],
    numberAvailable: [7, 'int32', 'Nodes with an available pod.'],
    numberUnavailable: [8, 'int32', 'Nodes without an available pod.'],
    collisionCount: [9, '*int32', 'Hash collision counter.'],
    conditions: [10, '[]DaemonSetCondition', 'Current conditions.', byType],
  }),
  DaemonSetCondition: condition('daemon set'),

  StatefulSet: object('Pods with stable names, network identities and storage, created and updated in order.', {
    metadata: meta,
    spec: [2, 'StatefulSetSpec', 'Desired state.'],
    status: [3, 'StatefulSetStatus', 'Observed state.'],
  }),
  StatefulSetList: listOf('StatefulSet'),
  StatefulSetSpec: type('Desired state of a stateful set.', {
    replicas: [1, '*int32', 'Number of pods, named <name>-0 .. <name>-(replicas-1). Defaults to 1.'],
    selector,
    template: [3, 'core.PodTemplateSpec', 'The pods to run.', req],
    volumeClaimTemplates: [4, '[]core.PersistentVolumeClaim', 'Claims made for each pod, named <claim>-<pod>.', { listType: 'atomic' }],
    serviceName: [5, 'string', 'The headless Service that gives the pods their DNS names.'],
    podManagementPolicy: [6, 'string', 'OrderedReady or Parallel. Defaults to OrderedReady.', { enum: ['OrderedReady', 'Parallel'] }],
    updateStrategy: [7, 'StatefulSetUpdateStrategy', 'How pods are replaced on a change.'],
    revisionHistoryLimit: [8, '*int32', 'Old revisions kept for rollback. Defaults to 10.'],
    minReadySeconds: [9, 'int32', 'Seconds a new pod must be ready before it counts as available.'],
    persistentVolumeClaimRetentionPolicy: [10, '*StatefulSetPersistentVolumeClaimRetentionPolicy', 'What happens to the claims on scale-down and deletion.'],
    ordinals: [11, '*StatefulSetOrdinals', 'Numbering of the pods.'],
  }),
  StatefulSetUpdateStrategy: type('How a stateful set replaces pods.', {
    type: [1, 'string', 'RollingUpdate or OnDelete. Defaults to RollingUpdate.', { enum: ['OnDelete', 'RollingUpdate'] }],
    rollingUpdate: [2, '*RollingUpdateStatefulSetStrategy', 'Parameters of a rolling update.'],
  }),
  RollingUpdateStatefulSetStrategy: type('Parameters of a stateful set rolling update.', {
    partition: [1, '*int32', 'Only pods with an ordinal at or above this are updated. Defaults to 0.'],
    maxUnavailable: [2, '*IntOrString', 'Pods that may be unavailable during the update. Defaults to 1.'],
  }),
  StatefulSetPersistentVolumeClaimRetentionPolicy: type('What happens to the claims of a stateful set.', {
    whenDeleted: [1, 'string', 'Retain or Delete, when the stateful set is deleted. Defaults to Retain.', { enum: ['Delete', 'Retain'] }],
    whenScaled: [2, 'string', 'Retain or Delete, when a pod is removed by scale-down. Defaults to Retain.', { enum: ['Delete', 'Retain'] }],
  }),
  StatefulSetOrdinals: type('Numbering of the pods of a stateful set.', {
    start: [1, 'int32', 'Index of the first pod. Defaults to 0.'],
  }),
  StatefulSetStatus: type('Observed state of a stateful set.', {
    observedGeneration: [1, 'int64', 'Generation last acted on.'],
    replicas: [2, 'int32', 'Pods created by the controller.', req],
    readyReplicas: [3, 'int32', 'Ready pods.'],
    currentReplicas: [4, 'int32', 'Pods at currentRevision.'],
    updatedReplicas: [5, 'int32', 'Pods at updateRevision.'],
    currentRevision: [6, 'string', 'Revision of the pods [0, currentReplicas).'],
    updateRevision: [7, 'string', 'Revision of the current template.'],
    collisionCount: [9, '*int32', 'Hash collision counter for revision names.'],
    conditions: [10, '[]StatefulSetCondition', 'Current conditions.', byType],
    availableReplicas: [11, 'int32', 'Pods ready for minReadySeconds.'],
  }),
  StatefulSetCondition: condition('stateful set'),

  ControllerRevision: object('An immutable snapshot of a workload template, kept for rollback (StatefulSet and DaemonSet history).', {
    metadata: meta,
    data: [2, 'RawExtension', 'The state: a strategic merge patch that restores the template.'],
    revision: [3, 'int64', 'Revision number of this state.', req],
  }),
  ControllerRevisionList: listOf('ControllerRevision'),
})

export const autoscaling = definePackage('autoscaling', 'io.k8s.api.autoscaling.v1', {
  Scale: object('The scale subresource: desired and current replicas.', {
    metadata: meta,
    spec: [2, 'ScaleSpec', 'Desired replicas.'],
    status: [3, 'ScaleStatus', 'Current replicas.'],
  }),
  ScaleSpec: type('Desired replicas.', {
    replicas: [1, 'int32', 'Desired number of replicas.'],
  }),
  ScaleStatus: type('Current replicas.', {
    replicas: [1, 'int32', 'Current number of replicas.', req],
    selector: [2, 'string', 'Label selector of the pods, as a string.'],
  }),
})
