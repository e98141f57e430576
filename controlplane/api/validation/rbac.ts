// rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding and
// ClusterRoleBinding, as pkg/apis/rbac/validation checks them (same field
// paths and messages). Names are path segments (ValidateRBACName), so
// `system:node` and `edit` are both valid.

import { canonical, invalid, invalidEach, isRecord, items, notSupported, raw, required, text } from './field.ts'
import type { Causes, Raw } from './field.ts'
import { validateLabelSelector } from './meta.ts'
import { isDNS1123Subdomain } from './names.ts'
import type { KubeObject } from '../types.ts'

export const rbacGroup = 'rbac.authorization.k8s.io'

/** path.IsValidPathSegmentName: the name becomes one segment of a URL. */
export function isValidPathSegmentName(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`]
  const out: string[] = []
  if (name.includes('/')) out.push("may not contain '/'")
  if (name.includes('%')) out.push("may not contain '%'")
  return out
}

/** A []string as Go's %#v prints it. */
function goStrings(v: unknown): Raw {
  return raw(`[]string{${items(v).map((s) => JSON.stringify(text(s))).join(', ')}}`)
}

function strings(v: unknown, path: string): Causes {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) return [invalid(path, v, 'must be a list of strings')]
  return v.flatMap((s, i) => (typeof s === 'string' ? [] : [invalid(`${path}[${i}]`, s, 'must be a string')]))
}

export function validatePolicyRule(rule: unknown, namespaced: boolean, path: string): Causes {
  if (!isRecord(rule)) return [invalid(path, rule, 'must be an object')]
  const out: Causes = ['verbs', 'apiGroups', 'resources', 'resourceNames', 'nonResourceURLs'].flatMap((k) => strings(rule[k], `${path}.${k}`))
  if (out.length) return out
  const n = (k: string) => items(rule[k]).length
  if (n('verbs') === 0) out.push(required(`${path}.verbs`, 'verbs must contain at least one value'))
  if (n('nonResourceURLs') > 0) {
    if (namespaced) out.push(invalid(`${path}.nonResourceURLs`, goStrings(rule.nonResourceURLs), 'namespaced rules cannot apply to non-resource URLs'))
    if (n('apiGroups') > 0 || n('resources') > 0 || n('resourceNames') > 0) {
      out.push(invalid(`${path}.nonResourceURLs`, goStrings(rule.nonResourceURLs), 'rules cannot apply to both regular resources and non-resource URLs'))
    }
    return out
  }
  if (n('apiGroups') === 0) out.push(required(`${path}.apiGroups`, 'resource rules must supply at least one api group'))
  if (n('resources') === 0) out.push(required(`${path}.resources`, 'resource rules must supply at least one resource'))
  return out
}

function rules(obj: KubeObject, namespaced: boolean): Causes {
  if (obj.rules !== undefined && obj.rules !== null && !Array.isArray(obj.rules)) return [invalid('rules', obj.rules, 'must be a list')]
  return items(obj.rules).flatMap((r, i) => validatePolicyRule(r, namespaced, `rules[${i}]`))
}

export function validateRole(obj: KubeObject): Causes {
  return rules(obj, true)
}

export function validateClusterRole(obj: KubeObject): Causes {
  const out = rules(obj, false)
  const agg = obj.aggregationRule
  if (agg === undefined || agg === null) return out
  if (!isRecord(agg)) return [...out, invalid('aggregationRule', agg, 'must be an object')]
  const selectors = items(agg.clusterRoleSelectors)
  if (selectors.length === 0) out.push(required('aggregationRule.clusterRoleSelectors', 'at least one clusterRoleSelector required if aggregationRule is non-nil'))
  selectors.forEach((s, i) => out.push(...validateLabelSelector(s, `aggregationRule.clusterRoleSelectors[${i}]`)))
  return out
}

export function validateSubject(s: unknown, namespaced: boolean, path: string): Causes {
  if (!isRecord(s)) return [invalid(path, s, 'must be an object')]
  const out: Causes = []
  const name = typeof s.name === 'string' ? s.name : ''
  const apiGroup = typeof s.apiGroup === 'string' ? s.apiGroup : ''
  if (!name) out.push(required(`${path}.name`))
  switch (s.kind) {
    case 'ServiceAccount':
      if (name) out.push(...invalidEach(`${path}.name`, name, isDNS1123Subdomain(name)))
      if (apiGroup) out.push(notSupported(`${path}.apiGroup`, apiGroup, ['']))
      if (!namespaced && !s.namespace) out.push(required(`${path}.namespace`))
      break
    case 'User':
    case 'Group':
      if (apiGroup !== rbacGroup) out.push(notSupported(`${path}.apiGroup`, apiGroup, [rbacGroup]))
      break
    default:
      out.push(notSupported(`${path}.kind`, s.kind ?? '', ['ServiceAccount', 'User', 'Group']))
  }
  return out
}

function binding(obj: KubeObject, old: KubeObject | undefined, namespaced: boolean): Causes {
  const out: Causes = []
  const ref = isRecord(obj.roleRef) ? obj.roleRef : {}
  if (ref.apiGroup !== rbacGroup) out.push(notSupported('roleRef.apiGroup', ref.apiGroup ?? '', [rbacGroup]))
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole']
  if (!kinds.includes(ref.kind)) out.push(notSupported('roleRef.kind', ref.kind ?? '', kinds))
  if (typeof ref.name !== 'string' || ref.name === '') out.push(required('roleRef.name'))
  else out.push(...invalidEach('roleRef.name', ref.name, isValidPathSegmentName(ref.name)))
  if (obj.subjects !== undefined && obj.subjects !== null && !Array.isArray(obj.subjects)) out.push(invalid('subjects', obj.subjects, 'must be a list'))
  items(obj.subjects).forEach((s, i) => out.push(...validateSubject(s, namespaced, `subjects[${i}]`)))
  if (old && canonical(old.roleRef) !== canonical(obj.roleRef)) {
    const r = isRecord(obj.roleRef) ? obj.roleRef : {}
    out.push(invalid('roleRef', raw(`rbac.RoleRef{APIGroup:${JSON.stringify(text(r.apiGroup ?? ''))}, Kind:${JSON.stringify(text(r.kind ?? ''))}, Name:${JSON.stringify(text(r.name ?? ''))}}`), 'cannot change roleRef'))
  }
  return out
}

export function validateRoleBinding(obj: KubeObject, old?: KubeObject): Causes {
  return binding(obj, old, true)
}

export function validateClusterRoleBinding(obj: KubeObject, old?: KubeObject): Causes {
  return binding(obj, old, false)
}

/** Defaults of rbac/v1 (SetDefaults_RoleBinding, SetDefaults_Subject): the group of roleRef, and of User and Group subjects. */
export function defaultBinding(o: KubeObject): void {
  if (isRecord(o.roleRef) && !o.roleRef.apiGroup) o.roleRef.apiGroup = rbacGroup
  for (const s of items(o.subjects)) {
    if (isRecord(s) && !s.apiGroup && (s.kind === 'User' || s.kind === 'Group')) s.apiGroup = rbacGroup
  }
}

