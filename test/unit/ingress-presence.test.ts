// Presence Leases: which ingress nodes of a class count as serving.
import t from 'tap'
import { presenceLease, presentAddresses, presenceLeaseName } from '../../dataplane/ingress/presence.ts'
import { planIngressStatus } from '../../dataplane/ingress/status.ts'

const lease = (node: string, address: string, ready = true, cls = 'external') =>
  presenceLease({ className: cls, nodeName: node, durationSeconds: 15, nowMs: 0, state: { address, ready, generation: 3 } })

t.test('the Lease carries address, readiness and the applied generation', async (t) => {
  const l = lease('n1', '10.1.0.1')
  t.equal(l.metadata.name, 'ingress-external-node-n1')
  t.equal(presenceLeaseName('internal', 'n3'), 'ingress-internal-node-n3')
  t.same(l.metadata.annotations, { 'ingress.skiff.dev/address': '10.1.0.1', 'ingress.skiff.dev/ready': 'true', 'ingress.skiff.dev/applied-generation': '3' })
  t.match(l.spec, { holderIdentity: 'n1', leaseDurationSeconds: 15 })
})

t.test('only fresh, ready Leases of the class count; the first expiry is reported', async (t) => {
  const leases = [lease('n1', '10.1.0.1'), lease('n2', '10.1.1.1'), lease('n3', '10.1.2.1', false), lease('i1', '10.1.3.1', true, 'internal'), lease('n4', '10.1.4.1')]
  const seen: Record<string, number> = { 'ingress-external-node-n1': 10_000, 'ingress-external-node-n2': 1_000, 'ingress-external-node-n3': 10_000, 'ingress-internal-node-i1': 10_000 }
  const r = presentAddresses({ className: 'external', leases, observedAtMs: (n) => seen[n], nowMs: 20_000 })
  t.same([...r.addresses], ['10.1.0.1'], 'n2 expired (seen 19 s ago), n3 not ready, i1 another class, n4 never seen')
  t.equal(r.nextExpiryMs, 25_000)
  t.same(presentAddresses({ className: 'external', leases: [], observedAtMs: () => 0, nowMs: 0 }), { addresses: new Set(), nextExpiryMs: undefined })
})

t.test('status publishes pool nodes that also serve', async (t) => {
  const node = (name: string, ip: string) => ({ metadata: { name, labels: { 'skiff.dev/ingress-pool': 'external' } }, status: { addresses: [{ type: 'InternalIP', address: ip }], conditions: [{ type: 'Ready', status: 'True' }] } })
  const ing = { metadata: { name: 'a', namespace: 'default', uid: 'u' }, spec: { ingressClassName: 'external' } }
  const plan = planIngressStatus({ className: 'external', ingresses: [ing], nodes: [node('n1', '10.1.0.1'), node('n2', '10.1.1.1')], conflicts: [], broken: [], emitted: new Set(), now: '2026-11-22T00:00:00Z', serving: new Set(['10.1.1.1']) })
  t.same(plan.updates[0]?.status.loadBalancer, { ingress: [{ ip: '10.1.1.1' }] })
})
