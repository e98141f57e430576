// The OpenAPI v3 documents the apiserver serves (`/openapi/v3` and one per
// group version), generated from the resource table and the schema DSL.
// kubectl reads them for `explain`, and `apply` reads the PATCH operations'
// parameters to see that the server validates fields itself
// (fieldValidation), which is why every PATCH carries it.
//
// Each document is built and hashed once; the index names it with
// `?hash=<sha512>` and a request with the current hash may be cached forever
// (apiserver/server.ts sets the headers), as kube-openapi does.

import { createHash } from 'node:crypto'
import protobuf from 'protobufjs/minimal.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { groupVersion, resources, type ResourceInfo } from '../api/resources.ts'
import { kindSchema } from '../api/schema/index.ts'
import { componentSchemas, type Schema } from '../api/schema/openapi.ts'
import { serverVersion } from './discovery.ts'

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1'

interface Param { name: string; in: 'query' | 'path'; description: string; schema: Schema; required?: boolean; uniqueItems?: boolean }

const q = (name: string, description: string, type = 'string'): Param => ({ name, in: 'query', description, schema: { type }, uniqueItems: true })

const p = {
  pretty: q('pretty', 'Indent the answer.'),
  dryRun: q('dryRun', 'All: validate and answer without persisting.'),
  fieldManager: q('fieldManager', 'Name of the actor making the change (server-side apply ownership).'),
  fieldValidation: q('fieldValidation', 'Ignore, Warn (the default) or Strict: what to do with unknown or duplicate fields in the body.'),
  force: q('force', 'Take ownership of conflicting fields (apply patches only).', 'boolean'),
  labelSelector: q('labelSelector', 'Only objects whose labels match.'),
  fieldSelector: q('fieldSelector', 'Only objects whose fields match.'),
  limit: q('limit', 'Most objects in one answer; the rest via continue.', 'integer'),
  continue: q('continue', 'Token of the next page.'),
  resourceVersion: q('resourceVersion', 'Which version of the collection to list or watch from.'),
  resourceVersionMatch: q('resourceVersionMatch', 'How resourceVersion is matched: Exact or NotOlderThan.'),
  timeoutSeconds: q('timeoutSeconds', 'Close a watch after this many seconds.', 'integer'),
  watch: q('watch', 'Stream changes instead of a list.', 'boolean'),
  allowWatchBookmarks: q('allowWatchBookmarks', 'Send BOOKMARK events on a watch.', 'boolean'),
  sendInitialEvents: q('sendInitialEvents', 'Start a watch with the current objects as ADDED events.', 'boolean'),
  gracePeriodSeconds: q('gracePeriodSeconds', 'Seconds before the object is deleted.', 'integer'),
  propagationPolicy: q('propagationPolicy', 'Orphan, Background or Foreground deletion of dependents.'),
  orphanDependents: q('orphanDependents', 'Deprecated: use propagationPolicy.', 'boolean'),
  name: { name: 'name', in: 'path', description: 'Name of the object.', required: true, schema: { type: 'string' }, uniqueItems: true } as Param,
  namespace: { name: 'namespace', in: 'path', description: 'Namespace of the object.', required: true, schema: { type: 'string' }, uniqueItems: true } as Param,
}

const listParams = [p.allowWatchBookmarks, p.continue, p.fieldSelector, p.labelSelector, p.limit, p.resourceVersion, p.resourceVersionMatch, p.sendInitialEvents, p.timeoutSeconds, p.watch]
const writeParams = [p.dryRun, p.fieldManager, p.fieldValidation]
const deleteParams = [p.dryRun, p.gracePeriodSeconds, p.orphanDependents, p.propagationPolicy]

const jsonContent = (schema: Schema) => ({
  'application/json': { schema },
  'application/yaml': { schema },
  'application/vnd.kubernetes.protobuf': { schema },
})
const ok = (schema: Schema, codes = ['200']) => Object.fromEntries(codes.map((c) => [c, { description: c === '201' ? 'Created' : 'OK', content: jsonContent(schema) }]))
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })

const patchBody = {
  required: true,
  content: Object.fromEntries(['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json']
    .map((t) => [t, { schema: ref(`${META}.Patch`) }])),
}

function schemaName(info: Pick<ResourceInfo, 'group' | 'version' | 'kind'>): string {
  return kindSchema(groupVersion(info), info.kind)?.name ?? `dev.skiff.${info.group || 'core'}.${info.version}.${info.kind}`
}

/** The operations of one resource, keyed by path. */
function resourcePaths(prefix: string, info: ResourceInfo): Record<string, Schema> {
  const gvk = { group: info.group, version: info.version, kind: info.kind }
  const obj = ref(schemaName(info))
  const list = ref(schemaName({ ...info, kind: `${info.kind}List` }))
  const verbs = new Set(info.verbs ?? [])
  const ns = info.namespaced ? 'namespaces/{namespace}/' : ''
  const pathParams = info.namespaced ? [p.namespace] : []
  const tag = `${info.group || 'core'}_${info.version}`
  const op = (action: string, verb: string, params: Param[], responses: Schema, extra: Schema = {}, kind = gvk) => ({
    tags: [tag],
    operationId: `${verb}${info.kind}`,
    parameters: params,
    responses: { ...responses, '401': { description: 'Unauthorized' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': kind,
    ...extra,
  })
  const out: Record<string, Schema> = {}
  const collection: Schema = { parameters: [...pathParams, p.pretty] }
  if (verbs.has('list')) collection.get = op('list', 'list', listParams, ok(list))
  if (verbs.has('create')) collection.post = op('post', 'create', writeParams, ok(obj, ['200', '201', '202']), { requestBody: { required: true, content: jsonContent(obj) } })
  if (verbs.has('deletecollection')) collection.delete = op('deletecollection', 'deleteCollection', [...deleteParams, ...listParams], ok(ref(`${META}.Status`)))
  if (Object.keys(collection).length > 1) out[`/${prefix}/${ns}${info.resource}`] = collection

  const itemVerbs = ['get', 'update', 'patch', 'delete'].filter((v) => verbs.has(v))
  if (itemVerbs.length) {
    const item: Schema = { parameters: [p.name, ...pathParams, p.pretty] }
    if (verbs.has('get')) item.get = op('get', 'read', [], ok(obj))
    if (verbs.has('update')) item.put = op('put', 'replace', writeParams, ok(obj, ['200', '201']), { requestBody: { required: true, content: jsonContent(obj) } })
    if (verbs.has('patch')) item.patch = op('patch', 'patch', [...writeParams, p.force], ok(obj, ['200', '201']), { requestBody: patchBody })
    if (verbs.has('delete')) item.delete = op('delete', 'delete', deleteParams, ok(ref(`${META}.Status`), ['200', '202']))
    out[`/${prefix}/${ns}${info.resource}/{name}`] = item
  }
  for (const sub of info.subresources ?? []) {
    if (sub !== 'status' && sub !== 'scale') continue
    const scale = sub === 'scale'
    const kind = scale ? { group: 'autoscaling', version: 'v1', kind: 'Scale' } : gvk
    const body = scale ? ref('io.k8s.api.autoscaling.v1.Scale') : obj
    const suffix = scale ? 'Scale' : 'Status'
    out[`/${prefix}/${ns}${info.resource}/{name}/${sub}`] = {
      parameters: [p.name, ...pathParams, p.pretty],
      get: { ...op('get', 'read', [], ok(body), {}, kind), operationId: `read${info.kind}${suffix}` },
      put: { ...op('put', 'replace', writeParams, ok(body, ['200', '201']), { requestBody: { required: true, content: jsonContent(body) } }, kind), operationId: `replace${info.kind}${suffix}` },
      patch: { ...op('patch', 'patch', [...writeParams, p.force], ok(body, ['200', '201']), { requestBody: patchBody }, kind), operationId: `patch${info.kind}${suffix}` },
    }
  }
  return out
}

/** `api/v1` or `apis/<group>/<version>`: the key of a group version in the index. */
export function openapiPath(gv: string): string {
  return gv.includes('/') ? `apis/${gv}` : `api/${gv}`
}

const patchSchema: Schema = {
  description: 'A patch body: JSON patch, merge patch, strategic merge patch or an apply configuration.',
  type: 'object',
}

function buildDocument(gv: string): unknown {
  const infos = resources.filter((r) => groupVersion(r) === gv)
  const prefix = openapiPath(gv)
  const paths: Record<string, Schema> = {}
  const roots = new Set<string>([`${META}.Status`, `${META}.DeleteOptions`])
  for (const info of infos) {
    Object.assign(paths, resourcePaths(prefix, info))
    roots.add(schemaName(info))
    if (info.verbs?.includes('list')) roots.add(schemaName({ ...info, kind: `${info.kind}List` }))
    if (info.subresources?.includes('scale')) roots.add('io.k8s.api.autoscaling.v1.Scale')
  }
  const schemas: Record<string, Schema> = { ...componentSchemas(roots), [`${META}.Patch`]: patchSchema }
  for (const info of infos) {
    for (const kind of info.verbs?.includes('list') ? [info.kind, `${info.kind}List`] : [info.kind]) {
      const name = schemaName({ ...info, kind })
      schemas[name] ??= {
        description: `${kind} (no schema in Skiff: any field is kept).`,
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        'x-kubernetes-group-version-kind': [{ group: info.group, kind, version: info.version }],
      }
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: serverVersion.gitVersion },
    paths,
    components: {
      schemas,
      securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer token authentication', name: 'authorization', in: 'header' } },
    },
  }
}

export interface OpenAPIDocument {
  body: Buffer
  /** Upper-case hex SHA-512 of body, as kube-openapi computes its ETag. */
  hash: string
}

function encode(doc: unknown): OpenAPIDocument {
  const body = Buffer.from(JSON.stringify(doc))
  return { body, hash: createHash('sha512').update(body).digest('hex').toUpperCase() }
}

let cache: Map<string, OpenAPIDocument> | undefined

/** Every group-version document by its index key (`api/v1`, `apis/apps/v1`), built once. */
export function openapiDocuments(): Map<string, OpenAPIDocument> {
  if (cache) return cache
  cache = new Map()
  for (const gv of new Set(resources.map(groupVersion))) cache.set(openapiPath(gv), encode(buildDocument(gv)))
  return cache
}

/** GET /openapi/v3: every group version with the URL of its current document. */
export function openapiIndex(): OpenAPIDocument {
  const paths = Object.fromEntries([...openapiDocuments()].map(([key, d]) => [key, { serverRelativeURL: `/openapi/v3/${key}?hash=${d.hash}` }]))
  return encode({ paths })
}

const PROTOBUF_V3 = 'application/com.github.proto-openapi.spec.v3'

/** JSON unless the client accepts only the protobuf form of the documents (which Skiff does not produce). */
function acceptsJson(accept: string | undefined): boolean {
  if (!accept) return true
  return accept.split(',').some((part) => {
    const t = part.split(';')[0]!.trim().toLowerCase()
    return t === 'application/json' || t === '*/*' || t === 'application/*' || (t !== '' && !t.startsWith(PROTOBUF_V3))
  })
}

/**
 * Serves GET /openapi/v3 and /openapi/v3/<group version> as kube-openapi does:
 * an ETag on every answer (304 on If-None-Match), `Cache-Control: public,
 * immutable` and a one-year Expires when ?hash= names the current document,
 * and a 301 to the current URL when it names an old one. Returns false for
 * an unknown group version (the caller answers 404).
 */
export function serveOpenAPI(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  const key = url.pathname.replace(/\/+$/, '').slice('/openapi/v3'.length).replace(/^\//, '')
  const doc = key === '' ? openapiIndex() : openapiDocuments().get(key)
  if (!doc) return false
  if (!acceptsJson(req.headers.accept)) {
    res.writeHead(406, { 'Content-Type': 'text/plain' }).end('only application/json is served for OpenAPI v3 documents\n')
    return true
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ETag: `"${doc.hash}"`, Vary: 'Accept' }
  const hash = url.searchParams.get('hash')
  if (key !== '' && hash !== null) {
    if (hash !== doc.hash) {
      res.writeHead(301, { Location: `/openapi/v3/${key}?hash=${doc.hash}` }).end()
      return true
    }
    headers['Cache-Control'] = 'public, immutable'
    headers.Expires = new Date(Date.now() + 365 * 24 * 3600_000).toUTCString()
  }
  if (req.headers['if-none-match'] === `"${doc.hash}"`) {
    res.writeHead(304, headers).end()
    return true
  }
  res.writeHead(200, { ...headers, 'Content-Length': String(doc.body.length) }).end(doc.body)
  return true
}

// kubectl asks with .v2@v1.0+protobuf; the answer names the type with a dot, as kube-openapi does
// (Go's mime parser rejects the '@').
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf'

/**
 * GET /openapi/v2, which kubectl asks for in protobuf only: a document with
 * no definitions. kubectl validates a kind on the client only when the v3
 * documents do not show the server validating it (fieldValidation on its
 * PATCH), which is the case for every kind Skiff serves; for a kind Skiff does
 * not serve it looks the kind up here, finds nothing, and goes on to report
 * `no matches for kind` as against any cluster. Without this document it
 * stopped at "failed to download openapi" / "the server could not find the
 * requested resource". Encoded by hand: gnostic's openapi_v2.Document with
 * swagger (1) and info (2) {title 1, version 2}.
 */
export function openapiV2Protobuf(): Buffer {
  const info = protobuf.Writer.create().uint32((1 << 3) | 2).string('Kubernetes').uint32((2 << 3) | 2).string(serverVersion.gitVersion).finish()
  return Buffer.from(protobuf.Writer.create().uint32((1 << 3) | 2).string('2.0').uint32((2 << 3) | 2).bytes(info).finish())
}
