// The contract between the pure compiler (compile.ts), the nft renderer
// (render.ts) and the effectful enforcer (enforcer.ts): one node's desired
// NetworkPolicy state as plain data.

export type L4 = 'tcp' | 'udp' | 'sctp'

/** A protocol and optionally one port or an inclusive port range; no port: every port of the protocol. */
export interface PortMatch {
  protocol: L4
  port?: number
  endPort?: number
}

/** The remote end of a connection: pod addresses, or a CIDR minus its holes. */
export type PeerMatch = { ips: string[] } | { cidr: string; except: string[] }

/**
 * One allowed (peers, ports) combination. A missing `peers` matches every
 * address, a missing `ports` every protocol and port. An Allow whose peer
 * list resolved to no address is never emitted (it would allow nothing).
 */
export interface Allow {
  peers?: PeerMatch
  ports?: PortMatch[]
  /** The policy it came from (`ns/name`), for comments and the debug text. */
  policy: string
}

/** The rules of one isolated pod of this node in one direction: allowed when any Allow matches, else dropped. */
export interface PodRules {
  /** `namespace/name` */
  pod: string
  ip: string
  /** The nft chain (stable: a hash of direction and pod key). */
  chain: string
  allows: Allow[]
}

export interface PolicyTable {
  node: string
  /** Addresses of this node: traffic from them to its pods is always allowed (kubelet probes, Kubernetes' "local node" rule). */
  nodeIPs: string[]
  /** Local pods isolated for ingress (some policy selects them with Ingress in policyTypes). */
  ingress: PodRules[]
  /** Local pods isolated for egress. */
  egress: PodRules[]
  /** Policies seen, and the rules the table holds (metrics). */
  policies: number
}

/** A packet as the tests trace it (first packet of a new connection). */
export interface Packet {
  src: string
  dst: string
  protocol: L4
  port: number
}
