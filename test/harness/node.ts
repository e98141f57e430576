// Node agents for integration tests: real Agents in this process against
// startTestCluster, on the real Docker Engine. Each test process picks its
// own cluster CIDR (an unused 10.X.0.0/16, X in 128..250 from its process ID
// on, checked against the subnets of existing Docker networks) and unique node names, so test
// files running in parallel never share a network, a container name or an
// iptables rule. Teardown removes the node's containers (by the skiff.node
// label), its network, its DOCKER-USER rules and its state dir, also when
// the test fails. A node labelled skiff.dev/ingress-pool=<class> also runs
// that class's ingress controller, with the token of ingressIdentity(<class>)
// (pass it to startTestCluster too), one worker and a free status port unless
// the test says otherwise.

import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { groups, ingressUserPrefix } from '../../controlplane/apiserver/authn.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { Agent, type AgentIngressOptions, type AgentOptions } from '../../node/agent.ts'
import { ingressPoolLabel } from '../../dataplane/ingress/supervisor.ts'
import { cidrsOverlap } from '../../lib/ipv4.ts'
import { labels } from '../../node/labels.ts'
import { removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { removeNetpolTable } from '../../dataplane/network-policy/enforcer.ts'
import { removeNodeNetwork } from '../../node/network.ts'
import type { TestCluster } from './cluster.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!

interface Teardown {
  teardown(fn: () => unknown): void
}

export const docker = new Dockerode()

/** Unique node names for this test run: `<prefix><i>-<random>`. */
export function testNodeNames(count: number, prefix = 'n'): string[] {
  const tag = randomBytes(3).toString('hex')
  return Array.from({ length: count }, (_, i) => `${prefix}${i + 1}-${tag}`)
}

/** Identities to pass to startTestCluster({ identities }) so each node has a token. */
export function nodeIdentities(names: string[]): Array<{ user: string; groups: string[] }> {
  return names.map((n) => ({ user: `system:node:${n}`, groups: [groups.nodes] }))
}

/** The identity of class `className`'s ingress controllers, for startTestCluster({ identities }). */
export function ingressIdentity(className: string): { user: string; groups: string[] } {
  return { user: `${ingressUserPrefix}${className}`, groups: [groups.ingress] }
}

/** A /16 from 10.128-240.x.x (skiff up uses 10.244) no Docker network uses; node i gets 10.X.i.0/24. */
export async function pickClusterCIDR(): Promise<{ clusterCIDR: string; podCIDR(i: number): string }> {
  const nets = await docker.listNetworks()
  const used: string[] = []
  for (const n of nets) for (const c of n.IPAM?.Config ?? []) if (c.Subnet && !c.Subnet.includes(':')) used.push(c.Subnet)
  // Start at a place given by the process ID, so test files started together look in different places.
  const span = 240 - 128 + 1
  let x: number | undefined
  for (let i = 0; i < span && x === undefined; i++) {
    const candidate = 128 + ((process.pid + i) % span)
    if (!used.some((s) => cidrsOverlap(s, `10.${candidate}.0.0/16`))) x = candidate
  }
  if (x === undefined) throw new Error('no free 10.X.0.0/16 (X in 128..240) among Docker networks: remove stale skiff-* networks')
  return { clusterCIDR: `10.${x}.0.0/16`, podCIDR: (i: number) => `10.${x}.${i}.0/24` }
}

/**
 * The apiserver's client certificate towards kubelet servers (written at
 * start into the state dir's pki/), and the cluster CA: what a test needs to
 * call a kubelet server directly, as https.request options.
 */
export async function kubeletClientTLS(cluster: { stateDir: string; caPem: string }): Promise<{ cert: string; key: string; ca: string }> {
  const pki = join(cluster.stateDir, 'pki')
  const [cert, key] = await Promise.all([readFile(join(pki, 'apiserver-kubelet-client.crt'), 'utf8'), readFile(join(pki, 'apiserver-kubelet-client.key'), 'utf8')])
  return { cert, key, ca: cluster.caPem }
}

/** Remove everything a node agent created on this machine (containers, network, iptables rules). */
export async function cleanupNode(name: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${labels.node}=${name}`] } })
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)))
  await removeNodeNetwork({ docker, nodeName: name })
  await removeServiceProxyTable(name)
  await removeNetpolTable(name)
}

export interface TestNode {
  name: string
  agent: Agent
  /** The node's own API client (user system:node:<name>). */
  client: ApiClient
  podCIDR: string
  stateDir: string
  /** A fresh Agent with the same options (after stop), started. */
  restart(opts?: { removePods?: boolean }): Promise<void>
}

export interface TestNodeOptions extends Partial<Omit<AgentOptions, 'nodeName' | 'client' | 'docker' | 'logger' | 'stateDir' | 'ingress'>> {
  name: string
  /** Ingress settings for a node in a pool (labels skiff.dev/ingress-pool); the client defaults to the class's identity token. */
  ingress?: Partial<AgentIngressOptions>
  /** Set by the test as admin; leave out when the controller manager's node IPAM runs. */
  podCIDR?: string
  clusterCIDR: string
}

/**
 * Start an agent for node `name` (whose identity was given to startTestCluster),
 * give its Node the podCIDR as the admin (no controller manager runs), and
 * wait until it is ready.
 */
export async function startTestNode(t: Teardown, cluster: TestCluster & { tokens: Map<string, string> }, opts: TestNodeOptions): Promise<TestNode> {
  const token = cluster.tokens.get(`system:node:${opts.name}`)
  if (!token) throw new Error(`no token for node ${opts.name}: pass nodeIdentities([...]) to startTestCluster`)
  const client = cluster.clientFor(token)
  const { name, podCIDR, ingress: ingressGiven, ...rest } = opts
  const ingress = ingressOptions(cluster, { name, labels: rest.labels, given: ingressGiven })
  const stateDir = await mkdtemp(join(tmpdir(), `skiff-node-${opts.name}-`))
  const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
  const make = () =>
    new Agent({
      heartbeatMs: 2_000, kubeletPort: 0, podResyncMs: 5_000,
      ...rest, nodeName: name, client, docker, logger, stateDir, ingress,
    })
  const node: TestNode = {
    name, client, podCIDR: podCIDR ?? '', stateDir,
    agent: make(),
    async restart(o = {}) {
      await node.agent.stop(o)
      node.agent = make()
      await node.agent.start()
    },
  }
  t.teardown(async () => {
    await node.agent.stop({ removePods: true }).catch(() => undefined)
    await cleanupNode(name)
    await rm(stateDir, { recursive: true, force: true })
  })
  const started = node.agent.start()
  started.catch(() => undefined)
  await eventually(async () => {
    const n = await cluster.client.get(nodesInfo, undefined, name).catch(() => undefined)
    if (!n) return false
    if (!n.spec?.podCIDR && podCIDR) await cluster.client.patch(nodesInfo, undefined, name, { spec: { podCIDR, podCIDRs: [podCIDR] } }, 'application/merge-patch+json')
    return !!n.spec?.podCIDR
  }, { timeout: 30_000, what: `node ${name} registered with a podCIDR` })
  await started
  node.podCIDR = (await cluster.client.get(nodesInfo, undefined, name)).spec.podCIDR
  return node
}

/** The ingress settings of a pool node: its class's token (required), one worker, a free status port, a short drain, quiet workers unless SKIFF_TEST_LOG. */
function ingressOptions(
  cluster: TestCluster & { tokens: Map<string, string> },
  opts: { name: string; labels?: Record<string, string>; given?: Partial<AgentIngressOptions> },
): AgentIngressOptions | undefined {
  const className = opts.labels?.[ingressPoolLabel]
  if (!className) return undefined
  const given = opts.given ?? {}
  let client = given.client
  if (!client) {
    const token = cluster.tokens.get(`${ingressUserPrefix}${className}`)
    if (!token) throw new Error(`node ${opts.name} is in ingress pool ${className}: pass ingressIdentity('${className}') to startTestCluster`)
    client = cluster.clientFor(token)
  }
  return { workers: 1, statusPort: 0, drainMs: 2_000, workerLogLevel: process.env.SKIFF_TEST_LOG ?? 'silent', ...given, client }
}
