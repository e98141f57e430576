// Waiting for a local cluster's nodes: Ready with a podCIDR and an
// InternalIP, and every ingress node's controller serving (its presence
// Lease says ready). `up` returns only then.

import { lookupResource } from '../controlplane/api/resources.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { eventually } from '../lib/net.ts'
import { presenceAnnotations, presenceLeaseName, presenceNamespace } from '../dataplane/ingress/presence.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!

/** Ready, with its pod network (podCIDR) and its address (InternalIP) in place. */
function isReady(node: any): boolean {
  const ready = (node.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
  const ip = (node.status?.addresses ?? []).some((a: any) => a.type === 'InternalIP' && a.address)
  return ready && !!node.spec?.podCIDR && ip
}

/** Until every ingress node's controller serves (its presence Lease says ready). */
export async function waitIngressServing(client: ApiClient, pools: Map<string, string>, progress: (s: string) => void, timeoutMs = 90_000): Promise<void> {
  const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
  const reported = new Set<string>()
  await eventually(async () => {
    const items = (await client.list(leases, presenceNamespace)).items
    for (const [node, cls] of pools) {
      const l = items.find((x) => x.metadata.name === presenceLeaseName(cls, node))
      if (l?.metadata.annotations?.[presenceAnnotations.ready] === 'true' && !reported.has(node)) {
        reported.add(node)
        progress(`ingress ${cls} serves on ${node} (${l.metadata.annotations[presenceAnnotations.address]})`)
      }
    }
    return reported.size === pools.size
  }, { timeout: timeoutMs, interval: 500, what: `the ingress controllers of ${[...pools.keys()].join(', ')} (see .skiff/logs/agent-*.log)` })
}

export async function waitNodesReady(client: ApiClient, names: string[], progress: (s: string) => void, timeoutMs = 120_000): Promise<void> {
  let reported = new Set<string>()
  await eventually(async () => {
    const list = await client.list(nodesInfo)
    const ready = new Set(list.items.filter(isReady).map((n) => n.metadata.name!))
    for (const n of names) if (ready.has(n) && !reported.has(n)) progress(`node ${n} is Ready`)
    reported = new Set([...reported, ...ready])
    return names.every((n) => ready.has(n))
  }, { timeout: timeoutMs, interval: 500, what: `nodes ${names.join(', ')} to be Ready (see .skiff/logs/agent-*.log)` })
}
