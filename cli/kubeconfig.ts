// Kubeconfig in and out: `skiff kubeconfig` prints one the real kubectl uses
// as it is (HTTPS, the cluster CA inline, the admin token); the CLI reads the
// same format so `--kubeconfig` works with either tool's files.

import { readFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import type { ClientConfig } from '../controlplane/client/client.ts'

/**
 * The admin kubeconfig. With `servers` (an HA control plane) every other
 * apiserver gets a cluster and a context of its own, `<name>-2`, `<name>-3`,
 * ...: kubectl talks to one server, so when the current one does not answer,
 * `kubectl --context <name>-2` reaches the next (a comment at the top says
 * so). Skiff's own CLI reads all of them and moves on by itself.
 */
export function renderKubeconfig(c: { server: string; caPem: string; token: string; name?: string; servers?: string[] }): string {
  const name = c.name ?? 'skiff'
  const ca = Buffer.from(c.caPem).toString('base64')
  const all = [c.server, ...(c.servers ?? []).filter((s) => s !== c.server)]
  const entry = (i: number) => (i === 0 ? name : `${name}-${i + 1}`)
  const text = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: all.map((server, i) => ({ name: entry(i), cluster: { server, 'certificate-authority-data': ca } })),
    users: [{ name: `${name}-admin`, user: { token: c.token } }],
    contexts: all.map((_, i) => ({ name: entry(i), context: { cluster: entry(i), user: `${name}-admin`, namespace: 'default' } })),
    'current-context': name,
    preferences: {},
  })
  if (all.length === 1) return text
  const lines = all.map((s, i) => `#   --context ${entry(i)}: ${s}`)
  return `# This cluster has ${all.length} apiservers (an HA control plane); kubectl uses one at a time.\n# If the current one does not answer, pick another:\n${lines.join('\n')}\n${text}`
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
  // The other apiservers of the same cluster (same CA, as renderKubeconfig writes them): the CLI fails over to them.
  const caData = cluster['certificate-authority-data']
  const servers = caData ? (doc.clusters as any[]).filter((c) => c?.cluster?.['certificate-authority-data'] === caData && c.cluster.server).map((c) => String(c.cluster.server)) : []
  return { server: cluster.server, caPem, token: user.token, namespace: ctx?.namespace, ...(servers.length > 1 ? { servers } : {}) }
}
