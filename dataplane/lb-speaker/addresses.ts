// The effectful half of the speaker: LoadBalancer IPs as /32 addresses on
// the node's LAN interface, so the kernel answers ARP for them, plus a burst
// of gratuitous ARP when this node takes one over; `ip addr del` withdraws.
//
// Each address has a kernel lifetime (valid_lft, default 10 s) that every
// sync renews: a speaker that dies without withdrawing (an agent crash on a
// host that stays up) stops answering by itself about when its peers,
// seeing its Lease stop, take over. Without that, the kernel would answer
// for the IP on two nodes until someone cleaned up.
//
// Which addresses are ours is written down before they are added, in
// `<stateDir>/<node>.json` (under /run: gone after a reboot, like the
// addresses themselves). A restart therefore removes the stale ones, and
// withdrawAll() removes exactly what the speaker added: never the node's own
// InternalIP or ExternalIP, which are not /32s it recorded.
//
// Every command runs in the given network namespace (`nsenter --net=
// /run/netns/NAME`, which unlike `ip netns exec` does not remount /sys), or
// in the current one. On the LAN interface the speaker also sets
// arp_ignore=1 (answer ARP only for addresses on the interface the request
// came in on) and arp_announce=2 (never use a LoadBalancer IP as the sender
// of our own ARP requests): addresses a node holds elsewhere, such as the
// userspace service proxy's copies on skiff-svc0, must not be answered on
// the LAN by every node (MetalLB's "strictARP" gotcha with kube-ipvs0).

import { spawn, type ChildProcess } from 'node:child_process'
import { inNetns, run as exec } from '../../lib/exec.ts'

export { inNetns }
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../lib/log.ts'
import { SpeakerError } from './errors.ts'

export const defaultStateDir = '/run/skiff/lb-speaker'

/** Run a command (in `netns`), resolve its stdout; a failure is SKIFF_ERR_LBSPEAKER_COMMAND with its stderr. */
export async function run(netns: string | undefined, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  const r = await exec(cmd, args, { netns, timeoutMs })
  if (r.code === 0) return r.stdout
  throw new SpeakerError('Command', `${cmd} ${args.join(' ')}${netns ? ` (in network namespace ${netns})` : ''} failed: ${r.stderr.trim()}`)
}

/** Run `ip -batch -` (in `netns`) with one command per line; -force goes on after a failed line. */
export async function runBatch(netns: string | undefined, lines: readonly string[], timeoutMs = 10_000): Promise<void> {
  const r = await exec('ip', ['-force', '-batch', '-'], { netns, timeoutMs, input: lines.join('\n') + '\n' })
  if (r.code !== 0) throw new SpeakerError('Command', `ip -batch${netns ? ` (in network namespace ${netns})` : ''} failed (${r.code}): ${r.stderr.trim()}`)
}

interface IpAddrJson {
  ifname: string
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>
}

/** IPv4 addresses of each interface (in `netns`): ifname -> ip -> prefix length. */
export async function listAddresses(netns: string | undefined, iface?: string): Promise<Map<string, Map<string, number>>> {
  const out = await run(netns, 'ip', ['-j', '-4', 'addr', 'show', ...(iface ? ['dev', iface] : [])])
  const links = JSON.parse(out || '[]') as IpAddrJson[]
  const m = new Map<string, Map<string, number>>()
  for (const l of links) {
    const addrs = new Map<string, number>()
    for (const a of l.addr_info ?? []) if (a.local && a.family !== 'inet6') addrs.set(a.local, a.prefixlen ?? 32)
    m.set(l.ifname, addrs)
  }
  return m
}

/** The interface holding `ip` (the node's InternalIP), in `netns`. */
export async function interfaceHolding(netns: string | undefined, ip: string): Promise<string> {
  for (const [ifname, addrs] of await listAddresses(netns)) if (addrs.has(ip)) return ifname
  throw new SpeakerError('Interface', `no interface${netns ? ` in network namespace ${netns}` : ''} holds the node's InternalIP ${ip}; pass the LAN interface explicitly`)
}

/**
 * What to change on the interface (pure). `present`: its IPv4 addresses
 * (ip -> prefix length); `recorded`: what the state file says we added.
 * Only /32s are ever added, adopted or removed; an address the interface
 * holds with another prefix (the node's own) is left alone and not added.
 */
export function planAddresses(o: { desired: ReadonlySet<string>; recorded: ReadonlySet<string>; present: ReadonlyMap<string, number> }): {
  add: string[]
  remove: string[]
  /** The record after the change (desired ones we hold as /32, plus removals that are still pending). */
  record: string[]
  /** Desired IPs the interface already holds with another prefix length. */
  conflicts: string[]
} {
  const add: string[] = []
  const conflicts: string[] = []
  const record = new Set<string>()
  for (const ip of o.desired) {
    const len = o.present.get(ip)
    if (len === undefined) add.push(ip)
    else if (len !== 32) {
      conflicts.push(ip)
      continue
    }
    record.add(ip)
  }
  const remove = [...o.recorded].filter((ip) => !o.desired.has(ip) && o.present.get(ip) === 32)
  for (const ip of remove) record.add(ip)
  const sort = (l: Iterable<string>) => [...l].sort()
  return { add: sort(add), remove: sort(remove), record: sort(record), conflicts: sort(conflicts) }
}

export interface ReconcileResult {
  /** Desired IPs the interface now holds as our /32s. */
  held: string[]
  /** Desired IPs that were not on the interface before. */
  added: string[]
  removed: string[]
  /** IPs no longer desired whose removal failed (still answered). */
  notRemoved: string[]
  conflicts: string[]
  /** The first failure, if any. */
  error?: string
}

interface StateFile {
  node: string
  netns?: string
  interface: string
  addresses: string[]
}

export interface LanAddressesOptions {
  nodeName: string
  iface: string
  netns?: string
  logger: Logger
  stateDir?: string
  /** How long gratuitous ARP is repeated after a takeover (default 5 s, as MetalLB). */
  garpBurstMs?: number
  /**
   * The kernel lifetime of each address, renewed by every reconcile (default
   * 10 s): a speaker that dies without withdrawing stops answering by itself
   * after this long, about when its peers take over.
   */
  lifetimeS?: number
}

/** The speaker's addresses on one interface: add/withdraw, the record of what it added, gratuitous ARP. */
export class LanAddresses {
  readonly iface: string
  #o: LanAddressesOptions
  #file: string
  #recorded = new Set<string>()
  #loaded = false
  #garps = new Map<string, ChildProcess>()
  #arpingMissing = false
  #lifetimeS: number

  constructor(o: LanAddressesOptions) {
    this.#o = o
    this.#lifetimeS = Math.max(1, Math.ceil(o.lifetimeS ?? 10))
    this.iface = o.iface
    this.#file = join(o.stateDir ?? defaultStateDir, `${o.nodeName}.json`)
  }

  /** How often reconcile must run at least, so no address outlives its lifetime. */
  get refreshMs(): number {
    return (this.#lifetimeS * 1000) / 3
  }

  /** The addresses recorded as ours (after load). */
  get recorded(): ReadonlySet<string> {
    return this.#recorded
  }

  /** Read the record; addresses recorded on another interface (a changed setting) are removed there first. */
  async load(): Promise<void> {
    let state: StateFile | undefined
    try {
      state = JSON.parse(await readFile(this.#file, 'utf8')) as StateFile
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.logger.warn({ file: this.#file, err: (e as Error).message }, 'unreadable lb-speaker state; starting from none')
    }
    const addrs = Array.isArray(state?.addresses) ? state.addresses.filter((a) => typeof a === 'string') : []
    if (state && state.interface !== this.iface) {
      for (const ip of addrs) await run(this.#o.netns, 'ip', ['addr', 'del', `${ip}/32`, 'dev', state.interface]).catch(() => undefined)
      this.#recorded = new Set()
      await this.#save()
    } else {
      this.#recorded = new Set(addrs)
    }
    this.#loaded = true
  }

  /** arp_ignore=1, arp_announce=2 on the interface (see the file comment). */
  async strictArp(): Promise<void> {
    const conf = `net/ipv4/conf/${this.iface}`
    await run(this.#o.netns, 'sysctl', ['-qw', `${conf}/arp_ignore=1`, `${conf}/arp_announce=2`])
  }

  /**
   * Make the interface hold exactly `desired` among our addresses, and renew
   * the lifetime of each (one `ip -batch` for all of them). Never throws for
   * one failed address: the others are still done, and `error` names the
   * first failure (the caller retries). Gratuitous ARP is the caller's
   * (garp), since it knows which IPs are new to this node.
   */
  async reconcile(desired: ReadonlySet<string>): Promise<ReconcileResult> {
    if (!this.#loaded) await this.load()
    const present = await this.#present()
    const plan = planAddresses({ desired, recorded: this.#recorded, present })
    // Written before the kernel changes: a crash in between leaves a record, never an unrecorded address.
    const changed = plan.record.length !== this.#recorded.size || plan.record.some((ip) => !this.#recorded.has(ip))
    this.#recorded = new Set(plan.record)
    if (changed) await this.#save()
    const result: ReconcileResult = { held: [], added: plan.add, removed: [], notRemoved: [], conflicts: plan.conflicts }
    const keep = plan.record.filter((ip) => desired.has(ip))
    const life = String(this.#lifetimeS)
    const lines = keep.map((ip) => `addr replace ${ip}/32 dev ${this.iface} valid_lft ${life} preferred_lft ${life}`)
    let held = keep
    if (lines.length) {
      try {
        await runBatch(this.#o.netns, lines)
      } catch (e) {
        result.error = (e as Error).message
        const now = await this.#present().catch(() => new Map<string, number>())
        held = keep.filter((ip) => now.get(ip) === 32)
      }
    }
    for (const ip of plan.remove) {
      this.#stopGarp(ip)
      try {
        await run(this.#o.netns, 'ip', ['addr', 'del', `${ip}/32`, 'dev', this.iface])
        result.removed.push(ip)
        this.#recorded.delete(ip)
      } catch (e) {
        result.notRemoved.push(ip)
        result.error ??= (e as Error).message
      }
    }
    if (result.removed.length) await this.#save()
    result.held = held
    return result
  }

  async #present(): Promise<Map<string, number>> {
    const present = (await listAddresses(this.#o.netns, this.iface)).get(this.iface)
    if (!present) throw new SpeakerError('Interface', `interface ${this.iface} does not exist${this.#o.netns ? ` in network namespace ${this.#o.netns}` : ''}`)
    return present
  }

  /** Remove every address we added, stop gratuitous ARP, delete the record. */
  async withdrawAll(): Promise<string[]> {
    if (!this.#loaded) await this.load()
    this.stopGarps()
    const r = await this.reconcile(new Set())
    if (r.error) throw new SpeakerError('Command', `could not remove ${r.notRemoved.join(', ')}: ${r.error}`)
    await rm(this.#file, { force: true })
    return r.removed
  }

  /**
   * Gratuitous ARP for `ip` from the interface: iputils arping in unsolicited
   * mode, at once and then every second for garpBurstMs, so neighbours that
   * cached the previous owner's MAC switch to ours. Best effort.
   */
  garp(ip: string): void {
    this.#stopGarp(ip)
    const burstMs = this.#o.garpBurstMs ?? 5_000
    const count = Math.max(1, Math.round(burstMs / 1000) + 1)
    const [file, argv] = inNetns(this.#o.netns, 'arping', ['-q', '-U', '-I', this.iface, '-c', String(count), '-i', '1', ip])
    const p = spawn(file, argv, { stdio: 'ignore' })
    const kill = setTimeout(() => p.kill('SIGKILL'), burstMs + 3_000)
    kill.unref()
    this.#garps.set(ip, p)
    p.on('error', (e) => {
      if (!this.#arpingMissing) this.#o.logger.warn({ err: e.message }, 'cannot send gratuitous ARP (is arping from iputils-arping installed?); neighbours learn the new owner only when their cache expires')
      this.#arpingMissing = true
    })
    p.on('exit', () => {
      clearTimeout(kill)
      if (this.#garps.get(ip) === p) this.#garps.delete(ip)
    })
  }

  /** Stop every gratuitous ARP burst in flight. */
  stopGarps(): void {
    for (const ip of [...this.#garps.keys()]) this.#stopGarp(ip)
  }

  #stopGarp(ip: string): void {
    const p = this.#garps.get(ip)
    if (!p) return
    this.#garps.delete(ip)
    p.kill('SIGKILL')
  }

  async #save(): Promise<void> {
    const dir = this.#o.stateDir ?? defaultStateDir
    const state: StateFile = { node: this.#o.nodeName, ...(this.#o.netns ? { netns: this.#o.netns } : {}), interface: this.iface, addresses: [...this.#recorded].sort() }
    try {
      await mkdir(dir, { recursive: true })
      const tmp = `${this.#file}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(state) + '\n')
      await rename(tmp, this.#file)
    } catch (e) {
      throw new SpeakerError('State', `cannot write ${this.#file}: ${(e as Error).message}`, { cause: e })
    }
  }
}
