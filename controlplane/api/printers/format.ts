// Cell formatting shared by the printers, ported from printers.go and
// apimachinery's duration.HumanDuration so ages and lists read exactly as
// they do against a real cluster.

import type { KubeObject } from '../types.ts'

/** Kubernetes' HumanDuration: `45s`, `5m30s`, `125m`, `5h30m`, `40h`, `3d5h`, `120d`, `3y45d`, `9y`. */
export function humanDuration(ms: number): string {
  // Up to two seconds in the future is clock skew, not an error.
  const seconds = Math.trunc(ms / 1000)
  if (seconds < -1) return '<invalid>'
  if (seconds < 0) return '0s'
  if (seconds < 60 * 2) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 10) {
    const s = seconds % 60
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`
  }
  if (minutes < 60 * 3) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 8) {
    const m = minutes % 60
    return m === 0 ? `${hours}h` : `${hours}h${m}m`
  }
  if (hours < 48) return `${hours}h`
  if (hours < 24 * 8) {
    const h = hours % 24
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365
    const y = Math.floor(hours / 24 / 365)
    return dy === 0 ? `${y}y` : `${y}y${dy}d`
  }
  return `${Math.floor(hours / 24 / 365)}y`
}

/** translateTimestampSince: `<unknown>` for a missing timestamp. */
export function since(ts: unknown, now: Date): string {
  if (typeof ts !== 'string' || ts === '') return '<unknown>'
  const t = Date.parse(ts)
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t)
}

export function age(obj: KubeObject, now: Date): string {
  return since(obj.metadata?.creationTimestamp, now)
}

export function rec(v: unknown): Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, any>) : {}
}

export function arr(v: unknown): any[] {
  return Array.isArray(v) ? v : []
}

export function num(v: unknown): number {
  return typeof v === 'number' ? v : 0
}

/** labels.FormatLabels: `a=b,c=d` sorted by key, or `<none>`. */
export function formatLabels(m: unknown): string {
  const r = rec(m)
  const keys = Object.keys(r).sort()
  return keys.length ? keys.map((k) => `${k}=${r[k]}`).join(',') : '<none>'
}

/** A LabelSelector as labels.Selector.String() prints it; empty for a missing or empty selector. */
export function formatSelector(sel: unknown): string {
  const s = rec(sel)
  const reqs: Array<[string, string]> = Object.entries(rec(s.matchLabels)).map(([k, v]) => [k, `${k}=${v}`])
  for (const e of arr(s.matchExpressions)) {
    const key = String(e?.key ?? '')
    const values = arr(e?.values).map(String).sort().join(',')
    const text = { In: `${key} in (${values})`, NotIn: `${key} notin (${values})`, Exists: key, DoesNotExist: `!${key}` }[e?.operator as string]
    if (text !== undefined) reqs.push([key, text])
  }
  return reqs
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map((r) => r[1])
    .join(',')
}

/** Load-balancer ingress points (IP, else hostname), sorted and de-duplicated. */
export function loadBalancerAddresses(status: unknown): string {
  const set = new Set<string>()
  for (const i of arr(rec(status).ingress)) {
    if (i?.ip) set.add(String(i.ip))
    else if (i?.hostname) set.add(String(i.hostname))
  }
  return [...set].sort().join(',')
}

/** Containers and Images cells of a pod template. */
export function containerCells(podSpec: unknown): [string, string] {
  const cs = arr(rec(podSpec).containers)
  return [cs.map((c) => c?.name ?? '').join(','), cs.map((c) => c?.image ?? '').join(',')]
}

/** `a,b,c + 4 more...`: at most three items, then a count of the rest. */
export function listWithMore(list: string[], total: number, max = 3, empty = '<unset>'): string {
  const ret = list.slice(0, max).join(',')
  if (total > max) return `${ret} + ${total - max} more...`
  return ret === '' ? empty : ret
}
