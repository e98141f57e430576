// List and watch filtering: namespace, label selector, field selector, and
// the limit/continue pagination of lists. Pure.

import { intParam } from './query.ts'
import { ApiError } from '../api/errors.ts'
import type { ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import {
  fieldSelectorSupported,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  type FieldSelector,
  type LabelSelector,
} from '../api/selectors.ts'

export interface ObjectFilter {
  namespace?: string
  labels?: LabelSelector
  fields?: FieldSelector
}

export function parseFilter(info: ResourceInfo, namespace: string | undefined, query: URLSearchParams): ObjectFilter {
  const filter: ObjectFilter = { namespace }
  const ls = query.get('labelSelector')
  const fs = query.get('fieldSelector')
  try {
    if (ls) filter.labels = parseLabelSelector(ls)
    if (fs) filter.fields = parseFieldSelector(fs)
  } catch (e) {
    throw new ApiError('BadRequest', `unable to parse selector: ${(e as Error).message}`)
  }
  for (const req of filter.fields?.requirements ?? []) {
    if (!fieldSelectorSupported(req.field, info.kind)) {
      throw new ApiError('BadRequest', `field label not supported: ${req.field}`)
    }
  }
  return filter
}

export function matches(filter: ObjectFilter, info: ResourceInfo, obj: KubeObject): boolean {
  if (filter.namespace && obj.metadata.namespace !== filter.namespace) return false
  if (filter.labels && !matchesLabels(filter.labels, obj.metadata.labels ?? {})) return false
  if (filter.fields && !matchesFields(filter.fields, obj, info.kind)) return false
  return true
}

function sortKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`
}

interface ContinueToken {
  rv: number
  start: string
}

/**
 * One page of a list. The continue token carries the list revision and the
 * last key served; later pages continue after that key in the current data
 * (documented: pages are each consistent, not one snapshot across pages).
 */
export function paginate(items: KubeObject[], revision: number, query: URLSearchParams): { page: KubeObject[]; revision: number; continueToken?: string; remaining?: number } {
  const limit = intParam(query, 'limit') ?? 0
  const cont = query.get('continue')
  let start = ''
  let rv = revision
  if (cont) {
    try {
      const t = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as ContinueToken
      start = t.start
      rv = t.rv
    } catch {
      throw new ApiError('BadRequest', 'the provided continue parameter is not valid')
    }
  }
  const sorted = [...items].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0))
  const rest = start ? sorted.filter((o) => sortKey(o) > start) : sorted
  if (!(limit > 0) || rest.length <= limit) return { page: rest, revision: cont ? rv : revision }
  const page = rest.slice(0, limit)
  const token: ContinueToken = { rv, start: sortKey(page[page.length - 1]!) }
  return { page, revision: rv, continueToken: Buffer.from(JSON.stringify(token)).toString('base64url'), remaining: rest.length - limit }
}
