// Request headers for the ingress, read once from the raw header list (the
// node:http parser's `rawHeaders`) instead of through `req.headers`, whose
// object Node builds on first access: one pass finds what admission needs
// and which headers are hop-by-hop, and one pass writes the upstream list
// (RFC 9110 7.6.1: a proxy drops Connection, the headers it names, and the
// other hop-by-hop fields; the X-Forwarded-* set is replaced unless the peer
// is a trusted proxy). Pure.

/** Hop-by-hop fields a proxy never forwards (RFC 9110 7.6.1, plus Proxy-Connection and Expect, which Node answers itself). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'expect', 'http2-settings'])
/** The forwarded set: replaced for untrusted peers, extended for trusted proxies. */
export const forwardedHeaders = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'])
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

/** What admission and forwarding need from the request headers, found in one pass. */
export interface HeaderScan {
  /** The first Host value; admission answers 400 when there is more than one (hostCount). */
  host?: string
  hostCount: number
  contentLength?: string
  contentLengthCount: number
  transferEncoding?: string
  cookie?: string
  /** Names listed in Connection (lower case): hop-by-hop for this request. */
  connectionTokens?: string[]
  xForwardedFor?: string
  xForwardedProto?: string
  xForwardedHost?: string
  xForwardedPort?: string
  xRealIp?: string
  xRequestId?: string
}

export function scanHeaders(raw: readonly string[]): HeaderScan {
  const s: HeaderScan = { hostCount: 0, contentLengthCount: 0 }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    // Most requests carry a handful of headers; only these few matter here.
    switch (name.length) {
      case 4: if (name.toLowerCase() === 'host') { s.host ??= value; s.hostCount++ } break
      case 6: if (name.toLowerCase() === 'cookie') s.cookie = s.cookie === undefined ? value : `${s.cookie}; ${value}`; break
      case 9: if (name.toLowerCase() === 'x-real-ip') s.xRealIp ??= value; break
      case 10: if (name.toLowerCase() === 'connection') (s.connectionTokens ??= []).push(...value.toLowerCase().split(',').map((x) => x.trim()).filter(Boolean)); break
      case 12: if (name.toLowerCase() === 'x-request-id') s.xRequestId ??= value; break
      case 14: if (name.toLowerCase() === 'content-length') { s.contentLength ??= value; s.contentLengthCount++ } break
      case 15: if (name.toLowerCase() === 'x-forwarded-for') s.xForwardedFor = s.xForwardedFor === undefined ? value : `${s.xForwardedFor}, ${value}`; break
      case 16: {
        const n = name.toLowerCase()
        if (n === 'x-forwarded-host') s.xForwardedHost ??= value
        else if (n === 'x-forwarded-port') s.xForwardedPort ??= value
        break
      }
      case 17: {
        const n = name.toLowerCase()
        if (n === 'transfer-encoding') s.transferEncoding = s.transferEncoding === undefined ? value : `${s.transferEncoding}, ${value}`
        else if (n === 'x-forwarded-proto') s.xForwardedProto ??= value
        break
      }
    }
  }
  return s
}

export interface ForwardContext {
  scheme: 'http' | 'https'
  /** The client's address (IPv4-mapped prefix removed). */
  peer: string
  /** The peer is a trusted proxy: its X-Forwarded-* values are kept and extended. */
  trusted: boolean
  /** The request's authority as the client sent it (Host or the absolute-form target). */
  host: string
  /** The port the client connected to. */
  localPort: number
  /** Used when the request brings no acceptable X-Request-Id. */
  newRequestId: () => string
}

/** The X-Forwarded-* set and X-Request-Id as nginx's ingress sets them; the id is the last value. */
export function forwardedValues(s: HeaderScan, c: ForwardContext): { headers: Array<[string, string]>; requestId: string } {
  const t = c.trusted
  const id = t && s.xRequestId !== undefined && requestIdPattern.test(s.xRequestId) ? s.xRequestId : c.newRequestId()
  return {
    requestId: id,
    headers: [
      ['x-forwarded-for', t && s.xForwardedFor ? `${s.xForwardedFor}, ${c.peer}` : c.peer],
      ['x-forwarded-proto', t && s.xForwardedProto ? s.xForwardedProto : c.scheme],
      ['x-forwarded-host', t && s.xForwardedHost ? s.xForwardedHost : c.host],
      ['x-forwarded-port', t && s.xForwardedPort ? s.xForwardedPort : String(c.localPort)],
      ['x-real-ip', t && s.xRealIp ? s.xRealIp : c.peer],
      ['x-request-id', id],
    ],
  }
}

/**
 * The header list sent upstream, flat [name, value, ...]: the client's
 * headers without hop-by-hop fields and without the forwarded set (the
 * values from forwardedValues go at the end; a trusted peer's `Forwarded`
 * stays), Host kept as the client sent it unless `host` is given: the
 * authority of an absolute-form target, which replaces it (RFC 9112 3.2.2).
 */
export function upstreamHeaders(raw: readonly string[], s: HeaderScan, forwarded: Array<[string, string]>, trusted: boolean, host?: string): string[] {
  const out: string[] = host === undefined ? [] : ['Host', host]
  const named = s.connectionTokens
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (hopByHop.has(lower) || (named !== undefined && named.includes(lower))) continue
    if (host !== undefined && lower === 'host') continue
    if (forwardedHeaders.has(lower) && !(trusted && lower === 'forwarded')) continue
    if (lower === 'x-request-id') continue
    out.push(name, raw[i + 1]!)
  }
  for (const [k, v] of forwarded) out.push(k, v)
  return out
}

/** Hop-by-hop response fields (the server writes its own framing and Connection). */
const responseHopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te'])

/** The upstream's response headers for the client, flat, plus extra Set-Cookie and Connection: close when asked. */
export function downstreamHeaders(raw: readonly (Buffer | string)[], extra: { setCookie?: string; close?: boolean }): string[] {
  const out: string[] = []
  let named: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toString().toLowerCase() === 'connection') (named ??= []).push(...raw[i + 1]!.toString().toLowerCase().split(',').map((x) => x.trim()))
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString()
    const lower = name.toLowerCase()
    if (responseHopByHop.has(lower) || (named !== undefined && named.includes(lower))) continue
    out.push(name, raw[i + 1]!.toString())
  }
  if (extra.setCookie) out.push('Set-Cookie', extra.setCookie)
  if (extra.close) out.push('Connection', 'close')
  return out
}
