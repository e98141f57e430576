// The pod network across hosts on the real kernel, for host-gw and vxlan:
// three simulated hosts on one LAN segment and a fourth on a second segment
// behind a router (netns-hosts.ts), each running its PodNetwork in its own
// namespace (a child process entered with nsenter --net), fed Node objects
// as the API would serve them. Host 1 carries Docker's filter rules
// (FORWARD DROP, DOCKER-USER with node/network.ts's accepts). Traffic is
// real TCP between pod namespaces; nothing leaves the test's namespaces.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually } from '../../lib/net.ts'
import { routeProto, vxlanDefaults } from '../../node/pod-network/plan.ts'
import { nftTable } from '../../node/pod-network/nft.ts'
import { createSimNet, sh, type SimHost, type SimNet } from '../harness/netns-hosts.ts'
import { PodNetworkHost, simNode, tcpConnect, tcpServer } from '../harness/pod-network-host.ts'

const port = 8080
const outsidePort = 8081

async function ourRoutes(h: SimHost): Promise<Array<{ dst: string; gateway?: string; dev: string }>> {
  return JSON.parse((await sh('ip', ['-j', '-4', 'route', 'show', 'proto', String(routeProto)], { netns: h.ns })).stdout)
}

for (const mode of ['host-gw', 'vxlan'] as const) {
  t.test(`${mode}: pods reach pods on other hosts by pod IP, leave the cluster masqueraded, and routes follow Node readiness`, async (t) => {
    let net: SimNet | undefined
    const procs: PodNetworkHost[] = []
    const servers: Array<{ kill(): void }> = []
    const stateRoot = await mkdtemp(join(tmpdir(), 'skiff-podnet-'))
    t.teardown(async () => {
      if (t.passing() === false) for (const p of procs) t.comment(`${p.host.name} log:\n${p.logs.join('').slice(-4000)}`)
      for (const s of servers) s.kill()
      for (const p of procs) p.kill()
      await net?.remove()
      await rm(stateRoot, { recursive: true, force: true })
    })
    net = await createSimNet({ hosts: 3, routed: 1, podsPerHost: 2, dockerRulesOnFirstHost: true })
    const [h1, h2, h3, h4] = net.hosts as [SimHost, SimHost, SimHost, SimHost]
    const annotations: Record<string, Record<string, string>> = {}
    for (const h of net.hosts) {
      const p = new PodNetworkHost(h)
      procs.push(p)
      const started = await p.start({ mode, nodeName: h.name, nodeIP: h.ip, podCIDR: h.podCIDR, clusterCIDR: net.clusterCIDR, stateDir: join(stateRoot, h.name), resyncMs: 1_000 })
      t.equal(started.mtu, mode === 'vxlan' ? 1450 : 1500, `${h.name}: pod MTU`)
      t.equal(started.underlay, 'eth0')
      annotations[h.name] = started.annotations
    }
    await net.setPodMtu(mode === 'vxlan' ? 1450 : 1500)
    const nodes = (o: { notReady?: string } = {}) => net!.hosts.map((h) => simNode(h, { annotations: annotations[h.name], ready: h.name !== o.notReady }))
    const updateAll = async (o: { notReady?: string } = {}) => Promise.all(procs.map((p) => p.update(nodes(o))))
    const statuses = await updateAll()
    const diag = async () => (await Promise.all(procs.map(async (p) => (await p.status()).debug))).join('\n')

    for (const h of net.hosts) for (const p of h.pods) servers.push(await tcpServer(p.ns, p.ip, port))

    await t.test('pod to pod across hosts keeps the sender\'s pod IP', async (t) => {
      const pairs: Array<[SimHost, number, SimHost, number]> = [[h1, 0, h2, 0], [h2, 1, h1, 0], [h1, 0, h3, 1], [h3, 0, h2, 1], [h1, 1, h1, 0]]
      for (const [a, i, b, j] of pairs) {
        const from = a.pods[i]!
        const to = b.pods[j]!
        const r = await tcpConnect(from.ns, to.ip, port)
        t.same(r, { local: from.ip, seen: from.ip }, `${from.ip} (${a.name}) -> ${to.ip} (${b.name}): the receiver sees ${from.ip}${r.error ? `\n${await diag()}` : ''}`)
      }
    })

    await t.test('a host on another segment: host-gw refuses it with a coded error, vxlan reaches it', async (t) => {
      const s1 = statuses[0]!
      const p4 = s1.peers.find((p) => p.node === h4.name)!
      const routesToH4 = (await ourRoutes(h1)).filter((r) => r.dst === h4.podCIDR)
      if (mode === 'host-gw') {
        t.equal(p4.state, 'refused')
        t.equal(p4.reason, 'not-on-link')
        t.match(s1.errors.join('\n'), new RegExp(`SKIFF_ERR_PODNET_NOT_ON_LINK: node ${h4.name}'s InternalIP ${h4.ip.replaceAll('.', '\\.')} is not in a subnet .* use --pod-network vxlan`))
        t.same(routesToH4, [], 'no broken route installed')
        t.match((await procs[0]!.status()).metrics, /skiff_pod_network_peer_problems\{reason="not-on-link"\} 1/)
        // h4 itself refuses all three others.
        t.same(statuses[3]!.peers.map((p) => p.reason), ['not-on-link', 'not-on-link', 'not-on-link'])
      } else {
        t.equal(p4.state, 'routed')
        t.same(statuses.map((s) => s.errors), [[], [], [], []], 'no problems anywhere')
        const r = await tcpConnect(h1.pods[0]!.ns, h4.pods[0]!.ip, port)
        t.same(r, { local: h1.pods[0]!.ip, seen: h1.pods[0]!.ip }, 'pod on h1 -> pod on the routed host')
        const back = await tcpConnect(h4.pods[1]!.ns, h2.pods[0]!.ip, port)
        t.same(back, { local: h4.pods[1]!.ip, seen: h4.pods[1]!.ip }, 'and back to h2')
      }
    })

    await t.test('leaving the cluster is masqueraded to the host\'s InternalIP', async (t) => {
      servers.push(await tcpServer(net!.lan.ns, net!.lan.routerIP, outsidePort))
      for (const h of [h1, h2]) {
        const r = await tcpConnect(h.pods[0]!.ns, net!.lan.routerIP, outsidePort)
        t.same(r, { local: h.pods[0]!.ip, seen: h.ip }, `${h.pods[0]!.ip} -> ${net!.lan.routerIP} arrives from ${h.name}'s InternalIP ${h.ip}`)
      }
    })

    await t.test('a peer going NotReady loses its routes on the others and gets them back', async (t) => {
      const dst = h3.pods[0]!.ip
      await updateAll({ notReady: h3.name })
      for (const h of [h1, h2]) t.same((await ourRoutes(h)).filter((r) => r.dst === h3.podCIDR), [], `${h.name} has no route to ${h3.name}'s pods`)
      t.equal((await procs[0]!.status()).status.peers.find((p) => p.node === h3.name)?.reason, 'not-ready')
      const cut = await tcpConnect(h1.pods[0]!.ns, dst, port)
      t.ok(cut.error, `${dst} is unreachable from h1 (${cut.error})`)
      await updateAll()
      for (const h of [h1, h2]) t.equal((await ourRoutes(h)).filter((r) => r.dst === h3.podCIDR).length, 1, `${h.name} routes ${h3.name}'s pods again`)
      t.same(await tcpConnect(h1.pods[0]!.ns, dst, port), { local: h1.pods[0]!.ip, seen: h1.pods[0]!.ip }, 'traffic flows again')
    })

    await t.test('the resync puts back a deleted route and deletes a stale one of ours, and leaves other routes alone', async (t) => {
      await sh('ip', ['route', 'del', h3.podCIDR, 'proto', String(routeProto)], { netns: h2.ns })
      const stale = '10.244.99.0/24'
      await sh('ip', ['route', 'add', stale, 'via', h1.ip, 'proto', String(routeProto)], { netns: h2.ns })
      const foreign = '10.244.98.0/24'
      await sh('ip', ['route', 'add', foreign, 'via', h1.ip, 'proto', 'static'], { netns: h2.ns })
      await eventually(async () => {
        const r = await ourRoutes(h2)
        return r.some((x) => x.dst === h3.podCIDR) && !r.some((x) => x.dst === stale)
      }, { timeout: 10_000, what: 'the resync to repair h2' })
      t.pass('route to h3 back, stale route gone')
      t.match((await sh('ip', ['-4', 'route', 'show', foreign], { netns: h2.ns })).stdout, /via/, 'someone else\'s route stays')
      await sh('ip', ['route', 'del', foreign], { netns: h2.ns })
    })

    // Only vxlan has an overlay device and a self-check (host-gw's own checks are above).
    if (mode === 'vxlan') {
      await t.test('the overlay self-check reports a peer whose VXLAN packets are dropped, and clears when they pass again', async (t) => {
        const status = async () => (await procs[0]!.status()).status
        t.same((await status()).errors, [], 'all peers answer through the overlay')
        // h3 drops incoming VXLAN: h1's probes to h3 get no answer.
        await sh('nft', ['add table ip pntest; add chain ip pntest in { type filter hook input priority -10; policy accept; }; add rule ip pntest in udp dport 8472 drop'], { netns: h3.ns })
        const s = await eventually(async () => {
          const st = await status()
          return st.problems.some((p) => p.node === h3.name && p.reason === 'overlay-unreachable') ? st : undefined
        }, { timeout: 20_000, what: 'h1 to report h3\'s overlay' })
        t.match(s.errors.join('\n'), /SKIFF_ERR_PODNET_OVERLAY_TCP: TCP through the overlay to node .*-h3 gets no answer/)
        t.equal(s.peers.find((p) => p.node === h3.name)?.state, 'routed', 'the routes stay: the problem is on the path, not in the plan')
        await sh('nft', ['delete', 'table', 'ip', 'pntest'], { netns: h3.ns })
        await eventually(async () => (await status()).errors.length === 0, { timeout: 20_000, what: 'the overlay problem to clear' })
        t.pass('cleared')
      })

      await t.test('the VTEP MAC is kept across restarts', async (t) => {
        const before = annotations[h2.name]!['skiff.dev/vtep-mac']
        await procs[1]!.stop()
        const again = new PodNetworkHost(h2)
        procs[1] = again
        const started = await again.start({ mode, nodeName: h2.name, nodeIP: h2.ip, podCIDR: h2.podCIDR, clusterCIDR: net!.clusterCIDR, stateDir: join(stateRoot, h2.name), resyncMs: 1_000 })
        t.equal(started.annotations['skiff.dev/vtep-mac'], before)
        await again.update(nodes())
        t.same(await tcpConnect(h1.pods[0]!.ns, h2.pods[0]!.ip, port), { local: h1.pods[0]!.ip, seen: h1.pods[0]!.ip }, 'peers\' entries still right')
      })
    }

    await t.test('stop with cleanup removes routes, device and table', async (t) => {
      for (const p of procs) await p.stop({ cleanup: true })
      for (const h of net!.hosts) {
        t.same(await ourRoutes(h), [], `${h.name}: no routes of ours`)
        t.not((await sh('ip', ['link', 'show', vxlanDefaults.device], { netns: h.ns, allowFail: true })).code, 0, `${h.name}: no ${vxlanDefaults.device}`)
        t.not((await sh('nft', ['list', 'table', 'ip', nftTable], { netns: h.ns, allowFail: true })).code, 0, `${h.name}: no table ${nftTable}`)
      }
    })
  })
}
