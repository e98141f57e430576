// The nftables Backend: renders the node's table (nftables-render.ts) and
// feeds it to `nft -f -` as one transaction, in Skiff's own table of this
// node only. An unchanged script is not re-applied while the table still
// exists (so ClientIP affinity state survives periodic resyncs); a missing
// table (someone deleted it) is rebuilt. After an apply, UDP conntrack
// entries that still point at endpoints that went away are deleted, since
// UDP "connections" would otherwise keep using the dead endpoint.
//
// Whole-table replacement on every change is the simple, atomic choice;
// kube-proxy-style partial syncs (only changed chains and map elements) are
// a later optimisation.

import { spawn } from 'node:child_process'
import type { Logger } from '../../lib/log.ts'
import { nftTableName, renderNftables } from './nftables-render.ts'
import type { Backend, RoutingTable } from './types.ts'

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

/** Run a command with optional stdin; never throws for a non-zero exit. */
export function runCommand(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: timeoutMs })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    if (child.stdin) {
      // A command that exits without reading its input (an error) must not crash the agent with EPIPE: its exit code tells.
      child.stdin.on('error', () => undefined)
      child.stdin.end(input)
    }
  })
}

/** One UDP flow target whose conntrack entries towards `endpoint` must go. */
export interface StaleUdp {
  dst: string
  port: number
  /** The endpoint IP that went away; absent: every entry to dst:port (the Service had no endpoints before). */
  endpoint?: string
}

/** UDP conntrack entries made stale by going from `prev` to `next`. Pure. */
export function staleUdpEntries(prev: RoutingTable | undefined, next: RoutingTable): StaleUdp[] {
  if (!prev) return []
  const before = new Map(prev.ports.filter((p) => p.protocol === 'UDP').map((p) => [p.id, p]))
  const out: StaleUdp[] = []
  for (const sp of next.ports) {
    if (sp.protocol !== 'UDP') continue
    const old = before.get(sp.id)
    const targets = [
      ...(sp.clusterIP ? [{ dst: sp.clusterIP, port: sp.port }] : []),
      ...[...sp.loadBalancerIPs, ...sp.externalIPs].map((dst) => ({ dst, port: sp.port })),
      ...(sp.nodePort ? next.node.addresses.map((dst) => ({ dst, port: sp.nodePort! })) : []),
    ]
    const now = new Set([...sp.clusterEndpoints, ...sp.localEndpoints].map((e) => e.ip))
    if (!old) continue
    const had = new Set([...old.clusterEndpoints, ...old.localEndpoints].map((e) => e.ip))
    // Rejected (no endpoint) packets leave entries that would keep rejecting: clear them.
    if (had.size === 0 && now.size > 0) out.push(...targets)
    for (const ip of had) if (!now.has(ip)) out.push(...targets.map((t) => ({ ...t, endpoint: ip })))
  }
  return out
}

export interface NftablesBackendOptions {
  nodeName: string
  logger: Logger
  /** Paths of the tools (tests may pin them). */
  nft?: string
  conntrack?: string
}

/** Delete the node's table whatever made it (skiff down, test teardown); no table is fine. */
export async function removeServiceProxyTable(nodeName: string): Promise<void> {
  const r = await runCommand('nft', ['delete', 'table', 'ip', nftTableName(nodeName)])
  if (r.code !== 0 && !/No such file|does not exist/i.test(r.stderr)) throw new Error(`nft delete table ${nftTableName(nodeName)} failed: ${r.stderr.trim()}`)
}

export class NftablesBackend implements Backend {
  readonly name = 'nftables' as const
  readonly tableName: string
  #o: NftablesBackendOptions
  #lastScript?: string
  #lastTable?: RoutingTable
  #lastRules = 0

  constructor(opts: NftablesBackendOptions) {
    this.#o = opts
    this.tableName = nftTableName(opts.nodeName)
  }

  async apply(table: RoutingTable): Promise<{ rules: number }> {
    const { script, rules } = renderNftables(table, this.tableName)
    const same = script.replace(/generation \d+/, '') === this.#lastScript?.replace(/generation \d+/, '')
    if (same && (await this.#tableExists())) {
      this.#lastTable = table
      return { rules: this.#lastRules }
    }
    const r = await runCommand(this.#o.nft ?? 'nft', ['-f', '-'], script)
    if (r.code !== 0) throw new Error(`nft -f failed (${r.code}): ${r.stderr.trim().slice(0, 2000)}`)
    const prev = this.#lastTable
    this.#lastScript = script
    this.#lastTable = table
    this.#lastRules = rules
    await this.#flushStaleUdp(staleUdpEntries(prev, table))
    return { rules }
  }

  async cleanup(): Promise<void> {
    await removeServiceProxyTable(this.#o.nodeName)
    this.#lastScript = undefined
    this.#lastTable = undefined
  }

  /** The script of the last successful apply (the debug endpoint can show it). */
  get lastScript(): string | undefined {
    return this.#lastScript
  }

  async #tableExists(): Promise<boolean> {
    const r = await runCommand(this.#o.nft ?? 'nft', ['list', 'table', 'ip', this.tableName])
    return r.code === 0
  }

  async #flushStaleUdp(entries: StaleUdp[]): Promise<void> {
    for (const e of entries) {
      const args = ['-D', '-p', 'udp', '--orig-dst', e.dst, '--orig-port-dst', String(e.port)]
      if (e.endpoint) args.push('--dst-nat', e.endpoint)
      // Exit code 1 with "0 flow entries" is the normal "nothing to delete".
      const r = await runCommand(this.#o.conntrack ?? 'conntrack', args).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }))
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) this.#o.logger.warn({ args, err: r.stderr.trim() }, 'conntrack delete failed')
    }
  }
}
