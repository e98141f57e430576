// The nftables backend's pure parts: the rendered transaction and the UDP
// conntrack entries a change makes stale. The script is also checked by the
// real nft in check mode (-c: parsed and validated by the kernel, nothing applied).

import t from 'tap'
import { nftTableName, renderNftables } from '../../dataplane/service-proxy/nftables-render.ts'
import { runCommand, staleUdpEntries } from '../../dataplane/service-proxy/nftables.ts'
import { buildRoutingTable } from '../../dataplane/service-proxy/table.ts'
import { flows, node1, service, slice } from '../conformance/service-proxy.ts'

/** Every conformance flow's Services in one table, each with its own ClusterIP. */
function everything() {
  const services = flows.flatMap((f, i) => f.services.map((s) => ({ ...s, metadata: { ...s.metadata, name: `s${i}` }, spec: { ...s.spec, clusterIP: s.spec.clusterIP === 'None' ? 'None' : `10.96.1.${i}` } })))
  const slices = flows.flatMap((f, i) => f.slices.map((s) => ({ ...s, metadata: { ...s.metadata, name: `s${i}-${s.metadata.name}`, labels: { 'kubernetes.io/service-name': `s${i}` } } })))
  return buildRoutingTable(services, slices, node1, 3)
}

t.test('one transaction that replaces only our table', async (t) => {
  const name = nftTableName('n1')
  t.match(name, /^skiff-[0-9a-f]{9}$/)
  const { script, rules } = renderNftables(everything(), name)
  const lines = script.split('\n')
  t.same(lines.slice(0, 3), [`add table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`])
  t.notOk(lines.some((l) => /^(add|delete|flush|table)\b/.test(l) && !l.includes(name)), 'no other table is named')
  t.ok(rules > 50, `${rules} rules`)
  t.notMatch(script, /10\.96\.0\.10/, 'no DNS rule without a node DNS server')
})

t.test('the cluster DNS address goes to the node DNS server', async (t) => {
  const table = buildRoutingTable([], [], { ...node1, dns: { ip: '10.96.0.10', target: '10.244.1.1', port: 53 } }, 1)
  const { script } = renderNftables(table, 'skiff-dnscheck')
  const dnat = 'ip daddr 10.96.0.10 meta l4proto { tcp, udp } th dport 53 dnat to 10.244.1.1:53'
  t.match(script, `ip saddr ${node1.podCIDR} ${dnat}`, 'pods of this node')
  t.match(script, new RegExp(`chain nat-output \\{[^}]*${dnat.replace(/[.{}]/g, (c) => '\\' + c)}`), 'the host')
})

t.test('the real nft accepts the script (check mode)', async (t) => {
  const { script } = renderNftables(everything(), 'skiff-unitcheck')
  const r = await runCommand('nft', ['-c', '-f', '-'], script)
  t.equal(r.code, 0, r.stderr)
})

t.test('empty table', async (t) => {
  const { script } = renderNftables(buildRoutingTable([], [], node1, 1), 'skiff-empty')
  const r = await runCommand('nft', ['-c', '-f', '-'], script)
  t.equal(r.code, 0, r.stderr)
})

t.test('stale UDP conntrack entries', async (t) => {
  const svc = service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] })
  const udp = [{ name: 'dns', port: 5353, protocol: 'UDP' as const }]
  const two = buildRoutingTable([svc], [slice('dns', [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }], udp)], node1, 1)
  const one = buildRoutingTable([svc], [slice('dns', [{ ip: '10.244.1.6' }], udp)], node1, 2)
  const none = buildRoutingTable([svc], [slice('dns', [], udp)], node1, 3)
  t.same(staleUdpEntries(undefined, two), [], 'first apply: nothing known')
  t.same(staleUdpEntries(two, one), [{ dst: '10.96.0.53', port: 53, endpoint: '10.244.1.5' }], 'a removed endpoint')
  t.same(staleUdpEntries(one, none), [{ dst: '10.96.0.53', port: 53, endpoint: '10.244.1.6' }], 'the last endpoint')
  t.same(staleUdpEntries(none, one), [{ dst: '10.96.0.53', port: 53 }], 'endpoints again: rejected entries go')
  t.same(staleUdpEntries(one, one), [], 'no change')
  const tcp = buildRoutingTable([service('web', { clusterIP: '10.96.0.20' })], [slice('web', [{ ip: '10.244.1.5' }])], node1, 1)
  t.same(staleUdpEntries(tcp, buildRoutingTable([service('web', { clusterIP: '10.96.0.20' })], [], node1, 2)), [], 'TCP needs nothing')
})
