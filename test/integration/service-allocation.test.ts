// ClusterIP and NodePort allocation: atomic under concurrency, requested
// values checked, released on delete and type change.

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { resourcePath } from '../../controlplane/client/client.ts'
import { startTestCluster } from '../harness/cluster.ts'

const svcs = lookupResource('', 'v1', 'services')!

const nodePortSvc = (name: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name },
  spec: { type: 'NodePort', selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }], ...extra },
})

t.test('1000 concurrent Services get distinct ClusterIPs and NodePorts', async (t) => {
  const c = await startTestCluster(t)
  const created = await Promise.all(Array.from({ length: 1000 }, (_, i) => c.client.create(svcs, 'default', nodePortSvc(`s${i}`))))
  const ips = new Set(created.map((s) => s.spec.clusterIP))
  const ports = new Set(created.map((s) => s.spec.ports[0].nodePort))
  t.equal(ips.size, 1000, 'distinct ClusterIPs')
  t.equal(ports.size, 1000, 'distinct NodePorts')
  t.ok([...ports].every((p) => p >= 30000 && p <= 32767), 'NodePorts in range')
  t.notOk(ips.has('10.96.0.10'), 'the cluster DNS address is never handed out')
})

t.test('requested, taken, out of range, released', async (t) => {
  const c = await startTestCluster(t)
  const a = await c.client.create(svcs, 'default', nodePortSvc('a', { clusterIP: '10.96.5.5', ports: [{ port: 80, nodePort: 30100 }] }))
  t.equal(a.spec.clusterIP, '10.96.5.5')
  t.equal(a.spec.ports[0].nodePort, 30100)

  const takenIP = await c.client.request('POST', resourcePath(svcs, 'default'), { body: nodePortSvc('b', { clusterIP: '10.96.5.5' }) })
  t.equal(takenIP.status, 422)
  t.equal(takenIP.body.details.causes[0].field, 'spec.clusterIPs')
  t.match(takenIP.body.message, /already allocated/)

  const takenPort = await c.client.request('POST', resourcePath(svcs, 'default'), { body: nodePortSvc('b', { ports: [{ port: 80, nodePort: 30100 }] }) })
  t.equal(takenPort.status, 422)
  t.equal(takenPort.body.details.causes[0].field, 'spec.ports[0].nodePort')

  const outIP = await c.client.request('POST', resourcePath(svcs, 'default'), { body: nodePortSvc('b', { clusterIP: '192.168.1.1' }) })
  t.equal(outIP.status, 422)
  t.match(outIP.body.message, /not in the valid range/)
  const outPort = await c.client.request('POST', resourcePath(svcs, 'default'), { body: nodePortSvc('b', { ports: [{ port: 80, nodePort: 80 }] }) })
  t.equal(outPort.status, 422)
  t.equal((await c.client.request('GET', resourcePath(svcs, 'default', 'b'))).status, 404, 'nothing stored')

  // type change NodePort -> ClusterIP releases the port
  const cur = await c.client.get(svcs, 'default', 'a')
  await c.client.update(svcs, { ...cur, spec: { ...cur.spec, type: 'ClusterIP', ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } })
  const reuse = await c.client.create(svcs, 'default', nodePortSvc('c', { ports: [{ port: 80, nodePort: 30100 }] }))
  t.equal(reuse.spec.ports[0].nodePort, 30100, 'port released by the type change')

  // delete releases the IP
  await c.client.delete(svcs, 'default', 'a')
  const again = await c.client.create(svcs, 'default', nodePortSvc('d', { clusterIP: '10.96.5.5' }))
  t.equal(again.spec.clusterIP, '10.96.5.5', 'IP released by the delete')

  // headless and ExternalName hold nothing
  const headless = await c.client.create(svcs, 'default', { metadata: { name: 'h' }, spec: { clusterIP: 'None', selector: { app: 'h' }, ports: [{ port: 80 }] } })
  t.equal(headless.spec.clusterIP, 'None')
  const ext = await c.client.create(svcs, 'default', { metadata: { name: 'e' }, spec: { type: 'ExternalName', externalName: 'example.com' } })
  t.notOk(ext.spec.clusterIP)
})
