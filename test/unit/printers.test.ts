// printTable(): each case is one object and the cells `kubectl get -o wide`
// would show for it, by column name, as a real cluster prints them.

import t from 'tap'
import { humanDuration, printTable } from '../../controlplane/api/printers.ts'
import { resources } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

const info = (kind: string) => resources.find((r) => r.kind === kind)!
const now = new Date('2025-01-01T12:00:00Z')
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString()
const md = (name: string, extra: object = {}) => ({ name, namespace: 'default', creationTimestamp: ago(330), ...extra })

/** The row of `obj` as {column name: cell}. */
function row(kind: string, obj: KubeObject): Record<string, unknown> {
  const table = printTable(info(kind), [obj], { includeObject: 'None', now, resourceVersion: '1' })
  return Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, table.rows[0].cells[i]]))
}

t.test('humanDuration', async (t) => {
  const table: Array<[number, string]> = [
    [-5, '<invalid>'], [-1, '0s'], [0, '0s'], [45, '45s'], [119, '119s'], [120, '2m'], [330, '5m30s'], [599, '9m59s'], [600, '10m'],
    [125 * 60, '125m'], [3 * 3600, '3h'], [5.5 * 3600, '5h30m'], [8 * 3600, '8h'], [40 * 3600, '40h'], [48 * 3600, '2d'],
    [(3 * 24 + 5) * 3600, '3d5h'], [8 * 86400, '8d'], [120 * 86400, '120d'], [730 * 86400, '2y'], [(3 * 365 + 45) * 86400, '3y45d'], [9 * 365 * 86400, '9y'],
  ]
  for (const [s, want] of table) t.equal(humanDuration(s * 1000), want, `${s}s`)
})

interface Case {
  name: string
  kind: string
  obj: KubeObject
  want: Record<string, unknown>
}

const running = { running: { startedAt: ago(300) } }
const containers = [{ name: 'web', image: 'nginx:1.27' }, { name: 'log', image: 'busybox' }]

const cases: Case[] = [
  {
    name: 'running pod', kind: 'Pod',
    obj: { metadata: md('web-1'), spec: { nodeName: 'node-1', containers }, status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }], containerStatuses: [{ name: 'web', ready: true, restartCount: 0, state: running }, { name: 'log', ready: true, restartCount: 0, state: running }] } },
    want: { Name: 'web-1', Ready: '2/2', Status: 'Running', Restarts: '0', Age: '5m30s', IP: '10.244.1.5', Node: 'node-1', 'Nominated Node': '<none>', 'Readiness Gates': '<none>' },
  },
  { name: 'pending pod', kind: 'Pod', obj: { metadata: md('p'), spec: { containers }, status: { phase: 'Pending' } }, want: { Ready: '0/2', Status: 'Pending', IP: '<none>', Node: '<none>' } },
  {
    name: 'crash looping', kind: 'Pod',
    obj: { metadata: md('p'), spec: { containers: [containers[0]] }, status: { phase: 'Running', containerStatuses: [{ name: 'web', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, finishedAt: ago(60) } } }] } },
    want: { Ready: '0/1', Status: 'CrashLoopBackOff', Restarts: '3 (60s ago)' },
  },
  { name: 'creating', kind: 'Pod', obj: { metadata: md('p'), spec: { containers: [containers[0]] }, status: { phase: 'Pending', containerStatuses: [{ name: 'web', state: { waiting: { reason: 'ContainerCreating' } } }] } }, want: { Status: 'ContainerCreating' } },
  { name: 'completed', kind: 'Pod', obj: { metadata: md('p'), spec: { containers: [containers[0]] }, status: { phase: 'Succeeded', containerStatuses: [{ name: 'web', state: { terminated: { exitCode: 0, reason: 'Completed' } } }] } }, want: { Ready: '0/1', Status: 'Completed' } },
  { name: 'exit code without reason', kind: 'Pod', obj: { metadata: md('p'), spec: { containers: [containers[0]] }, status: { phase: 'Failed', containerStatuses: [{ name: 'web', state: { terminated: { exitCode: 2 } } }] } }, want: { Status: 'ExitCode:2' } },
  { name: 'terminating', kind: 'Pod', obj: { metadata: md('p', { deletionTimestamp: ago(5) }), spec: { containers: [containers[0]] }, status: { phase: 'Running' } }, want: { Status: 'Terminating' } },
  { name: 'init containers', kind: 'Pod', obj: { metadata: md('p'), spec: { initContainers: [{ name: 'a' }, { name: 'b' }], containers: [containers[0]] }, status: { phase: 'Pending', initContainerStatuses: [{ name: 'a', state: { terminated: { exitCode: 0 } } }, { name: 'b', state: { running: {} } }] } }, want: { Status: 'Init:1/2' } },
  { name: 'init crash', kind: 'Pod', obj: { metadata: md('p'), spec: { initContainers: [{ name: 'a' }], containers: [containers[0]] }, status: { phase: 'Pending', initContainerStatuses: [{ name: 'a', state: { waiting: { reason: 'CrashLoopBackOff' } } }] } }, want: { Status: 'Init:CrashLoopBackOff' } },
  {
    name: 'deployment', kind: 'Deployment',
    obj: { metadata: md('web'), spec: { replicas: 3, selector: { matchLabels: { app: 'web', tier: 'fe' } }, template: { spec: { containers } } }, status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 } },
    want: { Name: 'web', Ready: '2/3', 'Up-to-date': 3, Available: 2, Age: '5m30s', Containers: 'web,log', Images: 'nginx:1.27,busybox', Selector: 'app=web,tier=fe' },
  },
  { name: 'new deployment', kind: 'Deployment', obj: { metadata: md('web'), spec: { replicas: 1, selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['b', 'a'] }] } } }, want: { Ready: '0/1', 'Up-to-date': 0, Selector: 'app in (a,b)' } },
  { name: 'replicaset', kind: 'ReplicaSet', obj: { metadata: md('web-5d4'), spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { spec: { containers } } }, status: { replicas: 2, readyReplicas: 1 } }, want: { Desired: 2, Current: 2, Ready: 1, Containers: 'web,log' } },
  {
    name: 'daemonset', kind: 'DaemonSet',
    obj: { metadata: md('agent'), spec: { selector: { matchLabels: { app: 'agent' } }, template: { spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, containers } } }, status: { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 2, updatedNumberScheduled: 3, numberAvailable: 2 } },
    want: { Desired: 3, Current: 3, Ready: 2, 'Up-to-date': 3, Available: 2, 'Node Selector': 'kubernetes.io/os=linux', Selector: 'app=agent' },
  },
  { name: 'statefulset', kind: 'StatefulSet', obj: { metadata: md('db'), spec: { replicas: 3, selector: { matchLabels: { app: 'db' } }, template: { spec: { containers } } }, status: { replicas: 3, readyReplicas: 2 } }, want: { Name: 'db', Ready: '2/3', Age: '5m30s', Containers: 'web,log', Images: 'nginx:1.27,busybox' } },
  { name: 'new statefulset', kind: 'StatefulSet', obj: { metadata: md('db'), spec: { replicas: 1 } }, want: { Ready: '0/1' } },
  {
    name: 'controller revision', kind: 'ControllerRevision',
    obj: { metadata: md('db-5d8b9', { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u', controller: true }] }), revision: 4 } as KubeObject,
    want: { Name: 'db-5d8b9', Controller: 'statefulset.apps/db', Revision: 4, Age: '5m30s' },
  },
  { name: 'orphan controller revision', kind: 'ControllerRevision', obj: { metadata: md('x'), revision: 1 } as KubeObject, want: { Controller: '<none>' } },
  {
    name: 'ClusterIP service', kind: 'Service', obj: { metadata: md('web'), spec: { type: 'ClusterIP', clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12'], selector: { app: 'web' }, ports: [{ port: 80, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] } },
    want: { Type: 'ClusterIP', 'Cluster-IP': '10.96.0.12', 'External-IP': '<none>', 'Port(s)': '80/TCP,53/UDP', Selector: 'app=web' },
  },
  { name: 'NodePort service', kind: 'Service', obj: { metadata: md('web'), spec: { type: 'NodePort', clusterIP: '10.96.0.12', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] } }, want: { 'Port(s)': '80:30080/TCP', Selector: '<none>' } },
  { name: 'pending LoadBalancer', kind: 'Service', obj: { metadata: md('web'), spec: { type: 'LoadBalancer', clusterIP: '10.96.0.12', ports: [{ port: 80, nodePort: 31000, protocol: 'TCP' }] }, status: { loadBalancer: {} } }, want: { 'External-IP': '<pending>' } },
  { name: 'LoadBalancer with address', kind: 'Service', obj: { metadata: md('web'), spec: { type: 'LoadBalancer', ports: [] }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.9' }, { ip: '192.0.2.1' }] } } }, want: { 'External-IP': '192.0.2.1,192.0.2.9', 'Port(s)': '<none>' } },
  { name: 'ExternalName', kind: 'Service', obj: { metadata: md('db'), spec: { type: 'ExternalName', externalName: 'db.example.com' } }, want: { 'Cluster-IP': '<none>', 'External-IP': 'db.example.com', 'Port(s)': '<none>' } },
  {
    name: 'node', kind: 'Node',
    obj: {
      metadata: md('node-1', { labels: { 'node-role.kubernetes.io/control-plane': '', 'node-role.kubernetes.io/ingress': '' } }), spec: { unschedulable: true },
      status: { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { kubeletVersion: 'v1.32.0-skiff', osImage: 'Debian', kernelVersion: '6.1', containerRuntimeVersion: 'docker://26' }, addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] },
    },
    want: { Status: 'Ready,SchedulingDisabled', Roles: 'control-plane,ingress', Version: 'v1.32.0-skiff', 'Internal-IP': '172.18.0.2', 'External-IP': '<none>', 'OS-Image': 'Debian', 'Container-Runtime': 'docker://26' },
  },
  { name: 'node not ready, no info', kind: 'Node', obj: { metadata: md('n'), status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }, want: { Status: 'NotReady', Roles: '<none>', 'OS-Image': '<unknown>' } },
  { name: 'node without conditions', kind: 'Node', obj: { metadata: md('n') }, want: { Status: 'Unknown' } },
  { name: 'namespace', kind: 'Namespace', obj: { metadata: { name: 'team-a', creationTimestamp: ago(3 * 86400) }, status: { phase: 'Active' } }, want: { Name: 'team-a', Status: 'Active', Age: '3d' } },
  { name: 'configmap', kind: 'ConfigMap', obj: { metadata: md('cfg'), data: { a: '1', b: '2' }, binaryData: { c: 'AA==' } }, want: { Data: 3 } },
  { name: 'secret', kind: 'Secret', obj: { metadata: md('tls'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'x', 'tls.key': 'y' } }, want: { Type: 'kubernetes.io/tls', Data: 2 } },
  { name: 'service account', kind: 'ServiceAccount', obj: { metadata: md('default') }, want: { Secrets: 0 } },
  {
    name: 'endpoints', kind: 'Endpoints',
    obj: { metadata: md('web'), subsets: [{ addresses: [1, 2, 3, 4, 5].map((i) => ({ ip: `10.0.0.${i}` })), ports: [{ port: 80 }] }] },
    want: { Endpoints: '10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...' },
  },
  { name: 'endpoints without subsets', kind: 'Endpoints', obj: { metadata: md('web') }, want: { Endpoints: '<none>' } },
  {
    name: 'endpoint slice', kind: 'EndpointSlice',
    obj: { metadata: md('web-x'), addressType: 'IPv4', ports: [{ port: 8080 }, { name: 'dns' }], endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }] },
    want: { AddressType: 'IPv4', Ports: '8080,dns', Endpoints: '10.0.0.1,10.0.0.2' },
  },
  { name: 'empty endpoint slice', kind: 'EndpointSlice', obj: { metadata: md('web-x'), addressType: 'IPv4' }, want: { Ports: '<unset>', Endpoints: '<unset>' } },
  {
    name: 'event', kind: 'Event',
    obj: { metadata: md('web-1.17a'), involvedObject: { kind: 'Pod', name: 'web-1', fieldPath: 'spec.containers{web}' }, type: 'Normal', reason: 'Pulled', message: ' pulled \n', source: { component: 'kubelet', host: 'node-1' }, firstTimestamp: ago(600), lastTimestamp: ago(30), count: 4 },
    want: { 'Last Seen': '30s', Type: 'Normal', Reason: 'Pulled', Object: 'pod/web-1', Subobject: 'spec.containers{web}', Source: 'kubelet, node-1', Message: 'pulled', 'First Seen': '10m', Count: 4, Name: 'web-1.17a' },
  },
  { name: 'event without count', kind: 'Event', obj: { metadata: md('e'), involvedObject: { kind: 'Node' }, firstTimestamp: ago(5) }, want: { 'Last Seen': '5s', Object: 'node', Count: 1, Source: '' } },
  {
    name: 'ingress', kind: 'Ingress',
    obj: { metadata: md('web'), spec: { ingressClassName: 'external', rules: [{ host: 'a.example.com' }, { host: 'b.example.com' }], tls: [{ hosts: ['a.example.com'] }] }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } },
    want: { Class: 'external', Hosts: 'a.example.com,b.example.com', Address: '192.0.2.1', Ports: '80, 443' },
  },
  { name: 'ingress without class or hosts', kind: 'Ingress', obj: { metadata: md('web'), spec: { rules: [{ http: {} }] } }, want: { Class: '<none>', Hosts: '*', Address: '', Ports: '80' } },
  { name: 'ingress with many hosts', kind: 'Ingress', obj: { metadata: md('web'), spec: { rules: ['a', 'b', 'c', 'd', 'e'].map((h) => ({ host: `${h}.io` })) } }, want: { Hosts: 'a.io,b.io,c.io + 2 more...' } },
  { name: 'ingress class', kind: 'IngressClass', obj: { metadata: { name: 'external', creationTimestamp: ago(10) }, spec: { controller: 'skiff.dev/ingress', parameters: { apiGroup: 'skiff.dev', kind: 'Pool', name: 'ext' } } }, want: { Controller: 'skiff.dev/ingress', Parameters: 'Pool.skiff.dev/ext' } },
  { name: 'lease', kind: 'Lease', obj: { metadata: md('node-1'), spec: { holderIdentity: 'node-1' } }, want: { Holder: 'node-1' } },
]

for (const c of cases) {
  t.test(`${c.kind}: ${c.name}`, async (t) => {
    const got = row(c.kind, c.obj)
    for (const [column, value] of Object.entries(c.want)) t.same(got[column], value, column)
  })
}

t.test('column definitions', async (t) => {
  const cols = (kind: string) => printTable(info(kind), [], { includeObject: 'None', now, resourceVersion: '1' }).columnDefinitions
  const names = (kind: string, priority: number) => cols(kind).filter((c) => c.priority === priority).map((c) => c.name)
  t.same(names('Pod', 0), ['Name', 'Ready', 'Status', 'Restarts', 'Age'])
  t.same(names('Pod', 1), ['IP', 'Node', 'Nominated Node', 'Readiness Gates'])
  t.same(names('Service', 0), ['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age'])
  t.same(names('Deployment', 1), ['Containers', 'Images', 'Selector'])
  t.same(names('StatefulSet', 0), ['Name', 'Ready', 'Age'])
  t.same(names('StatefulSet', 1), ['Containers', 'Images'])
  t.same(names('Event', 0), ['Last Seen', 'Type', 'Reason', 'Object', 'Message'])
  t.same(cols('Pod')[0], { name: 'Name', type: 'string', format: 'name', description: cols('Pod')[0].description, priority: 0 })
  for (const r of resources) for (const c of cols(r.kind)) t.ok(c.description, `${r.kind} ${c.name} has a description`)
})

t.test('row objects follow includeObject', async (t) => {
  const pod: KubeObject = { metadata: md('web-1', { labels: { app: 'web' } }), spec: { containers: [] } }
  const print = (includeObject: 'None' | 'Metadata' | 'Object') => printTable(info('Pod'), [pod], { includeObject, now, resourceVersion: '42' })
  const table = print('Metadata')
  t.equal(table.kind, 'Table')
  t.equal(table.apiVersion, 'meta.k8s.io/v1')
  t.same(table.metadata, { resourceVersion: '42' })
  t.same(table.rows[0].object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pod.metadata })
  t.notOk('object' in print('None').rows[0], 'None: no object')
  t.same(print('Object').rows[0].object, { apiVersion: 'v1', kind: 'Pod', ...pod })
})

t.test('finished pods carry a Completed row condition', async (t) => {
  const table = printTable(info('Pod'), [{ metadata: md('p'), spec: { containers: [] }, status: { phase: 'Succeeded' } }], { includeObject: 'None', now, resourceVersion: '1' })
  t.same(table.rows[0].conditions, [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }])
})

t.test('unknown kinds print Name and Age', async (t) => {
  const fake = { ...info('ConfigMap'), kind: 'Widget' }
  const table = printTable(fake, [{ metadata: md('w') }], { includeObject: 'None', now, resourceVersion: '1' })
  t.same(table.columnDefinitions.map((c) => c.name), ['Name', 'Age'])
  t.same(table.rows[0].cells, ['w', '5m30s'])
})
