// The TTL-after-finished controller: a Job with spec.ttlSecondsAfterFinished
// is deleted (propagationPolicy Background, guarded by its uid) that many
// seconds after it finished, i.e. after its Complete or Failed condition's
// lastTransitionTime (completionTime for Complete). `ttlExpiry` is the pure
// part; the queue brings a Job back when it is due.

import type { KubeObject } from '../api/types.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { condition } from './job-plan.ts'
import { deleteJobInBackground, jobsInfo } from './job.ts'
import type { Controller, ControllerContext } from './types.ts'
import { SyncLoop } from './workload-loop.ts'

/** When a finished Job with a TTL is due for deletion (epoch ms); undefined when it has no TTL, is not finished, or is being deleted. */
export function ttlExpiry(job: KubeObject): number | undefined {
  const ttl = job.spec?.ttlSecondsAfterFinished
  if (typeof ttl !== 'number' || job.metadata.deletionTimestamp) return undefined
  const c = condition(job, 'Complete') ?? condition(job, 'Failed')
  if (!c) return undefined
  const finished = Date.parse((c.type === 'Complete' && job.status?.completionTime) || c.lastTransitionTime || '')
  return Number.isNaN(finished) ? undefined : finished + ttl * 1000
}

export class TTLAfterFinishedController implements Controller {
  readonly name = 'ttl-after-finished'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #jobs?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const jobs = (this.#jobs = ctx.informers.for(jobsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [jobs], sync: (k) => this.#sync(k) }))
    const enqueue = (j: KubeObject) => {
      if (typeof j.spec?.ttlSecondsAfterFinished === 'number') loop.enqueue(keyFor(j))
    }
    jobs.addHandlers({ onAdd: enqueue, onUpdate: (_, j) => enqueue(j) })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const job = this.#jobs!.get(key)
    if (!job) return undefined
    const at = ttlExpiry(job)
    if (at === undefined) return undefined
    const wait = at - Date.now()
    if (wait > 0) return wait + 50
    await deleteJobInBackground(this.#ctx!.client, job)
    return undefined
  }
}
