// rbac.authorization.k8s.io kinds (printRole, printClusterRole,
// printRoleBinding, printClusterRoleBinding in pkg/printers/internalversion).

import type { KubeObject } from '../types.ts'
import { age, arr, rec } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

const createdAtCol = col(
  'Created At',
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.',
  { type: 'date' },
)

/** Roles print their creation time, not an age (kubectl prints `2026-12-04T13:40:39Z`). */
export const rolePrinter: KindPrinter = {
  columns: [nameCol, createdAtCol],
  cells: (r) => [r.metadata?.name ?? '', r.metadata?.creationTimestamp ?? ''],
}

/** rbac.SubjectsStrings: users, groups, and service accounts as `namespace/name`. */
export function subjectsStrings(b: KubeObject): { users: string[]; groups: string[]; serviceAccounts: string[] } {
  const out = { users: [] as string[], groups: [] as string[], serviceAccounts: [] as string[] }
  for (const s of arr(b.subjects).map(rec)) {
    if (s.kind === 'User') out.users.push(String(s.name ?? ''))
    else if (s.kind === 'Group') out.groups.push(String(s.name ?? ''))
    else if (s.kind === 'ServiceAccount') out.serviceAccounts.push(s.namespace ? `${s.namespace}/${s.name}` : String(s.name ?? ''))
  }
  return out
}

export const roleBindingPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Role', 'RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.'),
    ageCol,
    col('Users', 'Users in the roleBinding', { priority: 1 }),
    col('Groups', 'Groups in the roleBinding', { priority: 1 }),
    col('ServiceAccounts', 'ServiceAccounts in the roleBinding', { priority: 1 }),
  ],
  cells(b, now) {
    const ref = rec(b.roleRef)
    const s = subjectsStrings(b)
    return [b.metadata?.name ?? '', `${ref.kind ?? ''}/${ref.name ?? ''}`, age(b, now), s.users.join(', '), s.groups.join(', '), s.serviceAccounts.join(', ')]
  },
}
