// Option sets that many fields share (list semantics and patch strategies as
// Kubernetes declares them with +listType, +listMapKey, +patchStrategy and
// +patchMergeKey).

import type { FieldOptions } from './dsl.ts'

export const atomic: FieldOptions = { listType: 'atomic' }
export const set: FieldOptions = { listType: 'set' }
export const req: FieldOptions = { required: true }

/** A list keyed by `key`, merged element by element by strategic merge patch. */
export function mergeBy(key: string, ...moreKeys: string[]): FieldOptions {
  return { patchStrategy: 'merge', patchMergeKey: key, listType: 'map', listMapKeys: [key, ...moreKeys] }
}

export const byName = mergeBy('name')
/** Conditions: merged by type. */
export const byType = mergeBy('type')
export const conditionStatus = ['False', 'True', 'Unknown'] as const
