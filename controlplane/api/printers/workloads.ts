// Pods and the workloads that own them (printPod, printDeployment,
// printReplicaSet, printDaemonSet in pkg/printers/internalversion).

import type { KubeObject } from '../types.ts'
import { age, arr, containerCells, formatLabels, formatSelector, num, rec, since } from './format.ts'
import { ageCol, col, nameCol, templateCols } from './types.ts'
import type { KindPrinter } from './types.ts'

interface PodSummary {
  reason: string
  ready: number
  total: number
  restarts: number
  lastRestart?: string
}

const isSidecar = (c: unknown) => rec(c).restartPolicy === 'Always'

function later(a: string | undefined, b: unknown): string | undefined {
  if (typeof b !== 'string' || b === '') return a
  return a === undefined || Date.parse(b) > Date.parse(a) ? b : a
}

/** Init containers decide the status while the pod initialises: `Init:0/2`, `Init:CrashLoopBackOff`. */
function summariseInit(pod: KubeObject, s: PodSummary): { initializing: boolean; sidecarRestarts: number; sidecarLast?: string } {
  const inits = arr(pod.spec?.initContainers)
  const byName = new Map(inits.map((c) => [c?.name, c]))
  let sidecarRestarts = 0
  let sidecarLast: string | undefined
  const statuses = arr(pod.status?.initContainerStatuses)
  for (let i = 0; i < statuses.length; i++) {
    const cs = rec(statuses[i])
    const state = rec(cs.state)
    const lastTerm = rec(rec(cs.lastState).terminated).finishedAt
    s.restarts += num(cs.restartCount)
    s.lastRestart = later(s.lastRestart, lastTerm)
    const sidecar = isSidecar(byName.get(cs.name))
    if (sidecar) {
      sidecarRestarts += num(cs.restartCount)
      sidecarLast = later(sidecarLast, lastTerm)
    }
    const term = state.terminated ? rec(state.terminated) : undefined
    if (term && num(term.exitCode) === 0) continue
    if (sidecar && cs.started === true) {
      if (cs.ready) s.ready++
      continue
    }
    if (term) s.reason = term.reason ? `Init:${term.reason}` : term.signal ? `Init:Signal:${term.signal}` : `Init:ExitCode:${num(term.exitCode)}`
    else if (state.waiting?.reason && state.waiting.reason !== 'PodInitializing') s.reason = `Init:${state.waiting.reason}`
    else s.reason = `Init:${i}/${inits.length}`
    return { initializing: true, sidecarRestarts, sidecarLast }
  }
  return { initializing: false, sidecarRestarts, sidecarLast }
}

/** App containers, last to first, so the first container's problem is the one shown. */
function summariseContainers(pod: KubeObject, s: PodSummary): void {
  let hasRunning = false
  const statuses = arr(pod.status?.containerStatuses)
  for (let i = statuses.length - 1; i >= 0; i--) {
    const cs = rec(statuses[i])
    const state = rec(cs.state)
    s.restarts += num(cs.restartCount)
    s.lastRestart = later(s.lastRestart, rec(rec(cs.lastState).terminated).finishedAt)
    const term = state.terminated ? rec(state.terminated) : undefined
    if (state.waiting?.reason) s.reason = state.waiting.reason
    else if (term?.reason) s.reason = term.reason
    else if (term) s.reason = term.signal ? `Signal:${term.signal}` : `ExitCode:${num(term.exitCode)}`
    else if (cs.ready && state.running) {
      hasRunning = true
      s.ready++
    }
  }
  if (s.reason === 'Completed' && hasRunning) {
    const ready = arr(pod.status?.conditions).some((c) => c?.type === 'Ready' && c?.status === 'True')
    s.reason = ready ? 'Running' : 'NotReady'
  }
}

export function summarisePod(pod: KubeObject): PodSummary {
  const phase = pod.status?.phase ?? ''
  const inits = arr(pod.spec?.initContainers)
  const s: PodSummary = { reason: pod.status?.reason || phase, ready: 0, total: arr(pod.spec?.containers).length + inits.filter(isSidecar).length, restarts: 0 }
  if (arr(pod.status?.conditions).some((c) => c?.type === 'PodScheduled' && c?.reason === 'SchedulingGated')) s.reason = 'SchedulingGated'
  const init = summariseInit(pod, s)
  const initialized = arr(pod.status?.conditions).some((c) => c?.type === 'Initialized' && c?.status === 'True')
  if (!init.initializing || initialized) {
    s.restarts = init.sidecarRestarts
    s.lastRestart = init.sidecarLast
    summariseContainers(pod, s)
  }
  if (pod.metadata?.deletionTimestamp) {
    if (pod.status?.reason === 'NodeLost') s.reason = 'Unknown'
    else if (phase !== 'Succeeded' && phase !== 'Failed') s.reason = 'Terminating'
  }
  return s
}

function readinessGates(pod: KubeObject): string {
  const gates = arr(pod.spec?.readinessGates)
  if (gates.length === 0) return '<none>'
  const conditions = arr(pod.status?.conditions)
  const met = gates.filter((g) => conditions.find((c) => c?.type === g?.conditionType)?.status === 'True').length
  return `${met}/${gates.length}`
}

export const podPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'The aggregate status of the containers in this pod.'),
    col('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    ageCol,
    col('IP', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', { priority: 1 }),
    col('Node', 'NodeName indicates in which node this pod is scheduled.', { priority: 1 }),
    col('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', { priority: 1 }),
    col('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', { priority: 1 }),
  ],
  cells(pod, now) {
    const s = summarisePod(pod)
    const restarts = s.restarts !== 0 && s.lastRestart ? `${s.restarts} (${since(s.lastRestart, now)} ago)` : String(s.restarts)
    const ip = arr(pod.status?.podIPs)[0]?.ip || pod.status?.podIP || '<none>'
    return [pod.metadata?.name ?? '', `${s.ready}/${s.total}`, s.reason, restarts, age(pod, now), ip, pod.spec?.nodeName || '<none>', pod.status?.nominatedNodeName || '<none>', readinessGates(pod)]
  },
  conditions(pod) {
    if (pod.status?.phase === 'Succeeded') return [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }]
    if (pod.status?.phase === 'Failed') return [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }]
    return undefined
  },
}

export const deploymentPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Ready', 'Number of the pod with ready state'),
    col('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
    col('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
    ageCol,
    ...templateCols,
  ],
  cells(d, now) {
    const st = rec(d.status)
    return [d.metadata?.name ?? '', `${num(st.readyReplicas)}/${num(d.spec?.replicas)}`, num(st.updatedReplicas), num(st.availableReplicas), age(d, now), ...containerCells(d.spec?.template?.spec), formatSelector(d.spec?.selector)]
  },
}

export const replicaSetPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Desired', 'Replicas is the number of desired replicas.', { type: 'integer' }),
    col('Current', 'Replicas is the most recently observed number of replicas.', { type: 'integer' }),
    col('Ready', 'The number of ready replicas for this replica set.', { type: 'integer' }),
    ageCol,
    ...templateCols,
  ],
  cells(rs, now) {
    const st = rec(rs.status)
    return [rs.metadata?.name ?? '', num(rs.spec?.replicas), num(st.replicas), num(st.readyReplicas), age(rs, now), ...containerCells(rs.spec?.template?.spec), formatSelector(rs.spec?.selector)]
  },
}

export const daemonSetPrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Desired', 'The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).', { type: 'integer' }),
    col('Current', 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.', { type: 'integer' }),
    col('Ready', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.', { type: 'integer' }),
    col('Up-to-date', 'The total number of nodes that are running updated daemon pod', { type: 'integer' }),
    col('Available', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)', { type: 'integer' }),
    col('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'),
    ageCol,
    ...templateCols,
  ],
  cells(ds, now) {
    const st = rec(ds.status)
    const tmpl = ds.spec?.template?.spec
    return [
      ds.metadata?.name ?? '', num(st.desiredNumberScheduled), num(st.currentNumberScheduled), num(st.numberReady), num(st.updatedNumberScheduled), num(st.numberAvailable),
      formatLabels(rec(tmpl).nodeSelector), age(ds, now), ...containerCells(tmpl), formatSelector(ds.spec?.selector),
    ]
  },
}
