// `skiff logs --previous-pods`: the logs of pods that were deleted or
// replaced, kept by each node agent for its retention (node/pod-log-store.ts)
// and read through the apiserver's nodes/proxy (GET
// /api/v1/nodes/NODE/proxy/podLogs/...; the caller needs get on nodes/proxy).
// Every Ready node's list is read, the entries the query selects kept (a pod
// name or regular expression on names; for TYPE/NAME and -l the labels the
// agent stored with the log), and their lines printed in the usual format,
// oldest archive first, the pod shown as `NAME (deleted)`.
//
// selectArchived and the line decoration are pure (test/unit/cli-logs-archive.test.ts).

import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { matchesLabels, parseLabelSelector } from '../controlplane/api/selectors.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import type { ArchiveEntry } from '../node/pod-log-archive.ts'
import { formatLine, splitTimestamp, type ContainerRef, type FormatOptions, type PodQuery } from './logs.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!

/** One archived container as a node's GET /podLogs/ lists it (the agent's wire format). */
export type ArchivedEntry = ArchiveEntry

export interface ArchiveQuery {
  query: PodQuery
  /** The owner's selector (TYPE/NAME) or -l. */
  selector?: string
  container?: RegExp
  /** UIDs of pods that still exist: their old runs are not "previous pods". */
  livePods: ReadonlySet<string>
}

/** The entries a query selects, oldest archive first. Pure. */
export function selectArchived(entries: readonly ArchivedEntry[], q: ArchiveQuery): ArchivedEntry[] {
  const sel = q.selector ? parseLabelSelector(q.selector) : undefined
  return entries
    .filter((e) => !q.livePods.has(e.uid))
    .filter((e) => (q.query.kind === 'pod' ? e.pod === q.query.name : q.query.kind === 'regex' ? q.query.regex.test(e.pod) : true))
    .filter((e) => !sel || matchesLabels(sel, e.labels))
    .filter((e) => !q.container || q.container.test(e.container))
    .sort((a, b) => (a.archivedAt < b.archivedAt ? -1 : a.archivedAt > b.archivedAt ? 1 : 0))
}

/** How an archived pod is shown: `NAME (deleted)`; in JSON the name stays and `deleted: true` is added. Pure. */
export function formatArchivedLine(e: ArchivedEntry, raw: string, fmt: FormatOptions): string {
  const line = splitTimestamp(raw)
  if (fmt.output === 'json') {
    const ref: ContainerRef = { namespace: e.namespace, pod: e.pod, container: e.container }
    return JSON.stringify({ ...JSON.parse(formatLine(ref, line, fmt, e.node)), deleted: true, podUID: e.uid })
  }
  return formatLine({ namespace: e.namespace, pod: `${e.pod} (deleted)`, container: e.container }, line, fmt, e.node)
}

function ready(node: KubeObject): boolean {
  return ((node.status?.conditions ?? []) as Array<{ type?: string; status?: string }>).some((c) => c.type === 'Ready' && c.status === 'True')
}

const proxyBase = (node: string) => `/api/v1/nodes/${encodeURIComponent(node)}/proxy/podLogs/`

/** Every Ready node's archive list (a node that fails is noticed and skipped; 403 throws: the caller lacks nodes/proxy). */
async function listArchives(client: ApiClient, namespace: string | undefined, notice: (line: string) => void): Promise<ArchivedEntry[]> {
  const nodes = (await client.list(nodesInfo)).items.filter(ready)
  const lists = await Promise.all(nodes.map(async (n) => {
    try {
      const body = await client.call('GET', proxyBase(n.metadata.name!), { query: namespace ? { namespace } : {} })
      return ((typeof body === 'object' ? body?.items : undefined) ?? []) as ArchivedEntry[]
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 403) throw new Error(`--previous-pods reads the nodes' log archives through nodes/proxy, which you may not get: ${e.message}`)
      notice(`! node ${n.metadata.name}: archived logs not readable: ${(e as Error).message}`)
      return []
    }
  }))
  return lists.flat()
}

/** Prints the selected archived logs once (tailLines/sinceSeconds as for live pods). */
export async function printArchivedLogs(
  client: ApiClient,
  o: ArchiveQuery & { namespace?: string; tail?: number; sinceSeconds?: number; fmt: FormatOptions },
  write: (line: string) => void,
  notice: (line: string) => void,
): Promise<void> {
  const entries = selectArchived(await listArchives(client, o.namespace, notice), o)
  for (const e of entries) {
    const query: Record<string, string | undefined> = { timestamps: 'true' }
    if (o.tail !== undefined && o.tail >= 0) query.tailLines = String(o.tail)
    if (o.sinceSeconds !== undefined) query.sinceSeconds = String(o.sinceSeconds)
    const path = `${proxyBase(e.node)}${[e.namespace, e.pod, e.uid, e.container].map(encodeURIComponent).join('/')}`
    let text: string
    try {
      text = String(await client.call('GET', path, { query, accept: 'text/plain' }))
    } catch (err) {
      // Pruned between the list and the read: nothing to print.
      if (!(err instanceof ApiClientError && err.status === 404)) notice(`! ${e.pod} (deleted) › ${e.container}: ${(err as Error).message}`)
      continue
    }
    for (const raw of text.split('\n')) if (raw !== '') write(formatArchivedLine(e, raw, o.fmt))
  }
}
