// The request handler of an ingress worker: admission (strict framing, one
// path normalisation, ACME HTTP-01, route, method, source range, redirect,
// body size) then forwarding with http-proxy-3 to an endpoint picked by the
// Balancer. The path that matched is the path forwarded (req.url is replaced
// by the normalised, possibly rewritten, origin-form target and http-proxy-3
// is told to pass it verbatim with toProxy). The state is read once per
// request, so a snapshot swap never mixes two generations in one request.

import http from 'node:http'
import type { Duplex } from 'node:stream'
import { Transform } from 'node:stream'
import { randomUUID } from 'node:crypto'
import { createProxyServer } from 'http-proxy-3'
import { normalizePath } from './paths.ts'
import { matchRoute, requestHost, type Match } from './routes.ts'
import { inRanges, plainIp, rewritePath, wantsSslRedirect, type IngressOptions } from './options.ts'
import { backendKey, type Endpoint, type ResolvedBackend, type RuntimeState } from './state.ts'
import { affinityCookie, type Balancer } from './balancer.ts'
import type { WorkerMetrics } from './worker-metrics.ts'
import type { Logger } from '../../lib/log.ts'

export type Scheme = 'http' | 'https'

export interface ProxyDeps {
  state: () => RuntimeState | undefined
  balancer: Balancer
  metrics: WorkerMetrics
  accessLog: Logger
  className: string
  draining: () => boolean
}

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
const connectErrors = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECT_TIMEOUT'])
const forwardedHeaders = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip']
const acmePrefix = '/.well-known/acme-challenge/'
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

/** What the access log and metrics record about one request. */
interface Record_ {
  start: number
  host: string
  path: string
  upstream: string
  ingress: string
  requestId: string
  bytes: number
  tooLarge: boolean
}

/** One upstream attempt, found again from http-proxy-3's events through the request. */
interface Attempt {
  endpoint: Endpoint
  end: () => void
  readTimeoutMs: number
  /** Idle limit while the request (body) is being written upstream; 0: the read timeout covers it. */
  sendTimeoutMs: number
  proxyReq?: http.ClientRequest
  responded: boolean
  timedOut: boolean
  setCookie?: string
  onUpgrade?: () => void
}
const kAttempt = Symbol('skiff.attempt')
const kRecord = Symbol('skiff.record')
type Tagged = http.IncomingMessage & { [kAttempt]?: Attempt; [kRecord]?: Record_ }

/** Keep-alive agents per endpoint, reused across snapshots; those of departed endpoints stop keeping sockets. */
export class AgentPool {
  private readonly agents = new Map<string, http.Agent>()
  /** Agents of departed endpoints whose requests are still in flight: a later snapshot may find their host dead (abort). */
  private readonly departed = new Map<string, http.Agent>()
  get(id: string): http.Agent {
    let a = this.agents.get(id)
    if (!a) this.agents.set(id, (a = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 64, scheduling: 'lifo' })))
    return a
  }
  retain(ids: ReadonlySet<string>): void {
    for (const [id, a] of this.departed) if (!Object.values(a.sockets).some((l) => l?.length)) this.departed.delete(id)
    for (const [id, a] of this.agents) {
      if (ids.has(id)) continue
      this.agents.delete(id)
      // In-flight requests finish; their sockets close instead of idling.
      ;(a as any).keepAlive = false
      for (const list of Object.values(a.freeSockets)) for (const s of list ?? []) s.destroy()
      this.departed.set(id, a)
    }
  }
  /** Cut every connection to these endpoints, in flight too: their host is dead and will never answer. */
  abort(ids: Iterable<string>): number {
    let cut = 0
    for (const id of ids) {
      const a = this.agents.get(id) ?? this.departed.get(id)
      if (!a) continue
      this.agents.delete(id)
      this.departed.delete(id)
      for (const group of [a.sockets, a.freeSockets]) for (const list of Object.values(group)) for (const s of list ?? []) (s.destroy(), cut++)
      a.destroy()
    }
    return cut
  }
  destroy(): void {
    for (const a of [...this.agents.values(), ...this.departed.values()]) a.destroy()
    this.agents.clear()
    this.departed.clear()
  }
}

export function createIngressProxy(deps: ProxyDeps) {
  const agents = new AgentPool()
  // Endpoints whose connections the last snapshot cut (their host is not Ready): a request lost that way is retried.
  let cutEndpoints: ReadonlySet<string> = new Set()
  const proxy = createProxyServer({})
  const websockets = new Set<Duplex>()
  const cls = { class: deps.className }
  let active = 0

  proxy.on('proxyReq', (proxyReq, req) => onProxyReq(proxyReq, (req as Tagged)[kAttempt]))
  proxy.on('proxyReqWs', (proxyReq, req) => {
    const a = (req as Tagged)[kAttempt]
    proxyReq.on('upgrade', () => a?.onUpgrade?.())
  })
  proxy.on('proxyRes', (proxyRes, req) => {
    const a = (req as Tagged)[kAttempt]
    const rec = (req as Tagged)[kRecord]
    if (a) {
      a.responded = true
      deps.balancer.recordSuccess(a.endpoint.id)
      if (a.setCookie) proxyRes.headers['set-cookie'] = [...(proxyRes.headers['set-cookie'] ?? []), a.setCookie]
    }
    if (deps.draining()) proxyRes.headers.connection = 'close'
    if (rec) proxyRes.on('data', (c: Buffer) => (rec.bytes += c.length))
  })
  proxy.on('econnreset', (_err, req) => (req as Tagged)[kAttempt]?.end())

  function onProxyReq(proxyReq: http.ClientRequest, a: Attempt | undefined): void {
    if (!a) return
    a.proxyReq = proxyReq
    // Like nginx's proxy_send_timeout / proxy_read_timeout: the idle limit between two
    // writes while the request goes up, then between two reads until the answer is in.
    const expire = (what: string) => () => {
      a.timedOut = true
      proxyReq.destroy(Object.assign(new Error(`upstream ${what} timeout`), { code: 'ETIMEDOUT' }))
    }
    if (a.sendTimeoutMs > 0) {
      proxyReq.setTimeout(a.sendTimeoutMs, expire('send'))
      proxyReq.once('finish', () => {
        proxyReq.setTimeout(0)
        proxyReq.removeAllListeners('timeout')
        proxyReq.setTimeout(a.readTimeoutMs, expire('read'))
      })
    } else proxyReq.setTimeout(a.readTimeoutMs, expire('read'))
  }

  function finish(req: Tagged, res: http.ServerResponse): void {
    const rec = req[kRecord]!
    const status = res.statusCode
    deps.metrics.requests.inc({ ...cls, host: rec.host, status: String(status), upstream: rec.upstream })
    deps.metrics.duration.observe(cls, (performance.now() - rec.start) / 1000)
    deps.accessLog.info({
      class: deps.className, remote: plainIp(req.socket.remoteAddress), method: req.method, host: req.headers.host ?? '', path: rec.path,
      status, bytes: rec.bytes, duration_ms: Math.round((performance.now() - rec.start) * 100) / 100, upstream: rec.upstream, ingress: rec.ingress, request_id: rec.requestId,
    })
  }

  function reply(req: Tagged, res: http.ServerResponse, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
    if (res.headersSent) return void res.destroy()
    const rec = req[kRecord]
    if (rec) rec.bytes = Buffer.byteLength(body)
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...headers })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  /** Everything before forwarding; returns the route decision or undefined when already answered. */
  function admit(req: Tagged, res: http.ServerResponse, scheme: Scheme, state: RuntimeState) {
    const rec = req[kRecord]!
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) return void reply(req, res, 400, 'Content-Length with Transfer-Encoding\n', { Connection: 'close' })
    if (req.rawHeaders.filter((_, i) => i % 2 === 0 && /^content-length$/i.test(req.rawHeaders[i]!)).length > 1) return void reply(req, res, 400, 'duplicate Content-Length\n', { Connection: 'close' })
    const target = originForm(req)
    const norm = normalizePath(target.path)
    if (!norm.ok) return void reply(req, res, 400, `bad request path: ${norm.reason}\n`)
    rec.path = norm.path
    const rawHost = target.authority ?? req.headers.host ?? (scheme === 'https' ? ((req.socket as any).servername ?? '') : '')
    const host = requestHost(rawHost)
    if (scheme === 'http' && req.method === 'GET' && norm.path.startsWith(acmePrefix)) {
      const keyAuth = state.challenges[norm.path.slice(acmePrefix.length)]
      return void (keyAuth === undefined ? reply(req, res, 404, 'unknown ACME challenge\n') : reply(req, res, 200, keyAuth))
    }
    const m = matchRoute(state.table, { host, method: req.method ?? 'GET', path: norm.path })
    rec.host = m.kind === 'route' ? m.host || '*' : m.kind === 'method-not-allowed' ? m.host || '*' : m.kind === 'default-backend' ? '_default' : '_'
    if (m.kind === 'not-found') return void reply(req, res, 404, 'default backend - 404\n')
    if (m.kind === 'method-not-allowed') return void reply(req, res, 405, 'method not allowed\n', { Allow: m.allow.join(', ') })
    rec.ingress = m.ingress
    const ing = state.ingresses.get(m.ingress)!
    if (ing.allow && !inRanges(ing.allow, req.socket.remoteAddress ?? '')) return void reply(req, res, 403, 'forbidden\n')
    const opts = ing.options
    if (scheme === 'http' && wantsSslRedirect(opts, host)) {
      const location = `https://${rawHost.toLowerCase().replace(/:\d+$/, '')}${norm.path}${norm.search}`
      return void reply(req, res, 308, `redirect to ${location}\n`, { Location: location })
    }
    const declared = Number(req.headers['content-length'] ?? 0)
    if (opts.bodySizeLimit > 0 && declared > opts.bodySizeLimit) return void reply(req, res, 413, 'request body too large\n', { Connection: 'close' })
    if (scheme === 'https' && opts.hstsMaxAge > 0) res.setHeader('Strict-Transport-Security', `max-age=${opts.hstsMaxAge}`)
    const path = m.kind === 'route' && opts.rewriteTarget ? rewritePath({ target: opts.rewriteTarget, matched: m.path, exact: m.pathType === 'Exact' }, norm.path) : norm.path
    const backend = state.backends.get(backendKey(m.namespace, m.kind === 'route' ? m.backend : m.backend))!
    return { m, opts, backend, url: path + norm.search, host: rawHost }
  }

  function handleRequest(req0: http.IncomingMessage, res: http.ServerResponse, scheme: Scheme): void {
    const req = req0 as Tagged
    const rec: Record_ = { start: performance.now(), host: '_', path: '', upstream: '-', ingress: '', requestId: '', bytes: 0, tooLarge: false }
    req[kRecord] = rec
    active++
    res.on('close', () => {
      active--
      req[kAttempt]?.end()
      finish(req, res)
    })
    if (deps.draining()) res.setHeader('Connection', 'close')
    const state = deps.state()
    if (!state) return reply(req, res, 503, 'ingress not configured yet\n')
    const d = admit(req, res, scheme, state)
    if (!d) return
    if (!d.backend.ok) return reply(req, res, 503, `service unavailable: ${d.backend.reason}\n`)
    rec.requestId = prepareHeaders(req, { scheme, state, host: d.host })
    req.url = d.url
    forward(req, res, { backend: d.backend, opts: d.opts })
  }

  function forward(req: Tagged, res: http.ServerResponse, f: { backend: Extract<ResolvedBackend, { ok: true }>; opts: IngressOptions }): void {
    const rec = req[kRecord]!
    const tried: string[] = []
    const bodyless = (req.headers['content-length'] === undefined || req.headers['content-length'] === '0') && req.headers['transfer-encoding'] === undefined
    const retryable = idempotent.has(req.method ?? '') && bodyless
    const body = bodyless || !(f.opts.bodySizeLimit > 0) ? undefined : limitBody(req, res, f.opts.bodySizeLimit)
    const attempt = (): void => {
      const pick = deps.balancer.pick({ backend: f.backend.key, endpoints: f.backend.endpoints, policy: f.opts.loadBalance, affinity: cookieValue(req, affinityCookie), exclude: f.backend.endpoints.length > 1 ? tried : [] })
      if (!pick) return reply(req, res, 502, 'bad gateway: no endpoint left to try\n')
      const ep = pick.endpoint
      tried.push(ep.id)
      rec.upstream = ep.id
      const a: Attempt = { endpoint: ep, end: deps.balancer.begin(ep.id), readTimeoutMs: f.opts.readTimeoutMs, sendTimeoutMs: f.opts.sendTimeoutMs, responded: false, timedOut: false }
      if (pick.setAffinity) a.setCookie = `${affinityCookie}=${pick.setAffinity}; Path=/; HttpOnly`
      req[kAttempt] = a
      const opts = { target: new URL(`http://${ep.id}`), agent: agents.get(ep.id), toProxy: true, prependPath: false, connectTimeout: f.opts.connectTimeoutMs, buffer: tried.length > 1 ? emptyBody() : body }
      proxy.web(req, res, opts, (err: any) => {
        a.end()
        if (rec.tooLarge) return
        const code: string = err?.code ?? 'EUNKNOWN'
        const connectFail = connectErrors.has(code)
        const staleReset = code === 'ECONNRESET' && !!a.proxyReq?.reusedSocket && !a.responded
        // Cut because its host died (abort below): the request never reached a live process.
        const cutDead = cutEndpoints.has(ep.id) && !a.responded
        const reason = a.timedOut ? 'read-timeout' : connectFail ? (code === 'ECONNECT_TIMEOUT' ? 'connect-timeout' : 'connect') : code === 'ECONNRESET' ? 'reset' : 'other'
        deps.metrics.upstreamErrors.inc({ ...cls, reason })
        if (!a.responded && !a.timedOut) deps.balancer.recordFailure(ep.id, f.backend.endpoints)
        // A stale keep-alive socket may be retried on the same endpoint (a fresh socket); a refused one goes elsewhere.
        // Nothing reached a live process: try the other endpoints (up to 3 in all), as nginx's proxy_next_upstream does for connect errors.
        const maxTries = connectFail || cutDead ? Math.min(3, Math.max(2, f.backend.endpoints.length)) : 2
        if (retryable && tried.length < maxTries && !res.headersSent && ((connectFail && f.backend.endpoints.length > 1) || staleReset || cutDead)) return attempt()
        reply(req, res, a.timedOut ? 504 : 502, a.timedOut ? 'gateway timeout\n' : `bad gateway: ${code}\n`)
      })
    }
    attempt()
  }

  /** Counts a streamed (chunked) body; past the limit: 413 and the upstream request is abandoned. */
  function limitBody(req: Tagged, res: http.ServerResponse, limit: number): Transform {
    let total = 0
    const rec = req[kRecord]!
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        total += chunk.length
        if (total <= limit) return cb(null, chunk)
        if (!rec.tooLarge) {
          rec.tooLarge = true
          req[kAttempt]?.proxyReq?.destroy()
          reply(req, res, 413, 'request body too large\n', { Connection: 'close' })
        }
        cb()
      },
    })
    return req.pipe(counter)
  }

  function prepareHeaders(req: Tagged, o: { scheme: Scheme; state: RuntimeState; host: string }): string {
    const peer = plainIp(req.socket.remoteAddress)
    const trusted = inRanges(o.state.trusted, peer)
    const h = req.headers
    const priorFor = trusted ? h['x-forwarded-for'] : undefined
    if (!trusted) for (const name of forwardedHeaders) delete h[name]
    h['x-forwarded-for'] = priorFor ? `${priorFor}, ${peer}` : peer
    if (!trusted || !h['x-forwarded-proto']) h['x-forwarded-proto'] = o.scheme
    if (!trusted || !h['x-forwarded-host']) h['x-forwarded-host'] = o.host
    if (!trusted || !h['x-forwarded-port']) h['x-forwarded-port'] = String(req.socket.localPort ?? '')
    if (!trusted || !h['x-real-ip']) h['x-real-ip'] = peer
    const incoming = h['x-request-id']
    const id = trusted && typeof incoming === 'string' && requestIdPattern.test(incoming) ? incoming : randomUUID()
    h['x-request-id'] = id
    return id
  }

  /** WebSocket (Upgrade): the same routing, method and source checks, then a piped socket pair. */
  function handleUpgrade(req0: http.IncomingMessage, socket: Duplex, head: Buffer, scheme: Scheme): void {
    const req = req0 as Tagged
    const fail = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: ${text.length}\r\n\r\n${text}`)
    }
    socket.on('error', () => socket.destroy())
    const state = deps.state()
    if (!state || deps.draining()) return fail(503, 'unavailable\n')
    const norm = normalizePath(originForm(req).path)
    if (!norm.ok) return fail(400, 'bad request path\n')
    const host = requestHost(req.headers.host ?? '')
    const m: Match = matchRoute(state.table, { host, method: req.method ?? 'GET', path: norm.path })
    if (m.kind === 'not-found') return fail(404, 'not found\n')
    if (m.kind === 'method-not-allowed') return fail(405, 'method not allowed\n')
    const ing = state.ingresses.get(m.ingress)!
    if (ing.allow && !inRanges(ing.allow, req.socket.remoteAddress ?? '')) return fail(403, 'forbidden\n')
    if (scheme === 'http' && wantsSslRedirect(ing.options, host)) {
      const location = `https://${(req.headers.host ?? host).toLowerCase().replace(/:\d+$/, '')}${norm.path}${norm.search}`
      return void socket.end(`HTTP/1.1 308 Permanent Redirect\r\nLocation: ${location}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    const backend = state.backends.get(backendKey(m.namespace, m.backend))!
    if (!backend.ok) return fail(503, `${backend.reason}\n`)
    const pick = deps.balancer.pick({ backend: backend.key, endpoints: backend.endpoints, policy: ing.options.loadBalance, affinity: cookieValue(req, affinityCookie) })
    if (!pick) return fail(503, 'no endpoint\n')
    const path = m.kind === 'route' && ing.options.rewriteTarget ? rewritePath({ target: ing.options.rewriteTarget, matched: m.path, exact: m.pathType === 'Exact' }, norm.path) : norm.path
    req[kRecord] = { start: performance.now(), host: m.kind === 'route' ? m.host || '*' : '_default', path: norm.path, upstream: pick.endpoint.id, ingress: m.ingress, requestId: '', bytes: 0, tooLarge: false }
    prepareHeaders(req, { scheme, state, host: req.headers.host ?? '' })
    req.url = path + norm.search
    const a: Attempt = { endpoint: pick.endpoint, end: deps.balancer.begin(pick.endpoint.id), readTimeoutMs: 0, sendTimeoutMs: 0, responded: true, timedOut: false }
    a.onUpgrade = () => {
      websockets.add(socket)
      deps.metrics.websockets.inc(cls)
      socket.once('close', () => {
        websockets.delete(socket)
        deps.metrics.websockets.dec(cls)
        a.end()
      })
    }
    req[kAttempt] = a
    proxy.ws(req, socket, head, { target: new URL(`http://${pick.endpoint.id}`), toProxy: true, prependPath: false, connectTimeout: ing.options.connectTimeoutMs }, () => {
      a.end()
      deps.metrics.upstreamErrors.inc({ ...cls, reason: 'websocket' })
    })
  }

  return {
    handleRequest,
    handleUpgrade,
    /** Requests being answered plus open WebSockets: drain waits for 0. */
    busy: (): number => active + websockets.size,
    websockets,
    /** After a swap: forget departed endpoints. */
    retain(state: RuntimeState, ids: ReadonlySet<string>): void {
      agents.retain(ids)
      deps.balancer.retain(new Set(state.backends.keys()), ids)
    },
    /** Endpoints on dead hosts: cut their connections so requests waiting on them fail over now. */
    abort(ids: Iterable<string>): number {
      cutEndpoints = new Set(ids)
      return agents.abort(cutEndpoints)
    },
    close(): void {
      agents.destroy()
      proxy.close()
    },
  }
}

export type IngressProxy = ReturnType<typeof createIngressProxy>

/** An absolute-form target (`http://host/p`) as origin-form plus its authority (which overrides Host, RFC 9112 3.2.2). */
export function originForm(req: http.IncomingMessage): { path: string; authority?: string } {
  const url = req.url ?? '/'
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(url)
  if (!m) return { path: url }
  const rest = m[2]!.startsWith('?') || m[2] === '' ? '/' + m[2] : m[2]!
  return { path: rest, authority: m[1]!.replace(/^.*@/, '') }
}

function cookieValue(req: http.IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie
  if (!header) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

function emptyBody(): Transform {
  const t = new Transform()
  t.end()
  return t
}
