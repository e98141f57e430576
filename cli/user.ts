// `skiff user add NAME [--group G]...`: a kubeconfig for a new user, with a
// client certificate from the cluster CA (CN=NAME, O=each group), printed on
// stdout. The user can do nothing until a RoleBinding or ClusterRoleBinding
// names them (or a group of theirs); `kubectl auth can-i --list` shows what
// they may. It runs where the CA key is: the machine of `skiff server` (or
// `skiff up`), with its --state-dir. Kubernetes does this with a
// CertificateSigningRequest an admin approves; Skiff's CA key is already on
// that machine, so the CLI signs directly. Certificates cannot be revoked:
// they end at their expiry (--days, 365 by default), so bind a group you can
// unbind rather than granting rights to names you cannot take back.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { issueClientCert, loadOrCreateCA } from '../certs/ca.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')

/** Checks NAME and the groups; an error says what is wrong. Pure. */
export function checkUser(name: string, groups: string[]): void {
  const bad = (what: string, v: string) => new Error(`${what} ${JSON.stringify(v)} cannot be a certificate subject: use printable characters without commas, quotes or slashes`)
  const ok = (v: string) => /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(v) && !/[,"/\\+=<>;]/.test(v)
  if (!ok(name)) throw bad('user name', name)
  for (const g of groups) if (!ok(g)) throw bad('group', g)
  if (name.startsWith('system:')) throw new Error(`user name ${JSON.stringify(name)} is reserved (system: names are Kubernetes' own identities); choose another`)
}

/** The kubeconfig of a user with a client certificate. Pure. */
export function renderUserKubeconfig(o: { server: string; caPem: string; user: string; certPem: string; keyPem: string; name?: string }): string {
  const cluster = o.name ?? 'skiff'
  const ctx = `${o.user}@${cluster}`
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: o.server, 'certificate-authority-data': b64(o.caPem) } }],
    users: [{ name: o.user, user: { 'client-certificate-data': b64(o.certPem), 'client-key-data': b64(o.keyPem) } }],
    contexts: [{ name: ctx, context: { cluster, user: o.user, namespace: 'default' } }],
    'current-context': ctx,
    preferences: {},
  })
}

/** Sign a certificate for the user with the CA in `<stateDir>/pki` and render the kubeconfig. */
export async function addUser(o: { stateDir: string; server: string; name: string; groups: string[]; days?: number }): Promise<string> {
  checkUser(o.name, o.groups)
  const pki = join(o.stateDir, 'pki')
  try {
    readFileSync(join(pki, 'ca.key'))
  } catch {
    throw new Error(`no cluster CA key in ${pki}: run skiff user add on the machine of skiff server (or skiff up) with its --state-dir`)
  }
  const ca = await loadOrCreateCA(pki)
  const { certPem, keyPem } = issueClientCert(ca, { commonName: o.name, organization: o.groups, days: o.days ?? 365 })
  return renderUserKubeconfig({ server: o.server, caPem: ca.certPem, user: o.name, certPem, keyPem })
}
