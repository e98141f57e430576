// Kubeconfig in and out: `skiff kubeconfig` prints one the real kubectl uses
// as it is (HTTPS, the cluster CA inline, the admin token); the CLI reads the
// same format so `--kubeconfig` works with either tool's files.

import { readFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import type { ClientConfig } from '../controlplane/client/client.ts'

export function renderKubeconfig(c: { server: string; caPem: string; token: string; name?: string }): string {
  const name = c.name ?? 'skiff'
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: c.server, 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') } }],
    users: [{ name: `${name}-admin`, user: { token: c.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  })
}

export function readKubeconfig(path: string): ClientConfig & { namespace?: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new Error(`cannot read kubeconfig ${path}: ${(e as Error).message}`)
  }
  return parseKubeconfigText(text, path)
}

export function parseKubeconfigText(text: string, path = 'kubeconfig'): ClientConfig & { namespace?: string } {
  let doc: any
  try {
    doc = parse(text)
  } catch (e) {
    throw new Error(`cannot read kubeconfig ${path}: ${(e as Error).message}`)
  }
  const ctxName = doc?.['current-context']
  const ctx = doc?.contexts?.find((c: any) => c.name === ctxName)?.context
  const cluster = doc?.clusters?.find((c: any) => c.name === ctx?.cluster)?.cluster
  const user = doc?.users?.find((u: any) => u.name === ctx?.user)?.user
  if (!cluster?.server || !user?.token) throw new Error(`kubeconfig ${path}: the current context needs a cluster server and a user token`)
  const caPem = cluster['certificate-authority-data']
    ? Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8')
    : readFileSync(cluster['certificate-authority'], 'utf8')
  return { server: cluster.server, caPem, token: user.token, namespace: ctx?.namespace }
}
