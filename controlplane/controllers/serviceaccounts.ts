// The ServiceAccounts controller (kube-controller-manager's
// serviceaccount-controller): every Namespace has a ServiceAccount named
// `default`; one that is missing (a new namespace, or someone deleted it) is
// created again. A namespace being deleted gets none.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import type { Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import type { Controller, ControllerContext } from './types.ts'

const namespaces = lookupResource('', 'v1', 'namespaces')!
const serviceAccounts = lookupResource('', 'v1', 'serviceaccounts')!
export const defaultServiceAccount = 'default'

/** Does this namespace need its default ServiceAccount created? Pure. */
export function needsDefaultServiceAccount(ns: KubeObject | undefined, sa: KubeObject | undefined): boolean {
  return !!ns && !ns.metadata.deletionTimestamp && ns.status?.phase !== 'Terminating' && !sa
}

export class ServiceAccountsController implements Controller {
  readonly name = 'serviceaccount'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #namespaces?: Informer
  #accounts?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#namespaces = ctx.informers.for(namespaces)
    this.#accounts = ctx.informers.for(serviceAccounts)
    const q = (ns: string | undefined) => ns && this.#queue!.add(ns)
    this.#namespaces.addHandlers({ onAdd: (n) => q(n.metadata.name), onUpdate: (_, n) => q(n.metadata.name) })
    this.#accounts.addHandlers({ onDelete: (sa) => sa.metadata.name === defaultServiceAccount && q(sa.metadata.namespace) })
    await ctx.informers.start()
    this.#queue.start((ns) => this.#sync(ns))
    for (const n of this.#namespaces.list()) q(n.metadata.name)
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
  }

  async #sync(ns: string): Promise<void> {
    if (!needsDefaultServiceAccount(this.#namespaces!.get(ns), this.#accounts!.get(`${ns}/${defaultServiceAccount}`))) return
    try {
      await this.#ctx!.client.create(serviceAccounts, ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: defaultServiceAccount, namespace: ns } })
      this.#ctx!.logger.info({ controller: this.name, namespace: ns }, 'created the default ServiceAccount')
    } catch (e) {
      // Already there (the cache was behind), or the namespace is going away.
      if (e instanceof ApiClientError && (e.status === 409 || e.status === 403 || e.status === 404)) return
      throw e
    }
  }
}
