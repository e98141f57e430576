// The service-proxy table: every conformance flow traced through the table
// buildRoutingTable makes, plus the table's own fields.

import t from 'tap'
import { buildRoutingTable, nodeViewFrom } from '../../dataplane/service-proxy/table.ts'
import { flows, node1, service, slice, tableFor, trace } from '../conformance/service-proxy.ts'

for (const f of flows) {
  t.test(f.name, async (t) => {
    t.same(trace(tableFor(f), f), f.want)
  })
}

t.test('table fields', async (t) => {
  const svc = service('web', { type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', healthCheckNodePort: 31000, externalIPs: ['10.250.1.1'], ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }, { loadBalancer: { ingress: [{ ip: '10.250.0.9' }, { hostname: 'x.example' }] } })
  const table = buildRoutingTable([svc], [slice('web', [{ ip: '10.244.2.5', node: 'n2' }, { ip: '10.244.1.5', node: 'n1' }])], node1, 7)
  t.equal(table.generation, 7)
  t.equal(table.ports.length, 1)
  const p = table.ports[0]!
  t.match(p, { id: 'default/web:http', namespace: 'default', service: 'web', portName: 'http', protocol: 'TCP', clusterIP: '10.96.0.20', port: 80, nodePort: 30080, healthCheckNodePort: 31000 })
  t.same(p.loadBalancerIPs, ['10.250.0.9'])
  t.same(p.externalIPs, ['10.250.1.1'])
  t.same(p.clusterEndpoints.map((e) => e.ip), ['10.244.1.5', '10.244.2.5'], 'sorted by address')
  t.same(p.localEndpoints.map((e) => e.ip), ['10.244.1.5'])
})

t.test('a ClusterIP Service has no node port, no health check port', async (t) => {
  const table = buildRoutingTable([service('a', { clusterIP: '10.96.0.2', ports: [{ name: '', port: 80, nodePort: 30001 }] })], [], node1, 1)
  t.equal(table.ports[0]!.nodePort, undefined)
  t.equal(table.ports[0]!.id, 'default/a:')
})

t.test('nodeViewFrom reads addresses and podCIDR', async (t) => {
  const v = nodeViewFrom({ metadata: { name: 'n1' }, spec: { podCIDR: '10.1.1.0/24' }, status: { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '10.1.1.1' }] } } as any, '10.1.0.0/16')
  t.same(v, { name: 'n1', addresses: ['10.1.1.1'], podCIDR: '10.1.1.0/24', clusterCIDR: '10.1.0.0/16' })
})

t.test('incremental build: the same table as a whole build, unchanged Services keep their port objects', async (t) => {
  const rv = (o: any, v: string) => ({ ...o, metadata: { ...o.metadata, resourceVersion: v } })
  const web = rv(service('web', { clusterIP: '10.96.0.20' }), '1')
  const db = rv(service('db', { clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80 }, { name: 'admin', port: 81 }] }), '2')
  const webSlice = rv(slice('web', [{ ip: '10.244.1.5', node: 'n1' }]), '3')
  const dbSlice = rv(slice('db', [{ ip: '10.244.2.9', node: 'n2' }], [{ name: 'http', port: 8080 }, { name: 'admin', port: 8081 }]), '4')
  const cache = { entries: new Map() }
  const steps: Array<[string, any[], any[], typeof node1]> = [
    ['first', [web, db], [webSlice, dbSlice], node1],
    ['web gets an endpoint', [web, db], [rv(slice('web', [{ ip: '10.244.1.5', node: 'n1' }, { ip: '10.244.1.6', node: 'n2' }]), '5'), dbSlice], node1],
    ['web changes its type', [rv(service('web', { clusterIP: '10.96.0.20', type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), '6'), db], [webSlice, dbSlice], node1],
    ['a second slice for db', [web, db], [webSlice, dbSlice, rv(slice('db', [{ ip: '10.244.1.9', node: 'n1' }], [{ name: 'http', port: 8080 }], 'b'), '7')], node1],
    ['db goes', [web], [webSlice, dbSlice], node1],
    ['db is back, same resourceVersion', [web, db], [webSlice, dbSlice], node1],
    ['another node', [web, db], [webSlice, dbSlice], { ...node1, name: 'n2' }],
    ['objects without resourceVersion are never reused', [web, service('x', { clusterIP: '10.96.0.40' })], [webSlice, slice('x', [{ ip: '10.244.1.7' }])], node1],
  ]
  let prev: ReturnType<typeof buildRoutingTable> | undefined
  for (const [what, services, slices, node] of steps) {
    const inc = buildRoutingTable(services, slices, node, 1, cache)
    t.same(inc, buildRoutingTable(services, slices, node, 1), `${what}: equal to the whole build`)
    if (what === 'web gets an endpoint') {
      t.equal(inc.ports.find((p) => p.service === 'db'), prev!.ports.find((p) => p.service === 'db'), 'db untouched: the same object')
      t.not(inc.ports.find((p) => p.service === 'web'), prev!.ports.find((p) => p.service === 'web'), 'web rebuilt')
    }
    if (what === 'another node') t.not(inc.ports[0], prev!.ports[0], 'a node change rebuilds')
    if (what === 'objects without resourceVersion are never reused') {
      const again = buildRoutingTable(services, slices, node, 1, cache)
      t.not(again.ports.find((p) => p.service === 'x'), inc.ports.find((p) => p.service === 'x'))
      t.equal(again.ports.find((p) => p.service === 'web'), inc.ports.find((p) => p.service === 'web'))
    }
    prev = inc
  }
})
