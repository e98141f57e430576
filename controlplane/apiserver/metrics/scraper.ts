// metrics-server inside `skiff server`: every period (15 s by default, as
// metrics-server's --metric-resolution) it fetches each Node's kubelet
// /metrics/resource, with the apiserver's kubelet client certificate and the
// kubelet identity check that pods/log uses (node-proxy.ts), and keeps the
// last two samples per series in a MetricsStore. Every apiserver replica
// scrapes on its own; what it serves is what it scraped.

import type { ClientRequest } from 'node:http'
import { request, Agent as HttpsAgent } from 'node:https'
import { lookupResource } from '../../api/resources.ts'
import type { Logger } from '../../../lib/log.ts'
import { checkKubeletIdentity, kubeletEndpoint } from '../node-proxy.ts'
import type { Registry } from '../registry.ts'
import { MetricsStore, parseResourceMetrics } from './points.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const scrapeTimeoutMs = 10_000

export interface MetricsScraperOptions {
  registry: Registry
  logger: Logger
  /** The apiserver's kubelet client certificate and the cluster CA; without it nothing is scraped. */
  kubeletClient?: { certPem: string; keyPem: string; caPem: string }
  /** Scrape period (metrics-server's --metric-resolution); default 15 s. */
  periodMs?: number
}

export class MetricsScraper {
  readonly store = new MetricsStore()
  #o: MetricsScraperOptions
  #log: Logger
  #timer?: NodeJS.Timeout
  #running?: Promise<void>
  #stopped = false
  /** Requests in flight, cut by stop() so a kubelet that does not answer never holds up a shutdown. */
  #inflight = new Set<ClientRequest>()

  constructor(o: MetricsScraperOptions) {
    this.#o = o
    this.#log = o.logger.child({ component: 'metrics-scraper' })
  }

  get periodMs(): number {
    return this.#o.periodMs ?? 15_000
  }

  start(): void {
    if (!this.#o.kubeletClient) return
    this.#stopped = false
    const tick = () => {
      this.#running = this.scrapeOnce().catch((e) => this.#log.warn({ err: (e as Error).message }, 'metrics scrape failed'))
      void this.#running.then(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.periodMs)
      })
    }
    tick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    for (const req of this.#inflight) req.destroy(new Error('the apiserver is stopping'))
    await this.#running
  }

  /** One round over every Node; a node that fails keeps its old samples (they age out of the window, not the store). */
  async scrapeOnce(): Promise<void> {
    const nodes = (await this.#o.registry.list(nodesInfo, undefined)).items
    this.store.retainNodes(new Set(nodes.map((n) => n.metadata.name!)))
    await Promise.all(
      nodes.map(async (node) => {
        const name = node.metadata.name!
        try {
          const text = await this.#fetch(name, node)
          this.store.update(name, parseResourceMetrics(text, Date.now()))
        } catch (e) {
          this.#log.info({ node: name, err: (e as Error).message }, 'kubelet resource metrics not scraped')
        }
      }),
    )
  }

  #fetch(name: string, node: Parameters<typeof kubeletEndpoint>[1]): Promise<string> {
    return kubeletGet(this.#o.kubeletClient!, name, node, '/metrics/resource', this.#inflight)
  }
}

/**
 * GET `path` from a node's kubelet with the apiserver's client certificate,
 * checking the kubelet's certificate for that node; the body when it answers
 * 200. Requests in flight are kept in `inflight` (when given) so a stop can cut them.
 */
export function kubeletGet(client: { certPem: string; keyPem: string; caPem: string }, name: string, node: Parameters<typeof kubeletEndpoint>[1], path: string, inflight?: Set<ClientRequest>): Promise<string> {
  const ep = kubeletEndpoint(name, node)
  const agent = new HttpsAgent({ ca: client.caPem, cert: client.certPem, key: client.keyPem, keepAlive: false, checkServerIdentity: (host, cert) => checkKubeletIdentity(name, host, cert) })
  return new Promise((resolve, reject) => {
    const req = request({ host: ep.host, port: ep.port, path, method: 'GET', agent, timeout: scrapeTimeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        agent.destroy()
        const body = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode === 200) resolve(body)
        else reject(new Error(`kubelet answered ${res.statusCode}: ${body.slice(0, 200)}`))
      })
      res.on('error', reject)
    })
    inflight?.add(req)
    req.once('close', () => inflight?.delete(req))
    req.on('timeout', () => req.destroy(new Error(`no answer within ${scrapeTimeoutMs / 1000}s`)))
    req.on('error', (e) => {
      agent.destroy()
      reject(e)
    })
    req.end()
  })
}
