// Per-Ingress proxy options, read from skiff.dev/* annotations (pure). Values
// come only through readSkiffAnnotation, so a value the apiserver would have
// rejected reads as absent and the default applies. Defaults follow
// ingress-nginx (networking-anchors.md): 1 MiB bodies, 5 s connect, 60 s
// read/send, round-robin, ssl-redirect on when the Ingress has TLS.

import { BlockList, isIP } from 'node:net'
import { readSkiffAnnotation } from '../../controlplane/api/validation/skiff.ts'
import { parseCIDR } from '../../controlplane/api/validation/names.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

export type LoadBalance = 'round-robin' | 'least-request' | 'cookie'

export interface IngressOptions {
  loadBalance: LoadBalance
  /** Largest request body in bytes; 0: no limit. */
  bodySizeLimit: number
  /** undefined: the default (redirect when spec.tls covers the host). */
  sslRedirect: boolean | undefined
  rewriteTarget: string | undefined
  /** CIDRs allowed in; undefined: the class default applies. */
  allowSourceRanges: string[] | undefined
  connectTimeoutMs: number
  readTimeoutMs: number
  sendTimeoutMs: number
  /** 0: no Strict-Transport-Security header. */
  hstsMaxAge: number
  /** Hosts of spec.tls (lower-case; `*.x` wildcards kept as written). */
  tlsHosts: string[]
}

export const defaultBodySizeLimit = 1024 * 1024
export const defaultConnectTimeoutMs = 5_000
export const defaultReadTimeoutMs = 60_000
export const defaultSendTimeoutMs = 60_000

export function ingressOptions(ing: KubeObject): IngressOptions {
  return {
    loadBalance: readSkiffAnnotation(ing, 'skiff.dev/load-balance') ?? 'round-robin',
    bodySizeLimit: readSkiffAnnotation(ing, 'skiff.dev/proxy-body-size') ?? defaultBodySizeLimit,
    sslRedirect: readSkiffAnnotation(ing, 'skiff.dev/ssl-redirect'),
    rewriteTarget: readSkiffAnnotation(ing, 'skiff.dev/rewrite-target'),
    allowSourceRanges: readSkiffAnnotation(ing, 'skiff.dev/allow-source-ranges'),
    connectTimeoutMs: readSkiffAnnotation(ing, 'skiff.dev/proxy-connect-timeout') ?? defaultConnectTimeoutMs,
    readTimeoutMs: readSkiffAnnotation(ing, 'skiff.dev/proxy-read-timeout') ?? defaultReadTimeoutMs,
    sendTimeoutMs: readSkiffAnnotation(ing, 'skiff.dev/proxy-send-timeout') ?? defaultSendTimeoutMs,
    hstsMaxAge: readSkiffAnnotation(ing, 'skiff.dev/hsts-max-age') ?? 0,
    tlsHosts: tlsHostsOf(ing),
  }
}

export function tlsHostsOf(ing: KubeObject): string[] {
  const tls: any[] = Array.isArray(ing.spec?.tls) ? ing.spec.tls : []
  return tls.flatMap((t) => (Array.isArray(t?.hosts) ? t.hosts : [])).filter((h) => typeof h === 'string').map((h: string) => h.toLowerCase())
}

/** Does a host list (exact names, `*.suffix` for one label) cover `host`? */
export function hostCovered(hosts: readonly string[], host: string): boolean {
  if (hosts.includes(host)) return true
  const dot = host.indexOf('.')
  return dot > 0 && hosts.includes('*' + host.slice(dot))
}

/** The redirect decision: on by default when spec.tls covers the host, off with ssl-redirect "false". */
export function wantsSslRedirect(opts: IngressOptions, host: string): boolean {
  return opts.sslRedirect !== false && hostCovered(opts.tlsHosts, host)
}

/**
 * rewrite-target without regex, as ingress-nginx does for a plain prefix:
 * the matched prefix is replaced by the target, so `/app` + `/` turns
 * `/app/x` into `/x` and `/app` into `/`. Exact matches become the target.
 */
export function rewritePath(opts: { target: string; matched: string; exact: boolean }, path: string): string {
  if (opts.exact) return opts.target
  const prefix = opts.matched.replace(/\/+$/, '')
  const rest = path.slice(prefix.length) // '' or starts with '/'
  if (rest === '') return opts.target
  return opts.target.endsWith('/') ? opts.target + rest.slice(1) : opts.target + rest
}

/** A source allow-list as a BlockList (IPv4 and IPv6 CIDRs). */
export function compileRanges(cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const c of cidrs) {
    const p = parseCIDR(c)
    if (p) list.addSubnet(p.address, p.prefix, p.family === 4 ? 'ipv4' : 'ipv6')
  }
  return list
}

/** The peer address as a plain IP: `::ffff:10.0.0.1` is 10.0.0.1. */
export function plainIp(addr: string | undefined): string {
  const a = addr ?? ''
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a
}

export function inRanges(list: BlockList, addr: string): boolean {
  const ip = plainIp(addr)
  const family = isIP(ip)
  return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6')
}
