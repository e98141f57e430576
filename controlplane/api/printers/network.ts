// Services and the networking kinds (printService, printEndpoints,
// printEndpointSlice, printIngress, printIngressClass).

import type { KubeObject } from '../types.ts'
import { age, arr, formatLabels, listWithMore, loadBalancerAddresses, rec } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter, PrintContext } from './types.ts'

/** Skiff's wide column: how many serving data-plane components route by the object's latest revision (issue 11). */
function appliedCol(who: string) {
  return col('Applied', `Serving ${who} whose routing reflects this object and its endpoints at their latest resourceVersion, of all serving ones ("n/n": done).`, { priority: 1 })
}

function applied(kind: string, obj: KubeObject, now: Date, ctx: PrintContext | undefined): string {
  return ctx?.applied?.(kind, obj, now) ?? '<unknown>'
}

function externalIP(svc: KubeObject): string {
  const spec = rec(svc.spec)
  const externalIPs = arr(spec.externalIPs).map(String)
  switch (spec.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length ? externalIPs.join(',') : '<none>'
    case 'LoadBalancer': {
      const lb = loadBalancerAddresses(svc.status?.loadBalancer)
      const all = [...(lb ? lb.split(',') : []), ...externalIPs]
      return all.length ? all.join(',') : '<pending>'
    }
    case 'ExternalName':
      return String(spec.externalName ?? '')
  }
  return '<unknown>'
}

/** `80/TCP,443:30443/TCP` */
export function servicePorts(ports: unknown): string {
  const s = arr(ports)
    .map((p) => (p?.nodePort > 0 ? `${p.port}:${p.nodePort}/${p.protocol ?? 'TCP'}` : `${p?.port}/${p?.protocol ?? 'TCP'}`))
    .join(',')
  return s || '<none>'
}

export const servicePrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Type', 'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.'),
    col('Cluster-IP', 'clusterIP is the IP address of the service and is usually assigned randomly.'),
    col('External-IP', 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.'),
    col('Port(s)', 'The list of ports that are exposed by this service.'),
    ageCol,
    col('Selector', 'Route service traffic to pods with label keys and values matching this selector.', { priority: 1 }),
    appliedCol('node service proxies'),
  ],
  cells(svc, now, ctx) {
    const spec = rec(svc.spec)
    const clusterIP = arr(spec.clusterIPs)[0] || spec.clusterIP || '<none>'
    return [svc.metadata?.name ?? '', spec.type ?? 'ClusterIP', clusterIP, externalIP(svc), servicePorts(spec.ports), age(svc, now), formatLabels(spec.selector), applied('Service', svc, now, ctx)]
  },
}

/** Ready addresses joined with each port: `10.0.0.1:80,10.0.0.2:80 + 3 more...`. */
export function formatEndpoints(ep: KubeObject): string {
  const subsets = arr(ep.subsets)
  if (subsets.length === 0) return '<none>'
  const list: string[] = []
  let count = 0
  for (const ss of subsets) {
    const ips = arr(ss?.addresses).map((a) => String(a?.ip ?? ''))
    const ports = arr(ss?.ports)
    // Headless services may have no ports: list the bare addresses.
    const hostPorts = ports.length === 0 ? ips : ports.flatMap((p) => ips.map((ip) => joinHostPort(ip, p?.port)))
    count += hostPorts.length
    list.push(...hostPorts)
  }
  return listWithMore(list, count, 3, '')
}

function joinHostPort(ip: string, port: unknown): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}

export const endpointsPrinter: KindPrinter = {
  columns: [nameCol, col('Endpoints', 'The set of all endpoints is the union of all subsets.'), ageCol],
  cells: (ep, now) => [ep.metadata?.name ?? '', formatEndpoints(ep), age(ep, now)],
}

export const endpointSlicePrinter: KindPrinter = {
  columns: [
    nameCol,
    col('AddressType', 'addressType specifies the type of address carried by this EndpointSlice.'),
    col('Ports', 'ports specifies the list of network ports exposed by each endpoint in this slice.'),
    col('Endpoints', 'endpoints is a list of unique endpoints in this slice.'),
    ageCol,
  ],
  cells(slice, now) {
    const ports = arr(slice.ports).map((p) => (typeof p?.port === 'number' ? String(p.port) : p?.name ? String(p.name) : '*'))
    const addrs = arr(slice.endpoints).flatMap((e) => arr(e?.addresses).map(String))
    return [slice.metadata?.name ?? '', slice.addressType ?? '', listWithMore(ports, ports.length), listWithMore(addrs, addrs.length), age(slice, now)]
  },
}

/** Rule hosts, at most three; `*` when no rule names a host. */
function ingressHosts(rules: unknown): string {
  const all = arr(rules)
  const list: string[] = []
  let more = false
  for (const r of all) {
    if (list.length === 3) more = true
    if (!more && r?.host) list.push(String(r.host))
  }
  if (list.length === 0) return '*'
  return more ? `${list.join(',')} + ${all.length - 3} more...` : list.join(',')
}

export const ingressPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Class', 'The name of the IngressClass resource that should be used for this Ingress.'),
    col('Hosts', 'Hosts that incoming requests are matched against before the ingress rule'),
    col('Address', 'Address is a list containing ingress points for the load-balancer'),
    col('Ports', 'Ports of TLS configurations that open'),
    ageCol,
    appliedCol("ingress nodes of the Ingress's class"),
  ],
  cells(ing, now, ctx) {
    const spec = rec(ing.spec)
    const ports = arr(spec.tls).length ? '80, 443' : '80'
    return [ing.metadata?.name ?? '', spec.ingressClassName ?? '<none>', ingressHosts(spec.rules), loadBalancerAddresses(ing.status?.loadBalancer), ports, age(ing, now), applied('Ingress', ing, now, ctx)]
  },
}

export const ingressClassPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Controller', 'Controller that is responsible for handling this class'),
    col('Parameters', 'A reference to a resource with additional parameters'),
    ageCol,
  ],
  cells(ic, now) {
    const p = ic.spec?.parameters
    const params = p ? `${p.kind}${p.apiGroup ? `.${p.apiGroup}` : ''}/${p.name}` : '<none>'
    return [ic.metadata?.name ?? '', ic.spec?.controller ?? '', params, age(ic, now)]
  },
}
