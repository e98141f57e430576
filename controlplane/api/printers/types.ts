// The meta.k8s.io/v1 Table that `kubectl get` asks for, and the contract of a
// per-kind printer. A printer always fills every column, wide ones too:
// kubectl hides the priority-1 columns itself unless `-o wide` is given.

import type { KubeObject } from '../types.ts'

export interface TableColumnDefinition {
  name: string
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date'
  format: string
  description: string
  priority: number
}

export interface TableRowCondition {
  type: string
  status: string
  reason?: string
  message?: string
}

export interface TableRow {
  cells: unknown[]
  conditions?: TableRowCondition[]
  object?: unknown
}

export interface Table {
  kind: 'Table'
  apiVersion: 'meta.k8s.io/v1'
  metadata: { resourceVersion: string; [k: string]: unknown }
  columnDefinitions: TableColumnDefinition[]
  rows: TableRow[]
}

/** What a printer may know beyond the object (the apiserver fills it). */
export interface PrintContext {
  /** "n/n": how many serving nodes route by this Service's or Ingress's latest revision (controlplane/api/routing-applied.ts). */
  applied?: (kind: string, obj: KubeObject, now: Date) => string | undefined
}

export interface KindPrinter {
  columns: TableColumnDefinition[]
  /** One cell per column, in column order. */
  cells(obj: KubeObject, now: Date, ctx?: PrintContext): unknown[]
  /** Row conditions (kubectl uses `Completed` to recognise finished pods). */
  conditions?(obj: KubeObject): TableRowCondition[] | undefined
}

export function col(name: string, description: string, opts: { type?: TableColumnDefinition['type']; format?: string; priority?: number } = {}): TableColumnDefinition {
  return { name, type: opts.type ?? 'string', format: opts.format ?? '', description, priority: opts.priority ?? 0 }
}

export const nameCol = col(
  'Name',
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
  { format: 'name' },
)

export const ageCol = col(
  'Age',
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.',
)

/** Wide-only columns every workload kind shares. */
export const templateCols = [
  col('Containers', 'Names of each container in the template.', { priority: 1 }),
  col('Images', 'Images referenced by each container in the template.', { priority: 1 }),
  col('Selector', 'A label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this resource.', { priority: 1 }),
]
