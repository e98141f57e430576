// The kubelet's resource metrics endpoint (GET /metrics/resource on the
// kubelet server): cumulative CPU seconds and the memory working set of every
// running app container of this node's pods, summed per pod, and of the node
// itself, in Prometheus text with sample timestamps, as the kubelet serves
// them for metrics-server.
//
// Containers are read through the Engine's stats API with one-shot=true (no
// one-second wait for a second sample): it is right on cgroup v1 and v2, with
// either cgroup driver, and for the Engine of a simulated host, whose cgroup
// paths the agent would otherwise have to guess (about 15 ms per container,
// asked only when scraped). The working set is usage minus inactive_file, as
// cAdvisor computes it. The node's figures are the machine's (/proc/stat,
// /proc/meminfo), as a kubelet reports its host: on `skiff up` every
// simulated host shares one machine, so each shows the whole machine.

import { readFile } from 'node:fs/promises'
import type Dockerode from 'dockerode'
import { labels } from './labels.ts'

export interface ContainerUsage {
  namespace: string
  pod: string
  container: string
  /** Cumulative CPU time, seconds. */
  cpuSeconds: number
  workingSetBytes: number
  /** When the Engine read it, ms since the epoch. */
  timestampMs: number
}

export interface NodeUsage {
  cpuSeconds: number
  workingSetBytes: number
  timestampMs: number
}

/** The working set from a Docker stats memory block: usage minus inactive_file (cgroup v2 key, or v1 total_inactive_file). Pure. */
export function workingSet(mem: { usage?: number; stats?: Record<string, number> } | undefined): number {
  const usage = mem?.usage ?? 0
  const inactive = mem?.stats?.inactive_file ?? mem?.stats?.total_inactive_file ?? 0
  return Math.max(0, usage - inactive)
}

/** Non-idle CPU seconds from /proc/stat's first line (USER_HZ 100). Pure. */
export function cpuSecondsFromProcStat(text: string, userHz = 100): number {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (!line) return 0
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
  return busy / userHz
}

/** Working set from /proc/meminfo: (MemTotal - MemFree) - Inactive(file), in bytes. Pure. */
export function workingSetFromMeminfo(text: string): number {
  const kb = (key: string) => Number(new RegExp(`^${key.replace(/[()]/g, '\\$&')}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024
  return Math.max(0, kb('MemTotal') - kb('MemFree') - kb('Inactive(file)'))
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** The Prometheus text of /metrics/resource. Pure. */
export function renderResourceMetrics(node: NodeUsage | undefined, containers: readonly ContainerUsage[]): string {
  const out: string[] = []
  const family = (name: string, type: string, help: string, lines: string[]) => {
    out.push(`# HELP ${name} [STABLE] ${help}`, `# TYPE ${name} ${type}`, ...lines)
  }
  const cl = (c: ContainerUsage) => `{container="${labelValue(c.container)}",namespace="${labelValue(c.namespace)}",pod="${labelValue(c.pod)}"}`
  family('container_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the container in core-seconds', containers.map((c) => `container_cpu_usage_seconds_total${cl(c)} ${c.cpuSeconds} ${c.timestampMs}`))
  family('container_memory_working_set_bytes', 'gauge', 'Current working set of the container in bytes', containers.map((c) => `container_memory_working_set_bytes${cl(c)} ${c.workingSetBytes} ${c.timestampMs}`))
  if (node) {
    family('node_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the node in core-seconds', [`node_cpu_usage_seconds_total ${node.cpuSeconds} ${node.timestampMs}`])
    family('node_memory_working_set_bytes', 'gauge', 'Current working set of the node in bytes', [`node_memory_working_set_bytes ${node.workingSetBytes} ${node.timestampMs}`])
  }
  const pods = new Map<string, { namespace: string; pod: string; cpu: number; mem: number; ts: number }>()
  for (const c of containers) {
    const k = `${c.namespace}/${c.pod}`
    const p = pods.get(k) ?? { namespace: c.namespace, pod: c.pod, cpu: 0, mem: 0, ts: 0 }
    p.cpu += c.cpuSeconds
    p.mem += c.workingSetBytes
    p.ts = Math.max(p.ts, c.timestampMs)
    pods.set(k, p)
  }
  const pl = (p: { namespace: string; pod: string }) => `{namespace="${labelValue(p.namespace)}",pod="${labelValue(p.pod)}"}`
  family('pod_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the pod in core-seconds', [...pods.values()].map((p) => `pod_cpu_usage_seconds_total${pl(p)} ${p.cpu} ${p.ts}`))
  family('pod_memory_working_set_bytes', 'gauge', 'Current working set of the pod in bytes', [...pods.values()].map((p) => `pod_memory_working_set_bytes${pl(p)} ${p.mem} ${p.ts}`))
  family('scrape_error', 'gauge', '1 if there was an error while getting container metrics, 0 otherwise', [`scrape_error ${node ? 0 : 1}`])
  return out.join('\n') + '\n'
}

interface DockerStats {
  read?: string
  cpu_stats?: { cpu_usage?: { total_usage?: number } }
  memory_stats?: { usage?: number; stats?: Record<string, number> }
}

/** Usage of the running app containers of this node's pods (sandboxes and init containers left out, as the kubelet reports them). */
export async function collectContainerUsage(docker: Dockerode, nodeName: string): Promise<ContainerUsage[]> {
  const list = await docker.listContainers({ filters: JSON.stringify({ label: [`${labels.node}=${nodeName}`, `${labels.role}=app`], status: ['running'] }) })
  const out = await Promise.all(
    list.map(async (c): Promise<ContainerUsage | undefined> => {
      try {
        const s = (await docker.getContainer(c.Id).stats({ stream: false, 'one-shot': true } as never)) as unknown as DockerStats
        const ts = Date.parse(s.read ?? '')
        return {
          namespace: c.Labels[labels.podNamespace] ?? '',
          pod: c.Labels[labels.podName] ?? '',
          container: c.Labels[labels.containerName] ?? '',
          cpuSeconds: (s.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e9,
          workingSetBytes: workingSet(s.memory_stats),
          timestampMs: Number.isFinite(ts) && ts > 0 ? ts : Date.now(),
        }
      } catch {
        return undefined // gone between the list and the read
      }
    }),
  )
  return out.filter((x): x is ContainerUsage => !!x)
}

export async function collectNodeUsage(): Promise<NodeUsage | undefined> {
  try {
    const [stat, mem] = await Promise.all([readFile('/proc/stat', 'utf8'), readFile('/proc/meminfo', 'utf8')])
    return { cpuSeconds: cpuSecondsFromProcStat(stat), workingSetBytes: workingSetFromMeminfo(mem), timestampMs: Date.now() }
  } catch {
    return undefined
  }
}

/** The body of GET /metrics/resource for this node. */
export async function resourceMetricsText(docker: Dockerode, nodeName: string): Promise<string> {
  const [node, containers] = await Promise.all([collectNodeUsage(), collectContainerUsage(docker, nodeName)])
  return renderResourceMetrics(node, containers)
}
