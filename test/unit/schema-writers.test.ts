// Every object Skiff's own controllers and node agent build passes the
// apiserver's Strict field validation: the builders' output has no field the
// schema does not know (a typo there would be dropped silently under Warn).

import t from 'tap'
import { buildNewReplicaSet } from '../../controlplane/controllers/deployment-replicasets.ts'
import { buildEndpoints } from '../../controlplane/controllers/endpoints.ts'
import { buildEndpointSlices } from '../../controlplane/controllers/endpointslice.ts'
import { buildPodFromTemplate } from '../../controlplane/controllers/pod-template.ts'
import { newCondition } from '../../controlplane/controllers/deployment-status.ts'
import { buildLease } from '../../node/heartbeat.ts'
import { buildNodeStatus, detectCapacity, detectNodeInfo } from '../../node/node-object.ts'
import { pruneUnknownFields } from '../../controlplane/api/schema/fields.ts'
import { kindSchema } from '../../controlplane/api/schema/index.ts'

function unknownFields(obj: any, apiVersion = obj.apiVersion, kind = obj.kind): string[] {
  const s = kindSchema(apiVersion, kind)
  if (!s) throw new Error(`no schema for ${apiVersion} ${kind}`)
  return pruneUnknownFields(s.message, structuredClone(obj))
}

const template = {
  metadata: { labels: { app: 'web' }, annotations: { a: 'b' } },
  spec: { containers: [{ name: 'web', image: 'skiff/echo:local', ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }], readinessProbe: { httpGet: { path: '/', port: 'http' } } }] },
}
const deployment = {
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', uid: 'd-uid', generation: 1, annotations: { 'deployment.kubernetes.io/revision': '1' } },
  spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
}

t.test('controllers', async (t) => {
  const rs = buildNewReplicaSet(deployment as any, 1)
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

t.test('node agent', async (t) => {
  t.same(unknownFields(buildLease('n1', 'uid', Date.now())), [], 'Lease')
  const status = buildNodeStatus({ nodeName: 'n1', capacity: detectCapacity(), nodeInfo: detectNodeInfo('v1.32.0-skiff'), internalIP: '10.0.0.2', kubeletPort: 10250 }, undefined, Date.now())
  t.same(unknownFields({ apiVersion: 'v1', kind: 'Node', status }), [], 'Node status')
})
