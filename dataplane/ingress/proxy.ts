// The request handler of an ingress worker: admission (the RFC 9110/9112
// message checks of message.ts: Host, framing, target; one path normalisation, ACME HTTP-01, route, method, source range, redirect,
// body size), shared by plain requests and WebSocket upgrades, then
// forwarding: plain HTTP through undici (upstream.ts: a keep-alive Pool per
// endpoint, the response written straight into the server response), and
// WebSockets through http-proxy-3. The path that matched is the path
// forwarded (the normalised, possibly rewritten, origin-form target). The
// state is read once per request, so a snapshot swap never mixes two
// generations in one request. Request headers are read once from the raw
// list (headers.ts); `req.headers` is never built on the plain path.

import http from 'node:http'
import type https from 'node:https'
import type { Duplex } from 'node:stream'
import { Transform } from 'node:stream'
import { randomUUID } from 'node:crypto'
import { createProxyServer } from 'http-proxy-3'
import type { Dispatcher } from 'undici'
import { admit, type Admission, type AdmissionRecord, type Scheme } from './admission.ts'
import { inRanges, plainIp, type IngressOptions } from './options.ts'
import type { Endpoint, RuntimeState } from './state.ts'
import { affinityCookie, type Balancer } from './balancer.ts'
import { downstreamHeaders, forwardedHeaders, forwardedValues, scanHeaders, upstreamHeaders, type HeaderScan } from './headers.ts'
import { EndpointCutError, UpstreamPool } from './upstream.ts'
import { applyHeaderEdits } from './gateway-routes.ts'
import type { WorkerMetrics } from './worker-metrics.ts'
import type { Logger } from '../../lib/log.ts'

export type { Scheme } from './admission.ts'

/**
 * The node:http options the proxy relies on. Strict parsing: llhttp refuses
 * bad field syntax, obs-fold and (for plain requests) bad framing, which
 * reach clientError. The Host rules are admission's (message.ts), for
 * upgrades too, which Node's own `requireHostHeader` check skips: it is off
 * so one place answers them. 431 past maxHeaderSize.
 */
export const serverOptions = { insecureHTTPParser: false, requireHostHeader: false, maxHeaderSize: 16 * 1024, headersTimeout: 30_000, requestTimeout: 60_000 } as const

export interface ProxyDeps {
  state: () => RuntimeState | undefined
  balancer: Balancer
  metrics: WorkerMetrics
  accessLog: Logger
  className: string
  draining: () => boolean
}

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
const connectErrors = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])
const resetErrors = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'])
const timeoutErrors = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ESENDTIMEOUT'])

/** What the access log and metrics record about one request (admission fills host, path, ingress and reason). */
interface Record_ extends AdmissionRecord {
  start: number
  upstream: string
  requestId: string
  bytes: number
  tooLarge: boolean
}


export function createIngressProxy(deps: ProxyDeps) {
  const upstreams = new UpstreamPool()
  // Endpoints whose connections the last snapshot cut (their host is not Ready): a request lost that way is retried.
  let cutEndpoints: ReadonlySet<string> = new Set()
  const wsProxy = createProxyServer({})
  const websockets = new Set<Duplex>()
  const cls = { class: deps.className }
  const logAccess = deps.accessLog.isLevelEnabled('info')
  // prom-client hashes a label set on every inc(); the children are kept per label set instead.
  const requestCounters = new Map<string, { inc: () => void }>()
  const duration = deps.metrics.duration.labels(cls)
  let active = 0

  /** Count and log one answered request (or one the parser or admission refused). */
  function finish(req: Pick<http.IncomingMessage, 'method' | 'socket'>, status: number, rec: Record_, scan: Pick<HeaderScan, 'host'>): void {
    const key = `${rec.host}\0${status}\0${rec.upstream}`
    let counter = requestCounters.get(key)
    if (!counter) requestCounters.set(key, (counter = deps.metrics.requests.labels({ ...cls, host: rec.host, status: String(status), upstream: rec.upstream })))
    counter.inc()
    const ms = performance.now() - rec.start
    duration.observe(ms / 1000)
    if (!logAccess) return
    deps.accessLog.info({
      class: deps.className, remote: plainIp(req.socket.remoteAddress), method: req.method, host: scan.host ?? '', path: rec.path,
      status, bytes: rec.bytes, duration_ms: Math.round(ms * 100) / 100, upstream: rec.upstream, ingress: rec.ingress, request_id: rec.requestId,
      ...(rec.reason === undefined ? {} : { reason: rec.reason }),
    })
  }

  function reply(req: http.IncomingMessage, res: http.ServerResponse, rec: Record_, status: number, body: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) return void res.destroy()
    rec.bytes = Buffer.byteLength(body)
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(rec.bytes), ...headers })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  /** admit never throws by design; if a bug makes it, the request gets a 500 instead of the worker dying with every connection. */
  function safeAdmit(req: http.IncomingMessage, scan: HeaderScan, scheme: Scheme, state: RuntimeState, rec: Record_): Admission {
    try {
      return admit(req, scan, scheme, state, rec)
    } catch (err) {
      rec.reason = `admission failed: ${(err as Error)?.message ?? err}`
      return { kind: 'answer', status: 500, body: 'internal error\n', close: true }
    }
  }

  function newRecord(): Record_ {
    return { start: performance.now(), host: '_', path: '', upstream: '-', ingress: '', requestId: '', bytes: 0, tooLarge: false }
  }

  function forwarding(req: http.IncomingMessage, scan: HeaderScan, scheme: Scheme, state: RuntimeState, authority: string) {
    const peer = plainIp(req.socket.remoteAddress)
    const trusted = state.trusted !== undefined && inRanges(state.trusted, peer)
    return { trusted, ...forwardedValues(scan, { scheme, peer, trusted, host: authority, localPort: req.socket.localPort ?? 0, newRequestId: randomUUID }) }
  }

  function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, scheme: Scheme): void {
    const rec = newRecord()
    const scan = scanHeaders(req.rawHeaders)
    active++
    const ctx: RequestContext = { req, res, rec, scan, clientGone: false }
    res.on('close', () => {
      active--
      ctx.clientGone = !res.writableFinished
      if (ctx.clientGone) ctx.attempt?.controller?.abort(new Error('client closed the connection'))
      ctx.attempt?.end()
      finish(req, res.statusCode, rec, scan)
    })
    if (deps.draining()) res.setHeader('Connection', 'close')
    const state = deps.state()
    if (!state) return reply(req, res, rec, 503, 'ingress not configured yet\n')
    const d = safeAdmit(req, scan, scheme, state, rec)
    if (d.kind === 'answer') return reply(req, res, rec, d.status, d.body, d.close ? { ...d.headers, Connection: 'close' } : d.headers)
    if (d.hsts > 0) res.setHeader('Strict-Transport-Security', `max-age=${d.hsts}`)
    const fw = forwarding(req, scan, scheme, state, d.authority)
    rec.requestId = fw.requestId
    const headers = upstreamHeaders(req.rawHeaders, scan, fw.headers, fw.trusted, d.gateway?.host ?? (d.absolute ? d.authority : undefined))
    forward(ctx, d, d.gateway ? applyHeaderEdits(headers, d.gateway.request) : headers)
  }

  function forward(ctx: RequestContext, d: Extract<Admission, { kind: 'forward' }>, headers: string[]): void {
    const { req, res, rec, scan } = ctx
    const endpoints = d.backend.endpoints
    const tried: string[] = []
    const bodyless = (scan.contentLength === undefined || scan.contentLength === '0') && scan.transferEncoding === undefined
    const retryable = idempotent.has(req.method ?? '') && bodyless
    const body = bodyless ? null : requestBody(ctx, d.opts)
    const affinity = d.opts.loadBalance === 'cookie' ? cookieValue(scan.cookie, affinityCookie) : undefined
    const attempt = (): void => {
      const pick = deps.balancer.pick({ backend: d.backend.key, endpoints, policy: d.opts.loadBalance, affinity, exclude: endpoints.length > 1 ? tried : [] })
      if (!pick) return reply(req, res, rec, 502, 'bad gateway: no endpoint left to try\n')
      const ep = pick.endpoint
      tried.push(ep.id)
      rec.upstream = ep.id
      const a: Attempt = { endpoint: ep, end: deps.balancer.begin(ep.id), responded: false, sendTimedOut: false }
      ctx.attempt = a
      const setCookie = pick.setAffinity ? `${affinityCookie}=${pick.setAffinity}; Path=/; HttpOnly` : undefined
      let remaining = -1
      let last: Buffer | undefined
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          a.controller = c
          if (ctx.clientGone) c.abort(new Error('client closed the connection'))
        },
        onResponseStart(c, status, headers, statusMessage) {
          if (status < 200) return
          a.responded = true
          deps.balancer.recordSuccess(ep.id)
          const length = headers['content-length']
          remaining = typeof length === 'string' ? Number(length) : -1
          const down = downstreamHeaders(c.rawHeaders as Buffer[], { setCookie, close: deps.draining() })
          res.writeHead(status, statusMessage || undefined, d.gateway?.response.length ? applyHeaderEdits(down, d.gateway.response) : down)
        },
        onResponseData(c, chunk) {
          rec.bytes += chunk.length
          // The chunk that completes a sized body goes out with end(): one write path instead of two.
          if (chunk.length === remaining) return void (last = chunk)
          if (remaining > 0) remaining -= chunk.length
          if (!res.write(chunk)) {
            c.pause()
            res.once('drain', () => c.resume())
          }
        },
        onResponseEnd() {
          a.end()
          res.end(last)
        },
        onResponseError(_c, err) {
          a.end()
          failed(a, err)
        },
      }
      upstreams.get(ep.id, d.opts.connectTimeoutMs).dispatch({
        path: d.url, method: req.method as Dispatcher.HttpMethod, headers, body,
        headersTimeout: d.opts.readTimeoutMs, bodyTimeout: d.opts.readTimeoutMs,
      }, handler)
    }
    const failed = (a: Attempt, err: any): void => {
      if (rec.tooLarge || ctx.clientGone) return
      const code: string = a.sendTimedOut ? 'ESENDTIMEOUT' : err?.code ?? 'EUNKNOWN'
      const connectFail = connectErrors.has(code)
      const timedOut = timeoutErrors.has(code)
      // Cut because its host died (UpstreamPool.abort): the request never reached a live process.
      const cutDead = (err instanceof EndpointCutError || cutEndpoints.has(a.endpoint.id)) && !a.responded
      const reason = timedOut ? (code === 'ESENDTIMEOUT' ? 'send-timeout' : 'read-timeout') : connectFail ? (code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect-timeout' : 'connect') : resetErrors.has(code) || cutDead ? 'reset' : 'other'
      deps.metrics.upstreamErrors.inc({ ...cls, reason })
      if (!a.responded && !timedOut) deps.balancer.recordFailure(a.endpoint.id, endpoints)
      // A connection closed before any answer (a stale keep-alive socket) may be retried once; a refused one goes elsewhere.
      // Nothing reached a live process: try the other endpoints (up to 3 in all), as nginx's proxy_next_upstream does for connect errors.
      const maxTries = connectFail || cutDead ? Math.min(3, Math.max(2, endpoints.length)) : 2
      const lostBeforeAnswer = !a.responded && resetErrors.has(code)
      if (retryable && tried.length < maxTries && !res.headersSent && ((connectFail && endpoints.length > 1) || lostBeforeAnswer || cutDead)) return attempt()
      reply(req, res, rec, timedOut ? 504 : 502, timedOut ? 'gateway timeout\n' : `bad gateway: ${code}\n`)
    }
    attempt()
  }

  /**
   * The request body on its way up: counted against the body size limit (a
   * streamed body past it: 413, the upstream request abandoned) and watched
   * for the send timeout (no chunk taken for that long: the upstream stopped
   * reading; like nginx's proxy_send_timeout). undici reads this stream, not
   * the request itself, so an abandoned upload never destroys the client's
   * socket before its answer is written.
   */
  function requestBody(ctx: RequestContext, opts: IngressOptions): Transform {
    const { req, res, rec } = ctx
    const limit = opts.bodySizeLimit
    let total = 0
    let timer: NodeJS.Timeout | undefined
    const arm = (): void => {
      if (opts.sendTimeoutMs <= 0) return
      clearTimeout(timer)
      timer = setTimeout(() => {
        const a = ctx.attempt
        if (!a) return
        a.sendTimedOut = true
        a.controller?.abort(Object.assign(new Error('upstream send timeout'), { code: 'ESENDTIMEOUT' }))
      }, opts.sendTimeoutMs)
    }
    const body = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        arm()
        total += chunk.length
        if (limit <= 0 || total <= limit) return cb(null, chunk)
        if (!rec.tooLarge) {
          rec.tooLarge = true
          ctx.attempt?.controller?.abort(new Error('request body too large'))
          reply(req, res, rec, 413, 'request body too large\n', { Connection: 'close' })
        }
        cb()
      },
      flush(cb) {
        clearTimeout(timer)
        cb()
      },
      destroy(err, cb) {
        clearTimeout(timer)
        cb(err)
      },
    })
    arm()
    res.once('close', () => clearTimeout(timer))
    return req.pipe(body)
  }

  /** WebSocket (Upgrade): the same admission, then a piped socket pair through http-proxy-3. */
  function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, scheme: Scheme): void {
    const rec = newRecord()
    const scan = scanHeaders(req.rawHeaders)
    const fail = (status: number, text: string, headers: Record<string, string> = {}): void => answerOnSocket(req, socket, { status, text, headers, rec, scan })
    socket.on('error', () => socket.destroy())
    const state = deps.state()
    if (!state || deps.draining()) return fail(503, 'unavailable\n')
    const d = safeAdmit(req, scan, scheme, state, rec)
    if (d.kind === 'answer') return fail(d.status, d.body, d.headers)
    const pick = deps.balancer.pick({ backend: d.backend.key, endpoints: d.backend.endpoints, policy: d.opts.loadBalance, affinity: cookieValue(scan.cookie, affinityCookie) })
    if (!pick) return fail(503, 'no endpoint\n')
    const fw = forwarding(req, scan, scheme, state, d.authority)
    const h = req.headers
    for (const name of forwardedHeaders) if (!(fw.trusted && name === 'forwarded')) delete h[name]
    for (const [k, v] of fw.headers) h[k] = v
    if (d.absolute) h.host = d.authority
    req.url = d.url
    const end = deps.balancer.begin(pick.endpoint.id)
    wsProxy.ws(req, socket, head, { target: new URL(`http://${pick.endpoint.id}`), toProxy: true, prependPath: false, connectTimeout: d.opts.connectTimeoutMs }, () => {
      end()
      deps.metrics.upstreamErrors.inc({ ...cls, reason: 'websocket' })
    })
    ;(req as Upgrading)[kUpgraded] = () => {
      websockets.add(socket)
      deps.metrics.websockets.inc(cls)
      socket.once('close', () => {
        websockets.delete(socket)
        deps.metrics.websockets.dec(cls)
        end()
      })
    }
  }
  /** An answer written on the socket of an upgrade or CONNECT (no ServerResponse), counted and logged. */
  function answerOnSocket(req: http.IncomingMessage, socket: Duplex, a: { status: number; text: string; headers?: Record<string, string>; rec: Record_; scan: HeaderScan }): void {
    a.rec.bytes = Buffer.byteLength(a.text)
    if (a.status >= 400) a.rec.reason ??= a.text.trimEnd()
    socket.end(rawAnswer(a.status, a.text, a.headers))
    finish(req, a.status, a.rec, a.scan)
  }

  /** CONNECT (the server's 'connect' event): an ingress is no forward proxy, so 501 for every target. */
  function handleConnect(req: http.IncomingMessage, socket: Duplex): void {
    socket.on('error', () => socket.destroy())
    answerOnSocket(req, socket, { status: 501, text: 'CONNECT is not supported\n', rec: newRecord(), scan: scanHeaders(req.rawHeaders) })
  }

  /**
   * The server's 'clientError': Node's parser refused the bytes (a bad field
   * name or value, obs-fold, bad framing, a header block past maxHeaderSize,
   * a timeout). Answered as Node itself would (the status it picks, nothing
   * when a response is already under way), with the parser's reason in the
   * body, and counted and logged like every other answer (host `_`).
   */
  function clientError(err: Error & { code?: string; reason?: string }, socket: Duplex & { remoteAddress?: string }): void {
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) return void socket.destroy()
    const status = parserStatus[err.code ?? ''] ?? 400
    const text = `${http.STATUS_CODES[status]!.toLowerCase()}: ${err.reason ?? err.code ?? 'malformed request'}\n`
    const rec = newRecord()
    rec.reason = `${err.code ?? 'EPARSE'}: ${err.reason ?? err.message}`
    rec.bytes = Buffer.byteLength(text)
    socket.end(rawAnswer(status, text), () => socket.destroy())
    finish({ method: undefined, socket: socket as any }, status, rec, {})
  }

  wsProxy.on('proxyReqWs', (proxyReq, req) => {
    proxyReq.on('upgrade', () => (req as Upgrading)[kUpgraded]?.())
  })

  return {
    handleRequest,
    handleUpgrade,
    handleConnect,
    clientError,
    /** Requests being answered plus open WebSockets: drain waits for 0. */
    busy: (): number => active + websockets.size,
    websockets,
    /** After a swap: forget departed endpoints. */
    retain(state: RuntimeState, ids: ReadonlySet<string>): void {
      upstreams.retain(ids)
      deps.balancer.retain(new Set(state.backends.keys()), ids)
    },
    /** Endpoints on dead hosts: cut their connections so requests waiting on them fail over now. */
    abort(ids: Iterable<string>): number {
      cutEndpoints = new Set(ids)
      return upstreams.abort(cutEndpoints)
    },
    close(): void {
      upstreams.destroy()
      wsProxy.close()
    },
  }
}

/** One upstream try of a plain request. */
interface Attempt {
  endpoint: Endpoint
  end: () => void
  controller?: Dispatcher.DispatchController
  responded: boolean
  sendTimedOut: boolean
}

interface RequestContext {
  req: http.IncomingMessage
  res: http.ServerResponse
  rec: Record_
  scan: HeaderScan
  attempt?: Attempt
  /** The client went away before the response was complete. */
  clientGone: boolean
}

const kUpgraded = Symbol('skiff.upgraded')
type Upgrading = http.IncomingMessage & { [kUpgraded]?: () => void }

export type IngressProxy = ReturnType<typeof createIngressProxy>

/** Statuses Node's own error answers use; anything else the parser refuses is a 400. */
const parserStatus: Record<string, number> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 }

/** A whole answer written on a socket that has no ServerResponse (upgrades, parser errors); it always closes. */
function rawAnswer(status: number, text: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

/** Wires a server's events to the proxy: requests, upgrades, CONNECT and what the parser refused. */
export function serveWith(server: http.Server | https.Server, proxy: IngressProxy, scheme: Scheme): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => proxy.handleRequest(req, res, scheme))
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => proxy.handleUpgrade(req, socket, head, scheme))
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => proxy.handleConnect(req, socket))
  server.on('clientError', (err: Error, socket: Duplex) => proxy.clientError(err, socket))
}
