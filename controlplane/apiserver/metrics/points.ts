// The pure core of the metrics pipeline: parse a kubelet's /metrics/resource
// text, keep the last two samples of every series (metrics-server's storage),
// and turn them into usage: CPU as the rate between the two cumulative
// samples (nano-cores), memory as the latest working set, with the window
// between the samples and the later sample's timestamp.

export interface Sample {
  cpuSeconds?: number
  memoryBytes?: number
  timestampMs: number
}

export interface ContainerSample extends Sample {
  namespace: string
  pod: string
  container: string
}

export interface NodeScrape {
  node?: Sample
  containers: ContainerSample[]
}

/** One `name{labels} value [timestamp]` line. Pure; undefined for comments, blanks and garbage. */
export function parseLine(line: string): { name: string; labels: Record<string, string>; value: number; timestampMs?: number } | undefined {
  const l = line.trim()
  if (!l || l.startsWith('#')) return undefined
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(l)
  if (!m) return undefined
  const labels: Record<string, string> = {}
  if (m[2]) {
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
    for (let x = re.exec(m[2]); x; x = re.exec(m[2])) labels[x[1]!] = x[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
  }
  const value = Number(m[3])
  if (!Number.isFinite(value)) return undefined
  return { name: m[1]!, labels, value, timestampMs: m[4] ? Number(m[4]) : undefined }
}

/** The node and container samples of one scrape; series without a timestamp get `now`. Pure. */
export function parseResourceMetrics(text: string, now: number): NodeScrape {
  const containers = new Map<string, ContainerSample>()
  let node: Sample | undefined
  for (const line of text.split('\n')) {
    const p = parseLine(line)
    if (!p) continue
    const ts = p.timestampMs ?? now
    if (p.name === 'node_cpu_usage_seconds_total') node = { ...node, cpuSeconds: p.value, timestampMs: ts }
    else if (p.name === 'node_memory_working_set_bytes') node = { timestampMs: ts, ...node, memoryBytes: p.value }
    else if (p.name === 'container_cpu_usage_seconds_total' || p.name === 'container_memory_working_set_bytes') {
      const { namespace = '', pod = '', container = '' } = p.labels
      if (!pod || !container) continue
      const k = `${namespace}/${pod}/${container}`
      const c = containers.get(k) ?? { namespace, pod, container, timestampMs: ts }
      if (p.name === 'container_cpu_usage_seconds_total') {
        c.cpuSeconds = p.value
        c.timestampMs = ts
      } else c.memoryBytes = p.value
      containers.set(k, c)
    }
  }
  return { node, containers: [...containers.values()] }
}

export interface Usage {
  /** Nano-cores. */
  cpuNano: number
  memoryBytes: number
  timestampMs: number
  windowMs: number
}

interface Series {
  prev?: Sample
  last: Sample
}

/** The next two-sample state of a series: a newer sample shifts; a counter that went back (a restart) starts over. Pure. */
export function advance(s: Series | undefined, next: Sample): Series {
  if (!s) return { last: next }
  if (next.timestampMs <= s.last.timestampMs) return s
  if ((next.cpuSeconds ?? 0) < (s.last.cpuSeconds ?? 0)) return { last: next }
  return { prev: s.last, last: next }
}

/** Usage from a series: undefined until it has two samples with CPU. Pure. */
export function usageOf(s: Series | undefined): Usage | undefined {
  if (!s?.prev || s.prev.cpuSeconds === undefined || s.last.cpuSeconds === undefined) return undefined
  const windowMs = s.last.timestampMs - s.prev.timestampMs
  if (windowMs <= 0) return undefined
  const cpuNano = ((s.last.cpuSeconds - s.prev.cpuSeconds) / (windowMs / 1000)) * 1e9
  return { cpuNano: Math.max(0, Math.round(cpuNano)), memoryBytes: s.last.memoryBytes ?? 0, timestampMs: s.last.timestampMs, windowMs }
}

/** The last two samples of every node and container, replaced node by node as scrapes arrive. */
export class MetricsStore {
  #nodes = new Map<string, Series>()
  /** node → `ns/pod` → container → series */
  #pods = new Map<string, Map<string, Map<string, Series>>>()

  /** A node's scrape; its containers absent from it are forgotten (they stopped). */
  update(nodeName: string, scrape: NodeScrape): void {
    if (scrape.node) this.#nodes.set(nodeName, advance(this.#nodes.get(nodeName), scrape.node))
    const before = this.#pods.get(nodeName) ?? new Map()
    const after = new Map<string, Map<string, Series>>()
    for (const c of scrape.containers) {
      const k = `${c.namespace}/${c.pod}`
      const pod = after.get(k) ?? new Map<string, Series>()
      pod.set(c.container, advance(before.get(k)?.get(c.container), c))
      after.set(k, pod)
    }
    this.#pods.set(nodeName, after)
  }

  /** Nodes that are gone from the cluster. */
  retainNodes(names: ReadonlySet<string>): void {
    for (const n of [...this.#nodes.keys(), ...this.#pods.keys()]) if (!names.has(n)) {
      this.#nodes.delete(n)
      this.#pods.delete(n)
    }
  }

  node(name: string): Usage | undefined {
    return usageOf(this.#nodes.get(name))
  }

  /** A pod's containers' usage, only when every container it reports has a rate (as metrics-server). */
  pod(namespace: string, name: string): { containers: Array<{ name: string; usage: Usage }>; timestampMs: number; windowMs: number } | undefined {
    for (const pods of this.#pods.values()) {
      const pod = pods.get(`${namespace}/${name}`)
      if (!pod) continue
      const containers: Array<{ name: string; usage: Usage }> = []
      for (const [cname, s] of pod) {
        const usage = usageOf(s)
        if (!usage) return undefined
        containers.push({ name: cname, usage })
      }
      if (!containers.length) return undefined
      containers.sort((a, b) => a.name.localeCompare(b.name))
      return { containers, timestampMs: Math.max(...containers.map((c) => c.usage.timestampMs)), windowMs: Math.max(...containers.map((c) => c.usage.windowMs)) }
    }
    return undefined
  }
}

/** Go's time.Duration.String() for a metav1.Duration (`15.002s`, `1m0.5s`). Pure. */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s'
  const totalSeconds = ms / 1000
  const h = Math.floor(totalSeconds / 3600)
  const m = Math.floor((totalSeconds % 3600) / 60)
  const s = +(totalSeconds - h * 3600 - m * 60).toFixed(3)
  if (h === 0 && m === 0 && ms < 1000) return `${ms}ms`
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`
}

export const formatCpu = (nano: number): string => `${Math.round(nano)}n`
export const formatMemory = (bytes: number): string => `${Math.round(bytes / 1024)}Ki`
