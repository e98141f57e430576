import t from 'tap'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { inPool, parsePool, planLoadBalancers, poolSize } from '../../controlplane/controllers/loadbalancer-plan.ts'

t.test('pool parsing', async (t) => {
  const cidr = parsePool(['10.112.0.0/24'])
  t.equal(poolSize(cidr), 254, 'a /24 without its network and broadcast addresses')
  t.notOk(inPool(cidr, '10.112.0.0'))
  t.ok(inPool(cidr, '10.112.0.1'))
  t.ok(inPool(cidr, '10.112.0.254'))
  t.notOk(inPool(cidr, '10.112.0.255'))
  t.equal(poolSize(parsePool(['10.112.0.6/31'])), 2, 'a /31 keeps both addresses')
  t.equal(poolSize(parsePool(['10.112.0.7/32'])), 1)
  t.equal(poolSize(parsePool(['10.112.0.10-10.112.0.20', '10.112.1.1'])), 12, 'a range and a single address')
  t.notOk(inPool(cidr, 'not-an-ip'))
  for (const bad of [[], ['10.112.0.0/33'], ['10.112.0.300'], ['10.112.0.9-10.112.0.1'], ['fd00::/64'], ['lb.example']]) {
    t.throws(() => parsePool(bad), /SKIFF_ERR_LB_POOL/, `rejects ${JSON.stringify(bad)}`)
  }
})

interface SvcOpts {
  type?: string
  ip?: string | string[]
  ipMode?: string
  requested?: string
  cls?: string
  created?: string
  deleting?: boolean
}

const svc = (name: string, o: SvcOpts = {}): KubeObject => {
  const ips = o.ip === undefined ? [] : Array.isArray(o.ip) ? o.ip : [o.ip]
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'ns', creationTimestamp: o.created ?? '2025-01-01T00:00:00Z', ...(o.deleting ? { deletionTimestamp: '2025-01-02T00:00:00Z', finalizers: ['x'] } : {}) },
    spec: {
      type: o.type ?? 'LoadBalancer',
      ports: [{ port: 80 }],
      ...(o.requested ? { loadBalancerIP: o.requested } : {}),
      ...(o.cls ? { loadBalancerClass: o.cls } : {}),
    },
    status: { loadBalancer: ips.length ? { ingress: ips.map((ip) => ({ ip, ipMode: o.ipMode ?? 'VIP' })) } : {} },
  }
}

const at = (day: number) => `2025-01-${String(day).padStart(2, '0')}T00:00:00Z`
const pool2 = ['10.112.0.1-10.112.0.2']

interface Case {
  name: string
  services: KubeObject[]
  pool?: string[]
  pending?: Record<string, string>
  avoid?: string[]
  /** `name=ip` for a write giving an address, `name=-` for one clearing the status. */
  writes: string[]
  unassigned?: string[]
}

const cases: Case[] = [
  {
    name: 'new Services get the lowest free addresses, oldest first',
    services: [svc('b', { created: at(2) }), svc('a', { created: at(1) }), svc('c', { created: at(3) })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.1', 'b=10.112.0.2', 'c=10.112.0.3'],
  },
  {
    name: 'assigned addresses are kept and a gap is filled first (the used set comes from the statuses)',
    services: [svc('a', { ip: '10.112.0.1' }), svc('b', { ip: '10.112.0.3' }), svc('c', { created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: ['c=10.112.0.2'],
  },
  {
    name: 'nothing to do when every Service has its address',
    services: [svc('a', { ip: '10.112.0.1' }), svc('b', { ip: '10.112.0.2' }), svc('plain', { type: 'ClusterIP' })],
    pool: pool2,
    writes: [],
  },
  {
    name: 'an exhausted pool leaves the third Service pending with the reason',
    services: [svc('a', { created: at(1) }), svc('b', { created: at(2) }), svc('c', { created: at(3) })],
    pool: pool2,
    writes: ['a=10.112.0.1', 'b=10.112.0.2'],
    unassigned: ['c: no free address in the LoadBalancer pool 10.112.0.1-10.112.0.2'],
  },
  {
    name: 'a deleted Service frees its address for the pending one',
    services: [svc('b', { ip: '10.112.0.2', created: at(2) }), svc('c', { created: at(3) })],
    pool: pool2,
    writes: ['c=10.112.0.1'],
  },
  {
    name: 'a type change away from LoadBalancer clears the status; the address is handed out only next round',
    services: [svc('a', { type: 'ClusterIP', ip: '10.112.0.1' }), svc('b', { ip: '10.112.0.2' }), svc('c', { created: at(3) })],
    pool: pool2,
    writes: ['a=-'],
    unassigned: ['c: no free address in the LoadBalancer pool 10.112.0.1-10.112.0.2'],
  },
  {
    name: 'spec.loadBalancerIP is honoured when free',
    services: [svc('a', { requested: '10.112.0.9' }), svc('b', { created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.9', 'b=10.112.0.1'],
  },
  {
    name: 'a requested address held by another Service leaves the requester pending',
    services: [svc('a', { ip: '10.112.0.9' }), svc('b', { requested: '10.112.0.9', created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: [],
    unassigned: ['b: requested address 10.112.0.9 is already in use by another Service'],
  },
  {
    name: 'a requested address outside the pool is refused, and an address held so far is given back',
    services: [svc('a', { ip: '10.112.0.1', requested: '192.0.2.1' })],
    pool: ['10.112.0.0/24'],
    writes: ['a=-'],
    unassigned: ['a: requested address 192.0.2.1 is not in the LoadBalancer pool 10.112.0.0/24'],
  },
  {
    name: 'a changed loadBalancerIP moves the Service',
    services: [svc('a', { ip: '10.112.0.1', requested: '10.112.0.7' })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.7'],
  },
  {
    name: 'a requested address still being given back by a non-LoadBalancer Service waits, without an Event',
    services: [svc('old', { type: 'NodePort', ip: '10.112.0.5' }), svc('a', { requested: '10.112.0.5', created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: ['old=-'],
  },
  {
    name: 'a duplicate (two leaders overlapped): the younger Service gives its address back and gets another',
    services: [svc('young', { ip: '10.112.0.1', created: at(2) }), svc('old', { ip: '10.112.0.1', created: at(1) })],
    pool: ['10.112.0.0/24'],
    writes: ['young=10.112.0.2'],
  },
  {
    name: 'a duplicate with a full pool: the younger one becomes pending',
    services: [svc('young', { ip: '10.112.0.1', created: at(2) }), svc('old', { ip: '10.112.0.1', created: at(1) }), svc('b', { ip: '10.112.0.2' })],
    pool: pool2,
    writes: ['young=-'],
    unassigned: ['young: no free address in the LoadBalancer pool 10.112.0.1-10.112.0.2'],
  },
  {
    name: 'Services of another loadBalancerClass are left alone, and their addresses are not handed out',
    services: [svc('other', { cls: 'example.com/lb', ip: '10.112.0.1' }), svc('other2', { cls: 'example.com/lb' }), svc('mine', { cls: 'skiff.dev/lb', ip: '10.112.0.1', created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: ['mine=10.112.0.2'],
  },
  {
    name: 'an address outside the pool (the pool changed) is replaced',
    services: [svc('a', { ip: '10.200.0.1' })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.1'],
  },
  {
    name: 'a status without ipMode is rewritten with ipMode VIP',
    services: [svc('a', { ip: '10.112.0.1', ipMode: '' })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.1'],
  },
  {
    name: 'two addresses on one Service: it keeps the first of the pool',
    services: [svc('a', { ip: ['10.112.0.4', '10.112.0.3'] })],
    pool: ['10.112.0.0/24'],
    writes: ['a=10.112.0.4'],
  },
  {
    name: 'a Service being deleted keeps its address and is not written',
    services: [svc('gone', { ip: '10.112.0.1', deleting: true }), svc('pending', { deleting: true }), svc('b', { created: at(2) })],
    pool: ['10.112.0.0/24'],
    writes: ['b=10.112.0.2'],
  },
  {
    name: 'our writes not yet in the cache count (an address given is held, one released is free) and are not repeated',
    services: [svc('a'), svc('b', { created: at(2) }), svc('c', { ip: '10.112.0.2', created: at(3) })],
    pool: ['10.112.0.0/24'],
    pending: { a: '10.112.0.1', c: '' },
    writes: ['b=10.112.0.2'],
  },
  {
    name: 'addresses the apiserver refused a moment ago are skipped',
    services: [svc('a')],
    pool: ['10.112.0.0/24'],
    avoid: ['10.112.0.1'],
    writes: ['a=10.112.0.2'],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const pool = c.pool ?? pool2
    const plan = planLoadBalancers({
      services: c.services,
      pool: parsePool(pool),
      poolName: pool.join(','),
      pending: new Map(Object.entries(c.pending ?? {}).map(([k, v]) => [`ns/${k}`, v])),
      avoid: new Set(c.avoid ?? []),
    })
    const name = (key: string) => key.slice('ns/'.length)
    t.same(
      plan.writes.map((w) => `${name(w.key)}=${w.ip ?? '-'}`),
      c.writes,
    )
    for (const w of plan.writes) t.same(w.ingress, w.ip ? [{ ip: w.ip, ipMode: 'VIP' }] : [], 'ingress is exactly the address, ipMode VIP')
    t.same(
      plan.unassigned.map((u) => `${name(u.key)}: ${u.message}`),
      c.unassigned ?? [],
    )
  })
}

t.test('a plan applied is stable: planning again writes nothing', async (t) => {
  const services = [svc('a', { created: at(1) }), svc('b', { created: at(2), requested: '10.112.0.2' }), svc('c', { created: at(3) })]
  const pool = parsePool(pool2)
  const first = planLoadBalancers({ services, pool, poolName: 'p' })
  const applied = services.map((s) => {
    const w = first.writes.find((x) => x.key === `ns/${s.metadata.name}`)
    return w ? { ...s, status: { loadBalancer: w.ingress.length ? { ingress: w.ingress } : {} } } : s
  })
  t.same(first.writes.map((w) => w.ip), ['10.112.0.1', '10.112.0.2'])
  const again = planLoadBalancers({ services: applied, pool, poolName: 'p' })
  t.same(again.writes, [])
  t.equal(again.used, 2)
  t.same(again.unassigned.map((u) => u.key), ['ns/c'])
})
