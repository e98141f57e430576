// message.ts: the RFC 9110/9112 checks admission runs on every request
// (plain and upgrade) before routing: Host, framing, the request target.

import t from 'tap'
import { authorityError, checkMessage, type RequestLine } from '../../dataplane/ingress/message.ts'
import { scanHeaders } from '../../dataplane/ingress/headers.ts'

const line = (url = '/', o: Partial<RequestLine> = {}): RequestLine => ({ url, httpVersion: '1.1', upgrade: false, ...o })
const check = (l: RequestLine, raw: string[]) => checkMessage(l, scanHeaders(raw))
const verdict = (l: RequestLine, raw: string[]): string => {
  const c = check(l, raw)
  return c.ok ? 'ok' : `${c.status} ${c.reason}`
}

t.test('authority syntax: uri-host [":" port] (RFC 3986 3.2)', async (t) => {
  const rows: [string, string | undefined][] = [
    ['a.test', undefined], ['A.Test:8080', undefined], ['a.test:', undefined], ['10.0.0.1:80', undefined], ['[::1]', undefined], ['[::1]:443', undefined],
    ['[v1.fe80::a+en1]', undefined], ["a_b~!$&'()*+,;=.test", undefined], ['%61.test', undefined], ['xn--nxasmq6b.test', undefined],
    ['', 'empty host'], [':80', 'empty host'], ['a test', 'invalid host characters'], ['a.test/x', 'invalid host characters'], ['é.test', 'invalid host characters'],
    ['a.test, b.test', 'invalid host characters'], ['a\tb', 'invalid host characters'], ['%zz.test', 'invalid host characters'], ['a"b', 'invalid host characters'],
    ['u@a.test', 'userinfo is not allowed'], ['a.test:80:80', 'invalid port'], ['a.test:x', 'invalid port'], ['a.test:65536', 'invalid port'], ['a.test:123456', 'invalid port'],
    ['[::1', 'unterminated IP literal'], ['[1.2.3.4]', 'invalid IP literal'], ['[fe80::1%eth0]', 'invalid IP literal'], ['[::1]x', 'invalid characters after the IP literal'],
  ]
  for (const [a, want] of rows) t.equal(authorityError(a), want, JSON.stringify(a))
})

t.test('Host: exactly one in HTTP/1.1, at most one in HTTP/1.0, valid (RFC 9112 3.2)', async (t) => {
  t.equal(verdict(line(), ['Host', 'a.test']), 'ok')
  t.equal(verdict(line(), []), '400 missing Host header')
  t.equal(verdict(line('/', { httpVersion: '1.0' }), []), 'ok', 'HTTP/1.0 may omit Host')
  t.equal(verdict(line(), ['Host', 'a.test', 'host', 'a.test']), '400 more than one Host header', 'even the same value twice')
  t.equal(verdict(line('/', { httpVersion: '1.0' }), ['Host', 'a.test', 'Host', 'b.test']), '400 more than one Host header')
  t.equal(verdict(line(), ['Host', '']), '400 invalid Host header: empty host')
  t.equal(verdict(line(), ['Host', 'a.test/evil']), '400 invalid Host header: invalid host characters')
  t.equal(verdict(line('/', { upgrade: true }), []), '400 missing Host header', 'upgrades too')
})

t.test('absolute-form: the authority wins over Host, and must itself be valid (RFC 9112 3.2.2)', async (t) => {
  t.same(check(line('http://b.test/x?q=1'), ['Host', 'a.test']), { ok: true, target: '/x?q=1', absoluteAuthority: 'b.test' })
  t.same(check(line('HTTPS://B.test:8443'), ['Host', 'a.test']), { ok: true, target: '/', absoluteAuthority: 'B.test:8443' })
  t.same(check(line('http://b.test?q'), ['Host', 'a.test']), { ok: true, target: '/?q', absoluteAuthority: 'b.test' })
  t.equal(verdict(line('http://b.test/x'), []), '400 missing Host header', 'Host is still required in HTTP/1.1')
  t.equal(verdict(line('http://b.test/x'), ['Host', 'a b']), '400 invalid Host header: invalid host characters', 'and still valid')
  t.equal(verdict(line('http://u:p@b.test/x'), ['Host', 'a.test']), '400 invalid authority in the request target: userinfo is not allowed')
  t.equal(verdict(line('http:///x'), ['Host', 'a.test']), '400 invalid authority in the request target: empty host')
  t.equal(verdict(line('ftp://b.test/x'), ['Host', 'a.test']), '400 absolute-form target with a scheme other than http or https')
  t.same(check(line('/x?http://b.test/'), ['Host', 'a.test']), { ok: true, target: '/x?http://b.test/' }, 'origin-form is passed on as it is')
  t.same(check(line('*'), ['Host', 'a.test']), { ok: true, target: '*' }, 'other forms are left to the path check (400 there)')
  t.equal(verdict(line('/x#frag'), ['Host', 'a.test']), '400 fragment in the request target')
})

t.test('framing (RFC 9112 6.1, 6.3), for plain requests and upgrades alike', async (t) => {
  const h = (...more: string[]) => ['Host', 'a.test', ...more]
  for (const upgrade of [false, true]) {
    const l = line('/', { upgrade })
    const tag = upgrade ? 'upgrade' : 'plain'
    t.equal(verdict(l, h('Transfer-Encoding', 'chunked', 'Content-Length', '3')), '400 Content-Length with Transfer-Encoding', `${tag}: CL + TE`)
    t.equal(verdict(l, h('Transfer-Encoding', 'gzip')), '400 Transfer-Encoding not ending in chunked', `${tag}: TE gzip`)
    t.equal(verdict(l, h('Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'gzip')), '400 Transfer-Encoding not ending in chunked', `${tag}: two TE lines`)
    t.equal(verdict(l, h('Transfer-Encoding', 'chunked, chunked')), '400 chunked applied more than once', `${tag}: chunked twice`)
    t.equal(verdict(l, h('Content-Length', '3', 'Content-Length', '4')), '400 duplicate Content-Length', `${tag}: two Content-Lengths`)
    t.equal(verdict(l, h('Content-Length', '3', 'Content-Length', '3')), '400 duplicate Content-Length', `${tag}: the same Content-Length twice`)
    t.equal(verdict(l, h('Content-Length', '-1')), '400 invalid Content-Length', `${tag}: negative Content-Length`)
    t.equal(verdict(l, h('Content-Length', '1, 1')), '400 invalid Content-Length', `${tag}: a Content-Length list`)
  }
  t.equal(verdict(line('/', { httpVersion: '1.0' }), h('Transfer-Encoding', 'chunked')), '400 Transfer-Encoding in an HTTP/1.0 request')
  t.equal(verdict(line(), h('Transfer-Encoding', 'gzip, chunked')), '501 transfer coding not implemented', 'a coding before chunked: 501 (Node would pass it on undecoded)')
  t.equal(verdict(line(), h('Transfer-Encoding', 'CHUNKED')), 'ok', 'codings are case-insensitive')
  t.equal(verdict(line(), h('Content-Length', '0')), 'ok')
  t.equal(verdict(line('/', { upgrade: true }), h('Transfer-Encoding', 'chunked')), '400 content with an Upgrade request')
  t.equal(verdict(line('/', { upgrade: true }), h('Content-Length', '5')), '400 content with an Upgrade request')
  t.equal(verdict(line('/', { upgrade: true }), h('Content-Length', '00')), 'ok', 'Content-Length 0 on an upgrade is no content')
  t.equal(verdict(line('/', { upgrade: true, httpVersion: '1.0' }), h()), '400 Upgrade in an HTTP/1.0 request')
})

t.test('versions other than 1.0 and 1.1 are 505', async (t) => {
  t.equal(verdict(line('/', { httpVersion: '0.9' }), []), '505 HTTP version not supported')
  t.equal(verdict(line('/', { httpVersion: '2.0' }), ['Host', 'a.test']), '505 HTTP version not supported')
})
