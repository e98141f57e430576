// NetworkPolicyEnforcer: keeps this node's table `inet skiff-np-<h>` equal to
// renderNetpol(compileNetworkPolicy(policies, pods, namespaces, node)).
// The service proxier's shape: handlers only mark dirty (noting when, for
// the programming latency); one sync compiles the whole table and applies
// it as one `nft -f -` transaction; bursts coalesce, failures retry with
// backoff (sync-loop.ts) and leave the last table in place; a periodic
// resync repairs drift; nothing is applied before all three informers have
// their first list.

import { readFile } from 'node:fs/promises'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { Informer } from '../../controlplane/client/informer.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry } from '../../lib/metrics.ts'
import { runCommand } from '../service-proxy/nftables.ts'
import { compileNetworkPolicy } from './compile.ts'
import { netpolTableName, renderNetpol } from './render.ts'
import { SyncLoop } from './sync-loop.ts'
import type { PolicyTable } from './types.ts'

const policiesInfo = lookupResource('networking.k8s.io', 'v1', 'networkpolicies')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const namespacesInfo = lookupResource('', 'v1', 'namespaces')!

export interface EnforcerOptions {
  client: ApiClient
  nodeName: string
  /** This node's addresses (InternalIP, ExternalIP): always allowed into its pods. */
  nodeIPs: string[]
  logger: Logger
  registry?: Registry
  minSyncIntervalMs?: number
  resyncMs?: number
  nft?: string
}

export interface EnforcerMetrics {
  syncs: Counter
  failures: Counter
  syncDuration: Histogram
  rules: Gauge
  isolatedPods: Gauge
  programmingLatency: Histogram
}

function createMetrics(registry: Registry): EnforcerMetrics {
  const registers = [registry]
  return {
    syncs: new Counter({ name: 'skiff_netpol_syncs_total', help: 'Successful NetworkPolicy table applies', registers }),
    failures: new Counter({ name: 'skiff_netpol_sync_failures_total', help: 'Failed NetworkPolicy table applies (retried with backoff)', registers }),
    syncDuration: new Histogram({ name: 'skiff_netpol_sync_duration_seconds', help: 'Duration of one NetworkPolicy sync (compile and nft apply)', buckets: latencyBuckets, registers }),
    rules: new Gauge({ name: 'skiff_netpol_rules', help: 'Rules of the last applied NetworkPolicy table', registers }),
    isolatedPods: new Gauge({ name: 'skiff_netpol_isolated_pods', help: 'Local pods isolated in the last applied table, by direction', labelNames: ['direction'], registers }),
    programmingLatency: new Histogram({
      name: 'skiff_netpol_network_programming_duration_seconds',
      help: 'From a NetworkPolicy, Pod or Namespace change seen by this node to its rules applied',
      buckets: latencyBuckets, registers,
    }),
  }
}

/** Delete the node's NetworkPolicy table whoever made it (agent stop with removePods, test teardown); none is fine. */
export async function removeNetpolTable(nodeName: string, nft = 'nft'): Promise<void> {
  const r = await runCommand(nft, ['delete', 'table', 'inet', netpolTableName(nodeName)])
  if (r.code !== 0 && !/No such file|does not exist/i.test(r.stderr)) throw new Error(`nft delete table inet ${netpolTableName(nodeName)} failed: ${r.stderr.trim()}`)
}

export class NetworkPolicyEnforcer {
  readonly metrics: EnforcerMetrics
  readonly tableName: string
  #o: EnforcerOptions
  #informers: Informer[]
  #loop: SyncLoop
  #resync?: NodeJS.Timeout
  #pending: number[] = []
  #lastScript?: string
  #current?: PolicyTable

  constructor(opts: EnforcerOptions) {
    this.#o = opts
    this.tableName = netpolTableName(opts.nodeName)
    this.metrics = createMetrics(opts.registry ?? createRegistry())
    this.#informers = [policiesInfo, podsInfo, namespacesInfo].map((info) => new Informer({ client: opts.client, info, logger: opts.logger }))
    this.#loop = new SyncLoop({
      run: () => this.#sync(),
      ready: () => this.#informers.every((i) => i.hasSynced),
      onError: (err, retryInMs) => opts.logger.warn({ err: err.message, retryInMs }, 'network policy apply failed'),
      minIntervalMs: opts.minSyncIntervalMs,
    })
    const changed = () => {
      this.#pending.push(Date.now())
      this.#loop.markDirty()
    }
    for (const i of this.#informers) i.addHandlers({ onAdd: changed, onUpdate: (o, n) => o !== n && changed(), onDelete: changed })
  }

  /** Resolves once the informers are synced and the first table is applied (or its apply failed and retries). */
  async start(): Promise<void> {
    await bridgeNetfilterCheck(this.#o.logger)
    await Promise.all(this.#informers.map((i) => i.start()))
    // The initial list is not a change the user made: no latency sample for it.
    this.#pending = []
    this.#resync = setInterval(() => {
      this.#verifyTable = true
      this.#loop.markDirty()
    }, this.#o.resyncMs ?? 30_000)
    this.#resync.unref()
    await this.#loop.runNow()
  }

  /** Stop syncing; the table stays (pods stay isolated) unless cleanup. */
  async stop(opts: { cleanup?: boolean } = {}): Promise<void> {
    clearInterval(this.#resync)
    await this.#loop.stop()
    for (const i of this.#informers) i.stop()
    if (opts.cleanup) await removeNetpolTable(this.#o.nodeName, this.#o.nft)
  }

  /** The last applied table (undefined before the first apply). */
  get table(): PolicyTable | undefined {
    return this.#current
  }

  /** The last applied nft script (the debug page). */
  debugText(): string {
    return this.#lastScript ?? 'network policy: nothing applied yet\n'
  }

  /** One sync: compile, render, apply when the script or the table changed; throws to be retried. */
  async #sync(): Promise<void> {
    const changes = this.#pending
    this.#pending = []
    const started = performance.now()
    try {
      const [policies, pods, namespaces] = this.#informers.map((i) => i.list())
      const table = compileNetworkPolicy({ node: this.#o.nodeName, nodeIPs: this.#o.nodeIPs, policies: policies!, pods: pods!, namespaces: namespaces! })
      const { script, rules } = renderNetpol(table, this.tableName)
      // Unchanged: nothing to do, except at the periodic resync, which looks that the table is still
      // there (someone may have flushed it) instead of applying a transaction. Not on every pod event:
      // each look spawns nft, which cost an agent a second of CPU while 30 pods started.
      const verify = this.#verifyTable
      this.#verifyTable = false
      if (script !== this.#lastScript || (verify && !(await this.#tableExists()))) {
        const r = await runCommand(this.#o.nft ?? 'nft', ['-f', '-'], script)
        if (r.code !== 0) throw new Error(`nft -f failed (${r.code}): ${r.stderr.trim().slice(0, 2000)}`)
      }
      this.#lastScript = script
      this.#current = table
      const now = Date.now()
      for (const t of changes) this.metrics.programmingLatency.observe(Math.max(0, now - t) / 1000)
      this.metrics.syncs.inc()
      this.metrics.rules.set(rules)
      this.metrics.isolatedPods.set({ direction: 'ingress' }, table.ingress.length)
      this.metrics.isolatedPods.set({ direction: 'egress' }, table.egress.length)
    } catch (e) {
      this.metrics.failures.inc()
      this.#lastScript = undefined
      this.#pending.unshift(...changes)
      throw e
    } finally {
      this.metrics.syncDuration.observe((performance.now() - started) / 1000)
    }
  }

  /** Set by the periodic resync: the next sync checks the table is still in the kernel. */
  #verifyTable = false

  async #tableExists(): Promise<boolean> {
    return (await runCommand(this.#o.nft ?? 'nft', ['list', 'chain', 'inet', this.tableName, 'forward'])).code === 0
  }
}

/** Same-node pod traffic is bridged: it meets the inet forward hook only with br_netfilter on. Say so when it is off. */
async function bridgeNetfilterCheck(logger: Logger): Promise<void> {
  const v = await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').catch(() => '0')
  if (v.trim() !== '1') logger.warn('br_netfilter is off (net.bridge.bridge-nf-call-iptables != 1): NetworkPolicy is not enforced between pods of the same node; load br_netfilter and set it to 1')
}
