// The DaemonSet controller: one pod per eligible node. A node is eligible
// when it is Ready, its labels match the template's nodeSelector and required
// node affinity, and the pod tolerates its NoSchedule and NoExecute taints
// (with the tolerations Kubernetes adds to every daemon pod). A pod keeps
// running on a node that stops being Ready or gains a NoSchedule taint, and
// is removed when the node no longer matches or gains an untolerated
// NoExecute taint.
//
// Pods are created with spec.nodeName set directly (the apiserver accepts it
// on create), so daemon pods run without a scheduler; Kubernetes instead sets
// a required node affinity on metadata.name and lets the scheduler bind.
// Updated pods carry the label controller-revision-hash = the template's hash,
// which is also the hash label and name suffix of the DaemonSet's
// ControllerRevision for that template (controller-revision.ts: the history
// `kubectl rollout history|undo ds` reads). RollingUpdate replaces old pods
// at most maxUnavailable at a time (maxSurge is not implemented: treated as 0);
// OnDelete replaces a pod only when someone deletes it.
//
// Pure parts: nodeFit and planDaemonSet.

import { lookupResource } from '../api/resources.ts'
import { clone, type KubeObject } from '../api/types.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import {
  applyClaims,
  availableAt,
  buildPodFromTemplate,
  canonicalJson,
  claimObjects,
  controllerRefOf,
  isPodReady,
  isPodTerminal,
  resolveControllerRef,
  resolveIntOrPercent,
  selectorOf,
  selects,
  templateHash,
  type Pod,
} from './pod-template.ts'
import { podsInfo } from './replicaset.ts'
import { controllerRevisionsInfo, deleteRevisions, ensureRevision, planHistoryCleanup, planRevision } from './controller-revision.ts'
import { Expectations, SyncLoop, createOwnedPod, deleteOwnedPod, slowStartBatch } from './workload-loop.ts'
import type { Controller, ControllerContext } from './types.ts'
import { tolerates } from '../scheduler/plugins/tolerations.ts'

export const daemonSetsInfo = lookupResource('apps', 'v1', 'daemonsets')!
export const nodesInfo = lookupResource('', 'v1', 'nodes')!
export const revisionHashLabel = 'controller-revision-hash'

/** What Kubernetes adds to every daemon pod (AddOrUpdateDaemonPodTolerations). */
export const daemonPodTolerations = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
]

// --- node eligibility ------------------------------------------------------------

function requirementMatches(r: any, value: string | undefined): boolean {
  const values: string[] = r?.values ?? []
  switch (r?.operator) {
    case 'In':
      return value !== undefined && values.includes(value)
    case 'NotIn':
      return value === undefined || !values.includes(value)
    case 'Exists':
      return value !== undefined
    case 'DoesNotExist':
      return value === undefined
    case 'Gt':
    case 'Lt': {
      if (value === undefined || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0] ?? '')) return false
      return r.operator === 'Gt' ? Number(value) > Number(values[0]) : Number(value) < Number(values[0])
    }
    default:
      return false
  }
}

/** Required node affinity: any term matches; a term needs every expression and field to match (and at least one). */
function affinityMatches(node: KubeObject, terms: any[] | undefined): boolean {
  if (!terms) return true
  const labels = node.metadata.labels ?? {}
  return terms.some((term) => {
    const exprs = term?.matchExpressions ?? []
    const fields = term?.matchFields ?? []
    if (!exprs.length && !fields.length) return false
    return exprs.every((r: any) => requirementMatches(r, labels[r.key])) && fields.every((r: any) => requirementMatches(r, r.key === 'metadata.name' ? node.metadata.name : undefined))
  })
}

function nodeReady(node: KubeObject): boolean {
  return (node.status?.conditions ?? []).some((c: any) => c?.type === 'Ready' && c.status === 'True')
}

export function nodeFit(node: KubeObject, template: any): { shouldRun: boolean; shouldContinueRunning: boolean } {
  const spec = template?.spec ?? {}
  const labels = node.metadata.labels ?? {}
  const selected = Object.entries(spec.nodeSelector ?? {}).every(([k, v]) => labels[k] === v)
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms
  const fits = selected && affinityMatches(node, terms) && !node.metadata.deletionTimestamp
  const tolerations = [...(spec.tolerations ?? []), ...daemonPodTolerations]
  const untolerated = (effect: string) => (node.spec?.taints ?? []).some((t: any) => t?.effect === effect && !tolerates(tolerations, t))
  const noExecute = untolerated('NoExecute')
  return { shouldRun: fits && nodeReady(node) && !noExecute && !untolerated('NoSchedule'), shouldContinueRunning: fits && !noExecute }
}

// --- planning --------------------------------------------------------------------

export interface DaemonSetPlan {
  /** Node names that need a pod. */
  create: string[]
  delete: Pod[]
  status: Record<string, any>
  recheckAfterMs?: number
}

const oldestFirst = (a: Pod, b: Pod) =>
  (Date.parse(a.metadata.creationTimestamp ?? '') || 0) - (Date.parse(b.metadata.creationTimestamp ?? '') || 0) || (a.metadata.name! < b.metadata.name! ? -1 : 1)

function podsByNode(pods: Pod[]): Map<string, Pod[]> {
  const m = new Map<string, Pod[]>()
  for (const p of pods) {
    const n = p.spec?.nodeName ?? ''
    m.set(n, [...(m.get(n) ?? []), p])
  }
  return m
}

/** podsShouldBeOnNode for every node, plus pods on nodes that no longer exist. */
function planNodes(nodes: KubeObject[], byNode: Map<string, Pod[]>, template: any): { create: string[]; delete: Pod[] } {
  const out = { create: [] as string[], delete: [] as Pod[] }
  const live = (ps: Pod[]) => ps.filter((p) => !p.metadata.deletionTimestamp)
  const known = new Set(nodes.map((n) => n.metadata.name))
  for (const [name, ps] of byNode) if (!known.has(name)) out.delete.push(...live(ps))
  for (const node of nodes) {
    const name = node.metadata.name!
    const pods = byNode.get(name) ?? []
    const fit = nodeFit(node, template)
    if (fit.shouldRun && pods.length === 0) out.create.push(name)
    else if (fit.shouldContinueRunning) {
      // Finished pods are replaced; of several running ones the oldest stays.
      const running = live(pods).filter((p) => !isPodTerminal(p))
      out.delete.push(...live(pods).filter(isPodTerminal), ...running.sort(oldestFirst).slice(1))
    } else out.delete.push(...live(pods))
  }
  return out
}

/** Old pods to delete now: unavailable ones always, available ones while fewer than maxUnavailable nodes are down. */
function planRollingUpdate(o: { byNode: Map<string, Pod[]>; hash: string; maxUnavailable: number; available: (p: Pod) => boolean }): Pod[] {
  let unavailable = 0
  const replace: Pod[] = []
  const candidates: Pod[] = []
  for (const name of [...o.byNode.keys()].sort()) {
    const live = o.byNode.get(name)!.filter((p) => !p.metadata.deletionTimestamp)
    const fresh = live.filter((p) => p.metadata.labels?.[revisionHashLabel] === o.hash)
    const old = live.filter((p) => p.metadata.labels?.[revisionHashLabel] !== o.hash)
    if (fresh.length > 1 || old.length > 1 || fresh.length + old.length !== 1) {
      unavailable++
      continue
    }
    if (fresh.length) {
      if (!o.available(fresh[0])) unavailable++
    } else if (!o.available(old[0])) {
      // Already down: replace it, and count it against the budget.
      replace.push(old[0])
      unavailable++
    } else if (unavailable < o.maxUnavailable) candidates.push(old[0])
  }
  return [...replace, ...candidates.slice(0, Math.max(0, o.maxUnavailable - unavailable))]
}

export function planDaemonSet(o: { ds: KubeObject; nodes: KubeObject[]; pods: Pod[]; now: number; manage: boolean; hash?: string }): DaemonSetPlan {
  const { ds, now } = o
  const template = ds.spec?.template
  const hash = o.hash ?? templateHash(template)
  const minReady = Number(ds.spec?.minReadySeconds) || 0
  let recheck: number | undefined
  const available = (p: Pod) => {
    const at = availableAt(p, minReady)
    if (at !== undefined && at > now) recheck = Math.min(recheck ?? Infinity, at - now + 50)
    return at !== undefined && at <= now
  }
  const byNode = podsByNode(o.pods)
  const nodes = [...o.nodes].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))
  const status = { desiredNumberScheduled: 0, currentNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0, numberAvailable: 0, numberUnavailable: 0, updatedNumberScheduled: 0, observedGeneration: ds.metadata.generation ?? 0 }
  for (const node of nodes) {
    const pods = (byNode.get(node.metadata.name!) ?? []).filter((p) => !p.metadata.deletionTimestamp).sort(oldestFirst)
    if (!nodeFit(node, template).shouldRun) {
      if (pods.length) status.numberMisscheduled++
      continue
    }
    status.desiredNumberScheduled++
    if (!pods.length) continue
    status.currentNumberScheduled++
    if (isPodReady(pods[0])) status.numberReady++
    if (available(pods[0])) status.numberAvailable++
    if (pods[0].metadata.labels?.[revisionHashLabel] === hash) status.updatedNumberScheduled++
  }
  status.numberUnavailable = status.desiredNumberScheduled - status.numberAvailable
  const plan: DaemonSetPlan = { create: [], delete: [], status, recheckAfterMs: recheck }
  if (!o.manage) return plan
  const step = planNodes(nodes, byNode, template)
  plan.create = step.create
  plan.delete = step.delete
  const strategy = ds.spec?.updateStrategy
  if (step.create.length || step.delete.length || (strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return plan
  let maxUnavailable = resolveIntOrPercent(strategy?.rollingUpdate?.maxUnavailable ?? 1, status.desiredNumberScheduled, true)
  if (maxUnavailable === 0 && status.desiredNumberScheduled > 0) maxUnavailable = 1
  const known = new Map([...byNode].filter(([n]) => nodes.some((x) => x.metadata.name === n)))
  plan.delete = planRollingUpdate({ byNode: known, hash, maxUnavailable, available })
  return plan
}

// --- the controller ----------------------------------------------------------------

export class DaemonSetController implements Controller {
  readonly name = 'daemonset'
  #ctx?: ControllerContext
  #loop?: SyncLoop
  #exp = new Expectations()
  #dsInf?: Informer
  #podInf?: Informer
  #nodeInf?: Informer
  #crInf?: Informer

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    const exp = (this.#exp = new Expectations())
    const dsInf = (this.#dsInf = ctx.informers.for(daemonSetsInfo))
    const podInf = (this.#podInf = ctx.informers.for(podsInfo))
    const nodeInf = (this.#nodeInf = ctx.informers.for(nodesInfo))
    const crInf = (this.#crInf = ctx.informers.for(controllerRevisionsInfo))
    const loop = (this.#loop = new SyncLoop({ name: this.name, ctx, informers: [dsInf, podInf, nodeInf, crInf], sync: (k) => this.#sync(k) }))
    const all = () => dsInf.list().forEach((ds) => loop.enqueue(keyFor(ds)))
    dsInf.addHandlers({ onAdd: (ds) => loop.enqueue(keyFor(ds)), onUpdate: (_, ds) => loop.enqueue(keyFor(ds)), onDelete: (ds) => (exp.forget(keyFor(ds)), loop.enqueue(keyFor(ds))) })
    const relevant = (n: KubeObject) => canonicalJson([n.metadata.labels, n.spec?.taints, nodeReady(n), n.metadata.deletionTimestamp ?? null])
    nodeInf.addHandlers({ onAdd: all, onUpdate: (old, n) => relevant(old) !== relevant(n) && all(), onDelete: all })
    const owner = (pod: Pod) => resolveControllerRef(dsInf, pod, 'DaemonSet')
    const gone = (pod: Pod) => {
      const ds = owner(pod)
      if (!ds) return
      exp.deletionObserved(keyFor(ds), keyFor(pod))
      loop.enqueue(keyFor(ds))
    }
    const orphan = (pod: Pod) => {
      if (controllerRefOf(pod)) return
      for (const ds of dsInf.list((d) => d.metadata.namespace === pod.metadata.namespace && selects(selectorOf(d), pod.metadata.labels))) loop.enqueue(keyFor(ds))
    }
    podInf.addHandlers({
      onAdd: (pod) => {
        if (pod.metadata.deletionTimestamp) return gone(pod)
        const ds = owner(pod)
        if (!ds) return orphan(pod)
        exp.creationObserved(keyFor(ds))
        loop.enqueue(keyFor(ds))
      },
      onUpdate: (old, pod) => {
        if (old.metadata.resourceVersion === pod.metadata.resourceVersion) return
        if (pod.metadata.deletionTimestamp) return gone(pod)
        const was = owner(old)
        if (was && controllerRefOf(pod)?.uid !== was.metadata.uid) loop.enqueue(keyFor(was))
        const ds = owner(pod)
        if (ds) loop.enqueue(keyFor(ds))
        else orphan(pod)
      },
      onDelete: gone,
    })
    // A revision deleted or renumbered by someone else is put back.
    const revisionOwner = (cr: KubeObject) => {
      const ds = resolveControllerRef(dsInf, cr, 'DaemonSet')
      if (ds) loop.enqueue(keyFor(ds))
    }
    crInf.addHandlers({ onUpdate: (_, cr) => revisionOwner(cr), onDelete: revisionOwner })
    loop.start()
  }

  async stop(): Promise<void> {
    this.#loop?.stop()
    this.#loop = undefined
  }

  async #sync(key: string): Promise<number | undefined> {
    const ctx = this.#ctx!
    const ds = this.#dsInf!.get(key)
    if (!ds) {
      this.#exp.forget(key)
      return undefined
    }
    if (!selectorOf(ds)) return undefined
    const ns = ds.metadata.namespace
    const claims = claimObjects(ds, selectorOf(ds), this.#podInf!.list((p) => p.metadata.namespace === ns))
    const adopted = await applyClaims({ client: ctx.client, info: podsInfo, ownerInfo: daemonSetsInfo, owner: ds, claims })
    const manage = this.#exp.satisfied(key) && !ds.metadata.deletionTimestamp
    const pods = [...claims.owned, ...adopted]
    const history = await this.#history(ds, pods)
    if (!history) return 200
    const plan = planDaemonSet({ ds, nodes: this.#nodeInf!.list(), pods, now: Date.now(), manage, hash: history.hash })
    if (history.collisionCount) plan.status.collisionCount = history.collisionCount
    const errors: string[] = []
    if (plan.delete.length) {
      this.#exp.expectDeletions(key, plan.delete.map(keyFor))
      for (const err of await Promise.all(plan.delete.map((p) => this.#deletePod(key, ds, p)))) if (err) errors.push(err)
    }
    if (plan.create.length) {
      this.#exp.expectCreations(key, plan.create.length)
      const nodes = [...plan.create]
      const r = await slowStartBatch(nodes.length, () => this.#createPod(key, ds, nodes.shift()!, history.hash))
      for (let i = 0; i < r.skipped; i++) this.#exp.creationObserved(key)
      if (r.error) errors.push(r.error.message)
    }
    if (canonicalJson(plan.status) !== canonicalJson(ds.status ?? {})) {
      await ctx.client.update(daemonSetsInfo, { ...clone(ds), status: plan.status }, 'status').catch((e) => {
        if (!(e instanceof ApiClientError && e.status === 404)) throw e
      })
    }
    // Failed creates or deletes: retry the whole sync with the queue's backoff.
    if (errors.length) throw new Error(errors[0])
    return plan.recheckAfterMs
  }

  /**
   * The revision of the template exists and is the newest; history beyond
   * revisionHistoryLimit is deleted. Returns the template's hash, or
   * undefined when the cache was behind (sync again).
   */
  async #history(ds: KubeObject, pods: Pod[]): Promise<{ hash: string; collisionCount: number } | undefined> {
    const ctx = this.#ctx!
    // A DaemonSet being deleted gets no new revision and loses none.
    if (ds.metadata.deletionTimestamp) return { hash: templateHash(ds.spec?.template, Number(ds.status?.collisionCount) || 0), collisionCount: Number(ds.status?.collisionCount) || 0 }
    const ns = ds.metadata.namespace
    const inNs = this.#crInf!.list((r) => r.metadata.namespace === ns)
    const claims = claimObjects(ds, selectorOf(ds), inNs)
    const revisions = [...claims.owned, ...(await applyClaims({ client: ctx.client, info: controllerRevisionsInfo, ownerInfo: daemonSetsInfo, owner: ds, claims }))]
    const template = ds.spec?.template
    const plan = planRevision({
      owner: ds,
      ownerInfo: daemonSetsInfo,
      template,
      revisions,
      taken: new Map(inNs.map((r) => [r.metadata.name!, r])),
      collisionCount: Number(ds.status?.collisionCount) || 0,
      naming: (_data, cc) => {
        const hash = templateHash(template, cc)
        return { name: `${ds.metadata.name}-${hash}`, labels: { ...(template?.metadata?.labels ?? {}), [revisionHashLabel]: hash } }
      },
    })
    let cur: KubeObject
    try {
      cur = await ensureRevision(ctx, plan)
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 409) return undefined
      throw e
    }
    const hash = cur.metadata.labels?.[revisionHashLabel] ?? templateHash(template)
    const live = new Set(pods.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.labels?.[revisionHashLabel]))
    const keep = new Set([cur.metadata.name!, ...revisions.filter((r) => live.has(r.metadata.labels?.[revisionHashLabel])).map((r) => r.metadata.name!)])
    const limit = typeof ds.spec?.revisionHistoryLimit === 'number' ? ds.spec.revisionHistoryLimit : 10
    await deleteRevisions(ctx, planHistoryCleanup(revisions, keep, limit))
    return { hash, collisionCount: plan.collisionCount }
  }

  async #createPod(key: string, ds: KubeObject, nodeName: string, hash: string): Promise<void> {
    const ctx = this.#ctx!
    const extraLabels = { [revisionHashLabel]: hash, 'pod-template-generation': String(ds.metadata.generation ?? 1) }
    const pod = buildPodFromTemplate({ template: ds.spec?.template, owner: ds, ownerInfo: daemonSetsInfo, nodeName, extraLabels, extraTolerations: daemonPodTolerations })
    await createOwnedPod(ctx, this.#exp, key, ds, pod)
  }

  /** Delete one pod (guarded by its uid); returns an error message, or undefined. */
  async #deletePod(key: string, ds: KubeObject, pod: Pod): Promise<string | undefined> {
    return await deleteOwnedPod(this.#ctx!, this.#exp, key, ds, pod)
  }
}

export const daemonSetController = (): Controller => new DaemonSetController()
