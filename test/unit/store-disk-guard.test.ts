// The store's disk guard (controlplane/store/disk-guard.ts) on a fake disk
// and clock: when writes are refused, what they are told, what is logged
// and counted, and when a reading is taken again.

import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createRegistry } from '../../lib/metrics.ts'
import { DiskFullError, DiskGuard, diskMetrics, lowDisk, parseByteSize, startDiskGuard } from '../../controlplane/store/disk-guard.ts'
import { StoreError } from '../../controlplane/store/types.ts'

const Mi = 2 ** 20

function capture() {
  const lines: { level: number; msg: string }[] = []
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } }))
  return { logger, lines }
}

/** A guard over dirs whose free space the test sets; time moves only when told. */
function fakeGuard(free: Record<string, number | Error>, opts: { reserveBytes?: number; maxAgeMs?: number } = {}) {
  const { logger, lines } = capture()
  let now = 0
  let reads = 0
  const metrics = diskMetrics(() => guard.read())
  const guard = new DiskGuard({
    dirs: Object.keys(free), reserveBytes: opts.reserveBytes ?? 64 * Mi, maxAgeMs: opts.maxAgeMs ?? 10, logger, metrics,
    freeBytes: (dir) => {
      reads++
      const v = free[dir]!
      if (v instanceof Error) throw v
      return v
    },
    now: () => now,
  })
  return { guard, free, lines, metrics, reads: () => reads, advance: (ms: number) => (now += ms) }
}

t.test('parseByteSize', async (t) => {
  const cases: [string, number][] = [['4096', 4096], ['64Mi', 64 * Mi], ['64MiB', 64 * Mi], ['1Gi', 2 ** 30], ['500M', 500e6], ['2k', 2000], ['0', 0], ['1.5Ki', 1536]]
  for (const [text, want] of cases) t.equal(parseByteSize(text), want, text)
  for (const bad of ['', 'lots', '-1', '64 Mo', '1e3', 'Mi']) t.throws(() => parseByteSize(bad), /not a size/, JSON.stringify(bad))
})

t.test('lowDisk: the dir with the least free space, only when below the reserve', async (t) => {
  const cases: { name: string; readings: { dir: string; freeBytes: number }[]; want?: string }[] = [
    { name: 'all above', readings: [{ dir: '/a', freeBytes: 100 }, { dir: '/b', freeBytes: 80 }] },
    { name: 'exactly the reserve is enough', readings: [{ dir: '/a', freeBytes: 50 }] },
    { name: 'one below', readings: [{ dir: '/a', freeBytes: 100 }, { dir: '/b', freeBytes: 49 }], want: '/b' },
    { name: 'two below: the lower', readings: [{ dir: '/a', freeBytes: 10 }, { dir: '/b', freeBytes: 0 }], want: '/b' },
    { name: 'nothing read', readings: [] },
  ]
  for (const c of cases) t.equal(lowDisk(c.readings, 50)?.dir, c.want, c.name)
})

t.test('writes are refused below the reserve, with what and how much, and resume when space is back', async (t) => {
  const g = fakeGuard({ '/redis': 100 * Mi, '/redis-1': 100 * Mi })
  t.doesNotThrow(() => g.guard.check('configmaps default/a'))
  g.free['/redis-1'] = 3 * Mi
  g.advance(11)
  const err = t.throws(() => g.guard.check('configmaps default/b')) as DiskFullError
  t.ok(err instanceof DiskFullError && err instanceof StoreError, 'a StoreError (the apiserver answers 503)')
  t.equal(err.code, 'unavailable')
  t.match(err.message, /^SKIFF_ERR_STORE_NO_SPACE: configmaps default\/b not written: .*\/redis-1 has 3 MiB free, below the 64 MiB reserve.*reads go on.*Free space there: writes resume by themselves/)
  t.throws(() => g.guard.check('configmaps default/c'), DiskFullError, 'still refused')
  g.free['/redis-1'] = 70 * Mi
  g.advance(11)
  t.doesNotThrow(() => g.guard.check('configmaps default/d'), 'resumes on the next write after space is back')

  const logged = g.lines.filter((l) => /disk/.test(l.msg)).map((l) => [l.level, l.msg.replace(/ \(.*/, '')])
  t.same(logged, [[50, 'store: the disk under Redis is nearly full'], [30, 'store: disk space under Redis is back above the reserve; writes resume']], 'one line when writes stop, one when they resume')

  const reg = createRegistry()
  for (const m of Object.values(g.metrics)) reg.registerMetric(m)
  const text = await reg.metrics()
  t.match(text, /skiff_store_disk_refused_writes_total\{dir="\/redis-1"\} 2/, 'refused writes counted by dir')
  t.match(text, /skiff_store_disk_reserve_bytes 67108864/)
  t.match(text, new RegExp(`skiff_store_disk_free_bytes\\{dir="/redis-1"\\} ${70 * Mi}`), 'free bytes per dir (read when scraped)')
})

t.test('a reading is reused for maxAgeMs', async (t) => {
  const g = fakeGuard({ '/redis': 100 * Mi }, { maxAgeMs: 10 })
  const before = g.reads()
  for (let i = 0; i < 100; i++) g.guard.check('w')
  t.equal(g.reads() - before, 1, '100 writes in one instant: one statfs')
  g.free['/redis'] = 0
  g.advance(10)
  t.doesNotThrow(() => g.guard.check('w'), 'not yet stale at exactly maxAgeMs')
  g.advance(1)
  t.throws(() => g.guard.check('w'), DiskFullError, 'read again once older')
})

t.test('an unreadable dir is logged once and does not stop writes', async (t) => {
  const g = fakeGuard({ '/redis': 100 * Mi, '/gone': 100 * Mi })
  g.free['/gone'] = new Error('ENOENT')
  for (let i = 0; i < 3; i++) {
    g.advance(11)
    t.doesNotThrow(() => g.guard.check('w'))
  }
  t.equal(g.lines.filter((l) => /cannot read the free space/.test(l.msg)).length, 1)
})

t.test('a dir that cannot be read at start is a configuration error', async (t) => {
  const { logger } = capture()
  t.throws(() => new DiskGuard({ dirs: ['/no/such/dir'], reserveBytes: Mi, logger, metrics: diskMetrics(() => {}) }), /cannot read the free space of the Redis data directory \/no\/such\/dir/)
})

t.test('startDiskGuard: which dirs, or why none', async (t) => {
  const run = async (o: { dirs?: string[]; reserveBytes?: number; localRedis: boolean; redisDir?: string | Error }) => {
    const { logger, lines } = capture()
    const guard = await startDiskGuard({
      settings: { dirs: o.dirs, reserveBytes: o.reserveBytes }, localRedis: o.localRedis, logger, metrics: diskMetrics(() => {}),
      redisDir: async () => {
        if (o.redisDir instanceof Error) throw o.redisDir
        return o.redisDir
      },
    })
    return { dirs: guard?.dirs, log: lines.map((l) => l.msg).join('\n') }
  }
  const tmp = t.testdir({})
  t.same((await run({ dirs: [tmp], localRedis: false })).dirs, [tmp], 'given dirs, wherever Redis is')
  t.same((await run({ localRedis: true, redisDir: tmp })).dirs, [tmp], 'a local Redis: its CONFIG GET dir')
  const cases: [string, Parameters<typeof run>[0], RegExp][] = [
    ['remote Redis', { localRedis: false }, /no disk guard: Redis is not on this machine/],
    ['dir not here', { localRedis: true, redisDir: '/data/not/here' }, /no disk guard: Redis's dir \/data\/not\/here is not on this machine/],
    ['CONFIG denied', { localRedis: true, redisDir: new Error('NOPERM') }, /no disk guard: cannot ask Redis for its dir \(NOPERM\)/],
    ['reserve 0', { dirs: [tmp], reserveBytes: 0, localRedis: true }, /disk guard off/],
  ]
  for (const [name, o, log] of cases) {
    const r = await run(o)
    t.equal(r.dirs, undefined, name)
    t.match(r.log, log, name)
  }
})
