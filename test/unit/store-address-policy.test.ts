// The store's address rules (controlplane/store/address-policy.ts) and the
// messages of its password probe and Sentinel connection settings: pure
// functions, no Redis.

import t from 'tap'
import { checkAddress, forbiddenRange, parseCIDR, parseCIDRs } from '../../controlplane/store/address-policy.ts'
import { sentinelConnectionOptions } from '../../controlplane/store/connection.ts'
import { parseSwitchMaster } from '../../controlplane/store/failover-watch.ts'
import { probeRefusal } from '../../controlplane/store/preflight.ts'
import { RedisStore, storeRedisOptions } from '../../controlplane/store/redis-store.ts'

t.test('CIDRs parse, bad ones are rejected with the expected form', async (t) => {
  t.equal(parseCIDR('10.244.0.0/16').text, '10.244.0.0/16')
  t.equal(parseCIDR(' fd00::/8 ').text, 'fd00::/8')
  t.ok(parseCIDR('10.0.0.1'), 'a bare address is a /32')
  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'pods', '10.0.0.0/', '10.0.0.0/x', '']) {
    t.throws(() => parseCIDR(bad), /not a CIDR/, bad)
  }
  t.same(parseCIDRs(undefined), [])
})

t.test('an address inside a range is found, with the range that holds it', async (t) => {
  const ranges = parseCIDRs(['10.244.0.0/16', '10.96.0.0/12', 'fd00:10::/32'])
  t.equal(forbiddenRange('10.244.3.7', ranges)?.text, '10.244.0.0/16')
  t.equal(forbiddenRange('10.100.0.1', ranges)?.text, '10.96.0.0/12')
  t.equal(forbiddenRange('10.245.0.1', ranges), undefined)
  t.equal(forbiddenRange('127.0.0.1', ranges), undefined)
  t.equal(forbiddenRange('::ffff:10.244.0.9', ranges)?.text, '10.244.0.0/16', 'IPv4-mapped IPv6 counts as IPv4')
  t.equal(forbiddenRange('[fd00:10::5]', ranges)?.text, 'fd00:10::/32', 'brackets allowed')
  t.equal(forbiddenRange('fd00:11::5', ranges), undefined)
  t.equal(forbiddenRange('redis.internal', ranges), undefined, 'names match nothing: resolve first')
  t.equal(forbiddenRange('10.244.0.1', []), undefined, 'no ranges, no refusal')
})

t.test('checkAddress says what is wrong and what to do', async (t) => {
  const ranges = parseCIDRs(['10.244.0.0/16'])
  t.equal(checkAddress('Redis replica', '192.168.1.5', ranges), undefined)
  const msg = checkAddress('Redis replica', '10.244.1.1', ranges)!
  t.match(msg, /Redis replica is at 10\.244\.1\.1, inside 10\.244\.0\.0\/16/)
  t.match(msg, /forbiddenCIDRs/)
  t.match(msg, /outside the pod and service CIDRs/)
})

t.test('probe results: only an open or protected-mode-only server is refused', async (t) => {
  const ep = { host: '127.0.0.1', port: 6379 }
  t.match(probeRefusal('Redis primary', ep, { kind: 'open' }), /Redis primary at 127\.0\.0\.1:6379 answers PING without a password.*requirepass/)
  t.match(probeRefusal('sentinel', ep, { kind: 'open' }), /sentinel-pass/)
  t.match(probeRefusal('Redis', ep, { kind: 'denied', reply: 'DENIED Redis is running in protected mode' }), /has no password/)
  t.equal(probeRefusal('Redis', ep, { kind: 'protected', reply: 'NOAUTH Authentication required.' }), undefined)
  t.equal(probeRefusal('Redis', ep, { kind: 'unreachable', reason: 'ECONNREFUSED' }), undefined)
})

t.test('Sentinel connection settings: role master, sentinel auth, no re-send, no retry of a lost start', async (t) => {
  let started = false
  const o = sentinelConnectionOptions(
    { host: 'ignored', port: 1, password: 'pw', enableAutoPipelining: true },
    { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'skiff', password: 'spw' },
    () => started,
  )
  t.equal(o.host, undefined, 'host and port of the base options are not used')
  t.equal(o.port, undefined)
  t.equal(o.password, 'pw')
  t.equal(o.sentinelPassword, 'spw')
  t.equal(o.name, 'skiff')
  t.equal(o.role, 'master')
  t.equal(o.failoverDetector, false, 'the store watches +switch-master itself (failover-watch.ts)')
  t.equal(o.sentinelRetryStrategy!(1), null, 'while starting, unreachable sentinels fail start()')
  started = true
  t.equal(typeof o.sentinelRetryStrategy!(50), 'number', 'once started, keep looking')
  t.ok((o.sentinelRetryStrategy!(50) as number) <= 1000)
  t.equal(o.reconnectOnError!(new Error("READONLY You can't write against a read only replica.")), true)
  t.equal(o.reconnectOnError!(new Error('ERR something else')), false)
})

t.test('+switch-master announcements name the new primary of our group only', async (t) => {
  t.same(parseSwitchMaster('skiff 127.0.0.1 6379 127.0.0.1 6380', 'skiff'), { host: '127.0.0.1', port: 6380 })
  t.equal(parseSwitchMaster('other 127.0.0.1 6379 127.0.0.1 6380', 'skiff'), undefined)
  t.equal(parseSwitchMaster('skiff 127.0.0.1 6379', 'skiff'), undefined)
  t.equal(parseSwitchMaster('skiff 127.0.0.1 6379 127.0.0.1 x', 'skiff'), undefined)
})

t.test('store options: a password is required, Sentinel needs its own', async (t) => {
  const base = { stateDir: '/nonexistent', encryptionKey: Buffer.alloc(32) }
  t.throws(() => new RedisStore({ ...base, redis: { host: '127.0.0.1', port: 6379 } }), /must require a password/)
  const sentinel = { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'skiff', password: 'x' }
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, sentinel: { ...sentinel, password: '' } }), /sentinel\.password is required/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, sentinel: { ...sentinel, sentinels: [] } }), /at least one sentinel/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, sentinel: { ...sentinel, name: '' } }), /sentinel\.name/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p', sentinels: [{ port: 1 }] } as never }), /as the sentinel option/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, minReplicas: -1 }), /minReplicas/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, replicaAckTimeoutMs: 0 }), /replicaAckTimeoutMs/)
  t.throws(() => new RedisStore({ ...base, redis: { password: 'p' }, forbiddenCIDRs: ['10.0.0.0/40'] }), /not a CIDR/)
  t.ok(new RedisStore({ ...base, redis: { password: 'p' }, sentinel }))
})

t.test('storeRedisOptions: one Redis or a Sentinel group', async (t) => {
  t.same(storeRedisOptions({ host: '10.0.0.5', port: 6380, password: 'p' }).redis, { host: '10.0.0.5', port: 6380, password: 'p' })
  t.same(storeRedisOptions({ password: 'p' }).redis, { host: '127.0.0.1', port: 6379, password: 'p' })
  const sentinel = { sentinels: [{ host: '10.0.0.5', port: 26379 }], name: 'skiff', password: 's' }
  const o = storeRedisOptions({ password: 'p', sentinel, minReplicas: 2, replicaAckTimeoutMs: 500, forbiddenCIDRs: ['10.244.0.0/16'] })
  t.same(o, { redis: { password: 'p' }, sentinel, minReplicas: 2, replicaAckTimeoutMs: 500, forbiddenCIDRs: ['10.244.0.0/16'] })
})
