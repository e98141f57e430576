// REST verbs on one resource path: get, list, create, update, patch, delete,
// deletecollection, and the scale subresource. Authorization is checked here
// because some decisions need the stored object (a node may only write the
// status of pods bound to it).

import type { IncomingMessage, ServerResponse } from 'node:http'
import { ApiError } from '../api/errors.ts'
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from '../api/patch.ts'
import { printTable } from '../api/printers.ts'
import type { PrintContext } from '../api/printers/types.ts'
import { groupVersion, qualifiedResource, type ResourceInfo } from '../api/resources.ts'
import { labelSelectorFromObject, selectorToString } from '../api/selectors.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { check as checkAccess, type AuthzView, type RequestAttributes, type Verb } from './authz.ts'
import type { UserInfo } from './authn.ts'
import { matches, paginate, parseFilter } from './filters.ts'
import { enforceFieldValidation, fieldValidationOf, type FieldValidation, type WriteVerb } from './field-validation.ts'
import { decodeObject, mediaType, parseJson, readBody, sendJson, wantsTable } from './http-util.ts'
import type { ResourcePath } from './paths.ts'
import type { DeleteOptions, Registry } from './registry.ts'
import { serveWatch } from './watch.ts'
import { boolParam, intParam } from './query.ts'
import { applyPatchType, serverSideApply } from './server-side-apply.ts'
import { review } from './rbac/reviews.ts'
import type { ServiceAccountTokens } from './serviceaccounts/tokens.ts'
import { handleNodeSubresource, handleNodesProxy, streamSubresources, type NodeProxy } from './node-proxy.ts'
import { handleEviction } from './eviction.ts'
import { handleBinding } from './binding.ts'
import { handleMetrics } from './metrics/api.ts'
import { handleConverted } from './conversion.ts'
import type { MetricsStore } from './metrics/points.ts'
import { jsonOf, streamList, type WatchCache } from './watch-cache.ts'
import { withTypeMeta } from './registry.ts'

export interface HandlerContext {
  registry: Registry
  view: AuthzView
  user: UserInfo
  watchers: (delta: number, resource: string) => void
  /** Proxies pods/log, exec, attach and portforward to node agents. */
  nodeProxy?: NodeProxy
  /** What Table printers may know beyond the object ("applied on n/n nodes"). */
  print?: PrintContext
  /** fieldValidation when the request has none: Warn, as Kubernetes (tests may run Strict). */
  defaultFieldValidation?: FieldValidation
  /** Issues ServiceAccount tokens (serviceaccounts/token). */
  serviceAccountTokens?: ServiceAccountTokens
  /** What the metrics scraper saw (metrics.k8s.io). */
  metrics?: MetricsStore
  /** Serves lists and watches' initial state from memory (watch-cache.ts); without it they read the store. */
  lists?: WatchCache
}

function check(ctx: HandlerContext, attrs: RequestAttributes): void {
  checkAccess(ctx.user, attrs, ctx.view)
}

/**
 * The stored object a request names, for decisions that depend on it. When
 * it does not exist, the caller must still be allowed the request before
 * hearing so (a 404 would tell anyone what exists): Kubernetes authorizes
 * before it reads.
 */
async function load(ctx: HandlerContext, p: ResourcePath, verb: Verb): Promise<KubeObject> {
  try {
    return await ctx.registry.get(p.info, p.namespace, p.name!)
  } catch (e) {
    if (e instanceof ApiError && e.reason === 'NotFound') check(ctx, attrs(p, verb))
    throw e
  }
}

function attrs(p: ResourcePath, verb: Verb, extra: Partial<RequestAttributes> = {}): RequestAttributes {
  return { verb, resource: qualifiedResource(p.info), subresource: p.subresource, namespace: p.namespace, name: p.name, ...extra }
}

/** X for a field selector that is exactly `metadata.name=X` (or `==`), else undefined. */
export function singleNameSelector(selector: string | null): string | undefined {
  const m = /^metadata\.name==?([^,=!]+)$/.exec(selector ?? '')
  return m ? m[1] : undefined
}

/** The manager of a write: the fieldManager parameter, else the client's User-Agent up to its first '/' (as the apiserver defaults it). */
function fieldManager(req: IncomingMessage, query: URLSearchParams): string {
  return query.get('fieldManager') || String(req.headers['user-agent'] ?? 'unknown').split('/')[0]!.slice(0, 128)
}

function isDryRun(query: URLSearchParams): boolean {
  return query.getAll('dryRun').includes('All')
}

export async function handleResource(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  const method = req.method ?? 'GET'
  const { info } = p
  if (p.subresource === 'log' || streamSubresources.includes(p.subresource ?? '')) return await handleNodeSubresource(req, res, p, query, ctx)
  if (p.subresource === 'scale') return await handleScale(req, res, p, query, ctx)
  if (p.subresource === 'proxy') return await handleNodesProxy(req, res, p, query, ctx)
  if (p.subresource === 'eviction') {
    check(ctx, attrs(p, 'create'))
    return await handleEviction(req, res, p, query, ctx.registry)
  }
  if (p.subresource === 'binding') {
    check(ctx, attrs(p, 'create'))
    return await handleBinding(req, res, p, query, ctx.registry, fieldManager(req, query))
  }
  if (info.group === 'metrics.k8s.io') return await handleMetrics(req, res, p, query, ctx)
  if (info.storageVersion) return await handleConverted(req, res, p, query, ctx)
  if (p.subresource === 'token') {
    if (method !== 'POST') throw new ApiError('MethodNotAllowed', `${method} is not supported on serviceaccounts/token; POST a TokenRequest`)
    check(ctx, attrs(p, 'create'))
    if (!ctx.serviceAccountTokens) throw new ApiError('ServiceUnavailable', 'this apiserver has no service-account key to sign tokens with; start it with `skiff server`')
    return sendJson(res, 201, await ctx.serviceAccountTokens.request(p.namespace!, p.name!, decodeObject(req, await readBody(req))))
  }
  if (info.virtual) {
    if (method !== 'POST' || p.name) throw new ApiError('MethodNotAllowed', `${method} is not supported on ${qualifiedResource(info)}: it is create-only; POST a ${info.kind}`)
    check(ctx, attrs(p, 'create'))
    return sendJson(res, 201, review(info, decodeObject(req, await readBody(req)), { user: ctx.user, view: ctx.view, namespace: p.namespace }))
  }
  const watch = p.legacyWatch || boolParam(query, 'watch')
  if (method === 'GET' && p.name && !watch) {
    const obj = await load(ctx, p, 'get')
    check(ctx, attrs(p, 'get', { current: obj }))
    return respondObject(req, res, query, info, obj, 200, ctx.print)
  }
  if (method === 'GET') return await handleListOrWatch(req, res, p, query, ctx, watch)
  if (method === 'POST' && !p.name) {
    const raw = await readBody(req)
    const body = decodeObject(req, raw)
    check(ctx, attrs(p, 'create', { name: body?.metadata?.name, incoming: body }))
    validateFields(req, res, query, ctx, info, body, raw, 'create')
    const created = await ctx.registry.create(info, p.namespace, body, { dryRun: isDryRun(query) })
    return respondObject(req, res, query, info, created, 201, ctx.print)
  }
  if (method === 'PUT' && p.name) {
    const raw = await readBody(req)
    const body = decodeObject(req, raw)
    const current = await load(ctx, p, 'update')
    check(ctx, attrs(p, 'update', { current, incoming: body }))
    validateFields(req, res, query, ctx, info, body, raw, 'update')
    const updated = await ctx.registry.update(info, p.namespace, p.name, body, { dryRun: isDryRun(query), subresource: p.subresource, fieldManager: fieldManager(req, query) })
    return respondObject(req, res, query, info, updated, 200, ctx.print)
  }
  if (method === 'PATCH' && p.name && mediaType(req) === applyPatchType && !p.subresource) {
    const applied = await serverSideApply({
      registry: ctx.registry, info, namespace: p.namespace, name: p.name, query, body: await readBody(req), dryRun: isDryRun(query),
      authorize: (verb, current, incoming) => check(ctx, attrs(p, verb, { current, incoming })),
    })
    return respondObject(req, res, query, info, applied.obj, applied.created ? 201 : 200, ctx.print)
  }
  if (method === 'PATCH' && p.name) {
    const patched = await patchWithRetry(req, res, p, query, ctx, await readBody(req))
    return respondObject(req, res, query, info, patched, 200, ctx.print)
  }
  if (method === 'DELETE' && p.name) {
    const current = await load(ctx, p, 'delete')
    check(ctx, attrs(p, 'delete', { current }))
    const opts = await deleteOptions(req, query)
    const gone = await ctx.registry.delete(info, p.namespace, p.name, opts)
    return respondObject(req, res, query, info, gone, 200, ctx.print)
  }
  if (method === 'DELETE') return await handleDeleteCollection(req, res, p, query, ctx)
  throw new ApiError('MethodNotAllowed', `${method} is not supported on ${req.url?.split('?')[0]}`)
}

async function handleListOrWatch(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext, watch: boolean): Promise<void> {
  const { info } = p
  // A list or watch pinned to one name (fieldSelector=metadata.name=X, how
  // client-go watches a single object) is authorized as a request on that
  // name, so roles limited to named objects can watch them.
  check(ctx, attrs(p, watch ? 'watch' : 'list', { name: singleNameSelector(query.get('fieldSelector')) }))
  const filter = parseFilter(info, p.namespace, query)
  if (p.name) {
    filter.fields = { requirements: [...(filter.fields?.requirements ?? []), { field: 'metadata.name', op: '=', value: p.name }] }
  }
  const table = wantsTable(req, query)
  if (watch) {
    const timeout = intParam(query, 'timeoutSeconds') ?? 0
    const resource = qualifiedResource(info)
    return await serveWatch(res, ctx.registry, {
      info,
      filter,
      resourceVersion: query.get('resourceVersion') ?? undefined,
      timeoutSeconds: timeout > 0 ? timeout : undefined,
      bookmarks: boolParam(query, 'allowWatchBookmarks'),
      table,
      print: ctx.print,
      cache: ctx.lists,
    }, (d) => ctx.watchers(d, resource))
  }
  const cached = await ctx.lists?.list(info, p.namespace, query.get('resourceVersion') !== '0')
  const { items, revision } = cached ?? (await ctx.registry.list(info, p.namespace))
  const selected = items.filter((o) => matches(filter, info, o))
  const page = paginate(selected, revision, query)
  const meta = { resourceVersion: String(page.revision), ...(page.continueToken ? { continue: page.continueToken, remainingItemCount: page.remaining } : {}) }
  if (table) {
    const t = printTable(info, cached ? page.page.map((o) => withTypeMeta(info, o)) : page.page, { includeObject: table.includeObject, now: new Date(), resourceVersion: String(page.revision), context: ctx.print }) as any
    t.metadata = { ...t.metadata, ...meta }
    return sendJson(res, 200, t)
  }
  if (cached) return await streamList(res, { kind: `${info.kind}List`, apiVersion: groupVersion(info), metadata: meta }, page.page, (o) => jsonOf(info, o))
  sendJson(res, 200, { kind: `${info.kind}List`, apiVersion: groupVersion(info), metadata: meta, items: page.page })
}

/** fieldValidation on a decoded body (unknown fields are dropped from `obj` in place). */
function validateFields(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, ctx: HandlerContext, info: ResourceInfo, obj: unknown, raw: Buffer, verb: WriteVerb): void {
  const directive = fieldValidationOf(query, verb, ctx.defaultFieldValidation)
  const rawJson = mediaType(req).endsWith('json') ? raw.toString('utf8') : undefined
  enforceFieldValidation({ info, obj, rawJson, directive, verb, res })
}

function respondObject(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, info: ResourceInfo, obj: KubeObject, status: number, context?: PrintContext): void {
  const table = wantsTable(req, query)
  if (table) return sendJson(res, status, printTable(info, [obj], { includeObject: table.includeObject, now: new Date(), resourceVersion: obj.metadata.resourceVersion ?? '', context }))
  sendJson(res, status, obj)
}

/** Apply a patch document of the request's patch type to a copy of obj. */
export function applyPatch(req: IncomingMessage, obj: KubeObject, body: Buffer, kind: string): KubeObject {
  const ct = mediaType(req)
  try {
    if (ct === 'application/merge-patch+json') return applyMergePatch(obj, parseJson(body))
    if (ct === 'application/strategic-merge-patch+json') return applyStrategicMergePatch(obj, parseJson(body), kind)
    if (ct === 'application/json-patch+json') return applyJsonPatch(obj, parseJson(body))
  } catch (e) {
    if (e instanceof PatchError) throw new ApiError(e.status === 400 ? 'BadRequest' : 'Invalid', `the patch could not be applied: ${e.message}`, { kind })
    throw e
  }
  throw new ApiError(
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${ct})`,
  )
}

async function patchWithRetry(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext, body: Buffer): Promise<KubeObject> {
  const { info } = p
  for (let attempt = 0; ; attempt++) {
    const current = await load(ctx, p, 'patch')
    const next = applyPatch(req, current, body, info.kind)
    check(ctx, attrs(p, 'patch', { current, incoming: next }))
    if (attempt === 0) validateFields(req, res, query, ctx, info, next, body, 'patch')
    else enforceFieldValidation({ info, obj: next, directive: 'Ignore', verb: 'patch', res })
    try {
      return await ctx.registry.updateFrom(info, current, next, { dryRun: isDryRun(query), subresource: p.subresource, fieldManager: fieldManager(req, query) })
    } catch (e) {
      const pinned = next.metadata?.resourceVersion && next.metadata.resourceVersion !== current.metadata.resourceVersion
      if (e instanceof ApiError && e.reason === 'Conflict' && !pinned && attempt < 5) continue
      throw e
    }
  }
}

/** DeleteOptions from the body (JSON) and the query (which wins, as the apiserver's parameter codec decodes it over the body). */
async function deleteOptions(req: IncomingMessage, query: URLSearchParams): Promise<DeleteOptions> {
  const body = await readBody(req)
  const opts: DeleteOptions = body.length ? parseJson(body) : {}
  if (!opts || typeof opts !== 'object' || Array.isArray(opts)) throw new ApiError('BadRequest', 'the DeleteOptions body must be a JSON object')
  const policy = query.get('propagationPolicy')
  if (policy) opts.propagationPolicy = policy as DeleteOptions['propagationPolicy']
  const grace = intParam(query, 'gracePeriodSeconds')
  if (grace !== undefined) opts.gracePeriodSeconds = grace
  if (query.has('orphanDependents')) opts.orphanDependents = boolParam(query, 'orphanDependents')
  if (opts.propagationPolicy && !['Background', 'Foreground', 'Orphan'].includes(opts.propagationPolicy)) {
    throw new ApiError('Invalid', `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: ${JSON.stringify(opts.propagationPolicy)}: supported values: "Foreground", "Background", "Orphan"`, {
      kind: 'DeleteOptions',
      causes: [{ reason: 'FieldValueNotSupported', field: 'propagationPolicy', message: `Unsupported value: ${JSON.stringify(opts.propagationPolicy)}: supported values: "Foreground", "Background", "Orphan"` }],
    })
  }
  if (opts.propagationPolicy && opts.orphanDependents !== undefined) {
    throw new ApiError('Invalid', 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "' + opts.propagationPolicy + '": orphanDependents and deletionPropagation cannot be both set', {
      kind: 'DeleteOptions',
      causes: [{ reason: 'FieldValueInvalid', field: 'propagationPolicy', message: 'orphanDependents and deletionPropagation cannot be both set' }],
    })
  }
  if (opts.gracePeriodSeconds !== undefined && !Number.isInteger(opts.gracePeriodSeconds)) throw new ApiError('BadRequest', 'gracePeriodSeconds must be an integer')
  opts.dryRun = opts.dryRun === true || (Array.isArray((opts as { dryRun?: unknown }).dryRun) && ((opts as { dryRun?: unknown[] }).dryRun ?? []).includes('All')) || isDryRun(query)
  return opts
}

async function handleDeleteCollection(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  const { info } = p
  check(ctx, attrs(p, 'deletecollection'))
  const filter = parseFilter(info, p.namespace, query)
  const opts = await deleteOptions(req, query)
  const { items, revision } = await ctx.registry.list(info, p.namespace)
  const deleted: KubeObject[] = []
  for (const o of items.filter((x) => matches(filter, info, x))) {
    deleted.push(await ctx.registry.delete(info, o.metadata.namespace, o.metadata.name!, opts))
  }
  sendJson(res, 200, { kind: `${info.kind}List`, apiVersion: groupVersion(info), metadata: { resourceVersion: String(revision) }, items: deleted })
}

function toScale(obj: KubeObject): unknown {
  const sel = obj.spec?.selector ? selectorToString(labelSelectorFromObject(obj.spec.selector)) : ''
  const { name, namespace, uid, resourceVersion, creationTimestamp } = obj.metadata
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: { replicas: obj.spec?.replicas ?? 0 },
    status: { replicas: obj.status?.replicas ?? 0, selector: sel },
  }
}

async function handleScale(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, ctx: HandlerContext): Promise<void> {
  const { info } = p
  const method = req.method ?? 'GET'
  const current = await load(ctx, p, method === 'GET' ? 'get' : method === 'PUT' ? 'update' : 'patch')
  if (method === 'GET') {
    check(ctx, attrs(p, 'get', { current }))
    return sendJson(res, 200, toScale(current))
  }
  if (method !== 'PUT' && method !== 'PATCH') throw new ApiError('MethodNotAllowed', `${method} is not supported on the scale subresource`)
  const body = await readBody(req)
  const scale: any = method === 'PUT' ? parseJson(body) : applyPatch(req, toScale(current) as KubeObject, body, 'Scale')
  const replicas = scale?.spec?.replicas
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new ApiError('Invalid', `Scale "${p.name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`, {
      name: p.name,
      kind: 'Scale',
      causes: [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: 'must be greater than or equal to 0' }],
    })
  }
  const next = clone(current)
  next.spec = { ...next.spec, replicas }
  if (scale.metadata?.resourceVersion) next.metadata.resourceVersion = scale.metadata.resourceVersion
  check(ctx, attrs(p, method === 'PUT' ? 'update' : 'patch', { current, incoming: next }))
  const updated = await ctx.registry.updateFrom(info, current, next, { dryRun: isDryRun(query) })
  sendJson(res, 200, toScale(updated))
}
