// Access reviews and SelfSubjectReview: create-only kinds answered at once
// from the authorizer chain and never stored, as kube-apiserver's
// pkg/registry/authorization and authentication do.
//  - SelfSubjectAccessReview: may I? (kubectl auth can-i)
//  - SubjectAccessReview: may this user with these groups? (cluster-admin)
//  - LocalSubjectAccessReview: the same within one namespace (admin)
//  - SelfSubjectRulesReview: what may I in a namespace? (auth can-i --list)
//  - SelfSubjectReview (authentication.k8s.io): who am I? (auth whoami)
// Validation messages and field paths follow pkg/apis/authorization/validation.

import { ApiError } from '../../api/errors.ts'
import { groupVersion, type ResourceInfo } from '../../api/resources.ts'
import type { KubeObject, StatusCause } from '../../api/types.ts'
import { invalid, isRecord, raw, required } from '../../api/validation/field.ts'
import { groups, ingressUserPrefix, nodeUserPrefix, type UserInfo } from '../authn.ts'
import { authorize, authorizeNonResource, type AuthzView } from '../authz.ts'
import { rbacRulesFor } from './authorizer.ts'
import type { PolicyRule } from './rules.ts'

export interface ReviewContext {
  user: UserInfo
  view: AuthzView
  /** The namespace of the path (LocalSubjectAccessReview). */
  namespace?: string
}

function reject(info: ResourceInfo, causes: StatusCause[]): ApiError {
  const msg = causes.map((c) => `${c.field}: ${c.message}`).join(', ')
  return new ApiError('Invalid', `${info.kind}.${info.group} "" is invalid: ${causes.length > 1 ? `[${msg}]` : msg}`, { group: info.group, kind: info.kind, causes })
}

/** ValidateSubjectAccessReviewSpec: exactly one of resourceAttributes and nonResourceAttributes. */
function specCauses(spec: Record<string, any>): StatusCause[] {
  const r = spec.resourceAttributes
  const n = spec.nonResourceAttributes
  if (r && n) return [invalid('spec.nonResourceAttributes', raw('&authorization.NonResourceAttributes{...}'), 'cannot be specified in combination with resourceAttributes')]
  if (!r && !n) return [invalid('spec.resourceAttributes', raw('nil'), 'exactly one of nonResourceAttributes or resourceAttributes must be specified')]
  return []
}

/** The decision for one SubjectAccessReviewSpec, as its status. */
function decide(spec: Record<string, any>, user: UserInfo, view: AuthzView): { allowed: boolean; reason?: string } {
  const out = (allowed: boolean, reason: string) => (reason ? { allowed, reason } : { allowed })
  const n = spec.nonResourceAttributes
  if (isRecord(n)) {
    const d = authorizeNonResource(user, String(n.verb ?? ''), String(n.path ?? ''), view)
    return out(d.allowed, d.reason)
  }
  const r = isRecord(spec.resourceAttributes) ? spec.resourceAttributes : {}
  const resource = String(r.resource ?? '')
  const group = String(r.group ?? '')
  const d = authorize(user, {
    verb: String(r.verb ?? ''),
    resource: group && group !== '*' ? `${resource}.${group}` : resource,
    subresource: r.subresource || undefined,
    namespace: r.namespace || undefined,
    name: r.name || undefined,
  }, view)
  return out(d.allowed, d.reason)
}

type Answer = Record<string, unknown>

function answer(info: ResourceInfo, body: KubeObject, status: unknown): Answer {
  return { kind: info.kind, apiVersion: groupVersion(info), metadata: { ...(isRecord(body.metadata) ? body.metadata : {}), creationTimestamp: null }, spec: body.spec, status }
}

/** Node and ingress identities get part of their access from graph authorizers, which cannot list rules. */
function graphAuthorized(u: UserInfo): boolean {
  return (u.groups.includes(groups.nodes) && u.name.startsWith(nodeUserPrefix)) || (u.groups.includes(groups.ingress) && u.name.startsWith(ingressUserPrefix))
}

function rulesReview(spec: Record<string, any>, c: ReviewContext): unknown {
  const namespace = typeof spec.namespace === 'string' ? spec.namespace : ''
  const { rules, errors } = rbacRulesFor(c.view, c.user, namespace)
  const all: PolicyRule[] = c.user.groups.includes(groups.admin) ? [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }, ...rules] : rules
  const resourceRules = all.filter((r) => !r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) }))
  const nonResourceRules = all.filter((r) => r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }))
  return { resourceRules, nonResourceRules, incomplete: graphAuthorized(c.user) || errors.length > 0, ...(errors.length ? { evaluationError: errors.join(', ') } : {}) }
}

/** The answer to a POST of one of the review kinds (the caller already authorized the create). */
export function review(info: ResourceInfo, body: KubeObject, c: ReviewContext): Answer {
  const spec: Record<string, any> = isRecord(body?.spec) ? body.spec : {}
  switch (info.kind) {
    case 'SelfSubjectReview':
      return { kind: info.kind, apiVersion: groupVersion(info), metadata: { creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }, status: { userInfo: { username: c.user.name, uid: c.user.uid, groups: c.user.groups, ...(c.user.extra ? { extra: c.user.extra } : {}) } } }
    case 'SelfSubjectRulesReview':
      if (!spec.namespace) throw reject(info, [required('spec.namespace')])
      return answer(info, body, rulesReview(spec, c))
    case 'SelfSubjectAccessReview': {
      const causes = specCauses(spec)
      if (causes.length) throw reject(info, causes)
      return answer(info, body, decide(spec, c.user, c.view))
    }
    case 'SubjectAccessReview':
    case 'LocalSubjectAccessReview': {
      const causes = specCauses(spec)
      if (!spec.user && !(Array.isArray(spec.groups) && spec.groups.length)) causes.push(invalid('spec.user', spec.user ?? '', 'at least one of user or group must be specified'))
      if (info.kind === 'LocalSubjectAccessReview' && spec.nonResourceAttributes) causes.push(invalid('spec.nonResourceAttributes', raw('&authorization.NonResourceAttributes{...}'), 'disallowed on this kind of request'))
      if (causes.length) throw reject(info, causes)
      if (info.kind === 'LocalSubjectAccessReview' && spec.resourceAttributes?.namespace !== c.namespace) {
        throw new ApiError('BadRequest', `spec.resourceAttributes.namespace must match namespace: ${c.namespace}`)
      }
      const subject: UserInfo = { name: String(spec.user ?? ''), uid: String(spec.uid ?? ''), groups: Array.isArray(spec.groups) ? spec.groups.map(String) : [] }
      const body2 = info.kind === 'LocalSubjectAccessReview' ? { ...body, metadata: { ...(body.metadata ?? {}), namespace: c.namespace } } : body
      return answer(info, body2 as KubeObject, decide(spec, subject, c.view))
    }
  }
  throw new ApiError('NotFound', `${info.resource} is not a review`)
}
