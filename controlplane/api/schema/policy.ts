// policy/v1 PodDisruptionBudget and Eviction (the body of pods/eviction).
// Field numbers follow k8s.io/api policy/v1 generated.proto.

import { byType } from './common.ts'
import { definePackage, listOf, object, type } from './dsl.ts'

const meta = [1, 'meta.ObjectMeta', 'Standard object metadata.'] as const

export const policy = definePackage('policy', 'io.k8s.api.policy.v1', {
  PodDisruptionBudget: object('The least number of pods of a set that voluntary disruptions must leave running.', {
    metadata: meta,
    spec: [2, 'PodDisruptionBudgetSpec', 'Desired budget.'],
    status: [3, 'PodDisruptionBudgetStatus', 'Observed state.'],
  }),
  PodDisruptionBudgetList: listOf('PodDisruptionBudget'),
  PodDisruptionBudgetSpec: type('Desired budget: one of minAvailable and maxUnavailable.', {
    minAvailable: [1, '*IntOrString', 'Pods that must stay available after an eviction (a number or a percentage).'],
    selector: [2, '*meta.LabelSelector', 'The pods the budget covers; empty selects every pod of the namespace.', { patchStrategy: 'replace' }],
    maxUnavailable: [3, '*IntOrString', 'Pods that may be unavailable after an eviction (a number or a percentage).'],
    unhealthyPodEvictionPolicy: [4, '*string', 'IfHealthyBudget (default) or AlwaysAllow: when not-ready pods may be evicted.', { enum: ['AlwaysAllow', 'IfHealthyBudget'] }],
  }),
  PodDisruptionBudgetStatus: type('Observed state of a budget, written by the disruption controller and by evictions.', {
    observedGeneration: [1, 'int64', 'metadata.generation this status was computed from.'],
    disruptedPods: [2, 'map[Time]', 'Pods evicted but not yet seen deleted, with the eviction time.'],
    disruptionsAllowed: [3, 'int32', 'Evictions allowed now.'],
    currentHealthy: [4, 'int32', 'Healthy (Ready) pods.'],
    desiredHealthy: [5, 'int32', 'Healthy pods the budget needs.'],
    expectedPods: [6, 'int32', 'Pods the budget counts on (from the owners\' scale).'],
    conditions: [7, '[]meta.Condition', 'DisruptionAllowed.', byType],
  }),
  Eviction: object('Asks to evict a pod, subject to its disruption budget (POST pods/NAME/eviction).', {
    metadata: [1, 'meta.ObjectMeta', 'Name and namespace of the pod.'],
    deleteOptions: [2, '*meta.DeleteOptions', 'Options of the pod deletion.'],
  }),
})
