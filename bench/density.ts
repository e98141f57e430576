// Pod density: 110 pods per node (Kubernetes' default max-pods, which Skiff's
// nodes also report as allocatable) on a 3-node `skiff up`, and what they
// cost in memory: Skiff's own processes (the server, the agents) and the
// Engines' (dockerd, containerd, one containerd-shim per container, and the
// containers' own processes), before and after, per pod.
//
//   node bench/density.ts          (BENCH_PODS_PER_NODE=110, BENCH_NODES=3, BENCH_TIMEOUT_S=900)
//
// Memory is PSS (/proc/PID/smaps_rollup): shared pages are split among the
// processes that map them, so the per-pod figures add up instead of counting
// the same shared library 330 times. The pods: busybox httpd from
// skiff/pause:local with a tcpSocket readiness probe (the light pod of
// bench/pod-startup.ts), in one Deployment.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lookupResource } from '../controlplane/api/resources.ts'
import { ApiClient } from '../controlplane/client/client.ts'
import { readKubeconfig } from '../cli/kubeconfig.ts'
import { eventually } from '../lib/net.ts'
import { pickClusterCIDR } from '../test/harness/node.ts'
import { categories, clusterProcesses, pssKiB, type Category } from './cluster-procs.ts'
import { log, skiffCmd } from './harness.ts'

const perNode = Number(process.env.BENCH_PODS_PER_NODE ?? 110)
const nodes = Number(process.env.BENCH_NODES ?? 3)
const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 900)
const total = perNode * nodes
const deployments = lookupResource('apps', 'v1', 'deployments')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const nsInfo = lookupResource('', 'v1', 'namespaces')!

/** PSS in KiB of every process of the cluster in `stateDir`, by category, and how many containerd-shims there are. */
function memory(stateDir: string): Record<Category, number> & { shims: number } {
  const out = { ...Object.fromEntries(categories.map((c) => [c, 0])), shims: 0 } as Record<Category, number> & { shims: number }
  for (const p of clusterProcesses(stateDir)) {
    out[p.category] += pssKiB(p.pid)
    if (p.category === 'containerd-shim') out.shims++
  }
  return out
}

async function main() {
  const stateDir = mkdtempSync(join(tmpdir(), 'skiff-bench-density-'))
  const { clusterCIDR } = await pickClusterCIDR()
  const lines: string[] = []
  try {
    log(`skiff up --nodes ${nodes}`)
    await skiffCmd(stateDir, ['up', '--port', '0', '--nodes', String(nodes), '--cluster-cidr', clusterCIDR])
    const client = new ApiClient(readKubeconfig(join(stateDir, 'kubeconfig')))
    await new Promise((r) => setTimeout(r, 10_000)) // settle after start-up
    const before = memory(stateDir)
    const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim()
    await client.create(nsInfo, undefined, { metadata: { name: 'density' } })
    const started = performance.now()
    await client.create(deployments, 'density', {
      metadata: { name: 'light' },
      spec: {
        replicas: total, selector: { matchLabels: { app: 'light' } },
        template: {
          metadata: { labels: { app: 'light' } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: 'skiff/pause:local', command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc'], ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 10 } }] },
        },
      },
    })
    log(`${total} pods (${perNode} per node) in one Deployment`)
    let last = -1
    const readyCount = async () => {
      const list = (await client.list(podsInfo, 'density')).items
      const ready = list.filter((p) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
      if (ready.length !== last) log(`${ready.length}/${total} Ready (${list.length} pods) after ${((performance.now() - started) / 1000).toFixed(0)} s`)
      last = ready.length
      return { list, ready: ready.length }
    }
    const done = await eventually(async () => {
      const r = await readyCount()
      return r.ready === total && r
    }, { timeout: timeoutS * 1000, interval: 5_000, what: `${total} pods Ready` })
    const seconds = (performance.now() - started) / 1000
    const perNodeCount = new Map<string, number>()
    for (const p of done.list) perNodeCount.set(p.spec?.nodeName ?? '', (perNodeCount.get(p.spec?.nodeName ?? '') ?? 0) + 1)
    await new Promise((r) => setTimeout(r, 15_000)) // steady state: start-up garbage collected
    const after = memory(stateDir)
    const loadAfter = readFileSync('/proc/loadavg', 'utf8').trim()
    const mib = (kib: number) => (kib / 1024).toFixed(1)
    lines.push(`Pod density: ${total} pods on ${nodes} nodes (${[...perNodeCount].sort().map(([n, c]) => `${n} ${c}`).join(', ')}), all Ready ${seconds.toFixed(0)} s after the Deployment was created.`)
    lines.push(`Load average before: ${loadBefore}; after: ${loadAfter}. Shims counted: ${before.shims} before, ${after.shims} after.`, '')
    lines.push('| memory (PSS) | before (MiB) | with the pods (MiB) | per pod (MiB) |', '| --- | --- | --- | --- |')
    let sumB = 0
    let sumA = 0
    for (const k of categories) {
      sumB += before[k]
      sumA += after[k]
      lines.push(`| ${k} | ${mib(before[k])} | ${mib(after[k])} | ${((after[k] - before[k]) / 1024 / total).toFixed(2)} |`)
    }
    lines.push(`| all | ${mib(sumB)} | ${mib(sumA)} | ${((sumA - sumB) / 1024 / total).toFixed(2)} |`)
    process.stdout.write(`${lines.join('\n')}\n`)
    client.close()
  } finally {
    log('skiff down')
    await skiffCmd(stateDir, ['down']).catch((e) => log(`skiff down: ${(e as Error).message}`))
    rmSync(stateDir, { recursive: true, force: true })
  }
}

await main()
