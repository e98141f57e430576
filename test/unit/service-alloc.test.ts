// Allocation planning for Services: what is claimed and released, and
// that dynamic picks avoid reserved and taken values.

import t from 'tap'
import { defaultAllocConfig, pickClusterIP, pickNodePort, planServiceAllocations, inCIDR } from '../../controlplane/apiserver/service-alloc.ts'

const cfg = defaultAllocConfig
const none = { ips: new Set<string>(), ports: new Set<string>() }

t.test('ClusterIP service claims one address in range', async (t) => {
  const svc = { metadata: {}, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } }
  const plan = planServiceAllocations(cfg, svc, undefined, none)
  t.equal(plan.claims.length, 1)
  t.ok(inCIDR((svc.spec as any).clusterIP, cfg.serviceCIDR))
  t.same(plan.releases, [])
})

t.test('NodePort keeps old values, type change releases them', async (t) => {
  const old = { metadata: {}, spec: { type: 'NodePort', clusterIP: '10.96.1.1', ports: [{ port: 80, protocol: 'TCP', nodePort: 30001 }] } }
  const same = { metadata: {}, spec: { type: 'NodePort', ports: [{ port: 80, protocol: 'TCP' }] } }
  const p1 = planServiceAllocations(cfg, same, old, none)
  t.equal((same.spec as any).clusterIP, '10.96.1.1', 'clusterIP kept')
  t.equal((same.spec.ports[0] as any).nodePort, 30001, 'nodePort kept')
  t.same(p1.releases, [])
  t.equal(p1.requested.size, 0, 'kept values are not "requested"')
  const toClusterIP = { metadata: {}, spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP', nodePort: 30001 }] } }
  const p2 = planServiceAllocations(cfg, toClusterIP, old, none)
  t.same(p2.releases, [{ pool: 'nodeport', value: '30001' }])
  t.notOk(toClusterIP.spec.ports[0]!.nodePort)
})

t.test('requested values out of range are causes', async (t) => {
  const svc = { metadata: {}, spec: { type: 'NodePort', clusterIP: '192.168.0.1', ports: [{ port: 80, nodePort: 80 }] } }
  const plan = planServiceAllocations(cfg, svc, undefined, none)
  t.same(plan.causes.map((c) => c.field), ['spec.clusterIPs', 'spec.ports[0].nodePort'])
})

t.test('dynamic picks skip reserved and taken values', async (t) => {
  let i = 0
  const seq = [0, 0.5]
  const ip = pickClusterIP({ ...cfg, serviceCIDR: '10.96.0.0/28', reservedIPs: ['10.96.0.1'] }, new Set(), () => seq[i++] ?? 0.5)
  t.not(ip, '10.96.0.1')
  const port = pickNodePort({ ...cfg, nodePortRange: [30000, 30002] }, new Set(['30000', '30001']), () => 0)
  t.equal(port, 30002)
  t.equal(pickNodePort({ ...cfg, nodePortRange: [30000, 30000] }, new Set(['30000'])), undefined, 'full range')
})
