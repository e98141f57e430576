// Service-account tokens are JWTs signed RS256 with the service-account key
// every server of the cluster holds (pki/sa.key, handed to joining servers
// with the CA). node:crypto signs and verifies; the JWT framing (base64url
// header.claims.signature) is small enough that no library is needed. Pure.

import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'

export const issuer = 'https://kubernetes.default.svc.cluster.local'
/** What the apiserver accepts as an audience (kube-apiserver's --api-audiences defaults to the issuer). */
export const apiAudiences = [issuer]

export interface ServiceAccountClaims {
  iss: string
  sub: string
  aud: string[]
  exp: number
  iat: number
  nbf: number
  jti: string
  'kubernetes.io': {
    namespace: string
    serviceaccount: { name: string; uid: string }
    pod?: { name: string; uid: string }
    secret?: { name: string; uid: string }
  }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** The key id Kubernetes uses: SHA-256 of the public key (DER SubjectPublicKeyInfo), base64url. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('base64url')
}

export function signToken(claims: ServiceAccountClaims, privateKey: KeyObject): string {
  const head = `${b64({ alg: 'RS256', kid: keyId(privateKey) })}.${b64(claims)}`
  return `${head}.${sign('sha256', Buffer.from(head), privateKey).toString('base64url')}`
}

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
}

export type TokenCheck = { ok: true; claims: ServiceAccountClaims } | { ok: false; why: string }

/**
 * Signature, issuer, time window and audience; the objects the token names
 * are checked by the caller. `now` in seconds.
 */
export function verifyToken(token: string, publicKey: KeyObject, now: number): TokenCheck {
  const parts = token.split('.')
  if (parts.length !== 3) return { ok: false, why: 'not a JWT' }
  let header: any
  let claims: any
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, why: 'malformed JWT' }
  }
  if (header?.alg !== 'RS256') return { ok: false, why: `unsupported signing algorithm ${JSON.stringify(header?.alg)}` }
  if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2]!, 'base64url'))) return { ok: false, why: 'invalid signature' }
  if (claims?.iss !== issuer) return { ok: false, why: 'another issuer' }
  if (typeof claims.exp !== 'number' || claims.exp <= now) return { ok: false, why: 'token has expired' }
  if (typeof claims.nbf === 'number' && claims.nbf > now + 60) return { ok: false, why: 'token is not valid yet' }
  const aud: unknown[] = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
  if (!aud.some((a) => apiAudiences.includes(a as string))) return { ok: false, why: 'token audiences is invalid for the target audiences' }
  const k = claims['kubernetes.io']
  if (typeof k?.namespace !== 'string' || typeof k?.serviceaccount?.name !== 'string' || claims.sub !== `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`) {
    return { ok: false, why: 'not a service account token' }
  }
  return { ok: true, claims }
}
