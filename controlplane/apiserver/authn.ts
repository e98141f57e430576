// Bearer-token authentication from a static token file, in the format of
// kube-apiserver's --token-auth-file: one `token,user,uid,"group1,group2"`
// line per identity. Tokens are kept only as SHA-256 digests and compared in
// constant time against every entry (no early exit), and are never logged.

import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'

export interface UserInfo {
  name: string
  uid: string
  groups: string[]
  /** Extra attributes (a service account token's pod and credential id). */
  extra?: Record<string, string[]>
}

export const groups = {
  admin: 'system:masters',
  nodes: 'system:nodes',
  ingress: 'skiff:ingress-controllers',
  authenticated: 'system:authenticated',
} as const

/** `system:node:<name>` identifies a node agent; `skiff:ingress:<class>` an ingress controller. */
export const nodeUserPrefix = 'system:node:'
export const ingressUserPrefix = 'skiff:ingress:'

interface TokenEntry {
  digest: Buffer
  user: UserInfo
}

export interface TokenLine {
  token: string
  user: string
  uid?: string
  groups: string[]
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** Parse one CSV line; the groups field may be quoted and hold commas. */
export function parseTokenLine(line: string): TokenLine | undefined {
  const trimmed = line.trim()
  if (!trimmed || trimmed.startsWith('#')) return undefined
  const m = /^([^,]+),([^,]+),([^,]*)(?:,"?([^"]*)"?)?$/.exec(trimmed)
  if (!m) throw new Error(`bad token line (want token,user,uid,"groups"): ${trimmed.slice(0, 0)}<redacted>`)
  return { token: m[1]!, user: m[2]!, uid: m[3] || m[2]!, groups: (m[4] ?? '').split(',').map((g) => g.trim()).filter(Boolean) }
}

export function formatTokenLine(t: TokenLine): string {
  return `${t.token},${t.user},${t.uid ?? t.user},"${t.groups.join(',')}"`
}

export class TokenAuthenticator {
  #entries: TokenEntry[]

  constructor(lines: TokenLine[]) {
    this.#entries = lines.map((l) => ({
      digest: digest(l.token),
      user: { name: l.user, uid: l.uid ?? l.user, groups: [...l.groups, groups.authenticated] },
    }))
  }

  static fromFile(path: string): TokenAuthenticator {
    const lines = readFileSync(path, 'utf8').split('\n').map(parseTokenLine).filter((x): x is TokenLine => !!x)
    return new TokenAuthenticator(lines)
  }

  /** The user for an `Authorization: Bearer <token>` header, or undefined. */
  authenticate(header: string | undefined): UserInfo | undefined {
    if (!header) return undefined
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (!m) return undefined
    const d = digest(m[1]!)
    let found: UserInfo | undefined
    for (const e of this.#entries) {
      if (timingSafeEqual(d, e.digest) && !found) found = e.user
    }
    return found
  }
}

/**
 * The user of a verified client certificate (the socket's, checked against
 * the cluster CA during the handshake): CN is the name, each O a group, as
 * kube-apiserver's x509 authenticator reads them. A certificate the CA did
 * not sign, or none, is no user. Certificates are not revocable: they end at
 * their expiry (skiff user add issues them for a year).
 */
export function certificateUser(socket: TLSSocket): UserInfo | undefined {
  if (!socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined
  const subject = socket.getPeerCertificate()?.subject as unknown as Record<string, string | string[]> | undefined
  const cn = subject?.CN
  if (typeof cn !== 'string' || !cn) return undefined
  const orgs = subject!.O === undefined ? [] : [subject!.O].flat()
  return { name: cn, uid: '', groups: [...orgs.filter((o) => o !== groups.authenticated), groups.authenticated] }
}
