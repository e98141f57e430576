// Pods never reach the control plane's store. The servers publish the
// store's addresses (Redis, replicas, sentinels) in their identity Leases
// (controlplane/apiserver/identity.ts); every agent keeps an nftables table
// of its own, `ip skiff-store-guard-<node>`, that rejects connections from
// its pods' range to those address:port pairs, both those it routes on
// (forward: another machine's Redis) and those it answers itself (input: a
// Redis on this very host, as with `skiff up --ha`). Redis also has a
// password; this keeps a compromised pod from even trying it.
//
// One `nft -f` per change, replacing the whole table atomically; removed when
// the node leaves (stop with removePods).

import { runCommand } from '../dataplane/service-proxy/nftables.ts'
import type { Logger } from '../lib/log.ts'

export function storeGuardTable(nodeName: string): string {
  return `skiff-store-guard-${nodeName}`.slice(0, 63)
}

/** The table's text for `nft -f` (pure). An empty endpoint list deletes the table. */
export function renderStoreGuard(nodeName: string, podCIDR: string, endpoints: readonly string[]): string {
  const table = storeGuardTable(nodeName)
  // "add table" first so that "delete table" never fails on a missing one.
  const lines = [`add table ip ${table}`, `delete table ip ${table}`]
  if (endpoints.length === 0) return lines.join('\n') + '\n'
  const elems = endpoints.map((ep) => {
    const [ip, port] = ep.split(':')
    return `${ip} . ${port}`
  })
  lines.push(
    `table ip ${table} {`,
    `  set store { type ipv4_addr . inet_service; elements = { ${elems.join(', ')} } }`,
    '  chain forward {',
    '    type filter hook forward priority -10; policy accept;',
    `    ip saddr ${podCIDR} ip daddr . tcp dport @store counter reject with tcp reset`,
    '  }',
    '  chain input {',
    '    type filter hook input priority -10; policy accept;',
    `    ip saddr ${podCIDR} ip daddr . tcp dport @store counter reject with tcp reset`,
    '  }',
    '}',
  )
  return lines.join('\n') + '\n'
}

export class StoreGuard {
  #o: { nodeName: string; logger: Logger }
  #podCIDR?: string
  #endpoints: string[] = []
  #applied = ''
  #queue: Promise<void> = Promise.resolve()

  constructor(o: { nodeName: string; logger: Logger }) {
    this.#o = o
  }

  setPodCIDR(cidr: string): Promise<void> {
    this.#podCIDR = cidr
    return this.#sync()
  }

  setEndpoints(endpoints: readonly string[]): Promise<void> {
    this.#endpoints = [...endpoints]
    return this.#sync()
  }

  /** Remove the table (the node leaves the cluster). */
  remove(): Promise<void> {
    this.#queue = this.#queue.then(() => this.#apply(renderStoreGuard(this.#o.nodeName, '0.0.0.0/32', [])))
    return this.#queue
  }

  #sync(): Promise<void> {
    if (!this.#podCIDR) return Promise.resolve()
    const text = renderStoreGuard(this.#o.nodeName, this.#podCIDR, this.#endpoints)
    if (text === this.#applied) return Promise.resolve()
    this.#queue = this.#queue.then(() => this.#apply(text))
    return this.#queue
  }

  async #apply(text: string): Promise<void> {
    const r = await runCommand('nft', ['-f', '-'], text).catch((e) => ({ code: 1, stdout: '', stderr: (e as Error).message }))
    if (r.code !== 0) {
      this.#o.logger.warn({ err: r.stderr.trim() }, 'store guard: nft failed; pods may reach the store addresses (Redis still needs its password)')
      return
    }
    this.#applied = text
    this.#o.logger.info({ endpoints: this.#endpoints }, 'store guard: pods are kept from the store addresses')
  }
}
