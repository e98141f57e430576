// Discovery documents, built once from the resource table: /version, legacy
// /api and /apis with one APIResourceList per group version, aggregated
// discovery (apidiscovery.k8s.io/v2, 2 requests instead of 2+N for kubectl)
// (kubectl-surface.md §2). The OpenAPI documents are in openapi.ts.

import { groupVersion, groups, resources, type ResourceInfo } from '../api/resources.ts'

export const serverVersion = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-skiff',
  gitCommit: 'skiff',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23',
  compiler: 'gc',
  platform: 'linux/amd64',
}

export const aggregatedContentType = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'

export function wantsAggregated(accept: string | undefined): boolean {
  return !!accept && /as=APIGroupDiscoveryList/.test(accept) && /v=v2(?!beta)/.test(accept)
}

function subresourceKind(info: ResourceInfo, sub: string): { group: string; version: string; kind: string } {
  if (sub === 'scale') return { group: 'autoscaling', version: 'v1', kind: 'Scale' }
  if (sub === 'token') return { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' }
  if (sub === 'eviction') return { group: 'policy', version: 'v1', kind: 'Eviction' }
  if (sub === 'binding') return { group: '', version: 'v1', kind: 'Binding' }
  // The connect subresources' option kinds, as kube-apiserver lists them.
  const options: Record<string, string> = { exec: 'PodExecOptions', attach: 'PodAttachOptions', portforward: 'PodPortForwardOptions' }
  if (info.kind === 'Pod' && options[sub]) return { group: info.group, version: info.version, kind: options[sub] }
  if (info.kind === 'Node' && sub === 'proxy') return { group: info.group, version: info.version, kind: 'NodeProxyOptions' }
  return { group: info.group, version: info.version, kind: info.kind }
}

export function apiResourceList(gv: string): unknown {
  const items = resources.filter((x) => groupVersion(x) === gv)
  const list: unknown[] = []
  for (const x of items) {
    list.push({
      name: x.resource,
      singularName: x.singular,
      namespaced: x.namespaced,
      kind: x.kind,
      verbs: x.verbs,
      ...(x.shortNames ? { shortNames: x.shortNames } : {}),
      ...(x.categories ? { categories: x.categories } : {}),
    })
    for (const sub of x.subresources ?? []) {
      const k = subresourceKind(x, sub)
      const verbs = sub === 'status' || sub === 'scale' ? ['get', 'patch', 'update'] : sub === 'log' || sub === 'proxy' ? ['get'] : sub === 'token' || sub === 'eviction' || sub === 'binding' ? ['create'] : ['create', 'get']
      // kubectl drain finds the Eviction's group version here (group and version must be set).
      list.push({ name: `${x.resource}/${sub}`, singularName: '', namespaced: x.namespaced, kind: k.kind, verbs, ...(sub === 'scale' || sub === 'token' || sub === 'eviction' ? { group: k.group, version: k.version } : {}) })
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources: list }
}

export function apiVersions(serverAddress: string): unknown {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] }
}

export function apiGroupList(): unknown {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((g) => {
      // A group may serve several versions (autoscaling v2 and v1); the first row's is preferred.
      const versions = groupVersions(g).map((v) => ({ groupVersion: `${g}/${v}`, version: v }))
      return { name: g, versions, preferredVersion: versions[0] }
    }),
  }
}

/** The versions a group serves, preferred first (resources.ts order). */
function groupVersions(group: string): string[] {
  return [...new Set(resources.filter((x) => x.group === group).map((x) => x.version))]
}

function discoveryItem(group: string): unknown {
  return {
    metadata: { name: group },
    // A group may serve several versions (autoscaling v2 and v1); the first is preferred.
    versions: groupVersions(group).map((version) => {
      const items = resources.filter((x) => x.group === group && x.version === version)
      return {
        version,
        freshness: 'Current',
        resources: items.map((x) => ({
          resource: x.resource,
          responseKind: { group: x.group, version: x.version, kind: x.kind },
          scope: x.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: x.singular,
          verbs: x.verbs,
          ...(x.shortNames ? { shortNames: x.shortNames } : {}),
          ...(x.categories ? { categories: x.categories } : {}),
          subresources: (x.subresources ?? []).map((sub) => ({
            subresource: sub,
            responseKind: subresourceKind(x, sub),
            verbs: sub === 'status' || sub === 'scale' ? ['get', 'patch', 'update'] : sub === 'token' || sub === 'eviction' || sub === 'binding' ? ['create'] : ['get'],
          })),
        })),
      }
    }),
  }
}

/** The aggregated answer for /api (core only) or /apis (every named group). */
export function aggregatedDiscovery(core: boolean): unknown {
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: 'apidiscovery.k8s.io/v2',
    metadata: {},
    items: core ? [discoveryItem('')] : groups.map(discoveryItem),
  }
}
