// Which nodes are alive, judged from their heartbeat Leases
// (kube-node-lease/<node>) by THIS speaker's clock: a node is alive while
// its Lease's spec.renewTime was seen to change within deadlineMs. The
// writer's clock is never compared with ours (hosts' clocks may disagree);
// only the moment we observed a change counts, as the Kubernetes node
// lifecycle controller does with its probe timestamps.
//
// Rules, all in stepLiveness (pure, table-tested):
//  - start-up grace: a Lease seen for the first time counts as just renewed,
//    so a starting speaker gives every node deadlineMs before judging it;
//  - control plane down: when no Lease at all (our own included) changed
//    within deadlineMs, the apiserver (or our watch of it) is what stopped,
//    not every node at once. The verdict freezes: the alive set stays what it
//    was, so an outage never moves or drops an address;
//  - thaw: when changes are seen again, the nodes that were alive when the
//    freeze began get a fresh deadline from that moment (their renewals
//    could not reach the apiserver either), while nodes already dead before
//    it stay dead until they renew. Kubernetes' node lifecycle controller
//    resets its probe timestamps the same way when it leaves full disruption.

/** What the judgement needs of one node Lease. */
export interface LeaseView {
  /** The Lease's name: the node's name. */
  node: string
  /** spec.renewTime as written (any string; only a change matters). */
  renewTime: string
}

/** One Lease as this speaker last saw it. */
export interface LeaseSeen {
  renewTime: string
  /** Our clock (ms) when renewTime was last seen to change, or first seen. */
  observedAtMs: number
}

export interface LivenessState {
  seen: ReadonlyMap<string, LeaseSeen>
  alive: ReadonlySet<string>
  /** true while no Lease changed within the deadline (control plane taken as down). */
  frozen: boolean
  /** When the current freeze began (our clock), while frozen. */
  frozenSinceMs?: number
}

export interface LivenessInput {
  leases: readonly LeaseView[]
  nowMs: number
  deadlineMs: number
}

/** The Lease views of node Lease objects (the name is the node). */
export function leaseViews(leases: ReadonlyArray<{ metadata: { name?: string }; spec?: any }>): LeaseView[] {
  return leases.flatMap((l) => (l.metadata.name ? [{ node: l.metadata.name, renewTime: String(l.spec?.renewTime ?? '') }] : []))
}

/** The next state from the previous one (undefined at start) and the Leases as they are now. */
export function stepLiveness(prev: LivenessState | undefined, input: LivenessInput): LivenessState {
  const { nowMs, deadlineMs } = input
  const seen = new Map<string, LeaseSeen>()
  for (const l of input.leases) {
    const before = prev?.seen.get(l.node)
    seen.set(l.node, before && before.renewTime === l.renewTime ? before : { renewTime: l.renewTime, observedAtMs: nowMs })
  }
  let latest = -Infinity
  for (const s of seen.values()) latest = Math.max(latest, s.observedAtMs)
  const silent = seen.size > 0 && nowMs - latest > deadlineMs
  if (silent && prev) {
    return { seen, alive: prev.alive, frozen: true, frozenSinceMs: prev.frozen ? prev.frozenSinceMs : nowMs }
  }
  if (prev?.frozen) {
    // Thaw: the nodes alive when the freeze began start a fresh deadline now.
    for (const [node, s] of seen) if (prev.alive.has(node) && s.observedAtMs < nowMs) seen.set(node, { ...s, observedAtMs: nowMs })
  }
  const alive = new Set<string>()
  for (const [node, s] of seen) if (nowMs - s.observedAtMs <= deadlineMs) alive.add(node)
  return { seen, alive, frozen: false }
}
