// The app the fault scenarios load: Deployment `web` (skiff/echo, a
// readiness probe, no preStop), a ClusterIP Service `web` and an Ingress of
// class `external` for host web.test, all in `default`; a wait until its
// pods are ready; and a GET that never rejects. Not a test file (tap runs
// *.test.ts only).

import { request } from 'node:http'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'

export const podsInfo = lookupResource('', 'v1', 'pods')!
export const deploysInfo = lookupResource('apps', 'v1', 'deployments')!
export const servicesInfo = lookupResource('', 'v1', 'services')!
export const ingressesInfo = lookupResource('networking.k8s.io', 'v1', 'ingresses')!

export const isReady = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

/** The pod template; `version` goes into an annotation (changing it rolls the Deployment). */
export function webTemplate(o: { graceSeconds?: number; version?: string } = {}) {
  return {
    metadata: { labels: { app: 'web' }, ...(o.version ? { annotations: { version: o.version } } : {}) },
    spec: {
      terminationGracePeriodSeconds: o.graceSeconds ?? 2,
      containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }],
    },
  }
}

/** Deployment, Service and Ingress; resolves once `replicas` pods are Ready. Returns the ClusterIP. */
export async function deployWeb(client: ApiClient, o: { replicas: number; graceSeconds?: number; version?: string; ingressAnnotations?: Record<string, string> }): Promise<string> {
  await client.create(deploysInfo, 'default', { metadata: { name: 'web' }, spec: { replicas: o.replicas, selector: { matchLabels: { app: 'web' } }, template: webTemplate(o) } } as KubeObject)
  await client.create(servicesInfo, 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } } as KubeObject)
  await client.create(ingressesInfo, 'default', {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', ...(o.ingressAnnotations ? { annotations: o.ingressAnnotations } : {}) },
    spec: { ingressClassName: 'external', rules: [{ host: 'web.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } }] } }] },
  } as KubeObject)
  await eventually(async () => (await client.list(podsInfo, 'default', { labelSelector: 'app=web' })).items.filter(isReady).length === o.replicas, { timeout: 180_000, what: `${o.replicas} web pods ready` })
  return (await client.get(servicesInfo, 'default', 'web')).spec.clusterIP as string
}

export interface GetResult {
  /** The HTTP status, or -1 when no answer came (the error says why). */
  status: number
  ms: number
  body: string
  error?: string
}

/** One GET; never rejects. Default: Host web.test, a fresh connection, 10 s. */
export function httpGet(host: string, port: number, path = '/', o: { hostHeader?: string; keepAlive?: boolean; timeoutMs?: number } = {}): Promise<GetResult> {
  const started = Date.now()
  return new Promise((resolve) => {
    const fail = (e: Error) => resolve({ status: -1, ms: Date.now() - started, body: '', error: e.message })
    const req = request({ host, port, path, timeout: o.timeoutMs ?? 10_000, agent: o.keepAlive ? undefined : false, headers: { host: o.hostHeader ?? 'web.test' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started, body }))
      res.on('error', fail)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', fail)
    req.end()
  })
}
