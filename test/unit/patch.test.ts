import t from 'tap'
import type { Test } from 'tap'
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
  mergeRuleFor,
  PatchError,
} from '../../controlplane/api/patch.ts'

const deployment = () => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [
          {
            name: 'nginx',
            image: 'nginx:1.25',
            ports: [{ containerPort: 80 }],
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
        ],
        tolerations: [{ key: 'k1', operator: 'Exists' }],
      },
    },
  },
})

const podSpec = (o: any) => o.spec.template.spec
const names = (list: any[]) => list.map((x) => x.name)

interface SmpCase {
  name: string
  kind: string
  target: any
  patch: any
  check: (t: Test, out: any) => void
}

const smpCases: SmpCase[] = [
  {
    name: "kubectl apply's patch keeps container ports",
    kind: 'Deployment',
    target: deployment(),
    patch: {
      metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"x":1}' } },
      spec: {
        replicas: 3,
        template: { spec: { '$setElementOrder/containers': [{ name: 'nginx' }], containers: [{ image: 'nginx:1.26', name: 'nginx' }] } },
      },
    },
    check: (t, out) => {
      t.equal(out.spec.replicas, 3)
      t.equal(out.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], '{"x":1}')
      t.same(podSpec(out).containers, [{ ...deployment().spec.template.spec.containers[0], image: 'nginx:1.26' }])
    },
  },
  {
    name: 'Service ports merge by port',
    kind: 'Service',
    target: { kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'https', port: 443, targetPort: 8443 }] } },
    patch: { spec: { ports: [{ port: 80, targetPort: 9090 }] } },
    check: (t, out) => t.same(out.spec.ports, [{ name: 'http', port: 80, targetPort: 9090 }, { name: 'https', port: 443, targetPort: 8443 }]),
  },
  {
    name: 'spec.ports is only keyed by port on a Service',
    kind: 'Ingress',
    target: { metadata: { name: 'x' }, spec: { ports: [{ port: 80 }, { port: 443 }] } },
    patch: { spec: { ports: [{ port: 80, x: 1 }] } },
    check: (t, out) => t.same(out.spec.ports, [{ port: 80, x: 1 }]),
  },
  {
    name: 'a new container port without $setElementOrder goes first, as in Kubernetes',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { template: { spec: { containers: [{ name: 'nginx', ports: [{ containerPort: 443 }] }] } } } },
    check: (t, out) => t.same(podSpec(out).containers[0].ports, [{ containerPort: 443 }, { containerPort: 80 }]),
  },
  {
    name: '$setElementOrder puts a new container port where kubectl wants it',
    kind: 'Deployment',
    target: deployment(),
    patch: {
      spec: {
        template: {
          spec: {
            containers: [
              { name: 'nginx', '$setElementOrder/ports': [{ containerPort: 80 }, { containerPort: 443 }], ports: [{ containerPort: 443 }] },
            ],
          },
        },
      },
    },
    check: (t, out) => t.same(podSpec(out).containers[0].ports, [{ containerPort: 80 }, { containerPort: 443 }]),
  },
  {
    name: 'env item deleted with $patch: delete',
    kind: 'Deployment',
    target: deployment(),
    patch: {
      spec: {
        template: {
          spec: {
            containers: [{ name: 'nginx', '$setElementOrder/env': [{ name: 'B' }], env: [{ $patch: 'delete', name: 'A' }] }],
          },
        },
      },
    },
    check: (t, out) => t.same(podSpec(out).containers[0].env, [{ name: 'B', value: '2' }]),
  },
  {
    name: 'env item updated by name, others kept',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }] } },
    patch: { spec: { containers: [{ name: 'c', env: [{ name: 'B', value: '3' }] }] } },
    check: (t, out) => t.same(out.spec.containers[0].env, [{ name: 'A', value: '1' }, { name: 'B', value: '3' }]),
  },
  {
    name: '$retainKeys drops keys it does not list',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
    check: (t, out) => t.same(out.spec.strategy, { type: 'Recreate' }),
  },
  {
    name: '$deleteFromPrimitiveList/finalizers',
    kind: 'Pod',
    target: { metadata: { name: 'p', finalizers: ['a', 'b', 'c'] } },
    patch: { metadata: { '$deleteFromPrimitiveList/finalizers': ['b'] } },
    check: (t, out) => t.same(out.metadata.finalizers, ['a', 'c']),
  },
  {
    name: 'finalizers merge as a set with $setElementOrder',
    kind: 'Pod',
    target: { metadata: { name: 'p', finalizers: ['a'] } },
    patch: { metadata: { '$setElementOrder/finalizers': ['a', 'b'], finalizers: ['b'] } },
    check: (t, out) => t.same(out.metadata.finalizers, ['a', 'b']),
  },
  {
    name: 'lists without a merge key are replaced whole',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { template: { spec: { tolerations: [{ key: 'k2', operator: 'Exists' }] } } } },
    check: (t, out) => t.same(podSpec(out).tolerations, [{ key: 'k2', operator: 'Exists' }]),
  },
  {
    name: 'Node taints are replaced, addresses merge by type',
    kind: 'Node',
    target: {
      metadata: { name: 'n' },
      spec: { taints: [{ key: 'a', effect: 'NoSchedule' }] },
      status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }, { type: 'Hostname', address: 'n' }] },
    },
    patch: { spec: { taints: [{ key: 'b', effect: 'NoSchedule' }] }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] } },
    check: (t, out) => {
      t.same(out.spec.taints, [{ key: 'b', effect: 'NoSchedule' }])
      t.same(out.status.addresses, [{ type: 'InternalIP', address: '10.0.0.2' }, { type: 'Hostname', address: 'n' }])
    },
  },
  {
    name: 'status.conditions merge by type',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Initialized', status: 'True' }] } },
    patch: { status: { conditions: [{ type: 'Ready', status: 'True' }] } },
    check: (t, out) => t.same(out.status.conditions, [{ type: 'Ready', status: 'True' }, { type: 'Initialized', status: 'True' }]),
  },
  {
    name: 'null deletes a key',
    kind: 'Deployment',
    target: deployment(),
    patch: { metadata: { annotations: null }, spec: { strategy: { rollingUpdate: null } } },
    check: (t, out) => {
      t.notOk('annotations' in out.metadata)
      t.same(out.spec.strategy, { type: 'RollingUpdate' })
    },
  },
  {
    name: '$patch: replace on a map replaces it',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { selector: { $patch: 'replace', matchLabels: { app: 'other' } } } },
    check: (t, out) => t.same(out.spec.selector, { matchLabels: { app: 'other' } }),
  },
  {
    name: '$patch: delete on a map deletes it',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { strategy: { $patch: 'delete' } } },
    check: (t, out) => t.notOk('strategy' in out.spec),
  },
  {
    name: '$patch: replace in a list item replaces the list',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'x' }, { name: 'b', image: 'y' }] } },
    patch: { spec: { containers: [{ name: 'c', image: 'z' }, { $patch: 'replace' }] } },
    check: (t, out) => t.same(out.spec.containers, [{ name: 'c', image: 'z' }]),
  },
  {
    name: '$setElementOrder alone reorders a list',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }, { name: 'b' }] } },
    patch: { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } },
    check: (t, out) => t.same(names(out.spec.containers), ['b', 'a']),
  },
  {
    name: 'a server-only container keeps its live position',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'sidecar' }, { name: 'app', image: 'v1' }] } },
    patch: { spec: { '$setElementOrder/containers': [{ name: 'app' }], containers: [{ name: 'app', image: 'v2' }] } },
    check: (t, out) => t.same(out.spec.containers, [{ name: 'sidecar' }, { name: 'app', image: 'v2' }]),
  },
  {
    name: 'an added container follows $setElementOrder',
    kind: 'Deployment',
    target: deployment(),
    patch: {
      spec: {
        template: {
          spec: { '$setElementOrder/containers': [{ name: 'nginx' }, { name: 'log' }], containers: [{ name: 'log', image: 'busybox' }] },
        },
      },
    },
    check: (t, out) => t.same(names(podSpec(out).containers), ['nginx', 'log']),
  },
  {
    name: 'directives and nulls never reach the result, even in new values',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }] } },
    patch: {
      spec: {
        containers: [{ name: 'b', image: 'x', command: null, env: [{ name: 'E', value: '1', valueFrom: null }], resources: { $patch: 'replace', limits: { cpu: '1' } } }],
        volumes: [{ name: 'v', emptyDir: {}, '$retainKeys': ['name', 'emptyDir'] }],
      },
    },
    check: (t, out) => {
      t.same(out.spec.containers, [
        { name: 'b', image: 'x', env: [{ name: 'E', value: '1' }], resources: { limits: { cpu: '1' } } },
        { name: 'a' },
      ])
      t.same(out.spec.volumes, [{ name: 'v', emptyDir: {} }])
    },
  },
  {
    name: 'dotted map keys are not read as paths',
    kind: 'Pod',
    target: { metadata: { name: 'p', annotations: { 'spec.containers': 'x' } } },
    patch: { metadata: { annotations: { 'spec.containers': [{ a: 1 }] } } },
    check: (t, out) => t.same(out.metadata.annotations['spec.containers'], [{ a: 1 }]),
  },
  {
    name: 'ownerReferences merge by uid',
    kind: 'ReplicaSet',
    target: { metadata: { name: 'r', ownerReferences: [{ uid: 'u1', name: 'd1', kind: 'Deployment' }] } },
    patch: { metadata: { ownerReferences: [{ uid: 'u1', controller: true }] } },
    check: (t, out) => t.same(out.metadata.ownerReferences, [{ uid: 'u1', name: 'd1', kind: 'Deployment', controller: true }]),
  },
]

t.test('strategic merge patch', async (t) => {
  for (const c of smpCases) {
    t.test(c.name, async (t) => {
      const before = structuredClone(c.target)
      const patchBefore = structuredClone(c.patch)
      c.check(t, applyStrategicMergePatch(c.target, c.patch, c.kind))
      t.same(c.target, before, 'target not mutated')
      t.same(c.patch, patchBefore, 'patch not mutated')
    })
  }
})

interface ErrorCase {
  name: string
  kind: string
  target: any
  patch: any
  status: 400 | 422
  message: RegExp
}

const smpErrors: ErrorCase[] = [
  {
    name: 'merge-keyed list item without its key',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }] } },
    patch: { spec: { containers: [{ image: 'x' }] } },
    status: 422,
    message: /does not contain declared merge key: name/,
  },
  {
    name: '$patch: delete without the merge key',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }] } },
    patch: { spec: { containers: [{ $patch: 'delete' }] } },
    status: 422,
    message: /merge key: name/,
  },
  {
    name: 'unknown $patch value',
    kind: 'Pod',
    target: { metadata: { name: 'p' } },
    patch: { spec: { $patch: 'frobnicate' } },
    status: 400,
    message: /unknown patch type: "frobnicate"/,
  },
  {
    name: 'patch key missing from $retainKeys',
    kind: 'Deployment',
    target: deployment(),
    patch: { spec: { strategy: { $retainKeys: ['type'], rollingUpdate: { maxSurge: 2 } } } },
    status: 400,
    message: /retainKeys/,
  },
  {
    name: 'patch list out of $setElementOrder order',
    kind: 'Pod',
    target: { metadata: { name: 'p' }, spec: { containers: [{ name: 'a' }, { name: 'b' }] } },
    patch: { spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'b' }], containers: [{ name: 'b' }, { name: 'a' }] } },
    status: 400,
    message: /setElementOrder/,
  },
  {
    name: 'a patch that is not an object',
    kind: 'Pod',
    target: { metadata: { name: 'p' } },
    patch: [1],
    status: 400,
    message: /JSON object/,
  },
]

t.test('strategic merge patch errors', async (t) => {
  for (const c of smpErrors) {
    t.throws(() => applyStrategicMergePatch(c.target, c.patch, c.kind), { name: 'PatchError', status: c.status, message: c.message }, c.name)
  }
})

t.test('merge rule table is path and kind aware', async (t) => {
  t.equal(mergeRuleFor('Deployment', 'spec.template.spec.containers[].ports')?.mergeKey, 'containerPort')
  t.equal(mergeRuleFor('Pod', 'spec.containers[].ports')?.mergeKey, 'containerPort')
  t.equal(mergeRuleFor('Service', 'spec.ports')?.mergeKey, 'port')
  t.equal(mergeRuleFor('Pod', 'spec.ports'), undefined)
  t.equal(mergeRuleFor('Pod', 'spec.initContainers[].volumeMounts')?.mergeKey, 'mountPath')
  t.equal(mergeRuleFor('Pod', 'spec.tolerations'), undefined)
  t.equal(mergeRuleFor('Node', 'spec.taints'), undefined)
  t.same(mergeRuleFor('Pod', 'metadata.finalizers'), { path: 'metadata.finalizers' })
  // From the schema: every kind it describes, and lists Kubernetes declares atomic stay whole.
  t.equal(mergeRuleFor('CronJob', 'spec.jobTemplate.spec.template.spec.containers[].env')?.mergeKey, 'name')
  t.equal(mergeRuleFor('Job', 'status.conditions')?.mergeKey, 'type')
  t.equal(mergeRuleFor('ServiceAccount', 'secrets')?.mergeKey, 'name')
  t.equal(mergeRuleFor('ServiceAccount', 'imagePullSecrets'), undefined, '+listType=atomic, no patch strategy')
  t.equal(mergeRuleFor('Pod', 'spec.ephemeralContainers[].volumeMounts')?.mergeKey, 'mountPath', 'fields of an embedded struct')
  t.equal(mergeRuleFor('Widget', 'spec.items'), undefined, 'a kind without a schema')
})

const mergeCases = [
  { name: 'null deletes', target: { a: 1, b: { c: 2, d: 3 } }, patch: { b: { c: null } }, want: { a: 1, b: { d: 3 } } },
  { name: 'arrays are replaced', target: { l: [1, 2, 3] }, patch: { l: [4] }, want: { l: [4] } },
  { name: 'new objects lose their nulls', target: {}, patch: { a: { b: null, c: 1 } }, want: { a: { c: 1 } } },
  { name: 'an object replaces a scalar', target: { a: 'x' }, patch: { a: { b: 1 } }, want: { a: { b: 1 } } },
  { name: 'a non-object patch replaces the target', target: { a: 1 }, patch: 'x', want: 'x' },
]

t.test('JSON merge patch', async (t) => {
  for (const c of mergeCases) {
    const before = structuredClone(c.target)
    t.same(applyMergePatch<unknown>(c.target, c.patch), c.want, c.name)
    t.same(c.target, before, `${c.name}: target not mutated`)
  }
})

const jsonCases = [
  {
    name: 'replace, add, remove and a passing test',
    ops: [
      { op: 'test', path: '/spec/replicas', value: 1 },
      { op: 'replace', path: '/spec/replicas', value: 2 },
      { op: 'add', path: '/metadata/labels', value: { a: 'b' } },
      { op: 'remove', path: '/spec/strategy' },
      { op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'C', value: '3' } },
    ],
    check: (t: Test, out: any) => {
      t.equal(out.spec.replicas, 2)
      t.same(out.metadata.labels, { a: 'b' })
      t.notOk('strategy' in out.spec)
      t.same(names(podSpec(out).containers[0].env), ['A', 'B', 'C'])
    },
  },
]

t.test('JSON patch', async (t) => {
  for (const c of jsonCases) {
    const target = deployment()
    c.check(t, applyJsonPatch(target, c.ops))
    t.same(target, deployment(), `${c.name}: target not mutated`)
  }
  const errors = [
    { name: 'failing test', ops: [{ op: 'test', path: '/spec/replicas', value: 5 }], status: 422, code: 'SKIFF_ERR_PATCH_TEST_FAILED', message: /value at \/spec\/replicas is 1, expected 5/ },
    { name: 'remove a missing path', ops: [{ op: 'remove', path: '/spec/nope' }], status: 422, code: 'SKIFF_ERR_PATCH_PATH', message: /operation 0 \(remove \/spec\/nope\)/ },
    { name: 'replace a missing path', ops: [{ op: 'replace', path: '/a/b/c', value: 1 }], status: 422, code: 'SKIFF_ERR_PATCH_PATH', message: /replace \/a\/b\/c/ },
    { name: 'unknown op', ops: [{ op: 'frob', path: '/a' }], status: 400, code: 'SKIFF_ERR_PATCH_MALFORMED', message: /op/ },
    { name: 'not an array', ops: { op: 'add' }, status: 400, code: 'SKIFF_ERR_PATCH_MALFORMED', message: /array/ },
  ]
  for (const e of errors) {
    t.throws(() => applyJsonPatch(deployment(), e.ops), { status: e.status, code: e.code, message: e.message }, e.name)
  }
  try {
    applyJsonPatch(deployment(), [{ op: 'test', path: '/spec/replicas', value: 5 }])
  } catch (err) {
    t.ok(err instanceof PatchError, 'a PatchError')
    t.notMatch((err as Error).message, /\n/, 'one-line message, no document dump')
  }
})
