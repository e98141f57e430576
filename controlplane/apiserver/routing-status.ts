// "Applied on n/n nodes" for `kubectl get svc,ingress -o wide` (issue 11):
// caches of the Leases that carry the data plane's applied revisions, and of
// the Services and EndpointSlices that say which revision a Service or an
// Ingress must reach. The arithmetic is ../api/routing-applied.ts; a Lease
// is fresh while it was seen renewed within its duration by this server's
// monotonic clock (../client/lease-observer.ts).

import type { KubeObject } from '../api/types.ts'
import { keyFor } from '../client/informer.ts'
import {
  appliedText,
  ingressAppliers,
  ingressTarget,
  nodeLeaseNamespace,
  presenceLeaseNamespace,
  proxyAppliers,
  serviceTarget,
  servingAppliers,
} from '../api/routing-applied.ts'
import { LeaseObserver } from '../client/lease-observer.ts'
import type { Store } from '../store/types.ts'
import type { Logger } from '../../lib/log.ts'
import { StoreCache } from './store-cache.ts'

export class RoutingStatus {
  #leases: StoreCache
  #slices: StoreCache
  #services: StoreCache
  #observer = new LeaseObserver()

  constructor(opts: { store: Store; logger: Logger }) {
    this.#leases = new StoreCache({
      ...opts,
      resource: 'leases.coordination.k8s.io',
      filter: (o) => o.metadata.namespace === nodeLeaseNamespace || (o.metadata.namespace === presenceLeaseNamespace && o.metadata.name?.startsWith('ingress-') === true),
    })
    this.#leases.onChange((type, l) => (type === 'DELETED' ? this.#observer.forget(keyFor(l)) : void this.#observer.observedAt(l)))
    this.#slices = new StoreCache({ ...opts, resource: 'endpointslices.discovery.k8s.io' })
    this.#services = new StoreCache({ ...opts, resource: 'services' })
  }

  async start(): Promise<void> {
    await Promise.all([this.#leases.start(), this.#slices.start(), this.#services.start()])
  }

  stop(): void {
    for (const c of [this.#leases, this.#slices, this.#services]) c.stop()
  }

  /** The Applied cell of a Service or an Ingress, e.g. "3/3" (undefined for other kinds). */
  applied(kind: string, obj: KubeObject): string | undefined {
    if (kind !== 'Service' && kind !== 'Ingress') return undefined
    if (!this.#leases.synced || !this.#slices.synced || !this.#services.synced) return '<unknown>'
    const appliers = servingAppliers(this.#leases.items.values(), (l) => this.#observer.fresh(l))
    if (kind === 'Service') return appliedText(proxyAppliers(appliers), serviceTarget(obj, this.#slices.items.values()))
    return appliedText(ingressAppliers(obj, appliers), ingressTarget(obj, this.#services.items.values(), this.#slices.items.values()))
  }
}
