// A LAN of network namespaces for data-plane tests (the LoadBalancer
// speaker): one namespace holding only a bridge, and one namespace per
// simulated host with its leg `eth0` on that bridge and an address of a /24
// that no interface or route of this machine uses. The bridge lives in its
// own namespace, so nothing is added to the machine's namespace (no route,
// no address) and Docker's FORWARD rules never see the LAN's frames. Names
// carry a random tag; teardown deletes every namespace (and with them the
// links and addresses in them), also when the test fails.

import { randomBytes } from 'node:crypto'
import { run } from '../../dataplane/lb-speaker/addresses.ts'
import { cidrsOverlap, intToIp, parseCidr } from '../../lib/ipv4.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface LanHost {
  name: string
  netns: string
  /** eth0's address on the LAN. */
  ip: string
  /** eth0's MAC, lower case. */
  mac: string
}

export interface TestLan {
  cidr: string
  /** The n-th address of the LAN's /24. */
  address(n: number): string
  hosts: LanHost[]
  host(name: string): LanHost
  /** Run a command in a host's namespace; resolves stdout. */
  sh(host: LanHost, cmd: string, args: string[]): Promise<string>
}

/** A 10.251.X.0/24 that overlaps no IPv4 address or route of this machine (X from the process ID on). */
async function freeLanCidr(): Promise<string> {
  const used: string[] = []
  for (const l of JSON.parse(await run(undefined, 'ip', ['-j', '-4', 'addr', 'show'])) as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>) {
    for (const a of l.addr_info ?? []) used.push(`${a.local}/${a.prefixlen}`)
  }
  for (const r of JSON.parse(await run(undefined, 'ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as Array<{ dst?: string }>) {
    if (r.dst && r.dst !== 'default') used.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
  }
  for (let i = 0; i < 256; i++) {
    const cidr = `10.251.${(process.pid + i) % 256}.0/24`
    if (!used.some((u) => cidrsOverlap(u, cidr))) return cidr
  }
  throw new Error('no free 10.251.X.0/24 on this machine')
}

/** The LAN and one namespace per name in `hosts` (host i gets .(11 + i)). */
export async function startTestLan(t: Teardown, o: { hosts: string[] }): Promise<TestLan> {
  const tag = randomBytes(3).toString('hex')
  const created: string[] = []
  t.teardown(async () => {
    for (const ns of created.reverse()) await run(undefined, 'ip', ['netns', 'del', ns]).catch(() => undefined)
  })
  const cidr = await freeLanCidr()
  const base = parseCidr(cidr).base
  const address = (n: number) => intToIp(base + n)
  const lanNs = `sklb-${tag}-lan`
  await run(undefined, 'ip', ['netns', 'add', lanNs])
  created.push(lanNs)
  await run(lanNs, 'ip', ['link', 'add', 'br0', 'type', 'bridge'])
  await run(lanNs, 'ip', ['link', 'set', 'br0', 'up'])
  const hosts: LanHost[] = []
  for (const [i, name] of o.hosts.entries()) {
    const netns = `sklb-${tag}-${i + 1}`
    const leg = `v${tag}h${i + 1}`
    await run(undefined, 'ip', ['netns', 'add', netns])
    created.push(netns)
    await run(undefined, 'ip', ['-n', netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', leg, 'netns', lanNs])
    await run(lanNs, 'ip', ['link', 'set', leg, 'master', 'br0', 'up'])
    const ip = address(11 + i)
    await run(netns, 'ip', ['link', 'set', 'lo', 'up'])
    await run(netns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    await run(netns, 'ip', ['link', 'set', 'eth0', 'up'])
    const link = JSON.parse(await run(netns, 'ip', ['-j', 'link', 'show', 'eth0'])) as Array<{ address: string }>
    hosts.push({ name, netns, ip, mac: link[0]!.address.toLowerCase() })
  }
  return {
    cidr,
    address,
    hosts,
    host(name) {
      const h = hosts.find((x) => x.name === name)
      if (!h) throw new Error(`no LAN host ${name}`)
      return h
    },
    sh: (host, cmd, args) => run(host.netns, cmd, args),
  }
}
