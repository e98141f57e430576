// EndpointSliceMirroringController: hand-written v1 Endpoints of a Service
// without a selector → EndpointSlices (plan in endpointslice-mirroring-plan.ts).
// Keys are `namespace/name` of the Endpoints, which is also the Service's.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { managedByLabel, serviceNameLabel } from './endpoints.ts'
import { endpointSlicesInfo } from './endpointslice.ts'
import { mirroringManagedByValue, mirrorsFor, planMirroredSlices, shouldMirror, maxEndpointsPerSubset, type MirrorPlan } from './endpointslice-mirroring-plan.ts'
import { PendingWrites } from './pending-writes.ts'
import type { Controller, ControllerContext } from './types.ts'

const servicesInfo = lookupResource('', 'v1', 'services')!
const endpointsInfo = lookupResource('', 'v1', 'endpoints')!

export class EndpointSliceMirroringController implements Controller {
  readonly name = 'endpointslice-mirroring'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #services?: Informer
  #endpoints?: Informer
  #slices?: Informer
  /** Slice writes not yet seen in the cache, per Endpoints key, by slice name. */
  #pending = new PendingWrites()

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger, workers: 1 })
    this.#services = ctx.informers.for(servicesInfo)
    this.#endpoints = ctx.informers.for(endpointsInfo)
    this.#slices = ctx.informers.for(endpointSlicesInfo)
    const enqueue = (o: KubeObject) => this.#queue!.add(keyFor(o))
    this.#services.addHandlers({
      onAdd: (s) => mirrorsFor(s) && enqueue(s),
      onUpdate: (o, n) => mirrorsFor(o) !== mirrorsFor(n) && enqueue(n),
      onDelete: (s) => mirrorsFor(s) && enqueue(s),
    })
    this.#endpoints.addHandlers({
      onAdd: (e) => shouldMirror(e) && enqueue(e),
      onUpdate: (o, n) => (shouldMirror(o) || shouldMirror(n)) && enqueue(n),
      onDelete: (e) => shouldMirror(e) && enqueue(e),
    })
    const sliceOwner = (s: KubeObject) => {
      const name = s.metadata.labels?.[serviceNameLabel]
      if (name && s.metadata.labels?.[managedByLabel] === mirroringManagedByValue) this.#queue!.add(`${s.metadata.namespace}/${name}`)
    }
    this.#slices.addHandlers({ onAdd: sliceOwner, onUpdate: (o, n) => (sliceOwner(o), sliceOwner(n)), onDelete: sliceOwner })
    await ctx.informers.start()
    this.#queue.start((key) => this.#sync(key))
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
    this.#pending.clear()
  }

  async #sync(key: string): Promise<void> {
    if (!this.#pending.caughtUp(key, (slice) => this.#slices!.get(`${key.slice(0, key.indexOf('/'))}/${slice}`))) return this.#queue!.addAfter(key, 100)
    const i = key.indexOf('/')
    const ns = key.slice(0, i)
    const name = key.slice(i + 1)
    const endpoints = this.#endpoints!.get(key)
    const plan = planMirroredSlices(ns, name, endpoints, this.#services!.get(key), this.#slices!.list((s) => s.metadata.namespace === ns), { maxEndpointsPerSubset })
    const writes = plan.create.length + plan.update.length + plan.delete.length
    if (writes === 0) return
    // Events only with a write: our own slice writes bring the key back, and must not repeat them.
    if (endpoints) this.#recordSkipped(endpoints, plan)
    await this.#apply(key, endpoints, plan)
  }

  #recordSkipped(endpoints: KubeObject, plan: MirrorPlan): void {
    const events = this.#ctx!.events
    if (plan.invalidAddresses > 0) events.event(endpoints, 'Warning', 'InvalidIPAddress', `Skipped ${plan.invalidAddresses} invalid IP addresses when mirroring to EndpointSlices`)
    if (plan.skippedAddresses > plan.invalidAddresses) {
      events.event(endpoints, 'Warning', 'TooManyAddressesToMirror', `A max of ${maxEndpointsPerSubset} addresses can be mirrored to EndpointSlices per Endpoints subset. ${plan.skippedAddresses} addresses were skipped`)
    }
  }

  async #apply(key: string, endpoints: KubeObject | undefined, plan: MirrorPlan): Promise<void> {
    const client = this.#ctx!.client
    // Kubernetes creates no slices for Endpoints being deleted.
    if (!endpoints?.metadata.deletionTimestamp) {
      for (const s of plan.create) {
        const made = await client.create(endpointSlicesInfo, s.metadata.namespace, s)
        this.#pending.expect(key, made.metadata.name!, made.metadata.resourceVersion!)
      }
    }
    for (const s of plan.update) this.#pending.expect(key, s.metadata.name!, (await client.update(endpointSlicesInfo, s)).metadata.resourceVersion!)
    for (const s of plan.delete) {
      await client.delete(endpointSlicesInfo, s.metadata.namespace, s.metadata.name!).catch((e) => {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      })
      this.#pending.expect(key, s.metadata.name!, '')
    }
  }
}
