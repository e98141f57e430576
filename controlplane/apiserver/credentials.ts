// Credentials issued at join: a node's (system:node:<name>) and, for a node of
// an ingress pool, its class's (skiff:ingress:<class>). A credential token is
// `<id>.<secret>` (id [a-z0-9]{16}, secret 43 base64url characters: 256
// bits). The secret is never stored: Secret kube-system/skiff-credential-<id>
// of type skiff.dev/credential holds its SHA-256, the identity, and an
// ownerReference to the Node, so deleting the Node garbage-collects it.
//
// Authentication reads no store: CredentialAuthenticator keeps the digests in
// memory from a StoreCache of those Secrets, looks a token up by its public
// id and compares digests in constant time. A Secret that disappears (the
// Node was deleted) leaves the map with the watch event.

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import type { KubeObject } from '../api/types.ts'
import type { Store } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'
import { groups, type UserInfo } from './authn.ts'
import { StoreCache } from './store-cache.ts'

export const credentialType = 'skiff.dev/credential'
export const credentialNamespace = 'kube-system'
export const credentialPrefix = 'skiff-credential-'
// Markers, not settings: under join.skiff.dev/, as certificates use cert.skiff.dev/
// (skiff.dev/ holds validated user settings).
/** The Node a credential belongs to (also in its ownerReference; an annotation value has no 63-character limit). */
export const credentialNodeAnnotation = 'join.skiff.dev/node'
/** The bootstrap token id that joined the node (audit). */
export const credentialTokenAnnotation = 'join.skiff.dev/bootstrap-token-id'

const tokenRe = /^([a-z0-9]{16})\.([A-Za-z0-9_-]{43})$/
const idAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'

export interface NewCredential {
  id: string
  /** The whole bearer token; returned to the joining node once, never stored. */
  token: string
  digest: string
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest()

export function newCredential(): NewCredential {
  let id = ''
  for (let i = 0; i < 16; i++) id += idAlphabet[randomInt(idAlphabet.length)]
  const secret = randomBytes(32).toString('base64url')
  return { id, token: `${id}.${secret}`, digest: sha256(secret).toString('hex') }
}

export function parseCredentialToken(token: string): { id: string; secret: string } | undefined {
  const m = tokenRe.exec(token)
  return m ? { id: m[1]!, secret: m[2]! } : undefined
}

/** The Secret that stands for a credential: digest, identity, owner Node. */
export function buildCredentialSecret(c: { id: string; digest: string; user: UserInfo; node: { name: string; uid: string }; bootstrapTokenId?: string }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: credentialPrefix + c.id,
      namespace: credentialNamespace,
      annotations: {
        [credentialNodeAnnotation]: c.node.name,
        ...(c.bootstrapTokenId ? { [credentialTokenAnnotation]: c.bootstrapTokenId } : {}),
      },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: c.node.name, uid: c.node.uid }],
    },
    type: credentialType,
    stringData: {
      'token-id': c.id,
      'token-sha256': c.digest,
      user: c.user.name,
      uid: c.user.uid,
      groups: c.user.groups.join(','),
    },
  }
}

interface Entry {
  digest: Buffer
  user: UserInfo
}

/** The id, digest and identity a credential Secret holds, or undefined if it is not one. */
export function readCredentialSecret(secret: KubeObject): ({ id: string } & Entry) | undefined {
  if (secret.type !== credentialType) return undefined
  const data = (secret.data ?? {}) as Record<string, string>
  const get = (k: string) => (data[k] === undefined ? '' : Buffer.from(data[k], 'base64').toString('utf8'))
  const id = get('token-id')
  const digest = Buffer.from(get('token-sha256'), 'hex')
  const name = get('user')
  if (!/^[a-z0-9]{16}$/.test(id) || digest.length !== 32 || !name || secret.metadata.name !== credentialPrefix + id) return undefined
  const gs = get('groups').split(',').filter(Boolean)
  return { id, digest, user: { name, uid: get('uid') || name, groups: [...gs, groups.authenticated] } }
}

/** The node a credential Secret belongs to. */
export function credentialNode(secret: KubeObject): string | undefined {
  return secret.type === credentialType ? secret.metadata.annotations?.[credentialNodeAnnotation] : undefined
}

export class CredentialAuthenticator {
  #cache: StoreCache
  #entries = new Map<string, Entry>()

  constructor(opts: { store: Store; logger: Logger }) {
    this.#cache = new StoreCache({ ...opts, resource: 'secrets', namespace: credentialNamespace, filter: (o) => o.type === credentialType })
    this.#cache.onChange((type, obj) => {
      const name = obj.metadata.name!
      const entry = type === 'DELETED' ? undefined : readCredentialSecret(obj)
      const id = name.slice(credentialPrefix.length)
      if (entry) this.#entries.set(entry.id, entry)
      else this.#entries.delete(id)
    })
  }

  async start(): Promise<void> {
    await this.#cache.start()
  }

  stop(): void {
    this.#cache.stop()
  }

  /**
   * Take a Secret this apiserver just created at once, so the joined node's
   * first request does not race the watch (the watch brings the same Secret
   * again, which is a no-op).
   */
  remember(secret: KubeObject): void {
    const entry = readCredentialSecret(secret)
    if (entry) this.#entries.set(entry.id, entry)
  }

  /** The user for `Authorization: Bearer <id>.<secret>`, or undefined. */
  authenticate(header: string | undefined): UserInfo | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    const parsed = m ? parseCredentialToken(m[1]!) : undefined
    if (!parsed) return undefined
    const entry = this.#entries.get(parsed.id)
    // Compare against a dummy when the id is unknown, so both paths cost the same.
    const d = sha256(parsed.secret)
    const ok = timingSafeEqual(d, entry?.digest ?? Buffer.alloc(32))
    return ok && entry ? entry.user : undefined
  }
}
