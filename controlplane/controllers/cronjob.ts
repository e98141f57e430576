// The CronJob controller: creates a Job for each scheduled time (see
// cronjob-plan.ts for the rules), keeps status.active / lastScheduleTime /
// lastSuccessfulTime, replaces or forbids concurrent runs, and deletes
// finished Jobs beyond the history limits (propagationPolicy Background, so
// their pods go too). Handlers only enqueue the CronJob's key; the queue
// brings it back when its next schedule is due, timed on
// ControllerConfig.cronJobClock (clock.ts).

import { parseSchedule, type CronSchedule } from '../api/cron.ts'
import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { wallClock } from './clock.ts'
import { jobRef, planCronJob } from './cronjob-plan.ts'
import { deleteJobInBackground, jobsInfo } from './job.ts'
import { canonicalJson, controllerRefOf, resolveControllerRef } from './pod-template.ts'
import type { Controller, ControllerContext } from './types.ts'
import { SyncLoop } from './workload-loop.ts'

export const cronJobsInfo = lookupResource('batch', 'v1', 'cronjobs')!

export class CronJobController implements Controller {
  readonly name = 'cronjob'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #cjs?: Informer
  #jobs?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const cjs = (this.#cjs = ctx.informers.for(cronJobsInfo))
    const jobs = (this.#jobs = ctx.informers.for(jobsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [cjs, jobs], sync: (k) => this.#sync(k), workers: 2 }))
    cjs.addHandlers({ onAdd: (cj) => loop.enqueue(keyFor(cj)), onUpdate: (_, cj) => loop.enqueue(keyFor(cj)) })
    const owner = (j: KubeObject) => {
      const cj = resolveControllerRef(cjs, j, 'CronJob')
      if (cj) loop.enqueue(keyFor(cj))
    }
    jobs.addHandlers({ onAdd: owner, onUpdate: (_, j) => owner(j), onDelete: owner })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const ctx = this.#ctx!
    const clock = ctx.config.cronJobClock ?? wallClock
    const cj = this.#cjs!.get(key)
    if (!cj) return undefined
    const jobs = this.#jobs!.list((j) => j.metadata.namespace === cj.metadata.namespace && controllerRefOf(j)?.uid === cj.metadata.uid)
    // An active Job missing from the cache may just be new: ask the apiserver before calling it gone.
    for (const ref of cj.status?.active ?? []) {
      if (jobs.some((j) => j.metadata.uid === ref.uid)) continue
      const j = await ctx.client.get(jobsInfo, cj.metadata.namespace, ref.name).catch((e) => {
        if (e instanceof ApiClientError && e.status === 404) return undefined
        throw e
      })
      if (j && j.metadata.uid === ref.uid) jobs.push(j)
    }
    let schedule: CronSchedule | undefined
    let scheduleError: string | undefined
    try {
      schedule = parseSchedule(cj.spec?.schedule ?? '', cj.spec?.timeZone ?? undefined)
    } catch (e) {
      scheduleError = (e as Error).message
    }
    const plan = planCronJob({ cj, jobs, now: clock.now(), schedule, scheduleError })
    for (const j of plan.replace) await this.#deleteJob(cj, j)
    const status = plan.status
    if (plan.create) {
      const created = await this.#createJob(cj, plan.create)
      if (created) status.active = [...(status.active ?? []), jobRef(created)]
      else delete status.lastScheduleTime
    }
    for (const e of plan.events) ctx.events.event(cj, e.type, e.reason, e.message)
    if (canonicalJson(status) !== canonicalJson(cj.status ?? {})) {
      try {
        await ctx.client.update(cronJobsInfo, { ...clone(cj), status }, 'status')
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      }
    }
    for (const j of plan.prune) await this.#deleteJob(cj, j)
    return plan.requeueAfterMs === undefined ? undefined : clock.realDelayMs(plan.requeueAfterMs)
  }

  /** Create the Job; an existing one of ours with that name counts as created (a write we did not see yet). */
  async #createJob(cj: KubeObject, job: KubeObject): Promise<KubeObject | undefined> {
    const ctx = this.#ctx!
    try {
      const created = await ctx.client.create(jobsInfo, cj.metadata.namespace, job)
      ctx.events.event(cj, 'Normal', 'SuccessfulCreate', `Created job ${created.metadata.name}`)
      return created
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 409) {
        const existing = await ctx.client.get(jobsInfo, cj.metadata.namespace, job.metadata.name!).catch(() => undefined)
        return existing && controllerRefOf(existing)?.uid === cj.metadata.uid ? existing : undefined
      }
      ctx.events.event(cj, 'Warning', 'FailedCreate', `Error creating job: ${(e as Error).message}`)
      throw e
    }
  }

  async #deleteJob(cj: KubeObject, job: KubeObject): Promise<void> {
    const ctx = this.#ctx!
    try {
      if (await deleteJobInBackground(ctx.client, job)) ctx.events.event(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`)
    } catch (e) {
      ctx.events.event(cj, 'Warning', 'FailedDelete', `Deleted job: ${(e as Error).message}`)
      throw e
    }
  }
}
