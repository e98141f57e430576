// RBAC rule evaluation, as k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac
// (rbac.go, and pkg/apis/rbac/v1/evaluation_helpers.go) decides it. Pure.
//
// A PolicyRule allows a resource request when its verbs, apiGroups,
// resources and (when given) resourceNames all match, `*` matching
// anything; `resources: ["pods/log"]` names a subresource, `*/scale` any
// resource's scale, `pods/*` any subresource of pods, and `pods` alone
// never a subresource. resourceNames never match a request without a name
// (list, watch, create, deletecollection). A non-resource request
// (`/healthz`, `/metrics`, `/api`) matches nonResourceURLs, where a
// trailing `*` is a prefix match.

import type { KubeObject } from '../../api/types.ts'
import { selectorMatches } from '../../api/validation/meta.ts'

export interface PolicyRule {
  verbs: string[]
  apiGroups?: string[]
  resources?: string[]
  resourceNames?: string[]
  nonResourceURLs?: string[]
}

export interface Subject {
  kind: 'User' | 'Group' | 'ServiceAccount' | string
  name: string
  namespace?: string
  apiGroup?: string
}

/** What is asked, in the words of authorizer.Attributes. */
export interface Attributes {
  user: { name: string; groups: string[] }
  verb: string
  /** Resource requests: */
  resourceRequest: boolean
  apiGroup?: string
  resource?: string
  subresource?: string
  namespace?: string
  name?: string
  /** Non-resource requests: the path. */
  path?: string
}

const has = (list: string[] | undefined, v: string) => !!list && (list.includes('*') || list.includes(v))

export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return has(rule.verbs, verb)
}

export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return has(rule.apiGroups, group)
}

export function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true
    if (!subresource) continue
    // `*/scale`: every resource's scale; `pods/*`: every subresource of pods.
    if (r === `*/${subresource}` || r === `${resource}/*`) return true
  }
  return false
}

export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  if (!rule.resourceNames?.length) return true
  return rule.resourceNames.includes(name)
}

export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true
  }
  return false
}

export function ruleAllows(a: Attributes, rule: PolicyRule): boolean {
  if (!verbMatches(rule, a.verb)) return false
  if (!a.resourceRequest) return nonResourceURLMatches(rule, a.path ?? '')
  return apiGroupMatches(rule, a.apiGroup ?? '') && resourceMatches(rule, a.resource ?? '', a.subresource ?? '') && resourceNameMatches(rule, a.name ?? '')
}

/** Does a binding subject name this user (appliesToUser in rbac.go)? A ServiceAccount subject is the user system:serviceaccount:NS:NAME; `namespace` is the binding's, for subjects that leave theirs out. */
export function subjectMatches(s: Subject, user: { name: string; groups: string[] }, bindingNamespace?: string): boolean {
  if (s.kind === 'User') return user.name === s.name
  if (s.kind === 'Group') return user.groups.includes(s.name)
  if (s.kind === 'ServiceAccount') {
    const ns = s.namespace || bindingNamespace || ''
    return user.name === serviceAccountUsername(ns, s.name)
  }
  return false
}

export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`
}

// ---- aggregation (the clusterrole-aggregation controller) ----

export function rulesOf(obj: KubeObject): PolicyRule[] {
  return Array.isArray(obj.rules) ? (obj.rules as PolicyRule[]) : []
}

function ruleKey(r: PolicyRule): string {
  const norm = (v?: string[]) => (v?.length ? v : undefined)
  return JSON.stringify([norm(r.verbs), norm(r.apiGroups), norm(r.resources), norm(r.resourceNames), norm(r.nonResourceURLs)])
}

/**
 * The rules an aggregated ClusterRole should have: those of every other
 * ClusterRole one of its selectors matches, in name order, each distinct rule
 * once. undefined when the role has no aggregationRule.
 */
export function aggregatedRules(role: KubeObject, all: KubeObject[]): PolicyRule[] | undefined {
  const selectors: unknown[] = role.aggregationRule?.clusterRoleSelectors
  if (!Array.isArray(selectors)) return undefined
  const seen = new Set<string>()
  const out: PolicyRule[] = []
  const sources = all
    .filter((o) => o.metadata.name !== role.metadata.name && selectors.some((s) => selectorMatches(s, o.metadata.labels)))
    .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))
  for (const src of sources) {
    for (const r of rulesOf(src)) {
      const k = ruleKey(r)
      if (seen.has(k)) continue
      seen.add(k)
      out.push(r)
    }
  }
  return out
}

export function sameRules(a: PolicyRule[], b: PolicyRule[]): boolean {
  return a.length === b.length && a.every((r, i) => ruleKey(r) === ruleKey(b[i]!))
}
