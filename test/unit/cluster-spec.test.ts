// What `skiff up` decides once and keeps in cluster.json: the LAN, each
// simulated host's addresses and names, the ingress pools, the LB pool.
import t from 'tap'
import { chooseLanCIDR, defaultIngressPools, ignoredFlags, names, planCluster, planIngressPools } from '../../cli/cluster-spec.ts'
import { stateDirOf } from '../../cli/procs.ts'

t.test('two external nodes and one internal by default', async (t) => {
  const names = ['node-1', 'node-2', 'node-3']
  t.same([...planIngressPools(names, defaultIngressPools(3))], [['node-1', 'external'], ['node-2', 'external'], ['node-3', 'internal']])
  t.same(defaultIngressPools(5), { external: 2, internal: 1 }, 'more nodes: the rest run pods only')
  t.same(defaultIngressPools(2), { external: 1, internal: 1 })
  t.same(defaultIngressPools(1), { external: 1, internal: 0 })
  t.same(defaultIngressPools(0), { external: 0, internal: 0 })
})

t.test('asking for more ingress nodes than nodes is an error that says what to do', async (t) => {
  t.throws(() => planIngressPools(['a', 'b'], { external: 2, internal: 1 }), /need at least 3 nodes, not 2: raise --nodes/)
})

t.test('a new cluster: hosts on a free /24, external ingress nodes with an ExternalIP, an LB range on the LAN', async (t) => {
  const spec = planCluster({ stateDir: '/x', apiPort: 6443, redisPort: 7000, nodes: 3, ingress: defaultIngressPools(3) }, ['172.31.0.0/16'.replace('/16', '/24'), '192.0.2.2/24'], 'abc123')
  t.not(spec.lan.cidr, '172.31.0.0/24', 'a used /24 is skipped')
  t.match(spec.lan.cidr, /^172\.31\.\d+\.0\/24$/)
  const base = spec.lan.cidr.replace(/\.0\/24$/, '')
  t.equal(spec.lan.hostIP, `${base}.1`)
  t.same(spec.hosts.map((h) => [h.name, h.ip, h.externalIP, h.pool]), [
    ['node-1', `${base}.11`, `${base}.101`, 'external'],
    ['node-2', `${base}.12`, `${base}.102`, 'external'],
    ['node-3', `${base}.13`, undefined, 'internal'],
  ])
  t.equal(spec.loadBalancerPool, `${base}.200-${base}.239`)
  t.equal(spec.podNetwork, 'host-gw')
  t.equal(spec.lan.bridge, 'sklan-abc123')
  t.ok(names.veth(spec, spec.hosts[2]!).length <= 15, 'interface names fit in 15 characters')
  t.equal(names.netns(spec, spec.hosts[0]!), 'skiff-abc123-node-1')
})

t.test('the LAN avoids every CIDR in use, and says what to do when none is free', async (t) => {
  t.equal(chooseLanCIDR([], 7), '172.31.7.0/24')
  t.equal(chooseLanCIDR(['172.31.7.0/24', '172.31.8.5/32'], 7), '172.31.9.0/24')
  t.throws(() => chooseLanCIDR(['172.16.0.0/12'], 0), /SKIFF_ERR_UP_NO_LAN.*--lan-cidr/)
  t.throws(() => planCluster({ stateDir: '/x', apiPort: 1, redisPort: 2, nodes: Number('abc'), ingress: { external: 0, internal: 0 } }, []), /SKIFF_ERR_UP_NODES: --nodes must be a whole number/)
})

t.test('an existing cluster keeps its shape: flags that would change it are named', async (t) => {
  const spec = planCluster({ stateDir: '/x', apiPort: 6443, redisPort: 7000, nodes: 3, ingress: defaultIngressPools(3) }, [], 'abc123')
  t.same(ignoredFlags(spec, { nodes: 3, podNetwork: 'host-gw' }), [])
  t.same(ignoredFlags(spec, { nodes: 4, podNetwork: 'vxlan' }), ['--nodes 4 (it has 3)', '--pod-network vxlan (it has host-gw)'])
})

t.test('the state folder of a skiff process, as down and stop find hand-started agents', async (t) => {
  t.equal(stateDirOf(['node', '/p/cli/skiff.ts', 'agent'], '/work', {}), '/work/.skiff', 'default .skiff in its working folder')
  t.equal(stateDirOf(['node', 'cli/skiff.ts', '--state-dir', 'st', 'agent'], '/work', {}), '/work/st', 'relative --state-dir')
  t.equal(stateDirOf(['node', 'cli/skiff.ts', '--state-dir=/abs', 'agent'], '/work', {}), '/abs')
  t.equal(stateDirOf(['node', 'cli/skiff.ts', 'agent'], '/work', { SKIFF_STATE_DIR: '/env' }), '/env')
  t.equal(stateDirOf(['redis-server', 'x.conf'], '/work', {}), undefined, 'not a skiff process')
})
