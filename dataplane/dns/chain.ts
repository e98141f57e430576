// The whole server in one ordered list, like CoreDNS's plugin.cfg: a query
// enters at the top and each handler answers or calls next(). Order matters:
//   metrics     sees every reply and the total time
//   ready       SERVFAIL for cluster names until the first sync
//   kubernetes  the cluster zone, precompiled; PTR for known addresses
//   recursion   REFUSED for clients outside the cluster
//   forward     upstream resolvers, with a cache

import type { CompiledZone } from './compile.ts'
import { forwardHandler } from './handlers/forward.ts'
import { kubernetesHandler } from './handlers/kubernetes.ts'
import { metricsHandler } from './handlers/metrics.ts'
import { readyHandler } from './handlers/ready.ts'
import { recursionHandler } from './handlers/recursion.ts'
import type { DnsCounters } from './metrics.ts'
import type { Handler, Reply } from './types.ts'
import { RCODE, rcodeReply, type Query } from './wire.ts'

/** What the forward handler needs: forward.ts's Forwarder, or a worker's view of the main thread's (worker.ts). */
export interface Resolver {
  resolve(q: Query): Promise<Buffer>
}

export interface ChainDeps {
  origin: string
  metrics: DnsCounters
  synced(): boolean
  zone(): CompiledZone | undefined
  allowRecursion: string[]
  forwarder: Resolver
}

export const plugins = ['metrics', 'ready', 'kubernetes', 'recursion', 'forward'] as const

const factories: Record<(typeof plugins)[number], (d: ChainDeps) => Handler> = {
  metrics: (d) => metricsHandler(d.metrics),
  ready: (d) => readyHandler({ origin: d.origin, synced: d.synced }),
  kubernetes: (d) => kubernetesHandler({ zone: d.zone }),
  recursion: (d) => recursionHandler({ allow: d.allowRecursion }),
  forward: (d) => forwardHandler({ forwarder: d.forwarder }),
}

export function buildChain(deps: ChainDeps, only: readonly (typeof plugins)[number][] = plugins): Handler[] {
  return plugins.filter((p) => only.includes(p)).map((p) => factories[p](deps))
}

/** Run a query down the chain; falling off the end is REFUSED (no handler claims the name). */
export function runChain(handlers: Handler[], q: Query): Reply | Promise<Reply> {
  const step = (i: number): Reply | Promise<Reply> => (i < handlers.length ? handlers[i]!.serve(q, () => step(i + 1)) : rcodeReply(q, RCODE.REFUSED))
  return step(0)
}
