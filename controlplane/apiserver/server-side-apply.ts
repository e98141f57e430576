// PATCH with `application/apply-patch+yaml`: server-side apply (issue 12).
// The body is the applied configuration (YAML or JSON, with apiVersion and
// kind); `fieldManager` is required and `force` takes contested fields. The
// object is created when it does not exist. Ownership and the merge are
// ../api/apply.ts; list semantics come from the strategic-merge-patch table
// until the schema carries x-kubernetes-list-type. A conflict is a 409
// whose causes name each other manager and field, as kubectl prints them.

import type { IncomingMessage } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { apply, ApplyConflict, listTypesFromSchema } from '../api/apply.ts'
import { ApiError } from '../api/errors.ts'
import { groupVersion, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { boolParam } from './query.ts'
import type { Registry, WriteFlags } from './registry.ts'

export const applyPatchType = 'application/apply-patch+yaml'

function parseConfig(body: Buffer, info: ResourceInfo, name: string): Record<string, any> {
  let config: unknown
  try {
    config = parseYaml(body.toString('utf8'))
  } catch (e) {
    throw new ApiError('BadRequest', `error decoding YAML: ${(e as Error).message}`)
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new ApiError('BadRequest', 'the applied configuration must be an object')
  const c = config as Record<string, any>
  if (!c.apiVersion || !c.kind) throw new ApiError('BadRequest', 'apiVersion and kind must be set in an applied configuration')
  if (c.apiVersion !== groupVersion(info) || c.kind !== info.kind) {
    throw new ApiError('BadRequest', `the applied configuration is a ${c.apiVersion}/${c.kind}, the request is for ${groupVersion(info)}/${info.kind}`)
  }
  if (c.metadata?.name && c.metadata.name !== name) throw new ApiError('BadRequest', `the name of the object (${c.metadata.name}) does not match the name on the URL (${name})`)
  if (c.metadata?.managedFields !== undefined) throw new ApiError('BadRequest', 'metadata.managedFields must be nil in an applied configuration')
  return c
}

export interface ApplyRequest {
  registry: Registry
  info: ResourceInfo
  namespace: string | undefined
  name: string
  query: URLSearchParams
  body: Buffer
  dryRun: boolean
  /** Authorization of the resulting create or patch (throws when denied). */
  authorize(verb: 'create' | 'patch', current: KubeObject | undefined, incoming: KubeObject): void
}

/** Apply, create or update; retried on a write conflict, as a patch is. Returns the object and whether it was created. */
export async function serverSideApply(r: ApplyRequest): Promise<{ obj: KubeObject; created: boolean }> {
  const manager = r.query.get('fieldManager') ?? ''
  if (!manager) {
    throw new ApiError('Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch', {
      kind: 'PatchOptions',
      causes: [{ reason: 'FieldValueRequired', field: 'fieldManager', message: 'Required value: is required for apply patch' }],
    })
  }
  const config = parseConfig(r.body, r.info, r.name)
  const listTypes = listTypesFromSchema(r.info.kind)
  for (let attempt = 0; ; attempt++) {
    const current = await r.registry.get(r.info, r.namespace, r.name).catch((e) => {
      if (e instanceof ApiError && e.reason === 'NotFound') return undefined
      throw e
    })
    let next: Record<string, any>
    try {
      next = apply({ live: current, config, manager, force: boolParam(r.query, 'force'), listTypes, apiVersion: groupVersion(r.info), now: new Date().toISOString().replace(/\.\d+Z$/, 'Z') })
    } catch (e) {
      if (!(e instanceof ApplyConflict)) throw e
      throw new ApiError('Conflict', e.message, {
        kind: r.info.resource,
        name: r.name,
        causes: e.conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: c.path })),
      })
    }
    const flags: WriteFlags = { dryRun: r.dryRun, managedFields: next.metadata.managedFields }
    next.metadata = { ...next.metadata, name: r.name }
    r.authorize(current ? 'patch' : 'create', current, next as KubeObject)
    try {
      if (!current) return { obj: await r.registry.create(r.info, r.namespace, next as KubeObject, flags), created: true }
      return { obj: await r.registry.updateFrom(r.info, current, { ...next, metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion } } as KubeObject, flags), created: false }
    } catch (e) {
      const retry = e instanceof ApiError && (e.reason === 'Conflict' || (e.reason === 'AlreadyExists' && !current))
      if (retry && attempt < 5) continue
      throw e
    }
  }
}
