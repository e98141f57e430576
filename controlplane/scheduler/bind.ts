// The scheduler's writes: binding (POST pods/NAME/binding, which also sets
// PodScheduled=True) and the PodScheduled=False condition of an
// unschedulable pod. The bodies are pure functions; the rest is a thin
// layer over the ApiClient.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath, type ApiClient } from '../client/client.ts'

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

/** The v1 Binding kube-scheduler's DefaultBinder sends: the pod's name and UID, the node as target. */
export function bindingFor(pod: KubeObject, node: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, uid: pod.metadata.uid },
    target: { kind: 'Node', name: node },
  } as KubeObject
}

/**
 * Bind `pod` to `node` with one POST to pods/NAME/binding: the apiserver
 * sets spec.nodeName and PodScheduled=True in one write, retrying its own
 * races. A 409 says why the pod cannot be bound (already bound, being
 * deleted, or a new pod of the same name: the UID precondition); other
 * errors throw (the caller forgets the assumption and retries the pod later).
 * `bound` is the pod as the binding left it, from what the scheduler knows.
 */
export async function bindPod(client: ApiClient, pod: KubeObject, node: string): Promise<BindOutcome> {
  const ns = pod.metadata.namespace
  const name = pod.metadata.name!
  try {
    await client.call('POST', resourcePath(podsInfo, ns, name, 'binding'), { body: bindingFor(pod, node) })
    return { bound: { ...pod, spec: { ...pod.spec, nodeName: node } } }
  } catch (e) {
    if (isStatus(e, 404)) return { gone: 'deleted' }
    if (!isStatus(e, 409)) throw e
    const message = (e as ApiClientError).body?.message ?? ''
    if (/UID in precondition/.test(message)) return { gone: 'deleted' }
    if (/is being deleted/.test(message)) return { gone: 'terminating' }
    const already = /is already assigned to node "(.*)"$/.exec(message)
    if (already) return { gone: 'bound-elsewhere', node: already[1] }
    throw e
  }
}

function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiClientError && e.status === code
}
