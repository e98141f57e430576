// The node agents of a local cluster: one `skiff agent` process per node,
// each with its own token (system:node:<name>), kubeconfig and state under
// <state-dir>/agents/<name>. `up` starts them after the server; `down` stops
// them and removes what they made on this machine (containers, the node's
// Docker network, its DOCKER-USER rules, its nftables table).

import { spawn } from 'node:child_process'
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Dockerode from 'dockerode'
import { lookupResource } from '../controlplane/api/resources.ts'
import { parseTokenLine } from '../controlplane/apiserver/authn.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { addToken, ensureTokens, newToken, tokenOf } from '../controlplane/server.ts'
import { labels } from '../node/labels.ts'
import { removeNodeNetwork } from '../node/network.ts'
import { removeServiceProxyTable } from '../dataplane/service-proxy/nftables.ts'
import { eventually } from '../lib/net.ts'
import { presenceAnnotations, presenceLeaseName, presenceNamespace } from '../dataplane/ingress/presence.ts'
import { renderKubeconfig } from './kubeconfig.ts'

export interface AgentProcess {
  name: string
  pid: number
}

const skiffEntry = fileURLToPath(new URL('./skiff.ts', import.meta.url))
const nodesInfo = lookupResource('', 'v1', 'nodes')!

export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node-${i + 1}`)
}

export const nodeUser = (name: string) => `system:node:${name}`
export const ingressUser = (cls: string) => `skiff:ingress:${cls}`
/** The Node label that puts a node into an ingress class's pool. */
export const ingressPoolLabel = 'skiff.dev/ingress-pool'

/**
 * Which nodes serve which ingress class: the first `external` nodes the
 * external class, the next `internal` ones the internal class (a node is in
 * at most one pool: both would bind ports 80 and 443 on its address).
 */
export function planIngressPools(names: string[], want: { external: number; internal: number }): Map<string, string> {
  if (want.external + want.internal > names.length) {
    throw new Error(`${want.external} external + ${want.internal} internal ingress nodes need at least ${want.external + want.internal} nodes, not ${names.length}: raise --nodes`)
  }
  const pools = new Map<string, string>()
  names.slice(0, want.external).forEach((n) => pools.set(n, 'external'))
  names.slice(want.external, want.external + want.internal).forEach((n) => pools.set(n, 'internal'))
  return pools
}

/** Token lines for the nodes, before the server starts (it reads the file once). */
export function prepareNodeTokens(stateDir: string, names: string[], ingressClasses: Iterable<string> = []): void {
  const path = ensureTokens(stateDir)
  const have = new Set(readFileSync(path, 'utf8').split('\n').map((l) => parseTokenLine(l)?.user))
  for (const n of names) {
    if (!have.has(nodeUser(n))) addToken(stateDir, { token: newToken(), user: nodeUser(n), uid: nodeUser(n), groups: ['system:nodes'] })
  }
  // One identity per ingress class, shared by the class's nodes: the ingress role is per class.
  for (const cls of new Set(ingressClasses)) {
    const user = ingressUser(cls)
    if (!have.has(user)) addToken(stateDir, { token: newToken(), user, uid: user, groups: ['skiff:ingress-controllers'] })
  }
}

export function startAgents(o: { stateDir: string; server: string; caPem: string; names: string[]; clusterCIDR: string; pools?: Map<string, string>; agentArgs?: string[] }): AgentProcess[] {
  return o.names.map((name) => {
    const dir = join(o.stateDir, 'agents', name)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig({ server: o.server, caPem: o.caPem, token: tokenOf(o.stateDir, nodeUser(name)), name }), { mode: 0o600 })
    const pool = o.pools?.get(name)
    const extra: string[] = []
    if (pool) {
      // The agent runs the class's ingress controller under the class identity (default --ingress-kubeconfig).
      const token = tokenOf(o.stateDir, ingressUser(pool))
      writeFileSync(join(dir, 'ingress-kubeconfig'), renderKubeconfig({ server: o.server, caPem: o.caPem, token, name: `ingress-${pool}` }), { mode: 0o600 })
      extra.push('--node-label', `${ingressPoolLabel}=${pool}`)
    }
    const log = openSync(join(o.stateDir, 'logs', `agent-${name}.log`), 'a')
    const args = [skiffEntry, '--state-dir', o.stateDir, 'agent', '--node-name', name, '--cluster-cidr', o.clusterCIDR, ...extra, ...(o.agentArgs ?? [])]
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] })
    child.unref()
    return { name, pid: child.pid! }
  })
}

/** Ready, with its pod network (podCIDR) and its address (InternalIP, the network's gateway) in place. */
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

/** Remove what the agents of these nodes made: containers, Docker networks, DOCKER-USER rules. */
export async function removeNodeRemnants(names: string[]): Promise<void> {
  const docker = new Dockerode()
  for (const name of names) {
    const list = await docker.listContainers({ all: true, filters: { label: [`${labels.node}=${name}`] } })
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)))
    await removeNodeNetwork({ docker, nodeName: name })
    await removeServiceProxyTable(name)
  }
}
