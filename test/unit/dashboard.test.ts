// The dashboard's pure parts: traffic rates from two scrapes of the ingress
// nodes' metrics, the traffic map's chain, node rows, problems, pods of an
// object, the display YAML (checked against the yaml package's parser), and
// the browser-module conversion of the server.

import t from 'tap'
import { parse as parseYaml } from 'yaml'
import fc from 'fast-check'
import { parseIngressCounters, trafficRates } from '../../controlplane/dashboard/traffic.ts'
import { toBrowserModule } from '../../controlplane/dashboard/server.ts'
import { archivedLogsOf, eventsOf, mebibytes, milliCores, nodeRows, podsOf, problems, toYaml, trafficMap, type Obj } from '../../controlplane/dashboard/ui/model.ts'

const metricsText = (n: { a: number; b: number; err: number }) => `# HELP skiff_ingress_requests_total Requests answered
# TYPE skiff_ingress_requests_total counter
skiff_ingress_requests_total{class="external",host="demo.skiff.test",status="200",upstream="10.1.0.2:8080"} ${n.a}
skiff_ingress_requests_total{class="external",host="demo.skiff.test",status="200",upstream="10.1.1.2:8080"} ${n.b}
skiff_ingress_requests_total{class="external",host="demo.skiff.test",status="502",upstream="10.1.1.2:8080"} ${n.err}
skiff_ingress_requests_total{class="external",host="-",status="404",upstream="-"} 7
skiff_ingress_request_duration_seconds_count{class="external"} 99
`

t.test('traffic rates from two scrapes', async (t) => {
  const prev = parseIngressCounters('node-1', metricsText({ a: 10, b: 20, err: 0 }), 0)
  t.equal(prev.counters.length, 4, 'only skiff_ingress_requests_total is read')
  const last = parseIngressCounters('node-1', metricsText({ a: 30, b: 30, err: 5 }), 5_000)
  const r = trafficRates([{ prev, last }])
  t.same(r.nodes, [{ node: 'node-1', class: 'external', windowSeconds: 5 }])
  t.same(r.hosts, [{ class: 'external', host: 'demo.skiff.test', rps: 7, errorRps: 1 }], '(20 + 10 + 5) / 5 s; the 502s are errors')
  t.same(r.upstreams, [{ upstream: '10.1.0.2:8080', rps: 4, errorRps: 0 }, { upstream: '10.1.1.2:8080', rps: 3, errorRps: 1 }])
  t.same(trafficRates([{ last }]).hosts, [], 'one scrape: no rates yet')
  const restarted = parseIngressCounters('node-1', metricsText({ a: 5, b: 0, err: 0 }), 10_000)
  t.same(trafficRates([{ prev: last, last: restarted }]).hosts, [{ class: 'external', host: 'demo.skiff.test', rps: 1, errorRps: 0 }], 'a counter that went back (a restarted ingress) counts from zero')
  const other = parseIngressCounters('node-2', metricsText({ a: 0, b: 0, err: 10 }), 5_000)
  const both = trafficRates([{ prev, last }, { prev: parseIngressCounters('node-2', metricsText({ a: 0, b: 0, err: 0 }), 0), last: other }])
  t.same(both.hosts[0], { class: 'external', host: 'demo.skiff.test', rps: 9, errorRps: 3 }, 'summed over ingress nodes')
})

const ready = { conditions: [{ type: 'Ready', status: 'True' }] }
const node = (name: string, pool?: string, ext?: string): Obj => ({
  kind: 'Node', metadata: { name, labels: pool ? { 'skiff.dev/ingress-pool': pool } : {} },
  status: { ...ready, addresses: [{ type: 'InternalIP', address: `172.31.0.${name.slice(-1)}` }, ...(ext ? [{ type: 'ExternalIP', address: ext }] : [])] },
})
const pod = (name: string, nodeName: string, ip: string, extra: Partial<Obj> = {}): Obj => ({
  kind: 'Pod', metadata: { name, namespace: 'demo', uid: `uid-${name}`, labels: { app: 'demo' }, creationTimestamp: '2026-12-04T00:00:00Z' },
  spec: { nodeName, containers: [{ name: 'demo' }] }, status: { phase: 'Running', podIP: ip, ...ready, containerStatuses: [{ name: 'demo', restartCount: 0, state: { running: {} } }] }, ...extra,
})

t.test('the traffic map: ingress nodes -> routes -> services -> pods', async (t) => {
  const nodes = [node('node-1', 'external', '172.31.0.101'), node('node-2', 'external'), node('node-3', 'internal')]
  const pods = [pod('demo-a', 'node-1', '10.1.0.2'), pod('demo-b', 'node-2', '10.1.1.2')]
  const map = trafficMap({
    nodes, pods,
    ingresses: [{ kind: 'Ingress', metadata: { name: 'demo', namespace: 'demo' }, spec: { ingressClassName: 'external', rules: [{ host: 'demo.skiff.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'demo', port: { number: 80 } } } }] } }] } }],
    httproutes: [{ kind: 'HTTPRoute', metadata: { name: 'api', namespace: 'demo' }, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['api.test'], rules: [{ backendRefs: [{ name: 'api', port: 80 }, { name: 'demo', port: 80 }] }] } }],
    gateways: [{ kind: 'Gateway', metadata: { name: 'gw', namespace: 'demo' }, spec: { gatewayClassName: 'internal' } }],
    services: [{ kind: 'Service', metadata: { name: 'demo', namespace: 'demo' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', selector: { app: 'demo' } } }],
    endpointslices: [{
      kind: 'EndpointSlice', metadata: { name: 'demo-x', namespace: 'demo', labels: { 'kubernetes.io/service-name': 'demo' } },
      endpoints: [{ addresses: ['10.1.0.2'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'demo-a', namespace: 'demo' } }, { addresses: ['10.1.1.2'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'demo-b', namespace: 'demo' } }],
    }],
    traffic: { nodes: [], hosts: [{ class: 'external', host: 'demo.skiff.test', rps: 4, errorRps: 1 }, { class: 'internal', host: 'demo.skiff.test', rps: 100, errorRps: 0 }], upstreams: [{ upstream: '10.1.0.2:8080', rps: 3, errorRps: 0 }] },
  })
  const byId = new Map(map.nodes.map((n) => [n.id, n]))
  t.same(map.nodes.filter((n) => n.column === 'ingress').map((n) => n.id), ['ingress/node-1', 'ingress/node-2', 'ingress/node-3'])
  t.equal(byId.get('ingress/node-1')?.sub, 'external · 172.31.0.101', 'an ingress node shows its pool and its external address')
  t.same(byId.get('route/Ingress/demo/demo')?.rate, { rps: 4, errorRps: 1 }, "the Ingress has its class's rate for its host, not the other class's")
  const edges = map.edges.map((e) => `${e.from} ${e.to}`)
  t.same(edges.filter((e) => e.endsWith('route/Ingress/demo/demo')), ['ingress/node-1 route/Ingress/demo/demo', 'ingress/node-2 route/Ingress/demo/demo'], 'the external pool feeds the Ingress')
  t.same(edges.filter((e) => e.endsWith('route/HTTPRoute/demo/api')), ['ingress/node-3 route/HTTPRoute/demo/api'], "the HTTPRoute's Gateway class picks the internal pool")
  t.ok(edges.includes('route/HTTPRoute/demo/api service/demo/api') && edges.includes('route/HTTPRoute/demo/api service/demo/demo'), 'both backends')
  t.equal(byId.get('service/demo/api')?.ok, false, 'a backend Service that does not exist is shown as a problem')
  t.same(edges.filter((e) => e.startsWith('service/demo/demo ')), ['service/demo/demo pod/demo/demo-a', 'service/demo/demo pod/demo/demo-b'])
  t.equal(byId.get('pod/demo/demo-a')?.sub, '10.1.0.2 · node-1', 'a pod shows its IP and node')
  t.same(byId.get('pod/demo/demo-a')?.rate, { rps: 3, errorRps: 0 }, 'a pod has its endpoint address rate')
  t.equal(byId.get('pod/demo/demo-b')?.ok, false, 'a not-ready endpoint is marked')
  t.equal(new Set(edges).size, edges.length, 'no edge twice')
})

t.test('node rows, problems, events and pods of an object', async (t) => {
  const pods = [pod('a', 'node-1', '10.0.0.2'), pod('b', 'node-1', '10.0.0.3', { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: 'demo', restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } }] } })]
  const usage = [{ metadata: { name: 'node-1' }, usage: { cpu: '250000000n', memory: '524288Ki' } }]
  t.same(nodeRows([node('node-1', 'external')], pods, usage), [{ name: 'node-1', ready: true, pool: 'external', internalIP: '172.31.0.1', externalIP: '', pods: 2, cpu: '250m', memory: '512Mi', unschedulable: false }])
  t.equal(milliCores('2'), 2000)
  t.equal(mebibytes('1Gi'), 1024)
  const evs: Obj[] = [
    { metadata: { name: 'e1', creationTimestamp: '2026-12-04T00:00:01Z' }, type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container', count: 5, lastTimestamp: '2026-12-04T00:01:00Z', involvedObject: { kind: 'Pod', namespace: 'demo', name: 'b', uid: 'uid-b' } },
    { metadata: { name: 'e2' }, type: 'Normal', reason: 'Started', lastTimestamp: '2026-12-04T00:00:30Z', involvedObject: { kind: 'Pod', namespace: 'demo', name: 'a', uid: 'uid-a' } },
  ]
  const notReady = { ...node('node-2'), status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }
  const p = problems([node('node-1'), notReady], pods, evs, Date.parse('2026-12-04T01:00:00Z'))
  t.same(p.map((x) => `${x.severity} ${x.what} ${x.name}: ${x.text}`), [
    'error Node node-2: NotReady',
    'error Pod b: not Ready: CrashLoopBackOff, 4 restarts',
    'warning Event b: BackOff: Back-off restarting failed container (x5)',
  ], 'problems first: nodes, then pods, then Warning events; Normal events are not problems')
  t.same(eventsOf(pods[1]!, evs).map((e) => e.metadata.name), ['e1'], 'events by the involved object uid')
  const deploy: Obj = { kind: 'Deployment', metadata: { name: 'demo', namespace: 'demo' }, spec: { selector: { matchLabels: { app: 'demo' } } } }
  t.same(podsOf(deploy, pods).map((x) => x.metadata.name), ['a', 'b'])
  t.same(podsOf({ ...deploy, spec: { selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['demo'] }] } } }, pods), [], 'matchExpressions')
  t.same(podsOf({ kind: 'Service', metadata: { name: 's', namespace: 'demo' }, spec: {} }, pods), [], 'a Service without a selector has no pods')
})

t.test('toYaml round-trips JSON through a YAML parser', async (t) => {
  const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { 'app.kubernetes.io/name': 'x', yes: 'no' }, annotations: { note: 'line 1\nline: 2', empty: '' } }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 80 }], args: ['-v', '1', 'true', '#x'] }], tolerations: [], nodeSelector: {} }, status: { ready: true, n: null, ratio: 0.5 } }
  t.same(parseYaml(toYaml(obj)), obj)
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ minLength: 1 }), tie('value'), { maxKeys: 3 })),
  })).value
  fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1 }), json, { maxKeys: 4 }), (v) => {
    t.same(parseYaml(toYaml(v)) ?? {}, v)
    return true
  }), { numRuns: 200 })
})

t.test('browser modules: types stripped, .ts imports pointed at the served .js', async (t) => {
  const js = toBrowserModule("import { a, type B } from './model.ts'\nexport const x: number = a as number\nconst m = await import('./other.ts')\n")
  t.match(js, /from '\.\/model\.js'/)
  t.match(js, /import\('\.\/other\.js'\)/)
  t.notMatch(js, /: number|as number|type B/)
})

t.test('archived logs of an object: the pods of its selector that are gone, newest first', async (t) => {
  const entry = (pod: string, uid: string, archivedAt: string, labels: Record<string, string> = { app: 'demo' }, namespace = 'demo') => ({ namespace, pod, uid, container: 'demo', node: 'node-1', labels, archivedAt, size: 10 })
  const archived = [entry('old-1', 'u1', '2026-12-04T01:00:00Z'), entry('old-2', 'u2', '2026-12-04T02:00:00Z'), entry('live', 'uid-live', '2026-12-04T03:00:00Z'), entry('other', 'u3', '2026-12-04T04:00:00Z', { app: 'other' }), entry('elsewhere', 'u4', '2026-12-04T05:00:00Z', { app: 'demo' }, 'prod')]
  const deploy: Obj = { kind: 'Deployment', metadata: { name: 'demo', namespace: 'demo' }, spec: { selector: { matchLabels: { app: 'demo' } } } }
  t.same(archivedLogsOf(deploy, archived, [pod('live', 'node-1', '10.0.0.9', { metadata: { name: 'live', namespace: 'demo', uid: 'uid-live' } })]).map((a) => a.pod), ['old-2', 'old-1'], 'a live pod\'s old runs, another selector and another namespace are left out')
  t.same(archivedLogsOf({ kind: 'Pod', metadata: { name: 'old-1', namespace: 'demo' } }, archived, []).map((a) => a.uid), ['u1'], 'a pod by name')
})
