// POST pods/NAME/binding: a scheduler's bind in one store write
// (spec.nodeName and PodScheduled=True together), as kube-apiserver's
// BindingREST. The decision is planBinding (../api/binding.ts, pure); here
// it is written with the read pod's resourceVersion as precondition. A
// write that loses a race to another writer (a status update) reads again
// and decides again, like GuaranteedUpdate, unless the Binding itself
// carried a resourceVersion: then the 409 is the answer.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseBinding, planBinding } from '../api/binding.ts'
import { ApiError } from '../api/errors.ts'
import { decodeObject, readBody, sendJson } from './http-util.ts'
import type { ResourcePath } from './paths.ts'
import type { Registry } from './registry.ts'

const attempts = 20

export async function handleBinding(req: IncomingMessage, res: ServerResponse, p: ResourcePath, query: URLSearchParams, registry: Registry, fieldManager: string): Promise<void> {
  if ((req.method ?? 'GET') !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not supported on pods/binding; POST a Binding (v1)`)
  const binding = parseBinding(decodeObject(req, await readBody(req)), p.name!, p.namespace)
  const dryRun = query.getAll('dryRun').includes('All')
  for (let attempt = 1; ; attempt++) {
    const pod = await registry.get(p.info, p.namespace, p.name!)
    const next = planBinding(pod, binding, new Date())
    try {
      await registry.updateFrom(p.info, pod, next, { dryRun, subresource: 'binding', fieldManager })
      break
    } catch (e) {
      const raced = e instanceof ApiError && e.reason === 'Conflict' && !binding.resourceVersion
      if (!raced || attempt >= attempts) throw e
    }
  }
  sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
}
