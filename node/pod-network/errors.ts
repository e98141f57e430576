// The pod network's error catalogue (SKIFF_ERR_PODNET_<WHAT>). Each message
// says what to do. Problems with one peer (not on-link, a podCIDR conflict,
// a mode mismatch) are not thrown: they are reported in the status, logged
// and counted, and the other peers keep their routes.

import { CodedError } from '../../lib/errors.ts'

export const podNetworkErrorCodes = {
  /** Options checked once, in the constructor. */
  InvalidOption: 'SKIFF_ERR_PODNET_INVALID_OPTION',
  /** No interface of this host holds the node's InternalIP. */
  NodeIP: 'SKIFF_ERR_PODNET_NODE_IP',
  /** host-gw: a peer's InternalIP is not in a directly connected subnet. */
  NotOnLink: 'SKIFF_ERR_PODNET_NOT_ON_LINK',
  /** A peer's podCIDR overlaps this node's or another peer's, or lies outside the cluster CIDR. */
  PodCIDRConflict: 'SKIFF_ERR_PODNET_POD_CIDR_CONFLICT',
  /** Two nodes (or a peer and this node) share an InternalIP. */
  NodeIPConflict: 'SKIFF_ERR_PODNET_NODE_IP_CONFLICT',
  /** Two nodes (or a peer and this node) publish the same VTEP MAC, or a peer's is not a unicast MAC. */
  VtepMacConflict: 'SKIFF_ERR_PODNET_VTEP_MAC_CONFLICT',
  /** A peer publishes another pod network mode. */
  ModeMismatch: 'SKIFF_ERR_PODNET_MODE_MISMATCH',
  /** vxlan: TCP through the overlay to a peer gets no answer (UDP 8472 blocked, or the checksum offload bug). */
  OverlayTcp: 'SKIFF_ERR_PODNET_OVERLAY_TCP',
  /** A command (ip, bridge, nft, ethtool) failed. */
  Command: 'SKIFF_ERR_PODNET_COMMAND',
  /** The VTEP MAC file in the state dir is unreadable or holds no MAC. */
  VtepMac: 'SKIFF_ERR_PODNET_VTEP_MAC',
} as const

export type PodNetworkErrorReason = keyof typeof podNetworkErrorCodes

export class PodNetworkError extends CodedError<PodNetworkErrorReason> {
  constructor(reason: PodNetworkErrorReason, message: string, options?: { cause?: unknown }) {
    super({ name: 'PodNetworkError', codes: podNetworkErrorCodes, reason, message, prefix: true, cause: options?.cause })
  }
}
