// `skiff service NAME [-n NS] [--url]`: reads the Service, the nodes, the
// Ingresses of its namespace and the Gateway API objects (each list an empty
// one when the user may not read it), and prints serviceUrls (service-urls.ts).

import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { gatewayInfo } from '../dataplane/ingress/gateway-status.ts'
import { formatServiceUrls, serviceUrls } from './service-urls.ts'

const res = {
  services: lookupResource('', 'v1', 'services')!,
  nodes: lookupResource('', 'v1', 'nodes')!,
  ingresses: lookupResource('networking.k8s.io', 'v1', 'ingresses')!,
}

export async function showService(client: ApiClient, namespace: string, name: string, o: { url?: boolean }): Promise<string[]> {
  const service = await client.get(res.services, namespace, name)
  const orEmpty = (p: Promise<{ items: KubeObject[] }>) => p.then((l) => l.items, () => [] as KubeObject[])
  const [nodes, ingresses, httpRoutes, gateways] = await Promise.all([
    orEmpty(client.list(res.nodes)), orEmpty(client.list(res.ingresses, namespace)), orEmpty(client.list(gatewayInfo.httpRoutes)), orEmpty(client.list(gatewayInfo.gateways)),
  ])
  const urls = serviceUrls({ service, nodes, ingresses, httpRoutes, gateways })
  if (o.url) return urls.map((u) => u.url)
  return formatServiceUrls(service, urls)
}
