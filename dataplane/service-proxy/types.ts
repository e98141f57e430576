// The service-proxy contract: one pure, whole desired table per node, built
// from Services, EndpointSlices and the node (buildRoutingTable in table.ts),
// and backends that make the kernel (nftables) or Node.js listeners
// (userspace) behave exactly as the table says. Both backends pass one
// conformance suite, so the table is the specification.
//
// All agents of a local cluster share one host network namespace, so every
// rule a node owns is scoped to that node: its pods' traffic (source in the
// node's podCIDR), its own addresses (NodePorts, health checks), and traffic
// the host itself sends. Tables of different nodes never contradict each
// other for the same packet.

export type Protocol = 'TCP' | 'UDP' | 'SCTP'

export interface Endpoint {
  ip: string
  port: number
  /** The node the endpoint's pod runs on. */
  nodeName?: string
  ready: boolean
  serving: boolean
  terminating: boolean
}

/** One Service port: everything needed to route its traffic. */
export interface ServicePort {
  /** `namespace/name:portName` (portName may be empty), for rules, metrics and the debug table. */
  id: string
  namespace: string
  service: string
  portName: string
  protocol: Protocol
  clusterIP?: string // absent for headless / ExternalName
  port: number
  nodePort?: number
  loadBalancerIPs: string[]
  externalIPs: string[]
  /** Endpoints to use from anywhere (Cluster policy): ready ones, else serving-terminating ones. */
  clusterEndpoints: Endpoint[]
  /** Endpoints on this node, for externalTrafficPolicy / internalTrafficPolicy Local. */
  localEndpoints: Endpoint[]
  externalTrafficPolicy: 'Cluster' | 'Local'
  internalTrafficPolicy: 'Cluster' | 'Local'
  /** ClientIP affinity timeout in seconds, or 0 for none. */
  affinitySeconds: number
  /** LoadBalancer + externalTrafficPolicy Local: 200 where local endpoints exist, 503 elsewhere. */
  healthCheckNodePort?: number
}

export interface NodeView {
  name: string
  /** The node's addresses (InternalIP/ExternalIP): NodePorts answer here. */
  addresses: string[]
  podCIDR: string
  clusterCIDR: string
  /** This node's cluster DNS server: its pods' (and the host's) queries to `ip`:53 go to `target`:`port`. */
  dns?: { ip: string; target: string; port: number }
}

export interface RoutingTable {
  node: NodeView
  ports: ServicePort[]
  /** Monotonic per process; every apply reports the generation it made real. */
  generation: number
}

/** What a backend makes real. Contract: apply() is atomic (all of the table or nothing) and idempotent. */
export interface Backend {
  readonly name: 'nftables' | 'userspace'
  /** Make the table real. A failure leaves the previous state in place. */
  apply(table: RoutingTable): Promise<{ rules: number }>
  /** Remove everything this backend made for this node. */
  cleanup(): Promise<void>
  /** Release processes and handles, leaving what is applied in place (the proxier stops). */
  close?(): void
}
