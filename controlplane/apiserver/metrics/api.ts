// metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics, answered from the
// scraper's store as metrics-server answers them: get and list (label and
// field selectors of the Node or Pod), JSON only, no watch. An object whose
// series has fewer than two samples is not there yet (404 on get, left out of
// lists), which kubectl top reports as "metrics not available yet".

import type { IncomingMessage, ServerResponse } from 'node:http'
import { ApiError } from '../../api/errors.ts'
import { lookupResource, qualifiedResource } from '../../api/resources.ts'
import type { KubeObject } from '../../api/types.ts'
import { check } from '../authz.ts'
import { matches, parseFilter } from '../filters.ts'
import type { HandlerContext } from '../handlers.ts'
import { sendJson } from '../http-util.ts'
import type { ResourcePath } from '../paths.ts'
import { formatCpu, formatMemory, goDuration, type MetricsStore, type Usage } from './points.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const podsInfo = lookupResource('', 'v1', 'pods')!
export const metricsGroupVersion = 'metrics.k8s.io/v1beta1'

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')

function usageJson(u: Pick<Usage, 'cpuNano' | 'memoryBytes'>): Record<string, string> {
  return { cpu: formatCpu(u.cpuNano), memory: formatMemory(u.memoryBytes) }
}

/** A Node's NodeMetrics, or undefined before it has two samples. Pure. */
export function buildNodeMetrics(node: KubeObject, usage: Usage | undefined, now: number): KubeObject | undefined {
  if (!usage) return undefined
  return {
    kind: 'NodeMetrics',
    apiVersion: metricsGroupVersion,
    metadata: { name: node.metadata.name, creationTimestamp: iso(now), ...(node.metadata.labels ? { labels: node.metadata.labels } : {}) },
    timestamp: iso(usage.timestampMs),
    window: goDuration(usage.windowMs),
    usage: usageJson(usage),
  }
}

/** A Pod's PodMetrics, or undefined before every container has two samples. Pure. */
export function buildPodMetrics(pod: KubeObject, m: ReturnType<MetricsStore['pod']>, now: number): KubeObject | undefined {
  if (!m) return undefined
  return {
    kind: 'PodMetrics',
    apiVersion: metricsGroupVersion,
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, creationTimestamp: iso(now), ...(pod.metadata.labels ? { labels: pod.metadata.labels } : {}) },
    timestamp: iso(m.timestampMs),
    window: goDuration(m.windowMs),
    containers: m.containers.map((c) => ({ name: c.name, usage: usageJson(c.usage) })),
  }
}

/** GET on nodes.metrics.k8s.io or pods.metrics.k8s.io (handlers.ts routes the group here). */
export async function handleMetrics(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  if ((req.method ?? 'GET') !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on ${qualifiedResource(p.info)}: metrics are read-only`)
  if (query.get('watch') === 'true' || p.legacyWatch) throw new ApiError('MethodNotAllowed', `watch is not supported on ${qualifiedResource(p.info)}`)
  check(ctx.user, { verb: p.name ? 'get' : 'list', resource: qualifiedResource(p.info), namespace: p.namespace, name: p.name }, ctx.view)
  const store = ctx.metrics
  if (!store) throw new ApiError('ServiceUnavailable', 'this apiserver scrapes no metrics (it has no kubelet client certificate)')
  const now = Date.now()
  const isNodes = p.info.resource === 'nodes'
  const base = isNodes ? nodesInfo : podsInfo
  const build = (o: KubeObject) => (isNodes ? buildNodeMetrics(o, store.node(o.metadata.name!), now) : buildPodMetrics(o, store.pod(o.metadata.namespace!, o.metadata.name!), now))
  if (p.name) {
    const obj = await ctx.registry.get(base, p.namespace, p.name).catch(() => undefined)
    const m = obj && build(obj)
    if (!m) throw new ApiError('NotFound', `${qualifiedResource(p.info)} "${p.name}" not found`, { kind: p.info.resource, name: p.name, group: p.info.group })
    return sendJson(res, 200, m)
  }
  const filter = parseFilter(base, p.namespace, query)
  const { items } = await ctx.registry.list(base, p.namespace)
  const out = items.filter((o) => matches(filter, base, o)).map(build).filter((x): x is KubeObject => !!x)
  sendJson(res, 200, { kind: `${p.info.kind}List`, apiVersion: metricsGroupVersion, metadata: {}, items: out })
}
