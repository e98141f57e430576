// One DNS worker thread (started by workers.ts): its own UDP and TCP sockets
// on the listen addresses (SO_REUSEPORT, shared with the other workers), its
// own event loop, and the handler chain on the zone the main thread posts
// (zone-wire.ts). Cluster names, REFUSED and malformed messages are answered
// here; names for the forwarder go to the main thread (one upstream socket
// and one cache per node) and the reply comes back to be sent from here.
// Counts are kept in a DnsStats and read by the main thread on scrape.

import { parentPort, workerData } from 'node:worker_threads'
import type { Server, Socket as TcpSocket } from 'node:net'
import type { Socket } from 'node:dgram'
import { buildChain } from './chain.ts'
import type { CompiledZone } from './compile.ts'
import { answerWith, closeListeners, listenTcp, listenUdp } from './listen.ts'
import { DnsStats } from './metrics.ts'
import { RCODE, rcodeReply, type Query } from './wire.ts'
import type { FromWorker, ToWorker, WorkerSetup } from './workers.ts'
import { decodeZone } from './zone-wire.ts'

const setup = workerData as WorkerSetup
const port = parentPort!
const post = (m: FromWorker) => port.postMessage(m)
const log = (level: 'warn' | 'error', msg: string, fields: Record<string, unknown>) => post({ type: 'log', level, msg, fields })

const stats = new DnsStats()
let zone: CompiledZone | undefined
const maxPending = 4096
const forwardTimeoutMs = 30_000
const pending = new Map<number, (b: Buffer | null) => void>()
let nextId = 1

/** The forward handler's view of the main thread's Forwarder. */
const remoteForwarder = {
  resolve(q: Query): Promise<Buffer> {
    if (pending.size >= maxPending) return Promise.resolve(rcodeReply(q, RCODE.SERVFAIL))
    const id = nextId++
    return new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => done(null), forwardTimeoutMs)
      const done = (b: Buffer | null) => {
        clearTimeout(timer)
        pending.delete(id)
        resolve(b)
      }
      pending.set(id, done)
      // A copy: q.msg may be a view into a larger pooled buffer, which would be cloned whole.
      post({ type: 'forward', id, msg: new Uint8Array(q.msg), transport: q.transport, client: q.client })
    }).then((b) => b ?? rcodeReply(q, RCODE.SERVFAIL))
  },
}

const chain = buildChain({
  origin: setup.origin, metrics: stats, forwarder: remoteForwarder,
  synced: () => zone !== undefined,
  zone: () => zone,
  allowRecursion: setup.allowRecursion,
})
const answer = answerWith(chain, (e) => log('error', 'DNS handler failed', { err: (e as Error)?.message }))
const udp: Socket[] = []
const tcp: Server[] = []
const conns = new Set<TcpSocket>()

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'zone':
      try {
        zone = decodeZone(m.zone)
      } catch (e) {
        log('error', 'cannot read the zone block', { err: (e as Error).message })
      }
      post({ type: 'zoneApplied', serial: m.serial })
      break
    case 'forwarded':
      pending.get(m.id)?.(m.reply ? Buffer.from(m.reply.buffer, m.reply.byteOffset, m.reply.byteLength) : null)
      break
    case 'stats':
      post({ type: 'stats', id: m.id, stats: stats.snapshot() })
      break
    case 'stop':
      for (const done of pending.values()) done(null)
      void closeListeners(udp, tcp, conns).then(() => {
        post({ type: 'stopped' })
        port.close()
      })
      break
  }
})

try {
  for (const l of setup.listen) {
    udp.push(await listenUdp({ host: l.host, port: l.udp }, answer, { reusePort: true, onError: (e) => log('warn', 'DNS UDP socket error', { err: e.message }) }))
    tcp.push(await listenTcp({ host: l.host, port: l.tcp }, answer, { reusePort: true, conns }))
  }
  post({
    type: 'listening',
    addresses: [
      ...udp.map((s) => ({ host: s.address().address, port: s.address().port, transport: 'udp' as const })),
      ...tcp.map((s) => {
        const a = s.address() as { address: string; port: number }
        return { host: a.address, port: a.port, transport: 'tcp' as const }
      }),
    ],
  })
} catch (e) {
  await closeListeners(udp, tcp, conns)
  // The main thread ends this thread when it reads this.
  post({ type: 'fatal', message: (e as Error).message, code: (e as NodeJS.ErrnoException).code })
}
