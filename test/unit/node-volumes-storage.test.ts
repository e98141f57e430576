// The node's pure storage parts: downwardAPI file contents
// (node/pods/downward-api.ts), where a claim's volume is on this node
// (node/local-volumes.ts planClaimPath) and the node's own hostPath refusal
// (node/pods/volumes.ts refusedHostPath), plus VolumeManager writing a
// downwardAPI volume and refusing a reserved hostPath in a temporary dir.

import t from 'tap'
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { downwardApiFiles, formatMap } from '../../node/pods/downward-api.ts'
import { ownLocalDir, planClaimPath } from '../../node/local-volumes.ts'
import { refusedHostPath, VolumeManager } from '../../node/pods/volumes.ts'

const pod = {
  metadata: { name: 'web-0', namespace: 'shop', uid: 'u-1', labels: { tier: 'front', app: 'web' }, annotations: { note: 'say "hi"\nbye' } },
  spec: { containers: [{ name: 'app', resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { memory: '64Mi' } } }, { name: 'side' }] },
} as unknown as KubeObject

t.test('downwardAPI files', async (t) => {
  const alloc = { cpu: 4, memory: 8 * 1024 ** 3 }
  const files = downwardApiFiles(pod, [
    { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
    { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
    { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
    { path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } },
    { path: 'tier', fieldRef: { fieldPath: "metadata.labels['tier']" } },
    { path: 'cpu_limit', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu' } },
    { path: 'cpu_limit_m', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu', divisor: '1m' } },
    { path: 'mem_request', resourceFieldRef: { containerName: 'app', resource: 'requests.memory', divisor: '1Mi' } },
    { path: 'side_mem_limit', resourceFieldRef: { containerName: 'side', resource: 'limits.memory', divisor: '1Gi' }, mode: 0o400 },
  ], 0o644, alloc)
  const got = Object.fromEntries(files.map((f) => [f.path, f.data.toString()]))
  t.same(got, {
    labels: 'app="web"\ntier="front"',
    annotations: 'note="say \\"hi\\"\\nbye"',
    name: 'web-0',
    ns: 'shop',
    tier: 'front',
    cpu_limit: '1',
    cpu_limit_m: '500',
    mem_request: '64',
    side_mem_limit: '8',
  })
  t.same(files.map((f) => f.mode), [0o644, 0o644, 0o644, 0o644, 0o644, 0o644, 0o644, 0o644, 0o400])
  t.equal(formatMap({}), '')
  t.throws(() => downwardApiFiles(pod, [{ path: 'x', resourceFieldRef: { containerName: 'nope', resource: 'limits.cpu' } }], 0o644, alloc), /container "nope" not found/)
  t.throws(() => downwardApiFiles(pod, [{ path: 'x', fieldRef: { fieldPath: 'spec.bogus' } }], 0o644, alloc), /unsupported fieldRef fieldPath spec.bogus/)
})

t.test('where a claim is on this node', async (t) => {
  const claim = { metadata: { name: 'data', namespace: 'shop', uid: 'c-1' }, spec: { volumeName: 'pvc-c-1' }, status: { phase: 'Bound' } } as KubeObject
  const local = (o: { node?: string; path?: string; provisioned?: boolean; uid?: string } = {}) => ({
    metadata: { name: 'pvc-c-1', annotations: o.provisioned === false ? {} : { 'pv.kubernetes.io/provisioned-by': 'skiff.dev/local' } },
    spec: {
      local: { path: o.path ?? '/state/local-volumes/pvc-c-1' }, claimRef: { uid: o.uid ?? 'c-1' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [o.node ?? 'n1'] }] }] } },
    },
  }) as unknown as KubeObject
  const base = { claimName: 'data', nodeName: 'n1', root: '/state/local-volumes', reserved: ['/var/run/docker.sock', '/state'] }
  t.same(planClaimPath({ ...base, claim, pv: local() }), { path: '/state/local-volumes/pvc-c-1', create: true }, 'our provisioned volume: created if missing')
  t.match(planClaimPath({ ...base, claim: undefined, pv: undefined }), { error: 'persistentvolumeclaim "data" not found' })
  t.match(planClaimPath({ ...base, claim: { ...claim, status: { phase: 'Pending' } }, pv: local() }), { error: /is not bound yet/ })
  t.match(planClaimPath({ ...base, claim, pv: local({ node: 'n2' }) }), { error: 'persistentvolume "pvc-c-1" is on node "n2", not on this node' })
  t.match(planClaimPath({ ...base, claim, pv: local({ uid: 'other' }) }), { error: /is not bound to claim "data"/ })
  t.match(planClaimPath({ ...base, claim, pv: local({ path: '/state/pki', provisioned: true }) }), { error: /path \/state\/pki is refused on this node/ }, 'a forged provisioned-by with another path is not ours')
  t.match(planClaimPath({ ...base, claim, pv: local({ path: '/state/local-volumes/pvc-c-1', provisioned: false }) }), { error: /refused/ }, 'a static volume inside our state is refused')
  t.same(planClaimPath({ ...base, claim, pv: local({ path: '/mnt/disk1', provisioned: false }) }), { path: '/mnt/disk1', create: false }, 'a static local volume must exist')
  t.equal(ownLocalDir(local(), 'n1', '/state/local-volumes'), '/state/local-volumes/pvc-c-1')
  t.equal(ownLocalDir(local({ node: 'n2' }), 'n1', '/state/local-volumes'), undefined, "another node's volume is never ours to remove")
})

t.test('the node refuses a reserved hostPath too', async (t) => {
  const reserved = ['/var/run/docker.sock', '/run/docker.sock', '/state/agent']
  t.equal(refusedHostPath('/var/run/docker.sock', reserved), '/var/run/docker.sock')
  t.equal(refusedHostPath('/state/agent/kubelet.key', reserved), '/state/agent')
  t.equal(refusedHostPath('/state', reserved), '/state/agent', 'a parent of the state dir')
  t.equal(refusedHostPath('/srv/www', reserved), undefined)
  t.equal(refusedHostPath('relative', reserved), '(not an absolute path)')

  const dir = await mkdtemp(join(tmpdir(), 'skiff-unit-vol-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const vm = new VolumeManager({ stateDir: dir })
  const p = { ...pod, metadata: { ...pod.metadata, uid: 'u-2' }, spec: { ...pod.spec, volumes: [{ name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }] } } as KubeObject
  const out = await vm.setUp(p, { configMaps: new Map(), secrets: new Map() })
  t.equal(await readFile(join(out.get('info')!.path, 'labels'), 'utf8'), 'app="web"\ntier="front"')
  const bad = { ...p, spec: { ...p.spec, volumes: [{ name: 'h', hostPath: { path: join(dir, 'pods') } }] } } as KubeObject
  await t.rejects(vm.setUp(bad, { configMaps: new Map(), secrets: new Map() }), /hostPath .* is refused on this node/)
  const link = join(tmpdir(), `skiff-unit-link-${process.pid}`)
  await symlink(join(dir, 'pods'), link)
  t.teardown(() => rm(link, { force: true }))
  const viaLink = { ...p, spec: { ...p.spec, volumes: [{ name: 'h', hostPath: { path: link } }] } } as KubeObject
  await t.rejects(vm.setUp(viaLink, { configMaps: new Map(), secrets: new Map() }), /hostPath .* is refused on this node/, 'a symlink into the state dir too')
  const claimOnly = { ...p, spec: { ...p.spec, volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] } } as KubeObject
  await t.rejects(vm.setUp(claimOnly, { configMaps: new Map(), secrets: new Map() }), /cannot mount persistent volume claims/)
})
