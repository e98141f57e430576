// One plain HTTP/1.1 request without keep-alive, for tests that talk to
// addresses they created (ingress nodes, pods): status, headers, body, and
// the body parsed as JSON when it is JSON. Over TLS (port 443 unless given)
// with `tls`: the SNI name sent, and the only CA trusted (none checked
// without one).

import { request, type IncomingMessage } from 'node:http'
import { request as tlsRequest } from 'node:https'

export interface Answer { status: number; body: string; headers: Record<string, any>; json?: any }

export interface RequestOptions {
  ip: string
  host: string
  path?: string
  method?: string
  port?: number
  timeoutMs?: number
  /** More request headers (Host is `host`). */
  headers?: Record<string, string>
  tls?: { servername: string; ca?: string }
}

export function httpRequest(o: RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const common = { host: o.ip, path: o.path ?? '/', method: o.method ?? 'GET', headers: { host: o.host, ...o.headers }, timeout: o.timeoutMs ?? 10_000, agent: false as const }
    const onResponse = (res: IncomingMessage) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(body) } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, json })
      })
    }
    const req = o.tls
      ? tlsRequest({ ...common, port: o.port ?? 443, servername: o.tls.servername, ...(o.tls.ca ? { ca: o.tls.ca } : { rejectUnauthorized: false }) }, onResponse)
      : request({ ...common, port: o.port ?? 80 }, onResponse)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}
