// The RBAC authorizer (plugin/pkg/auth/authorizer/rbac): a request is
// allowed when a rule of a role bound to the user allows it. Cluster-wide
// requests see ClusterRoleBindings only; namespaced ones also the
// RoleBindings of their namespace (whose roleRef is a Role there or a
// ClusterRole applied there). No rule denies: RBAC is additive, and no
// match is "no opinion" (the chain then denies). Pure over a PolicySource.

import type { KubeObject } from '../../api/types.ts'
import { ruleAllows, rulesOf, subjectMatches, type Attributes, type PolicyRule, type Subject } from './rules.ts'

/** The RBAC objects, as the authorizer reads them (AuthzGraph keeps them from the store). */
export interface PolicySource {
  clusterRoleBindings(): Iterable<KubeObject>
  roleBindings(namespace: string): Iterable<KubeObject>
  clusterRole(name: string): KubeObject | undefined
  role(namespace: string, name: string): KubeObject | undefined
}

export interface User {
  name: string
  groups: string[]
}

/**
 * Calls visit with every rule that applies to the user in `namespace`
 * (undefined: cluster-wide rules only) until it returns true. Returns the
 * roleRefs that could not be resolved, as rbac.go reports them.
 */
export function visitRules(src: PolicySource, user: User, namespace: string | undefined, visit: (rule: PolicyRule) => boolean): { stopped: boolean; errors: string[] } {
  const errors: string[] = []
  const bound = (b: KubeObject, ns?: string) => Array.isArray(b.subjects) && (b.subjects as Subject[]).some((s) => subjectMatches(s, user, ns))
  for (const b of src.clusterRoleBindings()) {
    if (!bound(b)) continue
    const role = src.clusterRole(b.roleRef?.name)
    if (!role) {
      errors.push(`clusterrole.rbac.authorization.k8s.io "${b.roleRef?.name}" not found`)
      continue
    }
    for (const r of rulesOf(role)) if (visit(r)) return { stopped: true, errors }
  }
  if (namespace) {
    for (const b of src.roleBindings(namespace)) {
      if (!bound(b, namespace)) continue
      const ref = b.roleRef ?? {}
      const role = ref.kind === 'ClusterRole' ? src.clusterRole(ref.name) : src.role(namespace, ref.name)
      if (!role) {
        errors.push(`${ref.kind === 'ClusterRole' ? 'clusterrole' : 'role'}.rbac.authorization.k8s.io "${ref.name}" not found`)
        continue
      }
      for (const r of rulesOf(role)) if (visit(r)) return { stopped: true, errors }
    }
  }
  return { stopped: false, errors }
}

export function rbacAuthorize(src: PolicySource, a: Attributes): { allowed: boolean; reason: string } {
  const ns = a.resourceRequest ? a.namespace : undefined
  const { stopped, errors } = visitRules(src, a.user, ns, (r) => ruleAllows(a, r))
  if (stopped) return { allowed: true, reason: 'RBAC: allowed by a role binding' }
  return { allowed: false, reason: errors.length ? `RBAC: ${errors.join(', ')}` : '' }
}

/** Every rule that applies to the user in a namespace (SelfSubjectRulesReview). */
export function rbacRulesFor(src: PolicySource, user: User, namespace: string): { rules: PolicyRule[]; errors: string[] } {
  const rules: PolicyRule[] = []
  const { errors } = visitRules(src, user, namespace, (r) => {
    rules.push(r)
    return false
  })
  return { rules, errors }
}

/** A PolicySource over a list of objects (the built-in policy in unit tests and reviews of it). */
export function memoryPolicy(objects: KubeObject[]): PolicySource {
  const of = (kind: string) => objects.filter((o) => o.kind === kind)
  return {
    clusterRoleBindings: () => of('ClusterRoleBinding'),
    roleBindings: (ns) => of('RoleBinding').filter((o) => o.metadata.namespace === ns),
    clusterRole: (name) => of('ClusterRole').find((o) => o.metadata.name === name),
    role: (ns, name) => of('Role').find((o) => o.metadata.namespace === ns && o.metadata.name === name),
  }
}
