// The apiserver's join decisions (controlplane/apiserver/join.ts) and the
// credentials it issues (credentials.ts): which requests are malformed, which
// tokens are refused and with what message, which pools a token allows, when
// a name is taken; and that a credential authenticates only with its secret.

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { ApiError } from '../../controlplane/api/errors.ts'
import { applyDefaults } from '../../controlplane/api/defaults.ts'
import { lookupResource } from '../../controlplane/api/resources.ts'
import type { BootstrapToken } from '../../controlplane/api/bootstrap-token.ts'
import { bootstrapRefusal, nodeNameOf, parseJoinRequest, parseKubeletCertRequest, planJoin } from '../../controlplane/apiserver/join.ts'
import { buildCredentialSecret, credentialNode, newCredential, parseCredentialToken, readCredentialSecret } from '../../controlplane/apiserver/credentials.ts'

const secretsInfo = lookupResource('', 'v1', 'secrets')!

function failure(fn: () => unknown): ApiError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ApiError) return e
    throw e
  }
  throw new Error('expected an ApiError')
}

t.test('parseJoinRequest', async (t) => {
  t.same(parseJoinRequest({ nodeName: 'web-1', labels: { a: 'b' } }), { nodeName: 'web-1', labels: { a: 'b' } })
  t.same(parseJoinRequest({ nodeName: 'rack1.web-1' }), { nodeName: 'rack1.web-1', labels: {} })
  const cases: Array<[unknown, RegExp]> = [
    [{}, /nodeName: Required value/],
    [null, /nodeName: Required value/],
    [{ nodeName: 'Web_1' }, /nodeName: Invalid value: "Web_1": a lowercase RFC 1123 subdomain.*choose another --node-name/],
    [{ nodeName: 'x'.repeat(254) }, /nodeName: Invalid value/],
    [{ nodeName: 'web', labels: ['a'] }, /labels must be an object of strings/],
    [{ nodeName: 'web', labels: { a: 1 } }, /labels\[a\]: Invalid value/],
  ]
  for (const [body, want] of cases) {
    const e = failure(() => parseJoinRequest(body))
    t.equal(e.status, 422, JSON.stringify(body)?.slice(0, 40))
    t.match(e.message, want)
  }
})

t.test('bootstrapRefusal: 401 with what happened and what to do', async (t) => {
  const unknown = bootstrapRefusal('abcdef', { ok: false, why: 'unknown' })
  t.equal(unknown.status, 401)
  t.equal(unknown.message, 'bootstrap token "abcdef" is not valid in this cluster (unknown, deleted, or a wrong secret): get a new token with `skiff token create` on the server')
  const expired = bootstrapRefusal('abcdef', { ok: false, why: 'expired', expiredAt: new Date('2027-01-01T10:00:00.123Z') })
  t.equal(expired.status, 401)
  t.match(expired.message, 'bootstrap token "abcdef" expired at 2027-01-01T10:00:00Z: get a new token with `skiff token create` on the server')
  t.match(bootstrapRefusal('abcdef', { ok: false, why: 'not-for-authentication' }).message, 'is not for authentication')
})

t.test('planJoin', async (t) => {
  const token = (pools: string[]): BootstrapToken => ({ id: 'abcdef', secret: '0123456789abcdef', ingressPools: pools, authentication: true, server: false })
  const pool = (cls: string) => ({ 'skiff.dev/ingress-pool': cls })
  const cases: Array<{ name: string; pools: string[]; labels?: Record<string, string>; nodeExists?: boolean; credentialExists?: boolean; want: string }> = [
    { name: 'plain node', pools: [], want: 'ok' },
    { name: 'plain node, token with pools', pools: ['external'], want: 'ok' },
    { name: 'allowed pool gets an ingress credential', pools: ['external', 'internal'], labels: pool('internal'), want: 'ok:internal' },
    { name: 'pool not allowed', pools: ['internal'], labels: pool('external'), want: '403' },
    { name: 'no pools allowed', pools: [], labels: pool('external'), want: '403' },
    { name: 'empty pool value is not a pool the token names', pools: ['external'], labels: pool(''), want: '403' },
    { name: 'name taken by a Node', pools: [], nodeExists: true, want: '409' },
    { name: 'name has a credential', pools: [], credentialExists: true, want: '409' },
    { name: 'a refused pool is reported before a taken name', pools: [], labels: pool('external'), nodeExists: true, want: '403' },
  ]
  for (const c of cases) {
    const r = planJoin({ token: token(c.pools), request: { nodeName: 'web-1', labels: c.labels ?? {} }, nodeExists: !!c.nodeExists, credentialExists: !!c.credentialExists })
    const got = r instanceof ApiError ? String(r.status) : r.ingressClass ? `ok:${r.ingressClass}` : 'ok'
    t.equal(got, c.want, c.name)
  }
  const taken = planJoin({ token: token([]), request: { nodeName: 'web-1', labels: {} }, nodeExists: true, credentialExists: false }) as ApiError
  t.equal(taken.message, 'node web-1 already joined; delete it with kubectl delete node web-1 or choose another --node-name')
  const refused = planJoin({ token: token(['internal']), request: { nodeName: 'web-1', labels: pool('external') }, nodeExists: false, credentialExists: false }) as ApiError
  t.match(refused.message, 'bootstrap token "abcdef" may not join a node to ingress pool "external" (it allows internal): create a token with `skiff token create --ingress-pools external`')
})

t.test('parseKubeletCertRequest', async (t) => {
  const publicKeyPem = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.same(parseKubeletCertRequest({ publicKeyPem, ipAddresses: ['10.0.0.5'], dnsNames: ['web-1'] }), { publicKeyPem, ipAddresses: ['10.0.0.5'], dnsNames: ['web-1'] })
  t.same(parseKubeletCertRequest({ publicKeyPem, ipAddresses: ['10.0.0.5'] }).dnsNames, [])
  const cases: Array<[unknown, RegExp]> = [
    [{ ipAddresses: ['10.0.0.5'] }, /publicKeyPem: Required value/],
    [{ publicKeyPem, ipAddresses: ['10.0.0.300'] }, /ipAddresses: Invalid value: "10\.0\.0\.300" is not an IP address/],
    [{ publicKeyPem, ipAddresses: '10.0.0.5' }, /ipAddresses: Invalid value: a list of strings/],
    [{ publicKeyPem, dnsNames: ['*.evil'] }, /dnsNames: Invalid value: "\*\.evil" is not a DNS name/],
    [{ publicKeyPem }, /at least one IP address or DNS name/],
    [{ publicKeyPem, ipAddresses: Array.from({ length: 17 }, (_, i) => `10.0.0.${i}`) }, /at most 16/],
  ]
  for (const [body, want] of cases) {
    const e = failure(() => parseKubeletCertRequest(body))
    t.equal(e.status, 422)
    t.match(e.message, want)
  }
})

t.test('nodeNameOf: only node identities', async (t) => {
  t.equal(nodeNameOf({ name: 'system:node:web-1', uid: 'x', groups: ['system:nodes', 'system:authenticated'] }), 'web-1')
  t.equal(nodeNameOf({ name: 'system:node:web-1', uid: 'x', groups: ['system:authenticated'] }), undefined, 'the name alone is not enough')
  t.equal(nodeNameOf({ name: 'admin', uid: 'x', groups: ['system:masters', 'system:nodes'] }), undefined)
})

t.test('credentials: a token, its stored digest, and the identity read back', async (t) => {
  const c = newCredential()
  const parsed = parseCredentialToken(c.token)
  t.ok(parsed, 'well-formed')
  t.equal(parsed!.id, c.id)
  t.notMatch(JSON.stringify(buildCredentialSecret({ id: c.id, digest: c.digest, user: { name: 'u', uid: 'u', groups: [] }, node: { name: 'n', uid: '1' } })), parsed!.secret, 'the secret is not stored')
  t.equal(parseCredentialToken('abcdef.0123456789abcdef'), undefined, 'a bootstrap token is no credential')
  t.equal(parseCredentialToken(`${c.id}.short`), undefined)
  const secret = applyDefaults(secretsInfo, buildCredentialSecret({
    id: c.id, digest: c.digest, bootstrapTokenId: 'abcdef',
    user: { name: 'system:node:web-1', uid: 'skiff-credential-x', groups: ['system:nodes'] },
    node: { name: 'web-1', uid: 'node-uid' },
  }))
  t.equal(secret.metadata.name, `skiff-credential-${c.id}`)
  t.same(secret.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: 'web-1', uid: 'node-uid' }], 'owned by the Node: deleted with it')
  t.equal(credentialNode(secret), 'web-1')
  const read = readCredentialSecret(secret)
  t.same(read?.user, { name: 'system:node:web-1', uid: 'skiff-credential-x', groups: ['system:nodes', 'system:authenticated'] })
  t.equal(read?.digest.toString('hex'), c.digest)
  t.equal(readCredentialSecret({ ...secret, type: 'Opaque' }), undefined, 'another type')
})
