import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { planMirroredSlices, parseAddress } from '../../controlplane/controllers/endpointslice-mirroring-plan.ts'

const svc = (selector?: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ext', namespace: 'shop' }, spec: { ports: [{ port: 80 }], ...(selector ? { selector } : {}) } })

function endpoints(subsets: any[], meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'ext', namespace: 'shop', uid: 'ep-uid', ...meta }, subsets }
}

const mirrored = { 'kubernetes.io/service-name': 'ext', 'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io' }

/** `type ports -> ip:ready` per slice, sorted. */
const view = (slices: KubeObject[]) =>
  slices.map((s) => `${s.addressType} ${(s.ports ?? []).map((p: any) => `${p.name}/${p.port}/${p.protocol}`).join(',')} -> ${(s.endpoints ?? []).map((e: any) => `${e.addresses[0]}:${e.conditions.ready}`).join(' ')}`).sort()

t.test('which Endpoints are mirrored', async (t) => {
  const ep = endpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 8080 }] }])
  const cases: Array<{ name: string; ep?: KubeObject; svc?: KubeObject; want: number }> = [
    { name: 'selectorless Service: mirrored', ep, svc: svc(), want: 1 },
    { name: 'Service with a selector: not mirrored', ep, svc: svc({ app: 'x' }), want: 0 },
    { name: 'no Service: not mirrored', ep, want: 0 },
    { name: 'skip-mirror label (Skiff\'s own Endpoints): not mirrored', ep: endpoints(ep.subsets, { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }), svc: svc(), want: 0 },
    { name: 'leader-election annotation: not mirrored', ep: endpoints(ep.subsets, { annotations: { 'control-plane.alpha.kubernetes.io/leader': '{}' } }), svc: svc(), want: 0 },
  ]
  for (const c of cases) t.equal(planMirroredSlices('shop', 'ext', c.ep, c.svc, []).create.length, c.want, c.name)
})

t.test('a slice per address type and port set; not-ready addresses not ready; invalid IPs skipped', async (t) => {
  const ep = endpoints([
    { addresses: [{ ip: '10.0.0.1' }, { ip: '010.000.000.002' }, { ip: 'fd00::1' }, { ip: 'nope' }], notReadyAddresses: [{ ip: '10.0.0.3' }], ports: [{ name: 'http', port: 8080 }] },
    { addresses: [{ ip: '10.0.0.9' }], ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
  ])
  const plan = planMirroredSlices('shop', 'ext', ep, svc(), [])
  t.same(view(plan.create), ['IPv4 dns/53/UDP -> 10.0.0.9:true', 'IPv4 http/8080/TCP -> 10.0.0.1:true 10.0.0.2:true 10.0.0.3:false', 'IPv6 http/8080/TCP -> fd00::1:true'])
  t.equal(plan.invalidAddresses, 1)
  t.equal(plan.skippedAddresses, 1)
})

t.test('metadata: labels and annotations copied (but the trigger time and last-applied), owner the Endpoints, generateName', async (t) => {
  const ep = endpoints([{ addresses: [{ ip: '10.0.0.1', hostname: 'a', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'p', namespace: 'shop' } }], ports: [{ port: 80 }] }], {
    labels: { team: 'a', 'kubernetes.io/service-name': 'other' },
    annotations: { note: 'x', 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
  })
  const [s] = planMirroredSlices('shop', 'ext', ep, svc(), []).create
  t.same(s!.metadata.labels, { team: 'a', ...mirrored })
  t.same(s!.metadata.annotations, { note: 'x' })
  t.same(s!.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Endpoints', name: 'ext', uid: 'ep-uid', controller: true, blockOwnerDeletion: true }])
  t.equal(s!.metadata.generateName, 'ext-')
  t.same(s!.endpoints, [{ addresses: ['10.0.0.1'], conditions: { ready: true }, hostname: 'a', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'p', namespace: 'shop' } }])
  t.same(s!.ports, [{ name: '', port: 80, protocol: 'TCP' }])
})

t.test('at most maxEndpointsPerSubset addresses per subset, ready ones first', async (t) => {
  const ep = endpoints([{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], notReadyAddresses: [{ ip: '10.0.0.3' }], ports: [{ port: 80 }] }])
  const plan = planMirroredSlices('shop', 'ext', ep, svc(), [], { maxEndpointsPerSubset: 2 })
  t.same(view(plan.create), ['IPv4 /80/TCP -> 10.0.0.1:true 10.0.0.2:true'])
  t.equal(plan.skippedAddresses, 1)
})

t.test('existing slices: unchanged kept, changed rewritten, extra and stale deleted, foreign untouched', async (t) => {
  const ep = endpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }])
  const [want] = planMirroredSlices('shop', 'ext', ep, svc(), []).create
  const slice = (name: string, over: Partial<KubeObject> = {}): KubeObject => ({ ...want!, ...over, metadata: { ...want!.metadata, generateName: undefined, name, resourceVersion: '5' } })
  t.same(planMirroredSlices('shop', 'ext', ep, svc(), [slice('ext-a')]), { create: [], update: [], delete: [], invalidAddresses: 0, skippedAddresses: 0 }, 'in sync: nothing to do')
  const moved = planMirroredSlices('shop', 'ext', endpoints([{ addresses: [{ ip: '10.0.0.7' }], ports: [{ port: 80 }] }]), svc(), [slice('ext-a'), slice('ext-b')])
  t.same(moved.update.map((s) => s.metadata.name), ['ext-a'])
  t.same(view(moved.update), ['IPv4 /80/TCP -> 10.0.0.7:true'])
  t.same(moved.delete.map((s) => s.metadata.name), ['ext-b'])
  const portsChanged = planMirroredSlices('shop', 'ext', endpoints([{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 81 }] }]), svc(), [slice('ext-a')])
  t.same([portsChanged.create.length, portsChanged.update.map((s) => s.metadata.name), portsChanged.delete.length], [0, ['ext-a'], 0], 'a slice of the old port set is recycled')
  t.same(planMirroredSlices('shop', 'ext', undefined, svc(), [slice('ext-a')]).delete.map((s) => s.metadata.name), ['ext-a'], 'Endpoints gone: mirrored slices go')
  const foreign = slice('ext-x', {})
  foreign.metadata.labels = { 'kubernetes.io/service-name': 'ext', 'endpointslice.kubernetes.io/managed-by': 'someone-else' }
  t.same(planMirroredSlices('shop', 'ext', undefined, svc(), [foreign]).delete, [], 'slices of other managers are never touched')
})

t.test('parseAddress', async (t) => {
  t.same(parseAddress('10.1.2.3'), { ip: '10.1.2.3', type: 'IPv4' })
  t.same(parseAddress('FD00::A'), { ip: 'fd00::a', type: 'IPv6' })
  t.equal(parseAddress('300.1.1.1'), undefined)
  t.equal(parseAddress('host.example'), undefined)
})
