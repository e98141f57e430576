// Server-side apply's field ownership (controlplane/api/apply.ts, pure):
// FieldsV1, merging an applied configuration, conflicts naming the other
// manager, force, removal of fields a manager stops applying, and the
// ownership an ordinary update takes.

import t from 'tap'
import { apply, ApplyConflict, fromFieldsV1, leafPaths, listTypesFromSchema, recordUpdate, toFieldsV1 } from '../../controlplane/api/apply.ts'

const lt = listTypesFromSchema('Deployment')
const base = { apiVersion: 'apps/v1', kind: 'Deployment', now: '2026-12-04T00:00:00Z', listTypes: lt }

const deploy = (replicas: number, image: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', labels: { app: 'web' } },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 80, protocol: 'TCP' }], ...extra }] } },
  },
})

t.test('FieldsV1 of an object, as Kubernetes writes it', async (t) => {
  const f = toFieldsV1(leafPaths(deploy(2, 'nginx'), lt))
  t.same(f['f:metadata'], { 'f:labels': { 'f:app': {} } }, 'name is not tracked')
  t.same(f['f:spec']!['f:template']!['f:spec']!['f:containers'], {
    'k:{"name":"web"}': { '.': {}, 'f:name': {}, 'f:image': {}, 'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:protocol': {} } } },
  })
  t.same(fromFieldsV1(toFieldsV1(leafPaths(deploy(2, 'nginx'), lt))).length, leafPaths(deploy(2, 'nginx'), lt).length, 'round trip')
})

t.test('apply creates, a second manager conflicts, force moves the field', async (t) => {
  const created = apply({ ...base, live: undefined, config: deploy(2, 'nginx'), manager: 'alice', force: false })
  t.equal(created.spec.replicas, 2)
  t.same(created.metadata.managedFields.map((e: any) => [e.manager, e.operation]), [['alice', 'Apply']])

  const same = apply({ ...base, live: created, config: deploy(2, 'nginx'), manager: 'bob', force: false })
  t.same(same.metadata.managedFields.map((e: any) => e.manager), ['alice', 'bob'], 'equal values: shared, no conflict')

  const conflict = (() => {
    try {
      apply({ ...base, live: created, config: deploy(5, 'nginx'), manager: 'bob', force: false })
    } catch (e) {
      return e
    }
  })()
  t.ok(conflict instanceof ApplyConflict, 'a conflict')
  t.equal((conflict as Error).message, 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas')
  const forced = apply({ ...base, live: created, config: deploy(5, 'nginx'), manager: 'bob', force: true })
  t.equal(forced.spec.replicas, 5)
  const alice = forced.metadata.managedFields.find((e: any) => e.manager === 'alice')
  t.notOk(alice.fieldsV1['f:spec']['f:replicas'], 'alice no longer owns replicas')
  t.ok(alice.fieldsV1['f:spec']['f:template'], 'but keeps the rest')
})

t.test('a field the manager stops applying is removed unless someone else owns it', async (t) => {
  const v1 = apply({ ...base, live: undefined, config: deploy(2, 'nginx', { args: ['-v'] }), manager: 'alice', force: false })
  t.same(v1.spec.template.spec.containers[0].args, ['-v'])
  const v2 = apply({ ...base, live: v1, config: deploy(2, 'nginx'), manager: 'alice', force: false })
  t.equal(v2.spec.template.spec.containers[0].args, undefined, 'args removed')
  t.equal(v2.spec.template.spec.containers[0].image, 'nginx')

  const edited = { ...structuredClone(v1), metadata: { ...v1.metadata, labels: { app: 'web', team: 'a' } } }
  edited.metadata.managedFields = recordUpdate({ ...base, old: v1, next: edited, manager: 'kubectl-edit' })
  const v3 = apply({ ...base, live: edited, config: deploy(2, 'nginx', { args: ['-v'] }), manager: 'alice', force: false })
  t.equal(v3.metadata.labels.team, 'a', 'a label another manager added stays')
})

t.test('an update takes the fields it changes from every other manager', async (t) => {
  const v1 = apply({ ...base, live: undefined, config: deploy(2, 'nginx'), manager: 'alice', force: false })
  const scaled = structuredClone(v1)
  scaled.spec.replicas = 4
  scaled.metadata.managedFields = recordUpdate({ ...base, old: v1, next: scaled, manager: 'kubectl-scale' })
  const scale = scaled.metadata.managedFields.find((e: any) => e.manager === 'kubectl-scale')
  t.same(scale.fieldsV1, { 'f:spec': { 'f:replicas': {} } })
  t.notOk(scaled.metadata.managedFields.find((e: any) => e.manager === 'alice').fieldsV1['f:spec']['f:replicas'])
  t.throws(() => apply({ ...base, live: scaled, config: deploy(3, 'nginx'), manager: 'alice', force: false }), /conflict with "kubectl-scale": \.spec\.replicas/)
  const reapplied = apply({ ...base, live: scaled, config: deploy(4, 'nginx'), manager: 'alice', force: false })
  t.equal(reapplied.spec.replicas, 4, 'the same value is no conflict')
})
