// `skiff token create|list|delete`: join tokens for `skiff agent --server URL
// --token T`, as kubeadm token / k3s token. A token is a bootstrap token
// Secret in kube-system (controlplane/api/bootstrap-token.ts); what users get
// is K10<cluster CA hash>::<id>.<secret>, printed once by create (alone on
// stdout, for scripts). list never shows a secret. Wired into cli/skiff.ts
// with registerTokenCommand(program, client).

import type { Command } from 'commander'
import {
  bootstrapTokenNamespace,
  bootstrapTokenSecretName,
  bootstrapTokenType,
  buildBootstrapTokenSecret,
  formatJoinToken,
  formatTtl,
  generateBootstrapToken,
  parseTtl,
  readBootstrapTokenSecret,
  rfc3339,
  tokenIdOf,
  type BootstrapToken,
} from '../controlplane/api/bootstrap-token.ts'
import { lookupResource } from '../controlplane/api/resources.ts'
import { isDNS1123Subdomain } from '../controlplane/api/validation/names.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import { caHashOf } from '../certs/ca.ts'

const secrets = lookupResource('', 'v1', 'secrets')!
const out = (s: string) => process.stdout.write(s + '\n')

/** `external,internal` → the class names, each checked. */
export function parsePools(raw: string | undefined): string[] {
  const pools = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const p of pools) {
    if (isDNS1123Subdomain(p).length) throw new Error(`--ingress-pools: ${JSON.stringify(p)} is not an ingress class name (lower case letters, digits, '-' and '.')`)
  }
  return [...new Set(pools)]
}

/** The rows of `skiff token list`, oldest expiry last, as kubeadm prints them. Pure. */
export function tokenTable(tokens: BootstrapToken[], now: number): string[] {
  const rows = [['TOKEN', 'TTL', 'EXPIRES', 'USAGES', 'DESCRIPTION', 'POOLS']]
  for (const t of tokens) {
    rows.push([t.id, formatTtl(t, now), t.expiration ? rfc3339(t.expiration) : '<never>', t.server ? 'server,agent' : 'agent', t.description ?? '<none>', t.ingressPools.join(',') || '<none>'])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd())
}

export async function createToken(c: ApiClient, o: { ttl?: string; description?: string; ingressPools?: string; server?: boolean; now?: number }): Promise<string> {
  const ttlMs = parseTtl(o.ttl ?? '24h')
  const ingressPools = parsePools(o.ingressPools)
  const expiration = ttlMs > 0 ? new Date((o.now ?? Date.now()) + ttlMs) : undefined
  // A clash of 6-character ids is rare; a fresh id settles it.
  for (let attempt = 0; ; attempt++) {
    const ref = generateBootstrapToken()
    try {
      await c.create(secrets, bootstrapTokenNamespace, buildBootstrapTokenSecret({ ...ref, expiration, description: o.description, ingressPools, server: o.server }))
      return formatJoinToken(caHashOf(c.config.caPem), ref)
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 409 && attempt < 5)) throw e
    }
  }
}

export async function listTokens(c: ApiClient): Promise<BootstrapToken[]> {
  const list = await c.list(secrets, bootstrapTokenNamespace, { fieldSelector: `type=${bootstrapTokenType}` })
  return list.items
    .map((s) => readBootstrapTokenSecret(s))
    .filter((t): t is BootstrapToken => !!t)
    .sort((a, b) => (a.expiration?.getTime() ?? Infinity) - (b.expiration?.getTime() ?? Infinity) || a.id.localeCompare(b.id))
}

export async function deleteToken(c: ApiClient, idOrToken: string): Promise<string> {
  const id = tokenIdOf(idOrToken)
  if (!id) throw new Error(`${JSON.stringify(idOrToken.slice(0, 12))}... is neither a token id ([a-z0-9]{6}) nor a token: see \`skiff token list\``)
  try {
    await c.delete(secrets, bootstrapTokenNamespace, bootstrapTokenSecretName(id))
  } catch (e) {
    if (e instanceof ApiClientError && e.status === 404) throw new Error(`bootstrap token "${id}" not found: see \`skiff token list\``)
    throw e
  }
  return `bootstrap token "${id}" deleted`
}

export function registerTokenCommand(program: Command, client: () => Promise<{ client: ApiClient }>): void {
  const token = program.command('token').description('join tokens for skiff agent --server URL --token T (like kubeadm token)')
  const withClient = async <T>(fn: (c: ApiClient) => Promise<T>): Promise<T> => {
    const { client: c } = await client()
    try {
      return await fn(c)
    } finally {
      c.close()
    }
  }
  token
    .command('create')
    .description('create a join token and print it (only it, on stdout)')
    .option('--ttl <duration>', 'how long the token works: 24h, 30m, 1h30m; 0 never expires', '24h')
    .option('--description <text>', 'what the token is for (shown by list)')
    .option('--ingress-pools <classes>', 'ingress classes a node joining with it may serve, e.g. external,internal (default none)')
    .option('--server', 'a server token: `skiff server --join URL --token T` receives the cluster CA key, the static tokens and the Secret encryption key with it (keep it short-lived)')
    .action(async (o: { ttl: string; description?: string; ingressPools?: string; server?: boolean }) => {
      // Check the flags before reaching for the cluster.
      parseTtl(o.ttl)
      parsePools(o.ingressPools)
      out(await withClient((c) => createToken(c, o)))
    })
  token
    .command('list')
    .description('list join tokens (ids, never secrets)')
    .action(async () => {
      for (const line of tokenTable(await withClient(listTokens), Date.now())) out(line)
    })
  token
    .command('delete')
    .description('delete a join token: nodes can no longer join with it (nodes that joined stay)')
    .argument('<id|token>', 'the token id, or the whole token')
    .action(async (idOrToken: string) => {
      out(await withClient((c) => deleteToken(c, idOrToken)))
    })
}
