// validate(): each case is a manifest with one thing wrong and the exact
// causes (field path, reason, and where it matters the message) Kubernetes
// would answer with. Objects go through applyDefaults first, as in the apiserver.

import t from 'tap'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { resources } from '../../controlplane/api/resources.ts'
import type { KubeObject, StatusCause } from '../../controlplane/api/types.ts'
import { readSkiffAnnotation, validate } from '../../controlplane/api/validation.ts'

const info = (kind: string) => resources.find((r) => r.kind === kind)!
const meta = (name: string, extra: object = {}) => ({ name, namespace: 'default', ...extra })
const container = (extra: object = {}) => ({ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80, name: 'http' }], ...extra })
const podSpec = (extra: object = {}) => ({ containers: [container()], ...extra })
const template = (labels: object = { app: 'web' }, spec: object = podSpec()) => ({ metadata: { labels }, spec })

const valid: Record<string, KubeObject> = {
  Pod: { metadata: meta('web-1', { labels: { app: 'web', 'example.com/tier': 'front' } }), spec: podSpec() },
  Deployment: { metadata: meta('web'), spec: { selector: { matchLabels: { app: 'web' } }, template: template() } },
  ReplicaSet: { metadata: meta('web-abc'), spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: template() } },
  DaemonSet: { metadata: meta('agent'), spec: { selector: { matchLabels: { app: 'web' } }, template: template() } },
  StatefulSet: {
    metadata: meta('db'),
    spec: {
      serviceName: 'db', selector: { matchLabels: { app: 'web' } },
      template: template({ app: 'web' }, podSpec({ containers: [container({ volumeMounts: [{ name: 'data', mountPath: '/data' }] })] })),
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  },
  ControllerRevision: { metadata: meta('db-5d8b9'), data: { spec: { template: { $patch: 'replace' } } }, revision: 1 } as KubeObject,
  Service: { metadata: meta('web'), spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } },
  Ingress: {
    metadata: meta('web', { annotations: { 'skiff.dev/methods': 'GET,HEAD', 'skiff.dev/proxy-read-timeout': '30s' } }),
    spec: {
      ingressClassName: 'external',
      rules: [{ host: '*.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
      tls: [{ hosts: ['www.example.com'], secretName: 'web-tls' }],
    },
  },
  IngressClass: { metadata: { name: 'external' }, spec: { controller: 'skiff.dev/ingress' } },
  ConfigMap: { metadata: meta('cfg'), data: { 'app.conf': 'x', KEY_NAME: 'y' } },
  Secret: { metadata: meta('tls'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } },
  Namespace: { metadata: { name: 'team-a' } },
  Node: { metadata: { name: 'node-1' }, spec: { podCIDR: '10.244.1.0/24' } },
  Lease: { metadata: meta('node-1'), spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 } },
  EndpointSlice: { metadata: meta('web-abc'), addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'http', port: 8080 }] },
  Endpoints: { metadata: meta('web'), subsets: [{ addresses: [{ ip: '10.244.1.5' }], ports: [{ port: 80 }] }] },
  Event: { metadata: meta('web-1.17a'), involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'default' }, reason: 'Started' },
  ServiceAccount: { metadata: meta('default') },
}

function run(kind: string, obj: KubeObject, old?: KubeObject): StatusCause[] {
  const i = info(kind)
  return validate(i, applyDefaults(i, obj), old && applyDefaults(i, old), { nodePortRange: { min: 30000, max: 32767 } })
}

t.test('valid objects have no causes', async (t) => {
  for (const [kind, obj] of Object.entries(valid)) t.same(run(kind, obj), [], kind)
})

/** A copy of valid[kind] changed by `edit`. */
function bad(kind: string, edit: (o: any) => void): KubeObject {
  const o = structuredClone(valid[kind])
  edit(o)
  return o
}

type Want = [field: string, reason: string, message?: string]
interface Case {
  name: string
  kind: string
  obj: KubeObject
  old?: KubeObject
  want: Want[]
}

const cases: Case[] = [
  // metadata
  { name: 'missing name', kind: 'Pod', obj: bad('Pod', (o) => delete o.metadata.name), want: [['metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required']] },
  {
    name: 'upper-case name', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => (o.metadata.name = 'Web')),
    want: [['metadata.name', 'FieldValueInvalid', `Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`]],
  },
  { name: 'namespace name with dots', kind: 'Namespace', obj: { metadata: { name: 'team.a' } }, want: [['metadata.name', 'FieldValueInvalid', 'Invalid value: "team.a": must not contain dots']] },
  { name: 'service name starting with a digit', kind: 'Service', obj: bad('Service', (o) => (o.metadata.name = '1web')), want: [['metadata.name', 'FieldValueInvalid']] },
  { name: 'name too long', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => (o.metadata.name = 'a'.repeat(254))), want: [['metadata.name', 'FieldValueInvalid', 'Invalid value: "' + 'a'.repeat(254) + '": must be no more than 253 characters']] },
  { name: 'namespace on a cluster-scoped kind', kind: 'Node', obj: bad('Node', (o) => (o.metadata.namespace = 'x')), want: [['metadata.namespace', 'FieldValueForbidden', 'Forbidden: not allowed on this type']] },
  { name: 'no namespace on a namespaced kind', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => delete o.metadata.namespace), want: [['metadata.namespace', 'FieldValueRequired']] },
  { name: 'label key with two slashes', kind: 'Pod', obj: bad('Pod', (o) => (o.metadata.labels = { 'a/b/c': 'x' })), want: [['metadata.labels', 'FieldValueInvalid']] },
  { name: 'label value too long', kind: 'Pod', obj: bad('Pod', (o) => (o.metadata.labels = { app: 'x'.repeat(64) })), want: [['metadata.labels', 'FieldValueInvalid']] },
  { name: 'label value with a space', kind: 'Pod', obj: bad('Pod', (o) => (o.metadata.labels = { app: 'a b' })), want: [['metadata.labels', 'FieldValueInvalid']] },
  { name: 'annotation too large', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => (o.metadata.annotations = { big: 'x'.repeat(256 * 1024) })), want: [['metadata.annotations', 'FieldValueTooLong', 'Too long: must have at most 262144 bytes']] },
  { name: 'owner reference without uid', kind: 'Pod', obj: bad('Pod', (o) => (o.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs' }])), want: [['metadata.ownerReferences[0].uid', 'FieldValueInvalid', 'Invalid value: "": must not be empty']] },
  // pods
  { name: 'no containers', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers = [])), want: [['spec.containers', 'FieldValueRequired', 'Required value']] },
  { name: 'no image', kind: 'Pod', obj: bad('Pod', (o) => delete o.spec.containers[0].image), want: [['spec.containers[0].image', 'FieldValueRequired']] },
  { name: 'duplicate container name with an init container', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.initContainers = [{ name: 'web', image: 'busybox' }])), want: [['spec.initContainers[0].name', 'FieldValueDuplicate', 'Duplicate value: "web"']] },
  { name: 'container port 0 is required', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].containerPort = 0)), want: [['spec.containers[0].ports[0].containerPort', 'FieldValueRequired']] },
  { name: 'container port out of range', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].containerPort = 70000)), want: [['spec.containers[0].ports[0].containerPort', 'FieldValueInvalid', 'Invalid value: 70000: must be between 1 and 65535, inclusive']] },
  { name: 'bad port protocol', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].protocol = 'HTTP')), want: [['spec.containers[0].ports[0].protocol', 'FieldValueNotSupported', 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']] },
  { name: 'port name with two hyphens', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].name = 'a--b')), want: [['spec.containers[0].ports[0].name', 'FieldValueInvalid', 'Invalid value: "a--b": must not contain consecutive hyphens']] },
  { name: 'port name without letters', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].name = '8080')), want: [['spec.containers[0].ports[0].name', 'FieldValueInvalid', 'Invalid value: "8080": must contain at least one letter (a-z)']] },
  { name: 'same containerPort twice', kind: 'Pod', obj: bad('Pod', (o) => o.spec.containers[0].ports.push({ containerPort: 80 })), want: [['spec.containers[0].ports[1].containerPort', 'FieldValueDuplicate']] },
  { name: 'env name with =', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].env = [{ name: 'A=B', value: 'x' }])), want: [['spec.containers[0].env[0].name', 'FieldValueInvalid']] },
  { name: 'bad restartPolicy', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.restartPolicy = 'Sometimes')), want: [['spec.restartPolicy', 'FieldValueNotSupported', 'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"']] },
  { name: 'bad dnsPolicy', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.dnsPolicy = 'Google')), want: [['spec.dnsPolicy', 'FieldValueNotSupported']] },
  { name: 'mount of an undeclared volume', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].volumeMounts = [{ name: 'data', mountPath: '/data' }])), want: [['spec.containers[0].volumeMounts[0].name', 'FieldValueNotFound', 'Not found: "data"']] },
  { name: 'duplicate volume', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.volumes = [{ name: 'v', emptyDir: {} }, { name: 'v', emptyDir: {} }])), want: [['spec.volumes[1].name', 'FieldValueDuplicate']] },
  { name: 'volume with two sources', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.volumes = [{ name: 'v', emptyDir: {}, configMap: { name: 'c' } }])), want: [['spec.volumes[0].configMap', 'FieldValueForbidden', 'Forbidden: may not specify more than 1 volume type']] },
  { name: 'probe without a handler', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].livenessProbe = { periodSeconds: 5 })), want: [['spec.containers[0].livenessProbe', 'FieldValueRequired', 'Required value: must specify a handler type']] },
  {
    name: 'probe with two handlers', kind: 'Pod',
    obj: bad('Pod', (o) => (o.spec.containers[0].readinessProbe = { httpGet: { port: 80 }, tcpSocket: { port: 'http' } })),
    want: [['spec.containers[0].readinessProbe.tcpSocket', 'FieldValueForbidden', 'Forbidden: may not specify more than 1 handler type']],
  },
  { name: 'liveness successThreshold', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].livenessProbe = { tcpSocket: { port: 80 }, successThreshold: 2 })), want: [['spec.containers[0].livenessProbe.successThreshold', 'FieldValueInvalid', 'Invalid value: 2: must be 1']] },
  { name: 'bad cpu quantity', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].resources = { limits: { cpu: '1 core' } })), want: [['spec.containers[0].resources.limits[cpu]', 'FieldValueInvalid']] },
  {
    name: 'request above limit', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].resources = { limits: { memory: '64Mi' }, requests: { memory: '1Gi' } })),
    want: [['spec.containers[0].resources.requests', 'FieldValueInvalid', 'Invalid value: "1Gi": must be less than or equal to memory limit of 64Mi']],
  },
  { name: 'bad nodeSelector', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.nodeSelector = { 'bad key!': 'x' })), want: [['spec.nodeSelector', 'FieldValueInvalid']] },
  { name: 'pod spec change on update', kind: 'Pod', obj: bad('Pod', (o) => (o.spec.containers[0].ports[0].containerPort = 81)), old: valid.Pod, want: [['spec', 'FieldValueForbidden']] },
  // workloads
  { name: 'deployment without selector', kind: 'Deployment', obj: bad('Deployment', (o) => delete o.spec.selector), want: [['spec.selector', 'FieldValueRequired']] },
  { name: 'empty selector', kind: 'ReplicaSet', obj: bad('ReplicaSet', (o) => (o.spec.selector = {})), want: [['spec.selector', 'FieldValueInvalid']] },
  {
    name: 'selector does not match the template', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.template.metadata.labels = { app: 'api' })),
    want: [['spec.template.metadata.labels', 'FieldValueInvalid', 'Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`']],
  },
  { name: 'negative replicas', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.replicas = -1)), want: [['spec.replicas', 'FieldValueInvalid', 'Invalid value: -1: must be greater than or equal to 0']] },
  { name: 'bad strategy type', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.strategy = { type: 'BlueGreen' })), want: [['spec.strategy.type', 'FieldValueNotSupported']] },
  {
    name: 'maxSurge and maxUnavailable both 0', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } })),
    want: [['spec.strategy.rollingUpdate.maxUnavailable', 'FieldValueInvalid', 'Invalid value: 0%: may not be 0 when `maxSurge` is 0']],
  },
  { name: 'maxSurge not a percent', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 'many' } })), want: [['spec.strategy.rollingUpdate.maxSurge', 'FieldValueInvalid']] },
  { name: 'template restartPolicy Never', kind: 'Deployment', obj: bad('Deployment', (o) => (o.spec.template.spec.restartPolicy = 'Never')), want: [['spec.template.spec.restartPolicy', 'FieldValueNotSupported', 'Unsupported value: "Never": supported values: "Always"']] },
  { name: 'template container without image', kind: 'Deployment', obj: bad('Deployment', (o) => o.spec.template.spec.containers.push({ name: 'side' })), want: [['spec.template.spec.containers[1].image', 'FieldValueRequired']] },
  {
    name: 'selector changed on update', kind: 'Deployment',
    obj: bad('Deployment', (o) => { o.spec.selector = { matchLabels: { app: 'web', v: '2' } }; o.spec.template.metadata.labels = { app: 'web', v: '2' } }),
    old: valid.Deployment, want: [['spec.selector', 'FieldValueInvalid']],
  },
  { name: 'daemonset surge and unavailable', kind: 'DaemonSet', obj: bad('DaemonSet', (o) => (o.spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } })), want: [['spec.updateStrategy.rollingUpdate.maxSurge', 'FieldValueInvalid']] },
  { name: 'statefulset podManagementPolicy', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.podManagementPolicy = 'Random')), want: [['spec.podManagementPolicy', 'FieldValueInvalid', `Invalid value: "Random": must be 'OrderedReady' or 'Parallel'`]] },
  { name: 'statefulset negative replicas', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.replicas = -1)), want: [['spec.replicas', 'FieldValueInvalid', 'Invalid value: -1: must be greater than or equal to 0']] },
  { name: 'statefulset selector does not match', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.template.metadata.labels = { app: 'db' })), want: [['spec.template.metadata.labels', 'FieldValueInvalid']] },
  { name: 'statefulset bad update strategy', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.updateStrategy = { type: 'Recreate' })), want: [['spec.updateStrategy', 'FieldValueInvalid']] },
  { name: 'statefulset OnDelete with rollingUpdate', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.updateStrategy = { type: 'OnDelete', rollingUpdate: { partition: 1 } })), want: [['spec.updateStrategy.rollingUpdate', 'FieldValueInvalid']] },
  { name: 'statefulset negative partition', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: -1 } })), want: [['spec.updateStrategy.rollingUpdate.partition', 'FieldValueInvalid']] },
  { name: 'statefulset claim template without a name', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => delete o.spec.volumeClaimTemplates[0].metadata.name), want: [['spec.volumeClaimTemplates[0].metadata.name', 'FieldValueRequired'], ['spec.template.spec.containers[0].volumeMounts[0].name', 'FieldValueNotFound']] },
  { name: 'statefulset bad serviceName', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.serviceName = 'DB')), want: [['spec.serviceName', 'FieldValueInvalid']] },
  { name: 'statefulset retention policy', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: 'Keep' })), want: [['spec.persistentVolumeClaimRetentionPolicy.whenDeleted', 'FieldValueNotSupported']] },
  { name: 'statefulset serviceName changed', kind: 'StatefulSet', obj: bad('StatefulSet', (o) => (o.spec.serviceName = 'other')), old: valid.StatefulSet, want: [['spec', 'FieldValueForbidden']] },
  { name: 'controllerrevision without data', kind: 'ControllerRevision', obj: bad('ControllerRevision', (o) => delete o.data), want: [['data', 'FieldValueRequired']] },
  // services
  { name: 'bad service type', kind: 'Service', obj: bad('Service', (o) => (o.spec.type = 'Foo')), want: [['spec.type', 'FieldValueNotSupported', 'Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']] },
  { name: 'service port 0', kind: 'Service', obj: bad('Service', (o) => (o.spec.ports[0].port = 0)), want: [['spec.ports[0].port', 'FieldValueInvalid', 'Invalid value: 0: must be between 1 and 65535, inclusive']] },
  { name: 'no ports', kind: 'Service', obj: bad('Service', (o) => delete o.spec.ports), want: [['spec.ports', 'FieldValueRequired']] },
  { name: 'two ports, one unnamed', kind: 'Service', obj: bad('Service', (o) => o.spec.ports.push({ name: 'https', port: 443 })), want: [['spec.ports[0].name', 'FieldValueRequired']] },
  { name: 'duplicate port name', kind: 'Service', obj: bad('Service', (o) => (o.spec.ports = [{ name: 'a', port: 80 }, { name: 'a', port: 81 }])), want: [['spec.ports[1].name', 'FieldValueDuplicate']] },
  { name: 'targetPort as a numeric string', kind: 'Service', obj: bad('Service', (o) => (o.spec.ports[0].targetPort = '8080')), want: [['spec.ports[0].targetPort', 'FieldValueInvalid']] },
  { name: 'nodePort on ClusterIP', kind: 'Service', obj: bad('Service', (o) => (o.spec.ports[0].nodePort = 30080)), want: [['spec.ports[0].nodePort', 'FieldValueForbidden', "Forbidden: may not be used when `type` is 'ClusterIP'"]] },
  {
    name: 'nodePort out of range', kind: 'Service', obj: bad('Service', (o) => { o.spec.type = 'NodePort'; o.spec.ports[0].nodePort = 8080 }),
    want: [['spec.ports[0].nodePort', 'FieldValueInvalid', 'Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767']],
  },
  { name: 'bad clusterIP', kind: 'Service', obj: bad('Service', (o) => (o.spec.clusterIP = '10.96.0.300')), want: [['spec.clusterIP', 'FieldValueInvalid']] },
  { name: 'ExternalName without a name', kind: 'Service', obj: bad('Service', (o) => { o.spec.type = 'ExternalName'; delete o.spec.selector }), want: [['spec.externalName', 'FieldValueRequired']] },
  { name: 'ExternalName with a clusterIP', kind: 'Service', obj: bad('Service', (o) => { o.spec.type = 'ExternalName'; o.spec.externalName = 'db.example.com'; o.spec.clusterIP = '10.96.0.5' }), want: [['spec.clusterIP', 'FieldValueForbidden']] },
  { name: 'ClientIP timeout too long', kind: 'Service', obj: bad('Service', (o) => { o.spec.sessionAffinity = 'ClientIP'; o.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 90000 } } }), want: [['spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'FieldValueInvalid']] },
  { name: 'externalTrafficPolicy on ClusterIP', kind: 'Service', obj: bad('Service', (o) => (o.spec.externalTrafficPolicy = 'Local')), want: [['spec.externalTrafficPolicy', 'FieldValueInvalid', 'Invalid value: "Local": may only be set for externally-accessible services']] },
  { name: 'bad selector label', kind: 'Service', obj: bad('Service', (o) => (o.spec.selector = { app: 'a b' })), want: [['spec.selector', 'FieldValueInvalid']] },
  { name: 'clusterIP changed', kind: 'Service', obj: bad('Service', (o) => (o.spec.clusterIP = '10.96.0.20')), old: bad('Service', (o) => (o.spec.clusterIP = '10.96.0.10')), want: [['spec.clusterIP', 'FieldValueInvalid', 'Invalid value: "10.96.0.20": may not change once set']] },
  // ingress
  { name: 'IP as a host', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].host = '10.0.0.1')), want: [['spec.rules[0].host', 'FieldValueInvalid', 'Invalid value: "10.0.0.1": must be a DNS name, not an IP address']] },
  { name: 'host with a port', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].host = 'example.com:80')), want: [['spec.rules[0].host', 'FieldValueInvalid']] },
  { name: 'deep wildcard', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].host = '*.*.example.com')), want: [['spec.rules[0].host', 'FieldValueInvalid']] },
  { name: 'no paths', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].http.paths = [])), want: [['spec.rules[0].http.paths', 'FieldValueRequired']] },
  { name: 'no pathType', kind: 'Ingress', obj: bad('Ingress', (o) => delete o.spec.rules[0].http.paths[0].pathType), want: [['spec.rules[0].http.paths[0].pathType', 'FieldValueRequired', 'Required value: pathType must be specified']] },
  { name: 'relative Prefix path', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].http.paths[0].path = 'api')), want: [['spec.rules[0].http.paths[0].path', 'FieldValueInvalid', 'Invalid value: "api": must be an absolute path']] },
  { name: 'bad pathType', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].http.paths[0].pathType = 'Regex')), want: [['spec.rules[0].http.paths[0].pathType', 'FieldValueNotSupported', 'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"']] },
  { name: 'backend port name and number', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].http.paths[0].backend.service.port.name = 'http')), want: [['spec.rules[0].http.paths[0].backend', 'FieldValueInvalid', 'Invalid value: "": cannot set both port name & port number']] },
  { name: 'backend without service name', kind: 'Ingress', obj: bad('Ingress', (o) => delete o.spec.rules[0].http.paths[0].backend.service.name), want: [['spec.rules[0].http.paths[0].backend.service.name', 'FieldValueRequired']] },
  { name: 'backend port out of range', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.rules[0].http.paths[0].backend.service.port.number = 70000)), want: [['spec.rules[0].http.paths[0].backend.service.port.number', 'FieldValueInvalid']] },
  { name: 'bad tls host', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.tls[0].hosts = ['Bad_Host'])), want: [['spec.tls[0].hosts[0]', 'FieldValueInvalid']] },
  { name: 'bad tls secret name', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.tls[0].secretName = 'Web TLS')), want: [['spec.tls[0].secretName', 'FieldValueInvalid']] },
  { name: 'bad class name', kind: 'Ingress', obj: bad('Ingress', (o) => (o.spec.ingressClassName = 'External')), want: [['spec.ingressClassName', 'FieldValueInvalid']] },
  { name: 'no rules and no default backend', kind: 'Ingress', obj: bad('Ingress', (o) => delete o.spec.rules), want: [['spec', 'FieldValueInvalid']] },
  { name: 'controller without a domain', kind: 'IngressClass', obj: { metadata: { name: 'x' }, spec: { controller: 'ingress' } }, want: [['spec.controller', 'FieldValueInvalid', 'Invalid value: "ingress": must be a domain-prefixed path (such as "acme.io/foo")']] },
  { name: 'controller missing', kind: 'IngressClass', obj: { metadata: { name: 'x' }, spec: {} }, want: [['spec.controller', 'FieldValueRequired']] },
  // configuration
  { name: 'configmap key with a slash', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => (o.data['a/b'] = 'x')), want: [['data[a/b]', 'FieldValueInvalid']] },
  { name: 'key in data and binaryData', kind: 'ConfigMap', obj: bad('ConfigMap', (o) => (o.binaryData = { KEY_NAME: 'eA==' })), want: [['data[KEY_NAME]', 'FieldValueInvalid', 'Invalid value: "KEY_NAME": duplicate of key present in binaryData']] },
  { name: 'secret value not base64', kind: 'Secret', obj: bad('Secret', (o) => (o.data['tls.key'] = 'not base64!')), want: [['data[tls.key]', 'FieldValueInvalid']] },
  { name: 'tls secret without key', kind: 'Secret', obj: bad('Secret', (o) => delete o.data['tls.key']), want: [['data[tls.key]', 'FieldValueRequired']] },
  { name: 'secret type changed', kind: 'Secret', obj: bad('Secret', (o) => (o.type = 'Opaque')), old: valid.Secret, want: [['type', 'FieldValueInvalid', 'Invalid value: "Opaque": field is immutable']] },
  { name: 'lease duration 0', kind: 'Lease', obj: bad('Lease', (o) => (o.spec.leaseDurationSeconds = 0)), want: [['spec.leaseDurationSeconds', 'FieldValueInvalid', 'Invalid value: 0: must be greater than 0']] },
  { name: 'node podCIDR', kind: 'Node', obj: bad('Node', (o) => (o.spec.podCIDR = '10.244.1.0')), want: [['spec.podCIDR', 'FieldValueInvalid']] },
  { name: 'slice address type', kind: 'EndpointSlice', obj: bad('EndpointSlice', (o) => (o.addressType = 'IP')), want: [['addressType', 'FieldValueNotSupported', 'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"']] },
  { name: 'slice IPv6 address in IPv4 slice', kind: 'EndpointSlice', obj: bad('EndpointSlice', (o) => (o.endpoints[0].addresses = ['fd00::1'])), want: [['endpoints[0].addresses[0]', 'FieldValueInvalid', 'Invalid value: "fd00::1": must be a valid IPv4 address']] },
  { name: 'slice endpoint without addresses', kind: 'EndpointSlice', obj: bad('EndpointSlice', (o) => (o.endpoints[0].addresses = [])), want: [['endpoints[0].addresses', 'FieldValueRequired']] },
  { name: 'event without involvedObject', kind: 'Event', obj: bad('Event', (o) => delete o.involvedObject), want: [['involvedObject', 'FieldValueRequired']] },
  { name: 'event in another namespace', kind: 'Event', obj: bad('Event', (o) => (o.involvedObject.namespace = 'other')), want: [['involvedObject.namespace', 'FieldValueInvalid']] },
  // skiff.dev annotations
  { name: 'bad method', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/methods'] = 'GET,FETCH')), want: [['metadata.annotations[skiff.dev/methods]', 'FieldValueInvalid']] },
  {
    name: 'bad load-balance', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/load-balance'] = 'random')),
    want: [['metadata.annotations[skiff.dev/load-balance]', 'FieldValueNotSupported', 'Unsupported value: "random": supported values: "round-robin", "least-request", "cookie"']],
  },
  { name: 'bad duration', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/proxy-read-timeout'] = '30')), want: [['metadata.annotations[skiff.dev/proxy-read-timeout]', 'FieldValueInvalid']] },
  { name: 'bad size', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/proxy-body-size'] = '10 MB')), want: [['metadata.annotations[skiff.dev/proxy-body-size]', 'FieldValueInvalid']] },
  { name: 'bad CIDR', kind: 'Service', obj: bad('Service', (o) => (o.metadata.annotations = { 'skiff.dev/allow-source-ranges': '10.0.0.0/8, 300.1.1.1/32' })), want: [['metadata.annotations[skiff.dev/allow-source-ranges]', 'FieldValueInvalid']] },
  { name: 'rewrite-target not absolute', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/rewrite-target'] = 'api')), want: [['metadata.annotations[skiff.dev/rewrite-target]', 'FieldValueInvalid']] },
  { name: 'ssl-redirect not a bool', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/ssl-redirect'] = 'yes')), want: [['metadata.annotations[skiff.dev/ssl-redirect]', 'FieldValueNotSupported']] },
  { name: 'unknown skiff annotation', kind: 'Ingress', obj: bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/method'] = 'GET')), want: [['metadata.annotations[skiff.dev/method]', 'FieldValueNotSupported']] },
  { name: 'ingress-only annotation on a service', kind: 'Service', obj: bad('Service', (o) => (o.metadata.annotations = { 'skiff.dev/methods': 'GET' })), want: [['metadata.annotations[skiff.dev/methods]', 'FieldValueForbidden', 'Forbidden: applies only to Ingress']] },
]

for (const c of cases) {
  t.test(`${c.kind}: ${c.name}`, async (t) => {
    const got = run(c.kind, c.obj, c.old)
    t.same(got.map((x) => [x.field, x.reason]).sort(), c.want.map(([f, r]) => [f, r]).sort(), 'fields and reasons')
    for (const [field, , message] of c.want) if (message) t.equal(got.find((x) => x.field === field)?.message, message, `message of ${field}`)
  })
}

t.test('the unknown-annotation error lists the known keys', async (t) => {
  const [cause] = run('Ingress', bad('Ingress', (o) => (o.metadata.annotations['skiff.dev/nope'] = 'x')))
  t.match(cause.message, /supported values: .*"skiff.dev\/allow-source-ranges", .*"skiff.dev\/methods"/)
})

t.test('readSkiffAnnotation returns typed values', async (t) => {
  const ing = bad('Ingress', (o) => Object.assign(o.metadata.annotations, { 'skiff.dev/proxy-body-size': '10Mi', 'skiff.dev/ssl-redirect': 'false', 'skiff.dev/allow-source-ranges': '10.0.0.0/8, fd00::/8' }))
  t.same(readSkiffAnnotation(ing, 'skiff.dev/methods'), ['GET', 'HEAD'])
  t.equal(readSkiffAnnotation(ing, 'skiff.dev/proxy-read-timeout'), 30_000)
  t.equal(readSkiffAnnotation(ing, 'skiff.dev/proxy-body-size'), 10 * 1024 * 1024)
  t.equal(readSkiffAnnotation(ing, 'skiff.dev/ssl-redirect'), false)
  t.same(readSkiffAnnotation(ing, 'skiff.dev/allow-source-ranges'), ['10.0.0.0/8', 'fd00::/8'])
  t.equal(readSkiffAnnotation(ing, 'skiff.dev/load-balance'), undefined)
})

t.test('an empty name is fine while generateName is set', async (t) => {
  t.same(run('Pod', bad('Pod', (o) => { delete o.metadata.name; o.metadata.generateName = 'web-' })), [])
})

t.test('updates that keep the selector and clusterIP are valid', async (t) => {
  t.same(run('Deployment', bad('Deployment', (o) => (o.spec.replicas = 5)), valid.Deployment), [])
  const svc = bad('Service', (o) => (o.spec.clusterIP = '10.96.0.10'))
  t.same(run('Service', bad('Service', (o) => (o.spec.clusterIP = '')), svc), [], 'empty means keep')
  t.same(run('Service', bad('Service', (o) => { o.spec.type = 'ExternalName'; o.spec.externalName = 'db.example.com'; delete o.spec.selector }), svc), [], 'to ExternalName')
  t.same(run('Pod', bad('Pod', (o) => { o.spec.containers[0].image = 'nginx:1.28'; o.spec.nodeName = 'node-1' }), valid.Pod), [], 'image change and binding')
})

t.test('IngressClass settings: issuer, ACME directory and contact, trusted proxies', async (t) => {
  const cls = (annotations: Record<string, string>) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'c', annotations }, spec: { controller: 'skiff.dev/ingress' } })
  const { validateSkiffAnnotations } = await import('../../controlplane/api/validation/skiff.ts')
  t.same(validateSkiffAnnotations(cls({ 'skiff.dev/issuer': 'acme', 'skiff.dev/acme-directory': 'https://127.0.0.1:14000/dir', 'skiff.dev/acme-email': 'ops@example.com', 'skiff.dev/trusted-proxies': '10.0.0.0/8' })), [])
  const wrong = validateSkiffAnnotations(cls({ 'skiff.dev/issuer': 'letsencrypt', 'skiff.dev/acme-directory': 'http://x/dir', 'skiff.dev/acme-email': 'ops' }))
  t.same(wrong.map((c) => c.field).sort(), ['metadata.annotations[skiff.dev/acme-directory]', 'metadata.annotations[skiff.dev/acme-email]', 'metadata.annotations[skiff.dev/issuer]'])
  const onIngress = validateSkiffAnnotations({ ...cls({ 'skiff.dev/issuer': 'ca' }), kind: 'Ingress' })
  t.match(onIngress[0].message, /applies only to IngressClass/)
  t.same(validateSkiffAnnotations({ kind: 'Ingress', metadata: { name: 'i', annotations: { 'skiff.dev/hsts-max-age': '31536000' } } }), [])
  t.equal(validateSkiffAnnotations({ kind: 'Ingress', metadata: { name: 'i', annotations: { 'skiff.dev/hsts-max-age': '-1' } } }).length, 1)
})
