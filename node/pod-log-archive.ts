// The logs of deleted and replaced pods (issue 15 point 3), the pure half:
// where an archived container log lives, what its meta file says, how the
// archive is listed, filtered for a read (the kubelet's log options where
// they apply), bounded, and pruned. The effects (Docker reads, files, the
// prune timer, the kubelet's /podLogs/ answers) are pod-log-store.ts.
//
// Layout under the agent's state dir:
//   pod-logs/<ns>/<pod>_<uid>/<container>/<restartCount>.log   "RFC3339Nano message" lines, as Docker's timestamps=true
//   pod-logs/<ns>/<pod>_<uid>/<container>/<restartCount>.json  ArchiveMeta
// Each component is URI-encoded ('.' and '..' too), so no name leaves its folder.

import { join } from 'node:path'
import { parseDuration } from '../controlplane/api/validation/skiff.ts'
import type { LogOptions } from './kubelet-logs.ts'

export const archiveFolder = 'pod-logs'
export const defaultPodLogRetentionMs = 24 * 3600_000

export interface ArchiveRef {
  namespace: string
  pod: string
  uid: string
  container: string
}

/** An archived container of a pod on a node. */
interface ArchivedContainer extends ArchiveRef {
  node: string
  /** The pod's labels when the agent last synced it ({} when it did not know them: removed after an agent restart). */
  labels: Record<string, string>
}

/** What is known of one archived container run, written next to its log. */
export interface ArchiveMeta extends ArchivedContainer {
  restartCount: number
  containerId: string
  startedAt?: string
  finishedAt?: string
  exitCode?: number
  /** When the agent copied it (the container was about to be removed); retention counts from here. */
  archivedAt: string
  bytes: number
  /** Older lines were dropped to stay within the cap (the rotation size). */
  truncated: boolean
}

/** One archived container of one pod (all its archived runs), as GET /podLogs/ lists it. */
export interface ArchiveEntry extends ArchivedContainer {
  /** The newest run's archive time. */
  archivedAt: string
  /** Bytes over every run. */
  size: number
  restartCounts: number[]
}

/** A path component that cannot climb out of its folder or hold a separator. Pure. */
export function safeComponent(s: string): string {
  return encodeURIComponent(s).replace(/\./g, '%2E')
}

/** The folder of one container's archived runs. Pure. */
export function containerArchiveDir(root: string, r: ArchiveRef): string {
  return join(root, safeComponent(r.namespace), `${safeComponent(r.pod)}_${safeComponent(r.uid)}`, safeComponent(r.container))
}

/** `--pod-log-retention`: a duration (30m, 24h); 0 keeps nothing (no archive). Pure. */
export function parsePodLogRetention(raw: string): number {
  if (raw.trim() === '0') return 0
  const ms = parseDuration(raw.trim())
  if (ms === undefined || ms < 1000) throw new Error(`--pod-log-retention must be a duration of at least 1s such as 30m or 24h, or 0 to keep no logs of deleted pods, not ${JSON.stringify(raw)}`)
  return ms
}

/**
 * Keeps the last `cap` bytes of what is pushed; once something was dropped,
 * the kept part starts at a line boundary (no half line at the top).
 */
export class TailBuffer {
  #cap: number
  #chunks: Buffer[] = []
  #size = 0
  #dropped = false
  /** The kept part begins right after a newline (no half line to cut). */
  #atLine = true

  constructor(cap: number) {
    this.#cap = Math.max(1, cap)
  }

  push(b: Buffer): void {
    if (!b.length) return
    this.#chunks.push(b)
    this.#size += b.length
    // Compact only when well over, so a stream of small frames stays linear.
    if (this.#size > 2 * this.#cap) this.#compact()
  }

  #compact(): void {
    const all = Buffer.concat(this.#chunks)
    if (all.length <= this.#cap) {
      this.#chunks = [all]
      return
    }
    this.#dropped = true
    this.#atLine = all[all.length - this.#cap - 1] === 0x0a
    this.#chunks = [all.subarray(all.length - this.#cap)]
    this.#size = this.#cap
  }

  result(): { data: Buffer; truncated: boolean } {
    this.#compact()
    let data = this.#chunks.length ? this.#chunks[0]! : Buffer.alloc(0)
    if (this.#dropped && !this.#atLine) {
      const nl = data.indexOf(0x0a)
      data = nl >= 0 ? data.subarray(nl + 1) : Buffer.alloc(0)
    }
    return { data, truncated: this.#dropped }
  }
}

/** Unix ms of an archived line's RFC 3339 timestamp (Docker's, nanoseconds), or undefined. Pure. */
function lineTime(line: string): number | undefined {
  const i = line.indexOf(' ')
  const ts = i > 0 ? line.slice(0, i) : line
  if (!/^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(ts)) return undefined
  const ms = Date.parse(ts.replace(/(\.\d{3})\d*Z$/, '$1Z'))
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * An archived log (runs concatenated, oldest first) read with the kubelet's
 * options that apply to a finished container: since (sinceTime/sinceSeconds),
 * tailLines, timestamps (kept or cut), limitBytes. follow and previous do
 * not apply. Pure.
 */
export function filterArchivedLog(text: string, o: Pick<LogOptions, 'since' | 'tailLines' | 'timestamps' | 'limitBytes'>): string {
  let lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  if (o.since !== undefined) {
    const from = o.since * 1000
    lines = lines.filter((l) => (lineTime(l) ?? from) >= from)
  }
  if (o.tailLines !== undefined) lines = o.tailLines === 0 ? [] : lines.slice(-o.tailLines)
  if (!o.timestamps) lines = lines.map((l) => (lineTime(l) !== undefined ? l.slice(l.indexOf(' ') + 1) : l))
  let out = lines.map((l) => `${l}\n`).join('')
  if (o.limitBytes !== undefined) {
    const b = Buffer.from(out)
    if (b.length > o.limitBytes) out = b.subarray(0, o.limitBytes).toString('utf8')
  }
  return out
}

/** The metas of archived runs, one entry per pod UID and container, newest archive first. Pure. */
export function summarizeArchive(metas: readonly ArchiveMeta[]): ArchiveEntry[] {
  const byKey = new Map<string, ArchiveEntry>()
  for (const m of [...metas].sort((a, b) => a.restartCount - b.restartCount)) {
    const key = `${m.namespace}/${m.pod}/${m.uid}/${m.container}`
    const e = byKey.get(key)
    if (!e) {
      byKey.set(key, { namespace: m.namespace, pod: m.pod, uid: m.uid, container: m.container, node: m.node, labels: m.labels, archivedAt: m.archivedAt, size: m.bytes, restartCounts: [m.restartCount] })
      continue
    }
    e.size += m.bytes
    e.restartCounts.push(m.restartCount)
    if (m.archivedAt > e.archivedAt) e.archivedAt = m.archivedAt
    // The newest run's labels (the pod's latest ones), unless it did not know them.
    if (Object.keys(m.labels).length) e.labels = m.labels
  }
  return [...byKey.values()].sort((a, b) => (a.archivedAt < b.archivedAt ? 1 : a.archivedAt > b.archivedAt ? -1 : 0))
}

/** The archived runs older than the retention (by archive time): what a prune removes. Pure. */
export function planPrune<T extends { archivedAtMs: number }>(runs: readonly T[], nowMs: number, retentionMs: number): T[] {
  return runs.filter((r) => nowMs - r.archivedAtMs > retentionMs)
}

/** The kubelet paths of the archive: `/podLogs/` (the list) and `/podLogs/<ns>/<pod>/<uid>/<container>`. Pure. */
export function parsePodLogsPath(pathname: string): { list: true } | { list: false; ref: ArchiveRef } | undefined {
  if (pathname === '/podLogs' || pathname === '/podLogs/') return { list: true }
  if (!pathname.startsWith('/podLogs/')) return undefined
  const parts = pathname.slice('/podLogs/'.length).replace(/\/$/, '').split('/')
  if (parts.length !== 4 || parts.some((p) => p === '')) return undefined
  try {
    const [namespace, pod, uid, container] = parts.map(decodeURIComponent) as [string, string, string, string]
    return { list: false, ref: { namespace, pod, uid, container } }
  } catch {
    return undefined
  }
}

/** A run's meta read back from disk, or undefined when it is not one of ours. Pure. */
export function parseMeta(text: string): ArchiveMeta | undefined {
  let m: any
  try {
    m = JSON.parse(text)
  } catch {
    return undefined
  }
  const str = (v: unknown) => typeof v === 'string' && v !== ''
  if (!m || !str(m.namespace) || !str(m.pod) || !str(m.uid) || !str(m.container) || !str(m.archivedAt) || !Number.isInteger(m.restartCount)) return undefined
  const labels = m.labels && typeof m.labels === 'object' && !Array.isArray(m.labels) ? Object.fromEntries(Object.entries(m.labels).filter(([, v]) => typeof v === 'string')) as Record<string, string> : {}
  return { ...m, node: String(m.node ?? ''), labels, bytes: Number(m.bytes) || 0, truncated: !!m.truncated }
}
