// The dashboard's pure logic, shared by the browser (app.ts) and the unit
// tests (test/unit/dashboard-model.test.ts): node rows, the problems list,
// the traffic map's chain (ingress nodes -> Ingress/HTTPRoute -> Service ->
// endpoints -> pods on nodes) with rates, pods selected by an object, events
// of an object, and YAML for display. No DOM, and only type imports (erased
// when the server strips the types), so it runs unchanged in both places.

export interface Obj {
  apiVersion?: string
  kind?: string
  metadata: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; deletionTimestamp?: string; resourceVersion?: string; ownerReferences?: Array<{ kind: string; name: string; uid?: string }> }
  spec?: any
  status?: any
  [k: string]: any
}

import type { TrafficRates } from '../traffic.ts'

export interface Rate {
  rps: number
  errorRps: number
}

/** What /dashboard/api/traffic answers. */
export type Traffic = TrafficRates

export const ingressPoolLabel = 'skiff.dev/ingress-pool'

export const idOf = (o: Obj): string => `${o.kind ?? ''}/${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`

export function isNodeReady(n: Obj): boolean {
  return (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
}

export function isPodReady(p: Obj): boolean {
  return (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
}

export function restartsOf(p: Obj): number {
  return (p.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0)
}

/** kubectl's STATUS column, in short: the waiting or terminated reason of a container, else the phase. */
export function podStatus(p: Obj): string {
  if (p.metadata.deletionTimestamp) return 'Terminating'
  for (const c of p.status?.containerStatuses ?? []) {
    if (c.state?.waiting?.reason) return c.state.waiting.reason
    if (c.state?.terminated?.reason && p.status?.phase === 'Running') return c.state.terminated.reason
  }
  return p.status?.phase ?? 'Pending'
}

export interface NodeRow {
  name: string
  ready: boolean
  pool: string
  internalIP: string
  externalIP: string
  pods: number
  cpu: string
  memory: string
  unschedulable: boolean
}

/** CPU of a metrics.k8s.io usage ('123456789n', '250m', '1') as millicores. */
export function milliCores(q: string | undefined): number | undefined {
  if (!q) return undefined
  const m = /^(\d+(?:\.\d+)?)(n|u|m)?$/.exec(q)
  if (!m) return undefined
  const v = Number(m[1])
  return Math.round(m[2] === 'n' ? v / 1e6 : m[2] === 'u' ? v / 1e3 : m[2] === 'm' ? v : v * 1000)
}

/** Memory of a usage ('123456Ki', '12Mi', bytes) in MiB. */
export function mebibytes(q: string | undefined): number | undefined {
  if (!q) return undefined
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(q)
  if (!m) return undefined
  const mult: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }
  return Math.round((Number(m[1]) * (m[2] ? mult[m[2]]! : 1)) / 1024 ** 2)
}

export function nodeRows(nodes: Obj[], pods: Obj[], usage: Obj[]): NodeRow[] {
  const count = new Map<string, number>()
  for (const p of pods) if (p.spec?.nodeName && !['Succeeded', 'Failed'].includes(p.status?.phase)) count.set(p.spec.nodeName, (count.get(p.spec.nodeName) ?? 0) + 1)
  const use = new Map(usage.map((u) => [u.metadata.name, u]))
  return nodes
    .map((n) => {
      const addr = (t: string) => (n.status?.addresses ?? []).find((a: any) => a.type === t)?.address ?? ''
      const u = use.get(n.metadata.name)
      const cpu = milliCores(u?.usage?.cpu)
      const mem = mebibytes(u?.usage?.memory)
      return {
        name: n.metadata.name ?? '',
        ready: isNodeReady(n),
        pool: n.metadata.labels?.[ingressPoolLabel] ?? '',
        internalIP: addr('InternalIP'),
        externalIP: addr('ExternalIP'),
        pods: count.get(n.metadata.name ?? '') ?? 0,
        cpu: cpu === undefined ? '' : `${cpu}m`,
        memory: mem === undefined ? '' : `${mem}Mi`,
        unschedulable: Boolean(n.spec?.unschedulable),
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

export interface Problem {
  severity: 'error' | 'warning'
  what: string
  namespace: string
  name: string
  /** The object the problem is about, as kind/namespace/name. */
  target: string
  text: string
  at: string
}

const eventTime = (e: Obj): string => e.lastTimestamp ?? e.series?.lastObservedTime ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? ''

/** Problems first: NotReady nodes, pods not Ready (beyond a short start-up), restarting pods, then Warning events, newest first. */
export function problems(nodes: Obj[], pods: Obj[], events: Obj[], now: number, startupGraceMs = 30_000): Problem[] {
  const out: Problem[] = []
  for (const n of nodes) {
    if (!isNodeReady(n)) out.push({ severity: 'error', what: 'Node', namespace: '', name: n.metadata.name ?? '', target: idOf({ ...n, kind: 'Node' }), text: 'NotReady', at: '' })
  }
  for (const p of pods) {
    if (p.metadata.deletionTimestamp || ['Succeeded'].includes(p.status?.phase)) continue
    const age = now - Date.parse(p.metadata.creationTimestamp ?? '')
    const restarts = restartsOf(p)
    const status = podStatus(p)
    const target = idOf({ ...p, kind: 'Pod' })
    if (!isPodReady(p) && (age > startupGraceMs || p.status?.phase === 'Failed' || /BackOff|Err|Invalid/.test(status))) {
      out.push({ severity: 'error', what: 'Pod', namespace: p.metadata.namespace ?? '', name: p.metadata.name ?? '', target, text: `not Ready: ${status}${restarts ? `, ${restarts} restarts` : ''}`, at: '' })
    } else if (restarts > 0) {
      out.push({ severity: 'warning', what: 'Pod', namespace: p.metadata.namespace ?? '', name: p.metadata.name ?? '', target, text: `${restarts} restart${restarts === 1 ? '' : 's'}`, at: '' })
    }
  }
  const warnings = events.filter((e) => e.type === 'Warning').sort((a, b) => eventTime(b).localeCompare(eventTime(a)))
  for (const e of warnings.slice(0, 50)) {
    const io = e.involvedObject ?? e.regarding ?? {}
    out.push({
      severity: 'warning', what: 'Event', namespace: io.namespace ?? e.metadata.namespace ?? '', name: io.name ?? '', target: `${io.kind ?? ''}/${io.namespace ?? ''}/${io.name ?? ''}`,
      text: `${e.reason ?? ''}: ${e.message ?? e.note ?? ''}${(e.count ?? e.series?.count ?? 1) > 1 ? ` (x${e.count ?? e.series?.count})` : ''}`, at: eventTime(e),
    })
  }
  return out
}

/** Events about an object, newest first. */
export function eventsOf(o: Obj, events: Obj[]): Obj[] {
  return events
    .filter((e) => {
      const io = e.involvedObject ?? e.regarding ?? {}
      if (io.uid && o.metadata.uid) return io.uid === o.metadata.uid
      return io.kind === o.kind && io.name === o.metadata.name && (io.namespace ?? '') === (o.metadata.namespace ?? '')
    })
    .sort((a, b) => eventTime(b).localeCompare(eventTime(a)))
}

/** matchLabels and matchExpressions of a LabelSelector, or a Service's plain map. */
export function matchesSelector(labels: Record<string, string> | undefined, sel: any): boolean {
  if (!sel) return false
  const l = labels ?? {}
  const plain = sel.matchLabels === undefined && sel.matchExpressions === undefined
  const matchLabels: Record<string, string> = plain ? sel : (sel.matchLabels ?? {})
  if (plain && Object.keys(matchLabels).length === 0) return false
  for (const [k, v] of Object.entries(matchLabels)) if (l[k] !== v) return false
  for (const e of plain ? [] : (sel.matchExpressions ?? [])) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key)
    if (e.operator === 'In' && !(has && e.values.includes(l[e.key]))) return false
    if (e.operator === 'NotIn' && has && e.values.includes(l[e.key])) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

/** The pods an object stands for: a pod itself, or those its selector picks in its namespace. */
export function podsOf(o: Obj, pods: Obj[]): Obj[] {
  if (o.kind === 'Pod') return [o]
  if (o.kind === 'Node') return pods.filter((p) => p.spec?.nodeName === o.metadata.name)
  const sel = o.spec?.selector
  if (!sel) return []
  return pods.filter((p) => p.metadata.namespace === o.metadata.namespace && matchesSelector(p.metadata.labels, sel)).sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
}

/** An archived container log of a deleted or replaced pod, as a node's kubelet lists it (GET nodes/NODE/proxy/podLogs/). */
export interface ArchivedLog {
  namespace: string
  pod: string
  uid: string
  container: string
  node: string
  labels: Record<string, string>
  archivedAt: string
  size: number
}

/** The archived logs that belong to an object: its own (a pod by name) or its selector's pods that no longer exist; newest first. */
export function archivedLogsOf(o: Obj, archived: ArchivedLog[], livePods: Obj[]): ArchivedLog[] {
  const live = new Set(livePods.map((p) => p.metadata.uid))
  const mine = archived.filter((a) => {
    if (a.namespace !== (o.metadata.namespace ?? '') || live.has(a.uid)) return false
    if (o.kind === 'Pod') return a.pod === o.metadata.name
    if (o.kind === 'Node') return a.node === o.metadata.name
    return Boolean(o.spec?.selector) && matchesSelector(a.labels, o.spec.selector)
  })
  return mine.sort((a, b) => b.archivedAt.localeCompare(a.archivedAt) || a.pod.localeCompare(b.pod))
}

// --- the traffic map ---

export interface MapNode {
  id: string
  column: 'ingress' | 'route' | 'service' | 'pod'
  label: string
  sub: string
  /** kind/namespace/name of the object to open, where there is one. */
  target?: string
  rate?: Rate
  ok: boolean
}

export interface TrafficMap {
  nodes: MapNode[]
  edges: Array<{ from: string; to: string }>
}

function ingressClassOf(ing: Obj): string {
  return ing.spec?.ingressClassName ?? ing.metadata.annotations?.['kubernetes.io/ingress.class'] ?? ''
}

function addRate(a: Rate | undefined, b: Rate | undefined): Rate | undefined {
  if (!b) return a
  return { rps: (a?.rps ?? 0) + b.rps, errorRps: (a?.errorRps ?? 0) + b.errorRps }
}

/** Backend Service names of an Ingress (defaultBackend and every path). */
function ingressBackends(ing: Obj): string[] {
  const out = new Set<string>()
  const add = (b: any) => b?.service?.name && out.add(b.service.name)
  add(ing.spec?.defaultBackend)
  for (const r of ing.spec?.rules ?? []) for (const p of r.http?.paths ?? []) add(p.backend)
  return [...out]
}

/** Backend Services of an HTTPRoute as namespace/name (cross-namespace ones included; ReferenceGrant decides whether they serve). */
function routeBackends(r: Obj): Array<{ namespace: string; name: string }> {
  const out = new Map<string, { namespace: string; name: string }>()
  for (const rule of r.spec?.rules ?? []) {
    for (const b of rule.backendRefs ?? []) {
      if ((b.kind ?? 'Service') !== 'Service' || (b.group ?? '') !== '') continue
      const namespace = b.namespace ?? r.metadata.namespace ?? ''
      out.set(`${namespace}/${b.name}`, { namespace, name: b.name })
    }
  }
  return [...out.values()]
}

export interface MapInput {
  nodes: Obj[]
  ingresses: Obj[]
  httproutes: Obj[]
  gateways: Obj[]
  services: Obj[]
  endpointslices: Obj[]
  pods: Obj[]
  traffic?: Traffic
}

/**
 * The chain users follow from the edge to the pods: each ingress pool's nodes
 * feed the routes of their class (an Ingress by ingressClassName, an
 * HTTPRoute through its parent Gateways' gatewayClassName), each route its
 * backend Services, each Service the pods behind its ready endpoints.
 * Rates: a route has its hostnames' rates (an Ingress without hosts, the
 * class's '-' and unmatched ones are left out), a pod the rate of its
 * endpoint addresses. Services only on a route's way are shown; pods only
 * behind a shown Service.
 */
export function trafficMap(input: MapInput): TrafficMap {
  const nodes: MapNode[] = []
  const edges: TrafficMap['edges'] = []
  const hostRate = new Map((input.traffic?.hosts ?? []).map((h) => [`${h.class} ${h.host}`, h]))
  const ipRate = new Map<string, Rate>()
  for (const u of input.traffic?.upstreams ?? []) {
    const ip = u.upstream.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
    ipRate.set(ip, addRate(ipRate.get(ip), u)!)
  }

  const pools = new Map<string, Obj[]>()
  for (const n of input.nodes) {
    const pool = n.metadata.labels?.[ingressPoolLabel]
    if (pool) pools.set(pool, [...(pools.get(pool) ?? []), n])
  }
  for (const [pool, members] of [...pools].sort(([a], [b]) => a.localeCompare(b))) {
    for (const n of members.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))) {
      const ext = (n.status?.addresses ?? []).find((a: any) => a.type === 'ExternalIP')?.address
      const int = (n.status?.addresses ?? []).find((a: any) => a.type === 'InternalIP')?.address
      nodes.push({ id: `ingress/${n.metadata.name}`, column: 'ingress', label: n.metadata.name ?? '', sub: `${pool} · ${ext ?? int ?? ''}`, target: `Node//${n.metadata.name}`, ok: isNodeReady(n) })
    }
  }
  const poolNodes = (cls: string) => (pools.get(cls) ?? []).map((n) => `ingress/${n.metadata.name}`)

  const services = new Map(input.services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]))
  const wantedServices = new Set<string>()
  const routeEdge = (routeId: string, classes: Iterable<string>, backends: Array<{ namespace: string; name: string }>) => {
    for (const cls of classes) for (const from of poolNodes(cls)) edges.push({ from, to: routeId })
    for (const b of backends) {
      const key = `${b.namespace}/${b.name}`
      wantedServices.add(key)
      edges.push({ from: routeId, to: `service/${key}` })
    }
  }

  for (const ing of [...input.ingresses].sort((a, b) => idOf(a).localeCompare(idOf(b)))) {
    const cls = ingressClassOf(ing)
    const hosts = [...new Set((ing.spec?.rules ?? []).map((r: any) => r.host).filter(Boolean))] as string[]
    let rate: Rate | undefined
    for (const h of hosts) rate = addRate(rate, hostRate.get(`${cls} ${h}`))
    const id = `route/Ingress/${ing.metadata.namespace}/${ing.metadata.name}`
    nodes.push({ id, column: 'route', label: `Ingress ${ing.metadata.namespace}/${ing.metadata.name}`, sub: `${cls || 'no class'} · ${hosts.join(', ') || '*'}`, target: `Ingress/${ing.metadata.namespace}/${ing.metadata.name}`, rate, ok: true })
    routeEdge(id, [cls], ingressBackends(ing).map((name) => ({ namespace: ing.metadata.namespace ?? '', name })))
  }

  const gateways = new Map(input.gateways.map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]))
  for (const r of [...input.httproutes].sort((a, b) => idOf(a).localeCompare(idOf(b)))) {
    const classes = new Set<string>()
    for (const p of r.spec?.parentRefs ?? []) {
      if ((p.kind ?? 'Gateway') !== 'Gateway') continue
      const g = gateways.get(`${p.namespace ?? r.metadata.namespace}/${p.name}`)
      if (g?.spec?.gatewayClassName) classes.add(g.spec.gatewayClassName)
    }
    const hosts = (r.spec?.hostnames ?? []) as string[]
    let rate: Rate | undefined
    for (const cls of classes) for (const h of hosts) rate = addRate(rate, hostRate.get(`${cls} ${h}`))
    const id = `route/HTTPRoute/${r.metadata.namespace}/${r.metadata.name}`
    const accepted = (r.status?.parents ?? []).every((p: any) => (p.conditions ?? []).every((c: any) => c.type !== 'Accepted' || c.status === 'True'))
    nodes.push({ id, column: 'route', label: `HTTPRoute ${r.metadata.namespace}/${r.metadata.name}`, sub: `${[...classes].join(', ') || 'no gateway'} · ${hosts.join(', ') || '*'}`, target: `HTTPRoute/${r.metadata.namespace}/${r.metadata.name}`, rate, ok: accepted })
    routeEdge(id, classes, routeBackends(r))
  }

  const podsByName = new Map(input.pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]))
  const shownPods = new Map<string, MapNode>()
  for (const key of [...wantedServices].sort()) {
    const svc = services.get(key)
    const [namespace, name] = key.split('/') as [string, string]
    const id = `service/${key}`
    nodes.push({
      id, column: 'service', label: `Service ${key}`, sub: svc ? `${svc.spec?.type ?? 'ClusterIP'} · ${svc.spec?.clusterIP ?? ''}` : 'missing', target: `Service/${namespace}/${name}`, ok: Boolean(svc),
    })
    for (const slice of input.endpointslices) {
      if (slice.metadata.namespace !== namespace || slice.metadata.labels?.['kubernetes.io/service-name'] !== name) continue
      for (const ep of slice.endpoints ?? []) {
        const ref = ep.targetRef
        const ip = (ep.addresses ?? [])[0] ?? ''
        const pod = ref?.kind === 'Pod' ? podsByName.get(`${ref.namespace ?? namespace}/${ref.name}`) : undefined
        const podId = pod ? `pod/${pod.metadata.namespace}/${pod.metadata.name}` : `pod/ip/${ip}`
        if (!shownPods.has(podId)) {
          const rate = (ep.addresses ?? []).reduce((r: Rate | undefined, a: string) => addRate(r, ipRate.get(a)), undefined)
          shownPods.set(podId, {
            id: podId, column: 'pod', label: pod ? `${pod.metadata.namespace}/${pod.metadata.name}` : ip, sub: `${ip}${pod?.spec?.nodeName ? ` · ${pod.spec.nodeName}` : ep.nodeName ? ` · ${ep.nodeName}` : ''}`,
            target: pod ? `Pod/${pod.metadata.namespace}/${pod.metadata.name}` : undefined, rate, ok: ep.conditions?.ready !== false,
          })
        }
        edges.push({ from: id, to: podId })
      }
    }
  }
  nodes.push(...[...shownPods.values()].sort((a, b) => a.label.localeCompare(b.label)))
  const ids = new Set(nodes.map((n) => n.id))
  const seen = new Set<string>()
  return {
    nodes,
    edges: edges.filter((e) => {
      const k = `${e.from} ${e.to}`
      if (seen.has(k) || !ids.has(e.from) || !ids.has(e.to)) return false
      seen.add(k)
      return true
    }),
  }
}

// --- YAML for display ---

const plainScalar = /^[A-Za-z_./][\w./-]*$/
const reserved = /^(true|false|yes|no|on|off|null|~|y|n)$/i

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  const s = String(v)
  if (s !== '' && plainScalar.test(s) && !reserved.test(s)) return s
  return JSON.stringify(s)
}

/** A YAML rendering of JSON data for reading (block style, strings quoted when they could be misread); every JSON value round-trips. */
export function toYaml(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]'
    return v.map((x) => {
      const inner = toYaml(x, `${indent}  `)
      return `${indent}- ${(x !== null && typeof x === 'object' && !(Array.isArray(x) && x.length === 0) && Object.keys(x).length > 0) ? inner.trimStart() : inner}`
    }).join('\n')
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
    if (entries.length === 0) return '{}'
    return entries.map(([k, x]) => {
      const key = `${indent}${scalar(k)}:`
      if (x !== null && typeof x === 'object' && Object.keys(x).length > 0) return `${key}\n${toYaml(x, Array.isArray(x) ? indent : `${indent}  `)}`
      return `${key} ${toYaml(x, `${indent}  `)}`
    }).join('\n')
  }
  return scalar(v)
}
