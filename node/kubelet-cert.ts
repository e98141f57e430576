// The kubelet server's serving certificate, from the cluster CA: the agent
// makes its own RSA key (it never leaves the node), sends the public half and
// the addresses it serves on to POST /skiff/v1/kubelet-certificate with its
// node identity, and keeps both in <stateDir>/kubelet.crt and kubelet.key
// (0600). A restart reuses them while they still fit: same node, same SANs,
// issued by the CA the agent trusts now, and valid for more than 30 days.

import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isDNS1123Subdomain } from '../controlplane/api/validation/names.ts'
import type { ApiClient } from '../controlplane/client/client.ts'
import type { Logger } from '../lib/log.ts'

export const kubeletCertPath = '/skiff/v1/kubelet-certificate'
const renewBeforeMs = 30 * 24 * 3600 * 1000

export interface KubeletTLS {
  certPem: string
  keyPem: string
  /** The cluster CA: client certificates must chain to it. */
  caPem: string
}

export interface KubeletCertWant {
  nodeName: string
  ipAddresses: string[]
  dnsNames: string[]
}

/** The names a kubelet certificate is for: its addresses, and the node name when it is a DNS name. */
export function kubeletCertWant(nodeName: string, ipAddresses: string[]): KubeletCertWant {
  return { nodeName, ipAddresses: [...new Set(ipAddresses)], dnsNames: isDNS1123Subdomain(nodeName).length ? [] : [nodeName] }
}

function sans(x509: X509Certificate): { ips: string[]; dns: string[] } {
  const ips: string[] = []
  const dns: string[] = []
  for (const part of (x509.subjectAltName ?? '').split(/,\s*/)) {
    if (part.startsWith('IP Address:')) ips.push(part.slice('IP Address:'.length).toLowerCase())
    else if (part.startsWith('DNS:')) dns.push(part.slice('DNS:'.length).toLowerCase())
  }
  return { ips, dns }
}

const sameSet = (a: string[], b: string[]) => a.length === new Set(b).size && new Set([...a, ...b]).size === a.length

/** May a stored certificate and key be served again? Pure, apart from parsing. */
export function checkKubeletCert(stored: { certPem: string; keyPem: string }, caPem: string, want: KubeletCertWant, now: number): { ok: true } | { ok: false; why: string } {
  let x509: X509Certificate
  let ca: X509Certificate
  try {
    x509 = new X509Certificate(stored.certPem)
    ca = new X509Certificate(caPem)
  } catch (e) {
    return { ok: false, why: `unreadable certificate: ${(e as Error).message}` }
  }
  if (!x509.checkIssued(ca) || !x509.verify(ca.publicKey)) return { ok: false, why: 'not issued by the cluster CA' }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(stored.keyPem))) return { ok: false, why: 'the key does not match the certificate' }
  } catch (e) {
    return { ok: false, why: `unreadable key: ${(e as Error).message}` }
  }
  if (!x509.subject.split('\n').includes(`CN=system:node:${want.nodeName}`)) return { ok: false, why: `issued to ${x509.subject.replace(/\n/g, ', ')}, not system:node:${want.nodeName}` }
  const have = sans(x509)
  const ips = want.ipAddresses.map((s) => s.toLowerCase())
  const dns = want.dnsNames.map((s) => s.toLowerCase())
  if (!sameSet(have.ips, ips) || !sameSet(have.dns, dns)) return { ok: false, why: `its names (${[...have.ips, ...have.dns].join(', ')}) are not ${[...ips, ...dns].join(', ')}` }
  if (Date.parse(x509.validTo) - now <= renewBeforeMs) return { ok: false, why: `it expires at ${new Date(x509.validTo).toISOString()}, within 30 days` }
  return { ok: true }
}

async function readIfExists(path: string): Promise<string | undefined> {
  return await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined
    throw e
  })
}

async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, text, { mode: 0o600 })
  await rename(tmp, path)
}

/**
 * The kubelet server's certificate and key, reused from `stateDir` when they
 * still fit, else newly requested from the apiserver with `client` (a node
 * identity) and stored. The CA is the one `client` trusts.
 */
export async function loadOrRequestKubeletCert(o: { client: ApiClient; stateDir: string; nodeName: string; ipAddresses: string[]; logger?: Logger; now?: number }): Promise<KubeletTLS> {
  const caPem = o.client.config.caPem
  const want = kubeletCertWant(o.nodeName, o.ipAddresses)
  const certFile = join(o.stateDir, 'kubelet.crt')
  const keyFile = join(o.stateDir, 'kubelet.key')
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)])
  if (certPem && keyPem) {
    const check = checkKubeletCert({ certPem, keyPem }, caPem, want, o.now ?? Date.now())
    if (check.ok) return { certPem, keyPem, caPem }
    o.logger?.info({ why: check.why }, 'requesting a new kubelet serving certificate')
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const body = { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), ipAddresses: want.ipAddresses, dnsNames: want.dnsNames }
  const answer = (await o.client.call('POST', kubeletCertPath, { body })) as { certPem?: string }
  if (!answer?.certPem) throw new Error(`${kubeletCertPath} answered without a certificate`)
  const check = checkKubeletCert({ certPem: answer.certPem, keyPem: key }, caPem, want, o.now ?? Date.now())
  if (!check.ok) throw new Error(`the apiserver issued a kubelet certificate that does not fit: ${check.why}`)
  await writePrivate(keyFile, key)
  await writePrivate(certFile, answer.certPem)
  return { certPem: answer.certPem, keyPem: key, caPem }
}
