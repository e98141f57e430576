// A small Kubernetes API client over HTTPS with the cluster CA and a bearer
// token: what the CLI, the tests and (later) agents and controllers use.
// Errors come back as ApiClientError carrying the server's Status.

import { Agent, request } from 'node:https'
import type { IncomingMessage } from 'node:http'
import { groupVersion, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject, Status, WatchEvent } from '../api/types.ts'

export interface ClientConfig {
  server: string // https://127.0.0.1:6443
  /**
   * Every apiserver of the cluster (HA control plane), `server` included or
   * not. Requests go to one at a time; a connection failure moves to the next
   * (see ApiClient.request).
   */
  servers?: string[]
  caPem: string
  token: string
  /** Per-request timeout for non-watch calls. */
  timeoutMs?: number
}

export class ApiClientError extends Error {
  readonly status: number
  readonly body: Status | undefined
  constructor(status: number, body: Status | undefined, fallback: string) {
    super(body?.message ?? fallback)
    this.name = 'ApiClientError'
    this.status = status
    this.body = body
  }
  get reason(): string | undefined {
    return this.body?.reason
  }
}

export interface RequestOptions {
  body?: unknown
  rawBody?: Buffer | string
  contentType?: string
  accept?: string
  query?: Record<string, string | undefined>
}

export interface Response {
  status: number
  headers: IncomingMessage['headers']
  body: any
}

/** `/api/v1/namespaces/ns/pods[/name]` for a resource. */
export function resourcePath(info: ResourceInfo, namespace?: string, name?: string, sub?: string): string {
  const base = info.group ? `/apis/${groupVersion(info)}` : '/api/v1'
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  return `${base}${ns}/${info.resource}${name ? '/' + encodeURIComponent(name) : ''}${sub ? '/' + sub : ''}`
}

/** Errors of the transport, not answers: the server may be down or unreachable. */
const transportCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN'])
/** Failures before a request left this host: safe to send the request elsewhere, whatever its method. */
const notSentCodes = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

export function isTransportError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException
  return transportCodes.has(err?.code ?? '') || /socket hang up|timed out/.test(err?.message ?? '')
}

export class ApiClient {
  readonly config: ClientConfig
  #agent: Agent
  #servers: string[]
  #current = 0

  constructor(config: ClientConfig) {
    this.config = config
    this.#agent = new Agent({ ca: config.caPem, keepAlive: true, maxSockets: 256 })
    this.#servers = uniqueServers([config.server, ...(config.servers ?? [])])
  }

  close(): void {
    this.#agent.destroy()
  }

  /** The apiserver requests go to now. */
  get server(): string {
    return this.#servers[this.#current]!
  }

  /** Every apiserver this client may use, in order of preference. */
  get servers(): readonly string[] {
    return this.#servers
  }

  /** Replace the list (e.g. from the apiservers' identity Leases); the current server stays current if listed. */
  setServers(urls: readonly string[]): void {
    const list = uniqueServers(urls)
    if (list.length === 0) return
    const current = this.server
    this.#servers = list
    this.#current = Math.max(0, list.indexOf(current))
  }

  /** A transport failure on `server`: later requests go to the next one. */
  #failed(server: string): void {
    if (this.#servers.length > 1 && this.server === server) this.#current = (this.#current + 1) % this.#servers.length
  }

  #url(path: string, query?: Record<string, string | undefined>, server = this.server): URL {
    const url = new URL(path, server)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v)
    return url
  }

  /**
   * One request. With several servers, a transport failure moves on to the
   * next server; the request itself is sent again only where that cannot
   * apply it twice: reads, and any request whose connection was never made.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const server = this.server
      try {
        return await this.#requestOnce(server, method, path, opts)
      } catch (e) {
        if (!isTransportError(e) || this.#servers.length < 2) throw e
        this.#failed(server)
        const safe = method === 'GET' || method === 'HEAD' || notSentCodes.has((e as NodeJS.ErrnoException).code ?? '')
        if (!safe || attempt >= this.#servers.length) throw e
      }
    }
  }

  async #requestOnce(server: string, method: string, path: string, opts: RequestOptions): Promise<Response> {
    const url = this.#url(path, opts.query, server)
    const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
    return await new Promise<Response>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.#agent,
          timeout: this.config.timeoutMs ?? 30_000,
          headers: {
            authorization: `Bearer ${this.config.token}`,
            accept: opts.accept ?? 'application/json',
            ...(payload !== undefined ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let body: any = text
            if ((res.headers['content-type'] ?? '').includes('json')) {
              try {
                body = JSON.parse(text)
              } catch {
                /* keep text */
              }
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`request to ${url.pathname} timed out`)))
      req.on('error', reject)
      if (payload !== undefined) req.write(payload)
      req.end()
    })
  }

  /** Like request(), but a non-2xx answer throws ApiClientError. */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<any> {
    const res = await this.request(method, path, opts)
    if (res.status < 200 || res.status >= 300) {
      const status = typeof res.body === 'object' && res.body?.kind === 'Status' ? (res.body as Status) : undefined
      throw new ApiClientError(res.status, status, `${method} ${path}: HTTP ${res.status}`)
    }
    return res.body
  }

  get(info: ResourceInfo, ns: string | undefined, name: string): Promise<KubeObject> {
    return this.call('GET', resourcePath(info, ns, name))
  }

  list(info: ResourceInfo, ns?: string, query?: Record<string, string | undefined>): Promise<{ metadata: { resourceVersion: string }; items: KubeObject[] }> {
    return this.call('GET', resourcePath(info, ns), { query })
  }

  create(info: ResourceInfo, ns: string | undefined, obj: KubeObject): Promise<KubeObject> {
    return this.call('POST', resourcePath(info, ns), { body: obj })
  }

  update(info: ResourceInfo, obj: KubeObject, sub?: string): Promise<KubeObject> {
    return this.call('PUT', resourcePath(info, obj.metadata.namespace, obj.metadata.name, sub), { body: obj })
  }

  patch(info: ResourceInfo, ns: string | undefined, name: string, patch: unknown, type = 'application/strategic-merge-patch+json', sub?: string): Promise<KubeObject> {
    return this.call('PATCH', resourcePath(info, ns, name, sub), { body: patch, contentType: type })
  }

  delete(info: ResourceInfo, ns: string | undefined, name: string, opts: { propagationPolicy?: string } = {}): Promise<KubeObject> {
    return this.call('DELETE', resourcePath(info, ns, name), { body: { kind: 'DeleteOptions', apiVersion: 'v1', ...opts } })
  }

  /**
   * Stream watch events until stop() or the server ends the stream. onEnd
   * receives an error for transport failures; a 410 arrives as an ERROR event.
   */
  watch(path: string, query: Record<string, string | undefined>, onEvent: (ev: WatchEvent) => void, onEnd: (err?: Error) => void, accept?: string): { stop(): void } {
    return this.streamLines(path, { ...query, watch: 'true' }, (line) => {
      if (line.trim()) onEvent(JSON.parse(line) as WatchEvent)
    }, onEnd, accept ?? 'application/json', `watch ${path}`)
  }

  /**
   * GET a streamed body (a watch, a followed pods/log) and hand it over line by
   * line, without the newline, until stop() or the server ends it. onEnd
   * receives an ApiClientError for a non-2xx answer and the error of a
   * transport failure; a last line without a newline is delivered at the end.
   */
  streamLines(path: string, query: Record<string, string | undefined>, onLine: (line: string) => void, onEnd: (err?: Error) => void, accept = '*/*', what = `GET ${path}`): { stop(): void } {
    const server = this.server
    const url = this.#url(path, query, server)
    let ended = false
    const end = (err?: Error) => {
      if (!ended) {
        ended = true
        if (err && isTransportError(err)) this.#failed(server)
        onEnd(err)
      }
    }
    const req = request(url, { method: 'GET', agent: this.#agent, headers: { authorization: `Bearer ${this.config.token}`, accept } }, (res) => {
      if ((res.statusCode ?? 0) >= 300) {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString('utf8')))
        res.on('end', () => {
          let status: Status | undefined
          try {
            status = JSON.parse(text)
          } catch {
            /* not JSON */
          }
          end(new ApiClientError(res.statusCode ?? 0, status, `${what}: HTTP ${res.statusCode}${status?.message ? `: ${status.message}` : ''}`))
        })
        return
      }
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let i: number
        while (!ended && (i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i)
          buf = buf.slice(i + 1)
          onLine(line.endsWith('\r') ? line.slice(0, -1) : line)
        }
      })
      res.on('end', () => {
        if (buf && !ended) onLine(buf)
        end()
      })
      res.on('error', (e) => end(e))
    })
    req.on('error', (e) => end(ended ? undefined : e))
    req.end()
    return {
      stop() {
        ended = true
        req.destroy()
      },
    }
  }
}

function uniqueServers(urls: readonly string[]): string[] {
  const out: string[] = []
  for (const u of urls) if (u && !out.includes(u)) out.push(u)
  return out
}
