// The pods/binding subresource, pure: the v1 Binding a scheduler POSTs
// (metadata.name = the pod, target = {kind: Node, name}), its validation,
// and the pod it turns into (Kubernetes' registry/core/pod/storage
// BindingREST: spec.nodeName, the Binding's annotations and the
// PodScheduled=True condition, all in one write). The write itself is
// controlplane/apiserver/binding.ts.

import { ApiError, invalid } from './errors.ts'
import type { KubeObject, StatusCause } from './types.ts'
import { notSupported, required } from './validation/field.ts'

export interface Binding {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  annotations: Record<string, string>
  node: string
}

const isRecord = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v)

/** ValidatePodBinding: target.kind Node (or empty), target.name set. */
export function validateBinding(body: Record<string, any>): StatusCause[] {
  const target = isRecord(body.target) ? body.target : {}
  const causes: StatusCause[] = []
  if (target.kind && target.kind !== 'Node') causes.push(notSupported('target.kind', target.kind, ['Node', '<empty>']))
  if (!target.name) causes.push(required('target.name'))
  return causes
}

/**
 * The Binding of a request on pods/`podName`/binding. A body without a
 * name binds the pod of the URL (Kubernetes insists on the name; clients
 * always send it).
 */
export function parseBinding(body: unknown, podName: string, namespace: string | undefined): Binding {
  if (!isRecord(body)) throw new ApiError('BadRequest', 'the request body must be a Binding object')
  if (body.kind && body.kind !== 'Binding') throw new ApiError('BadRequest', `the kind of the body (${body.kind}) must be Binding (v1)`)
  if (body.apiVersion && body.apiVersion !== 'v1') throw new ApiError('BadRequest', `the API version of a Binding must be v1 (got ${body.apiVersion})`)
  const meta = isRecord(body.metadata) ? body.metadata : {}
  if (meta.name && meta.name !== podName) throw new ApiError('BadRequest', 'name in URL does not match name in Binding object')
  if (meta.namespace && namespace && meta.namespace !== namespace) {
    throw new ApiError('BadRequest', `the namespace of the provided object (${meta.namespace}) does not match the namespace sent on the request (${namespace})`)
  }
  const causes = validateBinding(body)
  if (causes.length) throw invalid('Binding', podName, causes)
  const annotations = isRecord(meta.annotations) ? Object.fromEntries(Object.entries(meta.annotations).map(([k, v]) => [k, String(v)])) : {}
  return { name: podName, namespace, uid: meta.uid || undefined, resourceVersion: meta.resourceVersion || undefined, annotations, node: String(body.target.name) }
}

/** 409 on pods/binding, Kubernetes' text: `Operation cannot be fulfilled on pods/binding "web": pod web is already assigned to node "n1"`. */
function bindingConflict(name: string, why: string): ApiError {
  return new ApiError('Conflict', `Operation cannot be fulfilled on pods/binding "${name}": ${why}`, { name, kind: 'pods/binding' })
}

function preconditionFailed(name: string, what: string, want: string, have: string | undefined): ApiError {
  return new ApiError('Conflict', `Operation cannot be fulfilled on pods "${name}": Precondition failed: ${what} in precondition: ${want}, ${what} in object meta: ${have ?? ''}`, { name, kind: 'pods' })
}

/**
 * The pod after `b`, or the 409 Kubernetes answers: the Binding's UID or
 * resourceVersion preconditions, a pod being deleted, one already bound,
 * one still held by scheduling gates. PodScheduled becomes True (reason and
 * message cleared); its lastTransitionTime moves only when the status changes.
 */
export function planBinding(pod: KubeObject, b: Binding, now: Date): KubeObject {
  const name = pod.metadata.name!
  if (b.uid && b.uid !== pod.metadata.uid) throw preconditionFailed(name, 'UID', b.uid, pod.metadata.uid)
  if (b.resourceVersion && b.resourceVersion !== pod.metadata.resourceVersion) throw preconditionFailed(name, 'ResourceVersion', b.resourceVersion, pod.metadata.resourceVersion)
  if (pod.metadata.deletionTimestamp) throw bindingConflict(name, `pod ${name} is being deleted, cannot be assigned to a host`)
  if (pod.spec?.nodeName) throw bindingConflict(name, `pod ${name} is already assigned to node ${JSON.stringify(pod.spec.nodeName)}`)
  if (Array.isArray(pod.spec?.schedulingGates) && pod.spec.schedulingGates.length > 0) throw bindingConflict(name, `pod ${name} has non-empty .spec.schedulingGates`)
  const t = now.toISOString().replace(/\.\d+Z$/, 'Z')
  const conditions: any[] = Array.isArray(pod.status?.conditions) ? [...pod.status.conditions] : []
  const i = conditions.findIndex((c) => c?.type === 'PodScheduled')
  const scheduled = { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: i >= 0 && conditions[i].status === 'True' ? conditions[i].lastTransitionTime : t }
  if (i >= 0) conditions[i] = scheduled
  else conditions.push(scheduled)
  const annotations = Object.keys(b.annotations).length ? { ...pod.metadata.annotations, ...b.annotations } : pod.metadata.annotations
  return {
    ...pod,
    metadata: { ...pod.metadata, ...(annotations ? { annotations } : {}) },
    spec: { ...pod.spec, nodeName: b.node },
    status: { ...pod.status, conditions },
  }
}
