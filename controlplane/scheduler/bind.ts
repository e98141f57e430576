// The scheduler's writes: binding (a compare-and-set on the pod's
// resourceVersion) and the PodScheduled condition. The patch bodies are
// pure functions; the rest is a thin layer over the ApiClient.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, type ApiClient } from '../client/client.ts'

export const podsInfo = lookupResource('', 'v1', 'pods')!

/** Merge patch that sets spec.nodeName only if the pod is still at `resourceVersion` (409 otherwise). */
export function bindPatch(resourceVersion: string, node: string): object {
  return { metadata: { resourceVersion }, spec: { nodeName: node } }
}

export interface PodScheduledCondition {
  type: 'PodScheduled'
  status: 'True' | 'False'
  reason?: string
  message?: string
  lastProbeTime: null
  lastTransitionTime: string
}

export function podScheduledCondition(status: 'True' | 'False', now: Date, message?: string): PodScheduledCondition {
  const t = now.toISOString().replace(/\.\d+Z$/, 'Z')
  return status === 'True'
    ? { type: 'PodScheduled', status, lastProbeTime: null, lastTransitionTime: t }
    : { type: 'PodScheduled', status, reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: t }
}

/** True when the pod already carries this condition (same status, reason and message): nothing to write. */
export function hasCondition(pod: KubeObject, c: Pick<PodScheduledCondition, 'status' | 'reason' | 'message'>): boolean {
  const conds = pod.status?.conditions
  const cur = Array.isArray(conds) ? conds.find((x) => x?.type === 'PodScheduled') : undefined
  return !!cur && cur.status === c.status && (cur.reason ?? undefined) === c.reason && (cur.message ?? undefined) === c.message
}

/** Strategic merge on /status: conditions merge by type, so the agent's own conditions stay. */
export async function patchPodScheduled(client: ApiClient, pod: KubeObject, c: PodScheduledCondition): Promise<void> {
  await client.patch(podsInfo, pod.metadata.namespace, pod.metadata.name!, { status: { conditions: [c] } }, 'application/strategic-merge-patch+json', 'status')
}

export type BindOutcome = { bound: KubeObject } | { gone: 'deleted' | 'bound-elsewhere' | 'terminating'; node?: string }

/**
 * Bind `pod` to `node`. On 409 the pod changed since the cycle read it
 * (often our own status write): re-read it and try again while it is still
 * unbound. Other errors throw (the caller forgets the assumption and retries
 * the pod later).
 */
export async function bindPod(client: ApiClient, pod: KubeObject, node: string, maxConflicts = 5): Promise<BindOutcome> {
  const ns = pod.metadata.namespace
  const name = pod.metadata.name!
  let rv = pod.metadata.resourceVersion ?? ''
  for (let attempt = 0; ; attempt++) {
    try {
      const bound = await client.patch(podsInfo, ns, name, bindPatch(rv, node), 'application/merge-patch+json')
      return { bound }
    } catch (e) {
      if (isStatus(e, 404)) return { gone: 'deleted' }
      if (!isStatus(e, 409) || attempt >= maxConflicts) throw e
    }
    let fresh: KubeObject
    try {
      fresh = await client.get(podsInfo, ns, name)
    } catch (e) {
      if (isStatus(e, 404)) return { gone: 'deleted' }
      throw e
    }
    if (fresh.metadata.uid !== pod.metadata.uid) return { gone: 'deleted' }
    if (fresh.spec?.nodeName) return { gone: 'bound-elsewhere', node: fresh.spec.nodeName }
    if (fresh.metadata.deletionTimestamp) return { gone: 'terminating' }
    rv = fresh.metadata.resourceVersion ?? ''
  }
}

function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiClientError && e.status === code
}
