// The taint eviction controller (Kubernetes' taint-eviction-controller, the
// NoExecuteTaintManager): a NoExecute taint an operator puts on a node
// (`kubectl taint node N k=v:NoExecute`) evicts the pods there that do not
// tolerate it, at once or after their tolerationSeconds
// (taint-eviction-plan.ts). Eviction is what Kubernetes does: a
// `TaintManagerEviction` Event, the pod condition DisruptionTarget
// (DeletionByTaintManager), then a graceful delete with the pod's uid as
// precondition. The node lifecycle controller's own taints are evicted by
// node-lifecycle.ts through the same evictForTaint.

import { withDisruptionTarget } from '../api/disruption.ts'
import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError, resourcePath } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { LeaseObserver } from '../client/lease-observer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { operatorNoExecuteTaints, planTaintEvictions } from './taint-eviction-plan.ts'
import type { Controller, ControllerContext } from './types.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const podsInfo = lookupResource('', 'v1', 'pods')!

/** Event, DisruptionTarget condition, graceful delete (uid precondition: a new pod of the same name is never hit). A pod already gone is fine. */
export async function evictForTaint(ctx: Pick<ControllerContext, 'client' | 'events'>, pod: KubeObject): Promise<void> {
  const { client, events } = ctx
  events.event(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}`)
  try {
    const conditions = withDisruptionTarget(pod, 'DeletionByTaintManager', 'Taint manager: deleting due to NoExecute taint', Date.now())
    await client.update(podsInfo, { ...pod, status: { ...pod.status, conditions } }, 'status')
  } catch (e) {
    // 409: the agent wrote the status meanwhile; the condition is informative, the delete is what counts.
    if (e instanceof ApiClientError && e.status === 404) return
    if (!(e instanceof ApiClientError && e.status === 409)) throw e
  }
  const body = { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: pod.metadata.uid } }
  try {
    await client.call('DELETE', resourcePath(podsInfo, pod.metadata.namespace, pod.metadata.name), { body })
  } catch (e) {
    if (!(e instanceof ApiClientError && (e.status === 404 || e.status === 409))) throw e
  }
}

export class TaintEvictionController implements Controller {
  readonly name = 'taint-eviction'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #nodes?: Informer
  #pods?: Informer
  #podsByNode = new Map<string, Map<string, KubeObject>>()
  /** Since when (monotonic) each pod has been seen needing eviction. */
  #seen = new LeaseObserver()

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger })
    this.#nodes = ctx.informers.for(nodesInfo)
    this.#pods = ctx.informers.for(podsInfo)
    const q = (n: KubeObject) => this.#queue!.add(n.metadata.name!)
    this.#nodes.addHandlers({
      onAdd: q,
      onUpdate: (o, n) => (operatorNoExecuteTaints(o).length || operatorNoExecuteTaints(n).length) && q(n),
    })
    this.#pods.addHandlers({ onAdd: (p) => this.#index(undefined, p), onUpdate: (o, p) => this.#index(o, p), onDelete: (p) => this.#index(p, undefined) })
    await ctx.informers.start()
    this.#queue.start((name) => this.#sync(name))
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
    this.#podsByNode.clear()
    this.#seen = new LeaseObserver()
  }

  #index(old: KubeObject | undefined, pod: KubeObject | undefined): void {
    if (old?.spec?.nodeName) this.#podsByNode.get(old.spec.nodeName)?.delete(keyFor(old))
    if (old && !pod) this.#seen.forget(`evict/${old.metadata.uid}`)
    const node = pod?.spec?.nodeName
    if (!node || !pod) return
    let m = this.#podsByNode.get(node)
    if (!m) this.#podsByNode.set(node, (m = new Map()))
    m.set(keyFor(pod), pod)
    // A pod newly bound to a tainted node is judged now, not at the next node event.
    if (!old?.spec?.nodeName && this.#nodes?.get(node) && operatorNoExecuteTaints(this.#nodes.get(node)!).length) this.#queue?.add(node)
  }

  async #sync(name: string): Promise<void> {
    const node = this.#nodes!.get(name)
    const pods = [...(this.#podsByNode.get(name)?.values() ?? [])]
    if (!node) return
    const mono = this.#seen.now()
    const plan = planTaintEvictions({ node, pods, pendingForMs: (p) => mono - this.#seen.observe(`evict/${p.metadata.uid}`, 'pending', mono) })
    for (const p of pods) if (!plan.pending.has(p.metadata.uid!)) this.#seen.forget(`evict/${p.metadata.uid}`)
    if (plan.recheckAfterMs !== undefined) this.#queue!.addAfter(name, plan.recheckAfterMs + 50)
    for (const pod of plan.evict) {
      this.#ctx!.logger.info({ controller: this.name, node: name, pod: keyFor(pod) }, 'evicting a pod that does not tolerate a NoExecute taint')
      await evictForTaint(this.#ctx!, pod)
    }
  }
}
