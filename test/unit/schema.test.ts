// The schema (controlplane/api/schema): it resolves, every served kind has a
// definition, and the field numbers and list semantics that the wire format
// and strategic merge patch depend on are the ones of k8s.io/api.

import t from 'tap'
import { resources, groupVersion } from '../../controlplane/api/resources.ts'
import { kindSchema, message, messages } from '../../controlplane/api/schema/index.ts'

t.test('every served kind, and the List of each listable one, has a schema', async (t) => {
  for (const r of resources) {
    t.ok(kindSchema(groupVersion(r), r.kind), `${groupVersion(r)} ${r.kind}`)
    // Create-only kinds (access reviews, SelfSubjectReview) have no List, as in Kubernetes.
    if ((r.verbs ?? []).includes('list')) t.ok(kindSchema(groupVersion(r), `${r.kind}List`), `${groupVersion(r)} ${r.kind}List`)
  }
  for (const [apiVersion, kind] of [
    ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'], ['authentication.k8s.io/v1', 'TokenRequest'],
    ['authorization.k8s.io/v1', 'SelfSubjectAccessReview'], ['batch/v1', 'CronJob'], ['autoscaling/v1', 'Scale'],
  ]) t.ok(kindSchema(apiVersion, kind), `${apiVersion} ${kind}`)
})

t.test('field numbers of k8s.io/api generated.proto', async (t) => {
  const num = (type: string, field: string) => message(type).byJson.get(field)?.number
  const cases: Array<[string, string, number]> = [
    ['io.k8s.api.core.v1.PodSpec', 'containers', 2], ['io.k8s.api.core.v1.PodSpec', 'initContainers', 20],
    ['io.k8s.api.core.v1.PodSpec', 'automountServiceAccountToken', 21], ['io.k8s.api.core.v1.PodSpec', 'topologySpreadConstraints', 33],
    ['io.k8s.api.core.v1.Container', 'envFrom', 19], ['io.k8s.api.core.v1.Container', 'restartPolicy', 24],
    ['io.k8s.api.core.v1.VolumeSource', 'projected', 26], ['io.k8s.api.core.v1.VolumeSource', 'ephemeral', 29],
    ['io.k8s.api.core.v1.ServiceSpec', 'clusterIPs', 18], ['io.k8s.api.core.v1.ServicePort', 'appProtocol', 6],
    ['io.k8s.api.core.v1.Secret', 'stringData', 4], ['io.k8s.api.apps.v1.DeploymentSpec', 'progressDeadlineSeconds', 9],
    ['io.k8s.api.networking.v1.IngressSpec', 'ingressClassName', 4], ['io.k8s.api.networking.v1.IngressBackend', 'service', 4],
    ['io.k8s.api.networking.v1.NetworkPolicySpec', 'policyTypes', 4], ['io.k8s.api.networking.v1.NetworkPolicyPort', 'endPort', 3], ['io.k8s.api.networking.v1.NetworkPolicyPeer', 'ipBlock', 3],
    ['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta', 'managedFields', 17], ['io.k8s.api.rbac.v1.RoleBinding', 'roleRef', 3],
    ['io.k8s.api.authentication.v1.TokenRequestSpec', 'expirationSeconds', 4], ['io.k8s.api.batch.v1.CronJobSpec', 'timeZone', 8],
    ['io.k8s.api.apps.v1.StatefulSetSpec', 'volumeClaimTemplates', 4], ['io.k8s.api.apps.v1.StatefulSetSpec', 'ordinals', 11],
    ['io.k8s.api.apps.v1.StatefulSetStatus', 'collisionCount', 9], ['io.k8s.api.apps.v1.StatefulSetStatus', 'availableReplicas', 11],
    ['io.k8s.api.apps.v1.ControllerRevision', 'revision', 3], ['io.k8s.api.core.v1.PersistentVolumeClaimStatus', 'allocatedResources', 5],
  ]
  for (const [type, field, n] of cases) t.equal(num(type, field), n, `${type}.${field}`)
})

t.test('list semantics as Kubernetes declares them', async (t) => {
  const f = (type: string, field: string) => message(type).byJson.get(field)!.options
  t.same(f('io.k8s.api.core.v1.PodSpec', 'volumes'), { patchStrategy: 'merge,retainKeys', patchMergeKey: 'name', listType: 'map', listMapKeys: ['name'] })
  t.same(f('io.k8s.api.core.v1.Container', 'ports').listMapKeys, ['containerPort', 'protocol'])
  t.equal(f('io.k8s.api.core.v1.Container', 'ports').patchMergeKey, 'containerPort')
  t.equal(f('io.k8s.api.core.v1.Container', 'volumeMounts').patchMergeKey, 'mountPath')
  t.equal(f('io.k8s.api.core.v1.ServiceSpec', 'ports').patchMergeKey, 'port')
  t.equal(f('io.k8s.api.apps.v1.DeploymentSpec', 'strategy').patchStrategy, 'retainKeys')
})

t.test('no message refers to a missing type and no number is used twice', async (t) => {
  // resolve() throws on both; reaching here with a full registry is the check.
  t.ok(messages.size > 250)
})
