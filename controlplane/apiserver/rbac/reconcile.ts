// The built-in policy (bootstrap.ts) reconciled at apiserver start, as
// kube-apiserver's rbac/bootstrap-roles post-start hook does: a missing
// object is created; one annotated rbac.authorization.kubernetes.io/
// autoupdate=true gets what it lacks (rules, aggregation selectors,
// subjects, labels and annotations are added, nothing is removed); a
// binding whose roleRef changed is deleted and created again (roleRef is
// immutable); any other value of the annotation leaves the object alone.
// Then every aggregated ClusterRole gets its rules at once, so admin, edit
// and view are complete before the aggregation controller runs.

import { ApiError } from '../../api/errors.ts'
import { lookupResource, type ResourceInfo } from '../../api/resources.ts'
import { canonical } from '../../api/validation/field.ts'
import { clone, type KubeObject } from '../../api/types.ts'
import type { Logger } from '../../../lib/log.ts'
import type { Registry } from '../registry.ts'
import { autoupdateAnnotation, bootstrapPolicy } from './bootstrap.ts'
import { aggregatedRules, rulesOf, sameRules } from './rules.ts'

export type ReconcileAction = { action: 'none' } | { action: 'create' | 'update' | 'recreate'; obj: KubeObject }

function union<T>(have: T[], want: T[]): T[] {
  const keys = new Set(have.map(canonical))
  return [...have, ...want.filter((x) => !keys.has(canonical(x)))]
}

/** What to do with one built-in object given the stored one. Pure. */
export function planReconcile(want: KubeObject, have: KubeObject | undefined): ReconcileAction {
  if (!have) return { action: 'create', obj: want }
  if (have.metadata.annotations?.[autoupdateAnnotation] !== 'true') return { action: 'none' }
  const next = clone(have)
  if (want.metadata.labels) next.metadata.labels = { ...have.metadata.labels, ...want.metadata.labels }
  if (want.metadata.annotations) next.metadata.annotations = { ...have.metadata.annotations, ...want.metadata.annotations }
  if (want.kind === 'Role' || want.kind === 'ClusterRole') {
    // An aggregated role's rules belong to the aggregation, not to the defaults.
    if (!want.aggregationRule) next.rules = union(rulesOf(have), rulesOf(want))
    if (want.aggregationRule) {
      next.aggregationRule = { clusterRoleSelectors: union(have.aggregationRule?.clusterRoleSelectors ?? [], want.aggregationRule.clusterRoleSelectors) }
    }
  } else {
    next.subjects = union(have.subjects ?? [], want.subjects ?? [])
    if (canonical(have.roleRef) !== canonical(want.roleRef)) {
      const fresh = clone(next)
      fresh.roleRef = want.roleRef
      delete fresh.metadata.resourceVersion
      delete fresh.metadata.uid
      return { action: 'recreate', obj: fresh }
    }
  }
  return canonical(next) === canonical(have) ? { action: 'none' } : { action: 'update', obj: next }
}

const info = (kind: string): ResourceInfo => lookupResource('rbac.authorization.k8s.io', 'v1', `${kind.toLowerCase()}s`)!

const ignorable = (e: unknown) => e instanceof ApiError && (e.reason === 'AlreadyExists' || e.reason === 'Conflict' || e.reason === 'NotFound')

/**
 * Reconcile the built-in policy: one list per kind (a restart reads four
 * lists and writes nothing); another server starting at the same time may
 * win a write, which is fine.
 */
export async function reconcileBootstrapPolicy(registry: Registry, log: Logger): Promise<void> {
  const stored = new Map<string, KubeObject>()
  for (const kind of ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']) {
    for (const o of (await registry.list(info(kind), undefined)).items) stored.set(`${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o)
  }
  let changed = 0
  for (const want of bootstrapPolicy()) {
    const i = info(want.kind!)
    const ns = want.metadata.namespace
    const plan = planReconcile(want, stored.get(`${want.kind}/${ns ?? ''}/${want.metadata.name}`))
    if (plan.action === 'none') continue
    changed++
    try {
      if (plan.action === 'create') await registry.create(i, ns, plan.obj)
      else if (plan.action === 'update') await registry.update(i, ns, want.metadata.name!, plan.obj)
      else {
        await registry.delete(i, ns, want.metadata.name!)
        await registry.create(i, ns, plan.obj)
      }
    } catch (e) {
      if (!ignorable(e)) throw e
    }
  }
  await aggregateAll(registry)
  log.info({ changed }, 'built-in RBAC policy reconciled')
}

async function aggregateAll(registry: Registry): Promise<void> {
  const i = info('ClusterRole')
  const all = (await registry.list(i, undefined)).items
  for (const role of aggregateFixpoint(all)) {
    await registry.update(i, undefined, role.metadata.name!, role).catch((e) => {
      if (!ignorable(e)) throw e
    })
  }
}

/**
 * The aggregated ClusterRoles whose rules change, once aggregation has
 * settled (view feeds edit, which feeds admin: a few rounds). Pure.
 */
export function aggregateFixpoint(roles: KubeObject[]): KubeObject[] {
  const current = new Map(roles.map((r) => [r.metadata.name!, r]))
  const changed = new Set<string>()
  for (let round = 0; round < 10; round++) {
    let moved = false
    for (const role of current.values()) {
      const want = aggregatedRules(role, [...current.values()])
      if (!want || sameRules(rulesOf(role), want)) continue
      current.set(role.metadata.name!, { ...role, rules: want })
      changed.add(role.metadata.name!)
      moved = true
    }
    if (!moved) break
  }
  return [...changed].map((n) => current.get(n)!)
}
