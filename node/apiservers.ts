// The agent's list of apiservers (HA control plane): it follows the
// servers' identity Leases (controlplane/apiserver/identity.ts) and hands
// every live one to its API clients (ApiClient.setServers), which move to
// the next server on a transport failure. The list is kept in
// <agentDir>/apiservers.json, so a restarted agent reaches a live server
// even when the one it joined through is down. A server is live while its
// Lease was seen renewed within its duration on this agent's monotonic
// clock (a step of either machine's wall clock changes nothing).

import { readFileSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lookupResource } from '../controlplane/api/resources.ts'
import { identityLabel, identityLabelValue, liveApiservers, liveStoreEndpoints } from '../controlplane/apiserver/identity.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import { Informer } from '../controlplane/client/informer.ts'
import { LeaseObserver } from '../controlplane/client/lease-observer.ts'
import type { Logger } from '../lib/log.ts'

const leases = lookupResource('coordination.k8s.io', 'v1', 'leases')!
const file = 'apiservers.json'

/** The servers an earlier run saw ([] when none). */
export function readKnownApiservers(agentDir: string): string[] {
  try {
    const v = JSON.parse(readFileSync(join(agentDir, file), 'utf8'))
    return Array.isArray(v?.servers) ? v.servers.filter((s: unknown): s is string => typeof s === 'string' && s.startsWith('https://')) : []
  } catch {
    return []
  }
}

export class ApiserverFollower {
  #o: { clients: ApiClient[]; agentDir: string; logger: Logger; onStoreEndpoints?: (endpoints: string[]) => void }
  #informer: Informer
  #observer = new LeaseObserver()
  #configured: string[]
  #timer?: NodeJS.Timeout
  #last = ''
  #writing: Promise<void> = Promise.resolve()

  #lastStore = ''

  constructor(o: { clients: ApiClient[]; agentDir: string; logger: Logger; onStoreEndpoints?: (endpoints: string[]) => void }) {
    this.#o = o
    this.#configured = [...o.clients[0]!.servers]
    this.#informer = new Informer({ client: o.clients[0]!, info: leases, logger: o.logger, namespace: 'kube-system', labelSelector: `${identityLabel}=${identityLabelValue}` })
    const update = () => void this.#update()
    this.#informer.addHandlers(this.#observer.handlers())
    this.#informer.addHandlers({ onAdd: update, onUpdate: update, onDelete: update })
  }

  async start(): Promise<void> {
    await this.#informer.start()
    await this.#update()
    // Leases expire without an event: look again now and then.
    this.#timer = setInterval(() => void this.#update(), 15_000)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#informer.stop()
  }

  async #update(): Promise<void> {
    const fresh = (l: KubeObject) => this.#observer.fresh(l)
    const store = liveStoreEndpoints(this.#informer.list(), fresh)
    // An empty list while every Lease is stale says nothing: keep the last one.
    if (store.length && store.join(',') !== this.#lastStore) {
      this.#lastStore = store.join(',')
      this.#o.onStoreEndpoints?.(store)
    }
    const live = liveApiservers(this.#informer.list(), fresh)
    // Live servers first; the configured ones stay as a last resort (a load balancer in front, or all Leases stale).
    const list = [...live, ...this.#configured.filter((s) => !live.includes(s))]
    const key = list.join(',')
    if (key === this.#last) return
    this.#last = key
    for (const c of this.#o.clients) c.setServers(list)
    this.#o.logger.info({ servers: list }, 'apiservers')
    // One write at a time, in order: the last list wins.
    const tmp = join(this.#o.agentDir, `${file}.tmp`)
    this.#writing = this.#writing
      .then(() => writeFile(tmp, JSON.stringify({ servers: live }, null, 2) + '\n', { mode: 0o600 }))
      .then(() => rename(tmp, join(this.#o.agentDir, file)))
      .catch((e) => this.#o.logger.warn({ err: (e as Error).message }, 'cannot record the apiserver list'))
    await this.#writing
  }
}
