// Fault: the disk under Redis fills up under load (issue 11; README.md here).
//
// A real redis-server (harness/redis.ts, AOF fsync always) whose data dir is
// on a 48 MiB tmpfs mounted for this test, and a real apiserver (startServer,
// controllers off) guarding that dir with a 4 MiB reserve (the
// --redis-data-dir / --redis-disk-reserve settings). A ConfigMap create every
// 50 ms and a read every 50 ms (GET, and a LIST every fourth tick), open
// loop, while the test fills the tmpfs with a file until ENOSPC (in 256 KiB
// steps, as a runaway log would), holds it full, then removes the file.
// Pass criteria:
//  - from the moment the disk is full until the file is removed, writes
//    answer 503 with SKIFF_ERR_STORE_NO_SPACE and nothing else; no write
//    fails any other way during the whole run;
//  - Redis never exits; every read answers 200 throughout;
//  - after the file is removed, writes succeed again by themselves (bound
//    15 s; the time is reported);
//  - every acknowledged write is on disk: Redis is killed with SIGKILL and
//    started again from the same AOF, and every acknowledged ConfigMap reads
//    back with its value; no refused write was stored;
//  - skiff_store_disk_refused_writes_total counts at least the refusals the
//    client saw.
// And at store level: the epoch script (the one script besides writes that
// may write) writes nothing on a full disk.

import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, open, rm, rmdir, unlink } from 'node:fs/promises'
import { statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClient, ApiClientError } from '../../controlplane/client/client.ts'
import { adminToken, ensureTokens, startServer } from '../../controlplane/server.ts'
import { RedisStore } from '../../controlplane/store/redis-store.ts'
import { createLogger, silentLogger } from '../../lib/log.ts'
import { eventually } from '../../lib/net.ts'
import { startRedis, withRedis } from '../harness/redis.ts'

const run = promisify(execFile)
const cms = lookupResource('', 'v1', 'configmaps')!
const Mi = 2 ** 20
const tickMs = 50
const reserveBytes = 4 * Mi
const chunkBytes = 256 * 1024
const chunkPauseMs = 5
const warmupMs = 2_000
const holdFullMs = 3_000
const afterResumeMs = 2_000
const resumeBoundMs = 15_000
/** Bounds on the load itself, whatever happens. */
const maxTicks = 2_000
const noSpace = /SKIFF_ERR_STORE_NO_SPACE: .* not written: the disk under Redis is nearly full \(.* has .* free, below the 4 MiB reserve\).*writes resume by themselves/

interface Write {
  name: string
  value: string
  sentAt: number
  answeredAt?: number
  status?: number
  message?: string
}

t.test('disk full under Redis: writes 503, reads go on, writes resume when space returns', async (t) => {
  // One cleanup list, run last-in first-out: Redis stops before its tmpfs is unmounted.
  const cleanups: (() => unknown)[] = []
  t.teardown(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c()
      } catch (err) {
        console.error(`disk-full cleanup: ${(err as Error).message}`)
      }
    }
  })
  const mnt = await mkdtemp(join(tmpdir(), 'skiff-diskfull-'))
  cleanups.push(() => rmdir(mnt))
  await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt])
  cleanups.push(() => unmount(mnt))
  const dog = unmountWhenGone(mnt)
  cleanups.push(() => dog.kill())
  const redisDir = join(mnt, 'redis')
  await mkdir(redisDir)
  const redis = await startRedis({ dir: redisDir })
  cleanups.push(() => redis.stop())
  const redisPid = redis.pid

  const stateDir = await mkdtemp(join(tmpdir(), 'skiff-fault-'))
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }))
  ensureTokens(stateDir)
  const logger = process.env.SKIFF_TEST_LOG ? createLogger({ level: process.env.SKIFF_TEST_LOG, destination: 2 }) : silentLogger()
  const server = await startServer({
    stateDir,
    redis: { host: redis.host, port: redis.port, password: redis.password, dataDirs: [redisDir], diskReserveBytes: reserveBytes },
    port: 0,
    logger,
    controllers: false,
  })
  cleanups.push(() => server.stop())
  const client = new ApiClient({ server: server.url, caPem: server.caPem, token: adminToken(stateDir), timeoutMs: 15_000 })
  cleanups.push(() => client.close())
  await client.create(cms, 'default', configMap('probe', 'probe'))

  // Open-loop load: a create and a read every tick.
  const writes: Write[] = []
  const reads = { sent: 0, failed: [] as string[] }
  const inflight = new Set<Promise<void>>()
  const track = (p: Promise<void>) => {
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }
  let tick = 0
  const timer = setInterval(() => {
    if (tick >= maxTicks) return clearInterval(timer)
    const w: Write = { name: `w-${tick}`, value: `v-${tick}-${Math.random().toString(36).slice(2)}`, sentAt: performance.now() }
    writes.push(w)
    track(
      client.create(cms, 'default', configMap(w.name, w.value)).then(
        () => void Object.assign(w, { status: 201, answeredAt: performance.now() }),
        (err) => void Object.assign(w, { status: err instanceof ApiClientError ? err.status : 0, message: (err as Error).message, answeredAt: performance.now() }),
      ),
    )
    const read = tick % 4 === 3 ? client.list(cms, 'default') : client.get(cms, 'default', 'probe')
    reads.sent++
    track(read.then(() => {}, (err) => void reads.failed.push(`${tick % 4 === 3 ? 'LIST' : 'GET'}: ${(err as Error).message.slice(0, 160)}`)))
    tick++
  }, tickMs)
  cleanups.push(() => clearInterval(timer))

  await sleep(warmupMs)

  // Fill the tmpfs the way a runaway log does, until ENOSPC.
  const filler = join(mnt, 'filler')
  const fillStart = performance.now()
  let crossedAt = Infinity
  const fh = await open(filler, 'w')
  const chunk = Buffer.alloc(chunkBytes, 0x61)
  for (;;) {
    try {
      const { bytesWritten } = await fh.write(chunk)
      if (bytesWritten < chunk.length) continue // the last bytes; the next write gets ENOSPC
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
      break
    }
    if (crossedAt === Infinity && freeBytes(redisDir) < reserveBytes) crossedAt = performance.now()
    await sleep(chunkPauseMs)
  }
  await fh.close()
  const fullAt = performance.now()
  t.comment(`tmpfs filled in ${Math.round(fullAt - fillStart)} ms (below the reserve ${Math.round(fullAt - crossedAt)} ms before ENOSPC); ${freeBytes(redisDir)} bytes free`)

  await sleep(holdFullMs)
  await unlink(filler)
  const freedAt = performance.now()
  const firstAfter = () => writes.find((w) => w.sentAt >= freedAt && w.status === 201)
  await eventually(() => firstAfter() || performance.now() - freedAt > resumeBoundMs, { timeout: resumeBoundMs + 5_000, what: 'a write after space returned' })
  const resumed = firstAfter()
  t.ok(resumed, `a write sent after the file was removed succeeds within ${resumeBoundMs / 1000} s, nothing restarted`)
  if (resumed) t.comment(`writes resumed: first write sent after the removal acknowledged ${Math.round(resumed.answeredAt! - freedAt)} ms after it`)
  await sleep(afterResumeMs)
  clearInterval(timer)
  await Promise.all([...inflight])

  // While full: 503 with the message, only that.
  const duringFull = writes.filter((w) => w.sentAt >= fullAt && w.sentAt < freedAt)
  const wrong = duringFull.filter((w) => !(w.status === 503 && noSpace.test(w.message ?? '')) && !(w.status === 201 && w.answeredAt! >= freedAt))
  t.ok(duringFull.length >= 20, `${duringFull.length} writes were sent while the disk was full`)
  t.same(wrong.map((w) => `${w.name}: ${w.status} ${w.message}`), [], 'every write sent while the disk was full answered 503 SKIFF_ERR_STORE_NO_SPACE (or 201 once space was back)')
  const refused = writes.filter((w) => w.status === 503)
  const acked = writes.filter((w) => w.status === 201)
  const otherFailures = writes.filter((w) => w.status !== 201 && !(w.status === 503 && noSpace.test(w.message ?? '')))
  t.same(otherFailures.map((w) => `${w.name}: ${w.status} ${w.message}`), [], 'no write failed any other way')
  t.comment(`example refusal: ${refused[0]?.message}`)

  t.same(reads.failed, [], `all ${reads.sent} reads (GET and LIST) answered 200`)
  t.ok(alive(redisPid) && redis.pid === redisPid, 'Redis never exited')

  const metrics = String((await client.request('GET', '/metrics')).body)
  const counted = Number(/^skiff_store_disk_refused_writes_total\{dir="[^"]*"\} (\d+)/m.exec(metrics)?.[1] ?? 0)
  t.ok(counted >= refused.length, `skiff_store_disk_refused_writes_total ${counted} >= ${refused.length} refusals seen by the client`)
  t.match(metrics, new RegExp(`skiff_store_disk_free_bytes\\{dir="${redisDir}"\\} \\d+`), 'free bytes of the guarded dir')

  // Durability: a power cut for Redis, then every acknowledged write from its AOF.
  await redis.kill9()
  await redis.restart()
  const after = await eventually(() => client.list(cms, 'default'), { timeout: 30_000, what: 'the apiserver to list again after the Redis restart' })
  const stored = new Map(after.items.map((o) => [o.metadata.name!, o.data?.v]))
  const lost = acked.filter((w) => stored.get(w.name) !== w.value).map((w) => w.name)
  t.same(lost, [], `all ${acked.length} acknowledged writes are read back with their values after kill -9 and a restart from the AOF`)
  const kept = refused.filter((w) => stored.has(w.name)).map((w) => w.name)
  t.same(kept, [], 'no refused write was stored')
  t.comment(
    `writes: ${writes.length} sent, ${acked.length} acknowledged, ${refused.length} refused (503), ${lost.length} lost; ` +
      `reads: ${reads.sent} sent, ${reads.failed.length} failed`,
  )
})

// The one script besides writes that may write: it starts an epoch (a fresh
// Redis) or jumps the counter. With a reserve larger than any disk, the
// guarded dir always counts as full.
t.test('on a full disk the epoch script writes nothing: a fresh Redis is refused, an initialised one starts and serves reads', async (t) => {
  const redis = await withRedis(t)
  const stateDir = await mkdtemp(join(tmpdir(), 'skiff-diskfull-store-'))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const store = (diskGuard?: { dirs: string[]; reserveBytes: number }) => {
    const s = new RedisStore({ redis: redis.options, stateDir, diskGuard, encryptedResources: [], logger: silentLogger() })
    t.teardown(() => s.stop())
    return s
  }
  const full = { dirs: [redis.dir], reserveBytes: 2 ** 50 }
  await t.rejects(store(full).start(), /SKIFF_ERR_STORE_NO_SPACE: the revision counter not written/, 'a fresh Redis needs an epoch written: start is refused')
  const conn = new Redis(redis.options)
  t.teardown(() => conn.disconnect())
  t.same(await conn.keys('*'), [], 'nothing was written')

  const ok = store()
  await ok.start()
  await ok.create('configmaps', 'default/a', configMap('a', 'kept'))
  await ok.stop()
  const guarded = store(full)
  await guarded.start()
  t.equal((await guarded.get('configmaps', 'default/a'))?.data?.v, 'kept', 'reads go on')
  t.equal((await guarded.list('configmaps')).items.length, 1)
  await t.rejects(guarded.create('configmaps', 'default/b', configMap('b', 'x')), /SKIFF_ERR_STORE_NO_SPACE: configmaps default\/b not written/)
  t.equal(await guarded.get('configmaps', 'default/b'), undefined, 'the refused write left nothing')
})

function configMap(name: string, value: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: value } } as KubeObject
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir)
  return s.bavail * s.bsize
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function unmount(dir: string): Promise<void> {
  try {
    await run('umount', [dir])
  } catch {
    await run('umount', ['-l', dir]) // something still holds it: detach now, freed when released
  }
}

/** If this process dies without its teardown (a tap timeout), a shell outside it unmounts the tmpfs. */
function unmountWhenGone(dir: string) {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; umount -l "$1"; rmdir "$1"`
  const dog = spawn('/bin/sh', ['-c', script, 'unmount-watchdog', dir], { stdio: 'ignore', detached: true })
  dog.unref()
  return { kill: () => dog.kill() }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
