// Pod DNS settings per dnsPolicy, merged with spec.dnsConfig like the kubelet
// does (pure). ClusterFirst: nameserver 10.96.0.10, search
// <ns>.svc.cluster.local svc.cluster.local cluster.local, options ndots:5.
// Default: the node's resolvers (Docker's own handling). None: only dnsConfig.
// Skiff writes the result as a resolv.conf that is bind-mounted into every
// container of the pod: on a user-defined network Docker would otherwise put
// its embedded resolver (127.0.0.11) in front, and pods must see the cluster
// DNS address itself.

import type { KubeObject } from '../../controlplane/api/types.ts'

export interface DnsSettings {
  nameservers: string[]
  searches: string[]
  options: Array<{ name: string; value?: string }>
}

export interface PodDns {
  /** A resolv.conf to mount at /etc/resolv.conf; undefined leaves Docker's (dnsPolicy Default). */
  resolvConf?: string
  /** The same settings as Docker HostConfig fields (shown by docker inspect; used by Default). */
  docker: { Dns: string[]; DnsSearch: string[]; DnsOptions: string[] }
}

export interface ClusterDns {
  clusterDNS: string
  clusterDomain: string
}

export const defaultClusterDns: ClusterDns = { clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' }

const uniq = (xs: string[]) => [...new Set(xs)]

function merge(base: DnsSettings, cfg: any): DnsSettings {
  const options = new Map(base.options.map((o) => [o.name, o]))
  for (const o of cfg?.options ?? []) if (o?.name) options.set(o.name, { name: o.name, ...(o.value !== undefined ? { value: String(o.value) } : {}) })
  return {
    nameservers: uniq([...base.nameservers, ...(cfg?.nameservers ?? [])]).slice(0, 3),
    searches: uniq([...base.searches, ...(cfg?.searches ?? [])]).slice(0, 32),
    options: [...options.values()],
  }
}

export function dnsSettings(pod: KubeObject, cluster: ClusterDns = defaultClusterDns): { policy: 'cluster' | 'host' | 'none'; settings: DnsSettings } {
  const spec = pod.spec ?? {}
  let policy: string = spec.dnsPolicy ?? 'ClusterFirst'
  // As in Kubernetes, a hostNetwork pod uses the cluster DNS only with ClusterFirstWithHostNet.
  if (policy === 'ClusterFirst' && spec.hostNetwork) policy = 'Default'
  const empty: DnsSettings = { nameservers: [], searches: [], options: [] }
  if (policy === 'None') return { policy: 'none', settings: merge(empty, spec.dnsConfig) }
  if (policy === 'Default') return { policy: 'host', settings: merge(empty, spec.dnsConfig) }
  const d = cluster.clusterDomain
  const ns = pod.metadata.namespace ?? 'default'
  const base: DnsSettings = { nameservers: [cluster.clusterDNS], searches: [`${ns}.svc.${d}`, `svc.${d}`, d], options: [{ name: 'ndots', value: '5' }] }
  return { policy: 'cluster', settings: merge(base, spec.dnsConfig) }
}

export function renderResolvConf(s: DnsSettings): string {
  const lines = s.nameservers.map((n) => `nameserver ${n}`)
  if (s.searches.length) lines.push(`search ${s.searches.join(' ')}`)
  if (s.options.length) lines.push(`options ${s.options.map((o) => (o.value === undefined ? o.name : `${o.name}:${o.value}`)).join(' ')}`)
  return lines.join('\n') + '\n'
}

export function buildPodDns(pod: KubeObject, cluster: ClusterDns = defaultClusterDns): PodDns {
  const { policy, settings } = dnsSettings(pod, cluster)
  const docker = {
    Dns: settings.nameservers,
    DnsSearch: settings.searches,
    DnsOptions: settings.options.map((o) => (o.value === undefined ? o.name : `${o.name}:${o.value}`)),
  }
  return { resolvConf: policy === 'host' ? undefined : renderResolvConf(settings), docker }
}
