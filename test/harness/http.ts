// One plain HTTP/1.1 request without keep-alive, for tests that talk to
// addresses they created (ingress nodes, pods): status, headers, body, and
// the body parsed as JSON when it is JSON.

import { request } from 'node:http'

export interface Answer { status: number; body: string; headers: Record<string, any>; json?: any }

export function httpRequest(o: { ip: string; host: string; path?: string; method?: string; port?: number; timeoutMs?: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: o.ip, port: o.port ?? 80, path: o.path ?? '/', method: o.method ?? 'GET', headers: { host: o.host }, timeout: o.timeoutMs ?? 10_000, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(body) } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, json })
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}
