// Entry of one ingress worker process (forked by WorkerPool). It serves HTTP
// and HTTPS on each configured address (the node's InternalIP and ExternalIP)
// with SO_REUSEPORT, so N workers share
// the ports and the kernel spreads connections. Each snapshot from the
// supervisor is compiled (state.ts) and swapped in with one assignment;
// nothing restarts, open connections and WebSockets stay. Until the first
// snapshot every request gets 503. 'drain' (or SIGTERM: 10 s) stops
// listening, answers further requests with Connection: close, and exits when
// no request or WebSocket is left or when the drain time is up.

import http from 'node:http'
import type https from 'node:https'
import { createLogger } from '../../lib/log.ts'
import { Balancer } from './balancer.ts'
import { compileState, endpointIds, type RuntimeState } from './state.ts'
import { createIngressProxy, serveWith, serverOptions } from './proxy.ts'
import { CertStore, createTlsServer, fallbackCertificate } from './tls.ts'
import { createWorkerMetrics } from './worker-metrics.ts'
import type { FromWorker, ToWorker, WorkerConfig } from './snapshot.ts'

const sigtermDrainMs = 10_000

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig
const logger = createLogger({ component: 'ingress-worker' }).child({ class: config.className, worker: config.index })
const accessLog = createLogger({ component: 'ingress-access' })
const metrics = createWorkerMetrics()
const cls = { class: config.className }
let state: RuntimeState | undefined
let draining = false

const send = (msg: FromWorker): void => {
  if (process.connected) process.send!(msg)
}

const proxy = createIngressProxy({ state: () => state, balancer: new Balancer(), metrics, accessLog, className: config.className, draining: () => draining })
const certs = new CertStore({ logger, fallback: fallbackCertificate() })
/** One HTTP and one HTTPS server per address, all with the same handlers and certificates. */
function serversFor(): { http: http.Server; https: https.Server } {
  const h = http.createServer(serverOptions)
  const hs = createTlsServer({ store: certs, server: serverOptions })
  serveWith(h, proxy, 'http')
  serveWith(hs, proxy, 'https')
  for (const s of [h, hs] as (http.Server | https.Server)[]) {
    s.keepAliveTimeout = 60_000
    s.on('connection', (socket) => {
      metrics.activeConnections.inc(cls)
      socket.once('close', () => metrics.activeConnections.dec(cls))
    })
  }
  return { http: h, https: hs }
}
const listeners = config.addresses.map((address) => ({ address, ...serversFor() }))
const httpsServers = listeners.map((l) => l.https)
const allServers: Array<http.Server | https.Server> = listeners.flatMap((l) => [l.http, l.https])

function apply(snapshotMsg: Extract<ToWorker, { type: 'snapshot' }>): void {
  const snap = snapshotMsg.snapshot
  let next: RuntimeState
  try {
    next = compileState(snap)
  } catch (err) {
    // Keep serving the previous state; the supervisor sees no 'applied'.
    logger.error({ err, generation: snap.generation }, 'ingress snapshot failed to compile; keeping the previous one')
    return
  }
  if (certs.update(next)) for (const hs of httpsServers) hs.setSecureContext(certs.defaultKeyPair)
  state = next
  proxy.retain(next, endpointIds(next))
  const dead = new Set(snap.unreachableNodes ?? [])
  const ids = Object.values(snap.endpoints).flat().filter((e) => e.nodeName && dead.has(e.nodeName)).flatMap((e) => Object.values(e.ports).map((p) => `${e.ip}:${p}`))
  const cut = proxy.abort(ids)
  if (cut) logger.info({ nodes: [...dead], connections: cut }, 'cut the connections to pods of hosts that are not Ready')
  metrics.generation.set(cls, next.generation)
  for (const b of next.broken) logger.debug({ ingress: b.ingress, reason: b.message }, 'ingress left out')
  send({ type: 'applied', generation: next.generation })
}

function drain(drainMs: number): void {
  if (draining) return
  draining = true
  logger.info({ drainMs, busy: proxy.busy() }, 'ingress worker draining')
  for (const srv of allServers) srv.close()
  const deadline = setTimeout(() => exit('drain time is up'), drainMs)
  deadline.unref()
  const tick = setInterval(() => {
    for (const srv of allServers) srv.closeIdleConnections()
    if (proxy.busy() === 0) exit('idle')
  }, 50)
  tick.unref()
}

function exit(why: string): void {
  logger.info({ why }, 'ingress worker exiting')
  for (const srv of allServers) srv.closeAllConnections()
  for (const ws of proxy.websockets) ws.destroy()
  proxy.close()
  logger.flush(() => accessLog.flush(() => process.exit(0)))
  setTimeout(() => process.exit(0), 1000).unref()
}

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'snapshot') apply(msg)
  else if (msg.type === 'drain') drain(msg.drainMs)
  else if (msg.type === 'metrics') void metrics.registry.getMetricsAsJSON().then((m) => send({ type: 'metrics', id: msg.id, metrics: m }))
})
process.on('SIGTERM', () => drain(sigtermDrainMs))
// Orphaned (the supervisor died): do not hold the ports forever.
process.on('disconnect', () => drain(sigtermDrainMs))

function listen(server: http.Server | https.Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: address, port, reusePort: true }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

try {
  for (const l of listeners) {
    await listen(l.http, l.address, config.httpPort)
    await listen(l.https, l.address, config.httpsPort)
  }
  logger.info({ addresses: config.addresses, httpPort: config.httpPort, httpsPort: config.httpsPort }, 'ingress worker listening')
  send({ type: 'listening', pid: process.pid })
} catch (err: any) {
  const message = `${err?.code ?? 'ERROR'}: cannot listen on ${config.addresses.join(', ')} (http ${config.httpPort}, https ${config.httpsPort}): ${err?.message ?? err}`
  logger.error({ err }, message)
  send({ type: 'fatal', message })
  logger.flush(() => process.exit(1))
  setTimeout(() => process.exit(1), 1000).unref()
}
