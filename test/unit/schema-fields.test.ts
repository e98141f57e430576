// api/schema/fields.ts: unknown fields found and dropped with the schema, and
// duplicate keys found in the JSON text; and every manifest and captured body
// in test/fixtures, and every object Skiff's own controllers and node agent
// build, passes Strict (a typo there would be dropped silently under Warn).

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { duplicateFields, pruneUnknownFields } from '../../controlplane/api/schema/fields.ts'
import { kindSchema } from '../../controlplane/api/schema/index.ts'
import { buildNewReplicaSet } from '../../controlplane/controllers/deployment-replicasets.ts'
import { buildEndpoints } from '../../controlplane/controllers/endpoints.ts'
import { buildEndpointSlices } from '../../controlplane/controllers/endpointslice.ts'
import { buildPodFromTemplate } from '../../controlplane/controllers/pod-template.ts'
import { newCondition } from '../../controlplane/controllers/deployment-status.ts'
import { planRevision } from '../../controlplane/controllers/controller-revision.ts'
import { buildClaims, buildStatefulSetPod, statefulSetStatus } from '../../controlplane/controllers/statefulset-plan.ts'
import { statefulSetRevisionNaming, statefulSetsInfo } from '../../controlplane/controllers/statefulset.ts'
import { buildLease } from '../../node/heartbeat.ts'
import { buildNodeStatus, detectCapacity, detectNodeInfo } from '../../node/node-object.ts'

const deployment = kindSchema('apps/v1', 'Deployment')!.message

t.test('unknown fields at every depth are reported with their path and dropped', async (t) => {
  const obj: any = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { any: 'key' }, bogus: 1 },
    spec: {
      foo: 1,
      selector: { matchLabels: { app: 'web' } },
      strategy: { rollingUpdate: { maxSurge: '25%', extra: true } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'a', image: 'i' }, { name: 'b', image: 'i', imagePullPolicie: 'Always', ports: [{ containerPort: 80, nmae: 'x' }] }] } },
    },
    status: { replicas: 1 },
  }
  t.same(pruneUnknownFields(deployment, obj), [
    'metadata.bogus', 'spec.foo', 'spec.strategy.rollingUpdate.extra',
    'spec.template.spec.containers[1].imagePullPolicie', 'spec.template.spec.containers[1].ports[0].nmae',
  ])
  t.same(obj.spec.template.spec.containers[1], { name: 'b', image: 'i', ports: [{ containerPort: 80 }] })
  t.same(obj.metadata.labels, { any: 'key' }, 'map keys are free')
})

t.test('fields of embedded structs are known in the parent', async (t) => {
  const pod = kindSchema('v1', 'Pod')!.message
  const obj = { spec: { containers: [{ name: 'c', env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } }], livenessProbe: { httpGet: { port: 80 } } }], volumes: [{ name: 'v', configMap: { name: 'cfg' } }] } }
  t.same(pruneUnknownFields(pod, obj), [])
})

t.test('duplicate keys in the JSON text', async (t) => {
  t.same(duplicateFields('{"a":1,"a":2}'), ['a'])
  t.same(duplicateFields('{"spec":{"replicas":1,"x":"a,\\"b","replicas":2},"items":[{"n":1},{"n":1,"n":2}]}'), ['spec.replicas', 'items[1].n'])
  t.same(duplicateFields('{"a":{"b":1},"c":{"b":1}}'), [])
  t.same(duplicateFields('[{"a":1},{"a":2}]'), [])
})

t.test('every fixture passes Strict', async (t) => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../fixtures')
  const objects: Array<[string, any]> = []
  for (const f of readdirSync(join(root, 'manifests'))) {
    for (const d of parseAllDocuments(readFileSync(join(root, 'manifests', f), 'utf8'))) objects.push([f, d.toJS()])
  }
  for (const f of readdirSync(join(root, 'protobuf')).filter((f) => f.endsWith('.json'))) objects.push([f, JSON.parse(readFileSync(join(root, 'protobuf', f), 'utf8'))])
  t.ok(objects.length > 15)
  for (const [file, obj] of objects) {
    const schema = kindSchema(obj.apiVersion, obj.kind)
    t.ok(schema, `${file}: ${obj.kind} has a schema`)
    t.same(pruneUnknownFields(schema!.message, structuredClone(obj)), [], `${file}: ${obj.kind} ${obj.metadata?.name}`)
  }
})

function unknownFields(obj: any, apiVersion = obj.apiVersion, kind = obj.kind): string[] {
  const s = kindSchema(apiVersion, kind)
  if (!s) throw new Error(`no schema for ${apiVersion} ${kind}`)
  return pruneUnknownFields(s.message, structuredClone(obj))
}

const template = {
  metadata: { labels: { app: 'web' }, annotations: { a: 'b' } },
  spec: { containers: [{ name: 'web', image: 'skiff/echo:local', ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }], readinessProbe: { httpGet: { path: '/', port: 'http' } } }] },
}
const deploymentObject = {
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', uid: 'd-uid', generation: 1, annotations: { 'deployment.kubernetes.io/revision': '1' } },
  spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
}

t.test('controllers', async (t) => {
  const rs = buildNewReplicaSet(deploymentObject as any, 1)
  t.same(unknownFields(rs), [], 'ReplicaSet')
  const pod = buildPodFromTemplate({ template: rs.spec.template, owner: rs, ownerInfo: { group: 'apps', version: 'v1', kind: 'ReplicaSet' }, nodeName: 'n1', extraTolerations: [{ key: 'k', operator: 'Exists', effect: 'NoSchedule' }] })
  t.same(unknownFields(pod, 'v1', 'Pod'), [], 'Pod')
  const running = { ...pod, metadata: { ...pod.metadata, name: 'web-1', uid: 'p1' }, spec: { ...pod.spec, nodeName: 'n1' }, status: { phase: 'Running', podIP: '10.244.0.5', podIPs: [{ ip: '10.244.0.5' }], conditions: [{ type: 'Ready', status: 'True' }] } }
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', uid: 's1' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }], clusterIP: '10.96.0.10' } }
  t.same(unknownFields(buildEndpoints(svc as any, [running as any])), [], 'Endpoints')
  const slices = buildEndpointSlices(svc as any, [running as any], [])
  t.ok(slices.create.length > 0)
  for (const s of slices.create) t.same(unknownFields(s), [], 'EndpointSlice')
  const cond = newCondition('Available', 'True', 'MinimumReplicasAvailable', 'ok', Date.now())
  t.same(unknownFields({ apiVersion: 'apps/v1', kind: 'Deployment', status: { conditions: [cond] } }), [], 'Deployment condition')
})

t.test('statefulset controller', async (t) => {
  const set = {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'shop', uid: 'u1', generation: 1 },
    spec: {
      replicas: 1, serviceName: 'db', selector: { matchLabels: { app: 'db' } },
      template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'skiff/echo:local', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
    },
  }
  t.same(unknownFields(set), [], 'StatefulSet')
  t.same(unknownFields(buildStatefulSetPod({ set, setInfo: statefulSetsInfo, template: set.spec.template, ordinal: 0, revision: 'db-x' }), 'v1', 'Pod'), [], 'Pod')
  for (const c of buildClaims(set, 0)) t.same(unknownFields(c), [], 'PersistentVolumeClaim')
  const rev = planRevision({ owner: set, ownerInfo: statefulSetsInfo, template: set.spec.template, revisions: [], taken: new Map(), collisionCount: 0, naming: statefulSetRevisionNaming(set) })
  t.same(unknownFields(rev.revision), [], 'ControllerRevision')
  const { status } = statefulSetStatus({ set, pods: [], currentRevision: 'a', updateRevision: 'b', now: 0 }, 0)
  t.same(unknownFields({ ...set, status }), [], 'StatefulSet status')
})

t.test('node agent', async (t) => {
  t.same(unknownFields(buildLease('n1', 'uid', Date.now())), [], 'Lease')
  const status = buildNodeStatus({ nodeName: 'n1', capacity: detectCapacity(), nodeInfo: detectNodeInfo('v1.32.0-skiff'), internalIP: '10.0.0.2', kubeletPort: 10250 }, undefined, Date.now())
  t.same(unknownFields({ apiVersion: 'v1', kind: 'Node', status }), [], 'Node status')
})
