// When a stored kubelet serving certificate may be served again
// (node/kubelet-cert.ts checkKubeletCert): same node, same names, the CA the
// agent trusts now, its own key, and more than 30 days left.

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateCA, signServingCert } from '../../certs/ca.ts'
import { checkKubeletCert, kubeletCertWant } from '../../node/kubelet-cert.ts'

const day = 24 * 3600 * 1000

t.test('kubeletCertWant: the addresses, and the node name when it is a DNS name', async (t) => {
  t.same(kubeletCertWant('web-1', ['10.0.0.5', '10.0.0.5']), { nodeName: 'web-1', ipAddresses: ['10.0.0.5'], dnsNames: ['web-1'] })
  t.same(kubeletCertWant('Web_1', ['10.0.0.5']).dnsNames, [])
})

t.test('checkKubeletCert', async (t) => {
  const dirs = await Promise.all([mkdtemp(join(tmpdir(), 'skiff-kc-a-')), mkdtemp(join(tmpdir(), 'skiff-kc-b-'))])
  t.teardown(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))
  const [ca, otherCA] = await Promise.all(dirs.map((d) => loadOrCreateCA(d)))
  const pair = () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
  }
  const k = pair()
  const sign = (o: { by?: typeof ca; cn?: string; ips?: string[]; dns?: string[]; days?: number } = {}) =>
    signServingCert(o.by ?? ca!, { publicKeyPem: k.publicKeyPem, commonName: o.cn ?? 'system:node:web-1', organization: 'system:nodes', ipAddresses: o.ips ?? ['10.0.0.5'], dnsNames: o.dns ?? ['web-1'], days: o.days ?? 365 })
  const want = kubeletCertWant('web-1', ['10.0.0.5'])
  const now = Date.now()
  const cases: Array<{ name: string; certPem: string; keyPem?: string; want?: typeof want; now?: number; ok: boolean | RegExp }> = [
    { name: 'fits', certPem: sign(), ok: true },
    { name: 'the address changed', certPem: sign(), want: kubeletCertWant('web-1', ['10.0.0.6']), ok: /its names \(10\.0\.0\.5, web-1\) are not 10\.0\.0\.6, web-1/ },
    { name: 'an extra name', certPem: sign({ ips: ['10.0.0.5', '127.0.0.1'] }), ok: /are not/ },
    { name: 'another node', certPem: sign({ cn: 'system:node:web-2' }), ok: /not system:node:web-1/ },
    { name: 'another CA', certPem: sign({ by: otherCA }), ok: /not issued by the cluster CA/ },
    { name: 'not its key', certPem: sign(), keyPem: pair().keyPem, ok: /the key does not match/ },
    { name: '31 days left', certPem: sign({ days: 365 }), now: now + 333 * day, ok: true },
    { name: '29 days left', certPem: sign({ days: 365 }), now: now + 336 * day, ok: /within 30 days/ },
    { name: 'garbage', certPem: 'not a certificate', ok: /unreadable certificate/ },
  ]
  for (const c of cases) {
    const r = checkKubeletCert({ certPem: c.certPem, keyPem: c.keyPem ?? k.keyPem }, ca!.certPem, c.want ?? want, c.now ?? now)
    if (c.ok === true) t.ok(r.ok, `${c.name}: ${r.ok ? '' : r.why}`)
    else t.match(r.ok ? 'ok' : r.why, c.ok, c.name)
  }
})
