// Which ingress nodes of a class are serving right now. Each supervisor keeps
// a Lease kube-system/ingress-<class>-node-<node> renewed while it serves,
// carrying its address, readiness and the snapshot generation its workers
// applied; it deletes the Lease the moment it starts draining. The status
// leader publishes only the addresses of fresh, ready Leases (on Ready
// Nodes), so a stopping or dead controller leaves status.loadBalancer within
// one renewal period instead of when its Node turns NotReady (40 s), and the
// applied revision (../applied-revision.ts) says which store revision its
// routes reflect: "applied on n/n nodes", and the wait of terminating pods.
//
// Freshness is judged by when this process last saw the Lease change, on its
// monotonic clock (like client-go's leader election), never by the writer's
// renewTime: a wall-clock step on either machine does not drop an address.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import { microTime } from '../../controlplane/controllers/leader.ts'
import type { Logger } from '../../lib/log.ts'
import { ingressAppliedAnnotation } from '../../controlplane/api/routing-applied.ts'

const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
export const presenceNamespace = 'kube-system'
export const presenceAnnotations = {
  address: 'ingress.skiff.dev/address',
  ready: 'ingress.skiff.dev/ready',
  generation: 'ingress.skiff.dev/applied-generation',
  revision: ingressAppliedAnnotation,
} as const

export const presencePrefix = (className: string): string => `ingress-${className}-node-`
export const presenceLeaseName = (className: string, nodeName: string): string => `${presencePrefix(className)}${nodeName}`

export interface PresenceState {
  address: string
  ready: boolean
  generation: number
  /** The store revision the workers route by (../applied-revision.ts); 0 before the first. */
  appliedRevision?: number
}

/** The Lease this node writes (pure). */
export function presenceLease(o: { className: string; nodeName: string; durationSeconds: number; nowMs: number; state: PresenceState }): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: presenceLeaseName(o.className, o.nodeName),
      namespace: presenceNamespace,
      annotations: {
        [presenceAnnotations.address]: o.state.address,
        [presenceAnnotations.ready]: String(o.state.ready),
        [presenceAnnotations.generation]: String(o.state.generation),
        ...(o.state.appliedRevision ? { [presenceAnnotations.revision]: String(o.state.appliedRevision) } : {}),
      },
    },
    spec: { holderIdentity: o.nodeName, leaseDurationSeconds: o.durationSeconds, renewTime: microTime(o.nowMs) },
  }
}

/**
 * Addresses of the class's ready presence Leases seen changed within their
 * duration (pure), and when the first of them expires (to look again then).
 */
export function presentAddresses(o: { className: string; leases: KubeObject[]; observedAtMs: (name: string) => number | undefined; nowMs: number }): { addresses: Set<string>; nextExpiryMs?: number } {
  const addresses = new Set<string>()
  let nextExpiryMs: number | undefined
  for (const l of o.leases) {
    const name = l.metadata?.name ?? ''
    if (!name.startsWith(presencePrefix(o.className))) continue
    const a = l.metadata?.annotations ?? {}
    const seen = o.observedAtMs(name)
    const expires = (seen ?? 0) + Number(l.spec?.leaseDurationSeconds ?? 15) * 1000
    if (a[presenceAnnotations.ready] !== 'true' || !a[presenceAnnotations.address] || seen === undefined || expires <= o.nowMs) continue
    addresses.add(a[presenceAnnotations.address])
    nextExpiryMs = nextExpiryMs === undefined ? expires : Math.min(nextExpiryMs, expires)
  }
  return { addresses, nextExpiryMs }
}

/** Keeps this node's presence Lease: written on every change of state and renewed periodically; deleted on withdraw. */
export class PresencePublisher {
  #o: { client: ApiClient; className: string; nodeName: string; logger: Logger; durationMs: number; renewMs: number; state: () => PresenceState }
  #timer?: NodeJS.Timeout
  #writing: Promise<void> = Promise.resolve()
  #withdrawn = false
  #queued = false

  constructor(o: { client: ApiClient; className: string; nodeName: string; logger: Logger; durationMs?: number; renewMs?: number; state: () => PresenceState }) {
    this.#o = { durationMs: 15_000, renewMs: 5_000, ...o }
  }

  start(): void {
    this.#withdrawn = false
    this.update()
    this.#timer = setInterval(() => this.update(), this.#o.renewMs)
    this.#timer.unref()
  }

  /** Write the current state now (serialised with other writes). */
  update(): Promise<void> {
    if (this.#withdrawn) return this.#writing
    // A write not yet begun reads the state when it begins: one is enough.
    if (this.#queued) return this.#writing
    this.#queued = true
    this.#writing = this.#writing.then(() => {
      this.#queued = false
      return this.#write()
    }).catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'presence lease write failed; retrying at the next renewal'))
    return this.#writing
  }

  /** Stop renewing and delete the Lease, so the status leader drops this address at once. */
  async withdraw(): Promise<void> {
    this.#withdrawn = true
    clearInterval(this.#timer)
    await this.#writing
    const name = presenceLeaseName(this.#o.className, this.#o.nodeName)
    await this.#o.client.delete(leases, presenceNamespace, name).catch((e) => {
      if (!(e instanceof ApiClientError && e.status === 404)) this.#o.logger.warn({ err: (e as Error).message }, 'presence lease delete failed; it expires by itself')
    })
  }

  async #write(): Promise<void> {
    if (this.#withdrawn) return
    const o = this.#o
    const desired = presenceLease({ className: o.className, nodeName: o.nodeName, durationSeconds: Math.ceil(o.durationMs / 1000), nowMs: Date.now(), state: o.state() })
    const name = desired.metadata.name!
    const current = await o.client.get(leases, presenceNamespace, name).catch((e) => {
      if (e instanceof ApiClientError && e.status === 404) return undefined
      throw e
    })
    if (!current) {
      await o.client.create(leases, presenceNamespace, desired)
      return
    }
    await o.client.update(leases, { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata.resourceVersion } })
  }
}
