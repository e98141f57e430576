// Which bootstrap token Secrets the token cleaner deletes: expired ones and
// ones that are not readable as a token; valid and never-expiring ones stay.

import t from 'tap'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import { buildBootstrapTokenSecret } from '../../controlplane/api/bootstrap-token.ts'
import { expiredTokenSecrets } from '../../controlplane/controllers/token-cleaner.ts'

const secretsInfo = lookupResource('', 'v1', 'secrets')!

t.test('expiredTokenSecrets', async (t) => {
  const now = Date.parse('2027-01-01T00:00:00Z')
  const token = (id: string, expiration?: number) => applyDefaults(secretsInfo, buildBootstrapTokenSecret({ id, secret: '0123456789abcdef', expiration: expiration === undefined ? undefined : new Date(expiration) }))
  const broken = token('brokn1')
  delete broken.data['token-secret']
  const opaque = applyDefaults(secretsInfo, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bootstrap-token-zzzzzz', namespace: 'kube-system' }, type: 'Opaque', data: {} })
  const items = [token('valid1', now + 1000), token('never1'), token('gone01', now - 1000), token('edge01', now), broken, opaque]
  t.same(expiredTokenSecrets(items, now).map((s) => s.metadata.name), ['bootstrap-token-gone01', 'bootstrap-token-edge01', 'bootstrap-token-brokn1'])
})
