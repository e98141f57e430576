// The kubelet's Event wording for what the pod sync and the probes observe
// (pure). Reasons and messages are kubelet's (pkg/kubelet/events and the
// kuberuntime manager), so operators' queries and alerts match:
//   BackOff  Warning  Back-off restarting failed container NAME in pod NAME_NS(UID)
//   BackOff  Normal   Back-off pulling image "IMAGE"
//   Killing  Normal   Container NAME failed liveness probe, will be restarted
//   Unhealthy Warning Liveness probe failed: OUTPUT
// The worker reports a wait once per back-off period; the correlating
// recorder makes the repeats one Event whose count grows.

import type { KubeObject } from '../../controlplane/api/types.ts'
import type { PodAction } from './types.ts'

export interface PodEvent {
  type: 'Normal' | 'Warning'
  reason: string
  message: string
}

/** kubelet's format.Pod: name_namespace(uid). */
export function formatPod(pod: KubeObject): string {
  return `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`
}

/** The kubelet's involvedObject.fieldPath for an event about one container of the pod. */
export function containerRef(pod: KubeObject, name: string): { fieldPath: string } {
  const init = (pod.spec?.initContainers ?? []).some((c: any) => c.name === name)
  return { fieldPath: `spec.${init ? 'initContainers' : 'containers'}{${name}}` }
}

/** The Event for a container held back by a back-off, if any. */
export function waitEvent(pod: KubeObject, wait: Extract<PodAction, { type: 'wait' }>): PodEvent | undefined {
  if (wait.reason === 'CrashLoopBackOff') return { type: 'Warning', reason: 'BackOff', message: `Back-off restarting failed container ${wait.name} in pod ${formatPod(pod)}` }
  const spec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c: any) => c.name === wait.name)
  return { type: 'Normal', reason: 'BackOff', message: `Back-off pulling image "${spec?.image ?? ''}"` }
}

/** The Killing message for a container the planner stops (its reason from plan.ts). */
export function killingMessage(name: string, reason: string): string {
  const probe = /^(Liveness|Startup) probe failed/.exec(reason)
  if (probe) return `Container ${name} failed ${probe[1].toLowerCase()} probe, will be restarted`
  if (reason === 'container spec changed') return `Container ${name} definition changed, will be restarted`
  return `Stopping container ${name}`
}

/** The Unhealthy Event for one failed probe run (every failure, not only at the threshold, as the kubelet's prober). */
export function unhealthyEvent(kind: 'startup' | 'liveness' | 'readiness', output: string): PodEvent {
  return { type: 'Warning', reason: 'Unhealthy', message: `${kind[0].toUpperCase()}${kind.slice(1)} probe failed: ${output}` }
}
