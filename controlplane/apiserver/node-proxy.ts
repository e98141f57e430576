// pods/log, exec, attach and portforward: the apiserver checks the caller and
// the pod, finds the node agent's kubelet endpoint in the pod's Node
// (InternalIP and status.daemonEndpoints.kubeletEndpoint.Port), and proxies
// the request there (`/containerLogs/...`, `/exec/...`, `/attach/...`,
// `/portForward/...`; GET nodes/{node}/proxy/{path} to `/{path}`) over mutual TLS: it presents its kubelet client
// certificate (CN skiff:apiserver-kubelet-client) and verifies the kubelet's
// serving certificate against the cluster CA, for the address it dials (IP
// SAN) and for that node (CN system:node:<name>), unlike kube-apiserver's
// default of not verifying kubelets at all. Each request gets its own
// connection (no keep-alive, so one connection never serves two callers),
// and a redirect from a kubelet is never followed or passed on
// (CVE-2018-1002105, CVE-2020-8559). Proxying is http-proxy-3's, WebSocket
// upgrades too (the subprotocol offer goes through unchanged: the kubelet
// negotiates); port-forward's SPDY/3.1 upgrade, which http-proxy-3 does not
// take, is relayed by #proxySpdy.
//
// kubectl falls back to SPDY after any failed WebSocket upgrade and then
// reports only the SPDY attempt's error; the kubelet serves SPDY too, so
// that error is the kubelet's (or the connection's) own.

import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import type { Duplex } from 'node:stream'
import { createProxyServer, type ProxyServer } from 'http-proxy-3'
import { ApiError, errorCodes, type Reason } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { StoreError } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'
import { check as checkAccess, type Verb } from './authz.ts'
import type { HandlerContext } from './handlers.ts'
import type { ResourcePath } from './paths.ts'
import type { Registry } from './registry.ts'

export interface NodeProxyOptions {
  registry: Registry
  logger: Logger
  /** The apiserver's kubelet client certificate and the cluster CA that kubelets' certificates chain to; without it log/exec answer 503. */
  kubeletClient?: { certPem: string; keyPem: string; caPem: string }
}

// A kubelet that does not answer within this time is treated as unreachable.
const connectTimeoutMs = 30_000
const maxErrorBody = 64 * 1024

export interface KubeletEndpoint {
  node: string
  host: string
  port: number
}

interface Target extends KubeletEndpoint {
  namespace: string
  pod: string
  container: string
  /** A fresh agent for this request: mutual TLS, the kubelet's certificate checked for this node. */
  agent: HttpsAgent
}

export class NodeProxy {
  #opts: NodeProxyOptions
  #log: Logger
  #sockets = new Set<Duplex>()

  constructor(opts: NodeProxyOptions) {
    this.#opts = opts
    this.#log = opts.logger.child({ component: 'node-proxy' })
  }

  /** Ends every proxied exec session (the HTTP server does not track upgraded sockets). */
  close(): void {
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
  }

  /** GET pods/{p}/log: streams the kubelet's answer; resolves when the response is done. */
  async serveLog(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
    const t = await this.#resolve(p, query, ctx, 'get')
    await this.#relayGet(req, res, t, `https://${hostPort(t)}${kubeletLogPath(t, query)}`)
  }

  /**
   * GET nodes/{node}/proxy/{path}: the kubelet's own path on that node (as
   * kube-apiserver's node proxy, GET only), over the same mutual TLS as
   * pods/log; the query goes through as it came. The caller was authorized
   * (get nodes/proxy) by handleNodesProxy.
   */
  async serveNodesProxy(req: IncomingMessage, res: ServerResponse, nodeName: string, path: string, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
    const node = await getNode(ctx.registry, nodeName)
    if (!node) throw new ApiError('NotFound', `nodes "${nodeName}" not found`, { name: nodeName, kind: 'nodes' })
    const t = { ...kubeletEndpoint(nodeName, node), agent: this.#kubeletAgent(nodeName) }
    const q = query.toString()
    this.#log.debug({ user: ctx.user.name, node: nodeName, path }, 'nodes/proxy')
    await this.#relayGet(req, res, t, `https://${hostPort(t)}${path}${q ? `?${q}` : ''}`)
  }

  /** Streams a kubelet's 2xx answer to a GET back; any other answer becomes the ApiError it means. */
  async #relayGet(req: IncomingMessage, res: ServerResponse, t: KubeletEndpoint & { agent: HttpsAgent }, url: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const proxy = newProxy(this.#log)
      let answered = false
      proxy.once('proxyReq', (proxyReq: ClientRequest) => {
        answerDeadline(proxyReq)
        // The caller's credentials stay here: the kubelet knows the apiserver by its certificate.
        proxyReq.removeHeader('authorization')
      })
      proxy.once('proxyRes', (proxyRes: IncomingMessage) => {
        answered = true
        const code = proxyRes.statusCode ?? 502
        if (code >= 200 && code < 300) {
          res.writeHead(code, { 'Content-Type': proxyRes.headers['content-type'] ?? 'text/plain', 'Cache-Control': 'no-cache, private' })
          res.flushHeaders()
          proxyRes.pipe(res)
          return
        }
        void readBounded(proxyRes).then((body) => reject(kubeletError(t, code, body)))
      })
      res.once('close', () => resolve())
      res.once('close', () => t.agent.destroy())
      proxy.web(req, res, { target: url, ignorePath: true, secure: true, agent: t.agent, changeOrigin: true, selfHandleResponse: true, headers: { connection: 'close' } }, (err) => {
        if (answered) return
        answered = true
        t.agent.destroy()
        reject(kubeletTransportError(t, err as Error))
      })
    })
  }

  /**
   * The pods/{p}/exec, attach and portforward upgrades, proxied to the
   * kubelet, which negotiates the subprotocol (the client's offer is passed
   * on as it is). Throws ApiError before anything is written to the socket.
   */
  async serveStream(req: IncomingMessage, socket: Duplex, head: Buffer, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
    const sub = p.subresource as StreamSubresource
    const t = await this.#resolve(p, query, ctx, 'create')
    if (sub === 'exec' && query.getAll('command').length === 0) throw new ApiError('BadRequest', 'you must specify at least 1 command')
    const upgrade = (req.headers.upgrade ?? '').toLowerCase()
    if (upgrade === 'spdy/3.1') {
      this.#log.info({ user: ctx.user.name, pod: `${t.namespace}/${t.pod}`, container: t.container || undefined, node: t.node, subresource: sub }, `${sub} (SPDY)`)
      return this.#proxySpdy(req, socket, head, t, `https://${hostPort(t)}${kubeletStreamPath(sub, t, query)}`)
    }
    if (upgrade !== 'websocket') throw new ApiError('BadRequest', `pods/${sub} needs a WebSocket or SPDY/3.1 upgrade, not ${JSON.stringify(req.headers.upgrade ?? '')}`)
    const url = `https://${hostPort(t)}${kubeletStreamPath(sub, t, query)}`
    this.#log.info({ user: ctx.user.name, pod: `${t.namespace}/${t.pod}`, container: t.container || undefined, node: t.node, subresource: sub }, sub)
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
    const proxy = newProxy(this.#log)
    let upgraded = false
    proxy.once('open', () => (upgraded = true))
    socket.once('close', () => t.agent.destroy())
    proxy.once('proxyReqWs', (proxyReq: ClientRequest) => {
      answerDeadline(proxyReq)
      // The caller's credentials stay here: the kubelet knows the apiserver by its certificate.
      proxyReq.removeHeader('authorization')
      // A non-101 answer is relayed to kubectl (this listener runs before the relay);
      // a redirect loses its target, so nobody follows it.
      proxyReq.on('response', (r) => {
        if ((r.statusCode ?? 0) >= 300 && (r.statusCode ?? 0) < 400) {
          r.statusCode = 502
          r.statusMessage = 'Bad Gateway'
          delete r.headers.location
        }
      })
    })
    proxy.ws(req, socket, head, { target: url, ignorePath: true, secure: true, agent: t.agent, changeOrigin: true }, (err) => {
      if (upgraded) return
      writeUpgradeError(socket, kubeletTransportError(t, err as Error))
    })
  }

  /**
   * A SPDY/3.1 upgrade (kubectl's fallback for exec, attach and
   * port-forward), which http-proxy-3
   * does not take: the request goes to the kubelet as it came (the caller's
   * credentials removed), its 101 back with the kubelet's headers, then the
   * two connections are joined. Any other answer becomes a Status.
   */
  #proxySpdy(req: IncomingMessage, socket: Duplex, head: Buffer, t: Target, url: string): void {
    const headers = { ...req.headers, host: hostPort(t) }
    delete headers.authorization
    const proxyReq = httpsRequest(url, { method: req.method, headers, agent: t.agent })
    answerDeadline(proxyReq)
    this.#sockets.add(socket)
    socket.once('close', () => {
      this.#sockets.delete(socket)
      t.agent.destroy()
    })
    proxyReq.on('upgrade', (res, upstream, upstreamHead) => {
      const lines = [`HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}`]
      for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
      socket.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (upstreamHead.length) socket.write(upstreamHead)
      if (head.length) upstream.write(head)
      upstream.on('error', () => socket.destroy())
      upstream.once('close', () => socket.destroy())
      socket.once('close', () => upstream.destroy())
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    proxyReq.on('response', (r) => {
      const code = r.statusCode ?? 502
      void readBounded(r).then((body) => writeUpgradeError(socket, kubeletError(t, code >= 300 && code < 400 ? 502 : code, body)))
    })
    proxyReq.on('error', (err) => writeUpgradeError(socket, kubeletTransportError(t, err)))
    proxyReq.end()
  }

  async #resolve(p: ResourcePath, query: URLSearchParams, ctx: HandlerContext, verb: Verb): Promise<Target> {
    const namespace = p.namespace ?? 'default'
    const pod = await ctx.registry.get(p.info, namespace, p.name!).catch((e) => {
      if (e instanceof ApiError && e.reason === 'NotFound') check(ctx, verb, p, undefined)
      throw e
    })
    check(ctx, verb, p, pod)
    // Port-forward addresses the pod's network namespace, not a container.
    const container = p.subresource === 'portforward' ? '' : chooseContainer(pod, query.get('container') ?? undefined)
    if ((p.subresource === 'exec' || p.subresource === 'attach') && (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')) {
      throw new ApiError('BadRequest', `cannot ${p.subresource === 'exec' ? 'exec into' : 'attach to'} a container in a completed pod; current phase is ${pod.status.phase}`)
    }
    const nodeName: string | undefined = pod.spec?.nodeName
    if (!nodeName) throw new ApiError('BadRequest', `pod ${p.name} does not have a host assigned: it is not scheduled yet`)
    const node = await getNode(ctx.registry, nodeName)
    const endpoint = kubeletEndpoint(nodeName, node)
    return { ...endpoint, namespace, pod: p.name!, container, agent: this.#kubeletAgent(nodeName) }
  }

  /** A fresh agent for one request to node `nodeName`'s kubelet: mutual TLS, its certificate checked for that node. */
  #kubeletAgent(nodeName: string): HttpsAgent {
    const client = this.#opts.kubeletClient
    if (!client) throw new ApiError('ServiceUnavailable', 'this apiserver has no kubelet client certificate configured, so it cannot reach node agents')
    return new HttpsAgent({
      ca: client.caPem, cert: client.certPem, key: client.keyPem, keepAlive: false, maxCachedSessions: 0,
      checkServerIdentity: (host, cert) => checkKubeletIdentity(nodeName, host, cert),
    })
  }
}

/** The pod subresources that are streams over an upgraded connection. */
export type StreamSubresource = 'exec' | 'attach' | 'portforward'
export const streamSubresources: readonly string[] = ['exec', 'attach', 'portforward'] satisfies StreamSubresource[]

/** handleResource's entry for pods/log and a pods/exec, attach or portforward request that is not an upgrade. */
export async function handleNodeSubresource(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  if (!p.name) throw new ApiError('NotFound', `pods/${p.subresource} needs a pod name`)
  if (streamSubresources.includes(p.subresource ?? '')) throw new ApiError('BadRequest', `Upgrade request required: pods/${p.subresource} needs a WebSocket upgrade`)
  if ((req.method ?? 'GET') !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on pods/log`)
  if (!ctx.nodeProxy) throw new ApiError('ServiceUnavailable', 'this apiserver does not proxy to node agents')
  await ctx.nodeProxy.serveLog(req, res, p, query, ctx)
}

/** The verb kube-apiserver authorizes a connect request (nodes/proxy) with. */
const connectVerbs: Record<string, Verb> = { GET: 'get', HEAD: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }

/**
 * handleResource's entry for nodes/{node}/proxy/{path}: `get` on nodes/proxy
 * (as Kubernetes authorizes it; cluster-admin has it, the default user roles
 * do not), then GET only: other methods are 405 with a Status.
 */
export async function handleNodesProxy(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  if (!p.name) throw new ApiError('NotFound', 'nodes/proxy needs a node name')
  const method = req.method ?? 'GET'
  checkAccess(ctx.user, { verb: connectVerbs[method] ?? method.toLowerCase(), resource: 'nodes', subresource: 'proxy', name: p.name }, ctx.view)
  if (method !== 'GET') throw new ApiError('MethodNotAllowed', `${method} is not supported on nodes/proxy: Skiff proxies GET only`)
  if (!ctx.nodeProxy) throw new ApiError('ServiceUnavailable', 'this apiserver does not proxy to node agents')
  await ctx.nodeProxy.serveNodesProxy(req, res, p.name, p.proxyPath ?? '/', query, ctx)
}

function check(ctx: HandlerContext, verb: Verb, p: ResourcePath, pod: KubeObject | undefined): void {
  const attrs = { verb, resource: 'pods', subresource: p.subresource, namespace: p.namespace, name: p.name, current: pod }
  checkAccess(ctx.user, attrs, ctx.view)
}

async function getNode(registry: Registry, name: string): Promise<KubeObject | undefined> {
  try {
    return await registry.get(lookupResource('', 'v1', 'nodes')!, undefined, name)
  } catch (e) {
    if (e instanceof ApiError && e.reason === 'NotFound') return undefined
    throw e
  }
}

/** A kubelet request with no answer in time fails (as unreachable) instead of hanging for the OS's TCP timeout. */
function answerDeadline(proxyReq: ClientRequest): void {
  const timer = setTimeout(() => proxyReq.destroy(new Error(`no answer within ${connectTimeoutMs / 1000}s`)), connectTimeoutMs)
  const clear = () => clearTimeout(timer)
  proxyReq.once('response', clear)
  proxyReq.once('upgrade', clear)
  proxyReq.once('close', clear)
}

function newProxy(log: Logger): ProxyServer {
  const proxy = createProxyServer({})
  // Client-socket errors are emitted here; without a listener they would throw.
  proxy.on('error', (err: Error) => log.debug({ err: err.message }, 'proxy socket error'))
  return proxy
}

function hostPort(t: KubeletEndpoint): string {
  return `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`
}

function unreachable(t: KubeletEndpoint, why: string): ApiError {
  return new ApiError('ServiceUnavailable', `the node agent for node ${t.node} is not reachable at ${hostPort(t)}: ${why}`)
}

/**
 * The kubelet's serving certificate must name the address dialled (Node's
 * own check) and belong to this node: CN system:node:<name>, so neither
 * another node's certificate nor any other certificate of the cluster CA
 * passes for it.
 */
export function checkKubeletIdentity(node: string, host: string, cert: PeerCertificate): Error | undefined {
  const err = checkServerIdentity(host, cert)
  if (err) return err
  const cn = cert.subject?.CN
  if (cn !== `system:node:${node}`) return new Error(`its certificate is for ${JSON.stringify(cn)}, not system:node:${node}`)
  return undefined
}

const tlsErrorCodes = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'ERR_SSL_WRONG_VERSION_NUMBER',
])

/** A failed connection to a kubelet: a certificate the apiserver does not trust gets its own message. Pure. */
export function kubeletTransportError(t: KubeletEndpoint, err: Error & { code?: string }): ApiError {
  const identity = /is for ".*", not system:node:/.test(err.message)
  if (identity || (err.code && tlsErrorCodes.has(err.code))) {
    return new ApiError(
      'ServiceUnavailable',
      `the node agent for node ${t.node} at ${hostPort(t)} is not trusted: ${err.message}. Its kubelet server must use the serving certificate the cluster CA issued to system:node:${t.node} for its InternalIP; restart the agent so it requests one`,
    )
  }
  return unreachable(t, err.message)
}

/** The kubelet's non-2xx answer as the error kubectl should see. */
export function kubeletError(t: KubeletEndpoint, code: number, body: string): ApiError {
  if (code === 401 || code === 403) {
    return new ApiError('ServiceUnavailable', `the node agent for node ${t.node} refused the apiserver's kubelet client certificate (HTTP ${code}): the agent must trust this cluster's CA; re-join it if it belongs to another cluster`)
  }
  if (code >= 300 && code < 400) {
    return new ApiError('ServiceUnavailable', `the node agent for node ${t.node} answered with a redirect (HTTP ${code}), which the apiserver does not follow`)
  }
  let status: { kind?: string; message?: string; reason?: string } | undefined
  try {
    status = JSON.parse(body)
  } catch {
    /* plain text */
  }
  const message = status?.kind === 'Status' && status.message ? status.message : body.trim() || `HTTP ${code}`
  const byCode = (Object.keys(errorCodes) as Reason[]).find((r) => errorCodes[r].http === code)
  const reason = status?.reason && status.reason in errorCodes ? (status.reason as Reason) : (byCode ?? 'InternalError')
  return new ApiError(reason, message)
}

function readBounded(r: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    r.on('data', (c: Buffer) => {
      if (size < maxErrorBody) chunks.push(c)
      size += c.length
    })
    r.on('end', () => resolve(Buffer.concat(chunks).toString('utf8').slice(0, maxErrorBody)))
    r.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

/** Any error as the ApiError to answer with (same mapping as the request path). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  if (e instanceof StoreError && e.code === 'unavailable') return new ApiError('ServiceUnavailable', `storage unavailable: ${e.message}; retry shortly`)
  return new ApiError('InternalError', `internal error: ${(e as Error).message}`)
}

/** Answer an upgrade request that will not be upgraded: a Status, then close. */
export function writeUpgradeError(socket: Duplex, e: ApiError): void {
  if (socket.destroyed || !socket.writable) return
  const body = JSON.stringify(e.toStatus())
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-cache, private\r\nConnection: close\r\n\r\n${body}`,
  )
}

// ---- pure parts: which container, which endpoint, which kubelet path ----

/**
 * The container a log/exec request means: the one named (an app, init or
 * ephemeral container of the pod), or the only container. Throws 400 like
 * kube-apiserver when the name is missing and there is a choice, or unknown.
 */
export function chooseContainer(pod: KubeObject, requested: string | undefined): string {
  const names = (key: string): string[] => ((pod.spec?.[key] ?? []) as Array<{ name: string }>).map((c) => c.name)
  const [app, init, ephemeral] = [names('containers'), names('initContainers'), names('ephemeralContainers')]
  const name = pod.metadata.name
  if (!requested) {
    if (app.length === 1) return app[0]!
    const inits = init.length ? ` or one of the init containers: [${init.join(' ')}]` : ''
    throw new ApiError('BadRequest', `a container name must be specified for pod ${name}, choose one of: [${app.join(' ')}]${inits}`)
  }
  if ([...app, ...init, ...ephemeral].includes(requested)) return requested
  throw new ApiError('BadRequest', `container ${requested} is not valid for pod ${name}`)
}

/** The kubelet endpoint the Node publishes (InternalIP and daemonEndpoints port). */
export function kubeletEndpoint(nodeName: string, node: KubeObject | undefined): KubeletEndpoint {
  if (!node) {
    throw new ApiError('NotFound', `nodes "${nodeName}" not found: the pod is bound to node ${nodeName}, which is not registered (its agent never started, or the Node was deleted)`, { name: nodeName, kind: 'nodes' })
  }
  const addresses = (node.status?.addresses ?? []) as Array<{ type?: string; address?: string }>
  const host = addresses.find((a) => a.type === 'InternalIP' && a.address)?.address
  const port = Number(node.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 0)
  if (!host) throw new ApiError('ServiceUnavailable', `the node agent for node ${nodeName} is not reachable: its Node has no InternalIP in status.addresses`)
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ApiError('ServiceUnavailable', `the node agent for node ${nodeName} is not reachable: its Node has no status.daemonEndpoints.kubeletEndpoint.Port`)
  }
  return { node: nodeName, host, port }
}

const logParams = ['follow', 'previous', 'timestamps', 'tailLines', 'sinceSeconds', 'sinceTime', 'limitBytes']
const streamParams = ['stdin', 'stdout', 'stderr', 'tty']

function containerPath(prefix: string, t: { namespace: string; pod: string; container: string }): string {
  return `/${prefix}/${[t.namespace, t.pod, t.container].map(encodeURIComponent).join('/')}`
}

/** `/containerLogs/{ns}/{pod}/{container}?...`, passing only the log parameters. Pure. */
export function kubeletLogPath(t: { namespace: string; pod: string; container: string }, query: URLSearchParams): string {
  const q = new URLSearchParams()
  for (const k of logParams) {
    const v = query.get(k)
    if (v !== null) q.set(k, v)
  }
  const s = q.toString()
  return containerPath('containerLogs', t) + (s ? `?${s}` : '')
}

/**
 * The kubelet's path for a stream, passing only its parameters. Pure.
 *   exec:        /exec/{ns}/{pod}/{container}?command=..&stdin=..
 *   attach:      /attach/{ns}/{pod}/{container}?stdin=..
 *   portforward: /portForward/{ns}/{pod}?port=..  (pods/portforward's `ports`, as kube-apiserver passes them on)
 */
export function kubeletStreamPath(sub: StreamSubresource, t: { namespace: string; pod: string; container: string }, query: URLSearchParams): string {
  const q = new URLSearchParams()
  if (sub === 'portforward') {
    for (const v of query.getAll('ports').flatMap((x) => x.split(','))) q.append('port', v.trim())
    const s = q.toString()
    return `/portForward/${[t.namespace, t.pod].map(encodeURIComponent).join('/')}${s ? `?${s}` : ''}`
  }
  if (sub === 'exec') for (const c of query.getAll('command')) q.append('command', c)
  for (const k of streamParams) {
    const v = query.get(k)
    if (v !== null) q.set(k, v)
  }
  return `${containerPath(sub, t)}?${q.toString()}`
}
