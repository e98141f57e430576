// `skiff agent`: one node agent in the foreground (what `skiff up` starts per
// node). Wired into cli/skiff.ts with registerAgentCommand(program). It uses
// the global --state-dir (its own files go to <state-dir>/agents/<node>).
// The node's identity (node/join.ts chooseNodeIdentity): the global
// --kubeconfig if given; else <agentDir>/node.kubeconfig from an earlier join;
// else a join now with --server and --token (from `skiff token create`);
// else the static <agentDir>/kubeconfig that `skiff up` writes.
// SIGTERM/SIGINT stop it and leave the pods running (adopted at the next
// start), unless --remove-pods-on-exit. A node labelled
// skiff.dev/ingress-pool=<class> also runs that class's ingress controller
// with its own identity (<agentDir>/ingress.kubeconfig from the join, else
// --ingress-kubeconfig, default <agentDir>/ingress-kubeconfig); SIGTERM
// drains it first.

import { existsSync, readFileSync, statSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { isIPv4 } from 'node:net'
import { fileURLToPath } from 'node:url'
import { routeSource } from '../lib/host-address.ts'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import Dockerode from 'dockerode'
import { ApiClient, ApiClientError, type ClientConfig } from '../controlplane/client/client.ts'
import { readKnownApiservers } from './apiservers.ts'
import { readKubeconfig } from '../cli/kubeconfig.ts'
import { createLogger } from '../lib/log.ts'
import { Agent, type AgentIngressOptions } from './agent.ts'
import { parseLogRotation } from './pods/container-config.ts'
import { parsePodLogRetention } from './pod-log-archive.ts'
import { ingressPoolLabel } from '../dataplane/ingress/supervisor.ts'
import type { Capacity } from './node-object.ts'
import { chooseNodeIdentity, credentialRefused, loadOrJoin, type IdentitySource } from './join.ts'

function keyValues(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of (list ?? []).flatMap((s) => s.split(','))) {
    const i = item.indexOf('=')
    if (i <= 0) throw new Error(`${what} must be key=value, not ${item}`)
    out[item.slice(0, i)] = item.slice(i + 1)
  }
  return out
}

function ingressOptions(o: Record<string, any>, labels: Record<string, string>, agentDir: string, joined?: ClientConfig): AgentIngressOptions | undefined {
  if (!labels[ingressPoolLabel]) return undefined
  const file = (o.ingressKubeconfig as string | undefined) ?? join(agentDir, 'ingress-kubeconfig')
  const num = (v: unknown) => (v === undefined ? undefined : Number(v))
  return {
    client: new ApiClient(joined ?? readKubeconfig(file)),
    httpPort: num(o.ingressHttpPort), httpsPort: num(o.ingressHttpsPort), workers: num(o.ingressWorkers),
    statusPort: num(o.ingressStatusPort), drainMs: num(o.ingressDrainMs), lameDuckMs: num(o.ingressLameDuckMs),
    acme: { caBundlePem: o.acmeCaFile ? readFileSync(o.acmeCaFile as string, 'utf8') : undefined, renewCheckMs: num(o.acmeRenewCheckMs) },
  }
}

function podNetworkMode(v: string | undefined): 'host-gw' | 'vxlan' | 'local' | undefined {
  if (v === undefined || v === 'host-gw' || v === 'vxlan' || v === 'local') return v
  throw new Error(`--pod-network must be host-gw, vxlan or local, not ${JSON.stringify(v)}`)
}

/** The source address of this host's route to the server (the kubelet's way to its InternalIP); undefined over loopback. */
async function nodeIPTowards(server: string): Promise<string | undefined> {
  const host = new URL(server).hostname.replace(/^\[|\]$/g, '')
  const ip = isIPv4(host) ? host : (await lookup(host, { family: 4 }).catch(() => undefined))?.address
  return ip ? await routeSource(ip) : undefined
}

async function install(stateDir: string, systemdDir: string): Promise<void> {
  const { installUnit, withoutInstallFlags } = await import('../cli/install.ts')
  const argv = withoutInstallFlags(process.argv.slice(2))
  const msg = await installUnit({
    name: 'skiff-agent', description: 'Skiff node agent', systemdDir,
    execStart: [process.execPath, fileURLToPath(new URL('../cli/skiff.ts', import.meta.url)), '--state-dir', stateDir, ...argv],
    workingDirectory: process.cwd(), after: ['docker.service'], stopTimeoutS: 30,
  })
  process.stdout.write(msg + '\n')
}

/** A whole number within bounds, or an error naming the flag. */
function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw)
  if (!/^\d+$/.test(String(raw).trim()) || n < min || n > max) throw new Error(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`)
  return n
}

function serviceProxyBackend(v: string): 'nftables' | 'userspace' | 'none' {
  if (v === 'nftables' || v === 'userspace' || v === 'none') return v
  throw new Error(`--service-proxy must be nftables, userspace or none, not ${v}`)
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run a node agent in the foreground: registers the Node and runs its pods on the local Docker')
    .option('--node-name <name>', 'the Node name', hostname())
    .option('--server <url>', 'join the cluster of this apiserver (https://host:6443), with --token; a comma list names every server of an HA control plane (the agent also learns them from the servers)')
    .option('--token <token>', 'the join token from `skiff token create` on the server (K10<CA hash>::<id>.<secret>)')
    .option('--cluster-cidr <cidr>', 'the whole pod network', '10.244.0.0/16')
    .option('--kubelet-port <port>', 'kubelet server port on the node InternalIP', '10250')
    .option('--node-label <key=value...>', 'extra Node labels (ingress pools, roles)')
    .option('--capacity <key=value...>', 'override detected capacity: cpu=2,memory=4Gi,pods=110')
    .option('--node-ip <ip>', "the node's InternalIP (default: this host's source address towards the server)")
    .option('--node-external-ip <ip>', "the node's ExternalIP: NodePorts and an ingress node answer there too, and Ingress status publishes it")
    .option('--pod-network <mode>', 'how pods reach other hosts: host-gw (routes via each host, one L2 segment) or vxlan (an overlay, UDP 8472); local: all nodes on one Docker Engine')
    .option('--no-lb-speaker', 'do not answer LoadBalancer IPs on the LAN from this node')
    .option('--heartbeat-ms <ms>', 'Lease renewal interval (the LoadBalancer speakers judge liveness from it: a peer is dead after three missed ones)', '3000')
    .option('--endpoint-withdrawal-timeout-ms <ms>', "how long a terminating pod waits, before SIGTERM, for every serving node to stop routing to it (within its grace period; 0: don't wait)", '10000')
    .option('--install', 'write and enable a systemd unit running this command (restart on failure, start at boot), then exit')
    .option('--systemd-dir <dir>', 'where --install writes the unit', '/etc/systemd/system')
    .option('--service-proxy <backend>', 'the node service proxy: nftables, userspace or none', 'nftables')
    .option('--no-network-policy', 'do not enforce NetworkPolicies on this node (its nftables table inet skiff-np-<h>)')
    .option('--ingress-kubeconfig <file>', `the ingress controller's identity when --node-label ${ingressPoolLabel}=<class> is set (default <state-dir>/agents/<node>/ingress-kubeconfig)`)
    .option('--ingress-http-port <port>', 'ingress HTTP port on the node InternalIP (default 80)')
    .option('--ingress-https-port <port>', 'ingress HTTPS port on the node InternalIP (default 443)')
    .option('--ingress-workers <n>', 'ingress worker processes (default: one per core)')
    .option('--ingress-status-port <port>', 'ingress /healthz, /readyz, /metrics port (default 10254)')
    .option('--acme-ca-file <file>', "PEM bundle to trust the ACME directory's own TLS certificate (a private CA such as pebble)")
    .option('--acme-renew-check-ms <ms>', 'how often ACME certificates are checked for renewal (default 600000)')
    .option('--ingress-drain-ms <ms>', 'how long a stopping ingress keeps serving in-flight requests (default 10000)')
    .option('--ingress-lame-duck-ms <ms>', 'a stopping ingress fails readiness at once but keeps accepting this long, so load balancers move away first (default 2000)')
    .option('--container-log-max-size <quantity>', "rotate a container's log when it reaches this size (the kubelet's containerLogMaxSize)", '10Mi')
    .option('--container-log-max-files <n>', 'log files kept per container, the current one included (containerLogMaxFiles)', '5')
    .option('--pod-log-retention <duration>', 'how long the logs of deleted and replaced containers stay readable (skiff logs --previous-pods, GET nodes/NODE/proxy/podLogs/); 0 keeps none', '24h')
    .option('--remove-pods-on-exit', 'remove the pods, the node network and its rules when stopping')
    .action(async (o) => {
      const g = program.opts()
      const stateDir = resolve(g.stateDir as string)
      if (o.install) return await install(stateDir, o.systemdDir as string)
      const node = o.nodeName as string
      const podNetwork = podNetworkMode(o.podNetwork)
      const containerLogs = parseLogRotation(String(o.containerLogMaxSize), String(o.containerLogMaxFiles))
      const podLogRetentionMs = parsePodLogRetention(String(o.podLogRetention))
      const agentDir = join(stateDir, 'agents', node)
      const logger = createLogger({ component: 'agent' })
      const labels = keyValues(o.nodeLabel, '--node-label')
      // --server may list every apiserver of an HA control plane; the join goes through the first.
      const serverList = o.server ? String(o.server).split(',').map((x) => x.trim()).filter(Boolean) : []
      const source: IdentitySource = chooseNodeIdentity({ agentDir, kubeconfig: g.kubeconfig, server: serverList[0], token: o.token, exists: existsSync })
      let nodeConfig: ClientConfig
      let ingressConfig: ClientConfig | undefined
      if (source.kind === 'join') {
        const id = await loadOrJoin({ agentDir, server: serverList[0], token: o.token, nodeName: node, labels })
        if (id.joined) logger.info({ node, server: id.node.server }, 'joined the cluster')
        nodeConfig = id.node
        ingressConfig = id.ingress
      } else {
        nodeConfig = readKubeconfig(source.path)
      }
      // Every apiserver seen last time (HA control plane): the agent starts even when the one it joined through is down.
      const seenServers = readKnownApiservers(agentDir)
      nodeConfig = { ...nodeConfig, servers: [...serverList, ...seenServers] }
      if (ingressConfig) ingressConfig = { ...ingressConfig, servers: nodeConfig.servers }
      const nodeIP = (o.nodeIp as string | undefined) ?? (await nodeIPTowards(nodeConfig.server))
      if (!nodeIP && podNetwork && podNetwork !== 'local') throw new Error(`--pod-network ${podNetwork} needs this host's address: pass --node-ip (the route to ${nodeConfig.server} goes through loopback)`)
      if (o.nodeExternalIp && !isIPv4(o.nodeExternalIp)) throw new Error(`--node-external-ip must be an IPv4 address, not ${JSON.stringify(o.nodeExternalIp)}`)
      if (o.nodeIp && !isIPv4(o.nodeIp)) throw new Error(`--node-ip must be an IPv4 address, not ${JSON.stringify(o.nodeIp)}`)
      const agent = new Agent({
        nodeName: node,
        nodeIP, externalIP: o.nodeExternalIp, podNetwork, loadBalancerSpeaker: o.lbSpeaker !== false,
        client: new ApiClient(nodeConfig),
        docker: new Dockerode(),
        logger,
        stateDir: agentDir,
        clusterCIDR: o.clusterCidr,
        kubeletPort: Number(o.kubeletPort),
        labels,
        capacity: keyValues(o.capacity, '--capacity') as Partial<Capacity>,
        heartbeatMs: Number(o.heartbeatMs),
        endpointWithdrawalTimeoutMs: wholeNumber('--endpoint-withdrawal-timeout-ms', o.endpointWithdrawalTimeoutMs, 0, 600_000),
        serviceProxy: { backend: serviceProxyBackend(o.serviceProxy) },
        networkPolicy: o.networkPolicy !== false,
        containerLogs,
        podLogRetentionMs,
        ingress: ingressOptions(o, labels, agentDir, ingressConfig),
      })
      let stopping = false
      const stop = async (sig: string) => {
        if (stopping) return
        stopping = true
        logger.info({ signal: sig }, 'stopping')
        await agent.stop({ removePods: !!o.removePodsOnExit })
        process.exit(0)
      }
      process.on('SIGTERM', () => void stop('SIGTERM'))
      process.on('SIGINT', () => void stop('SIGINT'))
      // `skiff down` removed the state (the cluster is gone): stop at once and change nothing more on this host.
      // Compared by inode and birth time: the pod sync may re-create a pod's volume folder under a removed state folder
      // before this check runs (found by a test run), and a re-created folder is not this cluster's.
      const inode = (): string | undefined => {
        const st = statSync(agentDir, { throwIfNoEntry: false })
        return st && `${st.ino}:${st.birthtimeMs}` // an inode number can be reused at once; birth time is 0 where unknown
      }
      let known = inode()
      setInterval(() => {
        const now = inode()
        if (known === undefined) known = now // made by the agent's own start
        if (now !== undefined && now === known) return
        logger.warn({ agentDir }, 'the agent state folder is gone (the cluster was removed): exiting without touching the host')
        process.exit(0)
      }, 2_000).unref()
      try {
        await agent.start()
      } catch (e) {
        if (e instanceof ApiClientError && e.status === 401) throw credentialRefused({ nodeName: node, agentDir, source })
        throw e
      }
    })
}
