// Join tokens: the K10<CA hash>::<id>.<secret> string, the bootstrap token
// Secret in kubeadm's shape, and the decision whether a presented token may
// authenticate a join (unknown, wrong secret, not for authentication, expired).

import t from 'tap'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import {
  buildBootstrapTokenSecret,
  checkBootstrapToken,
  formatJoinToken,
  formatTtl,
  generateBootstrapToken,
  parseBootstrapToken,
  parseJoinToken,
  parseTtl,
  readBootstrapTokenSecret,
  tokenIdOf,
  type BootstrapToken,
} from '../../controlplane/api/bootstrap-token.ts'

const hash = 'a'.repeat(64)
const secretsInfo = lookupResource('', 'v1', 'secrets')!

t.test('generated tokens have kubeadm\'s shape', async (t) => {
  for (let i = 0; i < 20; i++) {
    const tok = generateBootstrapToken()
    t.match(`${tok.id}.${tok.secret}`, /^[a-z0-9]{6}\.[a-z0-9]{16}$/)
  }
})

t.test('parseJoinToken', async (t) => {
  const cases: Array<{ in: string; want?: { caHash: string; id: string; secret: string }; err?: RegExp }> = [
    { in: `K10${hash}::abcdef.0123456789abcdef`, want: { caHash: hash, id: 'abcdef', secret: '0123456789abcdef' } },
    { in: `  K10${hash}::abcdef.0123456789abcdef\n`, want: { caHash: hash, id: 'abcdef', secret: '0123456789abcdef' } },
    { in: 'abcdef.0123456789abcdef', err: /only the <id>\.<secret> part, without the CA hash/ },
    { in: 'hunter2', err: /not a Skiff join token K10<CA hash>::<id>\.<secret>: use the whole line printed by `skiff token create`/ },
    { in: `K10${hash.slice(1)}::abcdef.0123456789abcdef`, err: /CA hash has 63 hex digits, not 64/ },
    { in: `K10::abcdef.0123456789abcdef`, err: /CA hash has 0 hex digits/ },
    { in: `K10${hash}::ABCDEF.0123456789abcdef`, err: /credential part is not <id>\.<secret>/ },
    { in: `K10${hash}::admin:password`, err: /credential part is not <id>\.<secret>/ },
    { in: `K10${'A'.repeat(64)}::abcdef.0123456789abcdef`, err: /not a Skiff join token/ },
  ]
  for (const c of cases) {
    if (c.want) t.same(parseJoinToken(c.in), c.want, c.in)
    else t.throws(() => parseJoinToken(c.in), c.err!, c.in)
  }
  const tok = generateBootstrapToken()
  t.same(parseJoinToken(formatJoinToken(hash, tok)), { caHash: hash, ...tok }, 'format and parse round-trip')
})

t.test('parseBootstrapToken and tokenIdOf', async (t) => {
  t.same(parseBootstrapToken('abcdef.0123456789abcdef'), { id: 'abcdef', secret: '0123456789abcdef' })
  t.equal(parseBootstrapToken('abcdef.0123456789abcde'), undefined, 'secret one short')
  t.equal(parseBootstrapToken('abcdefg.0123456789abcdef'), undefined, 'id one long')
  t.equal(tokenIdOf('abcdef'), 'abcdef')
  t.equal(tokenIdOf('abcdef.0123456789abcdef'), 'abcdef')
  t.equal(tokenIdOf(`K10${hash}::abcdef.0123456789abcdef`), 'abcdef')
  t.equal(tokenIdOf('bootstrap-token-abcdef'), undefined)
})

t.test('the Secret: kubeadm\'s fields plus skiff-ingress-pools, read back as stored', async (t) => {
  const expiration = new Date('2027-01-02T03:04:05Z')
  const built = buildBootstrapTokenSecret({ id: 'abcdef', secret: '0123456789abcdef', expiration, description: 'rack 3', ingressPools: ['external', 'internal'] })
  t.equal(built.metadata.name, 'bootstrap-token-abcdef')
  t.equal(built.metadata.namespace, 'kube-system')
  t.equal(built.type, 'bootstrap.kubernetes.io/token')
  t.same(built.stringData, {
    'token-id': 'abcdef',
    'token-secret': '0123456789abcdef',
    'usage-bootstrap-authentication': 'true',
    expiration: '2027-01-02T03:04:05Z',
    description: 'rack 3',
    'skiff-ingress-pools': 'external,internal',
  })
  const stored = applyDefaults(secretsInfo, built) // stringData → data, as the apiserver stores it
  t.same(readBootstrapTokenSecret(stored), { id: 'abcdef', secret: '0123456789abcdef', expiration, description: 'rack 3', ingressPools: ['external', 'internal'], authentication: true, server: false })
  const server = readBootstrapTokenSecret(applyDefaults(secretsInfo, buildBootstrapTokenSecret({ id: 'abcdef', secret: '0123456789abcdef', server: true })))
  t.equal(server?.server, true, 'a server token reads back as one')
  const forever = readBootstrapTokenSecret(applyDefaults(secretsInfo, buildBootstrapTokenSecret({ id: 'abcdef', secret: '0123456789abcdef' })))
  t.equal(forever?.expiration, undefined, 'no expiration: never expires')
  t.same(forever?.ingressPools, [], 'no pools by default')
  t.equal(readBootstrapTokenSecret({ metadata: { name: 'x' }, type: 'Opaque', data: {} }), undefined, 'another type')
  const renamed = applyDefaults(secretsInfo, buildBootstrapTokenSecret({ id: 'abcdef', secret: '0123456789abcdef' }))
  renamed.metadata.name = 'bootstrap-token-zzzzzz'
  t.equal(readBootstrapTokenSecret(renamed), undefined, 'the name must carry the token id')
  const garbled = applyDefaults(secretsInfo, buildBootstrapTokenSecret({ id: 'abcdef', secret: '0123456789abcdef' }))
  garbled.data.expiration = Buffer.from('next tuesday').toString('base64')
  t.equal(readBootstrapTokenSecret(garbled)?.expiration?.getTime(), 0, 'an unreadable expiration counts as expired')
})

t.test('checkBootstrapToken', async (t) => {
  const now = Date.parse('2027-01-01T00:00:00Z')
  const stored: BootstrapToken = { id: 'abcdef', secret: '0123456789abcdef', ingressPools: [], authentication: true, server: false }
  const presented = { id: 'abcdef', secret: '0123456789abcdef' }
  const cases: Array<{ name: string; stored?: BootstrapToken; presented?: { id: string; secret: string }; want: string }> = [
    { name: 'valid, never expires', stored, want: 'ok' },
    { name: 'valid until later', stored: { ...stored, expiration: new Date(now + 1000) }, want: 'ok' },
    { name: 'unknown id', stored: undefined, want: 'unknown' },
    { name: 'wrong secret answers as unknown', stored, presented: { id: 'abcdef', secret: 'ffffffffffffffff' }, want: 'unknown' },
    { name: 'another id', stored, presented: { id: 'zzzzzz', secret: '0123456789abcdef' }, want: 'unknown' },
    { name: 'not for authentication', stored: { ...stored, authentication: false }, want: 'not-for-authentication' },
    { name: 'expired', stored: { ...stored, expiration: new Date(now - 1) }, want: 'expired' },
    { name: 'expires this very moment', stored: { ...stored, expiration: new Date(now) }, want: 'expired' },
  ]
  for (const c of cases) {
    const r = checkBootstrapToken(c.stored, c.presented ?? presented, now)
    t.equal(r.ok ? 'ok' : r.why, c.want, c.name)
  }
  const expired = checkBootstrapToken({ ...stored, expiration: new Date(now - 1) }, presented, now)
  t.same(!expired.ok && expired.expiredAt, new Date(now - 1), 'says when it expired')
})

t.test('parseTtl and formatTtl', async (t) => {
  const ttl: Array<[string, number | RegExp]> = [
    ['24h', 24 * 3600_000], ['30m', 1800_000], ['1h30m', 5400_000], ['45s', 45_000], ['0', 0], ['00', 0],
    ['', /not a duration/], ['1d', /not a duration: use e\.g\. 24h, 30m, 1h30m, or 0/], ['-1h', /not a duration/], ['h', /not a duration/],
  ]
  for (const [input, want] of ttl) {
    if (typeof want === 'number') t.equal(parseTtl(input), want, input)
    else t.throws(() => parseTtl(input), want, input)
  }
  const now = 1_000_000_000_000
  const fmt: Array<[number | undefined, string]> = [[undefined, '<forever>'], [now + 23.6 * 3600_000, '24h'], [now + 59 * 60_000, '59m'], [now + 30_000, '30s'], [now, '<expired>'], [now - 5, '<expired>']]
  for (const [exp, want] of fmt) t.equal(formatTtl({ expiration: exp === undefined ? undefined : new Date(exp) }, now), want, want)
})
