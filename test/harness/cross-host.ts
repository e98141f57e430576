// Pods on chosen hosts and traffic between them, for the multi-host e2e
// tests: echo pods pinned to a node (spec.nodeName, as a DaemonSet would),
// waiting for readiness, and HTTP from inside a pod through busybox nc (the
// echo server answers with the client address it saw).

import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { eventually } from '../../lib/net.ts'
import type { UpCluster } from './skiff-up.ts'

export const podsInfo = lookupResource('', 'v1', 'pods')!
export const servicesInfo = lookupResource('', 'v1', 'services')!

export const isReady = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

/** An echo pod on `node` (or wherever the scheduler puts it) with label app=<name>. */
export function echoPod(name: string, node?: string, labels: Record<string, string> = {}): KubeObject {
  return {
    metadata: { name, labels: { app: name, ...labels } },
    spec: {
      ...(node ? { nodeName: node } : {}),
      terminationGracePeriodSeconds: 2,
      containers: [{
        name: 'echo', image: 'skiff/echo:local', ports: [{ name: 'http', containerPort: 8080 }],
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
      }],
    },
  }
}

export async function readyPod(client: ApiClient, ns: string, name: string, timeoutMs = 90_000): Promise<KubeObject> {
  return await eventually(async () => {
    const p = await client.get(podsInfo, ns, name)
    return isReady(p) && p.status?.podIP ? p : undefined
  }, { timeout: timeoutMs, interval: 250, what: `pod ${ns}/${name} Ready` })
}

/** GET http://<target>:<port><path> from inside a pod; the echo server's JSON answer. */
export async function getFromPod(c: UpCluster, ns: string, pod: string, target: string, port: number, path = '/'): Promise<any> {
  const r = await c.kubectl(['exec', '-n', ns, pod, '--', 'sh', '-c', `printf 'GET ${path} HTTP/1.0\\r\\nHost: ${target}\\r\\n\\r\\n' | nc -w 3 ${target} ${port}`], { allowFail: true, timeoutMs: 20_000 })
  const body = r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)
  try {
    return JSON.parse(body)
  } catch {
    throw new Error(`no JSON answer from ${target}:${port}${path} in ${pod} (exit ${r.code}): ${r.stdout}${r.stderr}`)
  }
}

/**
 * The acceptance check of both pod networks: a pod on one host reaches a pod
 * on another by pod IP and by Service DNS name, and the receiver sees the
 * sender's pod IP. Returns what it saw, for the test's assertions.
 */
export async function crossHostTraffic(c: UpCluster, hostA: string, hostB: string): Promise<{ a: KubeObject; b: KubeObject; byIP: any; byName: any }> {
  const ns = 'default'
  await c.client.create(podsInfo, ns, echoPod('xa', hostA))
  await c.client.create(podsInfo, ns, echoPod('xb', hostB))
  await c.client.create(servicesInfo, ns, { metadata: { name: 'xb' }, spec: { selector: { app: 'xb' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
  const a = await readyPod(c.client, ns, 'xa')
  const b = await readyPod(c.client, ns, 'xb')
  const byIP = await eventually(() => getFromPod(c, ns, 'xa', b.status.podIP, 8080), { timeout: 30_000, interval: 500, what: `xa -> ${b.status.podIP}:8080` })
  const byName = await eventually(() => getFromPod(c, ns, 'xa', 'xb.default.svc.cluster.local', 80), { timeout: 30_000, interval: 500, what: 'xa -> xb.default.svc.cluster.local:80' })
  return { a, b, byIP, byName }
}
