// apiserver/openapi.ts: the OpenAPI v3 documents generated from the schema.

import t from 'tap'
import { openapiDocuments, openapiIndex } from '../../controlplane/apiserver/openapi.ts'
import { groupVersion, resources } from '../../controlplane/api/resources.ts'

const doc = (key: string): any => JSON.parse(openapiDocuments().get(key)!.body.toString())

t.test('the index names every served group version with its hash', async (t) => {
  const index = JSON.parse(openapiIndex().body.toString())
  for (const gv of new Set(resources.map(groupVersion))) {
    const key = gv.includes('/') ? `apis/${gv}` : `api/${gv}`
    t.equal(index.paths[key].serverRelativeURL, `/openapi/v3/${key}?hash=${openapiDocuments().get(key)!.hash}`)
  }
})

t.test('every $ref resolves inside its document', async (t) => {
  for (const [key] of openapiDocuments()) {
    const d = doc(key)
    const refs = JSON.stringify(d).match(/"#\/components\/schemas\/[^"]+"/g) ?? []
    const missing = refs.map((r) => r.slice('"#/components/schemas/'.length, -1)).filter((n) => !d.components.schemas[n])
    t.same([...new Set(missing)], [], key)
  }
})

t.test('kinds carry their group-version-kind; PATCH carries fieldValidation', async (t) => {
  const apps = doc('apis/apps/v1')
  const dep = apps.components.schemas['io.k8s.api.apps.v1.Deployment']
  t.same(dep['x-kubernetes-group-version-kind'], [{ group: 'apps', kind: 'Deployment', version: 'v1' }])
  t.same(dep.properties.spec, { description: 'Desired state.', allOf: [{ $ref: '#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec' }] })
  const patch = apps.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch
  t.same(patch['x-kubernetes-group-version-kind'], { group: 'apps', version: 'v1', kind: 'Deployment' })
  t.ok(patch.parameters.some((p: any) => p.name === 'fieldValidation'))
  const scale = apps.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale'].patch
  t.same(scale['x-kubernetes-group-version-kind'], { group: 'autoscaling', version: 'v1', kind: 'Scale' })
  t.ok(apps.components.schemas['io.k8s.api.autoscaling.v1.Scale'])
})

t.test('lists and maps carry the Kubernetes extensions', async (t) => {
  const spec = doc('api/v1').components.schemas['io.k8s.api.core.v1.PodSpec']
  t.match(spec.properties.containers, {
    type: 'array', items: { $ref: '#/components/schemas/io.k8s.api.core.v1.Container' },
    'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], 'x-kubernetes-patch-merge-key': 'name', 'x-kubernetes-patch-strategy': 'merge',
  })
  t.same(spec.required, ['containers'])
  t.match(spec.properties.nodeSelector, { type: 'object', additionalProperties: { type: 'string' }, 'x-kubernetes-map-type': 'atomic' })
  const secret = doc('api/v1').components.schemas['io.k8s.api.core.v1.Secret']
  t.match(secret.properties.data, { additionalProperties: { type: 'string', format: 'byte' } })
  const cmRef = doc('api/v1').components.schemas['io.k8s.api.core.v1.ConfigMapVolumeSource']
  t.ok(cmRef.properties.name, 'an inline struct (LocalObjectReference) puts its fields in the parent')
})
