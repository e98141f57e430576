// Property-based fuzzing (fast-check, fixed seed and run counts) of API
// defaulting and validation, the path every write takes in the apiserver
// (applyDefaults, then validate, on create and on update): arbitrary JSON
// objects of every kind, and valid objects with one value anywhere in them
// replaced by arbitrary JSON. Never a throw; always a list of causes, each
// with a field path, a reason and a message free of raw control characters
// (values are escaped as Kubernetes prints them).

import t from 'tap'
import fc from 'fast-check'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { resources } from '../../controlplane/api/resources.ts'
import type { KubeObject, StatusCause } from '../../controlplane/api/types.ts'
import { validate } from '../../controlplane/api/validation.ts'

/** Fixed, so CI runs the same cases every time; SKIFF_FUZZ_SEED explores others locally. */
const seed = Number(process.env.SKIFF_FUZZ_SEED ?? 20261104)

const unhandled: unknown[] = []
process.on('unhandledRejection', (e) => void unhandled.push(e))

const meta = (name: string, extra: object = {}) => ({ name, namespace: 'default', ...extra })
const podSpec = { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80, name: 'http' }], env: [{ name: 'A', value: 'b' }], resources: { limits: { cpu: '100m', memory: '64Mi' } } }] }
const template = { metadata: { labels: { app: 'web' } }, spec: podSpec }
/** One valid object per kind, with a little of everything, so a replaced value lands in every validator's branches. */
const valid: Record<string, KubeObject> = {
  Pod: { metadata: meta('web-1', { labels: { app: 'web' }, annotations: { 'example.com/a': 'b' } }), spec: podSpec },
  Deployment: { metadata: meta('web'), spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } } } },
  ReplicaSet: { metadata: meta('web-abc'), spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template } },
  DaemonSet: { metadata: meta('agent'), spec: { selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }, template } },
  Service: { metadata: meta('web', { annotations: { 'skiff.dev/allow-source-ranges': '10.0.0.0/8' } }), spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', nodePort: 30080 }], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } },
  Ingress: {
    metadata: meta('web', { annotations: { 'skiff.dev/methods': 'GET,HEAD', 'skiff.dev/rewrite-target': '/', 'skiff.dev/proxy-read-timeout': '30s' } }),
    spec: {
      ingressClassName: 'external', defaultBackend: { service: { name: 'web', port: { name: 'http' } } },
      rules: [{ host: '*.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
      tls: [{ hosts: ['www.example.com'], secretName: 'web-tls' }],
    },
  },
  IngressClass: { metadata: { name: 'external', annotations: { 'skiff.dev/issuer': 'acme', 'skiff.dev/acme-email': 'ops@example.com' } }, spec: { controller: 'skiff.dev/ingress', parameters: { kind: 'X', name: 'y', scope: 'Namespace', namespace: 'z' } } },
  ConfigMap: { metadata: meta('cfg'), data: { 'app.conf': 'x' }, binaryData: { b: 'eA==' } },
  Secret: { metadata: meta('tls'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } },
  Namespace: { metadata: { name: 'team-a' } },
  Node: { metadata: { name: 'node-1', annotations: { 'skiff.dev/pod-network': 'vxlan' } }, spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] } },
  Lease: { metadata: meta('node-1'), spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 } },
  EndpointSlice: { metadata: meta('web-abc'), addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true } }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
  Endpoints: { metadata: meta('web'), subsets: [{ addresses: [{ ip: '10.244.1.5' }], ports: [{ port: 80 }] }] },
  Event: { metadata: meta('web-1.17a'), involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'default' }, reason: 'Started' },
  ServiceAccount: { metadata: meta('default') },
  PersistentVolume: {
    metadata: { name: 'pv-1' },
    spec: {
      capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', storageClassName: 'local-path', local: { path: '/mnt/disk1' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1'] }] }] } }, claimRef: { namespace: 'default', name: 'data' },
    },
  },
  PersistentVolumeClaim: { metadata: meta('data'), spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'local-path', selector: { matchLabels: { tier: 'a' } } }, status: { phase: 'Bound' } },
  StorageClass: { metadata: { name: 'local-path' }, provisioner: 'skiff.dev/local', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer', parameters: { a: 'b' } } as KubeObject,
}
const kinds = resources.filter((r) => valid[r.kind] !== undefined)

/** Every path into a JSON value (object keys and array indexes), the root excluded. */
function paths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) return v.flatMap((x, i) => [[...at, i], ...paths(x, [...at, i])])
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [[...at, k], ...paths(x, [...at, k])])
  return []
}

function replaced(obj: KubeObject, path: Array<string | number>, value: unknown): KubeObject {
  const out: any = structuredClone(obj)
  let cur = out
  for (const k of path.slice(0, -1)) cur = cur[k]
  cur[path.at(-1)!] = value
  return out
}

const causesOk = (causes: StatusCause[]): boolean =>
  Array.isArray(causes) && causes.every((c) => typeof c.reason === 'string' && typeof c.message === 'string' && typeof c.field === 'string' && !/[\x00-\x1f\x7f]/.test(c.message + c.field))

/** What the apiserver does with a body: defaults, then validates (against the stored object on update). */
function check(kind: (typeof kinds)[number], obj: KubeObject, old?: KubeObject): boolean {
  const next = applyDefaults(kind, obj)
  const causes = validate(kind, next, old === undefined ? undefined : applyDefaults(kind, old), { nodePortRange: { min: 30000, max: 32767 } })
  if (!causesOk(causes)) throw new Error(`bad causes: ${JSON.stringify(causes).slice(0, 300)}`)
  return true
}

// JSON as a body can hold it, control characters and odd keys included.
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'None', '0', '-1', '10.0.0.1', '::1', '10.0.0.0/8', '/', '*.', '*', 'a'.repeat(300), '__proto__', 'constructor', 'toString', 'GET', 'Prefix', 'Exact', 'ClusterIP', 'http', '80', '1e309', '\u0000', 'a\nb', '\u202e'))
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(text, fc.constantFrom('metadata', 'spec', 'status', 'name', 'namespace', 'labels', 'annotations', 'ports', 'rules', 'host', 'path')), tie('value'), { maxKeys: 5 }),
})).value

t.test('arbitrary JSON objects of every kind: causes, never a throw', async (t) => {
  const body = fc.record({ metadata: json, spec: json, status: json, data: json, extra: json }, { requiredKeys: [] })
  for (const kind of kinds) {
    fc.assert(fc.property(body, json, (obj, other) => check(kind, obj as KubeObject) && check(kind, obj as KubeObject, { metadata: other } as KubeObject)), { seed, numRuns: 150 })
  }
  t.pass(`${kinds.length} kinds`)
})

t.test('valid objects with one value anywhere replaced by arbitrary JSON: causes, never a throw (create and update)', async (t) => {
  for (const kind of kinds) {
    const base = valid[kind.kind]!
    t.same(validate(kind, applyDefaults(kind, base)), [], `${kind.kind}: the base object is valid`)
    const where = paths(base)
    fc.assert(fc.property(fc.nat({ max: where.length - 1 }), json, fc.boolean(), (i, value, update) => {
      const obj = replaced(base, where[i]!, value)
      return update ? check(kind, obj, base) && check(kind, base, obj) : check(kind, obj)
    }), { seed, numRuns: 400 })
  }
})

t.test('no unhandled rejection', async (t) => {
  t.same(unhandled, [])
})
