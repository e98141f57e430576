// Parse a Kubernetes REST path into what it addresses. Pure.
//   /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]]
//   /apis/{group}/{version}/{resource}[/{name}[/{subresource}]]
//   /api/v1/namespaces/{name}[/status|/finalize]   (the Namespace itself)
//   /api/v1/watch/...                               (legacy watch prefix)
//   /api/v1/nodes/{name}/proxy[/{path...}]           (nodes/proxy: the rest of the path goes to the kubelet)

import { lookupResource, type ResourceInfo } from '../api/resources.ts'
import { ApiError } from '../api/errors.ts'

export interface ResourcePath {
  info: ResourceInfo
  namespace?: string
  name?: string
  subresource?: string
  legacyWatch: boolean
  /** nodes/{name}/proxy/{path}: the kubelet path, as sent ('/' when none). */
  proxyPath?: string
}

export type ParsedPath =
  | { type: 'resource'; path: ResourcePath }
  | { type: 'group'; group: string; version?: string }
  | { type: 'other' }

export function parsePath(pathname: string): ParsedPath {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent)
  let group: string
  let version: string | undefined
  let rest: string[]
  if (parts[0] === 'api') {
    group = ''
    version = parts[1]
    rest = parts.slice(2)
  } else if (parts[0] === 'apis' && parts.length >= 2) {
    group = parts[1]!
    version = parts[2]
    rest = parts.slice(3)
  } else {
    return { type: 'other' }
  }
  if (!version || rest.length === 0) return { type: 'group', group, version }
  let legacyWatch = false
  if (rest[0] === 'watch') {
    legacyWatch = true
    rest = rest.slice(1)
  }
  let namespace: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    namespace = rest[1]
    rest = rest.slice(2)
  }
  const [resource, name, subresource, ...extra] = rest
  const info = lookupResource(group, version, resource!)
  if (!info) {
    throw new ApiError('NotFound', `the server could not find the requested resource (${group ? group + '/' : ''}${version} ${resource})`)
  }
  const proxyPath = subresource === 'proxy' && (info.subresources ?? []).includes('proxy') ? nodeProxyPath(pathname) : undefined
  if (extra.length > 0 && proxyPath === undefined) throw new ApiError('NotFound', `the server could not find the requested resource: ${pathname}`)
  if (namespace !== undefined && !info.namespaced) {
    throw new ApiError('NotFound', `the server could not find the requested resource: ${info.resource} is not namespaced`)
  }
  if (subresource && !(info.subresources ?? []).includes(subresource as never) && !(info.resource === 'namespaces' && subresource === 'finalize')) {
    throw new ApiError('NotFound', `the server could not find the requested resource: ${info.resource}/${subresource}`)
  }
  return { type: 'resource', path: { info, namespace, name, subresource, legacyWatch, ...(proxyPath !== undefined ? { proxyPath } : {}) } }
}

/** What follows `/proxy` in a nodes/{name}/proxy path, undecoded ('/' for none), or undefined. Pure. */
export function nodeProxyPath(pathname: string): string | undefined {
  const m = /^\/api\/v1\/nodes\/[^/]+\/proxy(\/.*)?$/.exec(pathname)
  return m ? (m[1] ?? '/') : undefined
}
