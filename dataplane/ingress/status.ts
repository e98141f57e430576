// Ingress status and conflict Events of one class. planIngressStatus is pure:
// from the class's Ingresses, the Nodes and the compiled conflicts it says
// which Ingress needs which status and which Events are new. The writer
// (applyIngressStatus) is thin: status subresource PUTs guarded by the cached
// resourceVersion (a 409 means the informer has a newer copy and the next
// round plans again), Events through the recorder. Only the elected supervisor
// of a class (Lease ingress-<class>-status) calls it. dumpRoutes is the same
// report as text, for /debug/ingress.

import { lookupResource } from '../../controlplane/api/resources.ts'
import type { KubeObject } from '../../controlplane/api/types.ts'
import { ApiClientError, type ApiClient } from '../../controlplane/client/client.ts'
import type { EventRecorder } from '../../controlplane/controllers/types.ts'
import type { Logger } from '../../lib/log.ts'
import type { BrokenIngress, Conflict, RouteTable } from './routes.ts'
import type { IngressSnapshot } from './snapshot.ts'
import { ingressKey } from './routes.ts'
import { ingressPoolLabel } from './snapshot-build.ts'
import type { UnresolvedRef } from './refs.ts'

const ingressesInfo = lookupResource('networking.k8s.io', 'v1', 'ingresses')!

export const conditionAccepted = 'Accepted'
export const reasonConflict = 'RouteConflict'
export const reasonInvalid = 'InvalidIngress'
export const conditionResolvedRefs = 'ResolvedRefs'

export interface IngressCondition {
  type: string
  status: 'True' | 'False'
  reason: string
  message: string
  lastTransitionTime: string
}

export interface PlannedEvent {
  /** 'namespace/name' of the Ingress the Event is about. */
  ingress: string
  type: 'Warning'
  reason: string
  message: string
}

export interface StatusPlan {
  /** Ingresses whose status differs from the desired one, with the whole desired status. */
  updates: Array<{ ingress: string; status: Record<string, unknown> }>
  /** Events not emitted before (by `emitted`). */
  events: PlannedEvent[]
  /** The event keys of this round: pass as `emitted` next time, so an unchanged problem is not repeated and a recurring one is. */
  emitted: Set<string>
}

export interface StatusInputs {
  className: string
  /** The class's Ingresses (cached objects; never mutated). */
  ingresses: KubeObject[]
  nodes: KubeObject[]
  conflicts: Conflict[]
  broken: BrokenIngress[]
  /** Event keys emitted in the previous rounds. */
  emitted: Set<string>
  /** Addresses whose controller serves (presence Leases); when given, only pool nodes among them are published. */
  serving?: ReadonlySet<string>
  /** RFC 3339, for lastTransitionTime. */
  now: string
  /** false when the apiserver drops status.conditions: only the addresses are written. */
  writeConditions?: boolean
  /** Backends and TLS Secrets that do not resolve (refs.ts): condition ResolvedRefs and Warning Events. */
  unresolved?: UnresolvedRef[]
}

/** A Node's InternalIP, if it has one yet. */
export function internalIP(node: KubeObject): string | undefined {
  return nodeAddress(node, 'InternalIP')
}

function nodeAddress(node: KubeObject, type: 'InternalIP' | 'ExternalIP'): string | undefined {
  const a = (node.status?.addresses ?? []).find((x: any) => x?.type === type && typeof x.address === 'string')
  return a?.address
}

/** The address to point DNS at for an ingress node: its ExternalIP, else its InternalIP. */
export function publishedIP(node: KubeObject): string | undefined {
  return nodeAddress(node, 'ExternalIP') ?? internalIP(node)
}

/** Published addresses (ExternalIP, else InternalIP) of the Ready Nodes of the class's pool, sorted numerically. */
export function poolAddresses(nodes: KubeObject[], className: string): string[] {
  const ips = new Set<string>()
  for (const n of nodes) {
    if (n.metadata?.labels?.[ingressPoolLabel] !== className || n.metadata?.deletionTimestamp) continue
    const ready = (n.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c?.status === 'True')
    if (!ready) continue
    const ip = publishedIP(n)
    if (ip) ips.add(ip)
  }
  return [...ips].sort(compareIPs)
}

function compareIPs(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d) return d
  }
  return a < b ? -1 : a > b ? 1 : 0
}

interface Problem { accepted: boolean; reason: string; message: string }

/**
 * Per Ingress: the problems it is involved in. A conflict names both Ingresses:
 * the older keeps the route (Accepted True, reason RouteConflict), the newer
 * lost it (Accepted False). A broken Ingress is not served at all.
 */
function problemsByIngress(conflicts: Conflict[], broken: BrokenIngress[]): Map<string, Problem[]> {
  const out = new Map<string, Problem[]>()
  const add = (key: string, p: Problem) => out.set(key, [...(out.get(key) ?? []), p])
  for (const b of broken) add(b.ingress, { accepted: false, reason: reasonInvalid, message: b.message })
  for (const c of conflicts) {
    const [kept, rejected] = c.ingresses
    if (kept) add(kept, { accepted: rejected === undefined ? false : true, reason: reasonConflict, message: c.message })
    if (rejected) add(rejected, { accepted: false, reason: reasonConflict, message: c.message })
  }
  return out
}

/**
 * The Accepted condition; lastTransitionTime kept from `current` unless the
 * status flipped. "all routes are served" only when no reference is
 * unresolved either (`unresolved` > 0 says otherwise; ResolvedRefs says which).
 */
export function acceptedCondition(problems: Problem[], current: any[] | undefined, now: string, unresolved = 0): IngressCondition {
  const accepted = problems.every((p) => p.accepted)
  const status = accepted ? 'True' : 'False'
  const worst = problems.find((p) => !p.accepted) ?? problems[0]
  const reason = worst?.reason ?? 'Accepted'
  const fine = unresolved ? `accepted, but ${unresolved} reference${unresolved > 1 ? 's do' : ' does'} not resolve (see ResolvedRefs)` : 'all routes are served'
  const message = worst ? [...new Set(problems.map((p) => p.message))].join('; ') : fine
  return condition(conditionAccepted, status, reason, message, current, now)
}

/** ResolvedRefs (Gateway API's name): False with the first problem's reason and every problem's message. */
export function resolvedRefsCondition(unresolved: UnresolvedRef[], current: any[] | undefined, now: string): IngressCondition {
  if (unresolved.length === 0) return condition(conditionResolvedRefs, 'True', conditionResolvedRefs, 'all backends and certificates resolve', current, now)
  return condition(conditionResolvedRefs, 'False', unresolved[0]!.reason, unresolved.map((u) => u.message).join('; '), current, now)
}

function condition(type: string, status: 'True' | 'False', reason: string, message: string, current: any[] | undefined, now: string): IngressCondition {
  if (message.length > 1024) message = message.slice(0, 1021) + '...'
  const prev = (current ?? []).find((c: any) => c?.type === type)
  const lastTransitionTime = prev?.status === status && typeof prev.lastTransitionTime === 'string' ? prev.lastTransitionTime : now
  return { type, status, reason, message, lastTransitionTime }
}

export function planIngressStatus(input: StatusInputs): StatusPlan {
  const ips = poolAddresses(input.nodes, input.className).filter((ip) => !input.serving || input.serving.has(ip))
  const problems = problemsByIngress(input.conflicts, input.broken)
  const updates: StatusPlan['updates'] = []
  const events: PlannedEvent[] = []
  const emitted = new Set<string>()
  for (const ing of input.ingresses) {
    const key = ingressKey(ing)
    const current = ing.status ?? {}
    const mine = problems.get(key) ?? []
    const refs = (input.unresolved ?? []).filter((u) => u.ingress === key)
    const desired: Record<string, unknown> = { ...current, loadBalancer: ips.length ? { ingress: ips.map((ip) => ({ ip })) } : {} }
    if (input.writeConditions !== false) {
      const accepted = mergeCondition(current.conditions, acceptedCondition(mine, current.conditions, input.now, refs.length))
      // ResolvedRefs appears with the first problem and stays (True once fixed), so a clean Ingress keeps one condition.
      const hadRefs = Array.isArray(current.conditions) && current.conditions.some((c: any) => c?.type === conditionResolvedRefs)
      desired.conditions = refs.length || hadRefs ? mergeCondition(accepted, resolvedRefsCondition(refs, current.conditions, input.now)) : accepted
    }
    if (!sameJson(current, desired)) updates.push({ ingress: key, status: desired })
    for (const p of [...mine, ...refs]) {
      // Keyed by uid too: a deleted and re-created Ingress hears about its problem again.
      const id = `${ing.metadata?.uid ?? ''}|${key}|${p.reason}|${p.message}`
      emitted.add(id)
      if (!input.emitted.has(id)) events.push({ ingress: key, type: 'Warning', reason: p.reason, message: p.message })
    }
  }
  return { updates, events, emitted }
}

function mergeCondition(current: unknown, cond: IngressCondition): IngressCondition[] {
  const others = Array.isArray(current) ? current.filter((c: any) => c?.type !== cond.type) : []
  return [...others, cond]
}

/** Equal as JSON with object keys in any order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b)
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

export interface ApplyStatusOptions {
  client: ApiClient
  recorder: EventRecorder
  logger: Logger
  plan: StatusPlan
  /** The cached Ingresses by 'namespace/name' (their resourceVersion guards the write). */
  ingresses: Map<string, KubeObject>
}

/** Write the plan. Returns false when a write failed (the caller plans again later). */
export async function applyIngressStatus(o: ApplyStatusOptions): Promise<boolean> {
  let ok = true
  for (const u of o.plan.updates) {
    const ing = o.ingresses.get(u.ingress)
    if (!ing) continue
    try {
      await o.client.update(ingressesInfo, { ...ing, status: u.status }, 'status')
    } catch (e) {
      ok = false
      // 409: the cache is behind; its update event triggers the next round. 404: deleted meanwhile.
      const status = e instanceof ApiClientError ? e.status : 0
      if (status !== 409 && status !== 404) o.logger.warn({ ingress: u.ingress, err: (e as Error).message }, 'ingress status write failed')
    }
  }
  for (const ev of o.plan.events) {
    const ing = o.ingresses.get(ev.ingress)
    if (ing) o.recorder.event({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', ...ing }, ev.type, ev.reason, ev.message)
  }
  return ok
}

/** A snapshot and what compileRouteTable made of it. */
export interface Compiled { table: RouteTable; conflicts: Conflict[]; broken: BrokenIngress[]; snapshot: IngressSnapshot }

/** The compiled table as text: problems, then every host's paths with their backends and endpoint counts. */
export function dumpRoutes(c: Compiled): string {
  const lines: string[] = []
  for (const x of c.conflicts) lines.push(`conflict: ${x.message}`)
  for (const b of c.broken) lines.push(`broken: ${b.ingress}: ${b.message}`)
  const backend = (ns: string, b: { service: string; port: number | string }) => {
    const eps = c.snapshot.endpoints[`${ns}/${b.service}`] ?? []
    const svc = c.snapshot.services[`${ns}/${b.service}`] ? '' : ' (no such Service)'
    return `${ns}/${b.service}:${b.port}${svc} [${eps.filter((e) => e.ready).length}/${eps.length} ready]`
  }
  const hosts = [...c.table.exactHosts.values(), ...c.table.wildcardHosts.values(), ...(c.table.anyHost ? [c.table.anyHost] : [])]
  for (const h of hosts) {
    lines.push(`host ${h.host || '*'}`)
    for (const g of [...h.exact.values(), ...h.prefixes]) {
      for (const e of g.entries) lines.push(`  ${e.pathType} ${e.path} [${e.methods?.join(',') ?? 'any method'}] ${e.ingress} -> ${backend(e.namespace, e.backend)}`)
    }
  }
  const d = c.table.defaultBackend
  if (d) lines.push(`defaultBackend ${d.ingress} -> ${backend(d.namespace, d.backend)}`)
  for (const [key, cert] of Object.entries(c.snapshot.certificates)) lines.push(`certificate ${key}: ${'error' in cert ? cert.error : 'ok'}`)
  return lines.length ? lines.join('\n') + '\n' : 'no routes\n'
}
