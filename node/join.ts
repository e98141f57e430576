// The agent side of joining (k3s' dance, kubeadm's CA hash): the join token
// `K10<CA hash>::<id>.<secret>` pins the cluster CA, so the agent
//   1. fetches /cacerts without verification (https only, 10 s timeout),
//   2. refuses a CA whose SubjectPublicKeyInfo hash differs from the token's,
//   3. only then sends the bootstrap token, to POST /skiff/v1/join over TLS
//      verified against that CA, and gets its own credentials back.
// loadOrJoin keeps them in <agentDir>/node.kubeconfig (and ingress.kubeconfig
// for a node of an ingress pool), 0600, so a restart reuses them instead of
// joining again.

import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { request } from 'node:https'
import { join } from 'node:path'
import { parseJoinToken } from '../controlplane/api/bootstrap-token.ts'
import type { ClientConfig } from '../controlplane/client/client.ts'
import type { ServerJoinBundle } from '../controlplane/apiserver/join.ts'
import { caHashOf } from '../certs/ca.ts'
import { readKubeconfig, renderKubeconfig } from '../cli/kubeconfig.ts'

export { parseJoinToken } from '../controlplane/api/bootstrap-token.ts'
export { caHashOf } from '../certs/ca.ts'

export const nodeKubeconfigFile = 'node.kubeconfig'
export const ingressKubeconfigFile = 'ingress.kubeconfig'
const fetchTimeoutMs = 10_000
const newTokenHint = 'get a token with `skiff token create` on the server'

export interface JoinOptions {
  /** The apiserver, https://host:port. */
  server: string
  /** The join token K10<CA hash>::<id>.<secret>. */
  token: string
  nodeName: string
  labels?: Record<string, string>
}

export interface JoinResult {
  server: string
  caPem: string
  nodeName: string
  /** The node credential (user system:node:<name>). */
  token: string
  /** The ingress credential (user skiff:ingress:<class>), when the labels put the node in a pool the token allows. */
  ingress?: { className: string; token: string }
}

export interface NodeIdentity {
  node: ClientConfig
  ingress?: ClientConfig
  /** True when this call joined; false when the files of an earlier join were reused. */
  joined: boolean
}

/** An https:// URL for the apiserver, or a clear error. */
export function checkServerURL(server: string): URL {
  let url: URL
  try {
    url = new URL(server)
  } catch {
    throw new Error(`--server ${JSON.stringify(server)} is not a URL: give the apiserver as https://host:6443`)
  }
  if (url.protocol !== 'https:') throw new Error(`--server ${server} must be an https:// URL (the apiserver speaks TLS only)`)
  return url
}

/** The two hashes side by side, and what to do. */
export function caHashMismatch(fromToken: string, fromServer: string, server: string): Error {
  return new Error(
    `the cluster CA of ${server} has hash ${fromServer}, but the token pins ${fromToken}: the token belongs to another cluster, or something between you and the server answered. Check --server, and ${newTokenHint} you mean to join`,
  )
}

function httpsCall(url: URL, o: { method: string; ca?: string; verify: boolean; headers?: Record<string, string>; body?: string }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: o.method,
        ca: o.ca,
        rejectUnauthorized: o.verify,
        timeout: fetchTimeoutMs,
        agent: false,
        headers: { ...o.headers, ...(o.body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) } : {}) },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${fetchTimeoutMs / 1000} s`)))
    req.on('error', reject)
    req.end(o.body)
  })
}

function statusMessage(text: string): string {
  try {
    const s = JSON.parse(text)
    if (s?.kind === 'Status' && s.message) return s.message
  } catch {
    /* not a Status */
  }
  return text.trim().slice(0, 500)
}

/** GET /cacerts without verification, and check it against the token's pin. */
async function fetchPinnedCA(base: URL, caHash: string): Promise<string> {
  const url = new URL('/cacerts', base)
  let r: { status: number; text: string }
  try {
    r = await httpsCall(url, { method: 'GET', verify: false })
  } catch (e) {
    throw new Error(`cannot reach ${base.origin}/cacerts: ${(e as Error).message}; check --server and that skiff server runs there`)
  }
  if (r.status !== 200) throw new Error(`${base.origin}/cacerts answered HTTP ${r.status}: is ${base.origin} a Skiff apiserver?`)
  let hash: string
  try {
    if (!new X509Certificate(r.text).ca) throw new Error('the certificate is not a CA')
    hash = caHashOf(r.text)
  } catch (e) {
    throw new Error(`${base.origin}/cacerts did not answer a CA certificate (${(e as Error).message}): is ${base.origin} a Skiff apiserver?`)
  }
  if (hash !== caHash) throw caHashMismatch(caHash, hash, base.origin)
  return r.text
}

/**
 * POST `path` with the bootstrap token of a join token, after pinning the
 * cluster CA by the token's hash (the agent's join and a server's join).
 */
async function pinnedPost(server: string, joinToken: string, path: string, body: string): Promise<{ base: URL; caPem: string; r: { status: number; text: string } }> {
  const base = checkServerURL(server)
  const token = parseJoinToken(joinToken)
  const caPem = await fetchPinnedCA(base, token.caHash)
  try {
    const r = await httpsCall(new URL(path, base), {
      method: 'POST',
      ca: caPem,
      verify: true,
      headers: { authorization: `Bearer ${token.id}.${token.secret}`, accept: 'application/json' },
      body,
    })
    return { base, caPem, r }
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      throw new Error(`the apiserver's certificate is not valid for ${base.hostname} (${err.message}): use an address the server's certificate names, or start skiff server with --san ${base.hostname}`)
    }
    throw new Error(`joining through ${base.origin} failed: ${err.message}`)
  }
}

/** Join the cluster at `server` as node `nodeName`; the credentials come back once. */
export async function joinCluster(o: JoinOptions): Promise<JoinResult> {
  const { base, caPem, r } = await pinnedPost(o.server, o.token, '/skiff/v1/join', JSON.stringify({ nodeName: o.nodeName, labels: o.labels ?? {} }))
  if (r.status !== 201) throw new Error(`the apiserver refused to join node ${o.nodeName} (HTTP ${r.status}): ${statusMessage(r.text)}`)
  const answer = JSON.parse(r.text) as { nodeName: string; token: string; ingress?: { className: string; token: string } }
  return { server: base.origin, caPem, nodeName: answer.nodeName, token: answer.token, ingress: answer.ingress }
}

/**
 * `skiff server --join`: the same CA pinning as an agent's join, then POST
 * /skiff/v1/server-join with a server token; the cluster's secrets come back
 * (controlplane/apiserver/join.ts ServerJoinBundle).
 */
export async function fetchServerBundle(o: { server: string; token: string }): Promise<ServerJoinBundle> {
  const { base, caPem, r } = await pinnedPost(o.server, o.token, '/skiff/v1/server-join', '{}')
  if (r.status !== 200) throw new Error(`${base.origin} refused this server's join (HTTP ${r.status}): ${statusMessage(r.text)}`)
  const bundle = JSON.parse(r.text) as ServerJoinBundle
  if (bundle.caCertPem.trim() !== caPem.trim()) throw new Error(`${base.origin} handed out a CA other than the one it serves at /cacerts; refusing it`)
  return bundle
}

async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, text, { mode: 0o600 })
  await rename(tmp, path)
}

/**
 * The node's identity from an earlier join (<agentDir>/node.kubeconfig and
 * ingress.kubeconfig), or a new join with `server` and `token`, written there.
 */
export async function loadOrJoin(o: { agentDir: string; server?: string; token?: string; nodeName: string; labels?: Record<string, string> }): Promise<NodeIdentity> {
  const nodeFile = join(o.agentDir, nodeKubeconfigFile)
  const ingressFile = join(o.agentDir, ingressKubeconfigFile)
  if (existsSync(nodeFile)) {
    return { node: readKubeconfig(nodeFile), ingress: existsSync(ingressFile) ? readKubeconfig(ingressFile) : undefined, joined: false }
  }
  if (!o.server || !o.token) throw new Error(`node ${o.nodeName} has not joined a cluster (no ${nodeFile}): pass --server https://<server>:6443 and --token <token>; ${newTokenHint}`)
  const r = await joinCluster({ server: o.server, token: o.token, nodeName: o.nodeName, labels: o.labels })
  await mkdir(o.agentDir, { recursive: true, mode: 0o700 })
  // The ingress file first: node.kubeconfig is what says "joined".
  if (r.ingress) await writePrivate(ingressFile, renderKubeconfig({ server: r.server, caPem: r.caPem, token: r.ingress.token, name: `ingress-${r.ingress.className}` }))
  await writePrivate(nodeFile, renderKubeconfig({ server: r.server, caPem: r.caPem, token: r.token, name: `node-${r.nodeName}` }))
  return {
    node: { server: r.server, caPem: r.caPem, token: r.token },
    ingress: r.ingress ? { server: r.server, caPem: r.caPem, token: r.ingress.token } : undefined,
    joined: true,
  }
}

export type IdentitySource =
  /** --kubeconfig, or the static <agentDir>/kubeconfig (skiff up writes it). */
  | { kind: 'kubeconfig'; path: string }
  /** loadOrJoin: the files of an earlier join, or a join now with --server/--token. */
  | { kind: 'join' }

/**
 * Where `skiff agent` gets the node identity: an explicit --kubeconfig; else
 * the files of an earlier join (a restart reuses the credential); else a join
 * with --server and --token; else the static <agentDir>/kubeconfig of skiff up.
 */
export function chooseNodeIdentity(o: { agentDir: string; kubeconfig?: string; server?: string; token?: string; exists: (path: string) => boolean }): IdentitySource {
  if (!!o.server !== !!o.token) throw new Error('--server and --token go together: pass both (the token comes from `skiff token create` on the server)')
  if (o.kubeconfig) {
    if (o.server) throw new Error('--kubeconfig and --server/--token are two ways to give the node an identity: pass one of them')
    return { kind: 'kubeconfig', path: o.kubeconfig }
  }
  if (o.exists(join(o.agentDir, nodeKubeconfigFile)) || o.server) return { kind: 'join' }
  const legacy = join(o.agentDir, 'kubeconfig')
  if (o.exists(legacy)) return { kind: 'kubeconfig', path: legacy }
  throw new Error(`this node has no identity yet (no ${join(o.agentDir, nodeKubeconfigFile)}): pass --server https://<server>:6443 and --token <token>; ${newTokenHint}`)
}

/** The error for a node credential the apiserver answers 401 to at start. */
export function credentialRefused(o: { nodeName: string; agentDir: string; source: IdentitySource }): Error {
  if (o.source.kind === 'join') {
    const files = `${join(o.agentDir, nodeKubeconfigFile)} and ${join(o.agentDir, ingressKubeconfigFile)}`
    return new Error(
      `the apiserver refused node ${o.nodeName}'s credential (401): the node was deleted (kubectl delete node ${o.nodeName}) or its credential revoked. To join again, remove ${files} and start skiff agent --server <url> --token <token>; ${newTokenHint}`,
    )
  }
  return new Error(`the apiserver refused the node identity in ${o.source.path} (401): its token is not known to the server; join with --server and --token instead (${newTokenHint})`)
}
