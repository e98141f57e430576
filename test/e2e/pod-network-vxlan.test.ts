// The vxlan pod network end to end: `skiff up --pod-network vxlan` with three
// simulated hosts; a pod on one host reaches a pod on another by pod IP and
// by Service DNS name through the overlay (device skiff.1, lowered MTU), and
// the receiver sees the sender's pod IP. The host-gw twin of this check runs
// in multi-host.test.ts.

import t from 'tap'
import { eventually } from '../../lib/net.ts'
import { upCluster } from '../harness/skiff-up.ts'
import { crossHostTraffic } from '../harness/cross-host.ts'

t.test('vxlan: pod to pod across hosts, by IP and by name, source kept', async (t) => {
  const c = await upCluster(t, ['--nodes', '3', '--pod-network', 'vxlan', '--ingress-nodes', 'external=0,internal=0'])
  t.equal(c.spec.podNetwork, 'vxlan')
  const link = await c.onHost('node-1', 'ip', ['-d', 'link', 'show', 'skiff.1'])
  t.match(link.stdout, /vxlan id 1 .*dstport 8472/, 'the overlay device exists on node-1')
  const mtu = Number(/mtu (\d+)/.exec(link.stdout)?.[1])
  t.equal(mtu, 1450, 'its MTU is the LAN MTU minus the 50 bytes of VXLAN')
  // up returns once every node is Ready; node-1 routes a peer once it has seen it Ready with its VTEP MAC.
  const routes = await eventually(async () => {
    const r = await c.onHost('node-1', 'ip', ['route', 'show', 'proto', '152'])
    return (r.stdout.match(/dev skiff\.1 onlink/g) ?? []).length === 2 && r.stdout
  }, { timeout: 30_000, interval: 250, what: 'node-1 routing both peers through the overlay' })
  t.match(routes, /dev skiff\.1 onlink/, 'peers are routed through the overlay')

  const seen = await crossHostTraffic(c, 'node-1', 'node-3')
  t.equal(seen.byIP.pod, 'xb', 'by pod IP, the pod on node-3 answered')
  t.equal(seen.byIP.clientIP, seen.a.status.podIP, 'and saw the sender\'s pod IP')
  t.equal(seen.byName.pod, 'xb', 'by Service DNS name, the pod on node-3 answered')
  t.equal(seen.byName.clientIP, seen.a.status.podIP, 'and saw the sender\'s pod IP')
})
