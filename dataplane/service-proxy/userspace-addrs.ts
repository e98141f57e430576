// Service addresses for the userspace backend: every ClusterIP and
// LoadBalancer/external IP is put as a /32 (/128) on one host interface,
// `skiff-svc0`, so the kernel treats it as local and a listener can bind it
// (kube-proxy's IPVS mode does the same with the dummy `kube-ipvs0`).
//
// Several agents on one host share the interface, and in a local cluster they
// want the same ClusterIPs. Each agent (owner) writes the addresses it needs
// to `<stateDir>/<owner>.json`; an address is removed only when no other
// owner's file lists it, and the interface only when no address is left on
// it. A race between one agent adding and another removing the same address
// is repaired by the next apply (every apply re-adds what it needs).
//
// The interface is a `dummy` where the kernel has it, else an empty `bridge`
// (no ports: it never forwards anything; addresses on it are local all the same).

import { execFile, spawn } from 'node:child_process'
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export const defaultInterface = 'skiff-svc0'
export const defaultStateDir = '/run/skiff/service-addresses'

export interface ServiceAddressOptions {
  /** Who claims the addresses (the node name): one claim file per owner. */
  owner: string
  iface?: string
  stateDir?: string
}

function prefixed(ip: string): string {
  return ip.includes(':') ? `${ip}/128` : `${ip}/32`
}

async function ipBatch(lines: string[]): Promise<void> {
  if (lines.length === 0) return
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ip', ['-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d) => (err += String(d)))
    p.on('error', reject)
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch failed (${code}): ${err.trim()}`))))
    p.stdin.end(lines.join('\n') + '\n')
  })
}

interface IpAddrJson {
  ifname: string
  addr_info?: { local: string }[]
}

export class ServiceAddresses {
  readonly iface: string
  readonly #owner: string
  readonly #stateDir: string

  constructor(opts: ServiceAddressOptions) {
    this.#owner = opts.owner
    this.iface = opts.iface ?? defaultInterface
    this.#stateDir = opts.stateDir ?? defaultStateDir
  }

  /** Addresses per interface name, from `ip -j addr`. */
  async #addressesByInterface(): Promise<Map<string, Set<string>>> {
    const { stdout } = await run('ip', ['-j', 'addr', 'show'])
    const out = new Map<string, Set<string>>()
    for (const link of JSON.parse(stdout) as IpAddrJson[]) out.set(link.ifname, new Set((link.addr_info ?? []).map((a) => a.local)))
    return out
  }

  /** Addresses currently on our interface (empty if it does not exist). */
  async current(): Promise<Set<string>> {
    return (await this.#addressesByInterface()).get(this.iface) ?? new Set()
  }

  async #ensureInterface(): Promise<void> {
    const links = await this.#addressesByInterface()
    if (links.has(this.iface)) return
    try {
      await run('ip', ['link', 'add', this.iface, 'type', 'dummy'])
    } catch (e) {
      const msg = String((e as { stderr?: string }).stderr ?? e)
      if (/Unknown device type|not supported/i.test(msg)) await run('ip', ['link', 'add', this.iface, 'type', 'bridge']).catch(ignoreExists)
      else ignoreExists(e)
    }
    // No IPv6 link-local address: the interface carries service addresses only.
    await run('ip', ['link', 'set', 'dev', this.iface, 'addrgenmode', 'none']).catch(() => {})
    await run('ip', ['link', 'set', 'dev', this.iface, 'up'])
  }

  /**
   * Record the claim, then make `addrs` local. Addresses already local on
   * another interface (a node address used as an external IP) are left alone.
   * Returns the addresses this call put on the interface.
   */
  async ensure(addrs: Iterable<string>): Promise<string[]> {
    const wanted = [...new Set(addrs)]
    await this.writeClaim(wanted)
    if (wanted.length === 0) return []
    await this.#ensureInterface()
    const links = await this.#addressesByInterface()
    const elsewhere = new Set<string>()
    for (const [name, set] of links) if (name !== this.iface) for (const a of set) elsewhere.add(a)
    const ours = links.get(this.iface) ?? new Set()
    const missing = wanted.filter((a) => !ours.has(a) && !elsewhere.has(a))
    await ipBatch(missing.map((a) => `address replace ${prefixed(a)} dev ${this.iface}`))
    return missing
  }

  /** Remove `addrs` unless another owner still claims them; delete the interface once it is empty. */
  async release(addrs: Iterable<string>): Promise<void> {
    const others = await this.#otherClaims()
    const ours = await this.current()
    const drop = [...new Set(addrs)].filter((a) => ours.has(a) && !others.has(a))
    await ipBatch(drop.map((a) => `address del ${prefixed(a)} dev ${this.iface}`)).catch(() => {})
    const after = (await this.#addressesByInterface()).get(this.iface)
    if (after && after.size === 0) await run('ip', ['link', 'del', this.iface]).catch(() => {})
  }

  async writeClaim(addrs: string[]): Promise<void> {
    await mkdir(this.#stateDir, { recursive: true })
    const file = this.#claimFile()
    await writeFile(`${file}.tmp`, JSON.stringify([...addrs].sort()))
    await rename(`${file}.tmp`, file)
  }

  /** Drop our claim and every address no other owner needs. */
  async cleanup(): Promise<void> {
    let mine: string[] = []
    try {
      mine = JSON.parse(await readFile(this.#claimFile(), 'utf8')) as string[]
    } catch {}
    await rm(this.#claimFile(), { force: true })
    await this.release(mine)
  }

  #claimFile(): string {
    return join(this.#stateDir, `${this.#owner.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`)
  }

  async #otherClaims(): Promise<Set<string>> {
    const out = new Set<string>()
    let files: string[] = []
    try {
      files = await readdir(this.#stateDir)
    } catch {
      return out
    }
    const mine = this.#claimFile()
    for (const f of files) {
      if (!f.endsWith('.json') || join(this.#stateDir, f) === mine) continue
      try {
        for (const a of JSON.parse(await readFile(join(this.#stateDir, f), 'utf8')) as string[]) out.add(a)
      } catch {}
    }
    return out
  }
}

function ignoreExists(e: unknown): void {
  if (!/File exists/.test(String((e as { stderr?: string }).stderr ?? e))) throw e
}
