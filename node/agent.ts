// The node agent (kubelet): registers its Node, heartbeats through a Lease,
// waits for the controller manager to give the Node a podCIDR, sets up the
// routes to other hosts' pods (pod-network/: host-gw or vxlan) and the node's
// pod network on Docker (its MTU comes from the former), publishes the node's
// addresses, starts the kubelet server (pods/log, exec; mutual TLS) on the
// InternalIP, the cluster DNS and the service proxy, runs the pods bound to
// the node (pods/sync.ts), on a node of an ingress pool that class's ingress
// controller (started late, stopped first so it drains), and last the
// LoadBalancer speaker. Without a nodeIP (several agents on one Engine) the
// network's gateway is the InternalIP, so it exists only once the network does.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type Dockerode from 'dockerode'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import type { Logger } from '../lib/log.ts'
import type { Registry } from '../lib/metrics.ts'
import { parseQuantity } from '../controlplane/api/validation.ts'
import { NodeEventRecorder } from './events.ts'
import { Heartbeat, proxyAppliedAnnotation, renewLease } from './heartbeat.ts'
import { KubeletServer } from './kubelet-server.ts'
import { loadOrRequestKubeletCert } from './kubelet-cert.ts'
import { createNodeMetrics, type NodeMetrics } from './metrics.ts'
import { ensureNodeNetwork, removeNodeNetwork, type NodeNetworkInfo } from './network.ts'
import { buildNodeStatus, detectCapacity, detectNodeInfo, nodeLabels, nodeStatusStale, type Capacity, type NodeFacts } from './node-object.ts'
import { ProbeManager } from './probes.ts'
import { EndpointWithdrawal } from './endpoint-withdrawal.ts'
import { ApiserverFollower } from './apiservers.ts'
import { StoreGuard } from './store-guard.ts'
import type { ClusterDns } from './pods/dns.ts'
import { PodSync } from './pods/sync.ts'
import { defaultBackoff, type BackoffConfig } from './pods/types.ts'
import { defaultLogRotation, type ContainerLogRotation } from './pods/container-config.ts'
import { VolumeManager } from './pods/volumes.ts'
import { LocalVolumes } from './local-volumes.ts'
import { PodLogStore } from './pod-log-store.ts'
import { defaultPodLogRetentionMs } from './pod-log-archive.ts'
// --- service proxy (dataplane/service-proxy) ---
import { NftablesBackend } from '../dataplane/service-proxy/nftables.ts'
import { ServiceProxier } from '../dataplane/service-proxy/proxier.ts'
import { NetworkPolicyEnforcer } from '../dataplane/network-policy/enforcer.ts'
import { createUserspaceBackend } from '../dataplane/service-proxy/userspace.ts'
import type { Backend } from '../dataplane/service-proxy/types.ts'
// --- end service proxy ---
import { ClusterDns as ClusterDnsServer } from '../dataplane/dns/server.ts'
import { PodNetwork } from './pod-network/pod-network.ts'
import { LoadBalancerSpeaker } from '../dataplane/lb-speaker/speaker.ts'
import { Informer } from '../controlplane/client/informer.ts'
import { defaultClusterDns } from './pods/dns.ts'
// --- ingress (dataplane/ingress) ---
import { IngressSupervisor, ingressPoolLabel } from '../dataplane/ingress/supervisor.ts'
import { acmeSupervisorHook } from '../dataplane/ingress/acme.ts'
import { ApiEventRecorder } from '../controlplane/controllers/informers.ts'
// --- end ingress ---

const nodesInfo = lookupResource('', 'v1', 'nodes')!

export interface AgentOptions {
  nodeName: string
  /** A client with the node's identity (user system:node:<name>). */
  client: ApiClient
  docker: Dockerode
  logger: Logger
  /** Where pod volumes live (emptyDir, configMap, secret, resolv.conf). */
  stateDir: string
  /** The whole pod network (the DOCKER-USER rules accept traffic within it). */
  clusterCIDR: string
  /** Extra Node labels (node roles, ingress pools). */
  labels?: Record<string, string>
  /**
   * The node's InternalIP: this host's address (from --node-ip or the route
   * to the server). Without it the node network's gateway stands in: several
   * agents sharing one Docker Engine on one machine (the in-process test
   * harness); such nodes have no pod routes and no LoadBalancer speaker.
   */
  nodeIP?: string
  /** The node's ExternalIP (--node-external-ip): NodePorts and the ingress answer there too. */
  externalIP?: string
  /** How pods reach pods on other hosts (default host-gw with a nodeIP, local without). */
  podNetwork?: 'host-gw' | 'vxlan' | 'local'
  /** Answer LoadBalancer IPs on the LAN when elected (default: on with a nodeIP). */
  loadBalancerSpeaker?: boolean | { deadlineMs?: number }
  heartbeatMs?: number
  /**
   * How long a terminating pod waits, before SIGTERM, for every serving node
   * to stop routing to it (default 10 s, within its grace period; 0: no wait).
   */
  endpointWithdrawalTimeoutMs?: number
  /** Override detected capacity (tests, simulated nodes). */
  capacity?: Partial<Capacity>
  /** Port of the kubelet server on the InternalIP (default 10250; 0: any free port). */
  kubeletPort?: number
  backoff?: Partial<BackoffConfig>
  /** Container log rotation by size (default: the kubelet's containerLogMaxSize 10Mi, containerLogMaxFiles 5). */
  containerLogs?: ContainerLogRotation
  /** How long the logs of deleted and replaced containers stay readable (default 24 h; 0: not kept). */
  podLogRetentionMs?: number
  /** How often archived logs past the retention are removed (default: a tenth of it, 1 s to 10 min). */
  podLogPruneIntervalMs?: number
  podResyncMs?: number
  pauseImage?: string
  clusterDns?: ClusterDns
  metricsRegistry?: Registry
  /** Port of the node's cluster DNS on its InternalIP (default 53; 0: no DNS server). */
  dnsPort?: number
  /** The node's service proxy (default nftables; 'none' runs none). */
  serviceProxy?: { backend: 'nftables' | 'userspace' | 'none' }
  /** NetworkPolicy enforcement in the node's nftables table inet skiff-np-<h> (default true; dataplane/network-policy). */
  networkPolicy?: boolean
  /**
   * The ingress controller, run when `labels` put the node in a pool
   * (skiff.dev/ingress-pool: <class>). `client` has the class's identity
   * (user skiff:ingress:<class>); ports default to 80/443 on the InternalIP.
   */
  ingress?: AgentIngressOptions
}

export interface AgentIngressOptions {
  client: ApiClient
  httpPort?: number
  httpsPort?: number
  /** Worker processes (default: one per core). */
  workers?: number
  /** /healthz, /readyz, /metrics on the InternalIP (default 10254; 0: a free port). */
  statusPort?: number
  drainMs?: number
  /** Readiness fails this long before the listeners close (default 2000). */
  lameDuckMs?: number
  /** Log level of the worker processes (access logs are 'info'); default: inherited SKIFF_LOG_LEVEL. */
  workerLogLevel?: string
  /**
   * ACME for the class (used only when its IngressClass says skiff.dev/issuer: acme
   * and names a directory): extra trust for the directory's own TLS, and how
   * often certificates are re-checked for renewal (default 10 min).
   */
  acme?: { caBundlePem?: string; renewCheckMs?: number; challengeDelayMs?: number; backoffBaseMs?: number }
}

export class Agent {
  readonly metrics: NodeMetrics
  #o: AgentOptions
  #log: Logger
  #stopped = false
  #heartbeat?: Heartbeat
  #facts?: NodeFacts
  #network?: NodeNetworkInfo
  #kubelet?: KubeletServer
  #dns?: ClusterDnsServer
  #pods?: PodSync
  #localVolumes?: LocalVolumes
  #podLogs?: PodLogStore
  #withdrawal?: EndpointWithdrawal
  #apiservers?: ApiserverFollower
  #storeGuard?: StoreGuard
  #proxy?: ServiceProxier
  #netpol?: NetworkPolicyEnforcer
  #ingress?: IngressSupervisor
  #podNet?: PodNetwork
  #nodes?: Informer
  #speaker?: LoadBalancerSpeaker
  /** performance.now() of the last status write. */
  #lastStatusMs = 0

  constructor(opts: AgentOptions) {
    this.#o = opts
    this.#log = opts.logger.child({ component: 'agent', node: opts.nodeName })
    this.metrics = createNodeMetrics({
      registry: opts.metricsRegistry,
      runningPods: () => [...(this.#pods?.worker.phases.values() ?? [])].filter((p) => p === 'Running').length,
    })
  }

  get network(): NodeNetworkInfo | undefined {
    return this.#network
  }

  get podSync(): PodSync | undefined {
    return this.#pods
  }

  /** The ingress supervisor, when the node is in an ingress pool (after start). */
  get ingress(): IngressSupervisor | undefined {
    return this.#ingress
  }

  /** The service proxier (its debugText() is the debug table), once started. */
  get serviceProxy(): ServiceProxier | undefined {
    return this.#proxy
  }

  /** The NetworkPolicy enforcer, once started (unless networkPolicy: false). */
  get networkPolicy(): NetworkPolicyEnforcer | undefined {
    return this.#netpol
  }

  /** The InternalIP, once the agent started. */
  get internalIP(): string | undefined {
    return this.#facts?.internalIP
  }

  get podNetwork(): PodNetwork | undefined {
    return this.#podNet
  }

  get speaker(): LoadBalancerSpeaker | undefined {
    return this.#speaker
  }

  async start(): Promise<void> {
    const o = this.#o
    this.#stopped = false
    await mkdir(o.stateDir, { recursive: true })
    const version = (await o.docker.version()).Version
    this.#facts = { nodeName: o.nodeName, capacity: detectCapacity(o.capacity), nodeInfo: detectNodeInfo(version) }
    await this.#register()
    this.#heartbeat = new Heartbeat({ intervalMs: o.heartbeatMs ?? 10_000, logger: this.#log, beat: () => this.#beat(), kick: () => this.#renewLease() })
    await this.#heartbeat.start()
    this.#storeGuard = new StoreGuard({ nodeName: o.nodeName, logger: this.#log.child({ component: 'store-guard' }) })
    this.#apiservers = new ApiserverFollower({
      clients: [o.client, ...(o.ingress ? [o.ingress.client] : [])], agentDir: o.stateDir, logger: this.#log,
      onStoreEndpoints: (eps) => void this.#storeGuard!.setEndpoints(eps),
    })
    await this.#apiservers.start()
    const podCIDR = await this.#waitForPodCIDR()
    await this.#storeGuard.setPodCIDR(podCIDR)
    const mtu = await this.#startPodNetwork(podCIDR)
    this.#network = await ensureNodeNetwork({ docker: o.docker, nodeName: o.nodeName, podCIDR, clusterCIDR: o.clusterCIDR, logger: this.#log, mtu })
    const ip = o.nodeIP ?? this.#network.gateway
    this.#facts.internalIP = ip
    this.#facts.externalIP = o.externalIP
    await this.#refreshStatus(true)
    const addresses = [ip, ...(o.externalIP ? [o.externalIP] : [])]
    await this.#startPodLogs()
    const tls = await loadOrRequestKubeletCert({ client: o.client, stateDir: o.stateDir, nodeName: o.nodeName, ipAddresses: addresses, logger: this.#log })
    this.#kubelet = new KubeletServer({
      docker: o.docker, nodeName: o.nodeName, host: ip, port: o.kubeletPort ?? 10250, tls, logger: o.logger,
      podLogs: this.#podLogs,
      // The node's ingress controller's metrics too, so the apiserver (the dashboard's traffic map) reads them where it reads the kubelet's.
      metrics: async () => ({ contentType: this.metrics.registry.contentType, text: `${await this.metrics.registry.metrics()}${this.#ingress ? `\n${(await this.#ingress.metricsText().catch(() => '')).trim()}\n` : ''}` }),
      debug: {
        'service-proxy': () => this.#proxy?.debugText() ?? 'no service proxy on this node\n',
        ingress: () => this.#ingress?.debugText() ?? 'no ingress controller on this node\n',
        'pod-network': () => this.#podNet?.debugText() ?? 'no pod routes on this node (all nodes share one Engine)\n',
        'lb-speaker': () => this.#speaker?.debugText() ?? 'no LoadBalancer speaker on this node\n',
        'network-policy': () => this.#netpol?.debugText() ?? 'no NetworkPolicy enforcement on this node\n',
      },
    })
    const { port } = await this.#kubelet.start()
    this.#facts.kubeletPort = port
    await this.#refreshStatus(true)
    await this.#followNodes()
    await this.#startDns()
    await this.#startServiceProxy(podCIDR)
    await this.#startNetworkPolicy()
    await this.#startLocalVolumes()
    await this.#startPods()
    if (this.#facts.notReady) {
      this.#facts.notReady = undefined
      await this.#refreshStatus(true)
      this.#log.info('containers of pods that are gone were removed: the node is Ready')
    }
    await this.#startIngress()
    await this.#startSpeaker()
    this.#log.info({ podCIDR, internalIP: ip, externalIP: o.externalIP, podNetwork: this.#podNetworkMode, kubeletPort: port }, 'node agent ready')
  }

  get #podNetworkMode(): 'host-gw' | 'vxlan' | 'local' {
    return this.#o.podNetwork ?? (this.#o.nodeIP ? 'host-gw' : 'local')
  }

  /** Routes to the other hosts' pods (host-gw or vxlan); returns the MTU pods must use. */
  async #startPodNetwork(podCIDR: string): Promise<number | undefined> {
    const o = this.#o
    const mode = this.#podNetworkMode
    if (mode === 'local') return undefined
    if (!o.nodeIP) throw new Error(`SKIFF_ERR_NODE_NO_IP: --pod-network ${mode} needs the node's InternalIP (--node-ip)`)
    this.#podNet = new PodNetwork({ mode, nodeName: o.nodeName, nodeIP: o.nodeIP, podCIDR, clusterCIDR: o.clusterCIDR, stateDir: o.stateDir, logger: this.#log.child({ component: 'pod-network' }), registry: this.metrics.registry })
    const started = await this.#podNet.start()
    await o.client.patch(nodesInfo, undefined, o.nodeName, { metadata: { annotations: started.annotations } }, 'application/merge-patch+json')
    return started.mtu
  }

  /** Every Node change reaches the pod network (peers' routes follow their Ready condition). */
  async #followNodes(): Promise<void> {
    const net = this.#podNet
    if (!net) return
    const nodes = new Informer({ client: this.#o.client, info: nodesInfo, logger: this.#log, resyncMs: 30_000 })
    let pending = false
    const update = () => {
      if (pending) return
      pending = true
      setTimeout(() => {
        pending = false
        void net.update(nodes.list()).catch((e) => this.#log.warn({ err: (e as Error).message }, 'pod network update failed'))
      }, 50)
    }
    nodes.addHandlers({ onAdd: update, onUpdate: (a, b) => a !== b && update(), onDelete: update })
    this.#nodes = nodes
    await nodes.start()
    await net.update(nodes.list())
  }

  /** The LoadBalancer speaker: answers the LoadBalancer IPs this node is elected for on its LAN interface. */
  async #startSpeaker(): Promise<void> {
    const o = this.#o
    const want = o.loadBalancerSpeaker ?? !!o.nodeIP
    if (!want || !o.nodeIP) return
    // A peer is dead after three missed heartbeats (ours: the cluster's agents share the setting), never under 3 s.
    const deadlineMs = (typeof want === 'object' ? want.deadlineMs : undefined) ?? Math.max(3_000, 3 * (o.heartbeatMs ?? 10_000))
    this.#speaker = new LoadBalancerSpeaker({ client: o.client, nodeName: o.nodeName, stateDir: join(o.stateDir, 'lb-speaker'), logger: this.#log.child({ component: 'lb-speaker' }), registry: this.metrics.registry, deadlineMs })
    await this.#speaker.start()
  }

  /** Persistent volumes on this node: its local volume dir and reserved paths published, claims resolved, deleted volumes' data removed. */
  async #startLocalVolumes(): Promise<void> {
    const o = this.#o
    const engineSocket = (o.docker as unknown as { modem?: { socketPath?: unknown } }).modem?.socketPath
    this.#localVolumes = new LocalVolumes({ nodeName: o.nodeName, client: o.client, stateDir: o.stateDir, engineSocket: typeof engineSocket === 'string' ? engineSocket : undefined, logger: this.#log })
    await this.#localVolumes.start()
  }

  /** The archive of removed containers' logs (pod-log-store.ts), served by the kubelet server under /podLogs/. */
  async #startPodLogs(): Promise<void> {
    const o = this.#o
    const retentionMs = o.podLogRetentionMs ?? defaultPodLogRetentionMs
    if (retentionMs <= 0) return
    this.#podLogs = new PodLogStore({
      docker: o.docker, stateDir: o.stateDir, nodeName: o.nodeName, retentionMs, pruneIntervalMs: o.podLogPruneIntervalMs,
      maxBytes: (o.containerLogs ?? defaultLogRotation).maxSizeBytes, logger: this.#log,
      labelsOf: (uid) => this.#pods?.worker.podLabels(uid),
    })
    await this.#podLogs.start()
  }

  async #startPods(): Promise<void> {
    const o = this.#o
    const volumes = new VolumeManager({ stateDir: o.stateDir, claims: this.#localVolumes })
    const cap = this.#facts!.capacity
    if (o.endpointWithdrawalTimeoutMs !== 0) {
      this.#withdrawal = new EndpointWithdrawal({
        client: o.client, logger: this.#log.child({ component: 'endpoint-withdrawal' }), timeoutMs: o.endpointWithdrawalTimeoutMs, registry: this.metrics.registry,
        nodeName: o.nodeName, localApplied: () => this.#proxy?.appliedRevision,
      })
      await this.#withdrawal.start()
    }
    let sync: PodSync | undefined
    const events = new NodeEventRecorder({ client: o.client, logger: this.#log, nodeName: o.nodeName })
    const probes = new ProbeManager({ runtime: { exec: (id, cmd, ms) => sync!.runtime.exec(id, cmd, ms) }, logger: this.#log, onChange: (key) => sync?.enqueue(key), events })
    sync = new PodSync({
      nodeName: o.nodeName, client: o.client, docker: o.docker, logger: this.#log, metrics: this.metrics, volumes, probes,
      events,
      network: this.#network!.name, hostIP: this.#facts!.internalIP!,
      backoff: { ...defaultBackoff, ...o.backoff },
      containerLogs: o.containerLogs,
      allocatable: { cpu: parseQuantity(cap.cpu) ?? 1, memory: parseQuantity(cap.memory) ?? 0 },
      clusterDns: o.clusterDns, pauseImage: o.pauseImage, resyncMs: o.podResyncMs,
      withdrawal: this.#withdrawal,
      podLogs: this.#podLogs,
      services: (ns) => this.#proxy?.services(ns),
    })
    this.#pods = sync
    await sync.start()
  }

  /** The cluster DNS of this node on its InternalIP; the service proxy sends its pods' 10.96.0.10:53 here. */
  async #startDns(): Promise<void> {
    const o = this.#o
    if (o.dnsPort === 0) return
    const cluster = o.clusterDns ?? defaultClusterDns
    this.#dns = new ClusterDnsServer({
      client: o.client, logger: this.#log.child({ component: 'dns' }),
      listen: [{ host: this.#facts!.internalIP!, port: o.dnsPort ?? 53 }],
      zone: cluster.clusterDomain, dnsIP: cluster.clusterDNS,
      allowRecursion: [o.clusterCIDR], metricsRegistry: this.metrics.registry,
    })
    await this.#dns.start()
  }

  // --- service proxy ---
  async #startServiceProxy(podCIDR: string): Promise<void> {
    const o = this.#o
    const kind = o.serviceProxy?.backend ?? 'nftables'
    if (kind === 'none') return
    const backend: Backend = kind === 'userspace'
      ? createUserspaceBackend({ owner: o.nodeName, log: this.#log, registry: this.metrics.registry })
      : new NftablesBackend({ nodeName: o.nodeName, logger: this.#log })
    const ip = this.#facts!.internalIP!
    const addresses = [ip, ...(o.externalIP ? [o.externalIP] : [])]
    this.#proxy = new ServiceProxier({
      client: o.client, backend, logger: this.#log.child({ component: 'service-proxy' }), registry: this.metrics.registry,
      node: () => ({
        name: o.nodeName, addresses, podCIDR, clusterCIDR: o.clusterCIDR,
        ...(this.#dns ? { dns: { ip: (o.clusterDns ?? defaultClusterDns).clusterDNS, target: ip, port: o.dnsPort ?? 53 } } : {}),
      }),
      onApplied: () => this.#heartbeat?.kick(),
    })
    await this.#proxy.start()
  }
  // --- end service proxy ---

  // --- network policy ---
  /** Before the pods start, so a selected pod is isolated from its first packet. */
  async #startNetworkPolicy(): Promise<void> {
    const o = this.#o
    if (o.networkPolicy === false) return
    this.#netpol = new NetworkPolicyEnforcer({
      client: o.client, nodeName: o.nodeName, nodeIPs: [this.#facts!.internalIP!, ...(o.externalIP ? [o.externalIP] : [])],
      logger: this.#log.child({ component: 'network-policy' }), registry: this.metrics.registry,
    })
    await this.#netpol.start()
  }
  // --- end network policy ---

  // --- ingress ---
  /** The ingress controller of the node's pool class, on the InternalIP; the workers proxy straight to pod IPs. */
  async #startIngress(): Promise<void> {
    const o = this.#o
    const className = o.labels?.[ingressPoolLabel]
    if (!className) return
    if (!o.ingress) {
      this.#log.error({ class: className }, `the node is in ingress pool ${className} but has no ingress identity (skiff:ingress:${className}); not serving it`)
      return
    }
    const i = o.ingress
    this.#ingress = new IngressSupervisor({
      client: i.client, className, nodeName: o.nodeName, address: this.#facts!.internalIP!, externalAddress: o.externalIP, logger: this.#log,
      httpPort: i.httpPort, httpsPort: i.httpsPort, workers: i.workers, statusPort: i.statusPort, drainMs: i.drainMs, lameDuckMs: i.lameDuckMs, workerLogLevel: i.workerLogLevel,
      acme: acmeSupervisorHook({ ...i.acme, events: new ApiEventRecorder({ client: i.client, logger: this.#log, component: `skiff-ingress-${className}` }) }),
    })
    await this.#ingress.start()
  }
  // --- end ingress ---

  /** Stop the agent. Pods keep running (adopted at the next start) unless removePods. */
  async stop(opts: { removePods?: boolean } = {}): Promise<void> {
    this.#stopped = true
    // First, so the ingress drains (readiness fails, in-flight requests finish) while everything else still runs.
    await this.#ingress?.stop().catch((e) => this.#log.warn({ err: (e as Error).message }, 'ingress stop failed'))
    // A plain stop leaves the announced addresses (they expire unless renewed); removing the node hands them over at once.
    await this.#speaker?.stop({ withdraw: opts.removePods }).catch((e) => this.#log.warn({ err: (e as Error).message }, 'lb speaker stop failed'))
    this.#heartbeat?.stop()
    this.#apiservers?.stop()
    this.#nodes?.stop()
    await this.#pods?.stop({ removePods: opts.removePods })
    this.#localVolumes?.stop()
    this.#withdrawal?.stop()
    await this.#kubelet?.stop()
    this.#podLogs?.stop()
    await this.#dns?.stop()
    // Rules stay (established service traffic keeps flowing) unless everything goes.
    await this.#proxy?.stop({ cleanup: opts.removePods }).catch((e) => this.#log.warn({ err: (e as Error).message }, 'service proxy cleanup failed'))
    await this.#netpol?.stop({ cleanup: opts.removePods }).catch((e) => this.#log.warn({ err: (e as Error).message }, 'network policy cleanup failed'))
    // Routes stay too (pods keep talking across an agent restart) unless everything goes.
    await this.#podNet?.stop({ cleanup: opts.removePods }).catch((e) => this.#log.warn({ err: (e as Error).message }, 'pod network stop failed'))
    if (opts.removePods) await removeNodeNetwork({ docker: this.#o.docker, nodeName: this.#o.nodeName, logger: this.#log })
    if (opts.removePods) await this.#storeGuard?.remove()
  }

  async #register(): Promise<void> {
    const o = this.#o
    const labels = nodeLabels(o.nodeName, o.labels)
    let node: KubeObject
    try {
      node = await o.client.create(nodesInfo, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: o.nodeName, labels }, spec: {} })
      this.#log.info('registered the node')
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 409)) throw e
      node = await o.client.patch(nodesInfo, undefined, o.nodeName, { metadata: { labels } }, 'application/merge-patch+json')
    }
    // Back after the control plane declared it NotReady (a power-off, a partition): its pods may have been replaced
    // elsewhere meanwhile. Ready only once their containers are gone (#startPods), so no pod ever runs twice on a Ready node.
    const ready = (node.status?.conditions ?? []).find((c: any) => c?.type === 'Ready')
    if (ready && ready.status !== 'True') {
      this.#facts!.notReady = { reason: 'KubeletNotReady', message: 'node agent starting: removing the containers of pods that are no longer bound to this node' }
      this.#log.info({ was: ready.status }, 'the node was not Ready: it stays NotReady until containers of pods that are gone are removed')
    }
    await this.#refreshStatus(true, node)
  }

  async #beat(): Promise<void> {
    await this.#renewLease()
    await this.#refreshStatus(false)
  }

  /** The node Lease, with the revision the service proxy has in effect once it has one. */
  #renewLease(): Promise<void> {
    const applied = this.#proxy?.appliedRevision
    return renewLease(this.#o.client, this.#o.nodeName, applied ? { [proxyAppliedAnnotation]: String(applied) } : {})
  }

  /** Write the Node status when it changed, or at least once a minute. */
  async #refreshStatus(force: boolean, node?: KubeObject): Promise<KubeObject> {
    const current = node ?? (await this.#o.client.get(nodesInfo, undefined, this.#o.nodeName))
    const now = Date.now()
    const desired = buildNodeStatus(this.#facts!, current, now)
    // Our own write times on the monotonic clock: a wall clock stepped back must not hold status writes off by the step.
    const sinceLast = performance.now() - this.#lastStatusMs
    if (!force && !nodeStatusStale(current, desired, now, 60_000) && sinceLast < 60_000) return current
    if (!force && sinceLast < 1_000) return current
    this.#lastStatusMs = performance.now()
    return await this.#o.client.patch(nodesInfo, undefined, this.#o.nodeName, { status: desired }, 'application/merge-patch+json', 'status')
  }

  async #waitForPodCIDR(): Promise<string> {
    for (let i = 0; !this.#stopped; i++) {
      const node = await this.#o.client.get(nodesInfo, undefined, this.#o.nodeName)
      const cidr = node.spec?.podCIDR as string | undefined
      if (cidr) return cidr
      if (i % 20 === 0) this.#log.info('waiting for the controller manager to assign spec.podCIDR')
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** i)))
    }
    throw new Error('agent stopped while waiting for a podCIDR')
  }
}
