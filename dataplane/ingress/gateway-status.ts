// Gateway API status of one pool, written by the same elected supervisor as
// the Ingress status (Lease ingress-<class>-status). planGatewayStatus is
// pure: from buildGatewayRouting's facts, the cached objects and the pool's
// serving addresses it gives the whole desired status of every GatewayClass,
// Gateway and HTTPRoute that differs. Conditions carry observedGeneration and
// keep their lastTransitionTime while their status is unchanged. An
// HTTPRoute's status.parents keeps every entry this pool does not own (other
// controllers', and Skiff's for Gateways of the other pool) and replaces its
// own, so stale entries of removed parentRefs go. The writer is thin: status
// PUTs guarded by the cached resourceVersion (409: the next round plans
// again).

import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import type { Logger } from '../../lib/log.ts'
import { gatewayControllerName, gatewayGroup, type GatewayBuild, type GwCondition } from './gateway-build.ts'
import { ingressKey } from './routes.ts'
import { sameJson } from './status.ts'

export const gatewayInfo = {
  gatewayClasses: lookupResource(gatewayGroup, 'v1', 'gatewayclasses')!,
  gateways: lookupResource(gatewayGroup, 'v1', 'gateways')!,
  httpRoutes: lookupResource(gatewayGroup, 'v1', 'httproutes')!,
  referenceGrants: lookupResource(gatewayGroup, 'v1beta1', 'referencegrants')!,
}

export interface GatewayStatusUpdate { kind: 'GatewayClass' | 'Gateway' | 'HTTPRoute'; key: string; status: Record<string, unknown> }

export interface GatewayStatusInputs {
  build: GatewayBuild
  gatewayClasses: KubeObject[]
  gateways: KubeObject[]
  httpRoutes: KubeObject[]
  /** Addresses of the pool's serving nodes (status.ts poolAddresses ∩ presence). */
  addresses: string[]
  now: string
}

type Cond = GwCondition & { observedGeneration: number; lastTransitionTime: string }

function conditions(desired: GwCondition[], old: unknown, generation: number, now: string): Cond[] {
  const prev = new Map((Array.isArray(old) ? old : []).map((c: any) => [c?.type, c]))
  return desired.map((c) => {
    const p = prev.get(c.type)
    return { ...c, observedGeneration: generation, lastTransitionTime: p?.status === c.status && typeof p?.lastTransitionTime === 'string' ? p.lastTransitionTime : now }
  })
}

const sameParent = (a: any, b: any, routeNs: string) => (a?.namespace || routeNs) === (b?.namespace || routeNs) && a?.name === b?.name && (a?.sectionName ?? '') === (b?.sectionName ?? '') && (a?.port ?? 0) === (b?.port ?? 0)

export function planGatewayStatus(input: GatewayStatusInputs): GatewayStatusUpdate[] {
  const out: GatewayStatusUpdate[] = []
  const { build, now } = input
  const push = (kind: GatewayStatusUpdate['kind'], obj: KubeObject, status: Record<string, unknown>) => {
    if (!sameJson(status, obj.status ?? {})) out.push({ kind, key: ingressKey(obj), status })
  }
  if (build.gatewayClass) {
    const gc = input.gatewayClasses.find((c) => c.metadata?.name === build.gatewayClass!.name)
    if (gc) push('GatewayClass', gc, { ...gc.status, conditions: conditions(build.gatewayClass.conditions, gc.status?.conditions, build.gatewayClass.generation, now) })
  }
  const gateways = new Map(input.gateways.map((g) => [ingressKey(g), g]))
  for (const f of build.gateways) {
    const g = gateways.get(f.key)
    if (!g) continue
    const addressed = input.addresses.length > 0
    const desired = f.conditions.map((c) => (c.type === 'Programmed' && c.status === 'True' && !addressed ? { ...c, status: 'False' as const, reason: 'AddressNotAssigned', message: 'no node of the pool serves yet' } : c))
    const oldListeners = new Map((Array.isArray(g.status?.listeners) ? g.status.listeners : []).map((l: any) => [l?.name, l]))
    push('Gateway', g, {
      addresses: input.addresses.map((value) => ({ type: 'IPAddress', value })),
      conditions: conditions(desired, g.status?.conditions, f.generation, now),
      listeners: f.listeners.map((l) => ({
        name: l.name,
        supportedKinds: [{ group: gatewayGroup, kind: 'HTTPRoute' }],
        attachedRoutes: l.attachedRoutes,
        conditions: conditions(l.conditions, (oldListeners.get(l.name) as any)?.conditions, f.generation, now),
      })),
    })
  }
  const ownGateways = new Set(build.gateways.map((g) => g.key))
  const routes = new Map(input.httpRoutes.map((r) => [ingressKey(r), r]))
  const planned = new Set<string>()
  for (const f of build.routes) {
    const r = routes.get(f.key)
    if (!r) continue
    planned.add(f.key)
    const ns = r.metadata?.namespace ?? ''
    const old: any[] = Array.isArray(r.status?.parents) ? r.status.parents : []
    const mine = (p: any) => p?.controllerName === gatewayControllerName && ownGateways.has(`${p?.parentRef?.namespace || ns}/${p?.parentRef?.name}`)
    const parents = [
      ...old.filter((p) => !mine(p)),
      ...f.parents.map((p) => ({
        parentRef: p.parentRef,
        controllerName: gatewayControllerName,
        conditions: conditions(p.conditions, old.find((o) => mine(o) && sameParent(o.parentRef, p.parentRef, ns))?.conditions, f.generation, now),
      })),
    ]
    push('HTTPRoute', r, { ...r.status, parents })
  }
  // Routes that no longer name a Gateway of this pool: drop this pool's stale entries.
  for (const r of input.httpRoutes) {
    if (planned.has(ingressKey(r))) continue
    const ns = r.metadata?.namespace ?? ''
    const old: any[] = Array.isArray(r.status?.parents) ? r.status.parents : []
    const kept = old.filter((p) => !(p?.controllerName === gatewayControllerName && ownGateways.has(`${p?.parentRef?.namespace || ns}/${p?.parentRef?.name}`)))
    if (kept.length !== old.length) push('HTTPRoute', r, { ...r.status, parents: kept })
  }
  return out
}

/** Writes the planned statuses; false when some write failed (the caller plans again later). */
export async function applyGatewayStatus(o: { client: ApiClient; logger: Logger; updates: GatewayStatusUpdate[]; objects: Map<string, KubeObject> }): Promise<boolean> {
  let ok = true
  const infoOf = { GatewayClass: gatewayInfo.gatewayClasses, Gateway: gatewayInfo.gateways, HTTPRoute: gatewayInfo.httpRoutes }
  for (const u of o.updates) {
    const obj = o.objects.get(`${u.kind}/${u.key}`)
    if (!obj) continue
    try {
      await o.client.update(infoOf[u.kind], { ...obj, status: u.status }, 'status')
    } catch (e) {
      ok = false
      const status = e instanceof ApiClientError ? e.status : 0
      if (status !== 409 && status !== 404) o.logger.warn({ kind: u.kind, key: u.key, err: (e as Error).message }, 'gateway status write failed')
    }
  }
  return ok
}
