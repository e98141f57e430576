// POST pods/NAME/eviction: a pod deletion that respects its
// PodDisruptionBudget (Kubernetes' registry/core/pod/storage/eviction.go).
// The decision is planEviction (../api/disruption.ts, pure); here it is
// carried out: an allowed eviction first writes the budget's status
// (disruptionsAllowed - 1, the pod in disruptedPods) with the budget's
// resourceVersion as precondition, so two evictions can never both spend the
// last disruption, then marks the pod (condition DisruptionTarget,
// EvictionByEvictionAPI) and deletes it with the Eviction's deleteOptions.
// A write that loses a race starts again from fresh reads.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { planEviction, withDisruptionTarget } from '../api/disruption.ts'
import { ApiError } from '../api/errors.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { decodeObject, readBody, sendJson } from './http-util.ts'
import type { ResourcePath } from './paths.ts'
import type { DeleteOptions, Registry } from './registry.ts'

const podsInfo = lookupResource('', 'v1', 'pods')!
const pdbsInfo = lookupResource('policy', 'v1', 'poddisruptionbudgets')!

/** Kubernetes' EvictionsRetry: 20 attempts. */
const attempts = 20
const evictionVersions = ['policy/v1', 'policy/v1beta1']

/** The Eviction body: policy/v1 (or v1beta1, as the apiserver still accepts), naming the pod of the URL. */
export function parseEviction(body: any, podName: string): { deleteOptions: DeleteOptions & { dryRun?: unknown } } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('BadRequest', 'the request body must be an Eviction object')
  if (body.kind && body.kind !== 'Eviction') throw new ApiError('BadRequest', `the kind of the body (${body.kind}) must be Eviction (policy/v1)`)
  if (body.apiVersion && !evictionVersions.includes(body.apiVersion)) throw new ApiError('BadRequest', `the API version of an Eviction must be one of ${evictionVersions.join(', ')} (got ${body.apiVersion})`)
  if (body.metadata?.name && body.metadata.name !== podName) throw new ApiError('BadRequest', 'name in URL does not match name in Eviction object')
  const opts = body.deleteOptions ?? {}
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new ApiError('BadRequest', 'deleteOptions must be an object')
  return { deleteOptions: opts }
}

function dryRunOf(opts: { dryRun?: unknown }, query: URLSearchParams): boolean {
  return query.getAll('dryRun').includes('All') || opts.dryRun === true || (Array.isArray(opts.dryRun) && opts.dryRun.includes('All'))
}

/** Decide and, when the budget allows it, spend one disruption; a 409 means fresh reads and a new decision. */
async function decideOnce(registry: Registry, ns: string, name: string, dryRun: boolean): Promise<{ pod: KubeObject; pinned: boolean }> {
  const pod = await registry.get(podsInfo, ns, name)
  const pdbs = (await registry.list(pdbsInfo, ns)).items
  const decision = planEviction(pod, pdbs, Date.now(), dryRun)
  if (decision.action === 'reject') throw decision.error
  if (decision.action === 'decrement' && !dryRun) {
    await registry.update(pdbsInfo, ns, decision.pdb.metadata.name!, { ...decision.pdb, status: decision.status }, { subresource: 'status' })
  }
  return { pod, pinned: decision.action === 'delete' && decision.pinned }
}

/**
 * Mark the pod DisruptionTarget and delete it. A pinned eviction (an
 * unhealthy pod evicted without spending budget) writes and deletes only the
 * pod it decided on (409 otherwise); an unpinned one re-reads on conflicts.
 */
async function markAndDelete(registry: Registry, decided: KubeObject, pinned: boolean, opts: DeleteOptions, dryRun: boolean): Promise<void> {
  const { namespace: ns, name } = decided.metadata
  let pod = decided
  for (let attempt = 1; !dryRun; attempt++) {
    if (pod.metadata.deletionTimestamp || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') break
    try {
      const conditions = withDisruptionTarget(pod, 'EvictionByEvictionAPI', 'Eviction API: evicting', Date.now())
      pod = await registry.update(podsInfo, ns, name!, { ...pod, status: { ...pod.status, conditions } }, { subresource: 'status' })
      break
    } catch (e) {
      if (pinned || attempt >= attempts || !(e instanceof ApiError && e.reason === 'Conflict')) throw e
      pod = await registry.get(podsInfo, ns, name!)
    }
  }
  const deleteOpts: DeleteOptions = { ...opts, dryRun }
  if (pinned && !opts.preconditions?.resourceVersion) deleteOpts.preconditions = { ...opts.preconditions, resourceVersion: pod.metadata.resourceVersion }
  await registry.delete(podsInfo, ns, name!, deleteOpts)
}

export async function handleEviction(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, registry: Registry): Promise<void> {
  if ((req.method ?? 'GET') !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on pods/eviction; POST an Eviction (policy/v1)`)
  const { deleteOptions } = parseEviction(decodeObject(req, await readBody(req)), p.name!)
  const dryRun = dryRunOf(deleteOptions, query)
  for (let attempt = 1; ; attempt++) {
    try {
      const { pod, pinned } = await decideOnce(registry, p.namespace!, p.name!, dryRun)
      await markAndDelete(registry, pod, pinned, deleteOptions, dryRun)
      break
    } catch (e) {
      // A budget or a pinned pod written meanwhile: read again and decide again, as Kubernetes retries on conflicts.
      const conflict = e instanceof ApiError && e.reason === 'Conflict' && !/UID in precondition/.test(e.message)
      if (conflict && attempt < attempts && !deleteOptions.preconditions?.resourceVersion) continue
      throw e
    }
  }
  sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
}
