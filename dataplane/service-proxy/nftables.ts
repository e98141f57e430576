// The nftables Backend: models the node's table (nftables-render.ts) and
// feeds `nft -f -` one transaction per sync, in Skiff's own table of this
// node only. Like kube-proxy's nftables mode, a sync is partial: only the
// chains and map elements that differ from the last applied model are
// flushed/re-filled/added/deleted, so one Service's change is a handful of
// nft commands whatever the size of the table. The whole-table replacement (`add table; delete
// table; table {...}`) stays the correctness fallback: the first sync, after
// any failure (a failed partial transaction is retried at once as a full
// one), when the table went missing, and at most every fullSyncIntervalMs
// (1 h) when something changes. Nothing changed: no nft call (a cheap check that
// the table still exists), so ClientIP affinity state survives resyncs;
// partial syncs keep it for every endpoint that stays. After an apply, UDP
// conntrack entries that still point at endpoints that went away are
// deleted, since UDP "connections" would otherwise keep using the dead one.
// Partial transactions go through one long-lived `nft -i` (NftShell), full
// ones through `nft -f -`.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Logger } from '../../lib/log.ts'
import { buildNftModel, chooseSyncMode, modelSize, nftTableName, planNftSync, type ModelCache, type NftModel, type NftPlan } from './nftables-render.ts'
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

/**
 * One long-lived `nft -i` (stdout and stderr merged) for partial
 * transactions. Measured at 1,000 Services per node, two nodes: a 3-command
 * transaction took 60 ms as `nft -f -` (process start, and the table's
 * chains and sets read back from the kernel before every transaction) and 15
 * ms here (nft keeps its cache while the ruleset generation is its own; after
 * a change by anyone else it reads it again), and the agent forks no process
 * per sync (15 ms of blocked event loop each in the benchmark's process).
 * Protocol: a transaction is ONE input line (`nft -i` commits a line as one
 * batch: all of it or nothing), followed by a marker line that nft rejects at
 * parse time, before it asks the kernel anything; what nft printed before the
 * marker's error belongs to the transaction, and an `Error:` in it means the
 * transaction failed and changed nothing. Transactions run one at a time. A
 * dead or stuck process is replaced at the next call.
 */
export class NftShell {
  #nft: string
  #child?: ChildProcessWithoutNullStreams
  #buf = ''
  #seq = 0
  #waiting?: { marker: string; done: (r: CommandResult) => void }
  #queue: Promise<unknown> = Promise.resolve()

  constructor(nft = 'nft') {
    this.#nft = nft
  }

  /** Apply one transaction (newline-separated commands, none of them spanning lines). */
  run(script: string, timeoutMs = 30_000): Promise<CommandResult> {
    const line = script.split('\n').map((l) => l.trim()).filter(Boolean).join('; ')
    const next = this.#queue.then(() => this.#run(line, timeoutMs))
    this.#queue = next.catch(() => undefined)
    return next
  }

  /** Stop the process (between transactions: the proxier closes it only once its syncs are done). */
  close(): void {
    this.#fail('nft shell closed')
    this.#child?.stdin.end()
    this.#child?.kill()
    this.#child = undefined
  }

  #start(): ChildProcessWithoutNullStreams {
    const child = spawn('sh', ['-c', 'exec "$0" -i 2>&1', this.#nft], { stdio: ['pipe', 'pipe', 'pipe'] })
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => this.#data(d))
    child.stdin.on('error', () => undefined)
    child.on('error', (e) => this.#exited(child, e.message))
    child.on('close', (code) => this.#exited(child, `nft -i exited (${code})`))
    // An agent that exits without close(): stdin closes with it and nft follows.
    child.unref()
    for (const s of [child.stdin, child.stdout, child.stderr] as Array<{ unref?: () => void }>) s.unref?.()
    this.#buf = ''
    return child
  }

  #run(line: string, timeoutMs: number): Promise<CommandResult> {
    this.#child ??= this.#start()
    const marker = `skiff-end-${++this.#seq}`
    return new Promise<CommandResult>((resolve) => {
      const timer = setTimeout(() => {
        this.#fail(`nft -i gave no answer within ${timeoutMs} ms`)
        this.#child?.kill('SIGKILL')
        this.#child = undefined
      }, timeoutMs)
      this.#waiting = { marker, done: (r) => { clearTimeout(timer); resolve(r) } }
      this.#child!.stdin.write(`${line}\n${marker}\n`)
    })
  }

  #data(d: string): void {
    this.#buf += d
    const w = this.#waiting
    if (!w) return
    // The marker's own error: `Error: syntax error...`, the marker line, a caret line.
    const at = this.#buf.search(new RegExp(`(^|\n)Error: [^\n]*\n${w.marker}\n[ ^~]*\n`))
    if (at < 0) return
    const out = this.#buf.slice(0, at)
    this.#buf = ''
    this.#waiting = undefined
    w.done({ code: /(^|\n)Error:/.test(out) ? 1 : 0, stdout: '', stderr: out })
  }

  #fail(message: string): void {
    const w = this.#waiting
    this.#waiting = undefined
    w?.done({ code: -1, stdout: '', stderr: message })
  }

  #exited(child: ChildProcessWithoutNullStreams, message: string): void {
    if (this.#child !== child) return
    this.#child = undefined
    this.#fail(message)
  }
}

/** Conntrack entries to delete: flows of `protocol` to dst:port, towards `endpoint` when given, in `state` when given. */
export interface StaleFlow {
  protocol: 'udp' | 'tcp'
  dst: string
  port: number
  /** The endpoint IP that went away; absent: every entry to dst:port (the Service had no endpoints before). */
  endpoint?: string
  /** TCP: only connection attempts that got no answer yet. */
  state?: 'SYN_SENT'
}

/**
 * Conntrack entries made stale by going from `prev` to `next`. Pure.
 *  - UDP: every flow towards an endpoint that went away (it would keep
 *    going there), and when a Service gets endpoints again, the entries of
 *    the packets rejected meanwhile.
 *  - TCP: connection attempts (SYN_SENT, unanswered) towards an endpoint
 *    that went away, typically a dead host's. A client that reuses the
 *    source port of such an attempt (ports of connects that never completed
 *    are free at once) matches the old entry and is sent to the dead
 *    endpoint again, for up to the 120 s SYN_SENT timeout; and a client
 *    still retransmitting its SYN gets a live endpoint once the entry is
 *    gone. Established connections are left alone: a terminating endpoint
 *    finishes them.
 */
export function staleFlows(prev: RoutingTable | undefined, next: RoutingTable): StaleFlow[] {
  if (!prev) return []
  const before = new Map(prev.ports.map((p) => [p.id, p]))
  const out: StaleFlow[] = []
  for (const sp of next.ports) {
    if (sp.protocol !== 'UDP' && sp.protocol !== 'TCP') continue
    const old = before.get(sp.id)
    if (!old) continue
    const protocol = sp.protocol === 'UDP' ? 'udp' : 'tcp'
    const targets = [
      ...(sp.clusterIP ? [{ protocol, dst: sp.clusterIP, port: sp.port } as const] : []),
      ...[...sp.loadBalancerIPs, ...sp.externalIPs].map((dst) => ({ protocol, dst, port: sp.port }) as const),
      ...(sp.nodePort ? next.node.addresses.map((dst) => ({ protocol, dst, port: sp.nodePort! }) as const) : []),
    ]
    const now = new Set([...sp.clusterEndpoints, ...sp.localEndpoints].map((e) => e.ip))
    const had = new Set([...old.clusterEndpoints, ...old.localEndpoints].map((e) => e.ip))
    const gone = [...had].filter((ip) => !now.has(ip))
    if (protocol === 'tcp') {
      for (const ip of gone) out.push(...targets.map((t) => ({ ...t, endpoint: ip, state: 'SYN_SENT' as const })))
      continue
    }
    // Rejected (no endpoint) packets leave entries that would keep rejecting: clear them.
    if (had.size === 0 && now.size > 0) out.push(...targets)
    for (const ip of gone) out.push(...targets.map((t) => ({ ...t, endpoint: ip })))
  }
  return out
}

export interface NftablesBackendOptions {
  nodeName: string
  logger: Logger
  /** Paths of the tools (tests may pin them). */
  nft?: string
  conntrack?: string
  /** Replace the whole table at least this often when something changes (default 1 h, as kube-proxy). */
  fullSyncIntervalMs?: number
  /** Partial transactions through one long-lived `nft -i` (NftShell; default) or false: a `nft -f -` per sync. */
  shell?: boolean
}

/** Delete the node's table whatever made it (skiff down, test teardown); no table is fine. */
export async function removeServiceProxyTable(nodeName: string): Promise<void> {
  const r = await runCommand('nft', ['delete', 'table', 'ip', nftTableName(nodeName)])
  if (r.code !== 0 && !/No such file|does not exist/i.test(r.stderr)) throw new Error(`nft delete table ${nftTableName(nodeName)} failed: ${r.stderr.trim()}`)
}

/** What the last apply did (tests, the debug endpoint). */
export interface LastSync {
  mode: NftPlan['mode']
  script: string
  ops: number
  /** Building the model and planning (JavaScript), and the nft run(s), in ms. */
  planMs: number
  nftMs: number
}

export class NftablesBackend implements Backend {
  readonly name = 'nftables' as const
  readonly tableName: string
  #o: NftablesBackendOptions
  /** The model the kernel holds, as far as we know; undefined after a failure. */
  #model?: NftModel
  #lastTable?: RoutingTable
  #lastFullAt = 0
  #lastFailed = false
  #last?: LastSync
  #cache: ModelCache = { fragments: new Map() }
  #shell?: NftShell
  /** Successful applies by kind, since start. */
  readonly syncs = { full: 0, partial: 0, none: 0 }
  /** Time spent in model+plan (JavaScript) and in nft, summed over successful applies. */
  readonly totals = { planMs: 0, nftMs: 0 }

  constructor(opts: NftablesBackendOptions) {
    this.#o = opts
    this.tableName = nftTableName(opts.nodeName)
  }

  async apply(table: RoutingTable): Promise<{ rules: number }> {
    const next = buildNftModel(table, this.#cache)
    const rules = modelSize(next)
    // Monotonic: a wall-clock step neither forces nor holds off the periodic full sync.
    const t0 = performance.now()
    const full = () => planNftSync({ next, tableName: this.tableName, mode: 'full' })
    // Without a known model (first sync, after a failure) this is already the full script.
    let plan = planNftSync({ prev: this.#model, next, tableName: this.tableName, mode: 'partial' })
    let planMs = performance.now() - t0
    if (plan.mode === 'none') {
      if (await this.#tableExists()) return this.#done(table, next, plan, rules, { planMs, nftMs: 0 })
      plan = full() // someone deleted our table
    } else if (plan.mode === 'partial') {
      // A due periodic full sync waits for a change: replacing an unchanged table would only drop affinity state.
      const o = { applied: !!this.#model, lastFailed: this.#lastFailed, lastFullAt: this.#lastFullAt, now: t0, fullSyncIntervalMs: this.#o.fullSyncIntervalMs ?? 3_600_000 }
      if (chooseSyncMode(o) === 'full') plan = full()
    }
    planMs = performance.now() - t0
    const t1 = performance.now()
    let r = plan.mode === 'partial' ? await this.#partial(plan.script) : await runCommand(this.#o.nft ?? 'nft', ['-f', '-'], plan.script)
    if (r.code !== 0 && plan.mode === 'partial') {
      // The kernel is not what we think (someone edited our table): the transaction changed nothing, replace it all.
      this.#o.logger.warn({ err: r.stderr.trim().slice(0, 500) }, 'partial nft sync failed; replacing the whole table')
      plan = full()
      r = await runCommand(this.#o.nft ?? 'nft', ['-f', '-'], plan.script)
    }
    if (r.code !== 0) {
      this.#lastFailed = true
      this.#model = undefined
      throw new Error(`nft -f failed (${r.code}): ${r.stderr.trim().slice(0, 2000)}`)
    }
    if (plan.mode === 'full') this.#lastFullAt = t0
    this.#lastFailed = false
    const prev = this.#lastTable
    this.#done(table, next, plan, rules, { planMs, nftMs: performance.now() - t1 })
    await this.#flushStale(staleFlows(prev, table))
    return { rules }
  }

  #done(table: RoutingTable, model: NftModel, plan: NftPlan, rules: number, ms: { planMs: number; nftMs: number }): { rules: number } {
    this.#model = model
    this.#lastTable = table
    this.#last = { mode: plan.mode, script: plan.script, ops: plan.ops, ...ms }
    this.syncs[plan.mode]++
    this.totals.planMs += ms.planMs
    this.totals.nftMs += ms.nftMs
    return { rules }
  }

  /** A partial transaction through the long-lived nft; when that process failed (not the transaction), once more as `nft -f -`. */
  async #partial(script: string): Promise<CommandResult> {
    if (this.#o.shell === false) return runCommand(this.#o.nft ?? 'nft', ['-f', '-'], script)
    this.#shell ??= new NftShell(this.#o.nft)
    const r = await this.#shell.run(script)
    if (r.code !== -1) return r
    this.#o.logger.warn({ err: r.stderr }, 'nft -i failed; this transaction goes through nft -f')
    return runCommand(this.#o.nft ?? 'nft', ['-f', '-'], script)
  }

  /** Stop the long-lived nft process (the rules stay). */
  close(): void {
    this.#shell?.close()
    this.#shell = undefined
  }

  async cleanup(): Promise<void> {
    this.close()
    await removeServiceProxyTable(this.#o.nodeName)
    this.#model = undefined
    this.#lastTable = undefined
  }

  /** What the last successful apply did: full / partial / none and its script. */
  get lastSync(): LastSync | undefined {
    return this.#last
  }

  async #tableExists(): Promise<boolean> {
    // One small chain every table has: `nft list tables` (or the table) fetches the whole
    // ruleset, 0.6 s and more at 10,000 endpoints per node, and stalls the other nodes' syncs.
    const r = await runCommand(this.#o.nft ?? 'nft', ['list', 'chain', 'ip', this.tableName, 'reject-svc'])
    return r.code === 0
  }

  async #flushStale(entries: StaleFlow[]): Promise<void> {
    for (const e of entries) {
      const args = ['-D', '-p', e.protocol, '--orig-dst', e.dst, '--orig-port-dst', String(e.port)]
      if (e.endpoint) args.push('--dst-nat', e.endpoint)
      if (e.state) args.push('--state', e.state)
      // Exit code 1 with "0 flow entries" is the normal "nothing to delete".
      const r = await runCommand(this.#o.conntrack ?? 'conntrack', args).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }))
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) this.#o.logger.warn({ args, err: r.stderr.trim() }, 'conntrack delete failed')
    }
  }
}
