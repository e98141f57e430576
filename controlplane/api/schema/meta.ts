// k8s.io/apimachinery meta/v1: the metadata every object carries, list
// metadata, selectors, Status and DeleteOptions. Field numbers follow
// apimachinery's generated.proto.

import { definePackage, object, type } from './dsl.ts'

export const meta = definePackage('meta', 'io.k8s.apimachinery.pkg.apis.meta.v1', {
  ObjectMeta: type('Metadata every persisted object carries: identity, labels, annotations, ownership and lifecycle.', {
    name: [1, 'string', 'Name, unique within the namespace (or the cluster for cluster-scoped kinds). Cannot be changed.'],
    generateName: [2, 'string', 'Prefix the server completes into a unique name when name is empty.'],
    namespace: [3, 'string', 'Namespace of the object; empty for cluster-scoped kinds.'],
    selfLink: [4, 'string', 'Deprecated and never set.'],
    uid: [5, 'string', 'Unique id the server assigns on create. Read-only.'],
    resourceVersion: [6, 'string', 'Opaque version of the object, for optimistic concurrency and watches. Read-only.'],
    generation: [7, 'int64', 'Sequence number of the desired state (spec). Read-only.'],
    creationTimestamp: [8, 'Time', 'When the object was created. Read-only.'],
    deletionTimestamp: [9, '*Time', 'When a graceful deletion was requested. Read-only.'],
    deletionGracePeriodSeconds: [10, '*int64', 'Seconds allowed for graceful termination. Read-only.'],
    labels: [11, 'map[string]', 'Key/value pairs used to select and group objects.'],
    annotations: [12, 'map[string]', 'Key/value pairs for tools and extensions; not used for selection.'],
    ownerReferences: [13, '[]OwnerReference', 'Objects this one depends on; garbage collection follows them.', { patchStrategy: 'merge', patchMergeKey: 'uid', listType: 'map', listMapKeys: ['uid'] }],
    finalizers: [14, '[]string', 'Names of parties that must finish before the object is removed.', { patchStrategy: 'merge', listType: 'set' }],
    managedFields: [17, '[]ManagedFieldsEntry', 'Which manager owns which fields (server-side apply).', { listType: 'atomic' }],
  }),
  ListMeta: type('Metadata of a list answer.', {
    selfLink: [1, 'string', 'Deprecated and never set.'],
    resourceVersion: [2, 'string', 'Version of the collection at the time of the list; start a watch here.'],
    continue: [3, 'string', 'Token for the next page when the list was limited.'],
    remainingItemCount: [4, '*int64', 'Items left after this page, when known.'],
  }),
  OwnerReference: type('Points at an object that owns this one.', {
    apiVersion: [5, 'string', 'API version of the owner.', { required: true }],
    kind: [1, 'string', 'Kind of the owner.', { required: true }],
    name: [3, 'string', 'Name of the owner.', { required: true }],
    uid: [4, 'string', 'UID of the owner.', { required: true }],
    controller: [6, '*bool', 'True when the owner is the managing controller.'],
    blockOwnerDeletion: [7, '*bool', 'With foreground deletion, the owner waits until this object is gone.'],
  }, { structType: 'atomic' }),
  LabelSelector: type('Selects objects by labels; the conditions are ANDed. An empty selector matches everything.', {
    matchLabels: [1, 'map[string]', 'Labels that must be present with these values.'],
    matchExpressions: [2, '[]LabelSelectorRequirement', 'Set-based requirements.', { listType: 'atomic' }],
  }, { structType: 'atomic' }),
  LabelSelectorRequirement: type('One set-based condition on a label.', {
    key: [1, 'string', 'Label key.', { required: true, patchStrategy: 'merge', patchMergeKey: 'key' }],
    operator: [2, 'string', 'In, NotIn, Exists or DoesNotExist.', { required: true }],
    values: [3, '[]string', 'Values for In and NotIn; empty for Exists and DoesNotExist.', { listType: 'atomic' }],
  }),
  ManagedFieldsEntry: type('The set of fields one manager owns, for one operation.', {
    manager: [1, 'string', 'Name of the manager (the fieldManager of the request).'],
    operation: [2, 'string', 'Apply or Update.'],
    apiVersion: [3, 'string', 'Version the field set is expressed in.'],
    time: [4, '*Time', 'When this entry last changed.'],
    fieldsType: [6, 'string', 'Format of fieldsV1; always FieldsV1.'],
    fieldsV1: [7, '*FieldsV1', 'The owned fields as a trie of f:/k:/v:/i: keys.'],
    subresource: [8, 'string', 'Subresource the fields were written through, if any.'],
  }),
  Condition: type('A standard condition: one observed aspect of the object state.', {
    type: [1, 'string', 'Condition type, CamelCase.', { required: true }],
    status: [2, 'string', 'True, False or Unknown.', { required: true, enum: ['False', 'True', 'Unknown'] }],
    observedGeneration: [3, 'int64', 'metadata.generation the condition was computed from.'],
    lastTransitionTime: [4, 'Time', 'When status last changed.', { required: true }],
    reason: [5, 'string', 'Machine-readable CamelCase reason for the last transition.', { required: true }],
    message: [6, 'string', 'Human-readable details.', { required: true }],
  }),
  Status: object('Result of an operation that returns no object; errors carry reason, code and details.', {
    metadata: [1, 'ListMeta', 'List metadata (unused).'],
    status: [2, 'string', 'Success or Failure.'],
    message: [3, 'string', 'Human-readable description.'],
    reason: [4, 'string', 'Machine-readable reason (NotFound, AlreadyExists, ...).'],
    details: [5, '*StatusDetails', 'Extra data depending on the reason.'],
    code: [6, 'int32', 'HTTP status code.'],
  }),
  StatusDetails: type('Extra data of a Status.', {
    name: [1, 'string', 'Name of the object the status is about.'],
    group: [2, 'string', 'Group of the object.'],
    kind: [3, 'string', 'Kind (or resource) of the object.'],
    uid: [6, 'string', 'UID of the object.'],
    causes: [4, '[]StatusCause', 'The individual errors, each with a field path.', { listType: 'atomic' }],
    retryAfterSeconds: [5, 'int32', 'Seconds to wait before retrying.'],
  }),
  StatusCause: type('One cause of an error.', {
    reason: [1, 'string', 'Machine-readable cause (FieldValueRequired, ...).'],
    message: [2, 'string', 'Human-readable cause.'],
    field: [3, 'string', 'Field path the cause is about (spec.containers[0].name).'],
  }),
  DeleteOptions: object('Options of a DELETE request.', {
    gracePeriodSeconds: [1, '*int64', 'Seconds before the object is deleted; 0 deletes now.'],
    preconditions: [2, '*Preconditions', 'Delete only if uid/resourceVersion still match.'],
    orphanDependents: [3, '*bool', 'Deprecated: use propagationPolicy.'],
    propagationPolicy: [4, '*string', 'Orphan, Background or Foreground garbage collection of dependents.', { enum: ['Background', 'Foreground', 'Orphan'] }],
    dryRun: [5, '[]string', 'All: validate without persisting.', { listType: 'atomic' }],
    ignoreStoreReadErrorWithClusterBreakingPotential: [6, '*bool', 'Delete an object that cannot be decoded (unsafe).'],
  }),
  Preconditions: type('Conditions a delete checks first.', {
    uid: [1, '*string', 'Required UID.'],
    resourceVersion: [2, '*string', 'Required resourceVersion.'],
  }),
})
