// The cluster DNS keeps answering while the service proxy's full sync runs
// in the same process (the agent runs both): a full nftables sync at 1,000
// Services / 10,000 endpoints (buildRoutingTable, then a fresh
// NftablesBackend's apply: model + full script in JavaScript, then `nft -f`
// of the whole ruleset), repeated for a few seconds on the main thread,
// while a client on its own thread sends a steady stream of queries.
//
// With the queries answered in worker threads (the default) every query is
// answered, none waits as long as a sync (itself required to be long), and
// answers keep arriving inside the stretches where the main thread is
// blocked (counted, not timed); the same run with `workers: 0` (answers
// on the main thread) is the control: its answers stop for about as long as
// the main thread is blocked, which shows that the load really stalls an
// event loop.
//
// The table is scoped to a node of its own (table skiff-<hash of the name>),
// its ClusterIPs (198.18.0.0/16) and endpoints (198.19.0.0/16) in the
// benchmarking range no other test uses; it is deleted at the end, also on
// failure.

import t, { type Test } from 'tap'
import { Worker } from 'node:worker_threads'
import dnsPacket from 'dns-packet'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ClusterDns } from '../../dataplane/dns/server.ts'
import { NftablesBackend, removeServiceProxyTable } from '../../dataplane/service-proxy/nftables.ts'
import { buildRoutingTable } from '../../dataplane/service-proxy/table.ts'
import type { NodeView } from '../../dataplane/service-proxy/types.ts'
import { silentLogger } from '../../lib/log.ts'
import { freePort } from '../../lib/net.ts'
import { startTestCluster } from '../harness/cluster.ts'

const svcs = lookupResource('', 'v1', 'services')!
const nServices = 1000
const perService = 10
const syncForMs = 3000
const queryEveryMs = 2

/** Services and EndpointSlices as the informers would hold them (no API: only the proxy's inputs). */
function proxyInputs(): { services: KubeObject[]; slices: KubeObject[] } {
  const services: KubeObject[] = []
  const slices: KubeObject[] = []
  for (let i = 0; i < nServices; i++) {
    const name = `s${i}`
    services.push({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'dns-sync', name, resourceVersion: '1' }, spec: { type: 'ClusterIP', clusterIP: `198.18.${i >> 8}.${i & 0xff}`, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } })
    slices.push({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
      metadata: { namespace: 'dns-sync', name: `${name}-1`, resourceVersion: '1', labels: { 'kubernetes.io/service-name': name } },
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: Array.from({ length: perService }, (_, j) => {
        const n = i * perService + j
        return { addresses: [`198.19.${n >> 8}.${n & 0xff}`], conditions: { ready: true, serving: true, terminating: false } }
      }),
    })
  }
  return { services, slices }
}

/** The client: its own thread and event loop, one A query every `every` ms until told to stop; then 1 s for late replies. */
const clientCode = `
const { parentPort, workerData } = require('node:worker_threads')
const dgram = require('node:dgram')
const { port, every, query } = workerData
const sock = dgram.createSocket('udp4')
const sent = new Map()
let id = 0, answered = 0, maxLatency = 0, lastAnswer = 0, maxGap = 0
const answeredAt = [] // wall-clock ms (timeOrigin + now): comparable with the main thread's
sock.on('message', (m) => {
  const t0 = sent.get(m.readUInt16BE(0))
  if (t0 === undefined) return
  sent.delete(m.readUInt16BE(0))
  const now = performance.now()
  answered++
  maxLatency = Math.max(maxLatency, now - t0)
  if (lastAnswer) maxGap = Math.max(maxGap, now - lastAnswer)
  lastAnswer = now
  answeredAt.push(performance.timeOrigin + now)
})
const timer = setInterval(() => {
  id++
  const q = Buffer.from(query)
  q.writeUInt16BE(id, 0)
  sent.set(id, performance.now())
  sock.send(q, port, '127.0.0.1')
}, every)
parentPort.on('message', () => {
  clearInterval(timer)
  setTimeout(() => {
    parentPort.postMessage({ sent: id, answered, unanswered: sent.size, maxLatency, maxGap, answeredAt })
    sock.close()
    parentPort.close()
  }, 1000)
})
`

interface ClientResult {
  sent: number
  answered: number
  unanswered: number
  maxLatency: number
  maxGap: number
  answeredAt: number[]
}

function startClient(t: Test, port: number): { stop(): Promise<ClientResult> } {
  const query = dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'web.default.svc.cluster.local' }] })
  const w = new Worker(clientCode, { eval: true, workerData: { port, every: queryEveryMs, query: new Uint8Array(query) } })
  t.teardown(() => w.terminate())
  const result = new Promise<ClientResult>((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  return { stop: () => (w.postMessage('stop'), result) }
}

/** Full syncs back to back for `syncForMs`; the longest synchronous stretch (the main thread blocked) and the longest whole sync. */
async function fullSyncs(nodeName: string): Promise<{ syncs: number; maxBlockMs: number; maxSyncMs: number; blocks: Array<[number, number]> }> {
  const { services, slices } = proxyInputs()
  const node: NodeView = { name: nodeName, addresses: [], podCIDR: '198.19.255.0/24', clusterCIDR: '198.19.0.0/16' }
  let syncs = 0
  let maxBlockMs = 0
  let maxSyncMs = 0
  // Each synchronous stretch as wall-clock [start, end] ms, to find the answers that arrived inside it.
  const blocks: Array<[number, number]> = []
  const start = performance.now()
  while (performance.now() - start < syncForMs || syncs < 2) {
    const t0 = performance.now()
    // A fresh backend has no model: every apply is a full sync (the whole table replaced).
    const backend = new NftablesBackend({ nodeName, logger: silentLogger() })
    const applied = backend.apply(buildRoutingTable(services, slices, node, ++syncs))
    maxBlockMs = Math.max(maxBlockMs, performance.now() - t0)
    blocks.push([performance.timeOrigin + t0, performance.timeOrigin + performance.now()])
    const { rules } = await applied
    if (rules < nServices * perService) throw new Error(`a full sync made only ${rules} rules`)
    maxSyncMs = Math.max(maxSyncMs, performance.now() - t0)
  }
  return { syncs, maxBlockMs, maxSyncMs, blocks }
}

async function run(t: Test, workers: number) {
  const c = await startTestCluster(t)
  await c.client.create(svcs, 'default', { metadata: { name: 'web' }, spec: { clusterIP: '10.96.7.7', ports: [{ port: 80 }] } })
  const port = await freePort()
  const dns = new ClusterDns({ client: c.client, logger: silentLogger(), listen: [{ host: '127.0.0.1', port }], upstreams: [], workers })
  t.teardown(() => dns.stop())
  await dns.start()
  await dns.whenSynced()
  const nodeName = `dns-sync-${process.pid}-${workers}`
  t.teardown(() => removeServiceProxyTable(nodeName))

  const client = startClient(t, port)
  await new Promise((r) => setTimeout(r, 200))
  const sync = await fullSyncs(nodeName)
  const r = await client.stop()
  t.comment(`workers ${workers}: ${sync.syncs} full syncs, longest ${sync.maxSyncMs.toFixed(0)} ms, main thread blocked up to ${sync.maxBlockMs.toFixed(0)} ms; ${r.sent} queries, ${r.answered} answered, longest reply ${r.maxLatency.toFixed(1)} ms, longest gap between answers ${r.maxGap.toFixed(1)} ms`)
  t.ok(sync.maxSyncMs >= 300, `a full sync is long (${sync.maxSyncMs.toFixed(0)} ms >= 300 ms)`)
  t.ok(sync.maxBlockMs >= 50, `and blocks the main thread for a while (${sync.maxBlockMs.toFixed(0)} ms >= 50 ms)`)
  return { sync, r }
}

t.test('DNS answers from worker threads while a full 10,000-endpoint nftables sync runs in the same process', async (t) => {
  const { sync, r } = await run(t, 2)
  t.equal(r.unanswered, 0, 'every query answered')
  t.equal(r.answered, r.sent, 'no query lost')
  // Relative to the same run's sync and block, not to fixed times: with two test files on two cores the whole process
  // can be starved for a while (CI once: gap 915 ms while the main thread was blocked 1,140 ms and a sync took 1,756 ms).
  // Answered on the main thread, the gap is at least the block (the control below).
  t.ok(r.maxLatency < sync.maxSyncMs, `no reply waited for a whole sync (longest ${r.maxLatency.toFixed(1)} ms, a sync ${sync.maxSyncMs.toFixed(0)} ms)`)
  // Answers that arrived while the main thread was inside a synchronous stretch (the middle of it: a reply sent just
  // before a stretch can still land at its start). On the main thread there are none; from the workers there are many.
  // Counted, not timed: with another test file on the other core every gap stretches (once: a gap of 126 ms against
  // a block of 120 ms), but answers inside the blocks still come only from threads the block does not stop.
  const inside = r.answeredAt.filter((a) => sync.blocks.some(([b0, b1]) => b1 - b0 >= 50 && a > b0 + 10 && a < b1 - 10)).length
  t.comment(`longest gap between answers ${r.maxGap.toFixed(1)} ms, main thread blocked up to ${sync.maxBlockMs.toFixed(0)} ms`)
  t.ok(inside > 0, `answers keep coming while the main thread is blocked: ${inside} of ${r.answered} arrived inside a block (a sync ${sync.maxSyncMs.toFixed(0)} ms)`)
})

t.test('control: answered on the main thread, the same sync stalls DNS', async (t) => {
  const { sync, r } = await run(t, 0)
  const inside = r.answeredAt.filter((a) => sync.blocks.some(([b0, b1]) => b1 - b0 >= 50 && a > b0 + 10 && a < b1 - 10)).length
  t.comment(`${inside} of ${r.answered} answers arrived inside a block (from replies sent before it, when the client thread was late)`)
  // A quarter: with another test file on the other core the blocks stretch and interleave (once: gap 572 ms, block 1,273 ms).
  t.ok(r.maxGap >= sync.maxBlockMs / 4, `answers stop while the main thread is blocked: gap ${r.maxGap.toFixed(1)} ms, block ${sync.maxBlockMs.toFixed(0)} ms`)
})
