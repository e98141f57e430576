// Helpers of the Gateway API integration tests (gateway-api, gateway-https):
// echo Deployments and Services, and one request at a time (no keep-alive)
// to an ingress node, over HTTP or over TLS with a chosen SNI name.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { httpRequest, type Answer } from './http.ts'

export type { Answer }

export interface SendOptions {
  method?: string
  headers?: Record<string, string>
  /** HTTPS on port 443 with this SNI name, trusting only `ca` (or nothing checked when absent). */
  tls?: { servername: string; ca?: string }
}

/** One request with its own headers and method (no keep-alive), to port 80, or 443 with `tls`. */
export const send = (ip: string, host: string, path: string, o: SendOptions = {}): Promise<Answer> => httpRequest({ ip, host, path, ...o })

/** Which Deployment answered: the pod name's prefix. */
export const app = (a: Answer) => (typeof a.json?.pod === 'string' ? a.json.pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, '') : `status ${a.status}`)

/** A one-replica skiff/echo Deployment labelled app=<name>, ready on /ready. */
export function echo(name: string): KubeObject {
  return {
    metadata: { name },
    spec: {
      replicas: 1, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 } }] } },
    },
  }
}

/** Service <name>: port 80 → the echo's named port. */
export const service = (name: string) => ({ metadata: { name }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
