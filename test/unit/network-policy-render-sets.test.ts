// renderNetpol's shared peer sets: an address list of two or more that more
// than one rule uses is declared once as a named set and referenced; a list
// used once, or of one address, stays inline.

import t from 'tap'
import { renderNetpol } from '../../dataplane/network-policy/render.ts'
import type { PolicyTable } from '../../dataplane/network-policy/types.ts'

const peers = { ips: ['10.1.2.2', '10.1.2.3'] }
const table: PolicyTable = {
  node: 'n1', nodeIPs: ['10.1.1.1'], policies: 3,
  ingress: [
    { pod: 'x/a', ip: '10.1.1.2', chain: 'in-a', allows: [{ policy: 'x/same-ns', peers }, { policy: 'x/one', peers: { ips: ['10.1.2.4'] } }] },
    { pod: 'x/b', ip: '10.1.1.3', chain: 'in-b', allows: [{ policy: 'x/same-ns', peers: { ips: [...peers.ips] }, ports: [{ protocol: 'tcp', port: 80 }] }] },
  ],
  egress: [
    { pod: 'x/a', ip: '10.1.1.2', chain: 'eg-a', allows: [{ policy: 'x/out', peers: { ips: ['10.1.3.2', '10.1.3.3'] } }] },
  ],
}

t.test('a list two rules use is one named set; lists used once or of one address stay inline', async (t) => {
  const { script, rules } = renderNetpol(table, 'skiff-np-test')
  const named = /set (ips-[0-9a-f]{12}) \{\n    type ipv4_addr\n    elements = \{ 10\.1\.2\.2, 10\.1\.2\.3 \}\n  \}/.exec(script)
  t.ok(named, 'the shared list is declared once as a set')
  const name = named![1]!
  t.equal(script.split(`ip saddr @${name} `).length - 1, 2, 'both rules reference it')
  t.match(script, `ip saddr @${name} accept comment "x/same-ns"`)
  t.match(script, `ip saddr @${name} tcp dport { 80 } accept comment "x/same-ns"`)
  t.match(script, 'ip saddr { 10.1.2.4 } accept comment "x/one"', 'one address: inline')
  t.match(script, 'ip daddr { 10.1.3.2, 10.1.3.3 } return comment "x/out"', 'used once: inline')
  t.equal((script.match(/^ {2}set /gm) ?? []).length, 1, 'one set in all')
  t.equal(rules, renderNetpol({ ...table, ingress: table.ingress.map((r) => ({ ...r, allows: r.allows.map((a) => ({ ...a, peers: { ips: ['10.9.9.9'] } })) })) }, 'skiff-np-test').rules, 'sets do not change the rule count')
})
