// A second version of a stored kind (a resources.ts row with storageVersion):
// requests on it are converted to the stored version, run as requests on that
// version, and the answers converted back. Today one: autoscaling/v1
// HorizontalPodAutoscaler over the stored autoscaling/v2 (api/autoscaling.ts).
// Served: get, list, create, update (and /status), patch (JSON, merge and
// strategic, computed on the v1 form), delete. Watch and server-side apply
// are answered with the stored version only (kubectl uses the preferred v2).

import type { IncomingMessage, ServerResponse } from 'node:http'
import { hpaV1ToV2, hpaV2ToV1 } from '../api/autoscaling.ts'
import { ApiError } from '../api/errors.ts'
import { lookupResource, qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { check } from './authz.ts'
import { matches, parseFilter } from './filters.ts'
import { applyPatch, type HandlerContext } from './handlers.ts'
import { decodeObject, readBody, sendJson, wantsTable } from './http-util.ts'
import { printTable } from '../api/printers.ts'
import type { ResourcePath } from './paths.ts'

interface Converter {
  toStorage(obj: KubeObject): KubeObject
  fromStorage(obj: KubeObject): KubeObject
}

const converters: Record<string, Converter> = {
  'autoscaling/v1/HorizontalPodAutoscaler': { toStorage: hpaV1ToV2, fromStorage: hpaV2ToV1 },
}

export function converterFor(info: ResourceInfo): { storage: ResourceInfo; conv: Converter } {
  const storage = lookupResource(info.group, info.storageVersion!, info.resource)
  const conv = converters[`${info.group}/${info.version}/${info.kind}`]
  if (!storage || !conv) throw new ApiError('InternalError', `no conversion from ${info.group}/${info.version} ${info.kind} to ${info.storageVersion}`)
  return { storage, conv }
}

export async function handleConverted(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  const { storage, conv } = converterFor(p.info)
  const method = req.method ?? 'GET'
  const attrs = (verb: 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete', name = p.name) =>
    ({ verb, resource: qualifiedResource(p.info), subresource: p.subresource, namespace: p.namespace, name })
  if (query.get('watch') === 'true' || p.legacyWatch) throw new ApiError('MethodNotAllowed', `watch is served on ${storage.group}/${storage.version} ${storage.resource}, the stored version`)
  // Tables are printed from the stored form: the columns are the same in every version.
  const table = wantsTable(req, query)
  const print = (objs: KubeObject[], rv: string) => printTable(storage, objs, { includeObject: table ? table.includeObject : 'None', now: new Date(), resourceVersion: rv, context: ctx.print })
  if (method === 'GET' && p.name) {
    check(ctx.user, attrs('get'), ctx.view)
    const obj = await ctx.registry.get(storage, p.namespace, p.name)
    return sendJson(res, 200, table ? print([obj], obj.metadata.resourceVersion ?? '') : conv.fromStorage(obj))
  }
  if (method === 'GET') {
    check(ctx.user, attrs('list'), ctx.view)
    const filter = parseFilter(storage, p.namespace, query)
    const { items, revision } = await ctx.registry.list(storage, p.namespace)
    const selected = items.filter((o) => matches(filter, storage, o))
    if (table) return sendJson(res, 200, print(selected, String(revision)))
    const out = selected.map(conv.fromStorage)
    return sendJson(res, 200, { kind: `${p.info.kind}List`, apiVersion: `${p.info.group}/${p.info.version}`, metadata: { resourceVersion: String(revision) }, items: out })
  }
  if (method === 'POST' && !p.name) {
    const body = decodeObject(req, await readBody(req))
    check(ctx.user, attrs('create', body?.metadata?.name), ctx.view)
    const created = await ctx.registry.create(storage, p.namespace, conv.toStorage(body), { dryRun: query.getAll('dryRun').includes('All') })
    return sendJson(res, 201, conv.fromStorage(created))
  }
  if (method === 'PUT' && p.name) {
    const body = decodeObject(req, await readBody(req))
    check(ctx.user, attrs('update'), ctx.view)
    const updated = await ctx.registry.update(storage, p.namespace, p.name, conv.toStorage(body), { subresource: p.subresource })
    return sendJson(res, 200, conv.fromStorage(updated))
  }
  if (method === 'PATCH' && p.name) {
    check(ctx.user, attrs('patch'), ctx.view)
    const body = await readBody(req)
    const current = await ctx.registry.get(storage, p.namespace, p.name)
    const next = conv.toStorage(applyPatch(req, conv.fromStorage(current), body, p.info.kind))
    const updated = await ctx.registry.updateFrom(storage, current, next, { subresource: p.subresource })
    return sendJson(res, 200, conv.fromStorage(updated))
  }
  if (method === 'DELETE' && p.name) {
    check(ctx.user, attrs('delete'), ctx.view)
    return sendJson(res, 200, conv.fromStorage(await ctx.registry.delete(storage, p.namespace, p.name, {})))
  }
  throw new ApiError('MethodNotAllowed', `${method} is not supported on ${p.info.group}/${p.info.version} ${p.info.resource}`)
}
