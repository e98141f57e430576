// The node heartbeat: the Lease kube-node-lease/<node> renewed every
// heartbeatMs (what the node lifecycle controller watches), and the Node
// status refreshed when it changed or once a minute (so a node marked
// Unknown while the agent was away turns Ready again).

import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import type { Logger } from '../lib/log.ts'
/** The node Lease annotation carrying the revision this node's service proxy has in effect (../dataplane/applied-revision.ts). */
export { proxyAppliedAnnotation } from '../controlplane/api/routing-applied.ts'

const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const nodesInfo = lookupResource('', 'v1', 'nodes')!
export const leaseNamespace = 'kube-node-lease'
export const leaseDurationSeconds = 40

/** Lease times are MicroTime: microseconds and Z. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

export function buildLease(nodeName: string, nodeUid: string | undefined, now: number): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: nodeName,
      namespace: leaseNamespace,
      ...(nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }] } : {}),
    },
    spec: { holderIdentity: nodeName, leaseDurationSeconds, renewTime: microTime(now) },
  }
}


/**
 * Move the Lease's renewTime to now (and set `annotations`), creating the
 * Lease when it is missing. One merge patch: no read first, and no conflict
 * with another writer of the same Lease. A new Lease is owned by the Node as
 * it is now (read at creation, as the kubelet's lease controller does): after
 * `kubectl delete node` the agent's Lease has no owner, so the garbage
 * collector leaves it alone instead of deleting it at every renewal because
 * it names the deleted Node's uid.
 */
export async function renewLease(client: ApiClient, nodeName: string, annotations: Record<string, string> = {}): Promise<void> {
  const now = Date.now()
  const patch = { metadata: Object.keys(annotations).length ? { annotations } : {}, spec: { holderIdentity: nodeName, leaseDurationSeconds, renewTime: microTime(now) } }
  try {
    await client.patch(leasesInfo, leaseNamespace, nodeName, patch, 'application/merge-patch+json')
    return
  } catch (e) {
    if (!(e instanceof ApiClientError && e.status === 404)) throw e
  }
  const node = await client.get(nodesInfo, undefined, nodeName).catch((e) => {
    if (e instanceof ApiClientError && e.status === 404) return undefined
    throw e
  })
  const lease = buildLease(nodeName, node?.metadata.uid, now)
  if (Object.keys(annotations).length) lease.metadata.annotations = annotations
  try {
    await client.create(leasesInfo, leaseNamespace, lease)
  } catch (e) {
    // Created meanwhile (a kick and a tick crossing): renewed either way at the next beat.
    if (!(e instanceof ApiClientError && e.status === 409)) throw e
  }
}

export class Heartbeat {
  #timer?: NodeJS.Timeout
  #running = false
  #again = false
  #o: { intervalMs: number; logger: Logger; beat: () => Promise<void>; kick?: () => Promise<void> }

  /** beat: the periodic work; kick: the short write kick() asks for (default: beat). */
  constructor(opts: { intervalMs: number; logger: Logger; beat: () => Promise<void>; kick?: () => Promise<void> }) {
    this.#o = opts
  }

  /** Beat once now (errors propagate), then every intervalMs (errors logged). */
  async start(): Promise<void> {
    await this.#o.beat()
    this.#timer = setInterval(() => void this.#run(this.#o.beat), this.#o.intervalMs)
    this.#timer.unref()
  }

  /** Write now (e.g. a new applied revision), after the write in flight if there is one. */
  kick(): void {
    if (!this.#timer) return
    if (this.#running) this.#again = true
    else void this.#run(this.#o.kick ?? this.#o.beat)
  }

  async #run(fn: () => Promise<void>): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      await fn()
    } catch (e) {
      this.#o.logger.warn({ err: (e as Error).message }, 'node heartbeat failed')
    } finally {
      this.#running = false
    }
    if (this.#again && this.#timer) {
      this.#again = false
      void this.#run(this.#o.kick ?? this.#o.beat)
    }
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
