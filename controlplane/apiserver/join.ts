// Node identity: `POST /skiff/v1/join` and `POST /skiff/v1/kubelet-certificate`.
//
// join is authenticated by a bootstrap token only (Authorization: Bearer
// <id>.<secret>); bootstrap tokens authenticate nothing else. Body
// `{ nodeName, labels? }`. It creates the Node and the node's credential
// (system:node:<name>), and for a node labelled skiff.dev/ingress-pool=<class>
// that the token allows, an ingress credential (skiff:ingress:<class>); both
// owned by the Node. Answer 201 `{ nodeName, token, ingress?: { className, token } }`.
// The Node is created first: it is the lock against two joins with one name.
//
// kubelet-certificate is for node identities: body `{ publicKeyPem,
// ipAddresses, dnsNames }` → `{ certPem, caPem }`, a serving certificate from
// the cluster CA for CN system:node:<name>, O system:nodes, exactly those
// SANs. The node states its own addresses, as it states them in its Node
// status, which is what the apiserver dials; the apiserver then also checks
// the CN, so one node's certificate does not pass for another's.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { isDNS1123Subdomain } from '../api/validation/names.ts'
import {
  bootstrapTokenNamespace,
  bootstrapTokenSecretName,
  checkBootstrapToken,
  ingressPoolLabel,
  parseBootstrapToken,
  readBootstrapTokenSecret,
  rfc3339,
  type BootstrapCheck,
  type BootstrapToken,
} from '../api/bootstrap-token.ts'
import { signServingCert, type ClusterCA } from '../../certs/ca.ts'
import type { Logger } from '../../lib/log.ts'
import { groups, ingressUserPrefix, nodeUserPrefix, type UserInfo } from './authn.ts'
import { buildCredentialSecret, credentialNamespace, credentialNode, newCredential, type CredentialAuthenticator } from './credentials.ts'
import { parseJson, readBody, sendJson } from './http-util.ts'
import type { Registry } from './registry.ts'

export const joinPath = '/skiff/v1/join'
/** A second server joins here: bootstrap token with skiff-usage-server, answer ServerJoinBundle. */
export const serverJoinPath = '/skiff/v1/server-join'
export const kubeletCertificatePath = '/skiff/v1/kubelet-certificate'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const secretsInfo = lookupResource('', 'v1', 'secrets')!
const maxJoinBody = 64 * 1024
// k3s caps agent requests in flight (10 mutating): joins past this wait for a retry, not for Redis.
const maxJoinsInFlight = 10
const newTokenHint = 'get a new token with `skiff token create` on the server'

export interface JoinRequest {
  nodeName: string
  labels: Record<string, string>
}

/**
 * What a joining server needs to be the same control plane: the cluster CA
 * (key included: it signs serving and kubelet certificates), the static
 * tokens file and the key Secrets are sealed with. Sent only over TLS to a
 * caller that pinned the CA and holds a server bootstrap token; never put
 * in Redis.
 */
export interface ServerJoinBundle {
  caCertPem: string
  caKeyPem: string
  /** tokens.csv as it is on the answering server. */
  tokensCsv: string
  /** base64 of the 32-byte AES-256 key. */
  encryptionKey: string
  /** PEM (PKCS#8) of the key ServiceAccount tokens are signed with (pki/sa.key); absent from servers older than it. */
  serviceAccountKeyPem?: string
}

export interface JoinAnswer {
  nodeName: string
  token: string
  ingress?: { className: string; token: string }
}

// ---- pure parts ----

/** The body of a join, checked: a DNS-1123 subdomain name and string labels. */
export function parseJoinRequest(body: unknown): JoinRequest {
  const b = (body ?? {}) as { nodeName?: unknown; labels?: unknown }
  if (typeof b.nodeName !== 'string' || !b.nodeName) throw invalid('nodeName', 'Required value: the node name (skiff agent --node-name)')
  const errs = isDNS1123Subdomain(b.nodeName)
  if (errs.length) throw invalid('nodeName', `Invalid value: ${JSON.stringify(b.nodeName)}: ${errs.join('; ')}; choose another --node-name`)
  const labels: Record<string, string> = {}
  if (b.labels !== undefined) {
    if (!b.labels || typeof b.labels !== 'object' || Array.isArray(b.labels)) throw invalid('labels', 'Invalid value: labels must be an object of strings')
    for (const [k, v] of Object.entries(b.labels)) {
      if (typeof v !== 'string') throw invalid(`labels[${k}]`, 'Invalid value: label values are strings')
      labels[k] = v
    }
  }
  return { nodeName: b.nodeName, labels }
}

function invalid(field: string, message: string): ApiError {
  return new ApiError('Invalid', `join request is invalid: ${field}: ${message}`, { kind: 'join', causes: [{ field, reason: 'FieldValueInvalid', message }] })
}

/** The 401 for a bootstrap token that may not join. */
export function bootstrapRefusal(id: string, check: Exclude<BootstrapCheck, { ok: true }>): ApiError {
  if (check.why === 'expired') {
    return new ApiError('Unauthorized', `bootstrap token "${id}" expired at ${rfc3339(check.expiredAt!)}: ${newTokenHint} (--ttl sets its lifetime; 0 never expires)`)
  }
  if (check.why === 'not-for-authentication') {
    return new ApiError('Unauthorized', `bootstrap token "${id}" is not for authentication (its usage-bootstrap-authentication is not "true"): ${newTokenHint}`)
  }
  return new ApiError('Unauthorized', `bootstrap token "${id}" is not valid in this cluster (unknown, deleted, or a wrong secret): ${newTokenHint}`)
}

/**
 * What a join with an authenticated token may do: 403 for an ingress pool the
 * token does not allow, 409 for a name taken by a Node or a credential;
 * otherwise the ingress class to issue a credential for, if any.
 */
export function planJoin(o: { token: BootstrapToken; request: JoinRequest; nodeExists: boolean; credentialExists: boolean }): { ingressClass?: string } | ApiError {
  const { nodeName, labels } = o.request
  const pool = labels[ingressPoolLabel]
  if (pool !== undefined && !o.token.ingressPools.includes(pool)) {
    const allowed = o.token.ingressPools.length ? `it allows ${o.token.ingressPools.join(', ')}` : 'it allows no ingress pool'
    return new ApiError(
      'Forbidden',
      `bootstrap token "${o.token.id}" may not join a node to ingress pool "${pool}" (${allowed}): create a token with \`skiff token create --ingress-pools ${pool}\`, or join without the ${ingressPoolLabel} label`,
    )
  }
  if (o.nodeExists || o.credentialExists) return alreadyJoined(nodeName)
  return pool ? { ingressClass: pool } : {}
}

function alreadyJoined(name: string): ApiError {
  return new ApiError('AlreadyExists', `node ${name} already joined; delete it with kubectl delete node ${name} or choose another --node-name`, { name, kind: 'nodes' })
}

/** The body of a kubelet certificate request, checked. */
export function parseKubeletCertRequest(body: unknown): { publicKeyPem: string; ipAddresses: string[]; dnsNames: string[] } {
  const b = (body ?? {}) as { publicKeyPem?: unknown; ipAddresses?: unknown; dnsNames?: unknown }
  const bad = (field: string, message: string) => new ApiError('Invalid', `kubelet certificate request is invalid: ${field}: ${message}`, { kind: 'kubelet-certificate', causes: [{ field, reason: 'FieldValueInvalid', message }] })
  if (typeof b.publicKeyPem !== 'string' || !b.publicKeyPem.includes('PUBLIC KEY')) throw bad('publicKeyPem', 'Required value: the PEM (SPKI) public key of the kubelet serving key')
  if (b.publicKeyPem.length > 16 * 1024) throw bad('publicKeyPem', 'Too long: at most 16 KiB')
  const list = (v: unknown, field: string): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(field, 'Invalid value: a list of strings')
    if (v.length > 16) throw bad(field, 'Too many: at most 16')
    return v as string[]
  }
  const ipAddresses = list(b.ipAddresses, 'ipAddresses')
  const dnsNames = list(b.dnsNames, 'dnsNames')
  for (const ip of ipAddresses) if (!isIP(ip)) throw bad('ipAddresses', `Invalid value: ${JSON.stringify(ip)} is not an IP address`)
  for (const n of dnsNames) if (isDNS1123Subdomain(n).length) throw bad('dnsNames', `Invalid value: ${JSON.stringify(n)} is not a DNS name`)
  if (ipAddresses.length + dnsNames.length === 0) throw bad('ipAddresses', 'Required value: at least one IP address or DNS name for the certificate')
  return { publicKeyPem: b.publicKeyPem, ipAddresses, dnsNames }
}

/** The node name of a node identity (system:node:<name> in system:nodes), else undefined. */
export function nodeNameOf(user: UserInfo): string | undefined {
  return user.groups.includes(groups.nodes) && user.name.startsWith(nodeUserPrefix) ? user.name.slice(nodeUserPrefix.length) : undefined
}

// ---- the HTTP side ----

/** The bootstrap token of `Authorization: Bearer <id>.<secret>`, if that is what the header holds. */
function presentedToken(req: IncomingMessage): { id: string; secret: string } | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  return m ? parseBootstrapToken(m[1]!) : undefined
}

export class NodeJoin {
  #registry: Registry
  #credentials: CredentialAuthenticator
  #ca?: ClusterCA
  #log: Logger
  #inFlight = 0

  #serverBundle?: () => ServerJoinBundle

  constructor(opts: { registry: Registry; credentials: CredentialAuthenticator; ca?: ClusterCA; logger: Logger; serverBundle?: () => ServerJoinBundle }) {
    this.#registry = opts.registry
    this.#credentials = opts.credentials
    this.#ca = opts.ca
    this.#serverBundle = opts.serverBundle
    this.#log = opts.logger.child({ component: 'join' })
  }

  /** `skiff server --join`: a server bootstrap token buys the cluster's secrets (ServerJoinBundle). */
  async serverJoin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${serverJoinPath}; POST with the server token`)
    const presented = presentedToken(req)
    if (!presented) throw new ApiError('Unauthorized', `${serverJoinPath} takes a server bootstrap token (Authorization: Bearer <id>.<secret>): create one with \`skiff token create --server\` on a running server`)
    const token = await this.#authenticate(presented)
    if (!token.server) {
      throw new ApiError('Forbidden', `bootstrap token "${presented.id}" is an agent token; a server joins with one made by \`skiff token create --server\``)
    }
    if (!this.#serverBundle) throw new ApiError('ServiceUnavailable', 'this apiserver was started without its state directory and cannot hand out the cluster secrets; join through a server started by `skiff server`')
    await readBody(req, maxJoinBody)
    this.#log.info({ bootstrapToken: presented.id, remote: req.socket.remoteAddress }, 'a server joined: handed out the cluster CA, tokens and encryption key')
    sendJson(res, 200, this.#serverBundle())
  }

  async join(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${joinPath}; POST { nodeName, labels }`)
    const presented = presentedToken(req)
    if (!presented) {
      throw new ApiError('Unauthorized', `${joinPath} takes a bootstrap token (Authorization: Bearer <id>.<secret>): ${newTokenHint} and pass it to skiff agent --token`)
    }
    if (this.#inFlight >= maxJoinsInFlight) throw new ApiError('ServiceUnavailable', `more than ${maxJoinsInFlight} nodes are joining at once; retry in a moment`)
    this.#inFlight++
    try {
      const answer = await this.#join(presented, parseJoinRequest(parseJson(await readBody(req, maxJoinBody))))
      sendJson(res, 201, answer)
    } finally {
      this.#inFlight--
    }
  }

  /** The stored bootstrap token the presented one matches, or the 401 saying why not (read from the store at each join). */
  async #authenticate(presented: { id: string; secret: string }): Promise<BootstrapToken> {
    const stored = await this.#registry.get(secretsInfo, bootstrapTokenNamespace, bootstrapTokenSecretName(presented.id)).catch((e) => {
      if (e instanceof ApiError && e.reason === 'NotFound') return undefined
      throw e
    })
    const check = checkBootstrapToken(readBootstrapTokenSecret(stored), presented, Date.now())
    if (!check.ok) throw bootstrapRefusal(presented.id, check)
    return check.token
  }

  async #join(presented: { id: string; secret: string }, request: JoinRequest): Promise<JoinAnswer> {
    const token = await this.#authenticate(presented)
    const { nodeName, labels } = request
    const nodeExists = await this.#registry.get(nodesInfo, undefined, nodeName).then(() => true, (e) => {
      if (e instanceof ApiError && e.reason === 'NotFound') return false
      throw e
    })
    const credentialExists = (await this.#registry.list(secretsInfo, credentialNamespace)).items.some((s) => credentialNode(s) === nodeName)
    const plan = planJoin({ token, request, nodeExists, credentialExists })
    if (plan instanceof ApiError) throw plan
    let node: KubeObject
    try {
      node = await this.#registry.create(nodesInfo, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName, labels }, spec: {} })
    } catch (e) {
      if (e instanceof ApiError && e.reason === 'AlreadyExists') throw alreadyJoined(nodeName)
      throw e
    }
    try {
      const owner = { name: nodeName, uid: node.metadata.uid! }
      const nodeToken = await this.#issue({ name: `${nodeUserPrefix}${nodeName}`, groups: [groups.nodes] }, owner, presented.id)
      const answer: JoinAnswer = { nodeName, token: nodeToken }
      if (plan.ingressClass) {
        const token = await this.#issue({ name: `${ingressUserPrefix}${plan.ingressClass}`, groups: [groups.ingress] }, owner, presented.id)
        answer.ingress = { className: plan.ingressClass, token }
      }
      this.#log.info({ node: nodeName, bootstrapToken: presented.id, ingressClass: plan.ingressClass }, 'node joined')
      return answer
    } catch (e) {
      // No half-joined node: deleting the Node also collects any credential already made.
      await this.#registry.delete(nodesInfo, undefined, nodeName).catch(() => undefined)
      throw e
    }
  }

  async #issue(user: { name: string; groups: string[] }, node: { name: string; uid: string }, bootstrapTokenId: string): Promise<string> {
    const c = newCredential()
    const secret = buildCredentialSecret({ id: c.id, digest: c.digest, user: { ...user, uid: `skiff-credential-${c.id}` }, node, bootstrapTokenId })
    this.#credentials.remember(await this.#registry.create(secretsInfo, credentialNamespace, secret))
    return c.token
  }

  async kubeletCertificate(req: IncomingMessage, res: ServerResponse, user: UserInfo): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${kubeletCertificatePath}; POST { publicKeyPem, ipAddresses, dnsNames }`)
    const node = nodeNameOf(user)
    if (!node) throw new ApiError('Forbidden', `User "${user.name}" may not request a kubelet serving certificate: only node identities (system:node:<name> in system:nodes) may`)
    if (!this.#ca) throw new ApiError('ServiceUnavailable', 'this apiserver has no cluster CA to sign kubelet certificates with')
    const r = parseKubeletCertRequest(parseJson(await readBody(req, maxJoinBody)))
    let certPem: string
    try {
      certPem = signServingCert(this.#ca, { publicKeyPem: r.publicKeyPem, commonName: user.name, organization: groups.nodes, ipAddresses: r.ipAddresses, dnsNames: r.dnsNames, days: 365 })
    } catch (e) {
      throw new ApiError('Invalid', `kubelet certificate request is invalid: publicKeyPem: ${(e as Error).message}`, { kind: 'kubelet-certificate', causes: [{ field: 'publicKeyPem', reason: 'FieldValueInvalid', message: (e as Error).message }] })
    }
    this.#log.info({ node, ipAddresses: r.ipAddresses, dnsNames: r.dnsNames }, 'kubelet serving certificate issued')
    sendJson(res, 200, { certPem, caPem: this.#ca.certPem })
  }
}
