// Server-side printing: the Table `kubectl get` renders, with the columns of
// Kubernetes' pkg/printers/internalversion for each kind Skiff serves. The
// per-kind printers live in printers/; kinds without one print Name and Age.

import type { ResourceInfo } from './resources.ts'
import { groupVersion } from './resources.ts'
import type { KubeObject } from './types.ts'
import { configMapPrinter, eventPrinter, leasePrinter, namespacePrinter, nodePrinter, secretPrinter, serviceAccountPrinter } from './printers/cluster.ts'
import { age } from './printers/format.ts'
import { cronJobPrinter, jobPrinter } from './printers/batch.ts'
import { endpointSlicePrinter, endpointsPrinter, ingressClassPrinter, ingressPrinter, servicePrinter } from './printers/network.ts'
import { ageCol, nameCol } from './printers/types.ts'
import { roleBindingPrinter, rolePrinter } from './printers/rbac.ts'
import { podDisruptionBudgetPrinter } from './printers/policy.ts'
import { networkPolicyPrinter } from './printers/networkpolicy.ts'
import { persistentVolumeClaimPrinter, persistentVolumePrinter, storageClassPrinter } from './printers/storage.ts'
import type { KindPrinter, PrintContext, Table, TableRow } from './printers/types.ts'
import { daemonSetPrinter, deploymentPrinter, podPrinter, replicaSetPrinter } from './printers/workloads.ts'
import { controllerRevisionPrinter, statefulSetPrinter } from './printers/statefulset.ts'
import { hpaPrinter } from './printers/autoscaling.ts'
import { gatewayClassPrinter, gatewayPrinter, httpRoutePrinter } from './printers/gateway.ts'

export { humanDuration } from './printers/format.ts'
export type { KindPrinter, Table, TableColumnDefinition, TableRow, TableRowCondition } from './printers/types.ts'

export type IncludeObject = 'None' | 'Metadata' | 'Object'

export interface PrintOptions {
  includeObject: IncludeObject
  /** The clock ages are measured against (a parameter so output is testable). */
  now: Date
  /** Where `kubectl get -w` starts watching from. */
  resourceVersion: string
  context?: PrintContext
}

const printers: Record<string, KindPrinter> = {
  Pod: podPrinter,
  Deployment: deploymentPrinter,
  ReplicaSet: replicaSetPrinter,
  DaemonSet: daemonSetPrinter,
  StatefulSet: statefulSetPrinter,
  ControllerRevision: controllerRevisionPrinter,
  Service: servicePrinter,
  Endpoints: endpointsPrinter,
  EndpointSlice: endpointSlicePrinter,
  Ingress: ingressPrinter,
  IngressClass: ingressClassPrinter,
  NetworkPolicy: networkPolicyPrinter,
  Node: nodePrinter,
  Namespace: namespacePrinter,
  ConfigMap: configMapPrinter,
  Secret: secretPrinter,
  ServiceAccount: serviceAccountPrinter,
  Event: eventPrinter,
  Lease: leasePrinter,
  Role: rolePrinter,
  ClusterRole: rolePrinter,
  RoleBinding: roleBindingPrinter,
  ClusterRoleBinding: roleBindingPrinter,
  PodDisruptionBudget: podDisruptionBudgetPrinter,
  Job: jobPrinter,
  CronJob: cronJobPrinter,
  PersistentVolume: persistentVolumePrinter,
  PersistentVolumeClaim: persistentVolumeClaimPrinter,
  StorageClass: storageClassPrinter,
  HorizontalPodAutoscaler: hpaPrinter,
  GatewayClass: gatewayClassPrinter,
  Gateway: gatewayPrinter,
  HTTPRoute: httpRoutePrinter,
}

const fallbackPrinter: KindPrinter = {
  columns: [nameCol, ageCol],
  cells: (obj, now) => [obj.metadata?.name ?? '', age(obj, now)],
}

export function printerFor(kind: string): KindPrinter {
  return printers[kind] ?? fallbackPrinter
}

/** kubectl reads NAMESPACE, LABELS and `-L` columns from row.object.metadata, so Metadata is the default. */
function rowObject(info: ResourceInfo, obj: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined
  if (include === 'Metadata') return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata }
  return { apiVersion: groupVersion(info), kind: info.kind, ...obj }
}

export function printTable(info: ResourceInfo, objs: readonly KubeObject[], opts: PrintOptions): Table {
  const printer = printerFor(info.kind)
  const rows = objs.map((obj): TableRow => {
    const row: TableRow = { cells: printer.cells(obj, opts.now, opts.context) }
    const conditions = printer.conditions?.(obj)
    if (conditions) row.conditions = conditions
    const object = rowObject(info, obj, opts.includeObject)
    if (object !== undefined) row.object = object
    return row
  })
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: opts.resourceVersion },
    columnDefinitions: printer.columns,
    rows,
  }
}
