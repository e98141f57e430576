// The dashboard in the browser: a token login, then list+watch informers on
// the Kubernetes API with that token (so it shows what the identity may read:
// a kind it may not list is shown as "no access", never guessed), and three
// views re-rendered from the informers' caches as events arrive, with no page
// reload: the cluster at a glance (#/), the traffic map (#/map), and one
// object (#/obj/KIND/NAMESPACE/NAME) with its YAML, events, pods' logs
// (followed) and, for Services and Ingresses, "applied on n/n nodes".
// The pure parts live in model.ts.

import { archivedLogsOf, eventsOf, idOf, isNodeReady, isPodReady, nodeRows, podStatus, podsOf, problems, restartsOf, toYaml, trafficMap, type ArchivedLog, type Obj, type Traffic } from './model.ts'

interface Kind {
  kind: string
  /** The collection path without a namespace: /api/v1/pods. */
  path: string
  namespaced: boolean
}

const kinds: Record<string, Kind> = {
  Node: { kind: 'Node', path: '/api/v1/nodes', namespaced: false },
  Namespace: { kind: 'Namespace', path: '/api/v1/namespaces', namespaced: false },
  Pod: { kind: 'Pod', path: '/api/v1/pods', namespaced: true },
  Service: { kind: 'Service', path: '/api/v1/services', namespaced: true },
  EndpointSlice: { kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices', namespaced: true },
  Deployment: { kind: 'Deployment', path: '/apis/apps/v1/deployments', namespaced: true },
  StatefulSet: { kind: 'StatefulSet', path: '/apis/apps/v1/statefulsets', namespaced: true },
  DaemonSet: { kind: 'DaemonSet', path: '/apis/apps/v1/daemonsets', namespaced: true },
  Ingress: { kind: 'Ingress', path: '/apis/networking.k8s.io/v1/ingresses', namespaced: true },
  Gateway: { kind: 'Gateway', path: '/apis/gateway.networking.k8s.io/v1/gateways', namespaced: true },
  HTTPRoute: { kind: 'HTTPRoute', path: '/apis/gateway.networking.k8s.io/v1/httproutes', namespaced: true },
  Event: { kind: 'Event', path: '/api/v1/events', namespaced: true },
}

// --- session ---

let token = sessionStorage.getItem('skiff-token') ?? ''
let namespace = sessionStorage.getItem('skiff-namespace') ?? ''

class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path, { ...init, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(init.headers ?? {}) } })
  if (res.status === 401) {
    logout('The token is no longer accepted; log in again.')
    throw new HttpError(401, 'Unauthorized')
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`
    try {
      message = (await res.json()).message ?? message
    } catch {
      // not a Status
    }
    throw new HttpError(res.status, message)
  }
  return res
}

// --- informers: the server runs them (list, then watch; list again when a watch expires) and sends every
// kind's events down one stream, /dashboard/api/watch, so they hold one of the browser's six connections ---

type InformerState = 'loading' | 'synced' | 'forbidden' | 'error'

class Informer {
  readonly items = new Map<string, Obj>()
  state: InformerState = 'loading'
  message = ''
  readonly k: Kind

  constructor(k: Kind) {
    this.k = k
  }

  get collection(): string {
    if (!this.k.namespaced || !namespace) return this.k.path
    return this.k.path.replace(/\/([a-z]+)$/, `/namespaces/${encodeURIComponent(namespace)}/$1`)
  }

  list(): Obj[] {
    return [...this.items.values()]
  }

  /** One message of the stream for this informer. */
  apply(m: any): void {
    if (m.type === 'RESET') {
      this.items.clear()
      for (const o of m.items ?? []) this.items.set(o.metadata.uid ?? idOf(o), { ...o, kind: this.k.kind })
      this.state = 'synced'
      return
    }
    if (m.type === 'ERROR') {
      this.state = m.code === 403 ? 'forbidden' : 'error'
      this.message = m.message ?? ''
      this.items.clear()
      return
    }
    const o: Obj = { ...m.object, kind: this.k.kind }
    const key = o.metadata.uid ?? idOf(o)
    if (m.type === 'DELETED') this.items.delete(key)
    else this.items.set(key, o)
  }
}

/** The lines of a streamed response body as they arrive (a last line without a newline is not yielded). */
async function* lines(res: Response): AsyncGenerator<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += value
    const parts = buf.split('\n')
    buf = parts.pop() ?? ''
    yield* parts
  }
}

let streamAbort = new AbortController()

/** The one stream of every informer's events; opened again (with fresh lists) when it breaks. */
async function runStream(list: Informer[], signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await api(`/dashboard/api/watch?${list.map((i) => `path=${encodeURIComponent(i.collection)}`).join('&')}`, { signal })
      for await (const line of lines(res)) {
        if (!line.trim()) continue
        const m = JSON.parse(line)
        if (typeof m.i === 'number') list[m.i]?.apply(m)
        scheduleRender()
      }
    } catch (e) {
      if (signal.aborted || (e as HttpError).status === 401) return
    }
    await new Promise((r) => setTimeout(r, 2_000))
  }
}

const informers = new Map<string, Informer>()
const objects = (kind: string): Obj[] => informers.get(kind)?.list() ?? []
const accessNote = (kind: string): string => {
  const i = informers.get(kind)
  if (!i || i.state === 'synced') return ''
  if (i.state === 'forbidden') return `no access to ${kind} objects${namespace ? ` in ${namespace}` : ''}`
  return i.state === 'loading' ? 'loading…' : `${kind}: ${i.message}`
}

let nodeUsage: Obj[] = []
let traffic: Traffic | undefined
let trafficNote = ''
const timers: number[] = []

function startSession(): void {
  stopSession()
  for (const k of Object.values(kinds)) informers.set(k.kind, new Informer(k))
  streamAbort = new AbortController()
  void runStream([...informers.values()], streamAbort.signal)
  const pollUsage = async () => {
    try {
      nodeUsage = (await (await api('/apis/metrics.k8s.io/v1beta1/nodes')).json()).items ?? []
    } catch {
      nodeUsage = []
    }
    scheduleRender()
  }
  void pollUsage()
  void pollTraffic()
  timers.push(window.setInterval(pollUsage, 15_000), window.setInterval(pollTraffic, 5_000))
  void whoAmI()
}

async function pollTraffic(): Promise<void> {
  if (!token || !location.hash.startsWith('#/map')) return
  try {
    traffic = await (await api('/dashboard/api/traffic')).json()
    trafficNote = ''
  } catch (e) {
    traffic = undefined
    trafficNote = (e as HttpError).status === 403 ? 'no request rates: reading them needs get on nodes/metrics' : `no request rates: ${(e as Error).message}`
  }
  scheduleRender()
}

function stopSession(): void {
  streamAbort.abort()
  informers.clear()
  for (const t of timers.splice(0)) clearInterval(t)
  logs.stop()
}

async function whoAmI(): Promise<void> {
  try {
    const res = await api('/apis/authentication.k8s.io/v1/selfsubjectreviews', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }) })
    const review = await res.json()
    $('who').textContent = `logged in as ${review.status?.userInfo?.username ?? '?'}`
  } catch {
    $('who').textContent = 'logged in'
  }
}

// --- DOM helpers ---

const $ = (id: string): HTMLElement => document.getElementById(id)!

type Child = Node | string | number | undefined | null | false
function h(tag: string, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v)
  for (const c of children) if (c !== undefined && c !== null && c !== false) el.append(typeof c === 'number' ? String(c) : c)
  return el
}

const link = (target: string, text: string): HTMLElement => h('a', { href: `#/obj/${target.split('/').map(encodeURIComponent).join('/')}` }, text)
const rateText = (r: { rps: number; errorRps: number } | undefined): string => (r ? `${r.rps.toFixed(1)} req/s${r.rps > 0 ? ` · ${((100 * r.errorRps) / r.rps).toFixed(1)}% errors` : ''}` : '')

function table(headers: string[], rows: Child[][], attrs: Record<string, string> = {}): HTMLElement {
  return h('table', attrs, h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', {}, x)))), h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))))
}

// --- rendering: at most once per animation frame ---

let renderQueued = false
function scheduleRender(): void {
  if (renderQueued) return
  renderQueued = true
  requestAnimationFrame(() => {
    renderQueued = false
    render()
  })
}

function render(): void {
  const view = $('view')
  const hash = location.hash || '#/'
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.getAttribute('href') === (hash.startsWith('#/map') ? '#/map' : hash.startsWith('#/obj') ? '' : '#/'))
  if (!token) return
  let content: HTMLElement
  if (hash.startsWith('#/map')) content = renderMap()
  else if (hash.startsWith('#/obj/')) content = renderObject(hash.slice('#/obj/'.length).split('/').map(decodeURIComponent))
  else if (hash.startsWith('#/gone/')) content = renderGone(hash.slice('#/gone/'.length).split('/').map(decodeURIComponent))
  else content = renderOverview()
  const live = view.querySelector('[data-live]')
  if (live) live.replaceWith(content)
  else view.replaceChildren(content)
  if (logs.active && !logs.el.isConnected) view.append(logs.el)
  if (hash.startsWith('#/map')) drawEdges()
}

function renderOverview(): HTMLElement {
  logs.sync([])
  const nodes = objects('Node')
  const pods = objects('Pod')
  const rows = nodeRows(nodes, pods, nodeUsage)
  const probs = problems(nodes, pods, objects('Event'), Date.now())
  const podRows = [...pods].sort((a, b) => Number(isPodReady(a)) - Number(isPodReady(b)) || idOf(a).localeCompare(idOf(b)))
  return h('div', { 'data-live': '', 'data-view': 'overview' },
    h('h1', {}, 'Cluster'),
    h('h2', {}, `Problems (${probs.length})`),
    probs.length === 0 ? h('p', { class: 'ok', 'data-testid': 'no-problems' }, 'Nothing is failing.') : h('ul', { class: 'problems', 'data-testid': 'problems' }, ...probs.map((p) => h('li', { class: p.severity }, `${p.what} `, link(p.target, p.namespace ? `${p.namespace}/${p.name}` : p.name), `: ${p.text}`, p.at ? h('span', { class: 'muted' }, ` (${p.at})`) : ''))),
    h('h2', {}, `Nodes (${rows.length})`),
    accessNote('Node') ? h('p', { class: 'denied' }, accessNote('Node')) : '',
    table(['Name', 'Status', 'Ingress pool', 'Internal IP', 'External IP', 'Pods', 'CPU', 'Memory'], rows.map((r) => [
      link(`Node//${r.name}`, r.name), h('span', { class: r.ready ? 'ok' : 'error' }, `${r.ready ? 'Ready' : 'NotReady'}${r.unschedulable ? ',SchedulingDisabled' : ''}`), r.pool || '—', r.internalIP, r.externalIP || '—', r.pods, r.cpu || '—', r.memory || '—',
    ]), { 'data-testid': 'nodes' }),
    h('h2', {}, `Pods (${pods.length})`),
    accessNote('Pod') ? h('p', { class: 'denied' }, accessNote('Pod')) : '',
    table(['Namespace', 'Name', 'Ready', 'Status', 'Restarts', 'IP', 'Node'], podRows.map((p) => [
      p.metadata.namespace, link(`Pod/${p.metadata.namespace}/${p.metadata.name}`, p.metadata.name ?? ''), h('span', { class: isPodReady(p) ? 'ok' : 'error' }, isPodReady(p) ? 'yes' : 'no'), podStatus(p), restartsOf(p), p.status?.podIP ?? '', p.spec?.nodeName ?? '',
    ]), { 'data-testid': 'pods' }),
    h('h2', {}, 'Workloads'),
    table(['Kind', 'Namespace', 'Name', 'Ready'], ['Deployment', 'StatefulSet', 'DaemonSet'].flatMap((kind) => objects(kind).map((o) => [
      kind, o.metadata.namespace, link(`${kind}/${o.metadata.namespace}/${o.metadata.name}`, o.metadata.name ?? ''), `${o.status?.readyReplicas ?? o.status?.numberReady ?? 0}/${o.spec?.replicas ?? o.status?.desiredNumberScheduled ?? 0}`,
    ])), { 'data-testid': 'workloads' }),
  )
}

function renderMap(): HTMLElement {
  logs.sync([])
  const map = trafficMap({
    nodes: objects('Node'), ingresses: objects('Ingress'), httproutes: objects('HTTPRoute'), gateways: objects('Gateway'),
    services: objects('Service'), endpointslices: objects('EndpointSlice'), pods: objects('Pod'), traffic,
  })
  const columns: Array<[string, string]> = [['ingress', 'Ingress nodes'], ['route', 'Routes'], ['service', 'Services'], ['pod', 'Endpoints (pods)']]
  const notes = ['Node', 'Ingress', 'HTTPRoute', 'Service', 'EndpointSlice', 'Pod'].map(accessNote).filter(Boolean)
  return h('div', { 'data-live': '', 'data-view': 'map' },
    h('h1', {}, 'Traffic map'),
    h('p', { class: 'muted' }, trafficNote || (traffic ? `Request rates over the last ${traffic.nodes[0]?.windowSeconds?.toFixed(0) ?? '…'} s, from the ingress nodes' metrics.` : 'Reading request rates…')),
    ...notes.map((n) => h('p', { class: 'denied' }, n)),
    h('div', { class: 'map', 'data-testid': 'traffic-map' },
      ...columns.map(([col, title]) => h('div', { class: 'col' }, h('h2', {}, title),
        ...map.nodes.filter((n) => n.column === col).map((n) => h('div', { class: `box${n.ok ? '' : ' bad'}`, 'data-id': n.id, 'data-testid': `map-${n.id}`, 'data-edges': map.edges.filter((e) => e.from === n.id).map((e) => e.to).join(' ') },
          n.target ? link(n.target, n.label) : h('span', {}, n.label), h('div', { class: 'sub' }, n.sub), n.rate ? h('div', { class: 'rate' }, rateText(n.rate)) : '')))),
    ),
  )
}

/** The map's edges, drawn after layout from the boxes' positions. */
function drawEdges(): void {
  const map = document.querySelector('.map') as HTMLElement | null
  if (!map) return
  const origin = map.getBoundingClientRect()
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  for (const box of map.querySelectorAll<HTMLElement>('.box[data-edges]')) {
    const from = box.getBoundingClientRect()
    for (const to of (box.dataset.edges ?? '').split(' ').filter(Boolean)) {
      const target = map.querySelector<HTMLElement>(`.box[data-id="${CSS.escape(to)}"]`)
      if (!target) continue
      const t = target.getBoundingClientRect()
      const x1 = from.right - origin.left
      const y1 = from.top + from.height / 2 - origin.top
      const x2 = t.left - origin.left
      const y2 = t.top + t.height / 2 - origin.top
      const path = document.createElementNS('http://www.w3.org/2000/svg', 'path')
      path.setAttribute('d', `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`)
      path.dataset.edge = `${box.dataset.id} ${to}`
      svg.append(path)
    }
  }
  map.querySelector('svg')?.remove()
  map.prepend(svg)
}

function findObject(kind: string, ns: string, name: string): Obj | undefined {
  return objects(kind).find((o) => o.metadata.name === name && (o.metadata.namespace ?? '') === ns)
}

// "applied on n/n nodes": the Applied column of the object's Table (kubectl get -o wide), refreshed with the object.
const applied = new Map<string, { rv: string; text: string }>()
function appliedOf(o: Obj): string {
  const k = kinds[o.kind ?? '']
  if (!k || (o.kind !== 'Service' && o.kind !== 'Ingress')) return ''
  const id = idOf(o)
  const cached = applied.get(id)
  if (!cached || cached.rv !== o.metadata.resourceVersion) {
    applied.set(id, { rv: o.metadata.resourceVersion ?? '', text: cached?.text ?? '…' })
    const path = `${k.path.replace(/\/([a-z]+)$/, `/namespaces/${encodeURIComponent(o.metadata.namespace ?? '')}/$1`)}/${encodeURIComponent(o.metadata.name ?? '')}`
    void api(path, { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } })
      .then((r) => r.json())
      .then((t) => {
        const col = (t.columnDefinitions ?? []).findIndex((c: any) => c.name === 'Applied')
        applied.set(id, { rv: o.metadata.resourceVersion ?? '', text: col >= 0 ? String(t.rows?.[0]?.cells?.[col] ?? '') : '' })
        scheduleRender()
      })
      .catch(() => undefined)
  }
  return applied.get(id)?.text ?? ''
}

// The logs that outlive pods: each Ready node's archive (GET nodes/NODE/proxy/podLogs/, which needs get nodes/proxy), read every 15 s while an object is shown.
let archived: ArchivedLog[] = []
let archivedNote = ''
let archivedAt = 0
function archivedLogs(ns: string): ArchivedLog[] {
  if (Date.now() - archivedAt > 15_000) {
    archivedAt = Date.now()
    const nodes = objects('Node').filter(isNodeReady).map((n) => n.metadata.name ?? '')
    void Promise.all(nodes.map(async (n) => {
      const r = await api(`/api/v1/nodes/${encodeURIComponent(n)}/proxy/podLogs/?namespace=${encodeURIComponent(ns)}`)
      return ((await r.json()).items ?? []) as ArchivedLog[]
    })).then((lists) => {
      archived = lists.flat()
      archivedNote = ''
    }, (e: HttpError) => {
      archived = []
      archivedNote = e.status === 403 ? 'no access to the logs of pods that are gone: reading them needs get on nodes/proxy' : `logs of pods that are gone: ${e.message}`
    }).finally(scheduleRender)
  }
  return archived.filter((a) => a.namespace === ns)
}

const goneLink = (a: ArchivedLog): HTMLElement => h('a', { href: `#/gone/${[a.node, a.namespace, a.pod, a.uid, a.container].map(encodeURIComponent).join('/')}` }, `${a.pod} / ${a.container}`)

function renderGoneSection(o: Obj): HTMLElement | string {
  if (!['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'Service'].includes(o.kind ?? '')) return ''
  const gone = archivedLogsOf(o, archivedLogs(o.metadata.namespace ?? ''), objects('Pod'))
  return h('div', {},
    h('h2', {}, `Logs of pods that are gone (${gone.length})`),
    archivedNote ? h('p', { class: 'denied' }, archivedNote) : gone.length === 0 ? h('p', { class: 'muted' }, 'none kept') : '',
    gone.length ? table(['Pod / container', 'Node', 'Archived', 'Bytes'], gone.map((a) => [goneLink(a), a.node, a.archivedAt, a.size]), { 'data-testid': 'gone' }) : '')
}

// One archived log, read once when the view opens.
const goneText = new Map<string, string>()
function renderGone([node = '', ns = '', pod = '', uid = '', container = '']: string[]): HTMLElement {
  logs.sync([])
  const key = [node, ns, pod, uid, container].join('/')
  if (!goneText.has(key)) {
    goneText.set(key, 'loading…')
    void api(`/api/v1/nodes/${[node, 'proxy', 'podLogs', ns, pod, uid, container].map(encodeURIComponent).join('/')}?tailLines=2000`, { headers: { Accept: 'text/plain' } })
      .then((r) => r.text(), (e: Error) => `(not readable: ${e.message})`)
      .then((text) => goneText.set(key, text))
      .finally(scheduleRender)
  }
  return h('div', { 'data-live': '', 'data-view': 'gone' },
    h('h1', {}, `Logs of ${ns}/${pod} (gone), container ${container}`),
    h('p', { class: 'muted' }, `kept by ${node} after the pod was deleted or replaced (uid ${uid})`),
    h('pre', { class: 'logs', 'data-testid': 'gone-logs' }, goneText.get(key) ?? ''))
}

function renderObject([kind = '', ns = '', name = '']: string[]): HTMLElement {
  const o = findObject(kind, ns, name)
  const title = `${kind} ${ns ? `${ns}/` : ''}${name}`
  if (!o) {
    logs.sync([])
    return h('div', { 'data-live': '' }, h('h1', {}, title), h('p', { class: 'denied' }, accessNote(kind) || 'not found (deleted, or not visible to this identity)'))
  }
  const pods = podsOf(o, objects('Pod'))
  logs.sync(pods)
  const evs = eventsOf(o, objects('Event'))
  const appliedText = appliedOf(o)
  return h('div', { 'data-live': '', 'data-view': 'object' },
    h('h1', {}, title),
    appliedText ? h('p', { 'data-testid': 'applied' }, `Applied on ${appliedText} serving nodes`) : '',
    kind !== 'Pod' && pods.length ? h('p', {}, 'Pods: ', ...pods.flatMap((p, i) => [i ? ', ' : '', link(`Pod/${p.metadata.namespace}/${p.metadata.name}`, p.metadata.name ?? '')])) : '',
    h('h2', {}, `Events (${evs.length})`),
    evs.length ? table(['Type', 'Reason', 'Count', 'Last seen', 'Message'], evs.map((e) => [h('span', { class: e.type === 'Warning' ? 'warning' : '' }, e.type ?? ''), e.reason ?? '', e.count ?? e.series?.count ?? 1, e.lastTimestamp ?? e.eventTime ?? '', e.message ?? e.note ?? '']), { 'data-testid': 'events' }) : h('p', { class: 'muted' }, accessNote('Event') || 'none'),
    renderGoneSection(o),
    h('h2', {}, 'YAML'),
    h('pre', { 'data-testid': 'yaml' }, toYaml(o)),
    pods.length ? h('h2', {}, `Logs (${pods.length === 1 ? 'following' : `following ${Math.min(pods.length, maxFollowedPods)} of ${pods.length} pods`})`) : '',
  )
}

// --- logs: one followed stream per pod and container; the panel outlives re-renders ---

const maxFollowedPods = 4

class Logs {
  readonly el = h('pre', { class: 'logs', 'data-testid': 'logs' })
  #streams = new Map<string, AbortController>()
  #lines: string[] = []

  /** Follow exactly these pods' containers. */
  sync(pods: Obj[]): void {
    const want = new Map<string, { ns: string; pod: string; container: string }>()
    // Each followed log holds one of the browser's six connections to the server.
    for (const p of pods.slice(0, maxFollowedPods)) {
      if (p.status?.phase === 'Pending') continue
      for (const c of p.spec?.containers ?? []) want.set(`${p.metadata.namespace}/${p.metadata.name}/${c.name}`, { ns: p.metadata.namespace ?? '', pod: p.metadata.name ?? '', container: c.name })
    }
    for (const [k, a] of this.#streams) {
      if (!want.has(k)) {
        a.abort()
        this.#streams.delete(k)
      }
    }
    for (const [k, w] of want) if (!this.#streams.has(k)) this.#follow(k, w, want.size > 1)
    if (want.size === 0) {
      this.#lines = []
      this.el.textContent = ''
      this.el.remove()
    }
  }

  get active(): boolean {
    return this.#streams.size > 0
  }

  stop(): void {
    this.sync([])
  }

  #follow(key: string, w: { ns: string; pod: string; container: string }, prefix: boolean): void {
    const a = new AbortController()
    this.#streams.set(key, a)
    const path = `/api/v1/namespaces/${encodeURIComponent(w.ns)}/pods/${encodeURIComponent(w.pod)}/log?follow=true&tailLines=200&container=${encodeURIComponent(w.container)}`
    void (async () => {
      try {
        const res = await api(path, { signal: a.signal, headers: { Accept: 'text/plain' } })
        for await (const line of lines(res)) this.#add(prefix ? `[${w.pod}/${w.container}] ${line}` : line)
      } catch (e) {
        if (!a.signal.aborted) this.#add(`[${w.pod}/${w.container}] (log stream ended: ${(e as Error).message})`)
      }
      // A followed stream ends when the container stops; the next sync() picks the pod up again while it is listed.
      if (this.#streams.get(key) === a) window.setTimeout(() => this.#streams.get(key) === a && this.#streams.delete(key), 2_000)
    })()
  }

  #add(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > 2_000) this.#lines.splice(0, this.#lines.length - 2_000)
    const atBottom = this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - 4
    this.el.textContent = this.#lines.join('\n')
    if (atBottom) this.el.scrollTop = this.el.scrollHeight
  }
}

const logs = new Logs()

// --- login ---

function showLogin(message = ''): void {
  $('login').hidden = false
  $('view').replaceChildren()
  $('logout').hidden = true
  $('ns-pick').hidden = true
  $('who').textContent = ''
  $('login-error').textContent = message
}

function logout(message = ''): void {
  token = ''
  sessionStorage.removeItem('skiff-token')
  stopSession()
  showLogin(message)
}

async function login(candidate: string): Promise<void> {
  const res = await fetch('/api', { headers: { Authorization: `Bearer ${candidate}`, Accept: 'application/json' } })
  if (res.status === 401) throw new Error('This token is not accepted by the cluster.')
  token = candidate
  sessionStorage.setItem('skiff-token', token)
  enter()
}

function enter(): void {
  $('login').hidden = true
  $('logout').hidden = false
  $('ns-pick').hidden = false
  ;($('ns') as HTMLInputElement).value = namespace
  startSession()
  scheduleRender()
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault()
  login(($('token') as HTMLTextAreaElement).value.trim()).catch((e) => ($('login-error').textContent = (e as Error).message))
})
$('logout').addEventListener('click', () => logout())
$('ns').addEventListener('change', () => {
  namespace = ($('ns') as HTMLInputElement).value.trim()
  sessionStorage.setItem('skiff-namespace', namespace)
  startSession()
  scheduleRender()
})
window.addEventListener('hashchange', () => {
  logs.sync([])
  archivedAt = 0
  $('view').replaceChildren()
  scheduleRender()
  void pollTraffic()
})
window.addEventListener('resize', () => location.hash.startsWith('#/map') && drawEdges())

if (token) enter()
else showLogin()
