// The pod log archive's pure parts (node/pod-log-archive.ts): layout, the
// retention flag, the bounded tail, reads with the kubelet's log options,
// the listing, pruning and the kubelet paths.

import t from 'tap'
import {
  containerArchiveDir, filterArchivedLog, parseMeta, parsePodLogRetention, parsePodLogsPath, planPrune, safeComponent, summarizeArchive, TailBuffer, type ArchiveMeta,
} from '../../node/pod-log-archive.ts'

t.test('layout: one folder per namespace, pod_uid and container; names cannot climb out', async (t) => {
  t.equal(containerArchiveDir('/s/pod-logs', { namespace: 'default', pod: 'web-1', uid: 'u-1', container: 'app' }), '/s/pod-logs/default/web-1_u-1/app')
  t.equal(safeComponent('..'), '%2E%2E')
  t.equal(safeComponent('a/b'), 'a%2Fb')
  t.equal(containerArchiveDir('/s/pod-logs', { namespace: '..', pod: '../x', uid: 'u', container: '.' }), '/s/pod-logs/%2E%2E/%2E%2E%2Fx_u/%2E')
})

t.test('--pod-log-retention', async (t) => {
  const cases: Array<[string, number | RegExp]> = [
    ['24h', 86_400_000], ['30m', 1_800_000], ['1h30m', 5_400_000], ['0', 0], ['1s', 1000],
    ['500ms', /at least 1s/], ['ten', /--pod-log-retention must be a duration .* not "ten"/], ['', /must be a duration/], ['-1h', /must be a duration/],
  ]
  for (const [raw, want] of cases) {
    if (typeof want === 'number') t.equal(parsePodLogRetention(raw), want, raw)
    else t.throws(() => parsePodLogRetention(raw), want, raw)
  }
})

t.test('TailBuffer keeps the newest bytes, from a line boundary once it dropped any', async (t) => {
  const cases: Array<{ name: string; cap: number; chunks: string[]; want: string; truncated: boolean }> = [
    { name: 'under the cap: all of it', cap: 100, chunks: ['a\n', 'b\n'], want: 'a\nb\n', truncated: false },
    { name: 'exactly the cap', cap: 4, chunks: ['a\n', 'b\n'], want: 'a\nb\n', truncated: false },
    { name: 'over: the kept part starts at a line', cap: 6, chunks: ['one\n', 'two\n', 'three\n'], want: 'three\n', truncated: true },
    { name: 'over: one long line is dropped whole', cap: 4, chunks: ['one\n', 'twothree\n'], want: '', truncated: true },
    { name: 'over: cut at the first newline of the kept part', cap: 9, chunks: ['one\n', 'two\n', 'three\n'], want: 'three\n', truncated: true },
    { name: 'many small chunks', cap: 8, chunks: Array.from({ length: 50 }, (_, i) => `${i % 10}\n`), want: '6\n7\n8\n9\n', truncated: true },
    { name: 'nothing', cap: 8, chunks: [], want: '', truncated: false },
  ]
  for (const tc of cases) {
    const b = new TailBuffer(tc.cap)
    for (const c of tc.chunks) b.push(Buffer.from(c))
    const r = b.result()
    t.equal(r.data.toString(), tc.want, tc.name)
    t.equal(r.truncated, tc.truncated, `${tc.name}: truncated`)
  }
})

t.test('reads with the kubelet log options that apply to a finished container', async (t) => {
  const log = [
    '2026-12-04T10:00:00.100000000Z first',
    '2026-12-04T10:00:05.000000001Z second with  spaces',
    '2026-12-04T10:00:10.999999999Z third',
    'no timestamp (kept as it is)',
  ].join('\n') + '\n'
  const since = (iso: string) => Math.floor(Date.parse(iso) / 1000)
  const cases: Array<{ name: string; o: Parameters<typeof filterArchivedLog>[1]; want: string }> = [
    { name: 'plain: timestamps cut', o: { timestamps: false }, want: 'first\nsecond with  spaces\nthird\nno timestamp (kept as it is)\n' },
    { name: 'timestamps kept', o: { timestamps: true, tailLines: 2 }, want: '2026-12-04T10:00:10.999999999Z third\nno timestamp (kept as it is)\n' },
    { name: 'tailLines 0', o: { timestamps: false, tailLines: 0 }, want: '' },
    { name: 'tailLines beyond the length', o: { timestamps: false, tailLines: 99 }, want: 'first\nsecond with  spaces\nthird\nno timestamp (kept as it is)\n' },
    { name: 'since: the second of a line counts', o: { timestamps: false, since: since('2026-12-04T10:00:05Z') }, want: 'second with  spaces\nthird\nno timestamp (kept as it is)\n' },
    { name: 'since after every line', o: { timestamps: false, since: since('2026-12-04T11:00:00Z') }, want: 'no timestamp (kept as it is)\n' },
    { name: 'limitBytes', o: { timestamps: false, limitBytes: 8 }, want: 'first\nse' },
    { name: 'since, then tail, then limit', o: { timestamps: false, since: since('2026-12-04T10:00:01Z'), tailLines: 3, limitBytes: 10 }, want: 'second wit' },
  ]
  for (const tc of cases) t.equal(filterArchivedLog(log, tc.o), tc.want, tc.name)
  t.equal(filterArchivedLog('', { timestamps: false }), '', 'an empty log')
})

const meta = (over: Partial<ArchiveMeta>): ArchiveMeta => ({
  namespace: 'default', pod: 'web-1', uid: 'u1', container: 'app', node: 'n1', labels: { app: 'web' }, restartCount: 0, containerId: 'c',
  archivedAt: '2026-12-04T10:00:00.000Z', bytes: 10, truncated: false, ...over,
})

t.test('the listing: one entry per pod UID and container, runs summed, newest archive first', async (t) => {
  const entries = summarizeArchive([
    meta({ restartCount: 1, bytes: 5, archivedAt: '2026-12-04T10:05:00.000Z', labels: {} }),
    meta({ restartCount: 0, bytes: 10 }),
    meta({ uid: 'u2', pod: 'web-2', archivedAt: '2026-12-04T11:00:00.000Z' }),
    meta({ container: 'side', archivedAt: '2026-12-04T09:00:00.000Z' }),
  ])
  t.same(entries.map((e) => `${e.pod}/${e.container} ${e.size} [${e.restartCounts}] ${e.archivedAt}`), [
    'web-2/app 10 [0] 2026-12-04T11:00:00.000Z',
    'web-1/app 15 [0,1] 2026-12-04T10:05:00.000Z',
    'web-1/side 10 [0] 2026-12-04T09:00:00.000Z',
  ])
  t.same(entries[1]!.labels, { app: 'web' }, 'a run archived without labels (after an agent restart) keeps the labels another run had')
})

t.test('pruning removes runs archived longer ago than the retention, by archive time', async (t) => {
  const now = Date.parse('2026-12-05T10:00:00Z')
  const runs = [
    { name: 'fresh', archivedAtMs: now - 60_000 },
    { name: 'exactly at the retention', archivedAtMs: now - 86_400_000 },
    { name: 'a day and a second', archivedAtMs: now - 86_401_000 },
    { name: 'no date (mtime 0)', archivedAtMs: 0 },
  ]
  t.same(planPrune(runs, now, 86_400_000).map((r) => r.name), ['a day and a second', 'no date (mtime 0)'])
  t.same(planPrune(runs, now, 30_000).map((r) => r.name), ['fresh', 'exactly at the retention', 'a day and a second', 'no date (mtime 0)'])
})

t.test('kubelet paths', async (t) => {
  t.same(parsePodLogsPath('/podLogs/'), { list: true })
  t.same(parsePodLogsPath('/podLogs'), { list: true })
  t.same(parsePodLogsPath('/podLogs/default/web-1/u-1/app'), { list: false, ref: { namespace: 'default', pod: 'web-1', uid: 'u-1', container: 'app' } })
  t.same(parsePodLogsPath('/podLogs/default/web-1/u-1/app/'), { list: false, ref: { namespace: 'default', pod: 'web-1', uid: 'u-1', container: 'app' } })
  for (const bad of ['/podLogs/default/web-1/app', '/podLogs/a/b/c/d/e', '/podLogs/a//c/d', '/containerLogs/a/b/c', '/podLogs/a/b/c/%E0%A4%A']) t.equal(parsePodLogsPath(bad), undefined, bad)
})

t.test('meta files read back; foreign or broken ones are not runs', async (t) => {
  t.same(parseMeta(JSON.stringify(meta({ labels: { a: 'b', n: 1 as unknown as string } })))?.labels, { a: 'b' }, 'only string labels')
  t.equal(parseMeta('{'), undefined)
  t.equal(parseMeta(JSON.stringify({ ...meta({}), restartCount: 'x' })), undefined)
  t.equal(parseMeta(JSON.stringify({ ...meta({}), uid: '' })), undefined)
  t.equal(parseMeta('null'), undefined)
})
