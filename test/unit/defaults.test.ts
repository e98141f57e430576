// applyDefaults(): each case applies one manifest and names the fields the
// real apiserver would have filled, by path, with their values.

import t from 'tap'
import { applyDefaults, computeQOSClass, defaultPullPolicy } from '../../controlplane/api/defaults.ts'
import { resources } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'

const info = (kind: string) => resources.find((r) => r.kind === kind)!

/** Read `a.b[0].c` (or `a["x.y"]`) from an object. */
function get(obj: unknown, path: string): unknown {
  const parts = path.match(/[^.[\]"]+|\["[^"]+"\]/g) ?? []
  return parts.reduce<any>((o, p) => o?.[p.startsWith('["') ? p.slice(2, -2) : p], obj)
}

const pod = (spec: object, extra: object = {}): KubeObject => ({ metadata: { name: 'p', namespace: 'default' }, spec, ...extra })
const web = { name: 'web', image: 'nginx' }

interface Case {
  name: string
  kind: string
  obj: KubeObject
  want: Record<string, unknown>
}

const cases: Case[] = [
  {
    name: 'pod spec', kind: 'Pod', obj: pod({ containers: [web] }),
    want: {
      'spec.restartPolicy': 'Always', 'spec.terminationGracePeriodSeconds': 30, 'spec.dnsPolicy': 'ClusterFirst', 'spec.schedulerName': 'default-scheduler',
      'spec.enableServiceLinks': true, 'spec.securityContext': {}, 'status.phase': 'Pending', 'status.qosClass': 'BestEffort',
    },
  },
  {
    name: 'container', kind: 'Pod', obj: pod({ containers: [{ ...web, ports: [{ containerPort: 80 }] }], initContainers: [{ name: 'init', image: 'busybox:1.36' }] }),
    want: {
      'spec.containers[0].imagePullPolicy': 'Always', 'spec.containers[0].terminationMessagePath': '/dev/termination-log', 'spec.containers[0].terminationMessagePolicy': 'File',
      'spec.containers[0].resources': {}, 'spec.containers[0].ports[0].protocol': 'TCP', 'spec.initContainers[0].imagePullPolicy': 'IfNotPresent',
    },
  },
  {
    name: 'probes', kind: 'Pod', obj: pod({ containers: [{ ...web, livenessProbe: { httpGet: { port: 80 } }, readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 3 } }] }),
    want: {
      'spec.containers[0].livenessProbe': { httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
      'spec.containers[0].readinessProbe.periodSeconds': 3,
    },
  },
  { name: 'explicit values are kept', kind: 'Pod', obj: pod({ containers: [{ ...web, imagePullPolicy: 'Never' }], restartPolicy: 'OnFailure', enableServiceLinks: false }), want: { 'spec.containers[0].imagePullPolicy': 'Never', 'spec.restartPolicy': 'OnFailure', 'spec.enableServiceLinks': false } },
  { name: 'volumes', kind: 'Pod', obj: pod({ containers: [web], volumes: [{ name: 'scratch' }, { name: 'cfg', configMap: { name: 'c' } }] }), want: { 'spec.volumes[0].emptyDir': {}, 'spec.volumes[1].configMap.defaultMode': 420 } },
  {
    name: 'limits only: requests copied, Guaranteed', kind: 'Pod', obj: pod({ containers: [{ ...web, resources: { limits: { cpu: '500m', memory: '64Mi' } } }] }),
    want: { 'spec.containers[0].resources.requests': { cpu: '500m', memory: '64Mi' }, 'status.qosClass': 'Guaranteed' },
  },
  { name: 'requests only: Burstable', kind: 'Pod', obj: pod({ containers: [{ ...web, resources: { requests: { cpu: '100m' } } }] }), want: { 'status.qosClass': 'Burstable' } },
  { name: 'existing phase kept', kind: 'Pod', obj: pod({ containers: [web] }, { status: { phase: 'Running' } }), want: { 'status.phase': 'Running' } },
  {
    name: 'deployment', kind: 'Deployment',
    obj: { metadata: { name: 'd' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [web] } } } },
    want: {
      'spec.replicas': 1, 'spec.strategy': { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } }, 'spec.revisionHistoryLimit': 10,
      'spec.progressDeadlineSeconds': 600, 'spec.template.spec.restartPolicy': 'Always', 'spec.template.spec.containers[0].imagePullPolicy': 'Always',
      'spec.selector': { matchLabels: { a: 'b' } }, status: undefined,
    },
  },
  { name: 'deployment replicas 0 kept', kind: 'Deployment', obj: { metadata: { name: 'd' }, spec: { replicas: 0 } }, want: { 'spec.replicas': 0 } },
  { name: 'Recreate has no rollingUpdate', kind: 'Deployment', obj: { metadata: { name: 'd' }, spec: { strategy: { type: 'Recreate' } } }, want: { 'spec.strategy': { type: 'Recreate' } } },
  { name: 'selector not taken from the template', kind: 'ReplicaSet', obj: { metadata: { name: 'r' }, spec: { template: { metadata: { labels: { a: 'b' } } } } }, want: { 'spec.replicas': 1, 'spec.selector': undefined } },
  {
    name: 'daemonset', kind: 'DaemonSet', obj: { metadata: { name: 'ds' }, spec: { template: { spec: { containers: [web] } } } },
    want: { 'spec.updateStrategy': { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } }, 'spec.revisionHistoryLimit': 10, 'spec.template.spec.dnsPolicy': 'ClusterFirst' },
  },
  {
    name: 'statefulset', kind: 'StatefulSet',
    obj: { metadata: { name: 'db' }, spec: { template: { spec: { containers: [web] } }, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'] } }] } },
    want: {
      'spec.replicas': 1, 'spec.podManagementPolicy': 'OrderedReady', 'spec.updateStrategy': { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }, 'spec.revisionHistoryLimit': 10,
      'spec.persistentVolumeClaimRetentionPolicy': { whenDeleted: 'Retain', whenScaled: 'Retain' }, 'spec.volumeClaimTemplates[0].spec.volumeMode': 'Filesystem',
      'spec.volumeClaimTemplates[0].status': { phase: 'Pending' }, 'spec.template.spec.dnsPolicy': 'ClusterFirst',
    },
  },
  { name: 'statefulset OnDelete gets no rollingUpdate', kind: 'StatefulSet', obj: { metadata: { name: 'db' }, spec: { updateStrategy: { type: 'OnDelete' } } }, want: { 'spec.updateStrategy': { type: 'OnDelete' } } },
  { name: 'statefulset partition kept', kind: 'StatefulSet', obj: { metadata: { name: 'db' }, spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } } }, want: { 'spec.updateStrategy.rollingUpdate.partition': 2 } },
  {
    name: 'ClusterIP service', kind: 'Service', obj: { metadata: { name: 's' }, spec: { ports: [{ port: 80 }, { port: 53, protocol: 'UDP', targetPort: 'dns' }] } },
    want: {
      'spec.type': 'ClusterIP', 'spec.sessionAffinity': 'None', 'spec.ports[0]': { port: 80, protocol: 'TCP', targetPort: 80 }, 'spec.ports[1].targetPort': 'dns',
      'spec.ipFamilies': ['IPv4'], 'spec.ipFamilyPolicy': 'SingleStack', 'spec.internalTrafficPolicy': 'Cluster', 'spec.externalTrafficPolicy': undefined,
      'spec.clusterIP': undefined, 'spec.allocateLoadBalancerNodePorts': undefined,
    },
  },
  { name: 'NodePort service', kind: 'Service', obj: { metadata: { name: 's' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } }, want: { 'spec.externalTrafficPolicy': 'Cluster', 'spec.ports[0].nodePort': undefined } },
  { name: 'LoadBalancer service', kind: 'Service', obj: { metadata: { name: 's' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } }, want: { 'spec.externalTrafficPolicy': 'Cluster', 'spec.allocateLoadBalancerNodePorts': true } },
  { name: 'ClientIP affinity', kind: 'Service', obj: { metadata: { name: 's' }, spec: { sessionAffinity: 'ClientIP', ports: [{ port: 80 }] } }, want: { 'spec.sessionAffinityConfig': { clientIP: { timeoutSeconds: 10800 } } } },
  { name: 'ExternalName service', kind: 'Service', obj: { metadata: { name: 's' }, spec: { type: 'ExternalName', externalName: 'db.example.com' } }, want: { 'spec.ipFamilies': undefined, 'spec.internalTrafficPolicy': undefined } },
  {
    name: 'secret stringData', kind: 'Secret', obj: { metadata: { name: 's' }, data: { a: 'eA==', b: 'eQ==' }, stringData: { b: 'hello', c: 'wörld' } },
    want: { type: 'Opaque', data: { a: 'eA==', b: 'aGVsbG8=', c: 'd8O2cmxk' }, stringData: undefined },
  },
  {
    name: 'namespace', kind: 'Namespace', obj: { metadata: { name: 'team-a' } },
    want: { 'spec.finalizers': ['kubernetes'], 'status.phase': 'Active', 'metadata.labels["kubernetes.io/metadata.name"]': 'team-a' },
  },
  { name: 'node allocatable from capacity', kind: 'Node', obj: { metadata: { name: 'n' }, status: { capacity: { cpu: '4', pods: '110' } } }, want: { 'status.allocatable': { cpu: '4', pods: '110' } } },
  { name: 'ingress pathType is not defaulted', kind: 'Ingress', obj: { metadata: { name: 'i' }, spec: { rules: [{ http: { paths: [{ path: '/' }] } }] } }, want: { 'spec.rules[0].http.paths[0].pathType': undefined } },
  { name: 'ingress class parameters scope', kind: 'IngressClass', obj: { metadata: { name: 'c' }, spec: { controller: 'a.b/c', parameters: { kind: 'X', name: 'y' } } }, want: { 'spec.parameters.scope': 'Cluster' } },
  { name: 'endpoint slice ports', kind: 'EndpointSlice', obj: { metadata: { name: 'e' }, addressType: 'IPv4', ports: [{ port: 80 }] }, want: { 'ports[0]': { port: 80, protocol: 'TCP', name: '' } } },
  { name: 'configmap untouched', kind: 'ConfigMap', obj: { metadata: { name: 'c' }, data: { a: 'b' } }, want: { data: { a: 'b' } } },
]

for (const c of cases) {
  t.test(`${c.kind}: ${c.name}`, async (t) => {
    const before = structuredClone(c.obj)
    const out = applyDefaults(info(c.kind), c.obj)
    for (const [path, value] of Object.entries(c.want)) t.same(get(out, path), value, path)
    t.same(c.obj, before, 'input not mutated')
  })
}

t.test('defaulting twice changes nothing', async (t) => {
  for (const c of cases) {
    const once = applyDefaults(info(c.kind), c.obj)
    t.same(applyDefaults(info(c.kind), once), once, c.name)
  }
})

t.test('image pull policy', async (t) => {
  const table: Array<[string, string]> = [
    ['nginx', 'Always'], ['nginx:latest', 'Always'], ['nginx:1.27', 'IfNotPresent'], ['registry:5000/nginx', 'Always'],
    ['registry:5000/nginx:1.0', 'IfNotPresent'], ['nginx@sha256:abc', 'IfNotPresent'], ['skiff/echo:local', 'IfNotPresent'],
  ]
  for (const [image, want] of table) t.equal(defaultPullPolicy(image), want, image)
})

t.test('QoS class', async (t) => {
  const c = (resources: object) => ({ name: 'c', image: 'i', resources })
  const table: Array<[string, object, string]> = [
    ['nothing', { containers: [c({})] }, 'BestEffort'],
    ['zero requests', { containers: [c({ requests: { cpu: '0' } })] }, 'BestEffort'],
    ['equal requests and limits', { containers: [c({ requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1000m', memory: '1Gi' } })] }, 'Guaranteed'],
    ['one container without limits', { containers: [c({ limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '1', memory: '1Gi' } }), c({})] }, 'Burstable'],
    ['cpu limit only', { containers: [c({ limits: { cpu: '1' }, requests: { cpu: '1' } })] }, 'Burstable'],
  ]
  for (const [name, spec, want] of table) t.equal(computeQOSClass(spec), want, name)
})
