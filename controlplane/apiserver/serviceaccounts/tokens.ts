// ServiceAccount tokens: the serviceaccounts/token subresource
// (TokenRequest, `kubectl create token`) and the authenticator of the bound
// JWTs it issues, as kube-apiserver's pkg/registry/core/serviceaccount/
// storage/token.go and pkg/serviceaccount do it.
//
// A TokenRequest names audiences (default: the API's), a lifetime
// (expirationSeconds: at least 10 minutes, default 1 hour) and optionally a
// Pod or Secret the token is bound to. A token authenticates while its
// signature, issuer, time window and audience hold and while the
// ServiceAccount (same uid) and the bound object (same uid; a pod deleted
// more than 60 s ago no longer counts) exist: deleting either revokes it.
// Each check is a store read (cheap next to the request it guards).

import { randomUUID, type KeyObject } from 'node:crypto'
import { ApiError } from '../../api/errors.ts'
import { lookupResource } from '../../api/resources.ts'
import type { KubeObject, StatusCause } from '../../api/types.ts'
import { invalid, isRecord, items, notSupported } from '../../api/validation/field.ts'
import type { Logger } from '../../../lib/log.ts'
import { Counter, type Registry as MetricsRegistry } from '../../../lib/metrics.ts'
import { groups, type UserInfo } from '../authn.ts'
import type { Registry } from '../registry.ts'
import { apiAudiences, issuer, looksLikeJwt, signToken, verifyToken, type ServiceAccountClaims } from './jwt.ts'

export const serviceAccountsGroup = 'system:serviceaccounts'
const minSeconds = 600
const defaultSeconds = 3600
/** A deleted pod's tokens still work this long, so its containers can stop cleanly (Kubernetes: 60 s). */
const deletedPodGraceSeconds = 60

const serviceAccounts = lookupResource('', 'v1', 'serviceaccounts')!
const bindable: Record<string, ReturnType<typeof lookupResource>> = { Pod: lookupResource('', 'v1', 'pods'), Secret: lookupResource('', 'v1', 'secrets') }

export interface TokenSpec {
  audiences: string[]
  expirationSeconds: number
  boundObjectRef?: { kind: string; apiVersion?: string; name: string; uid?: string }
}

/** A TokenRequest body checked and defaulted (ValidateTokenRequest), or its 422. Pure. */
export function parseTokenRequest(body: unknown, saName: string): TokenSpec {
  const spec: Record<string, any> = isRecord(body) && isRecord((body as any).spec) ? (body as any).spec : {}
  const causes: StatusCause[] = []
  const audiences = items(spec.audiences).filter((a) => typeof a === 'string' && a !== '')
  const seconds = spec.expirationSeconds === undefined || spec.expirationSeconds === null ? defaultSeconds : spec.expirationSeconds
  if (typeof seconds !== 'number' || !Number.isInteger(seconds)) causes.push(invalid('spec.expirationSeconds', seconds, 'must be an integer'))
  else if (seconds < minSeconds) causes.push(invalid('spec.expirationSeconds', seconds, 'may not specify a duration less than 10 minutes'))
  else if (seconds > 2 ** 32) causes.push(invalid('spec.expirationSeconds', seconds, 'may not specify a duration larger than 2^32 seconds'))
  let boundObjectRef: TokenSpec['boundObjectRef']
  if (isRecord(spec.boundObjectRef)) {
    const r = spec.boundObjectRef
    if (!Object.hasOwn(bindable, r.kind) || (r.apiVersion && r.apiVersion !== 'v1')) {
      throw new ApiError('BadRequest', `cannot bind token for serviceaccount "${saName}" to object of type ${r.apiVersion ?? ''}, Kind=${r.kind ?? ''}`)
    }
    if (typeof r.name !== 'string' || !r.name) causes.push(invalid('spec.boundObjectRef.name', r.name ?? '', 'the name of the object to bind to'))
    boundObjectRef = { kind: r.kind, apiVersion: 'v1', name: r.name, ...(r.uid ? { uid: String(r.uid) } : {}) }
  } else if (spec.boundObjectRef !== undefined && spec.boundObjectRef !== null) causes.push(notSupported('spec.boundObjectRef', spec.boundObjectRef, ['Pod', 'Secret']))
  if (causes.length) {
    throw new ApiError('Invalid', `TokenRequest.authentication.k8s.io "${saName}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, { name: saName, group: 'authentication.k8s.io', kind: 'TokenRequest', causes })
  }
  return { audiences: audiences.length ? audiences : apiAudiences, expirationSeconds: seconds as number, ...(boundObjectRef ? { boundObjectRef } : {}) }
}

/** The claims of a new token. Pure. */
export function buildClaims(o: { sa: KubeObject; spec: TokenSpec; bound?: KubeObject; now: number; jti?: string }): ServiceAccountClaims {
  const ns = o.sa.metadata.namespace!
  const k8s: ServiceAccountClaims['kubernetes.io'] = { namespace: ns, serviceaccount: { name: o.sa.metadata.name!, uid: o.sa.metadata.uid! } }
  if (o.bound && o.spec.boundObjectRef) k8s[o.spec.boundObjectRef.kind === 'Pod' ? 'pod' : 'secret'] = { name: o.bound.metadata.name!, uid: o.bound.metadata.uid! }
  return {
    aud: o.spec.audiences,
    exp: o.now + o.spec.expirationSeconds,
    iat: o.now,
    iss: issuer,
    jti: o.jti ?? randomUUID(),
    'kubernetes.io': k8s,
    nbf: o.now,
    sub: `system:serviceaccount:${ns}:${o.sa.metadata.name}`,
  }
}

const rfc3339 = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z')

export class ServiceAccountTokens {
  #registry: Registry
  #key: KeyObject
  #log: Logger
  #issued: Counter<string>
  #checked: Counter<string>

  constructor(o: { registry: Registry; key: KeyObject; logger: Logger; metrics?: MetricsRegistry }) {
    this.#registry = o.registry
    this.#key = o.key
    this.#log = o.logger.child({ component: 'serviceaccount-tokens' })
    const registers = o.metrics ? [o.metrics] : []
    this.#issued = new Counter({ name: 'serviceaccount_tokens_issued_total', help: 'ServiceAccount tokens issued through TokenRequest', registers })
    this.#checked = new Counter({ name: 'serviceaccount_token_authentications_total', help: 'Requests carrying a ServiceAccount token (a JWT), by result: valid, or why it was refused', labelNames: ['result'], registers })
  }

  async #find(info: NonNullable<ReturnType<typeof lookupResource>>, ns: string, name: string): Promise<KubeObject | undefined> {
    return await this.#registry.get(info, ns, name).catch((e) => {
      if (e instanceof ApiError && e.reason === 'NotFound') return undefined
      throw e
    })
  }

  /** POST serviceaccounts/NAME/token: the answered TokenRequest (the caller authorized `create serviceaccounts/token`). */
  async request(namespace: string, name: string, body: unknown): Promise<unknown> {
    const spec = parseTokenRequest(body, name)
    const sa = await this.#registry.get(serviceAccounts, namespace, name)
    let bound: KubeObject | undefined
    if (spec.boundObjectRef) {
      const ref = spec.boundObjectRef
      bound = await this.#registry.get(bindable[ref.kind]!, namespace, ref.name)
      if (ref.uid && ref.uid !== bound.metadata.uid) {
        throw new ApiError('Conflict', `Operation cannot be fulfilled on ${ref.kind} "${ref.name}": the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`, { name: ref.name, kind: ref.kind })
      }
    }
    const now = Math.floor(Date.now() / 1000)
    const claims = buildClaims({ sa, spec, bound, now })
    this.#issued.inc()
    this.#log.info({ serviceAccount: `${namespace}/${name}`, audiences: spec.audiences, expirationSeconds: spec.expirationSeconds, bound: spec.boundObjectRef?.kind, jti: claims.jti }, 'service account token issued')
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: null },
      spec: { audiences: spec.audiences, expirationSeconds: spec.expirationSeconds, boundObjectRef: spec.boundObjectRef ?? null },
      status: { token: signToken(claims, this.#key), expirationTimestamp: rfc3339(claims.exp) },
    }
  }

  /** The user of `Authorization: Bearer <JWT>`, or undefined (not ours, invalid, expired, or its objects are gone). */
  async authenticate(header: string | undefined): Promise<UserInfo | undefined> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    if (!m || !looksLikeJwt(m[1]!)) return undefined
    const now = Math.floor(Date.now() / 1000)
    const check = verifyToken(m[1]!, this.#key, now)
    if (!check.ok) {
      this.#log.debug({ why: check.why }, 'service account token refused')
      this.#checked.inc({ result: 'invalid' })
      return undefined
    }
    const user = await this.#live(check.claims, now)
    this.#checked.inc({ result: user ? 'valid' : 'revoked' })
    return user
  }

  /** The user of verified claims while the ServiceAccount and the bound object still exist. */
  async #live(claims: ServiceAccountClaims, now: number): Promise<UserInfo | undefined> {
    const k = claims['kubernetes.io']
    const sa = await this.#find(serviceAccounts, k.namespace, k.serviceaccount.name)
    if (sa?.metadata.uid !== k.serviceaccount.uid) return undefined
    const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`] }
    if (k.pod) {
      const pod = await this.#find(bindable.Pod!, k.namespace, k.pod.name)
      if (pod?.metadata.uid !== k.pod.uid) return undefined
      const deleted = pod.metadata.deletionTimestamp ? Date.parse(pod.metadata.deletionTimestamp) / 1000 : Infinity
      if (deleted < now - deletedPodGraceSeconds) return undefined
      extra['authentication.kubernetes.io/pod-name'] = [k.pod.name]
      extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid]
    }
    if (k.secret && (await this.#find(bindable.Secret!, k.namespace, k.secret.name))?.metadata.uid !== k.secret.uid) return undefined
    return {
      name: claims.sub,
      uid: k.serviceaccount.uid,
      groups: [serviceAccountsGroup, `${serviceAccountsGroup}:${k.namespace}`, groups.authenticated],
      extra,
    }
  }
}
