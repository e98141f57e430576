// Resource metrics and the HorizontalPodAutoscaler end to end: a real
// control plane (controllers included; metrics scraped and HPAs synced every
// 2 s instead of 15 s), one real agent on the real Docker Engine, and the
// real kubectl. A Deployment's pod is made busy by a CPU loop the test runs
// in its container (docker exec, bounded to 90 s, stopped by a file); the
// loop (and 8 MB the pod keeps in /dev/shm) shows in `kubectl top`, an HPA
// made with `kubectl autoscale` scales the Deployment out to its maximum, and
// back in once the loop is stopped and the (shortened) scale-down
// stabilization window has passed.

import t from 'tap'
import { execFile } from 'node:child_process'
import { request } from 'node:https'
import { promisify } from 'node:util'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { eventually } from '../../lib/net.ts'
import { labels } from '../../node/labels.ts'
import { ensureImages } from '../../node/images/build.ts'
import { startTestCluster } from '../harness/cluster.ts'
import { docker, kubeletClientTLS, nodeIdentities, pickClusterCIDR, startTestNode, testNodeNames } from '../harness/node.ts'

const pods = lookupResource('', 'v1', 'pods')!
const deploys = lookupResource('apps', 'v1', 'deployments')!
const hpas = lookupResource('autoscaling', 'v2', 'horizontalpodautoscalers')!
const events = lookupResource('', 'v1', 'events')!
const ns = 'default'
const run = promisify(execFile)
const slow = { timeout: 60_000, interval: 500 }

await ensureImages({ progress: null })
const net = await pickClusterCIDR()
const names = testNodeNames(1, 'mh')
const c = await startTestCluster(t, { identities: nodeIdentities(names), controllers: { clusterCIDR: net.clusterCIDR, hpaSyncPeriodMs: 2_000 }, metricsResolutionMs: 2_000 })
await startTestNode(t, c, { name: names[0]!, clusterCIDR: net.clusterCIDR })

const ready = (p: KubeObject) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((x: any) => x.type === 'Ready' && x.status === 'True')

await c.client.create(deploys, ns, {
  metadata: { name: 'web' },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'skiff/echo:local', command: ['sh', '-c', 'head -c 8000000 /dev/zero > /dev/shm/hold; exec sleep 100000'], resources: { requests: { cpu: '50m', memory: '16Mi' } } }],
      },
    },
  },
})
const first = await eventually(async () => (await c.client.list(pods, ns, { labelSelector: 'app=web' })).items.find(ready), { ...slow, what: 'the first web pod is ready' })
const podName = first.metadata.name!

/** The app container of a pod, from Docker. */
async function appContainer(pod: string) {
  const list = await docker.listContainers({ filters: { label: [`${labels.podNamespace}=${ns}`, `${labels.podName}=${pod}`, `${labels.containerName}=app`] } })
  if (!list[0]) throw new Error(`no running app container for pod ${pod}`)
  return docker.getContainer(list[0].Id)
}

/** Start a script in the pod's app container and return at once (`docker exec -d`: no stream is left open). */
async function execIn(pod: string, script: string): Promise<void> {
  await run('docker', ['exec', '-d', (await appContainer(pod)).id, 'sh', '-c', script], { timeout: 30_000 })
}

// The load: a busy loop in the first pod's container, ended by /tmp/stop (which it also writes itself after 90 s).
await execIn(podName, 'rm -f /tmp/stop; (sleep 90; touch /tmp/stop) & while [ ! -f /tmp/stop ]; do :; done')
t.teardown(() => execIn(podName, 'touch /tmp/stop').catch(() => undefined))

/** GET a kubelet path, with the given client certificate (or none). */
function kubeletGet(host: string, port: number, path: string, tls: { cert?: string; key?: string; ca: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, ...tls, servername: undefined, checkServerIdentity: () => undefined, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

t.test('the kubelet serves /metrics/resource to the apiserver only', async (t) => {
  const node = await c.client.get(lookupResource('', 'v1', 'nodes')!, undefined, names[0]!)
  const host = node.status.addresses.find((a: any) => a.type === 'InternalIP').address
  const port = node.status.daemonEndpoints.kubeletEndpoint.Port
  const tls = await kubeletClientTLS(c)
  const anonymous = await kubeletGet(host, port, '/metrics/resource', { ca: tls.ca })
  t.equal(anonymous.status, 401, 'no client certificate: 401, as the other kubelet endpoints')
  const text = await eventually(async () => {
    const r = await kubeletGet(host, port, '/metrics/resource', tls)
    return r.status === 200 && r.body.includes(podName) ? r.body : undefined
  }, { ...slow, what: 'the busy pod in /metrics/resource' })
  t.match(text, new RegExp(`^container_cpu_usage_seconds_total\\{container="app",namespace="${ns}",pod="${podName}"\\} [0-9.e+]+ \\d{13}$`, 'm'), 'container CPU with a timestamp')
  t.match(text, /^node_memory_working_set_bytes [0-9.e+]+ \d{13}$/m, 'node memory')
})

t.test('kubectl top shows the busy pod and the node', async (t) => {
  const milli = (s: string) => (s.endsWith('m') ? Number(s.slice(0, -1)) : Number(s) * 1000)
  let last = ''
  const row = await eventually(async () => {
    const r = await c.kubectl(['top', 'pods', '-n', ns, '--no-headers'], { allowFail: true })
    last = `${r.stdout}${r.stderr}`
    const line = r.stdout.split('\n').find((l) => l.startsWith(podName))
    const [, cpu, mem] = line?.trim().split(/\s+/) ?? []
    return cpu && milli(cpu) >= 100 && mem && parseInt(mem, 10) > 0 ? { cpu, mem } : undefined
  }, { ...slow, what: `kubectl top pods shows CPU for ${podName}` }).catch((e) => {
    throw new Error(`${(e as Error).message}; kubectl top pods said: ${last}`)
  })
  t.ok(milli(row.cpu) >= 100, `busy pod uses ${row.cpu}`)
  t.match(row.mem, /^[1-9]\d*Mi$/, 'memory working set in Mi')
  const containers = await c.kubectl(['top', 'pods', '-A', '--containers', '--no-headers'])
  t.match(containers.stdout, new RegExp(`${ns}\\s+${podName}\\s+app\\s+\\d+m\\s+\\d+Mi`), 'per-container row with -A --containers')
  const nodes = await c.kubectl(['top', 'nodes', '--no-headers'])
  const [name, cpu, cpuPct, mem] = nodes.stdout.trim().split(/\s+/)
  t.equal(name, names[0], 'one row per node')
  t.ok(milli(cpu!) > 0 && /%$/.test(cpuPct!) && parseInt(mem!, 10) > 0, `node CPU ${cpu} (${cpuPct}) and memory ${mem}`)
  const nm = await c.client.call('GET', `/apis/metrics.k8s.io/v1beta1/nodes/${names[0]}`)
  t.match(nm, { kind: 'NodeMetrics', apiVersion: 'metrics.k8s.io/v1beta1', usage: { cpu: /^\d+n$/, memory: /^\d+Ki$/ }, window: /s$/ }, 'NodeMetrics as metrics-server writes it')
  const selected = await c.client.call('GET', `/apis/metrics.k8s.io/v1beta1/namespaces/${ns}/pods`, { query: { labelSelector: 'app=nothing' } })
  t.same(selected.items, [], 'label selectors filter PodMetrics')
})

t.test('an HPA made by kubectl autoscale scales out under load and back in after the window', async (t) => {
  const made = await c.kubectl(['autoscale', 'deployment', 'web', '--cpu-percent=50', '--min=1', '--max=3', '-v=6'])
  t.match(made.stdout, /horizontalpodautoscaler.autoscaling\/web autoscaled/)
  t.match(made.stderr, /POST https:\S+\/apis\/autoscaling\/v1\/namespaces\/default\/horizontalpodautoscalers\S* 201 Created/, 'kubectl 1.32 creates it as autoscaling/v1')
  const v1 = await c.client.call('GET', `/apis/autoscaling/v1/namespaces/${ns}/horizontalpodautoscalers/web`)
  t.equal(v1.spec.targetCPUUtilizationPercentage, 50, 'the v1 view keeps the CPU target')
  const patched = await c.kubectl(['patch', 'hpa', 'web', '--type=merge', '-p', JSON.stringify({ spec: { behavior: { scaleDown: { stabilizationWindowSeconds: 10 } } } })])
  t.equal(patched.code, 0)
  const stored = await c.client.get(hpas, ns, 'web')
  t.match(stored.spec, { minReplicas: 1, maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }], behavior: { scaleDown: { stabilizationWindowSeconds: 10, policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] }, scaleUp: { stabilizationWindowSeconds: 0 } } }, 'stored as v2 with behavior defaults')

  await eventually(async () => (await c.client.get(deploys, ns, 'web')).spec.replicas === 3, { timeout: 90_000, interval: 1_000, what: 'the HPA scales web to 3' })
  const hpa = await c.client.get(hpas, ns, 'web')
  t.match(hpa.status, { desiredReplicas: 3 }, 'status.desiredReplicas')
  t.ok(hpa.status.lastScaleTime, 'status.lastScaleTime')
  const rescale = await eventually(async () => (await c.client.list(events, ns)).items.find((e) => e.reason === 'SuccessfulRescale' && e.involvedObject?.name === 'web'), { ...slow, what: 'a SuccessfulRescale Event' })
  t.match(rescale.message, /^New size: 3; reason: cpu resource utilization \(percentage of request\) above target$/)
  const table = await eventually(async () => {
    const r = await c.kubectl(['get', 'hpa', 'web', '--no-headers'])
    return /cpu: \d+%\/50%/.test(r.stdout) ? r.stdout : undefined
  }, { ...slow, what: 'kubectl get hpa shows the CPU target' })
  t.match(table, /^web\s+Deployment\/web\s+cpu: \d+%\/50%\s+1\s+3\s+\d\s+/, 'NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE')

  await execIn(podName, 'touch /tmp/stop')
  await eventually(async () => (await c.client.get(deploys, ns, 'web')).spec.replicas === 1, { timeout: 90_000, interval: 1_000, what: 'the HPA scales web back to 1' })
  const after = await c.client.get(hpas, ns, 'web')
  const down = (await c.client.list(events, ns)).items.find((e) => e.reason === 'SuccessfulRescale' && /New size: 1; reason: All metrics below target/.test(e.message))
  t.ok(down, 'a SuccessfulRescale Event for the scale-in')
  const described = (await c.kubectl(['describe', 'hpa', 'web'])).stdout
  t.match(described, /Reference:\s+Deployment\/web/, 'kubectl describe: reference')
  t.match(described, /resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\S+\) \/ 50%/, 'kubectl describe: the metric, current / target')
  t.match(described, /SuccessfulRescale/, 'kubectl describe: events')
  t.match(after.status.conditions, [{ type: 'AbleToScale', status: 'True' }, { type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound' }, { type: 'ScalingLimited' }], 'conditions')
})
