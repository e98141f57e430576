// Impersonation (kubectl --as, --as-group, --as-uid), as kube-apiserver's
// WithImpersonation filter: the caller must be allowed the verb
// `impersonate` on each thing it claims: `users` (or `serviceaccounts` in
// their namespace for system:serviceaccount:NS:NAME), `groups`, `uids` and
// `userextras/<key>` (authentication.k8s.io); then the request runs as that
// user. Pure over the AuthzView.

import type { IncomingHttpHeaders } from 'node:http'
import { ApiError } from '../api/errors.ts'
import { groups as wellKnown, type UserInfo } from './authn.ts'
import { authorize, forbidden, type AuthzView, type RequestAttributes } from './authz.ts'
import { serviceAccountsGroup } from './serviceaccounts/tokens.ts'

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : [v].flat().flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean))

/** The user a request acts as: the caller, or whom it impersonates (after checking it may). */
export function impersonate(caller: UserInfo, headers: IncomingHttpHeaders, view: AuthzView): UserInfo {
  const name = headers['impersonate-user'] as string | undefined
  const asGroups = list(headers['impersonate-group'])
  const uid = headers['impersonate-uid'] as string | undefined
  const extraKeys = Object.keys(headers).filter((h) => h.startsWith('impersonate-extra-'))
  if (name === undefined) {
    if (asGroups.length || uid !== undefined || extraKeys.length) {
      throw new ApiError('BadRequest', 'requested impersonation of groups, uid or extra without impersonating a user: add Impersonate-User (kubectl --as)')
    }
    return caller
  }
  const may = (a: RequestAttributes) => {
    const d = authorize(caller, a, view)
    if (!d.allowed) throw forbidden(caller, a, d.reason)
  }
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name)
  if (sa) may({ verb: 'impersonate', resource: 'serviceaccounts', namespace: sa[1], name: sa[2] })
  else may({ verb: 'impersonate', resource: 'users', name })
  for (const g of asGroups) may({ verb: 'impersonate', resource: 'groups', name: g })
  if (uid !== undefined) may({ verb: 'impersonate', resource: 'uids.authentication.k8s.io', name: uid })
  const extra: Record<string, string[]> = {}
  for (const h of extraKeys) {
    const key = decodeURIComponent(h.slice('impersonate-extra-'.length))
    const values = list(headers[h])
    for (const v of values) may({ verb: 'impersonate', resource: 'userextras.authentication.k8s.io', subresource: key, name: v })
    extra[key] = values
  }
  const groupsOut = sa && asGroups.length === 0 ? [serviceAccountsGroup, `${serviceAccountsGroup}:${sa[1]}`] : [...asGroups]
  if (!groupsOut.includes(wellKnown.authenticated) && !groupsOut.includes('system:unauthenticated')) groupsOut.push(wellKnown.authenticated)
  return { name, uid: uid ?? '', groups: groupsOut, ...(extraKeys.length ? { extra } : {}) }
}
