// The node agent's kubelet endpoint: the HTTPS server the apiserver proxies
// `pods/log` and `pods/exec` to, on the kubelet's own paths:
//   GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&...  text/plain, streamed
//   GET /exec/{ns}/{pod}/{container}?command=..  WebSocket, a channel protocol (kubelet-channels.ts)
//   GET /attach/{ns}/{pod}/{container}?stdin=..   WebSocket, likewise
//   GET|POST /portForward/{ns}/{pod}[/{uid}]       WebSocket (SPDY tunnel or v4 channels) or SPDY/3.1 (kubelet-portforward.ts)
//   GET /healthz                                  "ok", open
//   GET /metrics, /debug/<page>                   the agent's Prometheus metrics, debug pages
//   GET /metrics/resource                         pods' and the node's CPU and memory (resource-metrics.ts)
//   GET /podLogs/[?namespace=]                    the archived logs of deleted and replaced containers, JSON (pod-log-store.ts)
//   GET /podLogs/{ns}/{pod}/{uid}/{container}?tailLines=&...  one archived container's log, text/plain
// TLS only, mutual: the server presents the node's serving certificate from
// the cluster CA (node/kubelet-cert.ts) and asks every client for a
// certificate. Every request but /healthz needs one that chains to the
// cluster CA (else 401) with CN skiff:apiserver-kubelet-client, the
// apiserver's (else 403): nothing but the apiserver reaches pods through the
// kubelet, and it checks the caller's rights first. The handshake itself
// accepts any client, so a refusal is a Status with a reason, not a TLS alert.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type Dockerode from 'dockerode'
import { WebSocketServer, type WebSocket } from 'ws'
import { APISERVER_KUBELET_CLIENT_CN } from '../certs/ca.ts'
import type { Logger } from '../lib/log.ts'
import { findContainer, parseContainerPath } from './kubelet-containers.ts'
import { hasResize, pickProtocol, portForwardProtocols, type ChannelProtocol } from './kubelet-channels.ts'
import { parseExecOptions, parseStreamOptions, runAttach, runExec, spdyRemoteCommandProtocols, spdySessionIO, wsSessionIO, type SessionIO } from './kubelet-exec.ts'
import { SpdySession } from './spdy.ts'
import { resourceMetricsText } from './resource-metrics.ts'
import { parseLogOptions, serveLogs } from './kubelet-logs.ts'
import type { PodLogsAnswer } from './pod-log-store.ts'
import { findPodNetns, parsePortQuery, serveSpdyPortForward, serveWebSocketPortForward, spdyPortForwardProtocol, spdyTunnelProtocol } from './kubelet-portforward.ts'

export interface KubeletServerOptions {
  docker: Dockerode
  nodeName: string
  host: string
  /** 0 picks a free port; start() returns the one it got. */
  port: number
  /** The serving certificate and key (from the cluster CA), and the CA that clients' certificates must chain to. */
  tls: { certPem: string; keyPem: string; caPem: string }
  logger: Logger
  /** Prometheus text for GET /metrics (the agent's registry). */
  metrics?: () => Promise<{ contentType: string; text: string }>
  /** Plain-text debug pages under /debug/<name> (e.g. the service proxy's table). */
  debug?: Record<string, () => string>
  /** The archive of deleted and replaced containers' logs, served under /podLogs/ (none: 404 there). */
  podLogs?: { answer(url: URL): Promise<PodLogsAnswer | undefined> }
}

/** An error answered as a Kubernetes Status, which the apiserver passes on to kubectl. */
class KubeletError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

const reasons: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 500: 'InternalError' }

function statusBody(status: number, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: reasons[status] ?? 'InternalError', code: status })
}

export class KubeletServer {
  #opts: KubeletServerOptions
  #log: Logger
  #server?: Server
  // The subprotocol each upgrade negotiated, chosen before the handshake (per request).
  #chosen = new WeakMap<IncomingMessage, string>()
  #spdySessions = new Set<SpdySession>()
  #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (_offered, req) => this.#chosen.get(req) || false })

  constructor(opts: KubeletServerOptions) {
    if (!opts.tls?.certPem || !opts.tls.keyPem || !opts.tls.caPem) throw new Error('KubeletServer: tls (serving certificate, key and the cluster CA) is required')
    this.#opts = opts
    this.#log = opts.logger.child({ component: 'kubelet-server' })
  }

  async start(): Promise<{ port: number }> {
    const { host, tls } = this.#opts
    const server = createServer(
      // requestCert without rejectUnauthorized: the handshake lets anyone in, so /healthz stays open and a refusal can say why.
      { key: tls.keyPem, cert: tls.certPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      (req, res) => void this.#handle(req, res),
    )
    server.on('upgrade', (req, socket, head) => void this.#upgrade(req, socket, head))
    server.headersTimeout = 20_000
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#opts.port, host, () => resolve())
    })
    const port = (server.address() as AddressInfo).port
    this.#log.info({ host, port }, 'kubelet server listening')
    return { port }
  }

  async stop(): Promise<void> {
    const server = this.#server
    if (!server) return
    this.#server = undefined
    for (const ws of this.#wss.clients) ws.terminate()
    for (const s of this.#spdySessions) s.close()
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  /** Throws 401/403 unless the client presented the apiserver's certificate from the cluster CA. */
  #authorize(req: IncomingMessage): void {
    const sock = req.socket as TLSSocket
    const cert = sock.getPeerCertificate?.()
    const cn = cert?.subject?.CN
    if (!cert || !cn) {
      throw new KubeletError(401, `Unauthorized: the kubelet server of node ${this.#opts.nodeName} needs a client certificate from the cluster CA (the apiserver's, CN ${APISERVER_KUBELET_CLIENT_CN})`)
    }
    if (!sock.authorized) {
      throw new KubeletError(401, `Unauthorized: the client certificate (CN ${JSON.stringify(cn)}) is not valid for this cluster: ${String(sock.authorizationError)}; only the apiserver's certificate from the cluster CA is accepted`)
    }
    if (cn !== APISERVER_KUBELET_CLIENT_CN) {
      throw new KubeletError(403, `Forbidden: client certificate CN ${JSON.stringify(cn)} may not use the kubelet server of node ${this.#opts.nodeName}; only the apiserver (CN ${APISERVER_KUBELET_CLIENT_CN}) may: go through the apiserver (kubectl logs, kubectl exec)`)
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    try {
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok')
        return
      }
      this.#authorize(req)
      if (req.method !== 'GET') throw new KubeletError(405, `${req.method} is not supported`)
      if (url.pathname === '/metrics' && this.#opts.metrics) {
        const m = await this.#opts.metrics()
        res.writeHead(200, { 'Content-Type': m.contentType }).end(m.text)
        return
      }
      if (url.pathname === '/metrics/resource') {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(await resourceMetricsText(this.#opts.docker, this.#opts.nodeName))
        return
      }
      const page = url.pathname.startsWith('/debug/') ? this.#opts.debug?.[url.pathname.slice('/debug/'.length)] : undefined
      if (page) {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end(page())
        return
      }
      const archived = url.pathname === '/podLogs' || url.pathname.startsWith('/podLogs/') ? await this.#opts.podLogs?.answer(url) : undefined
      if (archived && archived.status !== 200) throw new KubeletError(archived.status, archived.body)
      if (archived) {
        res.writeHead(200, { 'Content-Type': archived.contentType, 'Cache-Control': 'no-cache, private', 'X-Content-Type-Options': 'nosniff' }).end(archived.body)
        return
      }
      if (parseContainerPath(url.pathname, '/exec/') || parseContainerPath(url.pathname, '/attach/') || parsePortForwardPath(url.pathname)) throw new KubeletError(400, 'Upgrade request required: exec, attach and port-forward need a WebSocket (or SPDY) upgrade')
      const ref = parseContainerPath(url.pathname, '/containerLogs/')
      if (!ref) throw new KubeletError(404, `not found: ${url.pathname}`)
      const parsed = parseLogOptions(url.searchParams, Date.now())
      if (!parsed.ok) throw new KubeletError(400, parsed.message)
      const found = await findContainer(this.#opts.docker, this.#opts.nodeName, ref, { previous: parsed.value.previous })
      if (!found.ok) throw new KubeletError(found.status, found.message)
      await serveLogs({ docker: this.#opts.docker, id: found.container.Id, res, log: parsed.value })
    } catch (e) {
      const err = e instanceof KubeletError ? e : new KubeletError(500, `kubelet on node ${this.#opts.nodeName}: ${(e as Error).message}`)
      if (err.status === 500) this.#log.warn({ err: (e as Error).message, path: url.pathname }, 'request failed')
      if (res.headersSent) res.destroy()
      else res.writeHead(err.status, { 'Content-Type': 'application/json' }).end(statusBody(err.status, err.message))
    }
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy())
    const url = new URL(req.url ?? '/', 'https://kubelet')
    try {
      this.#authorize(req)
      const forward = parsePortForwardPath(url.pathname)
      if (forward) return await this.#portForward(req, socket, head, url, forward)
      const exec = parseContainerPath(url.pathname, '/exec/')
      const attach = parseContainerPath(url.pathname, '/attach/')
      const ref = exec ?? attach
      if (!ref) throw new KubeletError(404, `not found: ${url.pathname}`)
      const what = exec ? 'exec' : 'attach'
      const upgrade = (req.headers.upgrade ?? '').toLowerCase()
      if (upgrade !== 'websocket' && upgrade !== 'spdy/3.1') throw new KubeletError(400, `${what} needs a WebSocket or SPDY/3.1 upgrade`)
      const spdy = upgrade === 'spdy/3.1'
      const protocol = spdy ? pickSpdyProtocol(req.headers['x-stream-protocol-version']) : pickProtocol(req.headers['sec-websocket-protocol'])
      if (!protocol && spdy) throw new KubeletError(403, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(req.headers['x-stream-protocol-version'] ?? '')}, server supports ${JSON.stringify(spdyRemoteCommandProtocols)}`)
      if (!protocol) throw new KubeletError(400, `${what} needs a WebSocket subprotocol of v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io or base64.channel.k8s.io; offered: ${req.headers['sec-websocket-protocol']}`)
      const execOpts = exec ? parseExecOptions(url.searchParams) : undefined
      const opts = execOpts ?? parseStreamOptions(url.searchParams)
      if (!opts.ok) throw new KubeletError(400, opts.message)
      const found = await findContainer(this.#opts.docker, this.#opts.nodeName, ref)
      if (!found.ok) throw new KubeletError(found.status, found.message)
      if (found.container.State !== 'running') throw new KubeletError(400, `container "${ref.container}" in pod "${ref.pod}" is not running (state ${found.container.State})`)
      const id = found.container.Id
      const containerTty = attach ? !!(await this.#opts.docker.getContainer(id).inspect()).Config.Tty : false
      const run = (io: SessionIO) => {
        const common = { docker: this.#opts.docker, containerId: id, io, logger: this.#log, resize: hasResize(protocol) }
        return execOpts?.ok ? runExec({ ...common, exec: execOpts.value }) : runAttach({ ...common, containerTty, attach: opts.value })
      }
      if (!spdy) return this.#accept(req, socket, head, protocol, (ws) => run(wsSessionIO(ws, protocol, opts.value)))
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol.name}\r\n\r\n`)
      const session = this.#spdyOnSocket(socket, head)
      spdySessionIO(session, protocol, opts.value).then(run, (e: Error) => this.#log.info({ err: e.message }, `${what} over SPDY: no session`))
    } catch (e) {
      const err = e instanceof KubeletError ? e : new KubeletError(500, `kubelet on node ${this.#opts.nodeName}: ${(e as Error).message}`)
      const body = statusBody(err.status, err.message)
      socket.end(`HTTP/1.1 ${err.status} ${reasons[err.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
  }

  /** /portForward/{ns}/{pod}: kubectl's SPDY tunnel over WebSocket, plain SPDY, or the v4 channel protocol. */
  async #portForward(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, ref: { namespace: string; pod: string }): Promise<void> {
    const upgrade = (req.headers.upgrade ?? '').toLowerCase()
    const found = await findPodNetns(this.#opts.docker, this.#opts.nodeName, ref.namespace, ref.pod)
    if (!found.ok) throw new KubeletError(found.status, found.message)
    const pod = found.value
    if (upgrade === 'spdy/3.1') {
      const versions = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((v) => v.trim())
      if (!versions.includes(spdyPortForwardProtocol)) throw new KubeletError(403, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(versions)}, server supports ["${spdyPortForwardProtocol}"]`)
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${spdyPortForwardProtocol}\r\n\r\n`)
      this.#log.info({ pod: pod.fullName }, 'port-forward session (SPDY)')
      serveSpdyPortForward(this.#spdyOnSocket(socket, head), pod, this.#log)
      return
    }
    if (upgrade !== 'websocket') throw new KubeletError(400, 'Upgrade request required: port-forward needs a WebSocket or SPDY/3.1 upgrade')
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    if (offered.includes(spdyTunnelProtocol)) {
      this.#accept(req, socket, head, { name: spdyTunnelProtocol }, async (ws) => {
        const session = this.#track(new SpdySession({
          write: (b, done) => (ws.readyState === ws.OPEN ? ws.send(b, () => done()) : done()),
          close: () => ws.close(1000),
        }))
        ws.on('message', (b: Buffer) => session.push(b))
        ws.once('close', () => session.close())
        this.#log.info({ pod: pod.fullName }, 'port-forward session (SPDY over WebSocket)')
        serveSpdyPortForward(session, pod, this.#log)
      })
      return
    }
    const protocol = pickProtocol(offered, portForwardProtocols)
    if (!protocol) throw new KubeletError(400, `port-forward needs a WebSocket subprotocol of ${spdyTunnelProtocol}, v4.channel.k8s.io or v4.base64.channel.k8s.io; offered: ${offered.join(', ')}`)
    const ports = parsePortQuery(url.searchParams)
    if (!ports.ok) throw new KubeletError(400, ports.message)
    this.#accept(req, socket, head, protocol, (ws) => serveWebSocketPortForward(ws, protocol, ports.value, pod, this.#log))
  }

  /** A SPDY session on an upgraded connection (the 101 already written). */
  #spdyOnSocket(socket: Duplex, head: Buffer): SpdySession {
    const session = this.#track(new SpdySession({ write: (b, done) => socket.write(b, () => done()), close: () => socket.end() }))
    if (head.length) session.push(head)
    socket.on('data', (b: Buffer) => session.push(b))
    socket.once('close', () => session.close())
    return session
  }

  #track(session: SpdySession): SpdySession {
    this.#spdySessions.add(session)
    session.on('error', (e) => this.#log.info({ err: e.message }, 'SPDY protocol error'))
    session.once('close', () => this.#spdySessions.delete(session))
    return session
  }

  /** Completes the WebSocket handshake with the chosen subprotocol and runs the session on it. */
  #accept(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: ChannelProtocol | { name: string }, session: (ws: WebSocket) => Promise<void>): void {
    this.#chosen.set(req, protocol.name)
    // ws refuses a subprotocol that is not an RFC 7230 token, and SPDY/3.1+portforward.k8s.io has a '/':
    // it only has to see some offer, since handleProtocols answers with the chosen name anyway.
    if (protocol.name) req.headers['sec-websocket-protocol'] = 'chosen'
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      session(ws).catch((e) => {
        this.#log.warn({ err: (e as Error).message }, 'stream session failed')
        ws.terminate()
      })
    })
  }
}

/** `/portForward/{ns}/{pod}` or `/portForward/{ns}/{pod}/{uid}` → the pod, or undefined. Pure. */
export function parsePortForwardPath(pathname: string): { namespace: string; pod: string } | undefined {
  if (!pathname.startsWith('/portForward/')) return undefined
  const parts = pathname.slice('/portForward/'.length).split('/')
  if ((parts.length !== 2 && parts.length !== 3) || parts.some((p) => p === '')) return undefined
  try {
    return { namespace: decodeURIComponent(parts[0]!), pod: decodeURIComponent(parts[1]!) }
  } catch {
    return undefined
  }
}

/** The remote-command protocol of a SPDY upgrade: the first of the client's X-Stream-Protocol-Version values served. Pure. */
export function pickSpdyProtocol(header: string | string[] | undefined): ChannelProtocol | undefined {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((v) => v.trim())
  const name = offered.find((v) => spdyRemoteCommandProtocols.includes(v))
  return name ? { ...pickProtocol(name)!, name } : undefined
}
