// The resource metrics pipeline's pure parts: the kubelet's /metrics/resource
// text (node/resource-metrics.ts), its parser and the two-sample rate
// arithmetic of the scraper's store (apiserver/metrics/points.ts), and the
// NodeMetrics/PodMetrics objects (apiserver/metrics/api.ts).

import t from 'tap'
import { cpuSecondsFromProcStat, renderResourceMetrics, workingSet, workingSetFromMeminfo } from '../../node/resource-metrics.ts'
import { advance, goDuration, MetricsStore, parseLine, parseResourceMetrics, usageOf } from '../../controlplane/apiserver/metrics/points.ts'
import { buildNodeMetrics, buildPodMetrics } from '../../controlplane/apiserver/metrics/api.ts'

const t0 = Date.parse('2026-01-01T00:00:00Z')

t.test('the kubelet text parses back into samples', async (t) => {
  const text = renderResourceMetrics(
    { cpuSeconds: 1234.5, workingSetBytes: 2e9, timestampMs: t0 },
    [
      { namespace: 'ns', pod: 'web-1', container: 'app', cpuSeconds: 1.5, workingSetBytes: 4096, timestampMs: t0 + 1 },
      { namespace: 'ns', pod: 'web-1', container: 'side', cpuSeconds: 0.5, workingSetBytes: 1024, timestampMs: t0 + 2 },
    ],
  )
  t.match(text, /^# HELP container_cpu_usage_seconds_total \[STABLE\]/m)
  t.match(text, /^container_cpu_usage_seconds_total\{container="app",namespace="ns",pod="web-1"\} 1\.5 1767225600001$/m, 'sample with its timestamp in ms')
  t.match(text, /^pod_cpu_usage_seconds_total\{namespace="ns",pod="web-1"\} 2 1767225600002$/m, 'pod sums its containers')
  t.match(text, /^pod_memory_working_set_bytes\{namespace="ns",pod="web-1"\} 5120 /m)
  t.match(text, /^node_memory_working_set_bytes 2000000000 1767225600000$/m)
  const s = parseResourceMetrics(text, 0)
  t.same(s.node, { cpuSeconds: 1234.5, memoryBytes: 2e9, timestampMs: t0 })
  t.same(s.containers, [
    { namespace: 'ns', pod: 'web-1', container: 'app', cpuSeconds: 1.5, memoryBytes: 4096, timestampMs: t0 + 1 },
    { namespace: 'ns', pod: 'web-1', container: 'side', cpuSeconds: 0.5, memoryBytes: 1024, timestampMs: t0 + 2 },
  ])
})

t.test('parseLine', async (t) => {
  t.same(parseLine('x{a="1",b="q\\"uote"} 1.2e+07 17'), { name: 'x', labels: { a: '1', b: 'q"uote' }, value: 1.2e7, timestampMs: 17 })
  t.same(parseLine('scrape_error 0'), { name: 'scrape_error', labels: {}, value: 0, timestampMs: undefined })
  t.equal(parseLine('# TYPE x counter'), undefined)
  t.equal(parseLine('x{a="1"} NaNish'), undefined)
})

t.test('rates from two samples', async (t) => {
  let s = advance(undefined, { cpuSeconds: 10, memoryBytes: 100, timestampMs: t0 })
  t.equal(usageOf(s), undefined, 'one sample: no rate yet')
  s = advance(s, { cpuSeconds: 17.5, memoryBytes: 200, timestampMs: t0 + 15_000 })
  t.same(usageOf(s), { cpuNano: 500_000_000, memoryBytes: 200, timestampMs: t0 + 15_000, windowMs: 15_000 }, '7.5 cpu-seconds over 15 s is half a core')
  t.equal(advance(s, { cpuSeconds: 99, timestampMs: t0 + 15_000 }), s, 'a sample no newer than the last is ignored')
  t.equal(usageOf(advance(s, { cpuSeconds: 1, timestampMs: t0 + 30_000 })), undefined, 'a counter that went back (restart) starts over')
  const store = new MetricsStore()
  const scrape = (ms: number, cpu: number, extra = true) => ({
    node: { cpuSeconds: cpu * 2, memoryBytes: 1e9, timestampMs: ms },
    containers: [{ namespace: 'ns', pod: 'p', container: 'a', cpuSeconds: cpu, memoryBytes: 10_240, timestampMs: ms }, ...(extra ? [{ namespace: 'ns', pod: 'p', container: 'b', cpuSeconds: cpu, memoryBytes: 0, timestampMs: ms }] : [])],
  })
  store.update('n1', scrape(t0, 1))
  t.equal(store.pod('ns', 'p'), undefined)
  store.update('n1', scrape(t0 + 10_000, 2))
  t.match(store.node('n1'), { cpuNano: 200_000_000, windowMs: 10_000 })
  t.match(store.pod('ns', 'p'), { containers: [{ name: 'a', usage: { cpuNano: 100_000_000, memoryBytes: 10_240 } }, { name: 'b' }], windowMs: 10_000 })
  store.update('n1', scrape(t0 + 20_000, 3, false))
  t.equal(store.pod('ns', 'p')!.containers.length, 1, 'a container gone from the scrape is forgotten')
  store.retainNodes(new Set())
  t.equal(store.node('n1'), undefined, 'a deleted node is forgotten')
})

t.test('metrics-server objects', async (t) => {
  const node = { metadata: { name: 'n1', labels: { a: 'b' } } }
  t.same(buildNodeMetrics(node, { cpuNano: 123456789.4, memoryBytes: 2048 * 1024, timestampMs: t0, windowMs: 15_002 }, t0), {
    kind: 'NodeMetrics', apiVersion: 'metrics.k8s.io/v1beta1', metadata: { name: 'n1', creationTimestamp: '2026-01-01T00:00:00Z', labels: { a: 'b' } },
    timestamp: '2026-01-01T00:00:00Z', window: '15.002s', usage: { cpu: '123456789n', memory: '2048Ki' },
  })
  t.equal(buildNodeMetrics(node, undefined, t0), undefined)
  const pm = buildPodMetrics({ metadata: { name: 'p', namespace: 'ns' } }, { containers: [{ name: 'a', usage: { cpuNano: 5, memoryBytes: 1024, timestampMs: t0, windowMs: 1 } }], timestampMs: t0, windowMs: 2_000 }, t0)
  t.match(pm, { kind: 'PodMetrics', metadata: { name: 'p', namespace: 'ns' }, window: '2s', containers: [{ name: 'a', usage: { cpu: '5n', memory: '1Ki' } }] })
  t.equal(goDuration(61_500), '1m1.5s')
  t.equal(goDuration(500), '500ms')
})

t.test('node and container figures', async (t) => {
  t.equal(cpuSecondsFromProcStat('cpu  100 20 30 1000 50 5 5 0 0 0\ncpu0 1 2 3\n'), 1.6, 'user+nice+system+irq+softirq+steal, not idle or iowait')
  t.equal(workingSetFromMeminfo('MemTotal:       1000 kB\nMemFree:         200 kB\nInactive(file):  100 kB\n'), 700 * 1024)
  t.equal(workingSet({ usage: 1000, stats: { inactive_file: 300 } }), 700, 'cgroup v2 key')
  t.equal(workingSet({ usage: 1000, stats: { total_inactive_file: 400 } }), 600, 'cgroup v1 key')
  t.equal(workingSet({ usage: 100, stats: { inactive_file: 300 } }), 0, 'never negative')
})

t.test('view, edit and admin may read metrics (system:aggregated-metrics-reader)', async (t) => {
  const { bootstrapPolicy } = await import('../../controlplane/apiserver/rbac/bootstrap.ts')
  const { aggregatedRules } = await import('../../controlplane/apiserver/rbac/rules.ts')
  const policy = bootstrapPolicy().filter((o) => o.kind === 'ClusterRole')
  // Aggregation is transitive through view -> edit -> admin labels; resolve view's rules first as the controller would.
  const resolved = policy.map((r) => ({ ...r, rules: aggregatedRules(r, policy) ?? r.rules }))
  for (const name of ['view', 'edit', 'admin']) {
    const role = resolved.find((r) => r.metadata.name === name)!
    const rules = aggregatedRules(role, resolved) ?? []
    t.ok(rules.some((r) => r.apiGroups?.includes('metrics.k8s.io') && r.resources?.includes('pods') && r.resources?.includes('nodes') && r.verbs.includes('list')), `${name} reads pods and nodes of metrics.k8s.io`)
  }
})
