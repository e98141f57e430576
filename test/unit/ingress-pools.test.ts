// Which nodes `skiff up` puts into which ingress pool.
import t from 'tap'
import { planIngressPools } from '../../cli/nodes.ts'
import { defaultIngressPools } from '../../cli/cluster.ts'

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
