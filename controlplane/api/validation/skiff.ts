// Skiff's own settings: `skiff.dev/*` annotations. Each key has one typed
// parser, so a bad value is rejected at apply time with its field path, and
// components read parsed values (never raw text) through readSkiffAnnotation.
// Adding a setting is one row in `skiffAnnotations`. No value may hold a
// control character, whatever its parser would make of it (commaList trims,
// and the URL parser drops tabs and newlines).

import { forbidden, invalid, isRecord, keyPath, notSupported } from './field.ts'
import type { Causes } from './field.ts'
import { control, controlCharacterMsg, isHTTPPath, isRFC1123Hostname, parseCIDR } from './names.ts'
import type { KubeObject } from '../types.ts'

export const skiffPrefix = 'skiff.dev/'

export type Parsed<T> = { ok: true; value: T } | { ok: false; detail: string; supported?: readonly string[] }

export interface SkiffAnnotation<T = unknown> {
  /** Kinds the setting may appear on. */
  kinds: readonly string[]
  description: string
  parse: (raw: string) => Parsed<T>
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (detail: string): Parsed<never> => ({ ok: false, detail })

export function enumOf<const V extends string>(...values: V[]): (raw: string) => Parsed<V> {
  return (raw) => ((values as string[]).includes(raw) ? ok(raw as V) : { ok: false, detail: '', supported: values })
}

export function bool(raw: string): Parsed<boolean> {
  return raw === 'true' || raw === 'false' ? ok(raw === 'true') : { ok: false, detail: '', supported: ['true', 'false'] }
}

export function intRange(min: number, max: number): (raw: string) => Parsed<number> {
  return (raw) => {
    const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN
    return n >= min && n <= max ? ok(n) : bad(`must be an integer between ${min} and ${max}, inclusive`)
  }
}

/** RFC 7231 methods, plus PATCH (RFC 5789). */
export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const

function commaList(raw: string): string[] {
  return raw.split(',').map((s) => s.trim())
}

export function methodList(raw: string): Parsed<string[]> {
  const methods = commaList(raw)
  const wrong = methods.find((m) => !(httpMethods as readonly string[]).includes(m))
  if (wrong !== undefined) return bad(`${JSON.stringify(wrong)} is not an HTTP method; use a comma-separated list of ${httpMethods.join(', ')}`)
  return ok([...new Set(methods)])
}

export function cidrList(raw: string): Parsed<string[]> {
  const cidrs = commaList(raw)
  const wrong = cidrs.find((c) => !parseCIDR(c))
  if (wrong !== undefined) return bad(`${JSON.stringify(wrong)} is not a CIDR; use a comma-separated list such as 10.0.0.0/8,192.168.1.0/24`)
  return ok(cidrs)
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Go-style durations (`30s`, `5m`, `1h30m`, `250ms`), in milliseconds. */
export function parseDuration(raw: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(raw)) return undefined
  let total = 0
  for (const m of raw.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * durationUnits[m[2]]
  return total
}

export function duration(minMs: number, maxMs: number): (raw: string) => Parsed<number> {
  return (raw) => {
    const ms = parseDuration(raw)
    if (ms === undefined) return bad('must be a duration such as 500ms, 30s, 5m or 1h')
    return ms >= minMs && ms <= maxMs ? ok(ms) : bad(`must be between ${minMs}ms and ${maxMs / 1000}s`)
  }
}

/** Sizes as nginx writes them (`1m`, `512k`) or Kubernetes' binary units (`10Mi`); both are powers of 1024. */
const sizeUnits: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 }

export function size(raw: string): Parsed<number> {
  const m = /^(\d+)([kKmMgG]i?)?$/.exec(raw)
  if (!m) return bad('must be a size such as 0 (no limit), 512k, 1m or 10Mi')
  return ok(Number(m[1]) * sizeUnits[(m[2] ?? '').toLowerCase()])
}

/**
 * A path the ingress forwards as it is (rewrite-target): RFC 3986 path
 * characters only, no query, and already in the normal form the ingress
 * gives request paths (no `//`, no `.` or `..` segment), so the upstream
 * sees exactly what was written.
 */
export function absolutePath(raw: string): Parsed<string> {
  const errs = isHTTPPath(raw)
  if (errs.length) return bad(errs.join('; '))
  if (raw.includes('//') || /\/\.\.?(\/|$)/.test(raw)) return bad("must not contain '//', or a '.' or '..' segment")
  return ok(raw)
}

const ingress = ['Ingress'] as const
const ingressClass = ['IngressClass'] as const

export function httpsUrl(raw: string): Parsed<string> {
  try {
    const u = new URL(raw)
    if (u.protocol === 'https:' && !u.username && !u.password && !u.hash) return ok(u.toString())
  } catch {}
  return bad('must be an https:// URL such as https://acme-v02.api.letsencrypt.org/directory')
}

/** An address as ACME's mailto: contact takes it: an RFC 5322 dot-atom local part @ an RFC 1123 host name with a dot. */
export function email(raw: string): Parsed<string> {
  const at = raw.lastIndexOf('@')
  const local = raw.slice(0, at)
  const domain = raw.slice(at + 1).toLowerCase()
  const localOk = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local) && local.length <= 64
  return at > 0 && localOk && domain.includes('.') && isRFC1123Hostname(domain).length === 0 ? ok(raw) : bad('must be an email address such as ops@example.com')
}
const hour = 3_600_000

/** A unicast MAC in lower case, as `ip` prints it (a VTEP MAC; node/pod-network). */
export function unicastMac(raw: string): Parsed<string> {
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(raw) && (parseInt(raw.slice(0, 2), 16) & 1) === 0 && raw !== '00:00:00:00:00:00'
    ? ok(raw)
    : bad('must be a unicast MAC address in lower case such as 0a:58:0a:f4:01:01')
}

const node = ['Node'] as const

/** An absolute file system path without '..' (node/ publishes them). */
export function hostPath(raw: string): Parsed<string> {
  return raw.startsWith('/') && !raw.split('/').includes('..') ? ok(raw) : bad('must be an absolute path without ..')
}

export function hostPathList(raw: string): Parsed<string[]> {
  const paths = commaList(raw)
  const wrong = paths.find((p) => !hostPath(p).ok)
  if (wrong !== undefined) return bad(`${JSON.stringify(wrong)} is not an absolute path; use a comma-separated list such as /var/lib/skiff,/run/docker.sock`)
  return ok(paths)
}

export const skiffAnnotations = {
  'skiff.dev/methods': { kinds: ingress, description: 'HTTP methods the routes accept', parse: methodList },
  'skiff.dev/load-balance': { kinds: ingress, description: 'how requests are spread over endpoints', parse: enumOf('round-robin', 'least-request', 'cookie') },
  'skiff.dev/proxy-body-size': { kinds: ingress, description: 'largest request body accepted (0: no limit)', parse: size },
  'skiff.dev/ssl-redirect': { kinds: ingress, description: 'redirect HTTP to HTTPS when the Ingress has TLS', parse: bool },
  'skiff.dev/rewrite-target': { kinds: ingress, description: 'path the matched prefix is replaced with', parse: absolutePath },
  'skiff.dev/allow-source-ranges': { kinds: ['Ingress', 'IngressClass', 'Service'], description: 'client CIDRs allowed in (on an IngressClass: the default for its Ingresses)', parse: cidrList },
  'skiff.dev/hsts-max-age': { kinds: ingress, description: 'Strict-Transport-Security max-age in seconds on HTTPS answers (0: no header)', parse: intRange(0, 63_072_000) },
  'skiff.dev/issuer': { kinds: ingressClass, description: 'who issues certificates for the TLS hosts of the class', parse: enumOf('acme', 'ca', 'none') },
  'skiff.dev/acme-directory': { kinds: ingressClass, description: 'ACME directory URL of the class issuer', parse: httpsUrl },
  'skiff.dev/acme-email': { kinds: ingressClass, description: 'ACME account contact', parse: email },
  'skiff.dev/trusted-proxies': { kinds: ingressClass, description: 'peer CIDRs whose X-Forwarded-* headers are kept', parse: cidrList },
  'skiff.dev/proxy-connect-timeout': { kinds: ingress, description: 'time to connect to an endpoint', parse: duration(1, hour) },
  'skiff.dev/proxy-read-timeout': { kinds: ingress, description: 'time between two reads from an endpoint', parse: duration(1, hour) },
  'skiff.dev/proxy-send-timeout': { kinds: ingress, description: 'time between two writes to an endpoint', parse: duration(1, hour) },
  'skiff.dev/pod-network': { kinds: node, description: 'the pod network mode the node agent runs (published by the agent)', parse: enumOf('host-gw', 'vxlan') },
  'skiff.dev/vtep-mac': { kinds: node, description: "the MAC of the node's VXLAN device (published by the agent in vxlan mode)", parse: unicastMac },
  'skiff.dev/local-volume-dir': { kinds: node, description: 'where the local provisioner keeps the volumes of this node (published by the agent)', parse: hostPath },
  'skiff.dev/reserved-host-paths': { kinds: node, description: 'host paths no hostPath volume may name on this node: its state and container engine socket (published by the agent)', parse: hostPathList },
} as const satisfies Record<string, SkiffAnnotation<any>>

export type SkiffAnnotationKey = keyof typeof skiffAnnotations
export type SkiffAnnotationValue<K extends SkiffAnnotationKey> = Extract<ReturnType<(typeof skiffAnnotations)[K]['parse']>, { ok: true }>['value']

/** The parsed value of a setting, or undefined when it is absent or invalid (validation rejected it). */
export function readSkiffAnnotation<K extends SkiffAnnotationKey>(obj: KubeObject, key: K): SkiffAnnotationValue<K> | undefined {
  const raw = obj.metadata?.annotations?.[key]
  if (typeof raw !== 'string') return undefined
  const parsed = (skiffAnnotations[key].parse as (r: string) => Parsed<unknown>)(raw)
  return parsed.ok ? (parsed.value as SkiffAnnotationValue<K>) : undefined
}

export function validateSkiffAnnotations(obj: KubeObject, kind: string = obj.kind ?? ''): Causes {
  const annotations = obj.metadata?.annotations
  if (!isRecord(annotations)) return []
  const table: Record<string, SkiffAnnotation<any>> = skiffAnnotations
  const known = Object.keys(table).sort()
  const out: Causes = []
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(skiffPrefix)) continue
    const path = keyPath('metadata.annotations', key)
    const spec = table[key]
    if (!spec) {
      out.push(notSupported(path, key, known))
      continue
    }
    if (!spec.kinds.includes(kind)) {
      out.push(forbidden(path, `applies only to ${spec.kinds.join(', ')}`))
      continue
    }
    // A value that is not a string is validateAnnotations' cause.
    if (typeof value !== 'string') continue
    if (control.test(value)) {
      out.push(invalid(path, value, controlCharacterMsg))
      continue
    }
    const parsed = spec.parse(value)
    if (!parsed.ok) out.push(parsed.supported ? notSupported(path, value, parsed.supported) : invalid(path, value, parsed.detail))
  }
  return out
}
