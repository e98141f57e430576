// The cluster CA: one self-signed root that every Skiff TLS server certificate
// chains to, so kubectl, agents and the dashboard trust the cluster by trusting
// one file (the kubeconfig's certificate-authority-data).
//
// Keys come from node:crypto; certificates are built with node-forge, because
// Node can verify X.509 but not create it. forge can only sign with RSA and
// can only encode RSA public keys, so both the CA key and the serving keys are
// RSA 2048 (see README.md).

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import forge from 'node-forge'

export interface ClusterCA {
  certPem: string
  keyPem: string
  /** The parsed CA certificate, ready to be an issuer. */
  cert: forge.pki.Certificate
}

export interface ServingCertOptions {
  commonName: string
  dnsNames?: string[]
  ipAddresses?: string[]
  /** Validity in days; 365 unless given. */
  days?: number
}

export interface CertAndKey {
  certPem: string
  keyPem: string
}

export const CA_CERT_FILE = 'ca.crt'
export const CA_KEY_FILE = 'ca.key'
export const CA_COMMON_NAME = 'skiff-ca'
/** The apiserver's client certificate towards kubelet servers: they accept this CN (from the cluster CA) and no other. */
export const APISERVER_KUBELET_CLIENT_CN = 'skiff:apiserver-kubelet-client'
const CA_YEARS = 10
const DEFAULT_SERVING_DAYS = 365
// Backdate notBefore so a peer whose clock is a little behind accepts a
// certificate issued a moment ago.
const CLOCK_SKEW_MS = 60 * 60 * 1000
const DAY_MS = 24 * 60 * 60 * 1000

/** An RSA 2048 key pair: the private key as PKCS#8 PEM, the public one for forge. */
function newKeyPair(): { keyPem: string; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  }
}

// 128 random bits, kept positive and of fixed length: a leading byte of
// 0x40..0x7f is neither a sign bit (negative serial) nor a redundant zero
// (non-minimal DER), both of which strict verifiers reject.
function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] & 0x3f) | 0x40
  return bytes.toString('hex')
}

function validity(cert: forge.pki.Certificate, validForMs: number): void {
  const now = Date.now()
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS)
  cert.validity.notAfter = new Date(now + validForMs)
}

function createCA(): { certPem: string; keyPem: string } {
  const { keyPem, publicKey } = newKeyPair()
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  cert.serialNumber = serialNumber()
  validity(cert, CA_YEARS * 365 * DAY_MS)
  const name = [{ name: 'commonName', value: CA_COMMON_NAME }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

// A reused CA must still be a CA whose key matches it: a mismatched pair would
// only fail later, as TLS errors on every client.
function checkPair(certPem: string, keyPem: string, dir: string): void {
  const x509 = new X509Certificate(certPem)
  if (!x509.ca) throw new Error(`${join(dir, CA_CERT_FILE)} is not a CA certificate`)
  if (!x509.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new Error(`${join(dir, CA_KEY_FILE)} does not match ${join(dir, CA_CERT_FILE)}`)
  }
}

/**
 * Loads the cluster CA from `dir`, or creates it there on first start:
 * `ca.crt` (mode 0644) and `ca.key` (mode 0600). Never overwrites: if only one
 * of the two files exists, it throws instead of replacing a CA that issued
 * certificates still in use.
 */
export async function loadOrCreateCA(dir: string): Promise<ClusterCA> {
  const certPath = join(dir, CA_CERT_FILE)
  const keyPath = join(dir, CA_KEY_FILE)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  let certPem = await readIfExists(certPath)
  let keyPem = await readIfExists(keyPath)
  if (certPem === undefined && keyPem === undefined) {
    ;({ certPem, keyPem } = createCA())
    // 'wx': a concurrent starter that got here first wins; we fail loudly
    // rather than write a second CA over the first.
    await writeFile(keyPath, keyPem, { mode: 0o600, flag: 'wx' })
    await writeFile(certPath, certPem, { mode: 0o644, flag: 'wx' })
  } else if (certPem === undefined || keyPem === undefined) {
    const missing = certPem === undefined ? certPath : keyPath
    throw new Error(`cluster CA is incomplete: ${missing} is missing; restore it or remove both ${CA_CERT_FILE} and ${CA_KEY_FILE}`)
  } else {
    checkPair(certPem, keyPem, dir)
    // A key restored from a backup or copied by hand may have lost its mode.
    if (((await stat(keyPath)).mode & 0o077) !== 0) await chmod(keyPath, 0o600)
  }
  return { certPem, keyPem, cert: forge.pki.certificateFromPem(certPem) }
}

function subjectAltNames(opts: { dnsNames?: string[]; ipAddresses?: string[] }): { type: number; value?: string; ip?: string }[] {
  const dns = (opts.dnsNames ?? []).map((value) => ({ type: 2, value }))
  const ips = (opts.ipAddresses ?? []).map((ip) => {
    if (!isIP(ip)) throw new Error(`issueServingCert: "${ip}" is not an IP address`)
    return { type: 7, ip }
  })
  return [...dns, ...ips]
}

/** What a leaf certificate says: who (CN, O), where (SANs) and for what (TLS server or client). */
interface LeafOptions {
  commonName: string
  /** One O, or several (a user's groups). */
  organization?: string | string[]
  altNames: { type: number; value?: string; ip?: string }[]
  usage: 'server' | 'client'
  days?: number
}

function signLeaf(ca: ClusterCA, publicKey: forge.pki.rsa.PublicKey, opts: LeafOptions): string {
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  cert.serialNumber = serialNumber()
  validity(cert, (opts.days ?? DEFAULT_SERVING_DAYS) * DAY_MS)
  const orgs = opts.organization === undefined ? [] : [opts.organization].flat()
  cert.setSubject([...orgs.map((value) => ({ name: 'organizationName', value })), { name: 'commonName', value: opts.commonName }])
  cert.setIssuer(ca.cert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    opts.usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
    ...(opts.altNames.length ? [{ name: 'subjectAltName', altNames: opts.altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ])
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create())
  return forge.pki.certificateToPem(cert)
}

/**
 * Issues a TLS server certificate signed by the CA, for the given DNS names
 * and IP addresses (clients match only the SANs, never the CN). The returned
 * certPem is the leaf alone; clients trust it through the CA.
 */
export function issueServingCert(ca: ClusterCA, opts: ServingCertOptions): CertAndKey {
  const altNames = subjectAltNames(opts)
  if (altNames.length === 0) throw new Error('issueServingCert: give at least one DNS name or IP address')
  const { keyPem, publicKey } = newKeyPair()
  return { certPem: signLeaf(ca, publicKey, { commonName: opts.commonName, altNames, usage: 'server', days: opts.days }), keyPem }
}

/**
 * A TLS client certificate from the CA (no SANs; the server reads the CN as
 * the user and each O as a group): the apiserver's identity towards node
 * agents, and users made by `skiff user add`.
 */
export function issueClientCert(ca: ClusterCA, opts: { commonName: string; organization?: string | string[]; days?: number }): CertAndKey {
  const { keyPem, publicKey } = newKeyPair()
  return { certPem: signLeaf(ca, publicKey, { ...opts, altNames: [], usage: 'client' }), keyPem }
}

/**
 * A TLS server certificate for a key the requester holds (only its public
 * half travels): a node agent's kubelet serving certificate. RSA only,
 * because forge can encode no other public key.
 */
export function signServingCert(
  ca: ClusterCA,
  opts: { publicKeyPem: string; commonName: string; organization?: string; dnsNames?: string[]; ipAddresses?: string[]; days?: number },
): string {
  const altNames = subjectAltNames(opts)
  if (altNames.length === 0) throw new Error('signServingCert: give at least one DNS name or IP address')
  let key
  try {
    key = createPublicKey(opts.publicKeyPem)
  } catch (e) {
    throw new Error(`the public key is not a PEM public key: ${(e as Error).message}`)
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`the public key is ${key.asymmetricKeyType}; the cluster CA signs RSA keys only`)
  const publicKey = forge.pki.publicKeyFromPem(key.export({ type: 'spki', format: 'pem' }).toString())
  return signLeaf(ca, publicKey, { commonName: opts.commonName, organization: opts.organization, altNames, usage: 'server', days: opts.days })
}

/**
 * The CA pin a join token carries: SHA-256 (hex) of the CA certificate's
 * SubjectPublicKeyInfo in DER, as kubeadm's --discovery-token-ca-cert-hash
 * (without its "sha256:" prefix). It survives re-encoding the PEM and
 * re-issuing the CA with the same key.
 */
export function caHashOf(caPem: string): string {
  const spki = new X509Certificate(caPem).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('hex')
}

/**
 * A self-signed TLS server certificate (no CA), for a server whose clients do
 * not verify it: the ingress fallback certificate, and tests that need a
 * certificate the cluster does not trust.
 */
export function selfSignedCert(opts: ServingCertOptions): CertAndKey {
  const altNames = subjectAltNames(opts)
  if (altNames.length === 0) throw new Error('selfSignedCert: give at least one DNS name or IP address')
  const { keyPem, publicKey } = newKeyPair()
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  cert.serialNumber = serialNumber()
  validity(cert, (opts.days ?? DEFAULT_SERVING_DAYS) * DAY_MS)
  const name = [{ name: 'commonName', value: opts.commonName }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ])
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}
