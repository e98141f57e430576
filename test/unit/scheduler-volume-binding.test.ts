// The VolumeBinding filter (controlplane/scheduler/plugins/volume-binding.ts)
// over whole cycles: a pod with claims, the nodes, the cluster's claims,
// volumes and classes; the chosen node or the message users see.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { defaultLocalStorageClass } from '../../controlplane/api/storage.ts'
import { fitErrorMessage, runCycle } from '../../controlplane/scheduler/cycle.ts'
import { profiles, type NodeInfo } from '../../controlplane/scheduler/framework.ts'
import { MutableNodeInfo } from '../../controlplane/scheduler/nodeinfo.ts'
import { claimsToSelect, type VolumeLookup } from '../../controlplane/scheduler/plugins/volume-binding.ts'
import { makeNode, makePod } from '../../controlplane/scheduler/testing.ts'

function info(node: KubeObject): NodeInfo {
  const i = new MutableNodeInfo(node.metadata.name!)
  i.setNode(node)
  return i
}

function localNode(name: string, published = true): KubeObject {
  const n = makeNode(name)
  if (published) n.metadata.annotations = { 'skiff.dev/local-volume-dir': `/state/${name}/local-volumes` }
  return n
}

function claim(name: string, o: { cls?: string; volume?: string; deleting?: boolean; selected?: string } = {}): KubeObject {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, annotations: o.selected ? { 'volume.kubernetes.io/selected-node': o.selected } : {}, ...(o.deleting ? { deletionTimestamp: 'x' } : {}) },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: o.cls ?? 'local-path', ...(o.volume ? { volumeName: o.volume } : {}) },
    status: { phase: o.volume ? 'Bound' : 'Pending' },
  }
}

function volume(name: string, node?: string, cls = 'local-path'): KubeObject {
  return {
    metadata: { name },
    spec: {
      capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: cls, local: { path: `/x/${name}` },
      ...(node ? { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } } : {}),
    },
    status: { phase: 'Available' },
  }
}

const immediate = { metadata: { name: 'fast' }, provisioner: 'example.com/csi', volumeBindingMode: 'Immediate' } as KubeObject
const noProv = { metadata: { name: 'manual' }, provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer' } as KubeObject

function lookup(claims: KubeObject[], volumes: KubeObject[]): VolumeLookup {
  const classes = new Map([defaultLocalStorageClass(), immediate, noProv].map((c) => [c.metadata.name!, c]))
  return {
    claim: (ns, n) => claims.find((c) => c.metadata.namespace === ns && c.metadata.name === n),
    volume: (n) => volumes.find((v) => v.metadata.name === n),
    storageClass: (n) => classes.get(n),
    volumes: () => volumes,
  }
}

function podWith(...claimNames: string[]): KubeObject {
  const p = makePod('p')
  p.spec.volumes = claimNames.map((n, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName: n } }))
  return p
}

function schedule(pod: KubeObject, nodes: KubeObject[], l: VolumeLookup): string {
  const r = runCycle({ pod, nodes: nodes.map(info), profile: profiles.default, volumes: l })
  return 'fitError' in r ? fitErrorMessage(r.fitError) : r.node
}

t.test('VolumeBinding in a cycle', async (t) => {
  const n1 = localNode('n1')
  const n2 = localNode('n2')
  const cases: Array<{ name: string; pod: KubeObject; nodes?: KubeObject[]; claims: KubeObject[]; volumes?: KubeObject[]; want: string | RegExp }> = [
    { name: 'a pod without claims is not affected', pod: makePod('p'), claims: [], want: /^n[12]$/ },
    { name: 'a bound claim keeps the pod on its volume node', pod: podWith('data'), claims: [claim('data', { volume: 'pv1' })], volumes: [volume('pv1', 'n2')], want: 'n2' },
    {
      name: 'the volume node is not usable: volume node affinity conflict', pod: podWith('data'), nodes: [n1, makeNode('n3')],
      claims: [claim('data', { volume: 'pv1' })], volumes: [volume('pv1', 'n2')], want: '0/2 nodes are available: 2 node(s) had volume node affinity conflict.',
    },
    { name: 'a missing claim', pod: podWith('nope'), claims: [], want: '0/2 nodes are available: 2 persistentvolumeclaim "nope" not found.' },
    { name: 'a claim being deleted', pod: podWith('data'), claims: [claim('data', { deleting: true })], want: '0/2 nodes are available: 2 persistentvolumeclaim "data" is being deleted.' },
    { name: 'an unbound Immediate claim', pod: podWith('data'), claims: [claim('data', { cls: 'fast' })], want: '0/2 nodes are available: 2 pod has unbound immediate PersistentVolumeClaims.' },
    { name: 'an unbound WaitForFirstConsumer claim of the local provisioner: any node that published its dir', pod: podWith('data'), nodes: [localNode('n1', false), n2], claims: [claim('data')], want: 'n2' },
    {
      name: 'no provisioner: only nodes with a matching Available volume', pod: podWith('data'), claims: [claim('data', { cls: 'manual' })], volumes: [volume('static', 'n1', 'manual')], want: 'n1',
    },
    {
      name: 'no provisioner and no volume', pod: podWith('data'), claims: [claim('data', { cls: 'manual' })],
      want: "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind.",
    },
    { name: 'two claims bound on different nodes fit nowhere', pod: podWith('a', 'b'), claims: [claim('a', { volume: 'pa' }), claim('b', { volume: 'pb' })], volumes: [volume('pa', 'n1'), volume('pb', 'n2')], want: '0/2 nodes are available: 2 node(s) had volume node affinity conflict.' },
  ]
  for (const c of cases) {
    const got = schedule(c.pod, c.nodes ?? [n1, n2], lookup(c.claims, c.volumes ?? []))
    if (typeof c.want === 'string') t.equal(got, c.want, c.name)
    else t.match(got, c.want, c.name)
  }
})

t.test('claimsToSelect: the unbound WaitForFirstConsumer claims not yet on the chosen node', async (t) => {
  const l = lookup([claim('a'), claim('b', { selected: 'n1' }), claim('c', { volume: 'pv' }), claim('d', { cls: 'fast' }), claim('e', { selected: 'n2' })], [])
  t.same(claimsToSelect(podWith('a', 'b', 'c', 'd', 'e'), 'n1', l).map((c) => c.metadata.name), ['a', 'e'])
})
