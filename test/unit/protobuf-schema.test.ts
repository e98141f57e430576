// Protobuf decoding driven by the schema, for every kind: objects of several
// kinds are encoded here with protobufjs (the encoder follows the schema's
// field numbers, the way gogo writes them) and must decode to the same JSON.

import t from 'tap'
import protobuf from 'protobufjs/minimal.js'
import { decodeProtobufObject } from '../../controlplane/api/protobuf.ts'
import { kindSchema, messages, type Field, type Message } from '../../controlplane/api/schema/index.ts'

type W = protobuf.Writer
type Json = Record<string, any>

function encodeSpecial(w: W, special: string, v: any): void {
  const s = protobuf.Writer.create()
  if (special === 'Quantity') s.uint32(10).string(v)
  else if (special === 'IntOrString') typeof v === 'number' ? s.uint32(8).int64(0).uint32(16).int32(v) : s.uint32(8).int64(1).uint32(26).string(v)
  else if (special === 'Time' || special === 'MicroTime') {
    const ms = Date.parse(v)
    s.uint32(8).int64(Math.floor(ms / 1000))
    const micros = special === 'MicroTime' ? Number((/\.(\d{6})Z$/.exec(v) ?? [])[1] ?? 0) : 0
    if (micros) s.uint32(16).int32(micros * 1000)
  } else if (special === 'RawExtension' || special === 'FieldsV1') s.uint32(10).bytes(Buffer.from(JSON.stringify(v)))
  else if (special === 'ExtraValue') for (const x of v) s.uint32(10).string(x)
  w.bytes(s.finish())
}

function encodeOne(w: W, f: Field, v: any): void {
  const val = f.value
  if (val.kind === 'message') return void w.bytes(encodeMessage(messages.get(val.name)!, v))
  if (val.kind === 'special') return encodeSpecial(w, val.special, v)
  switch (val.scalar) {
    case 'string': w.string(v); break
    case 'int32': w.int32(v); break
    case 'int64': w.int64(v); break
    case 'bool': w.bool(v); break
    case 'bytes': w.bytes(Buffer.from(v, 'base64')); break
    case 'double': w.double(v); break
  }
}

function wire(f: Field): number {
  if (f.map || f.value.kind !== 'scalar') return 2
  return f.value.scalar === 'string' || f.value.scalar === 'bytes' ? 2 : f.value.scalar === 'double' ? 1 : 0
}

function encodeMessage(m: Message, obj: Json): Uint8Array {
  const w = protobuf.Writer.create()
  for (const f of m.fields) {
    if (f.number === 0) continue
    if (f.options.inline) {
      const inner = messages.get((f.value as { name: string }).name)!
      const part = Object.fromEntries(inner.fields.filter((x) => x.name in obj).map((x) => [x.name, obj[x.name]]))
      if (Object.keys(part).length) w.uint32((f.number << 3) | 2).bytes(encodeMessage(inner, part))
      continue
    }
    const v = obj[f.name]
    if (v === undefined) continue
    if (f.map) {
      for (const [k, x] of Object.entries(v)) {
        const e = protobuf.Writer.create().uint32(10).string(k).uint32((2 << 3) | wire({ ...f, map: false }))
        encodeOne(e, f, x)
        w.uint32((f.number << 3) | 2).bytes(e.finish())
      }
    } else if (f.repeated) {
      for (const x of v) encodeOne(w.uint32((f.number << 3) | wire(f)), f, x)
    } else encodeOne(w.uint32((f.number << 3) | wire(f)), f, v)
  }
  return w.finish()
}

function body(obj: Json): Buffer {
  const k = kindSchema(obj.apiVersion, obj.kind)!
  const typeMeta = protobuf.Writer.create().uint32(10).string(obj.apiVersion).uint32(18).string(obj.kind).finish()
  const unknown = protobuf.Writer.create().uint32(10).bytes(typeMeta).uint32(18).bytes(encodeMessage(k.message, obj)).finish()
  return Buffer.concat([Buffer.from('k8s\0', 'latin1'), unknown])
}

const cases: Json[] = [
  {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'shop', annotations: { a: 'b' } },
    spec: {
      ingressClassName: 'external',
      tls: [{ hosts: ['shop.example.com'], secretName: 'tls' }],
      rules: [{ host: 'shop.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
      defaultBackend: { service: { name: 'web', port: { name: 'http' } } },
    },
  },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from('CERT').toString('base64'), 'tls.key': Buffer.from('KEY').toString('base64') } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot' }, automountServiceAccountToken: false, imagePullSecrets: [{ name: 'reg' }] },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader', namespace: 'ns' },
    rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'], resourceNames: ['a'] }],
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'b' },
    subjects: [{ kind: 'ServiceAccount', name: 'robot', namespace: 'ns' }, { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'ann' }],
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
  },
  {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' },
    spec: {
      schedule: '0 3 * * *', suspend: false, successfulJobsHistoryLimit: 0,
      jobTemplate: { metadata: { name: 'nightly' }, spec: { backoffLimit: 2, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: 'busybox', command: ['date'] }] } } } },
    },
  },
  {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { app: 'p' }, creationTimestamp: '2026-01-02T03:04:05Z', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true }] },
    spec: {
      automountServiceAccountToken: false,
      securityContext: { runAsUser: 1000, runAsNonRoot: true, supplementalGroups: [5, 6], seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [
        { name: 'token', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }, { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } }] } },
        { name: 'cache', emptyDir: { sizeLimit: '64Mi' } },
        { name: 'host', hostPath: { path: '/var/log', type: '' } },
        { name: 'data', persistentVolumeClaim: { claimName: 'data', readOnly: true } },
        { name: 'cfg', configMap: { name: 'cfg', optional: false } },
      ],
      tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }],
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['p'] }] } } }] } },
      containers: [{
        name: 'c', image: 'nginx', ports: [{ containerPort: 80, protocol: 'TCP' }],
        env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
        envFrom: [{ prefix: 'X_', secretRef: { name: 's' } }],
        resources: { limits: { cpu: '500m', memory: '128Mi' } },
        readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
        livenessProbe: { tcpSocket: { port: 80 }, failureThreshold: 3 },
        lifecycle: { preStop: { sleep: { seconds: 5 } } },
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        volumeMounts: [{ name: 'token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      }],
    },
    status: { phase: 'Running', podIP: '10.244.0.5', startTime: '2026-01-02T03:04:06Z', containerStatuses: [{ name: 'c', ready: true, restartCount: 0, image: 'nginx', imageID: 'sha', state: { running: { startedAt: '2026-01-02T03:04:07Z' } } }] },
  },
  {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l' },
    spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40, renewTime: '2026-01-02T03:04:05.123456Z', leaseTransitions: 0 },
  },
  {
    apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', metadata: {},
    spec: { user: 'ann', groups: ['dev'], extra: { scopes: ['a', 'b'] }, resourceAttributes: { verb: 'get', resource: 'pods', namespace: 'ns' } },
  },
  {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', metadata: { name: 'robot' },
    spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p', uid: 'u' } },
  },
  {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ds' },
    spec: { selector: { matchLabels: { a: 'b' } }, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%', maxSurge: 0 } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
  },
  {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-abc' }, addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1' }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  },
  {
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'e' }, involvedObject: { kind: 'Pod', name: 'p', uid: 'u' },
    reason: 'Started', count: 2, eventTime: '2026-01-02T03:04:05.000001Z', firstTimestamp: '2026-01-02T03:04:05Z',
  },
]

t.test('objects of many kinds decode to the JSON they were encoded from', async (t) => {
  for (const obj of cases) t.same(decodeProtobufObject(body(obj)), obj, `${obj.apiVersion} ${obj.kind}`)
})

t.test('managedFields and an embedded object survive', async (t) => {
  const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:a': {} } } }] }, data: { a: '1' } }
  t.same(decodeProtobufObject(body(obj)), obj)
})
