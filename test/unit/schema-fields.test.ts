// api/schema/fields.ts: unknown fields found and dropped with the schema, and
// duplicate keys found in the JSON text; and every manifest and captured body
// in test/fixtures passes Strict.

import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { duplicateFields, pruneUnknownFields } from '../../controlplane/api/schema/fields.ts'
import { kindSchema } from '../../controlplane/api/schema/index.ts'

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
