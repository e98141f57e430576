// Small pure readings of a pod spec and its actual containers, shared by the
// planner (plan.ts) and the status computation (status.ts) so both agree on
// what "initialized", "finished" and "will restart" mean.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { sandboxName } from '../labels.ts'
import type { ActualContainer, BackoffConfig } from './types.ts'

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never'

/** Containers by name, newest attempt first. */
export type ContainerGroups = Map<string, ActualContainer[]>

export function groupByName(actual: readonly ActualContainer[]): ContainerGroups {
  const out: ContainerGroups = new Map()
  for (const c of actual) {
    const key = c.role === 'sandbox' ? sandboxName : c.name
    let list = out.get(key)
    if (!list) out.set(key, (list = []))
    list.push(c)
  }
  for (const list of out.values()) list.sort((a, b) => b.attempt - a.attempt || b.createdAt.localeCompare(a.createdAt))
  return out
}

export function restartPolicy(pod: KubeObject): RestartPolicy {
  const p = pod.spec?.restartPolicy
  return p === 'OnFailure' || p === 'Never' ? p : 'Always'
}

export function appContainers(pod: KubeObject): any[] {
  return pod.spec?.containers ?? []
}

export function initContainers(pod: KubeObject): any[] {
  return pod.spec?.initContainers ?? []
}

/** A restartable init container (a native sidecar): it keeps running next to the app containers. */
export function isSidecar(c: any): boolean {
  return c?.restartPolicy === 'Always'
}

export function shouldRestart(policy: RestartPolicy, exitCode: number | undefined): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0)
}

export function graceSeconds(pod: KubeObject): number {
  const g = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds
  return typeof g === 'number' && g >= 0 ? g : 30
}

/**
 * Init containers are done: there are none, an app container was already
 * started (in `sandboxId`, when given), or each one completed (a sidecar: runs).
 */
export function initializationDone(pod: KubeObject, groups: ContainerGroups, sandboxId?: string): boolean {
  const inits = initContainers(pod)
  if (inits.length === 0) return true
  const inSandbox = (c: ActualContainer) => sandboxId === undefined || c.sandboxId === sandboxId
  if (appContainers(pod).some((c) => (groups.get(c.name) ?? []).some(inSandbox))) return true
  return inits.every((ic) => {
    const cur = (groups.get(ic.name) ?? []).find(inSandbox)
    if (!cur) return false
    return isSidecar(ic) ? cur.state === 'running' : cur.state === 'exited' && cur.exitCode === 0
  })
}

/** An init container failed under restartPolicy Never: the pod has failed. */
export function initFailedForGood(pod: KubeObject, groups: ContainerGroups): boolean {
  if (restartPolicy(pod) !== 'Never') return false
  return initContainers(pod).some((ic) => {
    const cur = groups.get(ic.name)?.[0]
    return !isSidecar(ic) && cur?.state === 'exited' && cur.exitCode !== 0
  })
}

/** The pod reached Succeeded or Failed: nothing will run in it again. */
export function podFinished(pod: KubeObject, groups: ContainerGroups): boolean {
  const phase = pod.status?.phase
  if (phase === 'Succeeded' || phase === 'Failed') return true
  const policy = restartPolicy(pod)
  if (policy === 'Always') return false
  if (initFailedForGood(pod, groups)) return true
  const apps = appContainers(pod)
  return apps.length > 0 && apps.every((c) => {
    const cur = groups.get(c.name)?.[0]
    return cur?.state === 'exited' && !shouldRestart(policy, cur.exitCode)
  })
}

/** How long to wait before restarting a container that exited, and the back-off step of its successor. */
export function crashBackoff(prev: ActualContainer, cfg: BackoffConfig): { delayMs: number; nextStep: number } {
  const ran = prev.startedAt && prev.finishedAt ? Date.parse(prev.finishedAt) - Date.parse(prev.startedAt) : 0
  const step = ran >= cfg.resetMs ? 0 : prev.backoffStep
  return { delayMs: step === 0 ? 0 : Math.min(cfg.maxMs, cfg.baseMs * 2 ** (step - 1)), nextStep: step + 1 }
}

export function pullBackoffMs(failures: number, cfg: BackoffConfig): number {
  return Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.max(0, failures - 1))
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`
}
