// The ingress data path for integration tests: upstream HTTP/WebSocket
// servers that answer with their name and record what they received, the
// snapshot builders (Ingress, rule, path, endpoint), a WorkerPool of real
// worker processes on free ports, and raw-socket requests (for bytes no
// HTTP client would send). Everything is closed in t.teardown.

import http from 'node:http'
import net from 'node:net'
import { WebSocketServer } from 'ws'
import { WorkerPool } from '../../dataplane/ingress/pool.ts'
import type { EndpointInfo } from '../../dataplane/ingress/snapshot.ts'
import { silentLogger } from '../../lib/log.ts'
import { freePort } from '../../lib/net.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: number }
export interface Upstream { name: string; ip: string; port: number; seen: Seen[] }

/** An upstream on `ip`: answers `{name, url, headers, body}` (after `?delay=ms`), echoes WebSocket messages as `name:msg`. */
export async function upstream(t: Teardown, name: string, ip = '127.0.0.1'): Promise<Upstream> {
  const u: Upstream = { name, ip, port: 0, seen: [] }
  const server = http.createServer((req, res) => {
    let body = 0
    req.on('data', (c: Buffer) => (body += c.length))
    req.on('end', () => {
      u.seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body })
      const delay = Number(/[?&]delay=(\d+)/.exec(req.url!)?.[1] ?? 0)
      setTimeout(() => res.end(JSON.stringify({ name, url: req.url, headers: req.headers, body })), delay)
    })
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    u.seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: 0 })
    ws.on('message', (m) => ws.send(`${name}:${m}`))
  })
  await new Promise<void>((r) => server.listen(0, ip, r))
  u.port = (server.address() as net.AddressInfo).port
  t.teardown(() => new Promise<void>((r) => {
    for (const c of wss.clients) c.terminate()
    server.closeAllConnections()
    server.close(() => r())
  }))
  return u
}

export const ep = (u: { ip: string; port: number }): EndpointInfo => ({ ip: u.ip, ports: { http: u.port }, ready: true, serving: true, terminating: false })
export const path = (pathType: string, p: string, svc: string) => ({ path: p, pathType, backend: { service: { name: svc, port: { number: 80 } } } })
export const rule = (host: string, ...paths: any[]) => ({ ...(host ? { host } : {}), http: { paths } })
export const ing = (name: string, rules: any[], o: { annotations?: Record<string, string>; tls?: any[]; defaultBackend?: string; age?: number } = {}) => ({
  metadata: { namespace: 'default', name, annotations: o.annotations ?? {}, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, o.age ?? 0)).toISOString() },
  spec: { ingressClassName: 'external', rules, ...(o.tls ? { tls: o.tls } : {}), ...(o.defaultBackend ? { defaultBackend: { service: { name: o.defaultBackend, port: { name: 'http' } } } } : {}) },
})

export interface IngressWorkers {
  pool: WorkerPool
  httpPort: number
  httpsPort: number
}

/** A WorkerPool of class `external` on free ports of `addresses`; started, stopped at teardown. Apply a snapshot before sending traffic. */
export async function startIngressWorkers(t: Teardown, o: { addresses?: string[]; workers?: number } = {}): Promise<IngressWorkers> {
  const addresses = o.addresses ?? ['127.0.0.1']
  const httpPort = await freePort(addresses[0])
  const httpsPort = await freePort(addresses[0])
  const pool = new WorkerPool({ config: { className: 'external', addresses, httpPort, httpsPort, nodeName: 'n1' }, workers: o.workers ?? 2, logger: silentLogger(), logLevel: 'warn' })
  t.teardown(() => pool.stop())
  await pool.start()
  return { pool, httpPort, httpsPort }
}

/** Writes `data` on a fresh connection and resolves with everything read until the server closes it (or after `timeoutMs`, rejecting). */
export function rawRequest(port: number, data: string | Buffer, o: { host?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, o.host ?? '127.0.0.1', () => c.write(data))
    let out = ''
    c.setEncoding('latin1')
    c.on('data', (d) => (out += d))
    c.on('end', () => resolve(out))
    c.on('error', reject)
    c.setTimeout(o.timeoutMs ?? 10_000, () => c.destroy(new Error('raw request timed out')))
  })
}
