// planIngressStatus: which Ingress gets which addresses and Accepted
// condition, which Events are new, and that an Ingress already right is left
// alone.

import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { compileRouteTable } from '../../dataplane/ingress/routes.ts'
import { planIngressStatus, poolAddresses, type StatusInputs } from '../../dataplane/ingress/status.ts'

const now = '2026-02-01T00:00:00Z'

function node(name: string, ip: string, o: { pool?: string; ready?: boolean } = {}): KubeObject {
  return {
    metadata: { name, labels: o.pool ? { 'skiff.dev/ingress-pool': o.pool } : {} },
    status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }], conditions: [{ type: 'Ready', status: o.ready === false ? 'Unknown' : 'True' }] },
  }
}

function ing(name: string, o: { host?: string; path?: string; age?: number; status?: any; methods?: string } = {}): KubeObject {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, o.age ?? 0)).toISOString(), annotations: o.methods ? { 'skiff.dev/methods': o.methods } : {} },
    spec: { ingressClassName: 'external', rules: [{ host: o.host ?? `${name}.example`, http: { paths: [{ path: o.path ?? '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
    status: o.status ?? {},
  }
}

const nodes = [node('e2', '10.9.2.1', { pool: 'external' }), node('e10', '10.9.10.1', { pool: 'external' }), node('e3', '10.9.3.1', { pool: 'external', ready: false }), node('i1', '10.9.1.1', { pool: 'internal' }), node('w1', '10.9.4.1')]

function plan(ingresses: KubeObject[], extra: Partial<StatusInputs> = {}) {
  const { conflicts, broken } = compileRouteTable(ingresses, { className: 'external', isDefaultClass: false })
  return planIngressStatus({ className: 'external', ingresses, nodes, conflicts, broken, emitted: new Set(), now, ...extra })
}

t.test('addresses: the Ready nodes of the pool, numerically sorted', async (t) => {
  t.same(poolAddresses(nodes, 'external'), ['10.9.2.1', '10.9.10.1'])
  t.same(poolAddresses(nodes, 'internal'), ['10.9.1.1'])
  t.same(poolAddresses(nodes, 'other'), [])
  const withExternal = { ...nodes[0]!, status: { ...nodes[0]!.status, addresses: [...nodes[0]!.status.addresses, { type: 'ExternalIP', address: '203.0.113.2' }] } }
  t.same(poolAddresses([withExternal, nodes[1]!], 'external'), ['10.9.10.1', '203.0.113.2'], 'a node\'s ExternalIP is published instead of its InternalIP')
  const p = plan([ing('a')])
  t.same(p.updates, [{ ingress: 'default/a', status: { loadBalancer: { ingress: [{ ip: '10.9.2.1' }, { ip: '10.9.10.1' }] }, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'all routes are served', lastTransitionTime: now }] } }])
  t.same(p.events, [])
  const empty = planIngressStatus({ className: 'none', ingresses: [ing('a')], nodes, conflicts: [], broken: [], emitted: new Set(), now })
  t.same(empty.updates[0]!.status.loadBalancer, {}, 'no pool node: an empty loadBalancer')
})

t.test('a conflict is reported on both Ingresses: condition and one Event each', async (t) => {
  const old = ing('old', { host: 'x.example', age: 1 })
  const dup = ing('new', { host: 'x.example', age: 2 })
  const p = plan([old, dup])
  const cond = (key: string) => (p.updates.find((u) => u.ingress === key)!.status.conditions as any[])[0]
  t.match(cond('default/old'), { type: 'Accepted', status: 'True', reason: 'RouteConflict', message: /claimed by default\/old and default\/new; default\/old is older and keeps it/ })
  t.match(cond('default/new'), { type: 'Accepted', status: 'False', reason: 'RouteConflict', message: /host "x.example" path \// })
  t.same(p.events.map((e) => [e.ingress, e.type, e.reason]), [['default/old', 'Warning', 'RouteConflict'], ['default/new', 'Warning', 'RouteConflict']])
  t.match(p.events[0]!.message, /default\/new/, 'the Event names the other Ingress')

  const again = plan([old, dup], { emitted: p.emitted })
  t.same(again.events, [], 'not repeated while unchanged')
  const solved = plan([old], { emitted: p.emitted })
  t.equal(solved.emitted.size, 0, 'forgotten once solved, so a recurrence is reported again')
})

t.test('disjoint methods are no conflict; a broken Ingress is InvalidIngress', async (t) => {
  const p = plan([ing('get', { host: 'x.example', methods: 'GET' }), ing('post', { host: 'x.example', methods: 'POST', age: 1 }), ing('bad', { methods: 'FETCH' })])
  const byKey = new Map(p.updates.map((u) => [u.ingress, (u.status.conditions as any[])[0]]))
  t.match(byKey.get('default/get'), { status: 'True', reason: 'Accepted' })
  t.match(byKey.get('default/post'), { status: 'True', reason: 'Accepted' })
  t.match(byKey.get('default/bad'), { status: 'False', reason: 'InvalidIngress', message: /skiff.dev\/methods/ })
  t.same(p.events.map((e) => [e.ingress, e.reason]), [['default/bad', 'InvalidIngress']])
})

t.test('no update when the status is already right; lastTransitionTime kept', async (t) => {
  const first = plan([ing('a')])
  const written = ing('a', { status: first.updates[0]!.status })
  t.same(plan([written], { now: '2026-03-01T00:00:00Z' }).updates, [], 'equal: no write')
  const moved = planIngressStatus({ className: 'external', ingresses: [written], nodes: nodes.slice(0, 1), conflicts: [], broken: [], emitted: new Set(), now: '2026-03-01T00:00:00Z' })
  t.same(moved.updates[0]!.status, { loadBalancer: { ingress: [{ ip: '10.9.2.1' }] }, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'all routes are served', lastTransitionTime: now }] }, 'a node left: new addresses, same transition time')
  const other = ing('a', { status: { ...first.updates[0]!.status, conditions: [{ type: 'Other', status: 'True' }, ...(first.updates[0]!.status.conditions as any[])] } })
  t.same(plan([other]).updates, [], 'conditions of other types are kept and do not cause writes')
  const noCond = plan([ing('a', { status: { loadBalancer: first.updates[0]!.status.loadBalancer } })], { writeConditions: false })
  t.same(noCond.updates, [], 'writeConditions false: only the addresses count')
})

t.test('unresolved references: ResolvedRefs False, Accepted says so, one Warning Event each; True again once fixed', async (t) => {
  const refs = [
    { ingress: 'default/a', reason: 'BackendNotFound' as const, message: 'service default/web not found' },
    { ingress: 'default/a', reason: 'InvalidCertificateRef' as const, message: 'secret default/tls: tls.key does not match the certificate in tls.crt; hosts a.example get the default certificate' },
  ]
  const p = plan([ing('a'), ing('b')], { unresolved: refs })
  const conds = (key: string) => p.updates.find((u) => u.ingress === key)!.status.conditions as any[]
  t.same(conds('default/a'), [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'accepted, but 2 references do not resolve (see ResolvedRefs)', lastTransitionTime: now },
    { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: `${refs[0]!.message}; ${refs[1]!.message}`, lastTransitionTime: now },
  ])
  t.same(conds('default/b').map((c) => c.type), ['Accepted'], 'an Ingress without problems gets no ResolvedRefs')
  t.same(p.events.map((e) => [e.ingress, e.type, e.reason, e.message]), refs.map((r) => [r.ingress, 'Warning', r.reason, r.message]))
  const written = ing('a', { status: p.updates[0]!.status })
  t.same(plan([written], { unresolved: refs, emitted: p.emitted }).events, [], 'not repeated while unchanged')
  const fixed = plan([written], { emitted: p.emitted, now: '2026-03-01T00:00:00Z' })
  t.same(fixed.updates[0]!.status.conditions, [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'all routes are served', lastTransitionTime: now },
    { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all backends and certificates resolve', lastTransitionTime: '2026-03-01T00:00:00Z' },
  ])
})
