import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { buildEndpointSlices } from '../../controlplane/controllers/endpointslice.ts'
import { buildEndpoints, planEndpoints } from '../../controlplane/controllers/endpoints.ts'

const managed = { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }

function svc(over: { selector?: Record<string, string> | null; ports?: any[]; type?: string; publishNotReadyAddresses?: boolean; clusterIP?: string } = {}): KubeObject {
  const spec: any = { type: over.type ?? 'ClusterIP', clusterIP: over.clusterIP ?? '10.96.0.20', ports: over.ports ?? [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }
  if (over.selector !== null) spec.selector = over.selector ?? { app: 'web' }
  if (over.publishNotReadyAddresses) spec.publishNotReadyAddresses = true
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', uid: 'svc-uid', labels: { team: 'a' } }, spec }
}

interface PodOpts {
  ip?: string
  ready?: boolean
  deleting?: boolean
  labels?: Record<string, string>
  ns?: string
  node?: string
  ports?: Array<{ name: string; containerPort: number; protocol?: string }>
  hostname?: string
  subdomain?: string
  phase?: string
}

function pod(name: string, o: PodOpts = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.ns ?? 'shop', uid: `uid-${name}`, labels: o.labels ?? { app: 'web' }, ...(o.deleting ? { deletionTimestamp: '2025-01-01T00:00:00Z' } : {}) },
    spec: { nodeName: o.node ?? 'n1', containers: [{ name: 'c', image: 'x', ports: o.ports ?? [] }], ...(o.hostname ? { hostname: o.hostname } : {}), ...(o.subdomain ? { subdomain: o.subdomain } : {}) },
    status: { phase: o.phase ?? 'Running', ...(o.ip === '' ? {} : { podIP: o.ip ?? '10.244.1.1' }), conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  }
}

/** A compact view of every slice a plan leaves: `ports -> ip:ready/serving/terminating`. */
function view(slices: KubeObject[]): string[] {
  return slices
    .map((s) => {
      const ports = (s.ports ?? []).map((p: any) => `${p.name}=${p.port}`).join(',') || '-'
      const eps = (s.endpoints ?? []).map((e: any) => `${e.addresses[0]}:${+e.conditions.ready}${+e.conditions.serving}${+e.conditions.terminating}`).join(' ')
      return `${ports} -> ${eps}`
    })
    .sort()
}

function existingSlice(name: string, ports: any[], endpoints: any[], rv = '10'): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'shop', resourceVersion: rv, labels: { team: 'a', ...managed }, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid', controller: true, blockOwnerDeletion: true }] },
    addressType: 'IPv4',
    ports,
    endpoints,
  }
}

const ep = (ip: string, name: string, c = { ready: true, serving: true, terminating: false }) => ({
  addresses: [ip],
  conditions: c,
  nodeName: 'n1',
  targetRef: { kind: 'Pod', namespace: 'shop', name, uid: `uid-${name}` },
})
const httpPort = [{ name: 'http', port: 8080, protocol: 'TCP' }]

const cases: Array<{ name: string; svc: KubeObject; pods: KubeObject[]; existing?: KubeObject[]; want: { create: string[]; update: string[]; delete: string[] } }> = [
  {
    name: 'ready, not-ready and terminating pods',
    svc: svc(),
    pods: [pod('a', { ip: '10.244.1.1' }), pod('b', { ip: '10.244.1.2', ready: false }), pod('c', { ip: '10.244.1.3', deleting: true }), pod('d', { ip: '10.244.1.4', ready: false, deleting: true })],
    want: { create: ['http=8080 -> 10.244.1.1:110 10.244.1.2:000 10.244.1.3:011 10.244.1.4:001'], update: [], delete: [] },
  },
  {
    name: 'pods without an IP, finished, in another namespace or not selected are left out',
    svc: svc(),
    pods: [pod('a', { ip: '' }), pod('b', { phase: 'Succeeded' }), pod('c', { ns: 'other' }), pod('d', { labels: { app: 'db' } }), pod('e', { ip: '10.244.2.9' })],
    want: { create: ['http=8080 -> 10.244.2.9:110'], update: [], delete: [] },
  },
  {
    name: 'named targetPort resolved differently on two pods gives one slice per port mapping; a pod without it is left out of that port',
    svc: svc({ ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }, { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' }] }),
    pods: [
      pod('a', { ip: '10.244.1.1', ports: [{ name: 'web', containerPort: 8080 }] }),
      pod('b', { ip: '10.244.1.2', ports: [{ name: 'web', containerPort: 9000 }] }),
      pod('c', { ip: '10.244.1.3', ports: [{ name: 'other', containerPort: 1 }] }),
      pod('d', { ip: '10.244.1.4', ports: [{ name: 'web', containerPort: 8080, protocol: 'UDP' }] }),
    ],
    want: { create: ['http=8080,metrics=9090 -> 10.244.1.1:110', 'http=9000,metrics=9090 -> 10.244.1.2:110', 'metrics=9090 -> 10.244.1.3:110 10.244.1.4:110'], update: [], delete: [] },
  },
  {
    name: 'publishNotReadyAddresses makes every endpoint ready and serving',
    svc: svc({ publishNotReadyAddresses: true }),
    pods: [pod('a', { ip: '10.244.1.1', ready: false }), pod('b', { ip: '10.244.1.2', deleting: true })],
    want: { create: ['http=8080 -> 10.244.1.1:110 10.244.1.2:111'], update: [], delete: [] },
  },
  {
    name: 'unchanged slice: nothing to do',
    svc: svc(),
    pods: [pod('a', { ip: '10.244.1.1' })],
    existing: [existingSlice('web-abcde', httpPort, [ep('10.244.1.1', 'a')])],
    want: { create: [], update: [], delete: [] },
  },
  {
    name: 'a pod turning not-ready rewrites its slice in place',
    svc: svc(),
    pods: [pod('a', { ip: '10.244.1.1', ready: false })],
    existing: [existingSlice('web-abcde', httpPort, [ep('10.244.1.1', 'a')])],
    want: { create: [], update: ['http=8080 -> 10.244.1.1:000'], delete: [] },
  },
  {
    name: 'a selector change swaps the endpoints in the existing slice',
    svc: svc({ selector: { app: 'web2' } }),
    pods: [pod('a', { ip: '10.244.1.1' }), pod('b', { ip: '10.244.1.2', labels: { app: 'web2' } })],
    existing: [existingSlice('web-abcde', httpPort, [ep('10.244.1.1', 'a')])],
    want: { create: [], update: ['http=8080 -> 10.244.1.2:110'], delete: [] },
  },
  {
    name: 'no endpoints left: the last slice stays as an empty placeholder, the others go',
    svc: svc(),
    pods: [],
    existing: [existingSlice('web-aaaaa', httpPort, [ep('10.244.1.1', 'a')]), existingSlice('web-bbbbb', httpPort, [ep('10.244.1.2', 'b')])],
    want: { create: [], update: ['- -> '], delete: ['http=8080 -> 10.244.1.2:110'] },
  },
  {
    name: 'no endpoints and no slice: a placeholder is created',
    svc: svc(),
    pods: [pod('x', { labels: { app: 'db' } })],
    want: { create: ['- -> '], update: [], delete: [] },
  },
  {
    name: 'a service without selector is left alone',
    svc: svc({ selector: null }),
    pods: [pod('a')],
    existing: [existingSlice('web-abcde', httpPort, [ep('10.244.1.1', 'a')]), { ...existingSlice('web-user', httpPort, [ep('10.0.0.1', 'ext')]), metadata: { name: 'web-user', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } } }],
    want: { create: [], update: [], delete: [] },
  },
  {
    name: 'an ExternalName service gets no slices',
    svc: svc({ type: 'ExternalName' }),
    pods: [pod('a')],
    existing: [existingSlice('web-abcde', httpPort, [ep('10.244.1.1', 'a')])],
    want: { create: [], update: [], delete: ['http=8080 -> 10.244.1.1:110'] },
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const plan = buildEndpointSlices(c.svc, c.pods, c.existing ?? [])
    t.same({ create: view(plan.create), update: view(plan.update), delete: view(plan.delete) }, c.want)
  })
}

t.test('more than 100 pods: full slices of 100, new endpoints fill existing room first', async (t) => {
  const pods = Array.from({ length: 250 }, (_, i) => pod(`p${String(i).padStart(3, '0')}`, { ip: `10.244.${1 + Math.floor(i / 200)}.${(i % 200) + 1}` }))
  const first = buildEndpointSlices(svc(), pods, [])
  t.same(first.create.map((s) => s.endpoints.length), [100, 100, 50])
  const existing = first.create.map((s, i) => ({ ...s, metadata: { ...s.metadata, name: `web-s${i}`, resourceVersion: '5' } }))
  const more = [...pods, pod('q1', { ip: '10.244.9.1' }), pod('q2', { ip: '10.244.9.2' })]
  const second = buildEndpointSlices(svc(), more, existing)
  t.same(second.create, [])
  t.same(second.delete, [])
  t.same(second.update.map((s) => [s.metadata.name, s.endpoints.length]), [['web-s2', 52]])
  const small = buildEndpointSlices(svc(), pods, [], { maxEndpointsPerSlice: 1000 })
  t.same(small.create.map((s) => s.endpoints.length), [250])
})

t.test('slice metadata: labels, owner, generateName, hostname for headless subdomain', async (t) => {
  const headless = svc({ clusterIP: 'None' })
  const plan = buildEndpointSlices(headless, [pod('a', { ip: '10.244.1.1', hostname: 'a-0', subdomain: 'web' }), pod('b', { ip: '10.244.1.2', hostname: 'b-0', subdomain: 'other' })], [])
  const s = plan.create[0]!
  t.equal(s.metadata.generateName, 'web-')
  t.equal(s.addressType, 'IPv4')
  t.same(s.metadata.labels, { team: 'a', ...managed, 'service.kubernetes.io/headless': '' })
  t.same(s.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid', controller: true, blockOwnerDeletion: true }])
  t.same(
    s.endpoints.map((e: any) => [e.addresses[0], e.hostname, e.nodeName, e.targetRef.name]),
    [
      ['10.244.1.1', 'a-0', 'n1', 'a'],
      ['10.244.1.2', undefined, 'n1', 'b'],
    ],
  )
})

t.test('a pod lacking the named targetPort: in a slice without that port, absent from legacy Endpoints (as Kubernetes)', async (t) => {
  const one = svc({ ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }] })
  const pods = [pod('a', { ip: '10.244.1.1', ports: [{ name: 'web', containerPort: 8080 }] }), pod('b', { ip: '10.244.1.2', ports: [{ name: 'other', containerPort: 1 }] })]
  t.same(view(buildEndpointSlices(one, pods, []).create), ['- -> 10.244.1.2:110', 'http=8080 -> 10.244.1.1:110'], 'EndpointSlice controller: a slice with ports [] (kube-proxy sends it nothing)')
  const ep = buildEndpoints(one, pods)
  t.same(ep.subsets.map((ss: any) => [(ss.addresses ?? []).map((a: any) => a.ip), ss.ports]), [[['10.244.1.1'], [{ name: 'http', port: 8080, protocol: 'TCP' }]]], 'Endpoints: b is not listed')
  const two = svc({ ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }, { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' }] })
  t.same(buildEndpoints(two, pods).subsets.map((ss: any) => [(ss.addresses ?? []).map((a: any) => a.ip), ss.ports.map((p: any) => p.name)]), [[['10.244.1.1'], ['http', 'metrics']], [['10.244.1.2'], ['metrics']]], 'a pod lacking one of two ports is listed under the other')
  const headlessNoPorts = svc({ ports: [], clusterIP: 'None' })
  t.same(buildEndpoints(headlessNoPorts, pods).subsets.map((ss: any) => (ss.addresses ?? []).map((a: any) => a.ip)), [['10.244.1.1', '10.244.1.2']], 'a headless Service without ports lists every pod')
})

t.test('legacy Endpoints: subsets per port mapping, not-ready apart, terminating left out', async (t) => {
  const s = svc({ ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }] })
  const pods = [
    pod('a', { ip: '10.244.1.2', ports: [{ name: 'web', containerPort: 8080 }] }),
    pod('b', { ip: '10.244.1.1', ready: false, ports: [{ name: 'web', containerPort: 8080 }] }),
    pod('c', { ip: '10.244.1.3', deleting: true, ports: [{ name: 'web', containerPort: 8080 }] }),
    pod('d', { ip: '10.244.1.4', ports: [{ name: 'web', containerPort: 9000 }] }),
  ]
  const want = buildEndpoints(s, pods)
  t.same(
    want.subsets.map((ss: any) => ({ ready: (ss.addresses ?? []).map((a: any) => a.ip), notReady: (ss.notReadyAddresses ?? []).map((a: any) => a.ip), ports: ss.ports })),
    [
      { ready: ['10.244.1.2'], notReady: ['10.244.1.1'], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
      { ready: ['10.244.1.4'], notReady: [], ports: [{ name: 'http', port: 9000, protocol: 'TCP' }] },
    ],
  )
  t.equal(want.metadata.labels?.['endpointslice.kubernetes.io/skip-mirror'], 'true')
  t.equal(planEndpoints(s, pods, undefined).op, 'create')
  t.equal(planEndpoints(s, pods, { ...want, metadata: { ...want.metadata, resourceVersion: '3' } }).op, 'none')
  t.equal(planEndpoints(s, pods.slice(0, 1), { ...want, metadata: { ...want.metadata, resourceVersion: '3' } }).op, 'update')
  t.equal(planEndpoints(undefined, pods, want).op, 'delete', 'a deleted Service takes our Endpoints along')
  t.equal(planEndpoints(svc({ selector: null }), pods, want).op, 'none', 'without a selector the Endpoints are the user’s')
  const unnamed = buildEndpoints(svc({ ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], publishNotReadyAddresses: true }), pods)
  t.equal(unnamed.subsets.length, 1)
  t.same(unnamed.subsets[0].addresses.map((a: any) => `${a.ip}/${a.targetRef.name}`), ['10.244.1.1/b', '10.244.1.2/a', '10.244.1.3/c', '10.244.1.4/d'], 'publishNotReadyAddresses lists every pod as ready')
  t.same(unnamed.subsets[0].ports, [{ port: 8080, protocol: 'TCP' }], 'an unnamed port has no name field')
})
