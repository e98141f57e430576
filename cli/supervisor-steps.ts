// Steps of bringing a local cluster up that are not process management: the
// spec file, Redis's config and password (made once, kept across restarts),
// waiting for Redis and the apiserver, and the join token the hosts use.

import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { eventually } from '../lib/net.ts'
import { adminToken } from '../controlplane/server.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { createToken } from './token.ts'
import { controlPlaneMachines, type ClusterSpec, type ControlPlaneMachine, type HostSpec } from './cluster-spec.ts'
import { readKubeconfig, renderKubeconfig } from './kubeconfig.ts'
import { haRedisDir } from './supervisor-plan.ts'

export const localImages = ['skiff/pause:local', 'skiff/echo:local', 'skiff/demo:local']

export const specPath = (stateDir: string) => join(stateDir, 'cluster.json')

export function readSpecIfAny(stateDir: string): ClusterSpec | undefined {
  const p = specPath(stateDir)
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as ClusterSpec) : undefined
}

export function readSpec(stateDir: string): ClusterSpec {
  const spec = readSpecIfAny(stateDir)
  if (!spec) throw new Error(`SKIFF_ERR_UP_NO_SPEC: ${specPath(stateDir)} is missing; start the cluster with skiff up`)
  return spec
}

export function writeSpec(stateDir: string, spec: ClusterSpec): void {
  mkdirSync(stateDir, { recursive: true })
  writeFileSync(specPath(stateDir), JSON.stringify(spec, null, 2) + '\n')
}

/** redis.conf and the password, made on first start and reused ever after (so data and clients survive). */
/** The cluster's Redis password (<state-dir>/redis/password, 0600, made once), with the redis and logs folders. */
function ensureRedisPassword(stateDir: string): string {
  mkdirSync(join(stateDir, 'redis'), { recursive: true, mode: 0o700 })
  mkdirSync(join(stateDir, 'logs'), { recursive: true })
  const pwFile = join(stateDir, 'redis', 'password')
  if (!existsSync(pwFile)) writeFileSync(pwFile, randomBytes(24).toString('base64url'), { mode: 0o600 })
  return readFileSync(pwFile, 'utf8').trim()
}

export function ensureRedisConfig(stateDir: string, port: number): void {
  const dir = join(stateDir, 'redis')
  const password = ensureRedisPassword(stateDir)
  const conf = [
    `port ${port}`, 'bind 127.0.0.1', 'protected-mode yes', `dir ${dir}`, `requirepass ${password}`,
    'appendonly yes', 'appendfsync always', 'save ""', 'daemonize no',
    // Redis rewrites its command line; keep the config path in it, so stop and down can tell it is ours.
    'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
  ].join('\n')
  writeFileSync(join(dir, 'redis.conf'), conf + '\n', { mode: 0o600 })
}

/**
 * Config files of machine i's Redis (the primary at first, or a replica of
 * machine 0's) and sentinel, written only when missing: after a failover the
 * sentinels rewrite them (who replicates whom), and that must survive a
 * restart. Every process has the password; Redis binds only the machine's
 * LAN address (and loopback on machine 0).
 */
export function ensureHaRedisConfig(stateDir: string, s: ClusterSpec, m: ControlPlaneMachine): { redisConf: string; sentinelConf: string } {
  const password = ensureRedisPassword(stateDir)
  const dir = haRedisDir(stateDir, m.index)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const primary = controlPlaneMachines(s)[0]!
  const redisConf = join(dir, 'redis.conf')
  if (!existsSync(redisConf)) {
    writeFileSync(redisConf, [
      `port ${s.redisPort}`, `bind ${m.ip}${m.index === 0 ? ' 127.0.0.1' : ''}`, 'protected-mode yes', `dir ${dir}`,
      `requirepass ${password}`, `masterauth ${password}`, `replica-announce-ip ${m.ip}`,
      'appendonly yes', 'appendfsync always', 'save ""', 'daemonize no',
      'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
      ...(m.index === 0 ? [] : [`replicaof ${primary.ip} ${s.redisPort}`]),
    ].join('\n') + '\n', { mode: 0o600 })
  }
  const sentinelConf = join(dir, 'sentinel.conf')
  const name = s.ha!.masterName
  if (!existsSync(sentinelConf)) {
    writeFileSync(sentinelConf, [
      `port ${s.ha!.sentinelPort}`, `bind ${m.ip}`, 'daemonize no', `dir ${dir}`,
      'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
      `requirepass ${password}`, `sentinel sentinel-pass ${password}`, `sentinel announce-ip ${m.ip}`,
      `sentinel monitor ${name} ${primary.ip} ${s.redisPort} 2`, `sentinel auth-pass ${name} ${password}`,
      `sentinel down-after-milliseconds ${name} 3000`, `sentinel failover-timeout ${name} 10000`, `sentinel parallel-syncs ${name} 1`,
    ].join('\n') + '\n', { mode: 0o600 })
  }
  return { redisConf, sentinelConf }
}

/** A join token made once through the API and kept in <state-dir>/<file> (0600); returns the file's path. */
async function ensureTokenFile(stateDir: string, file: string, o: Parameters<typeof createToken>[1]): Promise<string> {
  const path = join(stateDir, file)
  if (existsSync(path)) return path
  const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
  try {
    writeFileSync(path, (await createToken(client, o)) + '\n', { mode: 0o600 })
    return path
  } finally {
    client.close()
  }
}

/** The file holding the server token the second server joins with (<state-dir>/server-token, made once). */
export function ensureServerTokenFile(stateDir: string): Promise<string> {
  return ensureTokenFile(stateDir, 'server-token', { ttl: '0', description: 'skiff up --ha: the second server', server: true })
}

export async function waitRedis(stateDir: string, port: number, timeoutMs = 30_000, host = '127.0.0.1', what = 'redis-server'): Promise<void> {
  const password = readFileSync(join(stateDir, 'redis', 'password'), 'utf8').trim()
  await eventually(async () => {
    const r = new Redis({ host, port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {}) // not up yet: polled again
    try {
      await r.connect()
      return (await r.ping()) === 'PONG'
    } finally {
      r.disconnect()
    }
  }, { timeout: timeoutMs, what: `${what} on ${host}:${port} (see ${join(stateDir, 'logs')})` })
}

export async function readyz(url: string, caPem: string): Promise<boolean> {
  return await new Promise((res) => {
    const req = request(new URL('/readyz', url), { ca: caPem, timeout: 2000 }, (r) => {
      r.resume()
      res(r.statusCode === 200)
    })
    req.on('error', () => res(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

export const apiserverURL = (s: ClusterSpec) => `https://${s.lan.hostIP}:${s.apiPort}`
/** Every server's URL: one, or two with --ha (the second on the first host). */
export const apiserverURLs = (s: ClusterSpec): string[] => [apiserverURL(s), ...(s.ha ? [`https://${s.hosts[0]!.ip}:${s.apiPort}`] : [])]

/** Until the apiserver answers /readyz; then (re)writes the admin kubeconfig. */
export async function waitApiserver(stateDir: string, s: ClusterSpec, timeoutMs = 60_000, url = apiserverURL(s)): Promise<void> {
  await eventually(async () => {
    const ca = join(stateDir, 'pki', 'ca.crt')
    return existsSync(ca) && (await readyz(url, readFileSync(ca, 'utf8')))
  }, { timeout: timeoutMs, interval: 200, what: `the apiserver at ${url} (see ${join(stateDir, 'logs')})` })
  writeFileSync(join(stateDir, 'kubeconfig'), kubeconfigFor(stateDir, apiserverURL(s), apiserverURLs(s)), { mode: 0o600 })
}

export function kubeconfigFor(stateDir: string, url: string, servers?: string[]): string {
  return renderKubeconfig({ server: url, caPem: readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8'), token: adminToken(stateDir), servers })
}

/**
 * The join token of this cluster's own hosts (<state-dir>/node-token, 0600,
 * never expiring, allowed both ingress pools), made once through the API as
 * `skiff token create` would, and usable to join real machines too (like
 * k3s's node-token). Each agent joins with it once and keeps its own
 * credential; a resumed cluster's agents never need it again.
 */
export async function ensureNodeToken(stateDir: string): Promise<string> {
  const path = await ensureTokenFile(stateDir, 'node-token', { ttl: '0', description: 'skiff up: the hosts of this cluster', ingressPools: 'external,internal' })
  return readFileSync(path, 'utf8').trim()
}

/** What a host's agent is told: the server, the token, its addresses and the pod network (as on a real machine). */
export function agentJoinArgs(s: ClusterSpec, h: HostSpec, token: string): string[] {
  return [
    '--server', apiserverURLs(s).join(','), '--token', token, '--node-ip', h.ip,
    ...(h.externalIP ? ['--node-external-ip', h.externalIP] : []),
    '--pod-network', s.podNetwork,
  ]
}
