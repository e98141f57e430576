// A real redis-server per test: loopback only, a random password, AOF with
// fsync on every write, in its own temp dir. Tests that need Redis start one
// with `withRedis(t)`, which also registers its cleanup, so a failing test
// leaves no process or directory behind.
//
// There is deliberately no "skip if redis-server is missing": a store test
// that silently does not run is worse than one that fails.

import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants as fsConstants } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import type { RedisOptions } from 'ioredis'

export interface StartRedisOptions {
  /** Reuse this directory instead of a fresh temp dir (e.g. a copied AOF dir). */
  dir?: string
  /** Extra `--name value` arguments, e.g. ['--appendfsync', 'everysec']. */
  args?: string[]
  /** How long to wait for PING to answer. */
  readyTimeoutMs?: number
  /** Use this password instead of a random one (e.g. one shared by a primary and its replicas). */
  password?: string
  /**
   * Start from this config file (it may be empty); the arguments still apply.
   * Without one, CONFIG REWRITE fails, which Sentinel sends on reconfiguring.
   */
  configFile?: string
}

export interface RedisHandle {
  host: string
  port: number
  password: string
  dir: string
  /** Process id of the running server (changes on restart). */
  pid: number
  /** Connection options for ioredis. */
  options: RedisOptions
  /** SIGKILL: no shutdown, no final fsync; like a power cut for Redis. */
  kill9(): Promise<void>
  /** Start again on the same port and dir; resolves once PING answers. */
  restart(): Promise<void>
  /** SIGSTOP: the process stays alive (its sockets open) but answers nothing. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
  /** Kill, wait for exit and remove the dir. Safe to call twice. */
  stop(): Promise<void>
}

const HOST = '127.0.0.1'
const live = new Set<ChildProcess>()

// If the test process dies without teardown, do not leave servers behind.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export function findRedisServer(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/sbin', '/usr/local/bin'])
  for (const dir of dirs) {
    if (!dir) continue
    const candidate = join(dir, 'redis-server')
    try {
      accessSync(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      // not here; keep looking
    }
  }
  throw new Error('redis-server not found: run scripts/setup.sh or apt-get install redis-server')
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle> {
  const bin = findRedisServer()
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'skiff-redis-')))
  const password = opts.password ?? randomBytes(18).toString('base64url')
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000
  let port = 0
  let child: ChildProcess | undefined
  // A port found free can be taken before redis binds it; try a few.
  for (let attempt = 0; !child; attempt++) {
    port = await freePort()
    try {
      child = await launch({ bin, dir, ownDir: !opts.dir, port, password, args: opts.args ?? [], configFile: opts.configFile, readyTimeoutMs })
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt >= 5) {
        if (!opts.dir) await rm(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  let current: ChildProcess = child
  let stopped = false
  const handle: RedisHandle = {
    host: HOST,
    port,
    password,
    dir,
    pid: current.pid!,
    options: { host: HOST, port, password },
    async kill9() {
      await killAndWait(current)
    },
    async restart() {
      await killAndWait(current)
      current = await launch({ bin, dir, ownDir: !opts.dir, port, password, args: opts.args ?? [], configFile: opts.configFile, readyTimeoutMs })
      handle.pid = current.pid!
    },
    pause() {
      if (current.exitCode === null && current.signalCode === null) current.kill('SIGSTOP')
    },
    resume() {
      if (current.exitCode === null && current.signalCode === null) current.kill('SIGCONT')
    },
    async stop() {
      if (stopped) return
      stopped = true
      await killAndWait(current)
      await rm(dir, { recursive: true, force: true })
    },
  }
  return handle
}

/** Start Redis for one tap test and stop it when the test ends, pass or fail. */
export async function withRedis(
  t: { teardown(fn: () => unknown): void },
  opts?: StartRedisOptions,
): Promise<RedisHandle> {
  const handle = await startRedis(opts)
  t.teardown(() => handle.stop())
  return handle
}

export class AddressInUse extends Error {}

interface LaunchOptions {
  bin: string
  dir: string
  /** The harness made the dir, so it may remove it. */
  ownDir: boolean
  port: number
  password: string
  args: string[]
  configFile?: string
  readyTimeoutMs: number
}

async function launch(o: LaunchOptions): Promise<ChildProcess> {
  const args = [
    ...(o.configFile ? [o.configFile] : []),
    '--port', String(o.port),
    '--bind', HOST,
    '--protected-mode', 'yes',
    '--requirepass', o.password,
    '--dir', o.dir,
    '--appendonly', 'yes',
    '--appendfsync', 'always',
    '--save', '',
    '--daemonize', 'no',
    '--logfile', '',
    ...o.args,
  ]
  return spawnRedisProcess({ bin: o.bin, args, port: o.port, password: o.password, readyTimeoutMs: o.readyTimeoutMs, removeDir: o.ownDir ? o.dir : undefined })
}

export interface SpawnRedisOptions {
  bin: string
  /** The whole command line after the binary (a sentinel: [conf, '--sentinel']). */
  args: string[]
  port: number
  password: string
  readyTimeoutMs: number
  /** Removed by the watchdog if this test process dies without its teardown. */
  removeDir?: string
}

/**
 * Spawn a redis-server (or sentinel) and wait until AUTH + PING answers on
 * 127.0.0.1:port. Throws AddressInUse when the port was taken meanwhile.
 * A watchdog kills it if this process dies without cleaning up.
 */
export async function spawnRedisProcess(o: SpawnRedisOptions): Promise<ChildProcess> {
  const child = spawn(o.bin, o.args, { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let output = ''
  const collect = (chunk: Buffer) => {
    // Keep only the tail: enough to explain a failed start.
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  exited.then(() => live.delete(child))
  let spawnError: Error | undefined
  child.once('error', (err) => {
    spawnError = err
  })
  const deadline = Date.now() + o.readyTimeoutMs
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`redis-server could not be started: ${spawnError.message}`)
    if (child.exitCode !== null || child.signalCode !== null) break
    if (await pingOnce(o.port, o.password)) {
      watchdog(child, o.removeDir)
      return child
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20))])
  }
  await killAndWait(child)
  if (/address already in use/i.test(output)) throw new AddressInUse(`port ${o.port} in use`)
  throw new Error(`redis-server on port ${o.port} did not become ready:\n${output}`)
}

/**
 * A test process killed by a signal (a tap timeout sends SIGTERM, then
 * SIGKILL) runs no exit handler, and redis-server would outlive it. A tiny
 * shell loop, outside this process, kills the server once this process is
 * gone, and ends by itself when the server exits first.
 */
function watchdog(child: ChildProcess, removeDir: string | undefined): void {
  const me = process.pid
  const it = child.pid!
  const cleanup = `kill -9 ${it} 2>/dev/null; ${removeDir ? 'sleep 1; rm -rf "$1"' : ':'}`
  const script = `while kill -0 ${me} 2>/dev/null && kill -0 ${it} 2>/dev/null; do sleep 1; done; kill -0 ${me} 2>/dev/null || { ${cleanup}; }`
  const dog = spawn('/bin/sh', ['-c', script, 'watchdog', removeDir ?? ''], { stdio: 'ignore' })
  dog.unref()
  child.once('exit', () => dog.kill())
}

/** One AUTH + PING over a raw socket; true only for +PONG (not -LOADING). */
function pingOnce(port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: HOST, port })
    let buf = ''
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(1000, () => done(false))
    sock.on('error', () => done(false))
    sock.on('connect', () => {
      sock.write(resp(['AUTH', password]) + resp(['PING']))
    })
    sock.on('data', (d) => {
      buf += d.toString()
      const lines = buf.split('\r\n')
      if (lines.length < 3) return
      done(lines[0] === '+OK' && lines[1] === '+PONG')
    })
  })
}

function resp(parts: string[]): string {
  return `*${parts.length}\r\n` + parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')
}

export async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}
