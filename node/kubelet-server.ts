// The node agent's kubelet endpoint: the HTTPS server the apiserver proxies
// `pods/log` and `pods/exec` to, on the kubelet's own paths:
//   GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&...  text/plain, streamed
//   GET /exec/{ns}/{pod}/{container}?command=..  WebSocket, v5.channel.k8s.io (or v4)
//   GET /healthz                                  "ok", no token needed
//   GET /metrics, /debug/<page>                   the agent's Prometheus metrics, debug pages (token)
// Every other request must carry `Authorization: Bearer <clientToken>` (the
// apiserver's kubelet client token, compared in constant time) or gets 401.
// The certificate is self-signed, made at start: the apiserver does not
// verify it, as kube-apiserver does not verify kubelets by default.

import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import { isIP, type AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type Dockerode from 'dockerode'
import { WebSocketServer } from 'ws'
import { selfSignedCert } from '../certs/ca.ts'
import type { Logger } from '../lib/log.ts'
import { findContainer, parseContainerPath } from './kubelet-containers.ts'
import { parseExecOptions, pickProtocol, runExec } from './kubelet-exec.ts'
import { parseLogOptions, serveLogs } from './kubelet-logs.ts'

export interface KubeletServerOptions {
  docker: Dockerode
  nodeName: string
  host: string
  /** 0 picks a free port; start() returns the one it got. */
  port: number
  clientToken: string
  logger: Logger
  /** Prometheus text for GET /metrics (the agent's registry). */
  metrics?: () => Promise<{ contentType: string; text: string }>
  /** Plain-text debug pages under /debug/<name> (e.g. the service proxy's table). */
  debug?: Record<string, () => string>
}

/** An error answered as a Kubernetes Status, which the apiserver passes on to kubectl. */
class KubeletError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

const reasons: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 404: 'NotFound', 405: 'MethodNotAllowed', 500: 'InternalError' }

function statusBody(status: number, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: reasons[status] ?? 'InternalError', code: status })
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

export class KubeletServer {
  #opts: KubeletServerOptions
  #log: Logger
  #server?: Server
  #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (offered) => pickProtocol(offered) ?? false })
  #tokenDigest: Buffer

  constructor(opts: KubeletServerOptions) {
    if (!opts.clientToken) throw new Error('KubeletServer: clientToken is required')
    this.#opts = opts
    this.#log = opts.logger.child({ component: 'kubelet-server' })
    this.#tokenDigest = digest(opts.clientToken)
  }

  async start(): Promise<{ port: number }> {
    const { host, nodeName } = this.#opts
    const ips = ['127.0.0.1', ...(isIP(host) && host !== '0.0.0.0' && host !== '::' ? [host] : [])]
    const dns = ['localhost', ...(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(nodeName) ? [nodeName] : []), ...(!isIP(host) ? [host] : [])]
    const tls = selfSignedCert({ commonName: `skiff-kubelet-${nodeName}`, ipAddresses: [...new Set(ips)], dnsNames: [...new Set(dns)], days: 365 })
    const server = createServer({ key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' }, (req, res) => void this.#handle(req, res))
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
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  #authorized(req: IncomingMessage): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    return !!m && timingSafeEqual(digest(m[1]!), this.#tokenDigest)
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    try {
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok')
        return
      }
      if (!this.#authorized(req)) throw new KubeletError(401, 'Unauthorized: the kubelet endpoint needs the apiserver\'s kubelet client token')
      if (req.method !== 'GET') throw new KubeletError(405, `${req.method} is not supported`)
      if (url.pathname === '/metrics' && this.#opts.metrics) {
        const m = await this.#opts.metrics()
        res.writeHead(200, { 'Content-Type': m.contentType }).end(m.text)
        return
      }
      const page = url.pathname.startsWith('/debug/') ? this.#opts.debug?.[url.pathname.slice('/debug/'.length)] : undefined
      if (page) {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end(page())
        return
      }
      if (parseContainerPath(url.pathname, '/exec/')) throw new KubeletError(400, 'Upgrade request required: exec needs a WebSocket (v5.channel.k8s.io)')
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
      if (!this.#authorized(req)) throw new KubeletError(401, 'Unauthorized: the kubelet endpoint needs the apiserver\'s kubelet client token')
      const ref = parseContainerPath(url.pathname, '/exec/')
      if (!ref) throw new KubeletError(404, `not found: ${url.pathname}`)
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw new KubeletError(400, 'exec is served over WebSocket (v5.channel.k8s.io) only, not SPDY')
      const protocol = pickProtocol((req.headers['sec-websocket-protocol'] ?? '').split(','))
      if (!protocol) throw new KubeletError(400, 'exec needs the WebSocket subprotocol v5.channel.k8s.io (or v4.channel.k8s.io)')
      const exec = parseExecOptions(url.searchParams)
      if (!exec.ok) throw new KubeletError(400, exec.message)
      const found = await findContainer(this.#opts.docker, this.#opts.nodeName, ref)
      if (!found.ok) throw new KubeletError(found.status, found.message)
      if (found.container.State !== 'running') throw new KubeletError(400, `container "${ref.container}" in pod "${ref.pod}" is not running (state ${found.container.State})`)
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        void runExec({ docker: this.#opts.docker, containerId: found.container.Id, ws, protocol, exec: exec.value, logger: this.#log }).catch((e) => {
          this.#log.warn({ err: (e as Error).message }, 'exec session failed')
          ws.terminate()
        })
      })
    } catch (e) {
      const err = e instanceof KubeletError ? e : new KubeletError(500, `kubelet on node ${this.#opts.nodeName}: ${(e as Error).message}`)
      const body = statusBody(err.status, err.message)
      socket.end(`HTTP/1.1 ${err.status} ${reasons[err.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
  }
}
