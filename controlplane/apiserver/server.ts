// The apiserver: HTTPS, bearer tokens (the static file and the credentials
// issued at join), deny-by-default authorization, the Kubernetes REST surface
// kubectl v1.32 uses (kubectl-surface.md), /healthz, /readyz, /metrics, and
// Skiff's node identity endpoints: /cacerts (open), /skiff/v1/join (bootstrap
// token) and /skiff/v1/kubelet-certificate (nodes). One module with start()/stop().

import type { KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Duplex } from 'node:stream'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { StoreError, type Store } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, Histogram, createRegistry, latencyBuckets, type Registry as MetricsRegistry } from '../../lib/metrics.ts'
import type { CertAndKey, ClusterCA } from '../../certs/ca.ts'
import { AuthzGraph } from './authz-graph.ts'
import { authorizeNonResource, forbiddenPath } from './authz.ts'
import { reconcileBootstrapPolicy } from './rbac/reconcile.ts'
import { ServiceAccountTokens } from './serviceaccounts/tokens.ts'
import { impersonate } from './impersonation.ts'
import { RoutingStatus } from './routing-status.ts'
import type { PrintContext } from '../api/printers/types.ts'
import { certificateUser, type TokenAuthenticator, type UserInfo } from './authn.ts'
import { CredentialAuthenticator } from './credentials.ts'
import {
  aggregatedContentType,
  aggregatedDiscovery,
  apiGroupList,
  apiResourceList,
  apiVersions,
  serverVersion,
  wantsAggregated,
} from './discovery.ts'
import type { FieldValidation } from './field-validation.ts'
import { GarbageCollector } from './gc.ts'
import { handleResource } from './handlers.ts'
import { WatchCache } from './watch-cache.ts'
import { sendError, sendJson } from './http-util.ts'
import { joinPath, kubeletCertificatePath, NodeJoin, serverJoinPath, type ServerJoinBundle } from './join.ts'
import { NodeProxy, streamSubresources, toApiError, writeUpgradeError } from './node-proxy.ts'
import { OPENAPI_V2_PROTOBUF, openapiV2Protobuf, serveOpenAPI } from './openapi.ts'
import { parsePath } from './paths.ts'
import { boolParam } from './query.ts'
import { Registry } from './registry.ts'
import { MetricsScraper } from './metrics/scraper.ts'
import { Dashboard } from '../dashboard/server.ts'
import { ensureNamespaceDefaults } from './serviceaccount-admission.ts'
import type { AllocConfig } from './service-alloc.ts'


/**
 * The two ingress classes every cluster starts with. internal: served on the
 * internal pool, certificates from the cluster CA, clients from private
 * ranges only. external: served on the external pool, certificates by ACME
 * once `skiff.dev/acme-directory` is set (skiff up --acme-directory).
 */
export const defaultIngressClasses: KubeObject[] = [
  {
    metadata: {
      name: 'internal',
      annotations: { 'skiff.dev/issuer': 'ca', 'skiff.dev/allow-source-ranges': '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8' },
    },
    spec: { controller: 'skiff.dev/ingress' },
  },
  { metadata: { name: 'external', annotations: { 'skiff.dev/issuer': 'acme' } }, spec: { controller: 'skiff.dev/ingress' } },
]

export interface ApiServerOptions {
  store: Store
  logger: Logger
  tls: { certPem: string; keyPem: string }
  tokens: TokenAuthenticator
  host?: string
  port?: number
  alloc?: AllocConfig
  /** Non-watch requests that take longer get 504 (Kubernetes' default is 60 s). */
  requestTimeoutMs?: number
  gcSweepIntervalMs?: number
  /** The cluster CA: served at /cacerts, signs kubelet serving certificates, verifies kubelets. */
  ca?: ClusterCA
  /** The apiserver's client certificate towards kubelets (CN skiff:apiserver-kubelet-client); without it log/exec answer 503. */
  kubeletClient?: CertAndKey
  /** Signs and verifies ServiceAccount tokens (pki/sa.key, the same on every server); without it TokenRequests answer 503. */
  serviceAccountKey?: KeyObject
  /** The cluster secrets a joining server receives (skiff server --join); without it server joins answer 503. */
  serverBundle?: () => ServerJoinBundle
  /** fieldValidation of requests without the parameter; Warn (Kubernetes' default) unless given. */
  defaultFieldValidation?: FieldValidation
  /** How often kubelets' resource metrics are scraped for metrics.k8s.io (metrics-server's --metric-resolution, 15 s). */
  metricsResolutionMs?: number
  /** How often the dashboard's traffic map scrapes the ingress nodes while someone looks at it; default 5 s. */
  dashboardTrafficPeriodMs?: number
  /** Lists and watches' initial state from memory (watch-cache.ts); default true, as kube-apiserver's --watch-cache. */
  watchCache?: boolean
}

const bootstrapNamespaces = ['default', 'kube-system', 'kube-public', 'kube-node-lease']

export class ApiServer {
  readonly registry: Registry
  readonly metrics: MetricsRegistry
  #opts: ApiServerOptions
  #log: Logger
  #server?: Server
  #graph: AuthzGraph
  #routing: RoutingStatus
  #print: PrintContext
  #gc: GarbageCollector
  #nodeProxy: NodeProxy
  #credentials: CredentialAuthenticator
  #join: NodeJoin
  #saTokens?: ServiceAccountTokens
  #scraper: MetricsScraper
  #dashboard: Dashboard
  #requests: Counter<string>
  #latency: Histogram<string>
  #watchers: Gauge<string>
  #ready = false
  #lists?: WatchCache

  constructor(opts: ApiServerOptions) {
    this.#opts = opts
    this.#log = opts.logger.child({ component: 'apiserver' })
    this.registry = new Registry({ store: opts.store, logger: this.#log, alloc: opts.alloc })
    if (opts.watchCache !== false) this.#lists = new WatchCache({ store: opts.store, logger: this.#log })
    this.#graph = new AuthzGraph({ store: opts.store, logger: this.#log })
    this.#routing = new RoutingStatus({ store: opts.store, logger: this.#log })
    this.#print = { applied: (kind, obj) => this.#routing.applied(kind, obj) }
    this.#gc = new GarbageCollector({ registry: this.registry, logger: this.#log, sweepIntervalMs: opts.gcSweepIntervalMs })
    const kubeletClient = opts.kubeletClient && opts.ca ? { ...opts.kubeletClient, caPem: opts.ca.certPem } : undefined
    this.#nodeProxy = new NodeProxy({ registry: this.registry, logger: this.#log, kubeletClient })
    this.#scraper = new MetricsScraper({ registry: this.registry, logger: this.#log, kubeletClient, periodMs: opts.metricsResolutionMs })
    this.#dashboard = new Dashboard({ registry: this.registry, logger: this.#log, view: this.#graph, kubeletClient, trafficPeriodMs: opts.dashboardTrafficPeriodMs, self: () => ({ url: this.url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:'), caPem: opts.ca?.certPem ?? opts.tls.certPem }) })
    this.#credentials = new CredentialAuthenticator({ store: opts.store, logger: this.#log })
    this.#join = new NodeJoin({ registry: this.registry, credentials: this.#credentials, ca: opts.ca, logger: this.#log, serverBundle: opts.serverBundle })
    this.metrics = createRegistry({ defaultMetrics: true })
    if (opts.serviceAccountKey) this.#saTokens = new ServiceAccountTokens({ registry: this.registry, key: opts.serviceAccountKey, logger: this.#log, metrics: this.metrics })
    this.#requests = new Counter({ name: 'apiserver_request_total', help: 'API requests by verb, resource and HTTP code', labelNames: ['verb', 'resource', 'code'], registers: [this.metrics] })
    this.#latency = new Histogram({ name: 'apiserver_request_duration_seconds', help: 'API request latency (watches excluded)', labelNames: ['verb', 'resource'], buckets: latencyBuckets, registers: [this.metrics] })
    this.#watchers = new Gauge({ name: 'apiserver_registered_watchers', help: 'Open watch streams by resource', labelNames: ['resource'], registers: [this.metrics] })
  }

  get url(): string {
    const addr = this.#server?.address() as AddressInfo | undefined
    if (!addr) throw new Error('apiserver is not listening')
    return `https://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`
  }

  async start(): Promise<void> {
    await this.#bootstrap()
    await reconcileBootstrapPolicy(this.registry, this.#log)
    await this.#graph.start()
    await this.#routing.start()
    await this.#credentials.start()
    this.#gc.start()
    this.#scraper.start()
    // Client certificates are asked for, never required: verified against the cluster CA, they identify users (skiff user add).
    const clientCA = this.#opts.ca ? { requestCert: true, rejectUnauthorized: false, ca: this.#opts.ca.certPem } : {}
    const server = createServer({ key: this.#opts.tls.keyPem, cert: this.#opts.tls.certPem, minVersion: 'TLSv1.2', ...clientCA }, (req, res) => void this.#handle(req, res))
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket, head))
    server.requestTimeout = 60_000
    server.headersTimeout = 20_000
    server.keepAliveTimeout = 30_000
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#opts.port ?? 0, this.#opts.host ?? '127.0.0.1', () => resolve())
    })
    this.#ready = true
    this.#log.info({ url: this.url }, 'apiserver listening')
  }

  async stop(): Promise<void> {
    this.#ready = false
    this.#graph.stop()
    this.#routing.stop()
    this.#credentials.stop()
    this.#lists?.stop()
    await this.#gc.stop()
    await this.#scraper.stop()
    await this.#dashboard.stop()
    const server = this.#server
    if (!server) return
    this.#nodeProxy.close()
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  /** Objects every cluster starts with; existing ones (maybe changed by users) are left as they are. */
  async #bootstrap(): Promise<void> {
    const nsInfo = lookupResource('', 'v1', 'namespaces')!
    const classInfo = lookupResource('networking.k8s.io', 'v1', 'ingressclasses')!
    const objects: Array<[typeof nsInfo, KubeObject]> = [
      ...bootstrapNamespaces.map((name): [typeof nsInfo, KubeObject] => [nsInfo, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }]),
      ...defaultIngressClasses.map((obj): [typeof nsInfo, KubeObject] => [classInfo, obj]),
    ]
    const defaults = (ns: string) => ensureNamespaceDefaults(this.registry, ns, this.#opts.ca?.certPem)
    this.registry.onNamespaceCreated = (ns) => void defaults(ns).catch((e) => this.#log.warn({ namespace: ns, err: (e as Error).message }, 'default ServiceAccount or kube-root-ca.crt not created; the next start retries'))
    for (const [info, obj] of objects) {
      try {
        await this.registry.create(info, undefined, obj)
      } catch (e) {
        if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e
      }
    }
    // Namespaces from before (or whose defaults a crash cut short) get them now.
    for (const ns of (await this.registry.list(nsInfo, undefined)).items) if (!ns.metadata.deletionTimestamp) await defaults(ns.metadata.name!)
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint()
    const url = new URL(req.url ?? '/', 'https://apiserver')
    let resource = ''
    let watch = false
    const verb = (req.method ?? 'GET').toUpperCase()
    const timer = setTimeout(() => {
      if (!watch && !res.headersSent) sendError(res, new ApiError('Timeout', `the request did not complete within ${this.#timeoutMs / 1000}s; retry, or look at the apiserver log`))
    }, this.#timeoutMs)
    try {
      if (this.#open(url.pathname, res) || this.#dashboard.serveStatic(url.pathname, req, res)) return
      // The one path a bootstrap token opens, and the only thing it authenticates.
      if (url.pathname === joinPath) return await this.#join.join(req, res)
      if (url.pathname === serverJoinPath) return await this.#join.serverJoin(req, res)
      const user = await this.#authenticate(req)
      if (!user) throw new ApiError('Unauthorized', 'Unauthorized: send a bearer token (skiff kubeconfig prints a working kubeconfig)')
      if (url.pathname === kubeletCertificatePath) return await this.#join.kubeletCertificate(req, res, user)
      watch = url.pathname === '/dashboard/api/watch' // long-running, as a watch
      if (await this.#dashboard.serveApi(url.pathname, req, res, user)) return
      const parsed = parsePath(url.pathname)
      if (parsed.type === 'resource') {
        resource = parsed.path.info.resource
        watch = parsed.path.legacyWatch || boolParam(url.searchParams, 'watch') || parsed.path.subresource === 'log' // long-running: kept out of the latency histogram
        await handleResource(req, res, parsed.path, url.searchParams, this.#context(user))
      } else if (!this.#authorizePath(user, verb, url.pathname) || !(await this.#discovery(req, res, url, parsed))) {
        throw new ApiError('NotFound', `the server could not find the requested resource: ${url.pathname}`)
      }
    } catch (e) {
      const err =
        e instanceof ApiError
          ? e
          : e instanceof StoreError && e.code === 'unavailable'
            ? new ApiError('ServiceUnavailable', `storage unavailable: ${e.message}; retry shortly`)
            : new ApiError('InternalError', `internal error: ${(e as Error).message}`)
      if (err.status >= 500 && err.status !== 503) this.#log.error({ err: (e as Error).message, stack: (e as Error).stack, path: url.pathname }, 'request failed')
      sendError(res, err)
    } finally {
      clearTimeout(timer)
      const code = String(res.statusCode)
      this.#requests.inc({ verb: watch ? 'WATCH' : verb, resource, code })
      if (!watch) this.#latency.observe({ verb, resource }, Number(process.hrtime.bigint() - started) / 1e9)
      this.#log.debug({ verb, path: url.pathname, code, resource }, 'request')
    }
  }

  /** Upgrade requests: pods/exec, attach and portforward (WebSocket, and kubectl's SPDY fallback) are proxied to the node agent. */
  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy())
    const url = new URL(req.url ?? '/', 'https://apiserver')
    try {
      const user = await this.#authenticate(req)
      if (!user) throw new ApiError('Unauthorized', 'Unauthorized: send a bearer token (skiff kubeconfig prints a working kubeconfig)')
      const parsed = parsePath(url.pathname)
      const sub = parsed.type === 'resource' ? parsed.path.subresource : undefined
      if (parsed.type === 'resource' && parsed.path.info.resource === 'pods' && streamSubresources.includes(sub ?? '') && parsed.path.name) {
        return await this.#nodeProxy.serveStream(req, socket, head, parsed.path, url.searchParams, this.#context(user))
      }
      throw new ApiError('BadRequest', `${url.pathname} cannot be upgraded; only pods/exec, pods/attach and pods/portforward take a WebSocket`)
    } catch (e) {
      const err = toApiError(e)
      if (err.status >= 500 && err.status !== 503) this.#log.error({ err: (e as Error).message, path: url.pathname }, 'upgrade failed')
      writeUpgradeError(socket, err)
    }
  }

  /**
   * A client certificate from the cluster CA first (as kube-apiserver's x509
   * authenticator precedes tokens), then the static token file, the
   * credentials issued at join (both in memory), and ServiceAccount tokens.
   */
  async #authenticate(req: IncomingMessage): Promise<UserInfo | undefined> {
    const header = req.headers.authorization
    const user = certificateUser(req.socket as TLSSocket) ?? this.#opts.tokens.authenticate(header) ?? this.#credentials.authenticate(header) ?? (await this.#saTokens?.authenticate(header))
    // kubectl --as: the request runs as another user once the caller may impersonate them.
    return user && impersonate(user, req.headers, this.#graph)
  }

  /** A request for a path that is no resource: RBAC nonResourceURLs (system:discovery, system:monitoring). */
  #authorizePath(user: UserInfo, method: string, path: string): true {
    const verb = method.toLowerCase()
    if (!authorizeNonResource(user, verb, path, this.#graph).allowed) throw forbiddenPath(user, verb, path)
    return true
  }

  get #timeoutMs(): number {
    return this.#opts.requestTimeoutMs ?? 60_000
  }

  #context(user: UserInfo) {
    return {
      registry: this.registry,
      view: this.#graph,
      user,
      watchers: (d: number, resource: string) => this.#watchers.inc({ resource }, d),
      nodeProxy: this.#nodeProxy,
      print: this.#print,
      defaultFieldValidation: this.#opts.defaultFieldValidation,
      serviceAccountTokens: this.#saTokens,
      metrics: this.#scraper.store,
      lists: this.#lists,
    }
  }

  /**
   * Endpoints open without a token: health and version (as kube-apiserver
   * allows anonymously), and the cluster CA (k3s' /cacerts), which a joining
   * agent checks against the hash in its token before it trusts it.
   */
  #open(path: string, res: ServerResponse): boolean {
    if (path === '/cacerts' && this.#opts.ca) {
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file', 'Cache-Control': 'no-cache, private' }).end(this.#opts.ca.certPem)
      return true
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      const ok = path !== '/readyz' || this.#ready
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok' : 'not ready')
      return true
    }
    if (path === '/version') {
      sendJson(res, 200, serverVersion)
      return true
    }
    return false
  }

  async #discovery(req: IncomingMessage, res: ServerResponse, url: URL, parsed: ReturnType<typeof parsePath>): Promise<boolean> {
    const path = url.pathname.replace(/\/+$/, '')
    if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(await this.metrics.metrics())
      return true
    }
    if (path === '/api' || path === '/apis') {
      if (wantsAggregated(req.headers.accept)) sendJson(res, 200, aggregatedDiscovery(path === '/api'), aggregatedContentType)
      else sendJson(res, 200, path === '/api' ? apiVersions(req.headers.host ?? '') : apiGroupList())
      return true
    }
    if (parsed.type === 'group' && parsed.version) {
      const gv = parsed.group ? `${parsed.group}/${parsed.version}` : parsed.version
      const list = apiResourceList(gv) as { resources: unknown[] }
      if (list.resources.length === 0) return false
      sendJson(res, 200, list)
      return true
    }
    if (path === '/openapi/v3' || path.startsWith('/openapi/v3/')) return serveOpenAPI(req, res, url)
    if (path === '/openapi/v2') {
      res.writeHead(200, { 'Content-Type': OPENAPI_V2_PROTOBUF }).end(openapiV2Protobuf())
      return true
    }
    return false
  }
}
