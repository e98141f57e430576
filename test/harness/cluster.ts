// A control plane for integration tests: a real redis-server (harness/redis)
// and the real apiserver in this process on a free port, TLS with a fresh
// cluster CA, plus helpers for tokens, the API client and the real kubectl
// (with a fresh --cache-dir, so discovery is never stale). Everything is
// removed in t.teardown, also when the test fails.

import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiClient } from '../../controlplane/client/client.ts'
import { addToken, adminToken, newToken, startServer, type RunningServer } from '../../controlplane/server.ts'
import { renderKubeconfig } from '../../cli/kubeconfig.ts'
import { silentLogger, createLogger } from '../../lib/log.ts'
import { withRedis, type RedisHandle } from './redis.ts'
import type { ControllerConfig } from '../../controlplane/controllers/types.ts'

export interface TestCluster {
  redis: RedisHandle
  server: RunningServer
  stateDir: string
  url: string
  caPem: string
  token: string
  client: ApiClient
  kubeconfig: string
  /** A token for a new identity (added to the token file; the server is restarted to load it). */
  clientFor(token: string): ApiClient
  kubectl(args: string[], opts?: { stdin?: string; allowFail?: boolean; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>
  restartServer(): Promise<void>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface ClusterOptions {
  streamMaxLen?: number
  /** Extra identities: token lines added before the server starts. */
  identities?: Array<{ user: string; groups: string[] }>
  gcSweepIntervalMs?: number
  /** Run the scheduler and controllers in the server (default: off, an apiserver alone). */
  controllers?: Partial<ControllerConfig> | false
  /** metrics.k8s.io scrape period of the server (default 15 s). */
  metricsResolutionMs?: number
}

export async function startTestCluster(t: Teardown, opts: ClusterOptions = {}): Promise<TestCluster & { tokens: Map<string, string> }> {
  const redis = await withRedis(t)
  const stateDir = await mkdtemp(join(tmpdir(), 'skiff-cp-'))
  const cacheDir = await mkdtemp(join(tmpdir(), 'skiff-kubectl-'))
  t.teardown(() => rm(cacheDir, { recursive: true, force: true }))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const tokens = new Map<string, string>()
  const { ensureTokens } = await import('../../controlplane/server.ts')
  ensureTokens(stateDir)
  for (const id of opts.identities ?? []) {
    const token = newToken()
    addToken(stateDir, { token, user: id.user, uid: id.user, groups: id.groups })
    tokens.set(id.user, token)
  }
  const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
  // A restart keeps the port: clients (agents included) find the server where it was.
  const boot = (port = 0) =>
    startServer({ stateDir, redis: { host: redis.host, port: redis.port, password: redis.password }, port, logger, streamMaxLen: opts.streamMaxLen, gcSweepIntervalMs: opts.gcSweepIntervalMs, controllers: opts.controllers ?? false, metricsResolutionMs: opts.metricsResolutionMs })
  let server = await boot()
  const token = adminToken(stateDir)
  const kubeconfig = join(stateDir, 'kubeconfig')
  const writeKubeconfig = () => writeFile(kubeconfig, renderKubeconfig({ server: server.url, caPem: server.caPem, token }), { mode: 0o600 })
  await writeKubeconfig()
  const clients: ApiClient[] = []
  const clientFor = (tok: string) => {
    const c = new ApiClient({ server: server.url, caPem: server.caPem, token: tok })
    clients.push(c)
    return c
  }
  const cluster = {
    redis,
    get server() {
      return server
    },
    stateDir,
    get url() {
      return server.url
    },
    caPem: server.caPem,
    token,
    tokens,
    client: clientFor(token),
    kubeconfig,
    clientFor,
    kubectl: (args: string[], o: { stdin?: string; allowFail?: boolean; timeoutMs?: number } = {}) => runKubectl(kubeconfig, cacheDir, args, o),
    async restartServer() {
      const port = Number(new URL(server.url).port)
      await server.stop()
      server = await boot(port)
      await writeKubeconfig()
    },
  }
  t.teardown(async () => {
    for (const c of clients) c.close()
    await server.stop()
  })
  return cluster as TestCluster & { tokens: Map<string, string> }
}

/** Run the real kubectl against the test cluster; fails the test on a non-zero exit unless allowFail. */
export async function runKubectl(
  kubeconfig: string,
  cacheDir: string,
  args: string[],
  o: { stdin?: string; allowFail?: boolean; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const full = ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args]
  return await new Promise((resolve, reject) => {
    const child = spawn('kubectl', full, { env: { ...process.env, HOME: cacheDir }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000)
    child.on('error', (e) => reject(new Error(`cannot run kubectl (is it installed? v1.32 is expected): ${e.message}`)))
    child.on('close', (code) => {
      clearTimeout(timer)
      const r = { code: code ?? -1, stdout, stderr }
      if (r.code !== 0 && !o.allowFail) reject(new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${stderr}${stdout}`))
      else resolve(r)
    })
    // A child that exits before reading its stdin (kubectl refused at once) makes the write fail with EPIPE: its exit code says what happened.
    child.stdin.on('error', () => undefined)
    child.stdin.end(o.stdin ?? '')
  })
}

