// The dashboard inside `skiff server`, on the apiserver's HTTPS port:
//
//   /dashboard/            the page and its modules (no data: open without a token)
//   /dashboard/app/*.js    the browser code, TypeScript in ui/ with its types
//                          stripped at the first request (Node's own
//                          stripTypeScriptTypes; no bundler, no framework)
//   /dashboard/api/watch   several list+watch informers in one stream (below)
//   /dashboard/api/traffic request and error rates per ingress hostname and
//                          per endpoint, from the ingress nodes' metrics
//                          (needs `get nodes/metrics`, as metrics-server does)
//
// Everything else the page shows it reads from the Kubernetes API itself with
// the token the user logged in with (list, then watch), so each view shows
// exactly what that identity may read. A browser opens at most six HTTP/1.1
// connections to one host, and a dozen open watches would starve every other
// request, so /dashboard/api/watch?path=P&path=Q... runs the informers here:
// for each collection path it lists and watches this same apiserver over
// loopback with the caller's own bearer token (every answer, 403 included, is
// the API's own), and sends one newline-delimited stream of
// {"i": index, "type": "RESET", "items", "resourceVersion"} after each list,
// {"i", "type": ADDED|MODIFIED|DELETED, "object"} per event, and
// {"i", "type": "ERROR", "code", "message"} when a list fails (it is tried
// again after 30 s for 403, 2 s otherwise). Every answer carries a
// Content-Security-Policy of 'self' only: the page loads nothing from any
// other host.

import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { readFileSync, readdirSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { join } from 'node:path'
import { ingressPoolLabel } from '../api/bootstrap-token.ts'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { Logger } from '../../lib/log.ts'
import { authorize, forbidden, type AuthzView } from '../apiserver/authz.ts'
import type { UserInfo } from '../apiserver/authn.ts'
import { kubeletGet } from '../apiserver/metrics/scraper.ts'
import type { Registry } from '../apiserver/registry.ts'
import { parseIngressCounters, trafficRates, type NodeCounters, type TrafficRates } from './traffic.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const uiDir = join(import.meta.dirname, 'ui')
export const dashboardPrefix = '/dashboard'

const securityHeaders = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
}

export interface DashboardOptions {
  registry: Registry
  logger: Logger
  view: AuthzView
  /** The apiserver's kubelet client certificate and the cluster CA; without it the traffic map has no rates. */
  kubeletClient?: { certPem: string; keyPem: string; caPem: string }
  /** How often ingress nodes are scraped while someone looks at the traffic map; default 5 s. */
  trafficPeriodMs?: number
  /** This apiserver's URL and the CA its serving certificate chains to: the watch stream's loopback requests go there. */
  self?: () => { url: string; caPem?: string }
}

const maxWatchPaths = 20
const collectionPath = /^\/(api\/v1|apis\/[a-z0-9.-]+\/[a-z0-9]+)(\/namespaces\/[a-z0-9-]+)?\/[a-z]+$/

interface Asset {
  type: string
  body: Buffer
}

/** The browser modules: `./x.ts` imports become `./x.js`, the files the server answers for them. Pure. */
export function toBrowserModule(source: string): string {
  const js = stripTypeScriptTypes(source, { mode: 'strip' })
  return js.replace(/(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.\/[\w-]+)\.ts\2/g, '$1$2$3.js$2')
}

/** Every asset of ui/, read and converted once. */
function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>()
  for (const f of readdirSync(uiDir)) {
    const text = readFileSync(join(uiDir, f), 'utf8')
    if (f.endsWith('.ts')) out.set(`/app/${f.replace(/\.ts$/, '.js')}`, { type: 'text/javascript; charset=utf-8', body: Buffer.from(toBrowserModule(text)) })
    else if (f.endsWith('.css')) out.set(`/${f}`, { type: 'text/css; charset=utf-8', body: Buffer.from(text) })
    else if (f === 'index.html') out.set('/', { type: 'text/html; charset=utf-8', body: Buffer.from(text) })
  }
  return out
}

export class Dashboard {
  #o: DashboardOptions
  #log: Logger
  #assets?: Map<string, Asset>
  #scrapes = new Map<string, { prev?: NodeCounters; last: NodeCounters }>()
  #wantedAt = 0
  #timer?: NodeJS.Timeout
  #running?: Promise<void>
  #inflight = new Set<ClientRequest>()
  #stopped = false

  constructor(o: DashboardOptions) {
    this.#o = o
    this.#log = o.logger.child({ component: 'dashboard' })
  }

  get #periodMs(): number {
    return this.#o.trafficPeriodMs ?? 5_000
  }

  /** The page and its modules; true when `path` was one of them. Open without a token: they carry no data. */
  serveStatic(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    if (path !== dashboardPrefix && !path.startsWith(`${dashboardPrefix}/`)) return false
    const rest = path.slice(dashboardPrefix.length)
    if (rest.startsWith('/api/')) return false
    if (rest === '') {
      res.writeHead(308, { Location: `${dashboardPrefix}/`, ...securityHeaders }).end()
      return true
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain', ...securityHeaders }).end('the dashboard is read with GET\n')
      return true
    }
    this.#assets ??= loadAssets()
    const a = this.#assets.get(rest)
    if (!a) {
      res.writeHead(404, { 'Content-Type': 'text/plain', ...securityHeaders }).end(`no such dashboard file: ${rest}\n`)
      return true
    }
    res.writeHead(200, { 'Content-Type': a.type, 'Content-Length': a.body.length, 'Cache-Control': 'no-cache', ...securityHeaders })
    res.end(req.method === 'HEAD' ? undefined : a.body)
    return true
  }

  /** /dashboard/api/*: true when it was one of them (answered, or thrown as an ApiError). */
  async serveApi(path: string, req: IncomingMessage, res: ServerResponse, user: UserInfo): Promise<boolean> {
    if (path === `${dashboardPrefix}/api/watch`) {
      this.#serveWatch(req, res)
      return true
    }
    if (path !== `${dashboardPrefix}/api/traffic`) return false
    if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${path}; use GET`)
    const attrs = { verb: 'get', resource: 'nodes', subresource: 'metrics' }
    const d = authorize(user, attrs, this.#o.view)
    if (!d.allowed) throw forbidden(user, attrs, d.reason)
    const body = JSON.stringify(await this.traffic())
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...securityHeaders }).end(body)
    return true
  }

  /** The rates of the last two scrapes; asking keeps the scraping going for a minute. */
  async traffic(): Promise<TrafficRates & { periodSeconds: number; scraping: boolean }> {
    this.#wantedAt = Date.now()
    if (!this.#timer && !this.#running && !this.#stopped && this.#o.kubeletClient) this.#tick()
    return { ...trafficRates([...this.#scrapes.values()]), periodSeconds: this.#periodMs / 1000, scraping: Boolean(this.#o.kubeletClient) }
  }

  #serveWatch(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${dashboardPrefix}/api/watch; use GET`)
    const auth = req.headers.authorization
    if (!auth?.startsWith('Bearer ')) throw new ApiError('BadRequest', 'the dashboard watch stream needs a bearer token (log in with a token, not a client certificate)')
    const self = this.#o.self?.()
    if (!self) throw new ApiError('ServiceUnavailable', 'this apiserver cannot reach itself for the dashboard')
    const paths = new URL(req.url ?? '/', 'https://x').searchParams.getAll('path')
    if (paths.length === 0 || paths.length > maxWatchPaths) throw new ApiError('BadRequest', `path: give 1 to ${maxWatchPaths} collection paths (path=/api/v1/pods&path=...)`)
    const bad = paths.findIndex((p) => !collectionPath.test(p))
    if (bad >= 0) throw new ApiError('BadRequest', `path[${bad}]: ${JSON.stringify(paths[bad])} is not a collection path such as /api/v1/pods or /apis/apps/v1/namespaces/demo/deployments`)
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Transfer-Encoding': 'chunked', ...securityHeaders })
    res.flushHeaders()
    const closed = { done: false }
    const inflight = new Set<ClientRequest>()
    const send = (msg: object) => {
      if (!closed.done) res.write(`${JSON.stringify(msg)}\n`)
    }
    res.on('close', () => {
      closed.done = true
      for (const r of inflight) r.destroy()
    })
    // Keep idle proxies and the browser from closing a quiet stream.
    const ping = setInterval(() => send({ type: 'PING' }), 30_000)
    res.on('close', () => clearInterval(ping))
    paths.forEach((p, i) => void this.#inform(i, p, auth, self, send, closed, inflight))
  }

  /** One informer of the watch stream: list, watch from the list's revision, list again when the watch expires or breaks. */
  async #inform(i: number, path: string, auth: string, self: { url: string; caPem?: string }, send: (m: object) => void, closed: { done: boolean }, inflight: Set<ClientRequest>): Promise<void> {
    const call = (query: string, onLine?: (line: string) => void): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const u = new URL(`${path}${query}`, self.url)
        const r = httpsRequest(u, { method: 'GET', headers: { Authorization: auth, Accept: 'application/json' }, ca: self.caPem, checkServerIdentity: () => undefined, agent: false }, (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => {
            if (!onLine || res.statusCode !== 200) return void (body += c)
            body += c
            let nl = body.indexOf('\n')
            while (nl >= 0) {
              const line = body.slice(0, nl)
              body = body.slice(nl + 1)
              if (line.trim()) onLine(line)
              nl = body.indexOf('\n')
            }
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          res.on('error', reject)
        })
        inflight.add(r)
        r.once('close', () => inflight.delete(r))
        r.on('error', reject)
        r.end()
      })
    while (!closed.done) {
      let retryMs = 2_000
      try {
        const list = await call('')
        if (list.status !== 200) {
          let message = list.body.slice(0, 500)
          try {
            message = JSON.parse(list.body).message ?? message
          } catch {
            // not a Status
          }
          send({ i, type: 'ERROR', code: list.status, message })
          if (list.status === 401) return
          retryMs = list.status === 403 ? 30_000 : 2_000
        } else {
          const parsed = JSON.parse(list.body)
          let rv: string = parsed.metadata?.resourceVersion ?? ''
          send({ i, type: 'RESET', items: parsed.items ?? [], resourceVersion: rv })
          let expired = false
          while (!closed.done && !expired) {
            const w = await call(`?watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`, (line) => {
              const ev = JSON.parse(line)
              if (ev.type === 'ERROR') {
                expired = true
                return
              }
              rv = ev.object?.metadata?.resourceVersion ?? rv
              if (ev.type !== 'BOOKMARK') send({ i, type: ev.type, object: ev.object })
            })
            if (w.status !== 200) break
          }
          retryMs = expired ? 0 : 1_000
        }
      } catch (e) {
        if (closed.done) return
        send({ i, type: 'ERROR', code: 0, message: (e as Error).message })
      }
      if (retryMs) await new Promise((r) => setTimeout(r, retryMs))
    }
  }

  #tick(): void {
    this.#timer = undefined
    this.#running = this.#scrapeOnce()
      .catch((e) => this.#log.warn({ err: (e as Error).message }, 'ingress metrics scrape failed'))
      .finally(() => {
        this.#running = undefined
        if (!this.#stopped && Date.now() - this.#wantedAt < 60_000) this.#timer = setTimeout(() => this.#tick(), this.#periodMs)
      })
  }

  async #scrapeOnce(): Promise<void> {
    const nodes = (await this.#o.registry.list(nodesInfo, undefined)).items.filter((n) => n.metadata.labels?.[ingressPoolLabel])
    const names = new Set(nodes.map((n) => n.metadata.name!))
    for (const k of this.#scrapes.keys()) if (!names.has(k)) this.#scrapes.delete(k)
    await Promise.all(
      nodes.map(async (node) => {
        const name = node.metadata.name!
        try {
          const text = await kubeletGet(this.#o.kubeletClient!, name, node, '/metrics', this.#inflight)
          const last = parseIngressCounters(name, text, Date.now())
          this.#scrapes.set(name, { prev: this.#scrapes.get(name)?.last, last })
        } catch (e) {
          this.#log.info({ node: name, err: (e as Error).message }, 'ingress metrics not scraped')
        }
      }),
    )
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    for (const r of this.#inflight) r.destroy(new Error('the apiserver is stopping'))
    await this.#running
  }
}
