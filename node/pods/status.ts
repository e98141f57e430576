// computePodStatus: the pod's status as Kubernetes would report it, from the
// same inputs as the planner: phase (like the kubelet's getPhase),
// conditions with stable lastTransitionTime, pod and host IPs, and one
// status per container (state, lastState, restartCount, ready, started).
// statusPatch returns only what changed, so an unchanged pod costs no write.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { sandboxName, stableJson } from '../labels.ts'
import {
  appContainers, groupByName, initContainers, initFailedForGood, initializationDone, isSidecar, restartPolicy, type ContainerGroups,
} from './facts.ts'
import type { ActualContainer, ProbeView, Waiting } from './types.ts'

export interface StatusContext {
  now: number
  hostIP: string
  probes: (containerId: string) => ProbeView | undefined
  /** Why a container is waiting, when the sync knows better than "ContainerCreating". */
  waiting: ReadonlyMap<string, Waiting>
}

/** Kubernetes timestamps have whole seconds. */
export function k8sTime(iso: string | number | undefined): string | undefined {
  if (iso === undefined) return undefined
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d+Z$/, 'Z')
}

function terminated(c: ActualContainer): Record<string, unknown> {
  const reason = c.error ? 'ContainerCannotRun' : c.oomKilled ? 'OOMKilled' : c.exitCode === 0 ? 'Completed' : 'Error'
  return {
    terminated: {
      exitCode: c.exitCode ?? 0,
      reason,
      ...(c.error ? { message: c.error } : {}),
      startedAt: k8sTime(c.startedAt),
      finishedAt: k8sTime(c.finishedAt),
      containerID: `docker://${c.id}`,
    },
  }
}

function containerStatus(spec: any, list: ActualContainer[], role: 'init' | 'app', ctx: StatusContext, initDone: boolean): Record<string, unknown> {
  const [cur, prev] = list
  const wait = ctx.waiting.get(spec.name)
  const s: Record<string, any> = { name: spec.name, image: spec.image, imageID: cur?.imageID ? `docker://${cur.imageID}` : '', ready: false, restartCount: cur?.attempt ?? 0, started: false }
  if (cur) s.containerID = `docker://${cur.id}`
  s.lastState = prev ? terminated(prev) : {}
  if (!cur || cur.state === 'created') {
    s.state = { waiting: wait ?? { reason: role === 'app' && !initDone ? 'PodInitializing' : 'ContainerCreating' } }
  } else if (cur.state === 'running') {
    s.state = { running: { startedAt: k8sTime(cur.startedAt) } }
    const probe = ctx.probes(cur.id)
    s.started = probe ? probe.started : !spec.startupProbe
    s.ready = role === 'init' && !isSidecar(spec) ? false : probe ? probe.ready : s.started && !spec.readinessProbe
  } else if (wait) {
    s.state = { waiting: wait }
    s.lastState = terminated(cur)
  } else {
    s.state = terminated(cur)
    s.ready = role === 'init' && cur.exitCode === 0 && !isSidecar(spec)
  }
  return s
}

/** Like the kubelet's getPhase; a terminal phase is never left. */
export function computePhase(pod: KubeObject, groups: ContainerGroups, initDone: boolean): string {
  const old = pod.status?.phase
  if (old === 'Succeeded' || old === 'Failed') return old
  const policy = restartPolicy(pod)
  if (!initDone) return initFailedForGood(pod, groups) ? 'Failed' : 'Pending'
  let running = 0
  let waiting = 0
  let stopped = 0
  let succeeded = 0
  for (const c of appContainers(pod)) {
    const [cur, prev] = groups.get(c.name) ?? []
    if (cur?.state === 'running') running++
    else if (cur?.state === 'exited') {
      stopped++
      if (cur.exitCode === 0) succeeded++
    } else if (prev) stopped++
    else waiting++
  }
  if (waiting > 0) return 'Pending'
  if (running > 0) return 'Running'
  if (stopped === 0) return 'Pending'
  if (policy === 'Always') return 'Running'
  if (stopped === succeeded) return 'Succeeded'
  return policy === 'Never' ? 'Failed' : 'Running'
}

function condition(old: any[], type: string, ok: boolean, now: number, why?: { reason: string; message: string }): Record<string, unknown> {
  const status = ok ? 'True' : 'False'
  const prev = old.find((c) => c.type === type)
  const lastTransitionTime = prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : k8sTime(now)
  return { type, status, lastTransitionTime, ...(!ok && why ? why : {}) }
}

const ownConditions = new Set(['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'])

function conditions(pod: KubeObject, phase: string, initDone: boolean, apps: any[], inits: any[], now: number): any[] {
  const old: any[] = pod.status?.conditions ?? []
  const terminal = phase === 'Succeeded' || phase === 'Failed'
  const unready = apps.filter((s) => !s.ready).map((s) => s.name)
  const incomplete = inits.filter((s) => !s.ready && !s.state?.running).map((s) => s.name)
  const ready = !terminal && unready.length === 0 && apps.length > 0
  const gates = (pod.spec?.readinessGates ?? []).map((g: any) => g.conditionType as string)
  const gatesOk = gates.every((t: string) => old.some((c) => c.type === t && c.status === 'True'))
  const notReady = terminal
    ? { reason: 'PodCompleted', message: '' }
    : { reason: 'ContainersNotReady', message: `containers with unready status: [${unready.join(' ')}]` }
  const own = [
    condition(old, 'PodScheduled', true, now),
    condition(old, 'Initialized', initDone, now, terminal ? { reason: 'PodCompleted', message: '' } : { reason: 'ContainersNotInitialized', message: `containers with incomplete status: [${incomplete.join(' ')}]` }),
    condition(old, 'ContainersReady', ready, now, notReady),
    condition(old, 'Ready', ready && gatesOk, now, ready ? { reason: 'ReadinessGatesNotReady', message: 'the status of pod readiness gates is not "True"' } : notReady),
  ]
  return [...own, ...old.filter((c) => !ownConditions.has(c.type))]
}

export function computePodStatus(pod: KubeObject, actual: readonly ActualContainer[], ctx: StatusContext): Record<string, any> {
  const groups = groupByName(actual)
  const old = pod.status ?? {}
  const sandbox = groups.get(sandboxName)?.[0]
  const initDone = initializationDone(pod, groups)
  const inits = initContainers(pod).map((c) => containerStatus(c, groups.get(c.name) ?? [], 'init', ctx, initDone))
  const apps = appContainers(pod).map((c) => containerStatus(c, groups.get(c.name) ?? [], 'app', ctx, initDone))
  const phase = computePhase(pod, groups, initDone)
  const podIP = pod.spec?.hostNetwork ? ctx.hostIP : (sandbox?.state === 'running' && sandbox.ip) || old.podIP
  const status: Record<string, any> = {
    phase,
    conditions: conditions(pod, phase, initDone, apps, inits, ctx.now),
    hostIP: ctx.hostIP,
    hostIPs: [{ ip: ctx.hostIP }],
    startTime: old.startTime ?? k8sTime(ctx.now),
    containerStatuses: apps,
  }
  if (podIP) Object.assign(status, { podIP, podIPs: [{ ip: podIP }] })
  if (inits.length) status.initContainerStatuses = inits
  return status
}

/** The fields of `next` that differ from the pod's current status, or undefined when none do. */
export function statusPatch(pod: KubeObject, next: Record<string, any>): Record<string, any> | undefined {
  const old = pod.status ?? {}
  const changed = Object.keys(next).filter((k) => stableJson(old[k]) !== stableJson(next[k]))
  if (changed.length === 0) return undefined
  return Object.fromEntries(changed.map((k) => [k, next[k]]))
}
