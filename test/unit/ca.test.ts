// The cluster CA: created once, reused after, and good enough that a real TLS
// client trusting only the CA reaches a server using an issued certificate.

import t from 'tap'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdtemp, rm, stat, writeFile, chmod, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issueClientCert, issueServingCert, loadOrCreateCA, selfSignedCert, signServingCert, type ClusterCA } from '../../certs/ca.ts'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-ca-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// Key generation is the slow part, so the tests that only issue share one CA.
let shared: { dir: string; ca: ClusterCA } | undefined
async function sharedCA(): Promise<ClusterCA> {
  if (!shared) {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-ca-shared-'))
    shared = { dir, ca: await loadOrCreateCA(dir) }
  }
  return shared.ca
}
t.teardown(async () => {
  if (shared) await rm(shared.dir, { recursive: true, force: true })
})

t.test('first start creates ca.crt and a 0600 ca.key; the next start reuses them', async (t) => {
  const dir = await tempDir(t)
  const ca = await loadOrCreateCA(join(dir, 'pki'))
  t.equal((await stat(join(dir, 'pki', 'ca.key'))).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'pki', 'ca.crt'))).mode & 0o777, 0o644)
  t.equal(await readFile(join(dir, 'pki', 'ca.crt'), 'utf8'), ca.certPem)

  const x509 = new X509Certificate(ca.certPem)
  t.ok(x509.ca, 'basicConstraints CA')
  t.equal(x509.subject, 'CN=skiff-ca')
  t.ok(x509.checkIssued(x509) && x509.verify(x509.publicKey), 'self-signed')
  const years = (Date.parse(x509.validTo) - Date.now()) / (365 * 24 * 3600 * 1000)
  t.ok(years > 9.9 && years <= 10.01, `valid for 10 years (${years.toFixed(2)})`)
  t.ok(x509.checkPrivateKey(createPrivateKey(ca.keyPem)))
  t.equal(ca.cert.subject.getField('CN').value, 'skiff-ca', 'forge view of the same cert')

  const again = await loadOrCreateCA(join(dir, 'pki'))
  t.equal(again.certPem, ca.certPem)
  t.equal(again.keyPem, ca.keyPem)
})

t.test('a reused key gets its 0600 mode back', async (t) => {
  const dir = await tempDir(t)
  await loadOrCreateCA(dir)
  await chmod(join(dir, 'ca.key'), 0o644)
  await loadOrCreateCA(dir)
  t.equal((await stat(join(dir, 'ca.key'))).mode & 0o777, 0o600)
})

t.test('an incomplete or mismatched CA is refused, never replaced', async (t) => {
  const dir = await tempDir(t)
  const ca = await loadOrCreateCA(dir)
  await rm(join(dir, 'ca.crt'))
  await t.rejects(loadOrCreateCA(dir), /ca\.crt is missing/)
  t.equal(await readFile(join(dir, 'ca.key'), 'utf8'), ca.keyPem, 'key untouched')

  const other = await loadOrCreateCA(await tempDir(t))
  await writeFile(join(dir, 'ca.crt'), other.certPem)
  await t.rejects(loadOrCreateCA(dir), /ca\.key does not match/)
})

t.test('a serving certificate verifies against the CA', async (t) => {
  const ca = await sharedCA()
  const caX509 = new X509Certificate(ca.certPem)
  const served = issueServingCert(ca, {
    commonName: 'skiff-apiserver',
    dnsNames: ['localhost', 'kubernetes.default.svc'],
    ipAddresses: ['127.0.0.1', '::1', '10.96.0.1'],
    days: 30,
  })
  const leaf = new X509Certificate(served.certPem)
  t.ok(leaf.checkIssued(caX509), 'issued by the CA')
  t.ok(leaf.verify(caX509.publicKey), 'signed by the CA key')
  t.notOk(leaf.ca)
  t.ok(leaf.checkPrivateKey(createPrivateKey(served.keyPem)))
  t.same(leaf.keyUsage, [SERVER_AUTH], 'extKeyUsage serverAuth')
  t.equal(leaf.checkHost('localhost'), 'localhost')
  t.equal(leaf.checkHost('kubernetes.default.svc'), 'kubernetes.default.svc')
  t.equal(leaf.checkHost('skiff-apiserver'), undefined, 'the CN is not a SAN')
  t.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1')
  t.equal(leaf.checkIP('::1'), '::1')
  t.equal(leaf.checkIP('10.96.0.1'), '10.96.0.1')
  t.equal(leaf.checkIP('10.96.0.2'), undefined)
  const days = (Date.parse(leaf.validTo) - Date.now()) / (24 * 3600 * 1000)
  t.ok(days > 29.9 && days <= 30.01, `valid for 30 days (${days.toFixed(2)})`)
})

t.test('issueServingCert rejects a certificate nobody could match', async (t) => {
  const ca = await sharedCA()
  t.throws(() => issueServingCert(ca, { commonName: 'x' }), /at least one DNS name or IP/)
  t.throws(() => issueServingCert(ca, { commonName: 'x', ipAddresses: ['localhost'] }), /not an IP address/)
})

t.test('issueClientCert: a client certificate from the CA, identified by CN and O, no SANs', async (t) => {
  const ca = await sharedCA()
  const { certPem, keyPem } = issueClientCert(ca, { commonName: 'skiff:apiserver-kubelet-client', organization: 'skiff:apiservers' })
  const leaf = new X509Certificate(certPem)
  t.equal(leaf.subject, 'O=skiff:apiservers\nCN=skiff:apiserver-kubelet-client')
  t.same(leaf.keyUsage, [CLIENT_AUTH], 'client auth only')
  t.equal(leaf.subjectAltName, undefined)
  t.ok(leaf.checkIssued(new X509Certificate(ca.certPem)) && leaf.verify(new X509Certificate(ca.certPem).publicKey))
  t.ok(leaf.checkPrivateKey(createPrivateKey(keyPem)))
})

t.test('signServingCert: the requester\'s own RSA key, exactly the SANs asked for', async (t) => {
  const ca = await sharedCA()
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const leaf = new X509Certificate(signServingCert(ca, { publicKeyPem, commonName: 'system:node:web-1', organization: 'system:nodes', ipAddresses: ['10.0.0.5'], dnsNames: ['web-1'] }))
  t.equal(leaf.subject, 'O=system:nodes\nCN=system:node:web-1')
  t.equal(leaf.subjectAltName, 'DNS:web-1, IP Address:10.0.0.5')
  t.same(leaf.keyUsage, [SERVER_AUTH])
  t.ok(leaf.checkPrivateKey(privateKey), 'for the key the requester holds')
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.throws(() => signServingCert(ca, { publicKeyPem: ec, commonName: 'x', ipAddresses: ['10.0.0.5'] }), /the public key is ec; the cluster CA signs RSA keys only/)
  t.throws(() => signServingCert(ca, { publicKeyPem: 'nope', commonName: 'x', ipAddresses: ['10.0.0.5'] }), /not a PEM public key/)
  t.throws(() => signServingCert(ca, { publicKeyPem, commonName: 'x' }), /at least one DNS name or IP/)
})

t.test('every certificate issued now is valid on a machine whose clock is 10 minutes behind or ahead (notBefore backdated)', async (t) => {
  const ca = await sharedCA()
  const publicKeyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const issued = {
    'the CA': ca.certPem,
    'a serving certificate': issueServingCert(ca, { commonName: 'x', ipAddresses: ['10.0.0.5'] }).certPem,
    'a client certificate': issueClientCert(ca, { commonName: 'x' }).certPem,
    'a kubelet certificate (signServingCert)': signServingCert(ca, { publicKeyPem, commonName: 'system:node:x', ipAddresses: ['10.0.0.5'] }),
    'a self-signed certificate': selfSignedCert({ commonName: 'x', dnsNames: ['x'] }).certPem,
  }
  const now = Date.now()
  for (const [what, pem] of Object.entries(issued)) {
    const x = new X509Certificate(pem)
    for (const skewMin of [-10, 10]) {
      const then = now + skewMin * 60_000
      t.ok(Date.parse(x.validFrom) <= then && then <= Date.parse(x.validTo), `${what}: valid at ${skewMin > 0 ? '+' : ''}${skewMin} min`)
    }
  }
})

function get(port: number, opts: https.RequestOptions): Promise<{ status?: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ port, path: '/', agent: false, ...opts }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
  })
}

t.test('an https server with an issued cert is reachable by a client trusting only the CA', async (t) => {
  const ca = await sharedCA()
  const { certPem, keyPem } = issueServingCert(ca, { commonName: 'skiff-test', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
  const server = https.createServer({ cert: certPem, key: keyPem }, (_req, res) => res.end('hello over tls'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port

  t.same(await get(port, { host: '127.0.0.1', ca: ca.certPem }), { status: 200, body: 'hello over tls' }, 'by IP')
  t.same(await get(port, { host: '127.0.0.1', servername: 'localhost', ca: ca.certPem }), { status: 200, body: 'hello over tls' }, 'by name')
  await t.rejects(get(port, { host: '127.0.0.1' }), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'not trusted without the CA')
  const stranger = await loadOrCreateCA(await tempDir(t))
  await t.rejects(get(port, { host: '127.0.0.1', ca: stranger.certPem }), 'not trusted by another CA')
})
