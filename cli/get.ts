// `skiff get`, `describe` and `delete`: server-side Tables rendered like
// kubectl (3-space columns, priority-1 columns with -o wide), YAML/JSON/name
// output, label selectors, all namespaces and watch.

import { stringify } from 'yaml'
import { qualifiedResource, resolveResourceName, type ResourceInfo } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { resourcePath, type ApiClient } from '../controlplane/client/client.ts'
import { refOf } from './apply.ts'

export const tableAccept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json'

export interface GetOptions {
  namespace: string
  allNamespaces?: boolean
  output?: string
  selector?: string
  watch?: boolean
}

export function resolveType(type: string): ResourceInfo {
  const info = resolveResourceName(type)
  if (!info) throw new Error(`the server doesn't have a resource type "${type}"`)
  return info
}

interface Table {
  columnDefinitions: Array<{ name: string; priority: number }>
  rows: Array<{ cells: unknown[]; object?: { metadata?: { namespace?: string } } }>
  metadata: { resourceVersion?: string }
}

export function renderTable(t: Table, opts: { wide: boolean; namespaceColumn: boolean; header?: boolean }): string {
  const cols = t.columnDefinitions.map((c, i) => ({ ...c, i })).filter((c) => opts.wide || c.priority === 0)
  const lines: string[][] = []
  if (opts.header !== false) lines.push([...(opts.namespaceColumn ? ['NAMESPACE'] : []), ...cols.map((c) => c.name.toUpperCase())])
  for (const r of t.rows) {
    const cells = cols.map((c) => cell(r.cells[c.i]))
    lines.push([...(opts.namespaceColumn ? [r.object?.metadata?.namespace ?? ''] : []), ...cells])
  }
  const widths = lines.reduce<number[]>((w, l) => l.map((c, i) => Math.max(w[i] ?? 0, c.length)), [])
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n')
}

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '<none>'
  return String(v)
}

function listPath(info: ResourceInfo, opts: GetOptions, name?: string): string {
  return resourcePath(info, opts.allNamespaces ? undefined : opts.namespace, name)
}

export async function get(client: ApiClient, info: ResourceInfo, names: string[], opts: GetOptions, out: (s: string) => void): Promise<void> {
  const output = opts.output ?? ''
  const query = { labelSelector: opts.selector }
  const structured = output === 'yaml' || output === 'json' || output === 'name'
  const accept = structured ? 'application/json' : tableAccept
  const docs: any[] = []
  if (names.length) for (const n of names) docs.push(await client.call('GET', listPath(info, { ...opts, allNamespaces: false }, n), { accept }))
  else docs.push(await client.call('GET', listPath(info, opts), { accept, query }))
  if (structured) {
    const items = names.length ? docs : docs[0].items.map((o: KubeObject) => ({ apiVersion: docs[0].apiVersion, kind: info.kind, ...o }))
    if (output === 'name') return out(items.map((o: KubeObject) => refOf(info, o.metadata.name!)).join('\n'))
    const value = names.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items }
    return out(output === 'json' ? JSON.stringify(value, null, 4) : stringify(value).trimEnd())
  }
  const table: Table = { ...docs[0], rows: docs.flatMap((d) => d.rows) }
  const nsCol = !!opts.allNamespaces && info.namespaced
  if (table.rows.length === 0 && !opts.watch) {
    process.stderr.write(opts.allNamespaces || !info.namespaced ? 'No resources found\n' : `No resources found in ${opts.namespace} namespace.\n`)
  } else out(renderTable(table, { wide: output === 'wide', namespaceColumn: nsCol }))
  if (opts.watch) await watchRows(client, info, opts, table, out)
}

async function watchRows(client: ApiClient, info: ResourceInfo, opts: GetOptions, table: Table, out: (s: string) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    client.watch(
      listPath(info, opts),
      { resourceVersion: table.metadata.resourceVersion, labelSelector: opts.selector },
      (ev) => {
        if (ev.type === 'ERROR') return reject(new Error((ev.object as any).message))
        if (ev.type === 'BOOKMARK') return
        const t = ev.object as unknown as Table
        out(renderTable(t, { wide: opts.output === 'wide', namespaceColumn: !!opts.allNamespaces && info.namespaced, header: false }))
      },
      (err) => (err ? reject(err) : resolve()),
      tableAccept,
    )
  })
}

export async function describe(client: ApiClient, info: ResourceInfo, ns: string, name: string, out: (s: string) => void): Promise<void> {
  const obj = await client.get(info, info.namespaced ? ns : undefined, name)
  const m = obj.metadata
  const lines = [`Name:         ${m.name}`]
  if (info.namespaced) lines.push(`Namespace:    ${m.namespace}`)
  lines.push(`Kind:         ${info.kind}`, `Labels:       ${kv(m.labels)}`, `Annotations:  ${kv(m.annotations, ['kubectl.kubernetes.io/last-applied-configuration'])}`)
  lines.push(`Created:      ${m.creationTimestamp}`, `UID:          ${m.uid}`)
  for (const part of ['spec', 'data', 'status'] as const) {
    const v = part === 'data' && info.resource === 'secrets' ? redactSecret(obj.data) : obj[part]
    if (v && Object.keys(v).length) lines.push(`${part[0]!.toUpperCase()}${part.slice(1)}:`, indent(stringify(v).trimEnd()))
  }
  const events = await client.call('GET', resourcePath(resolveType('events'), info.namespaced ? ns : 'default'), {
    accept: tableAccept,
    query: { fieldSelector: `involvedObject.name=${name},involvedObject.kind=${info.kind}` },
  })
  lines.push(events.rows.length ? `Events:\n${indent(renderTable(events, { wide: false, namespaceColumn: false }))}` : 'Events:       <none>')
  out(lines.join('\n'))
}

function kv(map: Record<string, string> | undefined, hide: string[] = []): string {
  const entries = Object.entries(map ?? {}).filter(([k]) => !hide.includes(k))
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join('\n              ') : '<none>'
}

function indent(s: string): string {
  return s.split('\n').map((l) => '  ' + l).join('\n')
}

function redactSecret(data: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!data) return undefined
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, `${Buffer.from(v, 'base64').length} bytes`]))
}

export async function deleteNamed(client: ApiClient, info: ResourceInfo, ns: string, name: string): Promise<string> {
  await client.delete(info, info.namespaced ? ns : undefined, name, { propagationPolicy: 'Background' })
  return `${qualifiedResource(info)} "${name}" deleted`
}
