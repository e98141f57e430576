// EndpointSlices (discovery.k8s.io/v1) and legacy v1 Endpoints for every
// Service with a selector. buildEndpointSlices is the pure part: from the
// Service, the pods and the existing slices it computes which slices to
// create, update and delete. The controller below only feeds it from the
// informer caches and writes the result.
//
// Slices group endpoints by their resolved port mapping (a named targetPort
// can resolve to different numbers on different pods), hold at most
// maxEndpointsPerSlice endpoints, and keep endpoints where they are when they
// can, so a change to one pod rewrites one slice. A Service whose selector
// matches nothing keeps one empty placeholder slice, as in Kubernetes.

import { lookupResource } from '../api/resources.ts'
import { labelSelectorFromObject, matchesLabels } from '../api/selectors.ts'
import type { KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { Counter } from '../../lib/metrics.ts'
import {
  canonical,
  endpointLabels,
  hasManagedEndpoints,
  managedByLabel,
  managedByValue,
  planEndpoints,
  podEndpoints,
  portKey,
  serviceNameLabel,
  targetRef,
  type EndpointPort,
  type EndpointsAction,
  type PodEndpoint,
} from './endpoints.ts'
import { PendingWrites } from './pending-writes.ts'
import type { Controller, ControllerContext } from './types.ts'

export const endpointSlicesInfo = lookupResource('discovery.k8s.io', 'v1', 'endpointslices')!

export interface SlicePlan {
  create: KubeObject[]
  update: KubeObject[]
  delete: KubeObject[]
}

/** Whether `slice` is one this controller wrote for `svc` (by label, so a user's own slices are never touched). */
export function isManagedSliceOf(slice: KubeObject, svc: { metadata: { namespace?: string; name?: string } }): boolean {
  const l = slice.metadata.labels ?? {}
  return slice.metadata.namespace === svc.metadata.namespace && l[serviceNameLabel] === svc.metadata.name && l[managedByLabel] === managedByValue
}

function sliceEndpoint(e: PodEndpoint): Record<string, unknown> {
  const out: Record<string, unknown> = { addresses: [e.ip], conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating } }
  if (e.hostname) out.hostname = e.hostname
  if (e.pod.spec?.nodeName) out.nodeName = e.pod.spec.nodeName
  out.targetRef = targetRef(e.pod)
  return out
}

/** Identity of an endpoint across rebuilds: its address and its pod. */
function endpointKey(ep: any): string {
  return `${ep?.addresses?.[0] ?? ''}|${ep?.targetRef?.namespace ?? ''}/${ep?.targetRef?.name ?? ''}`
}

function sliceMeta(svc: KubeObject): { labels: Record<string, string>; ownerReferences: any[] } {
  return {
    labels: endpointLabels(svc, { [serviceNameLabel]: svc.metadata.name!, [managedByLabel]: managedByValue }),
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata.name!, uid: svc.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
  }
}

function newSlice(svc: KubeObject, ports: EndpointPort[], endpoints: unknown[]): KubeObject {
  // generateName gives `<svc>-<5 chars>`; the prefix is cut so the whole name fits 63 characters.
  const prefix = `${svc.metadata.name!.slice(0, 57)}-`
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { generateName: prefix, namespace: svc.metadata.namespace, ...sliceMeta(svc) },
    addressType: 'IPv4',
    endpoints,
    ports,
  }
}

interface Group {
  ports: EndpointPort[]
  want: Map<string, Record<string, unknown>>
}

function desiredGroups(svc: KubeObject, pods: KubeObject[]): Map<string, Group> {
  const groups = new Map<string, Group>()
  for (const e of podEndpoints(svc, pods)) {
    let g = groups.get(e.portKey)
    if (!g) groups.set(e.portKey, (g = { ports: e.ports, want: new Map() }))
    const ep = sliceEndpoint(e)
    g.want.set(endpointKey(ep), ep)
  }
  return groups
}

const byName = (a: KubeObject, b: KubeObject) => (a.metadata.name! < b.metadata.name! ? -1 : a.metadata.name! > b.metadata.name! ? 1 : 0)

/**
 * Slices to create, update and delete so that `existing` (any slices; only the
 * ones managed for `svc` are considered) lists exactly the Service's endpoints.
 * A Service without a selector is left alone; an ExternalName one loses its slices.
 */
export function buildEndpointSlices(svc: KubeObject, pods: KubeObject[], existing: KubeObject[], opts: { maxEndpointsPerSlice?: number } = {}): SlicePlan {
  const max = opts.maxEndpointsPerSlice ?? 100
  const plan: SlicePlan = { create: [], update: [], delete: [] }
  const owned = existing.filter((s) => isManagedSliceOf(s, svc)).sort(byName)
  if (svc.spec?.type === 'ExternalName') return { ...plan, delete: owned }
  if (!hasManagedEndpoints(svc)) return plan

  const groups = desiredGroups(svc, pods)
  // Phase 1: keep each endpoint in the slice that already holds it (refreshed); drop stale ones.
  const kept = new Map<KubeObject, { group: Group; endpoints: Record<string, unknown>[] }>()
  for (const slice of owned) {
    const group = slice.addressType === 'IPv4' ? groups.get(portKey(slice.ports ?? [])) : undefined
    if (!group) continue
    const endpoints: Record<string, unknown>[] = []
    for (const ep of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
      const want = group.want.get(endpointKey(ep))
      if (!want) continue
      endpoints.push(want)
      group.want.delete(endpointKey(ep))
    }
    kept.set(slice, { group, endpoints })
  }
  // Phase 2: new endpoints fill slices of their port mapping that have room, then new slices.
  for (const group of groups.values()) {
    const rest = [...group.want.values()]
    for (const k of kept.values()) if (k.group === group) while (k.endpoints.length < max && rest.length) k.endpoints.push(rest.shift()!)
    for (let i = 0; i < rest.length; i += max) plan.create.push(newSlice(svc, group.ports, rest.slice(i, i + max)))
  }
  // Phase 3: empty or foreign slices go; changed ones are rewritten.
  const meta = sliceMeta(svc)
  for (const slice of owned) {
    const k = kept.get(slice)
    if (!k || k.endpoints.length === 0) plan.delete.push(slice)
    else if (changed(slice, k.endpoints, k.group.ports, meta)) plan.update.push({ ...slice, metadata: { ...slice.metadata, ...meta }, endpoints: k.endpoints, ports: k.group.ports })
  }
  return withPlaceholder(svc, plan, owned, meta)
}

function changed(slice: KubeObject, endpoints: unknown[], ports: EndpointPort[], meta: ReturnType<typeof sliceMeta>): boolean {
  return (
    canonical(slice.endpoints ?? []) !== canonical(endpoints) ||
    canonical(slice.ports ?? []) !== canonical(ports) ||
    canonical(slice.metadata.labels ?? {}) !== canonical(meta.labels) ||
    canonical(slice.metadata.ownerReferences ?? []) !== canonical(meta.ownerReferences)
  )
}

/** A Service with no endpoints at all keeps exactly one empty slice (Kubernetes' placeholder). */
function withPlaceholder(svc: KubeObject, plan: SlicePlan, owned: KubeObject[], meta: ReturnType<typeof sliceMeta>): SlicePlan {
  const remaining = owned.length - plan.delete.length
  if (remaining > 0 || plan.create.length > 0) return plan
  const i = plan.delete.findIndex((s) => s.addressType === 'IPv4')
  const reuse = i < 0 ? undefined : plan.delete.splice(i, 1)[0]
  if (!reuse) return { ...plan, create: [newSlice(svc, [], [])] }
  if (changed(reuse, [], [], meta)) plan.update.push({ ...reuse, metadata: { ...reuse.metadata, ...meta }, endpoints: [], ports: [] })
  return plan
}

// ---------------------------------------------------------------------------
// The controller: informer events enqueue Service keys; a sync builds and
// writes both the slices and the legacy Endpoints of one Service.

const servicesInfo = lookupResource('', 'v1', 'services')!
const podsInfo = lookupResource('', 'v1', 'pods')!
const endpointsInfo = lookupResource('', 'v1', 'endpoints')!

export class EndpointSliceController implements Controller {
  readonly name = 'endpointslice'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #services?: Informer
  #pods?: Informer
  #slices?: Informer
  #endpoints?: Informer
  /** Writes not yet seen in the cache, per Service key: `endpoints` or `slice/<name>`. */
  #pending = new PendingWrites()
  #syncs?: Counter

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger, workers: 2 })
    this.#syncs = new Counter({ name: 'endpointslice_controller_syncs_total', help: 'Service endpoint syncs by result', labelNames: ['result'], registers: [ctx.metrics] })
    this.#services = ctx.informers.for(servicesInfo)
    this.#pods = ctx.informers.for(podsInfo)
    this.#slices = ctx.informers.for(endpointSlicesInfo)
    this.#endpoints = ctx.informers.for(endpointsInfo)
    const enqueue = (o: KubeObject) => this.#queue!.add(keyFor(o))
    this.#services.addHandlers({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n), onDelete: enqueue })
    this.#endpoints.addHandlers({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n), onDelete: enqueue })
    const sliceOwner = (s: KubeObject) => {
      const svc = s.metadata.labels?.[serviceNameLabel]
      if (svc && s.metadata.labels?.[managedByLabel] === managedByValue) this.#queue!.add(`${s.metadata.namespace}/${svc}`)
    }
    this.#slices.addHandlers({ onAdd: sliceOwner, onUpdate: (_o, n) => sliceOwner(n), onDelete: sliceOwner })
    this.#pods.addHandlers({
      onAdd: (p) => this.#enqueueServicesOf(p),
      onUpdate: (o, n) => {
        this.#enqueueServicesOf(n)
        if (canonical(o.metadata.labels ?? {}) !== canonical(n.metadata.labels ?? {})) this.#enqueueServicesOf(o)
      },
      onDelete: (p) => this.#enqueueServicesOf(p),
    })
    // Never build from a half-filled cache: that would drop live endpoints for a moment.
    await ctx.informers.start()
    this.#queue.start((key) => this.#sync(key))
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
    this.#pending.clear()
  }

  #enqueueServicesOf(pod: KubeObject): void {
    for (const svc of this.#services!.list((s) => s.metadata.namespace === pod.metadata.namespace && hasManagedEndpoints(s))) {
      if (matchesLabels(labelSelectorFromObject({ matchLabels: svc.spec.selector }), pod.metadata.labels)) this.#queue!.add(keyFor(svc))
    }
  }

  async #sync(key: string): Promise<void> {
    if (!this.#pending.caughtUp(key, (objKey) => this.#cached(key, objKey))) return this.#queue!.addAfter(key, 100)
    const ns = key.slice(0, key.indexOf('/'))
    const svc = this.#services!.get(key)
    const pods = this.#pods!.list((p) => p.metadata.namespace === ns)
    try {
      // Once the Service is gone its slices go with it (garbage collection through ownerReferences).
      if (svc) await this.#applySlices(key, buildEndpointSlices(svc, pods, this.#slices!.list((s) => s.metadata.namespace === ns), { maxEndpointsPerSlice: this.#ctx!.config.maxEndpointsPerSlice }))
      await this.#applyEndpoints(key, planEndpoints(svc, pods, this.#endpoints!.get(key)))
      this.#syncs!.inc({ result: 'success' })
    } catch (e) {
      this.#syncs!.inc({ result: 'error' })
      const conflict = e instanceof ApiClientError && (e.status === 409 || e.status === 404)
      if (svc && !conflict) this.#ctx!.events.event(svc, 'Warning', 'FailedToUpdateEndpointSlices', `Error updating Endpoint Slices for Service ${key}: ${(e as Error).message}`)
      throw e
    }
  }

  async #applySlices(key: string, plan: SlicePlan): Promise<void> {
    const client = this.#ctx!.client
    for (const s of plan.delete) {
      try {
        await client.delete(endpointSlicesInfo, s.metadata.namespace, s.metadata.name!)
      } catch (e) {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      }
      this.#pending.expect(key, `slice/${s.metadata.name}`, '')
    }
    for (const s of plan.update) this.#pending.expect(key, `slice/${s.metadata.name}`, (await client.update(endpointSlicesInfo, s)).metadata.resourceVersion!)
    for (const s of plan.create) {
      const made = await client.create(endpointSlicesInfo, s.metadata.namespace, s)
      this.#pending.expect(key, `slice/${made.metadata.name}`, made.metadata.resourceVersion!)
    }
  }

  async #applyEndpoints(key: string, action: EndpointsAction): Promise<void> {
    const client = this.#ctx!.client
    if (action.op === 'none') return
    const o = action.object
    if (action.op === 'delete') {
      await client.delete(endpointsInfo, o.metadata.namespace, o.metadata.name!).catch((e) => {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      })
      return this.#pending.expect(key, 'endpoints', '')
    }
    const written = action.op === 'create' ? await client.create(endpointsInfo, o.metadata.namespace, o) : await client.update(endpointsInfo, o)
    this.#pending.expect(key, 'endpoints', written.metadata.resourceVersion!)
  }

  /** The cached object a pending-write key names: the Endpoints, or one slice. */
  #cached(svcKey: string, objKey: string): KubeObject | undefined {
    if (objKey === 'endpoints') return this.#endpoints!.get(svcKey)
    return this.#slices!.get(`${svcKey.slice(0, svcKey.indexOf('/'))}/${objKey.slice('slice/'.length)}`)
  }
}
