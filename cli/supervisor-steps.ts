// Steps of bringing a local cluster up that are not process management: the
// spec file, Redis's config and password (made once, kept across restarts),
// waiting for Redis and the apiserver, and the agents' credentials.

import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { eventually } from '../lib/net.ts'
import { adminToken, addToken, ensureTokens, newToken, tokenOf } from '../controlplane/server.ts'
import { parseTokenLine } from '../controlplane/apiserver/authn.ts'
import type { ClusterSpec, HostSpec } from './cluster-spec.ts'
import { names } from './cluster-spec.ts'
import { renderKubeconfig } from './kubeconfig.ts'

export const localImages = ['skiff/pause:local', 'skiff/echo:local', 'skiff/demo:local']

export const specPath = (stateDir: string) => join(stateDir, 'cluster.json')

export function readSpec(stateDir: string): ClusterSpec {
  const p = specPath(stateDir)
  if (!existsSync(p)) throw new Error(`SKIFF_ERR_UP_NO_SPEC: ${p} is missing; start the cluster with skiff up`)
  return JSON.parse(readFileSync(p, 'utf8')) as ClusterSpec
}

export function writeSpec(stateDir: string, spec: ClusterSpec): void {
  mkdirSync(stateDir, { recursive: true })
  writeFileSync(specPath(stateDir), JSON.stringify(spec, null, 2) + '\n')
}

/** redis.conf and the password, made on first start and reused ever after (so data and clients survive). */
export function ensureRedisConfig(stateDir: string, port: number): void {
  const dir = join(stateDir, 'redis')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  mkdirSync(join(stateDir, 'logs'), { recursive: true })
  const pwFile = join(dir, 'password')
  if (!existsSync(pwFile)) writeFileSync(pwFile, randomBytes(24).toString('base64url'), { mode: 0o600 })
  const password = readFileSync(pwFile, 'utf8').trim()
  const conf = [
    `port ${port}`, 'bind 127.0.0.1', 'protected-mode yes', `dir ${dir}`, `requirepass ${password}`,
    'appendonly yes', 'appendfsync always', 'save ""', 'daemonize no',
  ].join('\n')
  writeFileSync(join(dir, 'redis.conf'), conf + '\n', { mode: 0o600 })
}

export async function waitRedis(stateDir: string, port: number, timeoutMs = 30_000): Promise<void> {
  const password = readFileSync(join(stateDir, 'redis', 'password'), 'utf8').trim()
  await eventually(async () => {
    const r = new Redis({ port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {}) // not up yet: polled again
    try {
      await r.connect()
      return (await r.ping()) === 'PONG'
    } finally {
      r.disconnect()
    }
  }, { timeout: timeoutMs, what: `redis-server on port ${port} (see ${join(stateDir, 'logs', 'redis.log')})` })
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

/** Until the apiserver answers /readyz; then (re)writes the admin kubeconfig. */
export async function waitApiserver(stateDir: string, s: ClusterSpec, timeoutMs = 60_000): Promise<void> {
  const url = apiserverURL(s)
  await eventually(async () => {
    const ca = join(stateDir, 'pki', 'ca.crt')
    return existsSync(ca) && (await readyz(url, readFileSync(ca, 'utf8')))
  }, { timeout: timeoutMs, interval: 200, what: `the apiserver at ${url} (see ${join(stateDir, 'logs', 'server.log')})` })
  writeFileSync(join(stateDir, 'kubeconfig'), kubeconfigFor(stateDir, url), { mode: 0o600 })
}

export function kubeconfigFor(stateDir: string, url: string): string {
  return renderKubeconfig({ server: url, caPem: readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8'), token: adminToken(stateDir) })
}

const nodeUser = (name: string) => `system:node:${name}`
const ingressUser = (cls: string) => `skiff:ingress:${cls}`

/**
 * The agents' identities. Called before the server starts (the token file is
 * read at start); the function it returns, called once the apiserver answers,
 * writes each host's kubeconfigs and gives each agent's extra arguments.
 */
export function prepareAgents(stateDir: string, s: ClusterSpec): () => Promise<(h: HostSpec) => string[]> {
  const path = ensureTokens(stateDir)
  const have = new Set(readFileSync(path, 'utf8').split('\n').map((l) => parseTokenLine(l)?.user))
  for (const h of s.hosts) if (!have.has(nodeUser(h.name))) addToken(stateDir, { token: newToken(), user: nodeUser(h.name), uid: nodeUser(h.name), groups: ['system:nodes'] })
  for (const cls of new Set(s.hosts.map((h) => h.pool).filter((p) => !!p))) {
    if (!have.has(ingressUser(cls!))) addToken(stateDir, { token: newToken(), user: ingressUser(cls!), uid: ingressUser(cls!), groups: ['skiff:ingress-controllers'] })
  }
  return async () => {
    const caPem = readFileSync(join(stateDir, 'pki', 'ca.crt'), 'utf8')
    const server = apiserverURL(s)
    for (const h of s.hosts) {
      const dir = join(names.hostRoot(stateDir, h), 'agents', h.name)
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig({ server, caPem, token: tokenOf(stateDir, nodeUser(h.name)), name: h.name }), { mode: 0o600 })
      if (h.pool) writeFileSync(join(dir, 'ingress-kubeconfig'), renderKubeconfig({ server, caPem, token: tokenOf(stateDir, ingressUser(h.pool)), name: `ingress-${h.pool}` }), { mode: 0o600 })
    }
    // No extra arguments: each agent gets its kubelet serving certificate from the apiserver with its node identity.
    return () => []
  }
}
