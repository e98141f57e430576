// NodeAffinity: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.
// The node must match at least one nodeSelectorTerm; within a term every
// matchExpression (on labels) and every matchField (only metadata.name, as
// in Kubernetes) must hold. A term with no requirements matches nothing.
// Preferred (soft) node affinity is not scored yet.

import type { KubeObject } from '../../api/types.ts'
import type { CycleState, FilterPlugin, NodeInfo, Status } from '../framework.ts'
import { success, unschedulable } from '../status.ts'
import { reasonAffinityMismatch } from './node-selector.ts'

const name = 'NodeAffinity'

export interface NodeSelectorRequirement {
  key: string
  operator: string
  values?: string[]
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[]
  matchFields?: NodeSelectorRequirement[]
}

const integer = /^[+-]?\d+$/

/** One requirement against a value that may be absent (Kubernetes' nodeSelectorRequirementsAsSelector semantics). */
export function requirementMatches(r: NodeSelectorRequirement, has: boolean, value: string | undefined): boolean {
  const values = Array.isArray(r.values) ? r.values : []
  switch (r.operator) {
    case 'In':
      return has && values.includes(value!)
    case 'NotIn':
      return !has || !values.includes(value!)
    case 'Exists':
      return has
    case 'DoesNotExist':
      return !has
    case 'Gt':
    case 'Lt': {
      // Both sides must be integers, and there must be exactly one value.
      if (!has || values.length !== 1 || !integer.test(value!) || !integer.test(values[0]!)) return false
      const [a, b] = [BigInt(value!), BigInt(values[0]!)]
      return r.operator === 'Gt' ? a > b : a < b
    }
    default:
      return false
  }
}

export function termMatches(term: NodeSelectorTerm, node: KubeObject): boolean {
  const exprs = Array.isArray(term?.matchExpressions) ? term.matchExpressions : []
  const fields = Array.isArray(term?.matchFields) ? term.matchFields : []
  if (exprs.length === 0 && fields.length === 0) return false
  const labels: Record<string, string> = node.metadata.labels ?? {}
  for (const r of exprs) if (!requirementMatches(r, Object.hasOwn(labels, r.key), labels[r.key])) return false
  for (const r of fields) {
    if (r.key !== 'metadata.name') return false
    if (!requirementMatches(r, true, node.metadata.name)) return false
  }
  return true
}

/** The pod's required terms, or undefined when it has no required node affinity. */
export function requiredTerms(pod: KubeObject): NodeSelectorTerm[] | undefined {
  const req = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
  if (!req || typeof req !== 'object') return undefined
  return Array.isArray(req.nodeSelectorTerms) ? req.nodeSelectorTerms : []
}

function preFilter(state: CycleState, pod: KubeObject): undefined {
  state.set(name, requiredTerms(pod))
  return undefined
}

function filter(state: CycleState, _pod: KubeObject, nodeInfo: NodeInfo): Status {
  const terms = state.get(name) as NodeSelectorTerm[] | undefined
  if (terms === undefined) return success
  return terms.some((t) => termMatches(t, nodeInfo.node)) ? success : unschedulable(reasonAffinityMismatch)
}

export const nodeAffinity = { name, preFilter, filter } satisfies FilterPlugin
