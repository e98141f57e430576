// Request-path normalisation: each raw request target and the one path that
// is both matched and forwarded, or the 400 it gets.

import t from 'tap'
import { normalizePath } from '../../dataplane/ingress/paths.ts'

const cases: { name: string; raw: string; want: string | 400; search?: string }[] = [
  { name: 'root', raw: '/', want: '/' },
  { name: 'plain path unchanged', raw: '/api/v1/items', want: '/api/v1/items' },
  { name: 'file name with dots unchanged', raw: '/static/app.min.js', want: '/static/app.min.js' },
  { name: 'dot segment and parent', raw: '/a/./b/../c', want: '/a/c' },
  { name: 'duplicate slashes collapse', raw: '//a///b', want: '/a/b' },
  { name: 'trailing slash kept', raw: '/a/b/', want: '/a/b/' },
  { name: 'trailing dot keeps the slash', raw: '/a/.', want: '/a/' },
  { name: 'trailing parent keeps the slash', raw: '/a/b/..', want: '/a/' },
  { name: 'parent never climbs above root', raw: '/../../x', want: '/x' },
  { name: 'public/../admin', raw: '/public/../admin', want: '/admin' },
  { name: 'slashes collapse before dot segments', raw: '/a//../b', want: '/b' },
  { name: 'segment starting with dots is not a dot segment', raw: '/a/..b/.c', want: '/a/..b/.c' },
  { name: 'unreserved escape decoded', raw: '/%61', want: '/a' },
  { name: '%61dmin is admin', raw: '/%61dmin', want: '/admin' },
  { name: 'all unreserved kinds decoded', raw: '/%41%7a%30%2D%2E%5F%7E', want: '/Az0-._~' },
  { name: 'encoded dots are dot segments', raw: '/%2e%2e/x', want: '/x' },
  { name: 'encoded dot segment mid-path', raw: '/a/%2E/b/%2e%2E/c', want: '/a/c' },
  { name: 'reserved escape kept, hex upper-cased', raw: '/a%3fb%2a', want: '/a%3Fb%2A' },
  { name: 'escaped percent kept', raw: '/100%25', want: '/100%25' },
  { name: 'escaped space kept', raw: '/a%20b', want: '/a%20b' },
  { name: 'non-ASCII percent-encoded as UTF-8', raw: '/caf\u00e9', want: '/caf%C3%A9' },
  { name: 'astral code point encoded whole', raw: '/\u{1F600}', want: '/%F0%9F%98%80' },
  { name: 'query separated and kept', raw: '/a/../b?x=/../y&z=%2F', want: '/b', search: '?x=/../y&z=%2F' },
  { name: 'empty query kept', raw: '/a?', want: '/a', search: '?' },
  { name: 'encoded slash', raw: '/a%2Fb', want: 400 },
  { name: 'encoded slash lower case', raw: '/a%2fb', want: 400 },
  { name: 'encoded backslash', raw: '/a%5Cb', want: 400 },
  { name: 'encoded backslash lower case', raw: '/a%5cb', want: 400 },
  { name: 'raw backslash', raw: '/a\\b', want: 400 },
  { name: 'encoded NUL', raw: '/a%00', want: 400 },
  { name: 'raw NUL', raw: '/a\u0000b', want: 400 },
  { name: 'raw control character', raw: '/a\tb', want: 400 },
  { name: 'raw space', raw: '/a b', want: 400 },
  { name: 'bad escape: one digit', raw: '/a%4', want: 400 },
  { name: 'bad escape: not hex', raw: '/a%zz', want: 400 },
  { name: 'bad escape: lone percent', raw: '/%', want: 400 },
  { name: 'relative path', raw: 'a/b', want: 400 },
  { name: 'empty path', raw: '', want: 400 },
  { name: 'only a query', raw: '?a=1', want: 400 },
  { name: 'absolute-form is not origin-form', raw: 'http://x/a', want: 400 },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const got = normalizePath(c.raw)
    if (c.want === 400) {
      t.match(got, { ok: false, status: 400 })
      return
    }
    t.same(got, { ok: true, path: c.want, search: c.search ?? '' })
  })
}

t.test('normalising is idempotent', async (t) => {
  for (const c of cases) {
    const once = normalizePath(c.raw)
    if (!once.ok) continue
    t.same(normalizePath(once.path + once.search), once, c.raw)
  }
})

t.test('a 400 says why', async (t) => {
  t.match(normalizePath('/a%2Fb'), { reason: /encoded slash/ })
  t.match(normalizePath('/a%zz'), { reason: /bad percent-escape/ })
  t.match(normalizePath('/a\\b'), { reason: /backslash/ })
})
