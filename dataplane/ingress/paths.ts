// Request-path normalisation for the ingress. It runs once per request; the
// path it returns is both the one matched against Ingress paths and the one
// forwarded, so `/public/../admin`, `/%61dmin` and `//admin` can never be
// matched as one path and served by the backend as another.

export type NormalizedPath =
  | { ok: true; path: string; search: string }
  | { ok: false; status: 400; reason: string }

const unreserved = /^[A-Za-z0-9\-._~]$/
/** Already canonical: no escape, backslash, control or non-ASCII byte, no `//`, no `/.` (dot segments start so). */
const plain = /^\/[\x21-\x24\x26-\x5b\x5d-\x7e]*$/

const bad = (reason: string): NormalizedPath => ({ ok: false, status: 400, reason })

/**
 * Splits `raw` (an origin-form request target, `/path?query`) at the first
 * `?`, then normalises the path:
 * - `%XX` of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; other
 *   escapes are kept with upper-case hex; raw non-ASCII is percent-encoded
 *   (UTF-8), so each path has one spelling;
 * - duplicate slashes are collapsed, then dot segments removed (RFC 3986
 *   5.2.4), in that order, as a filesystem-backed server would read them;
 * - 400 for an encoded slash or backslash, a backslash, a NUL or other
 *   control character, a bad escape, or a path not starting with `/`.
 * The query (`search`, with its `?`, or '') is returned untouched.
 * Normalising a normalised path returns it unchanged.
 */
export function normalizePath(raw: string): NormalizedPath {
  const q = raw.indexOf('?')
  const path = q < 0 ? raw : raw.slice(0, q)
  const search = q < 0 ? '' : raw.slice(q)
  if (plain.test(path) && !path.includes('//') && !path.includes('/.')) return { ok: true, path, search }
  if (!path.startsWith('/')) return bad("path must start with '/'")
  const decoded = decodeUnreserved(path)
  if (!decoded.ok) return decoded
  return { ok: true, path: removeDotSegments(decoded.path.replace(/\/{2,}/g, '/')), search }
}

function decodeUnreserved(path: string): NormalizedPath {
  let out = ''
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!
    const code = c.charCodeAt(0)
    if (c === '%') {
      const hex = path.slice(i + 1, i + 3)
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return bad(`bad percent-escape at offset ${i}`)
      const byte = parseInt(hex, 16)
      if (byte === 0x2f) return bad('encoded slash (%2F) in path')
      if (byte === 0x5c) return bad('encoded backslash (%5C) in path')
      if (byte === 0) return bad('NUL (%00) in path')
      const ch = String.fromCharCode(byte)
      out += unreserved.test(ch) ? ch : `%${hex.toUpperCase()}`
      i += 2
    } else if (c === '\\') return bad('backslash in path')
    else if (code === 0) return bad('NUL in path')
    else if (code <= 0x20 || code === 0x7f) return bad(`control character or space in path at offset ${i}`)
    else if (code > 0x7f) {
      // A whole code point (surrogate pairs included), as UTF-8 escapes.
      const cp = path.codePointAt(i)!
      const s = String.fromCodePoint(cp)
      if (cp >= 0xd800 && cp <= 0xdfff) return bad('unpaired surrogate in path')
      out += encodeURIComponent(s)
      i += s.length - 1
    } else out += c
  }
  return { ok: true, path: out, search: '' }
}

/** RFC 3986 section 5.2.4 on an absolute path; `..` never climbs above the root. */
export function removeDotSegments(path: string): string {
  const segments = path.split('/')
  const out: string[] = []
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!
    const last = i === segments.length - 1
    if (s === '.' || s === '..') {
      if (s === '..' && out.length > 0) out.pop()
      // `/a/.` and `/a/b/..` name a directory: keep the trailing slash.
      if (last) out.push('')
    } else out.push(s)
  }
  return '/' + out.join('/')
}
