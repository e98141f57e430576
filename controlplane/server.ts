// `skiff server`: the control plane process. Today it runs the apiserver on
// the Redis store; the scheduler and controllers join it (leader-elected).
// Everything it needs on disk lives in its state dir:
//   pki/ca.crt, pki/ca.key            cluster CA (created on first start)
//   pki/apiserver.crt, .key           serving certificate, re-issued at start
//   pki/apiserver-kubelet-client.crt, .key
//                                     the apiserver's client certificate towards
//                                     node agents' kubelet servers (pods/log,
//                                     pods/exec), CN skiff:apiserver-kubelet-client,
//                                     re-issued at start
//   pki/sa.key                        signs ServiceAccount tokens (created on first
//                                     start, copied to joining servers)
//   encryption.key                    AES-256 key for Secrets at rest (0600)
//   tokens.csv                        static bearer tokens (token,user,uid,"groups");
//                                     joined nodes' credentials live in the store
//   revision-hwm                      the store's revision high-water mark

import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { APISERVER_KUBELET_CLIENT_CN, loadOrCreateCA, issueClientCert, issueServingCert, type ClusterCA } from '../certs/ca.ts'
import { RedisStore, storeRedisOptions, type StoreRedisConfig } from './store/redis-store.ts'
import { ApiServer } from './apiserver/server.ts'
import { loadOrCreateServiceAccountKey, saKeyPath } from './apiserver/serviceaccounts/key.ts'
import type { ServerJoinBundle } from './apiserver/join.ts'
import { KubernetesService, kubernetesServiceIP } from './apiserver/kubernetes-service.ts'
import { defaultAllocConfig } from './apiserver/service-alloc.ts'
import { IdentityLease, isIPv4Endpoint } from './apiserver/identity.ts'
import { TokenAuthenticator, formatTokenLine, groups, parseTokenLine, type TokenLine } from './apiserver/authn.ts'
import { ApiClient } from './client/client.ts'
import { ControllerManager } from './controllers/manager.ts'
import type { ControllerConfig } from './controllers/types.ts'
import { EndpointSliceController } from './controllers/endpointslice.ts'
import { EndpointSliceMirroringController } from './controllers/endpointslice-mirroring.ts'
import { NodeIpamController } from './controllers/node-ipam.ts'
import { LoadBalancerController } from './controllers/loadbalancer.ts'
import { NodeLifecycleController } from './controllers/node-lifecycle.ts'
import { ReplicaSetController } from './controllers/replicaset.ts'
import { DeploymentController } from './controllers/deployment.ts'
import { DaemonSetController } from './controllers/daemonset.ts'
import { StatefulSetController } from './controllers/statefulset.ts'
import { IngressCertsController } from './controllers/ingress-certs.ts'
import { RoutingEventsController } from './controllers/routing-events.ts'
import { BootstrapTokenCleaner } from './controllers/token-cleaner.ts'
import { ClusterRoleAggregationController } from './controllers/clusterrole-aggregation.ts'
import { ServiceAccountsController } from './controllers/serviceaccounts.ts'
import { DisruptionController } from './controllers/disruption.ts'
import { TaintEvictionController } from './controllers/taint-eviction.ts'
import { PodGCController } from './controllers/pod-gc.ts'
import { JobController } from './controllers/job.ts'
import { CronJobController } from './controllers/cronjob.ts'
import { TTLAfterFinishedController } from './controllers/ttl-after-finished.ts'
import { PersistentVolumeController } from './controllers/persistentvolume.ts'
import { HorizontalPodAutoscalerController } from './controllers/hpa.ts'
import { Scheduler, type SchedulerOptions } from './scheduler/scheduler.ts'
import type { Logger } from '../lib/log.ts'

/** The identity the in-process scheduler and controllers use against the apiserver. */
export const controllerManagerUser = 'system:kube-controller-manager'

export interface ServerConfig {
  stateDir: string
  /** One Redis (host, port, password) or, with `sentinel`, the primary of a Sentinel group; see controlplane/store/README.md. */
  redis: StoreRedisConfig
  host?: string
  port?: number
  /** Extra names and addresses for the serving certificate. */
  sans?: string[]
  logger: Logger
  gcSweepIntervalMs?: number
  /** Controller settings, or false for an apiserver alone (most API tests). */
  controllers?: Partial<ControllerConfig> | false
  /** metrics.k8s.io scrape period (default 15 s). */
  metricsResolutionMs?: number
  /** Lists and watches' initial state from the apiserver's watch cache (default true; kube-apiserver's --watch-cache). */
  watchCache?: boolean
  scheduler?: SchedulerOptions
  /** Events kept in the store's stream for watches to resume from (default 100000). */
  streamMaxLen?: number
  /** Join the control plane of a running server (skiff server --join URL --token T) before starting. */
  join?: { server: string; token: string }
  /** The URL agents reach this server at (published in its identity Lease); default the listening URL. */
  advertiseURL?: string
}

export interface RunningServer {
  apiserver: ApiServer
  store: RedisStore
  url: string
  caPem: string
  stop(): Promise<void>
}

export function newToken(): string {
  return randomBytes(24).toString('base64url')
}

/** The tokens file, created with one admin token when missing. */
export function ensureTokens(stateDir: string): string {
  const path = join(stateDir, 'tokens.csv')
  if (!existsSync(path)) writeFileSync(path, '', { mode: 0o600 })
  for (const user of ['admin', controllerManagerUser]) {
    const text = readFileSync(path, 'utf8')
    if (!text.split('\n').some((l) => parseTokenLine(l)?.user === user)) {
      writeFileSync(path, text + formatTokenLine({ token: newToken(), user, uid: user, groups: [groups.admin] }) + '\n', { mode: 0o600 })
    }
  }
  return path
}

/** The token of one identity from the tokens file. */
export function tokenOf(stateDir: string, user: string): string {
  const line = readFileSync(join(stateDir, 'tokens.csv'), 'utf8').split('\n').map(parseTokenLine).find((l) => l?.user === user)
  if (!line) throw new Error(`no token for ${user} in ${join(stateDir, 'tokens.csv')}`)
  return line.token
}

export function addToken(stateDir: string, line: TokenLine): void {
  const path = ensureTokens(stateDir)
  writeFileSync(path, readFileSync(path, 'utf8') + formatTokenLine(line) + '\n', { mode: 0o600 })
}

/** The admin token from the tokens file (for kubeconfig and the CLI). */
export function adminToken(stateDir: string): string {
  return tokenOf(stateDir, 'admin')
}

function encryptionKey(stateDir: string): Buffer {
  const path = join(stateDir, 'encryption.key')
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')
  if (key.length !== 32) throw new Error(`${path} must hold 32 bytes of base64; remove it only if the store is empty`)
  return key
}

/**
 * `--join`: take the cluster CA, tokens and encryption key from a running
 * server (once: a state dir that already has a CA must hold that cluster's).
 */
async function joinControlPlane(stateDir: string, joinWith: { server: string; token: string }): Promise<void> {
  const caPath = join(stateDir, 'pki', 'ca.crt')
  const { caHashOf } = await import('../certs/ca.ts')
  const { parseJoinToken } = await import('./api/bootstrap-token.ts')
  const pin = parseJoinToken(joinWith.token).caHash
  if (existsSync(caPath)) {
    if (caHashOf(readFileSync(caPath, 'utf8')) !== pin) {
      throw new Error(`${stateDir} already holds the CA of another cluster than the one the --join token pins; use an empty --state-dir for this server`)
    }
    return
  }
  const { fetchServerBundle } = await import('../node/join.ts')
  const b = await fetchServerBundle(joinWith)
  const key = Buffer.from(b.encryptionKey, 'base64')
  if (key.length !== 32) throw new Error(`${joinWith.server} handed out an encryption key of ${key.length} bytes, not 32`)
  writeFileSync(join(stateDir, 'tokens.csv'), b.tokensCsv, { mode: 0o600 })
  writeFileSync(join(stateDir, 'encryption.key'), b.encryptionKey + '\n', { mode: 0o600 })
  writeFileSync(join(stateDir, 'pki', 'ca.key'), b.caKeyPem, { mode: 0o600 })
  // Tokens one server issues must verify on every other: one key for all.
  if (b.serviceAccountKeyPem) writeFileSync(saKeyPath(stateDir), b.serviceAccountKeyPem, { mode: 0o600 })
  // The certificate last: its presence says the join is complete.
  writeFileSync(caPath, b.caCertPem, { mode: 0o644 })
}

/**
 * The store's addresses (a Redis; or under Sentinel the primary, the
 * replicas and the sentinels), published in the identity Lease so that
 * agents keep pods from reaching them (node/store-guard.ts). Loopback is left
 * out: pods never reach a host's loopback.
 */
async function storeEndpoints(redis: ServerConfig['redis']): Promise<string[]> {
  const eps: { host: string; port: number }[] = []
  if (redis.sentinel) {
    const { sentinelTopology } = await import('./store/preflight.ts')
    const topo = await sentinelTopology(redis.sentinel)
    eps.push(topo.primary, ...topo.replicas, topo.sentinel, ...topo.sentinels, ...redis.sentinel.sentinels)
  } else eps.push({ host: redis.host ?? '127.0.0.1', port: redis.port ?? 6379 })
  const out = new Set<string>()
  for (const e of eps) if (!e.host.startsWith('127.') && isIPv4Endpoint(`${e.host}:${e.port}`)) out.add(`${e.host}:${e.port}`)
  return [...out].sort()
}

/** What a server hands a joining server (read from its state dir at the moment of the join). */
function serverBundle(stateDir: string, ca: ClusterCA): ServerJoinBundle {
  return {
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    tokensCsv: readFileSync(join(stateDir, 'tokens.csv'), 'utf8'),
    encryptionKey: readFileSync(join(stateDir, 'encryption.key'), 'utf8').trim(),
    serviceAccountKeyPem: readFileSync(saKeyPath(stateDir), 'utf8'),
  }
}

export async function startServer(cfg: ServerConfig): Promise<RunningServer> {
  mkdirSync(join(cfg.stateDir, 'pki'), { recursive: true, mode: 0o700 })
  if (cfg.join) await joinControlPlane(cfg.stateDir, cfg.join)
  const ca = await loadOrCreateCA(join(cfg.stateDir, 'pki'))
  const serviceAccountKey = loadOrCreateServiceAccountKey(cfg.stateDir)
  const host = cfg.host ?? '127.0.0.1'
  // In-cluster clients reach this server as https://kubernetes.default.svc (the default/kubernetes Service).
  const inCluster = [kubernetesServiceIP(defaultAllocConfig.serviceCIDR), 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']
  const names = [...new Set(['localhost', '127.0.0.1', host, ...inCluster, ...(cfg.sans ?? [])])]
  const serving = issueServingCert(ca, {
    commonName: 'skiff-apiserver',
    dnsNames: names.filter((n) => !/^[\d.]+$/.test(n) && !n.includes(':')),
    ipAddresses: names.filter((n) => /^[\d.]+$/.test(n) || n.includes(':')),
    days: 365,
  })
  writeFileSync(join(cfg.stateDir, 'pki', 'apiserver.crt'), serving.certPem)
  writeFileSync(join(cfg.stateDir, 'pki', 'apiserver.key'), serving.keyPem, { mode: 0o600 })
  // What the apiserver shows kubelet servers; they accept this CN from this CA and nothing else.
  const kubeletClient = issueClientCert(ca, { commonName: APISERVER_KUBELET_CLIENT_CN, days: 365 })
  writeFileSync(join(cfg.stateDir, 'pki', 'apiserver-kubelet-client.crt'), kubeletClient.certPem)
  writeFileSync(join(cfg.stateDir, 'pki', 'apiserver-kubelet-client.key'), kubeletClient.keyPem, { mode: 0o600 })
  const store = new RedisStore({
    ...storeRedisOptions(cfg.redis),
    stateDir: cfg.stateDir,
    encryptionKey: encryptionKey(cfg.stateDir),
    logger: cfg.logger.child({ component: 'store' }),
    streamMaxLen: cfg.streamMaxLen,
  })
  await store.start()
  const apiserver = new ApiServer({
    store,
    logger: cfg.logger,
    tls: serving,
    tokens: TokenAuthenticator.fromFile(ensureTokens(cfg.stateDir)),
    host,
    port: cfg.port ?? 6443,
    gcSweepIntervalMs: cfg.gcSweepIntervalMs,
    ca,
    kubeletClient,
    serviceAccountKey,
    serverBundle: () => serverBundle(cfg.stateDir, ca),
    metricsResolutionMs: cfg.metricsResolutionMs,
    watchCache: cfg.watchCache,
  })
  store.registerMetrics(apiserver.metrics)
  try {
    await apiserver.start()
  } catch (e) {
    await store.stop()
    throw e
  }
  const selfURL = cfg.advertiseURL ?? apiserver.url
  const kubernetesService = new KubernetesService({
    registry: apiserver.registry, logger: cfg.logger.child({ component: 'kubernetes-service' }), serviceCIDR: apiserver.registry.alloc.serviceCIDR, self: selfURL,
  })
  const identity = new IdentityLease({
    registry: apiserver.registry, url: selfURL, logger: cfg.logger.child({ component: 'apiserver-identity' }),
    storeEndpoints: () => storeEndpoints(cfg.redis),
    afterRenew: (leaving) => kubernetesService.reconcile(leaving),
  })
  await identity.start()
  const manager = cfg.controllers === false ? undefined : controllerManager(cfg, apiserver, ca, host)
  await manager?.manager.start()
  let stopped = false
  return {
    apiserver,
    store,
    url: apiserver.url,
    caPem: ca.certPem,
    async stop() {
      if (stopped) return
      stopped = true
      // Release the leader Lease while the apiserver still answers.
      await manager?.manager.stop()
      manager?.client.close()
      // Agents stop picking this server once its identity Lease is gone.
      await identity.stop()
      await apiserver.stop()
      await store.stop()
    },
  }
}

/** The scheduler and controllers, run in this process under a leader Lease, talking to our own apiserver. */
function controllerManager(cfg: ServerConfig, apiserver: ApiServer, ca: ClusterCA, host: string) {
  const caPem = ca.certPem
  const selfURL = /^(0\.0\.0\.0|::)$/.test(host) ? `https://127.0.0.1:${new URL(apiserver.url).port}` : apiserver.url
  const client = new ApiClient({ server: selfURL, caPem, token: tokenOf(cfg.stateDir, controllerManagerUser) })
  const manager = new ControllerManager({
    client,
    logger: cfg.logger,
    metrics: apiserver.metrics,
    config: cfg.controllers || {},
    controllers: [
      new Scheduler(cfg.scheduler ?? {}),
      new ReplicaSetController(),
      new DeploymentController(),
      new DaemonSetController(),
      new StatefulSetController(),
      new EndpointSliceController(),
      new EndpointSliceMirroringController(),
      new NodeIpamController(),
      new LoadBalancerController(),
      new NodeLifecycleController(),
      new IngressCertsController({ ca }),
      new BootstrapTokenCleaner(),
      new RoutingEventsController(),
      new ClusterRoleAggregationController(),
      new ServiceAccountsController(),
      new DisruptionController(),
      new TaintEvictionController(),
      new PodGCController(),
      new JobController(),
      new CronJobController(),
      new TTLAfterFinishedController(),
      new PersistentVolumeController(),
      new HorizontalPodAutoscalerController(),
    ],
  })
  return { manager, client }
}
