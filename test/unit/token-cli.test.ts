// `skiff token` (cli/token.ts): the --ingress-pools flag and the list table,
// which shows ids, lifetimes and pools but never a secret.

import t from 'tap'
import { parsePools, tokenTable } from '../../cli/token.ts'

t.test('parsePools', async (t) => {
  t.same(parsePools(undefined), [])
  t.same(parsePools('external, internal,external'), ['external', 'internal'])
  t.throws(() => parsePools('External'), /--ingress-pools: "External" is not an ingress class name/)
})

t.test('tokenTable: kubeadm token list\'s columns, no secrets', async (t) => {
  const now = Date.parse('2027-01-01T00:00:00Z')
  const lines = tokenTable([
    { id: 'abcdef', secret: '0123456789abcdef', expiration: new Date(now + 2 * 3600_000), description: 'rack 3', ingressPools: ['external'], authentication: true, server: false },
    { id: 'zzzzzz', secret: 'ffffffffffffffff', ingressPools: [], authentication: true, server: true },
  ], now)
  t.same(lines, [
    'TOKEN    TTL         EXPIRES                USAGES         DESCRIPTION   POOLS',
    'abcdef   2h          2027-01-01T02:00:00Z   agent          rack 3        external',
    'zzzzzz   <forever>   <never>                server,agent   <none>        <none>',
  ])
  t.notMatch(lines.join('\n'), '0123456789abcdef')
})
