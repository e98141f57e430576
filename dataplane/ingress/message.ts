// RFC 9110/9112 checks on one request message, before any routing: the
// first step of admission, for plain requests and upgrades alike. Node's
// parser (llhttp, strict: `insecureHTTPParser: false`) already refuses bad
// field names and values, obs-fold, bare CR/LF, and, for plain requests,
// Content-Length with Transfer-Encoding, duplicate or malformed
// Content-Length and a Transfer-Encoding that does not end in chunked; what
// it lets through is checked here:
// - Host (9112 3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0, with
//   a valid `uri-host [":" port]`; an absolute-form target's authority
//   (http or https, no userinfo) wins over it (3.2.2);
// - framing (9112 6.1, 6.3): Transfer-Encoding in HTTP/1.0, not ending in
//   chunked, chunked twice, with Content-Length; Content-Length repeated or
//   not digits; codings other than chunked are 501; an Upgrade request with
//   content (Node hands the socket over after the headers, so the content
//   would reach the upstream unframed), or in HTTP/1.0;
// - the request target: no fragment; versions other than 1.0 and 1.1 are 505.
// Pure; never throws on any input.

import { isIPv6 } from 'node:net'
import type { HeaderScan } from './headers.ts'

/** What admission needs from the request line. */
export interface RequestLine {
  url: string
  httpVersion: string
  /** Node emitted 'upgrade' for it. */
  upgrade: boolean
}

export type MessageCheck =
  | {
      ok: true
      /** The origin-form target (`/path?query`) still to be normalised (paths.ts). */
      target: string
      /** The authority of an absolute-form target: it overrides Host, and is forwarded as Host. */
      absoluteAuthority?: string
    }
  | { ok: false; status: 400 | 501 | 505; reason: string }

const regName = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/
const ipFuture = /^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/
const absoluteForm = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/s

/**
 * Why `a` is not a valid `uri-host [":" port]` (RFC 9110 7.2, RFC 3986 3.2),
 * or undefined when it is. Stricter than the grammar in two places: the host
 * must not be empty (an http URI with an empty host is invalid, RFC 9110
 * 4.2.1) and the port is at most 65535.
 */
export function authorityError(a: string): string | undefined {
  if (a.includes('@')) return 'userinfo is not allowed'
  let port: string | undefined
  if (a.startsWith('[')) {
    const end = a.indexOf(']')
    if (end < 0) return 'unterminated IP literal'
    const literal = a.slice(1, end)
    if (!(/^[0-9A-Fa-f:.]+$/.test(literal) && isIPv6(literal)) && !ipFuture.test(literal)) return 'invalid IP literal'
    const rest = a.slice(end + 1)
    if (rest !== '' && !rest.startsWith(':')) return 'invalid characters after the IP literal'
    if (rest !== '') port = rest.slice(1)
  } else {
    const colon = a.indexOf(':')
    const host = colon < 0 ? a : a.slice(0, colon)
    if (colon >= 0) port = a.slice(colon + 1)
    if (host === '') return 'empty host'
    if (!regName.test(host)) return 'invalid host characters'
  }
  if (port !== undefined && (!/^\d{0,5}$/.test(port) || Number(port) > 65535)) return 'invalid port'
  return undefined
}

const bad = (reason: string, status: 400 | 501 | 505 = 400): MessageCheck => ({ ok: false, status, reason })

/** The framing rules Node does not apply to every message (upgrades, HTTP/1.0, codings before chunked). */
function framingError(r: RequestLine, s: HeaderScan): MessageCheck | undefined {
  const te = s.transferEncoding
  if (te !== undefined) {
    if (r.httpVersion === '1.0') return bad('Transfer-Encoding in an HTTP/1.0 request')
    if (s.contentLength !== undefined) return bad('Content-Length with Transfer-Encoding')
    const codings = te.split(',').map((c) => c.trim().toLowerCase()).filter(Boolean)
    if (codings.at(-1) !== 'chunked') return bad('Transfer-Encoding not ending in chunked')
    if (codings.indexOf('chunked') !== codings.length - 1) return bad('chunked applied more than once')
    // Node decodes chunked only: a gzip body would reach the upstream still compressed and unlabelled.
    if (codings.length > 1) return bad('transfer coding not implemented', 501)
  }
  if (s.contentLengthCount > 1) return bad('duplicate Content-Length')
  if (s.contentLength !== undefined && !/^\d+$/.test(s.contentLength)) return bad('invalid Content-Length')
  if (r.upgrade && (te !== undefined || /[1-9]/.test(s.contentLength ?? ''))) return bad('content with an Upgrade request')
  return undefined
}

/** The message checks, in the order the answers are most useful: version, framing, Host, target. */
export function checkMessage(r: RequestLine, s: HeaderScan): MessageCheck {
  if (r.httpVersion !== '1.1' && r.httpVersion !== '1.0') return bad('HTTP version not supported', 505)
  // RFC 9110 7.8: a server ignores Upgrade in HTTP/1.0; Node has already handed the socket over, so it is refused instead.
  if (r.upgrade && r.httpVersion === '1.0') return bad('Upgrade in an HTTP/1.0 request')
  const framing = framingError(r, s)
  if (framing) return framing
  if (s.hostCount > 1) return bad('more than one Host header')
  if (s.hostCount === 0 && r.httpVersion === '1.1') return bad('missing Host header')
  if (s.host !== undefined) {
    const why = authorityError(s.host)
    if (why) return bad(`invalid Host header: ${why}`)
  }
  const url = r.url
  if (url.includes('#')) return bad('fragment in the request target')
  const m = absoluteForm.exec(url)
  if (!m) return { ok: true, target: url }
  const scheme = m[1]!.toLowerCase()
  if (scheme !== 'http' && scheme !== 'https') return bad('absolute-form target with a scheme other than http or https')
  const authority = m[2]!
  const why = authorityError(authority)
  if (why) return bad(`invalid authority in the request target: ${why}`)
  const rest = m[3]!
  return { ok: true, target: rest === '' || rest.startsWith('?') ? `/${rest}` : rest, absoluteAuthority: authority }
}
