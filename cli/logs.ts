// `skiff logs`: the logs of many pods and containers at once, as stern does
// for Kubernetes. A query names the pods (a regular expression on pod names,
// or TYPE/NAME of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or
// Service, whose selector is used, or -l); every matching container of every
// matching pod is read through pods/log, each pod in its own colour. With -f
// it follows: pods that appear are picked up from a watch, pods that go are
// dropped, and a container that restarts is read again from the instant the
// last line had (pods/log's sinceTime; lines at or before it are not printed
// twice).
//
// The pure parts (query, selector, line format, colours, the resume point)
// are table-tested in test/unit/cli-logs.test.ts; the effectful part is
// runLogs().

import { lookupResource, type ResourceInfo } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { labelSelectorFromObject, matchesLabels, parseLabelSelector, selectorToString } from '../controlplane/api/selectors.ts'
import { parseDuration } from '../controlplane/api/validation/skiff.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'

const podsInfo = lookupResource('', 'v1', 'pods')!

/** TYPE/NAME queries: the object whose selector picks the pods. */
const owners: Record<string, ResourceInfo> = {}
for (const [names, group, resource] of [
  [['deploy', 'deployment', 'deployments'], 'apps', 'deployments'],
  [['sts', 'statefulset', 'statefulsets'], 'apps', 'statefulsets'],
  [['ds', 'daemonset', 'daemonsets'], 'apps', 'daemonsets'],
  [['rs', 'replicaset', 'replicasets'], 'apps', 'replicasets'],
  [['job', 'jobs'], 'batch', 'jobs'],
  [['svc', 'service', 'services'], '', 'services'],
] as const) {
  const info = lookupResource(group, 'v1', resource)!
  for (const n of names) owners[n] = info
}

export type PodQuery =
  | { kind: 'regex'; regex: RegExp }
  | { kind: 'pod'; name: string }
  | { kind: 'owner'; info: ResourceInfo; name: string }
  | { kind: 'all' }

/** The positional query: pod/NAME, TYPE/NAME, or a regular expression on pod names ('' or absent: every pod). */
export function parsePodQuery(q: string | undefined): PodQuery {
  if (!q) return { kind: 'all' }
  const slash = /^([a-z]+)\/(.+)$/.exec(q)
  if (slash) {
    const [, type, name] = slash as unknown as [string, string, string]
    if (type === 'pod' || type === 'po' || type === 'pods') return { kind: 'pod', name }
    const info = owners[type]
    if (info) return { kind: 'owner', info, name }
    throw new Error(`${JSON.stringify(type)} is not a type skiff logs can follow; use pod/, deploy/, sts/, ds/, rs/, job/ or svc/ (or a regular expression on pod names)`)
  }
  try {
    return { kind: 'regex', regex: new RegExp(q) }
  } catch (e) {
    throw new Error(`the pod query ${JSON.stringify(q)} is not a regular expression: ${(e as Error).message}`)
  }
}

/** The label selector of a workload or Service, as text for a list (Services: spec.selector is a plain map). */
export function ownerSelector(obj: KubeObject): string {
  if (obj.kind === 'Service') {
    const sel = obj.spec?.selector as Record<string, string> | undefined
    if (!sel || !Object.keys(sel).length) throw new Error(`service ${obj.metadata.name} has no selector: its endpoints are written by hand, there are no pods to read`)
    return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',')
  }
  const sel = obj.spec?.selector
  if (!sel) throw new Error(`${obj.kind} ${obj.metadata.name} has no selector`)
  return selectorToString(labelSelectorFromObject(sel))
}

export interface ContainerRef {
  namespace: string
  pod: string
  container: string
  /** Init and ephemeral containers are read too, as stern does. */
  init?: boolean
}

/** The containers of `pod` whose names match `container` (a regular expression; every one when absent). */
export function podContainers(pod: KubeObject, container?: RegExp): ContainerRef[] {
  const base = { namespace: pod.metadata.namespace!, pod: pod.metadata.name! }
  const all: ContainerRef[] = [
    ...((pod.spec?.initContainers ?? []) as Array<{ name: string }>).map((c) => ({ ...base, container: c.name, init: true })),
    ...((pod.spec?.containers ?? []) as Array<{ name: string }>).map((c) => ({ ...base, container: c.name })),
  ]
  return container ? all.filter((c) => container.test(c.container)) : all
}

/** Whether a container has started at least once (pods/log answers 400 before that). */
export function containerStarted(pod: KubeObject, name: string): boolean {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])] as any[]
  const s = statuses.find((x) => x?.name === name)
  return !!s && (!!s.state?.running || !!s.state?.terminated || !!s.lastState?.terminated)
}

/** The container's restart count (a restart means: read again from where the last line was). */
export function restartCount(pod: KubeObject, name: string): number {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])] as any[]
  return Number(statuses.find((x) => x?.name === name)?.restartCount ?? 0)
}

// 256-colour palette entries that read on dark and light terminals (stern uses a similar set).
const palette = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96]

/** A stable colour per pod (the same pod gets the same colour in every run) and a lighter one for its containers. */
export function podColour(pod: string): number {
  let h = 2166136261
  for (let i = 0; i < pod.length; i++) h = Math.imul(h ^ pod.charCodeAt(i), 16777619)
  return palette[(h >>> 0) % palette.length]!
}

export interface FormatOptions {
  output: 'default' | 'raw' | 'json'
  timestamps: boolean
  colour: boolean
  allNamespaces: boolean
}

/** Splits a pods/log line read with timestamps=true into its RFC 3339 time and the message. */
export function splitTimestamp(line: string): { ts?: string; message: string } {
  const i = line.indexOf(' ')
  if (i > 0 && /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$/.test(line.slice(0, i))) return { ts: line.slice(0, i), message: line.slice(i + 1) }
  return { message: line }
}

/** One output line: `pod container message` (with the namespace first under -A), raw, or stern's JSON. */
export function formatLine(ref: ContainerRef, line: { ts?: string; message: string }, o: FormatOptions, node?: string): string {
  if (o.output === 'json') {
    return JSON.stringify({ message: line.message, nodeName: node ?? '', namespace: ref.namespace, podName: ref.pod, containerName: ref.container, ...(o.timestamps && line.ts ? { timestamp: line.ts } : {}) })
  }
  const text = o.timestamps && line.ts ? `${line.ts} ${line.message}` : line.message
  if (o.output === 'raw') return text
  const c = podColour(`${ref.namespace}/${ref.pod}`)
  const paint = (code: number, s: string) => (o.colour ? `\u001b[${code}m${s}\u001b[0m` : s)
  const ns = o.allNamespaces ? `${paint(c, ref.namespace)} ` : ''
  return `${ns}${paint(c, ref.pod)} ${paint(c === 31 ? 91 : c, ref.container)} ${text}`
}

/** stern's "+ pod › container" when a container's log is picked up and "- …" when it is dropped (stderr). */
export function tailNotice(sign: '+' | '-', ref: ContainerRef, allNamespaces: boolean): string {
  return `${sign} ${allNamespaces ? `${ref.namespace}/` : ''}${ref.pod} › ${ref.container}`
}

/**
 * The resume point after a followed stream ended (a restart, a dropped
 * connection): sinceTime is whole seconds on the way to the Engine, so the
 * lines of the last second come again; those at or before the last printed
 * timestamp are skipped.
 */
export function isRepeat(ts: string | undefined, last: string | undefined): boolean {
  if (!ts || !last) return false
  return compareRfc3339(ts, last) <= 0
}

/** Compares two RFC 3339 UTC times with up to nanosecond fractions (Date.parse keeps only milliseconds). */
export function compareRfc3339(a: string, b: string): number {
  const norm = (s: string) => {
    const m = /^(.*?)(?:\.(\d+))?Z$/.exec(s)
    if (!m) return { ms: Date.parse(s), frac: '' }
    return { ms: Date.parse(`${m[1]}Z`), frac: (m[2] ?? '').padEnd(9, '0') }
  }
  const x = norm(a)
  const y = norm(b)
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1
  return x.frac < y.frac ? -1 : x.frac > y.frac ? 1 : 0
}

export interface LogsOptions {
  query?: string
  selector?: string
  namespace: string
  allNamespaces?: boolean
  container?: string
  follow?: boolean
  since?: string
  tail?: number
  timestamps?: boolean
  output?: 'default' | 'raw' | 'json'
  colour?: boolean
  /** Stop following after this long (tests; a user presses Ctrl-C). */
  forMs?: number
  /** Also the logs of deleted and replaced pods the nodes keep (logs-archive.ts), printed first. */
  previousPods?: boolean
}

/** Validates the options into what runLogs needs; errors name the flag. */
export function planLogs(o: LogsOptions): { query: PodQuery; container?: RegExp; sinceSeconds?: number; selector?: string } {
  const query = parsePodQuery(o.query)
  if (o.selector !== undefined) {
    try {
      parseLabelSelector(o.selector)
    } catch (e) {
      throw new Error(`-l ${JSON.stringify(o.selector)}: ${(e as Error).message}`)
    }
    if (query.kind === 'owner' || query.kind === 'pod') throw new Error(`-l cannot be combined with ${o.query}: the query already says which pods`)
  }
  let container: RegExp | undefined
  if (o.container !== undefined) {
    try {
      container = new RegExp(o.container)
    } catch (e) {
      throw new Error(`-c ${JSON.stringify(o.container)} is not a regular expression: ${(e as Error).message}`)
    }
  }
  let sinceSeconds: number | undefined
  if (o.since !== undefined) {
    const ms = parseDuration(o.since)
    if (ms === undefined || ms <= 0) throw new Error(`--since ${JSON.stringify(o.since)} is not a duration such as 30s, 10m or 1h`)
    sinceSeconds = Math.max(1, Math.ceil(ms / 1000))
  }
  if (o.tail !== undefined && (!Number.isInteger(o.tail) || o.tail < -1)) throw new Error(`--tail must be a whole number of lines, or -1 for all, not ${o.tail}`)
  return { query, container, sinceSeconds, selector: o.selector }
}

interface Tail {
  ref: ContainerRef
  stop(): void
  /** The pod's latest state arrived (restart counts, deletion). */
  update(pod: KubeObject): void
  done: Promise<void>
}

/**
 * Prints the logs of every matching container. Without follow it reads each
 * once and returns; with follow it runs until forMs or stop.
 */
export async function runLogs(client: ApiClient, o: LogsOptions, write: (line: string) => void, notice: (line: string) => void = () => {}): Promise<void> {
  const plan = planLogs(o)
  const fmt: FormatOptions = { output: o.output ?? 'default', timestamps: !!o.timestamps, colour: !!o.colour, allNamespaces: !!o.allNamespaces }
  const ns = o.allNamespaces ? undefined : o.namespace
  let selector = plan.selector
  if (plan.query.kind === 'owner') {
    if (!ns) throw new Error(`${o.query} names one object: give its namespace with -n, not -A`)
    const owner = await client.get(plan.query.info, ns, plan.query.name).catch((e) => {
      if (e instanceof ApiClientError && e.status === 404) throw new Error(`${o.query} not found in namespace ${ns}`)
      throw e
    })
    selector = ownerSelector(owner)
  }
  const wants = (p: KubeObject) => {
    if (plan.query.kind === 'pod') return p.metadata.name === plan.query.name
    if (plan.query.kind === 'regex') return plan.query.regex.test(p.metadata.name!)
    return true
  }
  const listed = await client.list(podsInfo, ns, selector ? { labelSelector: selector } : {})
  const pods = listed.items.filter(wants)
  if (plan.query.kind === 'pod' && !pods.length && !o.previousPods) throw new Error(`pod ${plan.query.name} not found in namespace ${ns}`)
  if (o.previousPods) {
    const { printArchivedLogs } = await import('./logs-archive.ts')
    const livePods = new Set(listed.items.map((p) => p.metadata.uid!))
    await printArchivedLogs(client, { query: plan.query, selector, container: plan.container, livePods, namespace: ns, tail: o.tail, sinceSeconds: plan.sinceSeconds, fmt }, write, notice)
  }

  const tails = new Map<string, Tail>()
  const keyOf = (r: ContainerRef) => `${r.namespace}/${r.pod}/${r.container}`
  const start = (pod: KubeObject) => {
    for (const ref of podContainers(pod, plan.container)) {
      const key = keyOf(ref)
      const existing = tails.get(key)
      if (existing) {
        existing.update(pod)
        continue
      }
      if (!containerStarted(pod, ref.container)) continue
      const t = tailContainer(client, ref, pod, { ...plan, follow: !!o.follow, tail: o.tail, fmt }, write, notice)
      tails.set(key, t)
      void t.done.then(() => {
        if (tails.get(key) === t) tails.delete(key)
      })
    }
  }
  for (const p of pods) start(p)
  if (!o.follow) {
    await Promise.all([...tails.values()].map((t) => t.done))
    return
  }

  // Follow: new pods start tails, deleted pods end theirs, restarts resume.
  let stopped = false
  let watch: { stop(): void } | undefined
  let rv: string | undefined = listed.metadata?.resourceVersion
  const parsedSelector = selector ? parseLabelSelector(selector) : undefined // once, not per watch event
  const onPod = (type: string, pod: KubeObject) => {
    if (!wants(pod) || (parsedSelector && !matchesLabels(parsedSelector, pod.metadata.labels))) return
    if (type === 'DELETED') {
      for (const [key, t] of tails) if (key.startsWith(`${pod.metadata.namespace}/${pod.metadata.name}/`)) t.update({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: pod.metadata.deletionTimestamp ?? new Date().toISOString() } })
      return
    }
    start(pod)
  }
  const path = ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods'
  const rewatch = () => {
    if (stopped) return
    watch = client.watch(path, { resourceVersion: rv, allowWatchBookmarks: 'true', ...(selector ? { labelSelector: selector } : {}) }, (ev) => {
      if (ev.type === 'ERROR') {
        rv = undefined // 410: start over from a fresh list
        return
      }
      rv = ev.object?.metadata?.resourceVersion ?? rv
      if (ev.type !== 'BOOKMARK') onPod(ev.type, ev.object as KubeObject)
    }, () => {
      if (stopped) return
      setTimeout(async () => {
        if (stopped) return
        if (!rv) {
          const again = await client.list(podsInfo, ns, selector ? { labelSelector: selector } : {}).catch(() => undefined)
          if (again) {
            rv = again.metadata?.resourceVersion
            for (const p of again.items) onPod('ADDED', p)
          }
        }
        rewatch()
      }, 500)
    })
  }
  rewatch()
  await new Promise<void>((resolve) => {
    const finish = () => {
      stopped = true
      watch?.stop()
      for (const t of tails.values()) t.stop()
      resolve()
    }
    if (o.forMs !== undefined) setTimeout(finish, o.forMs)
    process.once('SIGINT', finish)
    process.once('SIGTERM', finish)
  })
}

/** Reads one container's log; when following, again after each restart, until its pod goes or stop(). */
function tailContainer(
  client: ApiClient,
  ref: ContainerRef,
  pod: KubeObject,
  o: { follow: boolean; tail?: number; sinceSeconds?: number; fmt: FormatOptions },
  write: (line: string) => void,
  notice: (line: string) => void,
): Tail {
  let stream: { stop(): void } | undefined
  let stopped = false
  let last: string | undefined
  let restarts = restartCount(pod, ref.container)
  let gone = !!pod.metadata.deletionTimestamp
  let wake: (() => void) | undefined
  const node = pod.spec?.nodeName as string | undefined
  const path = `/api/v1/namespaces/${ref.namespace}/pods/${ref.pod}/log`
  const readOnce = (first: boolean) =>
    new Promise<void>((resolve) => {
      const query: Record<string, string | undefined> = { container: ref.container, timestamps: 'true', follow: o.follow ? 'true' : undefined }
      if (first) {
        if (o.tail !== undefined && o.tail >= 0) query.tailLines = String(o.tail)
        if (o.sinceSeconds !== undefined) query.sinceSeconds = String(o.sinceSeconds)
      } else if (last) query.sinceTime = last
      stream = client.streamLines(path, query, (raw) => {
        const line = splitTimestamp(raw)
        if (isRepeat(line.ts, last)) return
        if (line.ts) last = line.ts
        write(formatLine(ref, line, o.fmt, node))
      }, (err) => {
        if (err && !stopped && !(err instanceof ApiClientError && (err.status === 404 || err.status === 400))) notice(`! ${ref.pod} › ${ref.container}: ${err.message}`)
        resolve()
      })
    })
  const done = (async () => {
    if (o.follow) notice(tailNotice('+', ref, o.fmt.allNamespaces))
    await readOnce(true)
    while (o.follow && !stopped && !gone) {
      // The stream ended: the container stopped (it may restart) or the connection dropped. Wait for news of the pod.
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, 2_000)
      })
      wake = undefined
      if (stopped || gone) break
      await readOnce(false)
    }
    if (o.follow) notice(tailNotice('-', ref, o.fmt.allNamespaces))
  })()
  return {
    ref,
    done,
    stop() {
      stopped = true
      stream?.stop()
      wake?.()
    },
    update(p: KubeObject) {
      if (p.metadata.deletionTimestamp) {
        gone = true
        // Let the last lines of a terminating container arrive; the stream ends when its container does.
        setTimeout(() => stream?.stop(), 10_000).unref()
      }
      const n = restartCount(p, ref.container)
      if (n !== restarts) {
        restarts = n
        wake?.()
      }
    },
  }
}
