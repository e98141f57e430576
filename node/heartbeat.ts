// The node heartbeat: the Lease kube-node-lease/<node> renewed every
// heartbeatMs (what the node lifecycle controller watches), and the Node
// status refreshed when it changed or once a minute (so a node marked
// Unknown while the agent was away turns Ready again).

import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import type { Logger } from '../lib/log.ts'

const leasesInfo = lookupResource('coordination.k8s.io', 'v1', 'leases')!
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

/** Create the Lease or move its renewTime to now (guarded by resourceVersion). */
export async function renewLease(client: ApiClient, nodeName: string, nodeUid: string | undefined): Promise<void> {
  let current: KubeObject | undefined
  try {
    current = await client.get(leasesInfo, leaseNamespace, nodeName)
  } catch (e) {
    if (!(e instanceof ApiClientError && e.status === 404)) throw e
  }
  const now = Date.now()
  if (!current) {
    await client.create(leasesInfo, leaseNamespace, buildLease(nodeName, nodeUid, now))
    return
  }
  await client.update(leasesInfo, { ...current, spec: { ...current.spec, holderIdentity: nodeName, leaseDurationSeconds, renewTime: microTime(now) } })
}

export class Heartbeat {
  #timer?: NodeJS.Timeout
  #running = false
  #o: { intervalMs: number; logger: Logger; beat: () => Promise<void> }

  constructor(opts: { intervalMs: number; logger: Logger; beat: () => Promise<void> }) {
    this.#o = opts
  }

  /** Beat once now (errors propagate), then every intervalMs (errors logged). */
  async start(): Promise<void> {
    await this.#o.beat()
    this.#timer = setInterval(() => void this.#tick(), this.#o.intervalMs)
    this.#timer.unref()
  }

  async #tick(): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      await this.#o.beat()
    } catch (e) {
      this.#o.logger.warn({ err: (e as Error).message }, 'node heartbeat failed')
    } finally {
      this.#running = false
    }
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}
