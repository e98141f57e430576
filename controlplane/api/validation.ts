// The entry point of object validation. The apiserver calls
// validate(info, applyDefaults(info, obj), old) after filling the namespace
// from the path and the name from generateName, and answers 422 with the
// returned causes (errors.ts `invalid`). The per-kind rules live in
// validation/, one file per family, each a port of Kubernetes' own checks
// with the same field paths and messages.

import type { ResourceInfo } from './resources.ts'
import type { KubeObject, StatusCause } from './types.ts'
import { validateDaemonSet, validateDeployment, validateReplicaSet } from './validation/apps.ts'
import { validateCronJob, validateJob } from './validation/batch.ts'
import { validateControllerRevision, validateStatefulSet } from './validation/statefulset.ts'
import {
  validateConfigMap, validateEndpointSlice, validateEndpoints, validateEvent, validateLease, validateNamespace, validateNode, validateSecret, validateServiceAccount,
} from './validation/core.ts'
import { validateIngress, validateIngressClass } from './validation/ingress.ts'
import { validateNetworkPolicy } from './validation/networkpolicy.ts'
import { printableCause } from './validation/field.ts'
import { validateFinalizersUpdate, validateObjectMeta } from './validation/meta.ts'
import type { NameRule } from './validation/meta.ts'
import { isDNS1035Label, isDNS1123Label, isDNS1123Subdomain } from './validation/names.ts'
import { validatePodSpec, validatePodUpdate } from './validation/pod.ts'
import { validateService } from './validation/service.ts'
import { validatePodDisruptionBudget } from './validation/policy.ts'
import { isValidPathSegmentName, validateClusterRole, validateClusterRoleBinding, validateRole, validateRoleBinding } from './validation/rbac.ts'
import type { ServiceValidationOptions } from './validation/service.ts'
import { validateSkiffAnnotations } from './validation/skiff.ts'
import { validatePersistentVolume, validatePersistentVolumeClaim, validateStorageClass } from './validation/storage.ts'
import { validateHorizontalPodAutoscaler } from './validation/autoscaling.ts'
import { validateGateway, validateGatewayClass, validateHTTPRoute, validateReferenceGrant } from './validation/gateway.ts'

export { validateSkiffAnnotations, readSkiffAnnotation, skiffAnnotations } from './validation/skiff.ts'
export type { SkiffAnnotation, SkiffAnnotationKey, SkiffAnnotationValue } from './validation/skiff.ts'
export { parseQuantity } from './validation/quantity.ts'
export { selectorMatches } from './validation/meta.ts'

export interface ValidationOptions extends ServiceValidationOptions {}

type KindValidator = (obj: KubeObject, old: KubeObject | undefined, opts: ValidationOptions) => StatusCause[]

const kindValidators: Record<string, KindValidator> = {
  Pod: (obj, old) => [...validatePodSpec(obj.spec, 'spec'), ...(old ? validatePodUpdate(obj.spec, old.spec) : [])],
  Deployment: validateDeployment,
  ReplicaSet: validateReplicaSet,
  DaemonSet: validateDaemonSet,
  StatefulSet: validateStatefulSet,
  ControllerRevision: validateControllerRevision,
  Service: validateService,
  Ingress: validateIngress,
  IngressClass: validateIngressClass,
  NetworkPolicy: validateNetworkPolicy,
  ConfigMap: validateConfigMap,
  Secret: validateSecret,
  Namespace: validateNamespace,
  Node: validateNode,
  Lease: validateLease,
  EndpointSlice: validateEndpointSlice,
  Endpoints: validateEndpoints,
  Event: validateEvent,
  ServiceAccount: validateServiceAccount,
  Role: validateRole,
  ClusterRole: validateClusterRole,
  RoleBinding: validateRoleBinding,
  ClusterRoleBinding: validateClusterRoleBinding,
  PodDisruptionBudget: validatePodDisruptionBudget,
  Job: validateJob,
  CronJob: validateCronJob,
  PersistentVolume: validatePersistentVolume,
  PersistentVolumeClaim: validatePersistentVolumeClaim,
  StorageClass: validateStorageClass,
  HorizontalPodAutoscaler: validateHorizontalPodAutoscaler,
  GatewayClass: validateGatewayClass,
  Gateway: validateGateway,
  HTTPRoute: validateHTTPRoute,
  ReferenceGrant: validateReferenceGrant,
}

/** Name syntax per kind: Namespaces are DNS labels, Services DNS-1035 labels (so they can be DNS names), the rest DNS subdomains. */
const nameRules: Record<string, NameRule> = {
  Namespace: isDNS1123Label,
  Service: isDNS1035Label,
  Role: isValidPathSegmentName,
  ClusterRole: isValidPathSegmentName,
  RoleBinding: isValidPathSegmentName,
  ClusterRoleBinding: isValidPathSegmentName,
}

/** Every reason `obj` may not be stored; empty when it is valid. `old` is the stored object on update. */
export function validate(info: ResourceInfo, obj: KubeObject, old?: KubeObject, opts: ValidationOptions = {}): StatusCause[] {
  const meta = [
    ...validateObjectMeta(obj.metadata, { namespaced: info.namespaced, nameRule: nameRules[info.kind] ?? isDNS1123Subdomain }),
    ...validateFinalizersUpdate(obj.metadata?.finalizers, old?.metadata, 'metadata.finalizers'),
  ]
  const kind = kindValidators[info.kind]?.(obj, old, opts) ?? []
  return [...meta, ...kind, ...validateSkiffAnnotations(obj, info.kind)].map(printableCause)
}
