// The LoadBalancer speaker on a real LAN: three speakers in this process,
// each bound to its own network namespace on a bridge, against the real
// apiserver with each node's own identity; a fourth namespace is the client.
// The test renews each node's Lease itself (as each agent's heartbeat
// would) and sets the Service's status.loadBalancer as the controller would.
// It proves from the client that exactly one node answers ARP (and TCP) for
// the IP, that a silent control plane moves nothing, that a dead node's IP
// moves within 15 s (the client's neighbour entry switches by gratuitous
// ARP alone), that a returning node takes its IP back, and that
// stop({ withdraw: true }) leaves nothing behind.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { ApiClient } from '../../controlplane/client/client.ts'
import { inNetns } from '../../dataplane/lb-speaker/addresses.ts'
import { rankNodes, speakerLabel } from '../../dataplane/lb-speaker/election.ts'
import { LoadBalancerSpeaker } from '../../dataplane/lb-speaker/speaker.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { eventually } from '../../lib/net.ts'
import { renewLease } from '../../node/heartbeat.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { startTestLan } from '../harness/lan.ts'
import { nodeIdentities, testNodeNames } from '../harness/node.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const servicesInfo = lookupResource('', 'v1', 'services')!
const eventsInfo = lookupResource('', 'v1', 'events')!

const deadlineMs = 10_000 // the speaker's default
const renewEveryMs = 2_000
const port = 8080

t.test('one node answers for a LoadBalancer IP on the LAN; failover, control-plane silence, withdraw', { timeout: 240_000 }, async (t) => {
  const names = testNodeNames(3, 'lb')
  const cluster = await startTestCluster(t, { identities: nodeIdentities(names) })
  const lan = await startTestLan(t, { hosts: [...names, 'client'] })
  const client = lan.host('client')
  const vip = lan.address(200)
  const stateDir = await mkdtemp(join(tmpdir(), 'skiff-lb-speaker-'))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
  const nodeClient = (n: string): ApiClient => cluster.clientFor(cluster.tokens.get(`system:node:${n}`)!)
  const clients = new Map(names.map((n) => [n, nodeClient(n)]))
  const mac = (n: string) => lan.host(n).mac

  // --- Nodes (Ready, InternalIP on the LAN) and their Leases, renewed by the test ---
  for (const n of names) {
    await cluster.client.create(nodesInfo, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: n }, spec: {} })
    await cluster.client.patch(nodesInfo, undefined, n, {
      status: { addresses: [{ type: 'InternalIP', address: lan.host(n).ip }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] },
    }, 'application/merge-patch+json', 'status')
  }
  const renewing = new Set(names)
  const inflight = new Map<string, Promise<void>>()
  const lastRenewedAt = new Map<string, number>()
  const renewAll = () => {
    for (const n of renewing) {
      if (inflight.has(n)) continue
      const p = renewLease(clients.get(n)!, n)
        .then(() => void lastRenewedAt.set(n, performance.now()))
        .catch((e) => t.comment(`lease renewal of ${n} failed: ${(e as Error).message}`))
        .finally(() => inflight.delete(n))
      inflight.set(n, p)
    }
  }
  renewAll()
  await Promise.all(inflight.values())
  const renewer = setInterval(renewAll, renewEveryMs)
  t.teardown(() => clearInterval(renewer))
  const stopRenewing = async (...ns: string[]) => {
    for (const n of ns) renewing.delete(n)
    await Promise.all(ns.map((n) => inflight.get(n)))
  }

  // --- A LoadBalancer Service whose status holds the IP (as the controller writes it) ---
  await cluster.client.create(servicesInfo, 'default', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ port: 80, targetPort: port, protocol: 'TCP' }] },
  })
  const svc = await cluster.client.get(servicesInfo, 'default', 'web')
  await cluster.client.update(servicesInfo, { ...svc, status: { loadBalancer: { ingress: [{ ip: vip, ipMode: 'VIP' }] } } }, 'status')

  // --- In each node's namespace a TCP server that says which node it is (bound to any address) ---
  const servers: ChildProcess[] = []
  t.teardown(() => {
    for (const p of servers) p.kill('SIGKILL')
  })
  for (const n of names) {
    const [file, argv] = inNetns(lan.host(n).netns, process.execPath, ['-e', `require('net').createServer((s) => s.end(${JSON.stringify(n)})).listen(${port}, '0.0.0.0')`])
    servers.push(spawn(file, argv, { stdio: 'ignore' }))
  }

  // --- The speakers ---
  const speakers = new Map<string, LoadBalancerSpeaker>()
  t.teardown(async () => {
    for (const s of speakers.values()) await s.stop({ withdraw: true }).catch(() => undefined)
  })
  const startSpeaker = async (n: string) => {
    const s = new LoadBalancerSpeaker({ client: clients.get(n)!, nodeName: n, interface: 'eth0', netns: lan.host(n).netns, logger, registry: createRegistry(), stateDir })
    speakers.set(n, s)
    await s.start()
    return s
  }
  for (const n of names) await startSpeaker(n)

  // --- What the client sees ---
  /** MACs answering an ARP request for the VIP (arping: broadcast requests, every reply listed). */
  const arpingMacs = async (): Promise<string[]> => {
    const out = await lan.sh(client, 'arping', ['-c', '2', '-w', '3', '-I', 'eth0', vip]).catch((e) => String((e as Error).message))
    return [...new Set([...out.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()))].sort()
  }
  /** The node whose TCP server answers on VIP:port. */
  const whoAnswers = async (): Promise<string> => {
    const script = `const s = require('net').connect(${port}, ${JSON.stringify(vip)}); let d = ''; s.setTimeout(3000, () => process.exit(2)); s.on('data', (c) => (d += c)); s.on('end', () => { process.stdout.write(d); process.exit(0) }); s.on('error', () => process.exit(1))`
    return (await lan.sh(client, process.execPath, ['-e', script])).trim()
  }
  /** The client's neighbour entry for the VIP (no traffic sent). */
  const neighMac = async (): Promise<string | undefined> => {
    const entries = JSON.parse(await lan.sh(client, 'ip', ['-j', 'neigh', 'show', vip, 'dev', 'eth0'])) as Array<{ lladdr?: string }>
    return entries[0]?.lladdr?.toLowerCase()
  }
  const holders = async (): Promise<string[]> => {
    const out: string[] = []
    for (const n of names) {
      const addrs = JSON.parse(await lan.sh(lan.host(n), 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0'])) as Array<{ addr_info: Array<{ local: string }> }>
      if (addrs[0]!.addr_info.some((a) => a.local === vip)) out.push(n)
    }
    return out
  }
  const owners = () => [...speakers].filter(([, s]) => s.announcing.includes(vip)).map(([n]) => n)
  const views = () => [...speakers.values()].map((s) => s.assignments.find((a) => a.ip === vip)?.node)

  await t.test('exactly one node, the first by sha256(node#ip), answers for the IP', async (t) => {
    const first = rankNodes(vip, names)[0]!
    await eventually(() => views().every((v) => v === first) && owners().join() === first, { timeout: 10_000, what: `every speaker electing ${first}` })
    t.same(await holders(), [first], 'only its eth0 holds the IP')
    await eventually(async () => (await arpingMacs()).join() === mac(first), { timeout: 10_000, what: 'one ARP answer' })
    t.same(await arpingMacs(), [mac(first)], 'one MAC answers ARP: the elected node\'s')
    t.equal(await whoAnswers(), first, 'TCP to the IP reaches the elected node')
    t.equal(await neighMac(), mac(first), "the client's neighbour entry points at it")
    for (const n of names) t.equal((await cluster.client.get(nodesInfo, undefined, n)).metadata.labels?.[speakerLabel], 'eth0', `${n} is labelled a speaker node`)
    // Speakers started one after the other: the first to start announced alone until the others joined, so look for the owner's Event.
    const message = `announcing from node "${first}" with protocol "layer2"`
    const ev = await eventually(async () => (await cluster.client.list(eventsInfo, 'default')).items.find((e: any) => e.reason === 'nodeAssigned' && e.message === message), { what: 'the nodeAssigned Event' })
    t.match(ev, { type: 'Normal', involvedObject: { kind: 'Service', name: 'web', namespace: 'default' }, source: { component: 'skiff-lb-speaker' } }, `Event: ${message}`)
    t.match(await speakers.get(first)!.metrics.registry.metrics(), `skiff_lb_speaker_announced{ip="${vip}",service="default/web",node="${first}"} 1`)
    t.match(speakers.get(first)!.debugText(), `ip ${vip} default/web -> ${first} (this node) [3 candidates]`)
  })

  await t.test('a silent control plane (no Lease changes at all) moves nothing', async (t) => {
    const first = rankNodes(vip, names)[0]!
    await stopRenewing(...names)
    const until = performance.now() + deadlineMs + 5_000
    let frozenSeen = false
    const moves: string[] = []
    while (performance.now() < until) {
      const seen = `views=${views().join(',')} owners=${owners().join(',')}`
      if (seen !== `views=${first},${first},${first} owners=${first}`) moves.push(seen)
      frozenSeen ||= [...speakers.values()].every((s) => s.liveness?.frozen)
      await new Promise((r) => setTimeout(r, 250))
    }
    t.same(moves, [], `every speaker kept ${first} as the owner for ${(deadlineMs + 5_000) / 1000} s without a Lease change`)
    t.ok(frozenSeen, 'every speaker took the control plane as down (verdict frozen)')
    t.same(await arpingMacs(), [mac(first)], 'still one MAC answers')
    // The control plane is back: renewals resume one by one; nothing flaps.
    for (const n of names) renewing.add(n)
    renewAll()
    await eventually(() => [...speakers.values()].every((s) => s.liveness && !s.liveness.frozen), { timeout: 5_000, what: 'every speaker judging again' })
    const calmUntil = performance.now() + 4_000
    const flaps: string[] = []
    while (performance.now() < calmUntil) {
      if (owners().join() !== first || views().some((v) => v !== first)) flaps.push(`views=${views().join(',')} owners=${owners().join(',')}`)
      await new Promise((r) => setTimeout(r, 250))
    }
    t.same(flaps, [], 'nothing moves after the thaw')
  })

  await t.test('a dead node\'s IP moves to the next node within 15 s; the client follows by gratuitous ARP', async (t) => {
    const victim = rankNodes(vip, names)[0]!
    const successor = rankNodes(vip, names.filter((n) => n !== victim))[0]!
    t.equal(await neighMac(), mac(victim), 'the client has the victim cached')
    // The victim's agent dies: no more renewals, its speaker stops without withdrawing (its host stays up).
    await stopRenewing(victim)
    const lastRenewal = lastRenewedAt.get(victim)!
    await speakers.get(victim)!.stop()
    const died = performance.now()
    let takeoverAt = 0
    let neighAt = 0
    await eventually(async () => {
      if (!takeoverAt && speakers.get(successor)!.announcing.includes(vip)) takeoverAt = performance.now()
      if (!neighAt && (await neighMac()) === mac(successor)) neighAt = performance.now()
      return takeoverAt && neighAt
    }, { timeout: 25_000, interval: 100, what: `${successor} taking over and the client's neighbour entry following` })
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
    t.comment(`failover: takeover ${s(takeoverAt - lastRenewal)} after the victim's last renewal (${s(takeoverAt - died)} after its speaker stopped); client neighbour entry updated ${s(neighAt - lastRenewal)} after the last renewal`)
    t.ok(neighAt - lastRenewal < 15_000, `the client reaches the new owner within 15 s of the last renewal (${s(neighAt - lastRenewal)})`)
    t.ok(neighAt - died < 15_000, `and within 15 s of the death (${s(neighAt - died)})`)
    // The dead speaker's address expires by itself (kernel lifetime), so one node answers again.
    await eventually(async () => (await holders()).join() === successor, { timeout: 15_000, what: "the victim's address expiring" })
    t.same(await arpingMacs(), [mac(successor)], 'one MAC answers ARP: the successor\'s')
    t.equal(await whoAnswers(), successor, 'TCP to the IP reaches the successor')
    await eventually(async () => (await cluster.client.list(eventsInfo, 'default')).items.some((e: any) => e.reason === 'nodeAssigned' && e.message.includes(`"${successor}"`)), { what: "the successor's nodeAssigned Event" })
    t.pass('the successor recorded its nodeAssigned Event')
  })

  await t.test('the node comes back: a new speaker takes its IP back (it sorts first), one node answers', async (t) => {
    const first = rankNodes(vip, names)[0]!
    renewing.add(first)
    renewAll()
    await startSpeaker(first)
    await eventually(() => owners().join() === first && views().every((v) => v === first), { timeout: 10_000, what: `${first} announcing again` })
    await eventually(async () => (await holders()).join() === first, { timeout: 10_000, what: 'only the returning node holding the IP' })
    await eventually(async () => (await neighMac()) === mac(first), { timeout: 5_000, what: 'the client following by gratuitous ARP' })
    t.same(await arpingMacs(), [mac(first)])
    t.equal(await whoAnswers(), first)
  })

  await t.test('stop({ withdraw: true }) removes every address, record and label', async (t) => {
    for (const s of speakers.values()) await s.stop({ withdraw: true })
    t.same(await holders(), [], 'no namespace holds the IP')
    for (const n of names) {
      const addrs = JSON.parse(await lan.sh(lan.host(n), 'ip', ['-j', '-4', 'addr', 'show'])) as Array<{ addr_info: Array<{ local: string }> }>
      t.same(addrs.flatMap((l) => l.addr_info.map((a) => a.local)).sort(), ['127.0.0.1', lan.host(n).ip].sort(), `${n} keeps only its own addresses`)
      t.equal((await cluster.client.get(nodesInfo, undefined, n)).metadata.labels?.[speakerLabel], undefined, `${n} is no longer labelled`)
    }
    t.same(await readdir(stateDir), [], 'no state file left')
    t.same(await arpingMacs(), [], 'nobody answers ARP for the IP')
  })
})
