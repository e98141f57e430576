// The agent side of joining (node/join.ts): where `skiff agent` takes the
// node identity from, the server URL rule, the CA pin (kubeadm's SPKI hash)
// and the messages for a CA mismatch and a refused credential.

import t from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateCA } from '../../certs/ca.ts'
import { caHashMismatch, caHashOf, checkServerURL, chooseNodeIdentity, credentialRefused, parseJoinToken } from '../../node/join.ts'

t.test('chooseNodeIdentity', async (t) => {
  const dir = '/s/agents/n1'
  type Case = { name: string; files?: string[]; kubeconfig?: string; server?: string; token?: string; want: string | RegExp }
  const cases: Case[] = [
    { name: 'explicit --kubeconfig', kubeconfig: '/k', files: [`${dir}/node.kubeconfig`], want: 'kubeconfig:/k' },
    { name: 'a restart reuses the joined credential', files: [`${dir}/node.kubeconfig`, `${dir}/kubeconfig`], want: 'join' },
    { name: 'a restart with the flags still given reuses it too', files: [`${dir}/node.kubeconfig`], server: 'https://s:6443', token: 'T', want: 'join' },
    { name: 'first start with --server/--token joins', server: 'https://s:6443', token: 'T', want: 'join' },
    { name: '--server/--token win over the static kubeconfig', files: [`${dir}/kubeconfig`], server: 'https://s:6443', token: 'T', want: 'join' },
    { name: 'skiff up\'s static kubeconfig', files: [`${dir}/kubeconfig`], want: `kubeconfig:${dir}/kubeconfig` },
    { name: 'nothing at all', want: /this node has no identity yet .*pass --server https:\/\/<server>:6443 and --token <token>; get a token with `skiff token create` on the server/ },
    { name: '--server alone', server: 'https://s:6443', want: /--server and --token go together/ },
    { name: '--token alone', token: 'T', want: /--server and --token go together/ },
    { name: '--kubeconfig and a join', kubeconfig: '/k', server: 'https://s:6443', token: 'T', want: /pass one of them/ },
  ]
  for (const c of cases) {
    const files = new Set(c.files ?? [])
    const run = () => chooseNodeIdentity({ agentDir: dir, kubeconfig: c.kubeconfig, server: c.server, token: c.token, exists: (p) => files.has(p) })
    if (c.want instanceof RegExp) t.throws(run, c.want, c.name)
    else {
      const r = run()
      t.equal(r.kind === 'kubeconfig' ? `kubeconfig:${r.path}` : r.kind, c.want, c.name)
    }
  }
})

t.test('checkServerURL: https only', async (t) => {
  t.equal(checkServerURL('https://10.0.0.1:6443').origin, 'https://10.0.0.1:6443')
  t.throws(() => checkServerURL('http://10.0.0.1:6443'), /must be an https:\/\/ URL/)
  t.throws(() => checkServerURL('10.0.0.1:6443'), /must be an https:\/\/ URL|is not a URL/)
  t.throws(() => checkServerURL('not a url'), /is not a URL: give the apiserver as https:\/\/host:6443/)
})

t.test('caHashOf is SHA-256 of the CA\'s SubjectPublicKeyInfo, as kubeadm pins it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-join-ca-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ca = await loadOrCreateCA(dir)
  const spki = new X509Certificate(ca.certPem).publicKey.export({ type: 'spki', format: 'der' })
  const hash = caHashOf(ca.certPem)
  t.equal(hash, createHash('sha256').update(spki).digest('hex'))
  t.match(hash, /^[0-9a-f]{64}$/)
  t.equal(caHashOf(ca.certPem.replace(/\n/g, '\r\n')), hash, 'the PEM\'s encoding does not matter')
  t.equal(parseJoinToken(`K10${hash}::abcdef.0123456789abcdef`).caHash, hash, 'a token carries it')
})

t.test('messages', async (t) => {
  const m = caHashMismatch('a'.repeat(64), 'b'.repeat(64), 'https://10.0.0.1:6443').message
  t.match(m, `the cluster CA of https://10.0.0.1:6443 has hash ${'b'.repeat(64)}, but the token pins ${'a'.repeat(64)}`)
  t.match(m, 'Check --server')
  const joined = credentialRefused({ nodeName: 'web-1', agentDir: '/s/agents/web-1', source: { kind: 'join' } }).message
  t.match(joined, 'the node was deleted (kubectl delete node web-1) or its credential revoked')
  t.match(joined, 'remove /s/agents/web-1/node.kubeconfig and /s/agents/web-1/ingress.kubeconfig and start skiff agent --server <url> --token <token>')
  t.match(credentialRefused({ nodeName: 'web-1', agentDir: '/a', source: { kind: 'kubeconfig', path: '/k' } }).message, 'the node identity in /k (401)')
})
