// ServiceAccount token pieces (controlplane/apiserver/serviceaccounts):
// TokenRequest validation and defaults, the claims as Kubernetes writes
// them, and JWT verification (signature, issuer, time, audience).

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiError } from '../../controlplane/api/errors.ts'
import { issuer, keyId, signToken, verifyToken } from '../../controlplane/apiserver/serviceaccounts/jwt.ts'
import { buildClaims, parseTokenRequest } from '../../controlplane/apiserver/serviceaccounts/tokens.ts'

const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot', namespace: 'ns', uid: 'sa-uid' } } as KubeObject
const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', uid: 'pod-uid' } } as KubeObject
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })

t.test('TokenRequest: defaults and Kubernetes messages', async (t) => {
  t.same(parseTokenRequest({ spec: {} }, 'robot'), { audiences: [issuer], expirationSeconds: 3600 })
  t.same(parseTokenRequest({ spec: { audiences: ['vault'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p' } } }, 'robot'), {
    audiences: ['vault'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p' },
  })
  const err = (body: unknown) => {
    try {
      parseTokenRequest(body, 'robot')
    } catch (e) {
      return e as ApiError
    }
    throw new Error('no error')
  }
  t.equal(err({ spec: { expirationSeconds: 599 } }).details?.causes?.[0]?.message, 'Invalid value: 599: may not specify a duration less than 10 minutes')
  t.equal(err({ spec: { expirationSeconds: 2 ** 33 } }).details?.causes?.[0]?.message, 'Invalid value: 8589934592: may not specify a duration larger than 2^32 seconds')
  t.equal(err({ spec: { boundObjectRef: { kind: 'Node', apiVersion: 'v1', name: 'n' } } }).message, 'cannot bind token for serviceaccount "robot" to object of type v1, Kind=Node')
})

t.test('claims as Kubernetes writes them', async (t) => {
  const c = buildClaims({ sa, spec: { audiences: [issuer], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', name: 'p' } }, bound: pod, now: 1000, jti: 'j' })
  t.same(c, {
    aud: [issuer], exp: 1600, iat: 1000, iss: issuer, jti: 'j', nbf: 1000, sub: 'system:serviceaccount:ns:robot',
    'kubernetes.io': { namespace: 'ns', serviceaccount: { name: 'robot', uid: 'sa-uid' }, pod: { name: 'p', uid: 'pod-uid' } },
  })
})

t.test('verification', async (t) => {
  const claims = buildClaims({ sa, spec: { audiences: [issuer], expirationSeconds: 600 }, now: 1000 })
  const token = signToken(claims, privateKey)
  t.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, keyId(privateKey))
  t.same(verifyToken(token, privateKey, 1200), { ok: true, claims })
  t.same(verifyToken(token, privateKey, 1600), { ok: false, why: 'token has expired' })
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  t.same(verifyToken(token, other, 1200), { ok: false, why: 'invalid signature' })
  const vault = signToken(buildClaims({ sa, spec: { audiences: ['vault'], expirationSeconds: 600 }, now: 1000 }), privateKey)
  t.same(verifyToken(vault, privateKey, 1200), { ok: false, why: 'token audiences is invalid for the target audiences' })
  const [h, , s] = token.split('.')
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:ns:admin' })).toString('base64url')}.${s}`
  t.same(verifyToken(forged, privateKey, 1200), { ok: false, why: 'invalid signature' })
})
