// Join tokens, kubeadm/k3s style. A bootstrap token `<id>.<secret>`
// ([a-z0-9]{6}.[a-z0-9]{16}) lives in Secret kube-system/bootstrap-token-<id>
// of type bootstrap.kubernetes.io/token with kubeadm's fields, plus
// `skiff-ingress-pools`: the ingress classes a node joining with it may
// serve. What users copy is the join token
// `K10<sha256 of the cluster CA's SubjectPublicKeyInfo>::<id>.<secret>`
// (k3s' shape, kubeadm's hash), so the agent can pin the CA before it sends
// the secret anywhere. Pure: the CLI, the apiserver and the agent share it.

import { randomInt, timingSafeEqual } from 'node:crypto'
import type { KubeObject } from './types.ts'

export const bootstrapTokenType = 'bootstrap.kubernetes.io/token'
export const bootstrapTokenNamespace = 'kube-system'
export const bootstrapTokenPrefix = 'bootstrap-token-'
/** Comma list of ingress classes a node joining with the token may serve (Skiff's own data key; Secret keys may hold no '/'). */
export const ingressPoolsKey = 'skiff-ingress-pools'
/** The Node label that puts a node in an ingress class's pool; a join sets it only where the token allows. */
export const ingressPoolLabel = 'skiff.dev/ingress-pool'
/** "true": a server may join with the token (`skiff server --join`) and receive the cluster CA key, the static tokens and the Secret encryption key. */
export const serverUsageKey = 'skiff-usage-server'

const idRe = /^[a-z0-9]{6}$/
const bootstrapRe = /^([a-z0-9]{6})\.([a-z0-9]{16})$/
const joinRe = /^K10([0-9a-f]*)::(.*)$/
const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'

export interface BootstrapTokenRef {
  id: string
  secret: string
}

/** What a bootstrap token Secret says, decoded. */
export interface BootstrapToken extends BootstrapTokenRef {
  /** Absent: never expires. */
  expiration?: Date
  description?: string
  ingressPools: string[]
  /** usage-bootstrap-authentication is "true": the token may authenticate a join. */
  authentication: boolean
  /** skiff-usage-server is "true": a server may join with it (agents may too). */
  server: boolean
}

function randomString(n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)]
  return s
}

export function generateBootstrapToken(): BootstrapTokenRef {
  return { id: randomString(6), secret: randomString(16) }
}

export function isBootstrapTokenId(id: string): boolean {
  return idRe.test(id)
}

/** `<id>.<secret>` or undefined. */
export function parseBootstrapToken(s: string): BootstrapTokenRef | undefined {
  const m = bootstrapRe.exec(s)
  return m ? { id: m[1]!, secret: m[2]! } : undefined
}

export function formatJoinToken(caHash: string, t: BootstrapTokenRef): string {
  return `K10${caHash}::${t.id}.${t.secret}`
}

/**
 * The CA hash and bootstrap token of a join token. Short tokens (no CA hash)
 * are refused: with them the first contact could be intercepted (k3s only
 * warns; Skiff asks for the full token).
 */
export function parseJoinToken(s: string): { caHash: string } & BootstrapTokenRef {
  const text = s.trim()
  const m = joinRe.exec(text)
  if (!m) {
    const short = parseBootstrapToken(text) ? ' (this is only the <id>.<secret> part, without the CA hash)' : ''
    throw new Error(`the token is not a Skiff join token K10<CA hash>::<id>.<secret>${short}: use the whole line printed by \`skiff token create\` on the server`)
  }
  if (m[1]!.length !== 64) throw new Error(`the token's CA hash has ${m[1]!.length} hex digits, not 64: copy the whole line printed by \`skiff token create\``)
  const ref = parseBootstrapToken(m[2]!)
  if (!ref) throw new Error('the token\'s credential part is not <id>.<secret> ([a-z0-9]{6}.[a-z0-9]{16}): copy the whole line printed by `skiff token create`')
  return { caHash: m[1]!, ...ref }
}

/** The id inside an id, an `<id>.<secret>` or a whole join token; undefined for anything else. */
export function tokenIdOf(s: string): string | undefined {
  const text = s.trim()
  if (idRe.test(text)) return text
  const ref = parseBootstrapToken(text)
  if (ref) return ref.id
  try {
    return parseJoinToken(text).id
  } catch {
    return undefined
  }
}

export function bootstrapTokenSecretName(id: string): string {
  return bootstrapTokenPrefix + id
}

/** The RFC 3339 form kubeadm writes (seconds, UTC). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z')
}

export function buildBootstrapTokenSecret(t: BootstrapTokenRef & { expiration?: Date; description?: string; ingressPools?: string[]; server?: boolean }): KubeObject {
  const stringData: Record<string, string> = {
    'token-id': t.id,
    'token-secret': t.secret,
    'usage-bootstrap-authentication': 'true',
  }
  if (t.expiration) stringData.expiration = rfc3339(t.expiration)
  if (t.description) stringData.description = t.description
  if (t.ingressPools?.length) stringData[ingressPoolsKey] = t.ingressPools.join(',')
  if (t.server) stringData[serverUsageKey] = 'true'
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: bootstrapTokenSecretName(t.id), namespace: bootstrapTokenNamespace },
    type: bootstrapTokenType,
    stringData,
  }
}

/** The token a Secret holds, or undefined when it is not a well-formed bootstrap token Secret. */
export function readBootstrapTokenSecret(secret: KubeObject | undefined): BootstrapToken | undefined {
  if (!secret || secret.type !== bootstrapTokenType) return undefined
  const data = (secret.data ?? {}) as Record<string, string>
  const get = (k: string) => (data[k] === undefined ? undefined : Buffer.from(data[k], 'base64').toString('utf8'))
  const id = get('token-id')
  const secretPart = get('token-secret')
  if (!id || !secretPart || secret.metadata.name !== bootstrapTokenSecretName(id) || !parseBootstrapToken(`${id}.${secretPart}`)) return undefined
  const exp = get('expiration')
  let expiration: Date | undefined
  if (exp) {
    expiration = new Date(exp)
    // An unreadable expiration counts as expired: never fail open.
    if (Number.isNaN(expiration.getTime())) expiration = new Date(0)
  }
  return {
    id,
    secret: secretPart,
    expiration,
    description: get('description') || undefined,
    ingressPools: (get(ingressPoolsKey) ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    authentication: get('usage-bootstrap-authentication') === 'true',
    server: get(serverUsageKey) === 'true',
  }
}

export function isExpired(t: { expiration?: Date }, now: number): boolean {
  return !!t.expiration && t.expiration.getTime() <= now
}

export type BootstrapCheck =
  | { ok: true; token: BootstrapToken }
  | { ok: false; why: 'unknown' | 'not-for-authentication' | 'expired'; expiredAt?: Date }

/**
 * Does the presented `<id>.<secret>` match the stored token, and may it
 * authenticate now? A wrong secret answers like an unknown id, so a caller
 * learns nothing about which ids exist.
 */
export function checkBootstrapToken(stored: BootstrapToken | undefined, presented: BootstrapTokenRef, now: number): BootstrapCheck {
  if (!stored || stored.id !== presented.id) return { ok: false, why: 'unknown' }
  const a = Buffer.from(stored.secret)
  const b = Buffer.from(presented.secret)
  if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, why: 'unknown' }
  if (!stored.authentication) return { ok: false, why: 'not-for-authentication' }
  if (isExpired(stored, now)) return { ok: false, why: 'expired', expiredAt: stored.expiration }
  return { ok: true, token: stored }
}

/**
 * `24h`, `90m`, `1h30m`, `45s`, `0` (never) → milliseconds (0 = never).
 * Go's duration syntax as kubeadm's --ttl takes it, hours and smaller.
 */
export function parseTtl(s: string): number {
  const text = s.trim()
  if (/^0+$/.test(text)) return 0
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text)
  if (!text || !m || (!m[1] && !m[2] && !m[3])) throw new Error(`--ttl ${JSON.stringify(s)} is not a duration: use e.g. 24h, 30m, 1h30m, or 0 for a token that never expires`)
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000
}

/** kubeadm token list's TTL column: `23h`, `59m`, `<forever>`, `<expired>`. */
export function formatTtl(t: { expiration?: Date }, now: number): string {
  if (!t.expiration) return '<forever>'
  const ms = t.expiration.getTime() - now
  if (ms <= 0) return '<expired>'
  const s = Math.round(ms / 1000)
  if (s >= 3600) return `${Math.round(s / 3600)}h`
  if (s >= 60) return `${Math.round(s / 60)}m`
  return `${s}s`
}
