// skiff logs --previous-pods (cli/logs-archive.ts): which archived entries a
// query selects and how their lines print.

import t from 'tap'
import { formatArchivedLine, selectArchived, type ArchivedEntry } from '../../cli/logs-archive.ts'
import { parsePodQuery } from '../../cli/logs.ts'

const e = (pod: string, over: Partial<ArchivedEntry> = {}): ArchivedEntry => ({
  namespace: 'default', pod, uid: `uid-${pod}`, container: 'app', node: 'n1', labels: { app: 'web' }, archivedAt: '2026-12-04T10:00:00.000Z', size: 1, restartCounts: [0], ...over,
})
const entries = [
  e('web-a', { archivedAt: '2026-12-04T10:02:00.000Z' }),
  e('web-b', { archivedAt: '2026-12-04T10:01:00.000Z' }),
  e('web-b', { container: 'side', archivedAt: '2026-12-04T10:01:00.000Z' }),
  e('db-0', { labels: { app: 'db' } }),
  e('web-live', { uid: 'live-1' }),
  e('orphan', { labels: {} }),
]

t.test('selection', async (t) => {
  const cases: Array<{ name: string; query?: string; selector?: string; container?: RegExp; want: string[] }> = [
    { name: 'every pod, oldest archive first, live pods left out', want: ['db-0/app', 'orphan/app', 'web-b/app', 'web-b/side', 'web-a/app'] },
    { name: 'a regular expression on names', query: '^web-', want: ['web-b/app', 'web-b/side', 'web-a/app'] },
    { name: 'pod/NAME', query: 'pod/web-a', want: ['web-a/app'] },
    { name: 'deploy/NAME: by the labels stored with the log', query: 'deploy/web', selector: 'app=web', want: ['web-b/app', 'web-b/side', 'web-a/app'] },
    { name: '-l', selector: 'app=db', want: ['db-0/app'] },
    { name: '-c', container: /^side$/, want: ['web-b/side'] },
  ]
  for (const tc of cases) {
    const got = selectArchived(entries, { query: parsePodQuery(tc.query), selector: tc.selector, container: tc.container, livePods: new Set(['live-1']) })
    t.same(got.map((x) => `${x.pod}/${x.container}`), tc.want, tc.name)
  }
})

t.test('lines: the pod shown as NAME (deleted); JSON keeps the name and says deleted', async (t) => {
  const fmt = { output: 'default' as const, timestamps: false, colour: false, allNamespaces: false }
  const raw = '2026-12-04T10:00:00.123456789Z hello world'
  t.equal(formatArchivedLine(e('web-a'), raw, fmt), 'web-a (deleted) app hello world')
  t.equal(formatArchivedLine(e('web-a'), raw, { ...fmt, timestamps: true }), 'web-a (deleted) app 2026-12-04T10:00:00.123456789Z hello world')
  t.equal(formatArchivedLine(e('web-a'), raw, { ...fmt, allNamespaces: true }), 'default web-a (deleted) app hello world')
  t.equal(formatArchivedLine(e('web-a'), raw, { ...fmt, output: 'raw' }), 'hello world')
  t.same(JSON.parse(formatArchivedLine(e('web-a'), raw, { ...fmt, output: 'json' })), { message: 'hello world', nodeName: 'n1', namespace: 'default', podName: 'web-a', containerName: 'app', deleted: true, podUID: 'uid-web-a' })
})
