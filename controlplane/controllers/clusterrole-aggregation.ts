// ClusterRole aggregation (kube-controller-manager's clusterrole-aggregation
// controller): a ClusterRole with an aggregationRule gets, as its rules, the
// rules of every ClusterRole its selectors match. This is how admin, edit and
// view grow when a ClusterRole labelled
// `rbac.authorization.k8s.io/aggregate-to-edit: "true"` appears. Any change
// of any ClusterRole re-checks every aggregated one (there are few); the
// write is a PUT with the resourceVersion read, so a 409 retries.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { aggregatedRules, rulesOf, sameRules } from '../apiserver/rbac/rules.ts'
import type { Controller, ControllerContext } from './types.ts'

const clusterRoles = lookupResource('rbac.authorization.k8s.io', 'v1', 'clusterroles')!

export class ClusterRoleAggregationController implements Controller {
  readonly name = 'clusterrole-aggregation'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #roles?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#roles = ctx.informers.for(clusterRoles)
    const pokeAll = () => {
      for (const r of this.#roles!.list((o) => !!o.aggregationRule)) this.#queue!.add(r.metadata.name!)
    }
    this.#roles.addHandlers({ onAdd: pokeAll, onUpdate: (o, n) => o !== n && pokeAll(), onDelete: pokeAll })
    await ctx.informers.start()
    this.#queue.start((name) => this.#sync(name))
    pokeAll()
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
  }

  async #sync(name: string): Promise<void> {
    const role = this.#roles!.get(name)
    if (!role) return
    const want = aggregatedRules(role, this.#roles!.list())
    if (!want || sameRules(rulesOf(role), want)) return
    const next: KubeObject = { ...role, rules: want }
    try {
      await this.#ctx!.client.update(clusterRoles, next)
      this.#ctx!.logger.info({ controller: this.name, clusterRole: name, rules: want.length }, 'aggregated rules updated')
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) return
      throw e
    }
  }
}
