// planPodActions: the pure heart of the pod sync. Given the desired pod, the
// containers Docker has for it and a few runtime facts (probe results, image
// pull failures, the clock), it returns the next steps. The apply layer
// (sync.ts) runs them, reads Docker again and plans again until nothing is
// left to do, so each plan only needs to take the next safe step:
//   1. garbage: keep the newest and the previous container per name (logs
//      --previous), one sandbox; remove everything else;
//   2. a finished pod (restartPolicy Never/OnFailure) only has its sandbox stopped;
//   3. no running sandbox: stop what ran in the old one, create a new sandbox;
//   4. init containers, one at a time, each to completion;
//   5. app containers: start, restart with CrashLoopBackOff, or kill on a failed
//      liveness/startup probe or a changed spec.
// It never deletes the pod: termination (deletionTimestamp) is terminate.ts.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { sandboxName, specHash } from '../labels.ts'
import {
  appContainers, crashBackoff, formatDuration, graceSeconds, groupByName, initContainers, isSidecar, podFinished,
  pullBackoffMs, restartPolicy, shouldRestart, type ContainerGroups,
} from './facts.ts'
import type { ActualContainer, PlanContext, PodAction } from './types.ts'

export function planPodActions(pod: KubeObject, actual: readonly ActualContainer[], now: number, ctx: Omit<PlanContext, 'now'>): PodAction[] {
  const c: PlanContext = { ...ctx, now }
  const groups = groupByName(actual)
  const out = planGarbage(pod, groups)
  const sandbox = groups.get(sandboxName)?.[0]
  if (podFinished(pod, groups)) return [...out, ...killRunning(pod, actual, 'pod finished')]
  if (sandbox?.state !== 'running') return [...out, ...planSandbox(pod, groups, sandbox, c)]
  const init = planInit(pod, groups, sandbox.id, c)
  if (init) return [...out, ...init]
  return [...out, ...planApps(pod, groups, sandbox.id, c)]
}

function kill(c: ActualContainer, reason: string, graceSeconds: number): PodAction {
  return { type: 'killContainer', id: c.id, name: c.name, reason, graceSeconds }
}

function remove(c: ActualContainer): PodAction {
  return { type: 'removeContainer', id: c.id, name: c.name }
}

/** Stop every running container of the pod, the sandbox last. */
export function killRunning(pod: KubeObject, actual: readonly ActualContainer[], reason: string): PodAction[] {
  const running = actual.filter((a) => a.state === 'running')
  const apps = running.filter((a) => a.role !== 'sandbox').map((a) => kill(a, reason, graceSeconds(pod)))
  return [...apps, ...running.filter((a) => a.role === 'sandbox').map((a) => kill(a, reason, 0))]
}

function planGarbage(pod: KubeObject, groups: ContainerGroups): PodAction[] {
  const specNames = new Set([...appContainers(pod), ...initContainers(pod)].map((c) => c.name as string))
  const out: PodAction[] = []
  for (const [name, list] of groups) {
    const keep = name === sandboxName ? 1 : specNames.has(name) ? 2 : 0
    for (const c of list.slice(keep)) {
      // Only the newest container of a name may run; an older one still running is stopped first.
      out.push(c.state === 'running' ? kill(c, 'superseded', c.role === 'sandbox' ? 0 : graceSeconds(pod)) : remove(c))
    }
  }
  return out
}

function planSandbox(pod: KubeObject, groups: ContainerGroups, sandbox: ActualContainer | undefined, ctx: PlanContext): PodAction[] {
  if (!ctx.volumesReady) return []
  const out: PodAction[] = []
  // Whatever still runs joined the old sandbox's network, which is gone.
  for (const [name, list] of groups) {
    if (name === sandboxName) continue
    for (const c of list) if (c.state === 'running') out.push(kill(c, 'sandbox changed', graceSeconds(pod)))
  }
  const ran = [...groups].some(([name, list]) => name !== sandboxName && list.length > 0)
  // Under restartPolicy Never a pod whose containers already ran is not started again; it ends Failed.
  if (restartPolicy(pod) === 'Never' && ran) return out
  out.push({ type: 'createSandbox', attempt: sandbox ? sandbox.attempt + 1 : 0 })
  return out
}

/** The next init step, or undefined when initialization is done in this sandbox. */
function planInit(pod: KubeObject, groups: ContainerGroups, sandboxId: string, ctx: PlanContext): PodAction[] | undefined {
  const inits = initContainers(pod)
  if (inits.length === 0) return undefined
  if (appContainers(pod).some((c) => (groups.get(c.name) ?? []).some((a) => a.sandboxId === sandboxId))) return undefined
  for (const ic of inits) {
    const list = groups.get(ic.name) ?? []
    const cur = list[0]?.sandboxId === sandboxId ? list[0] : undefined
    if (!cur) return planStart(pod, ic, 'init', list[0], sandboxId, false, ctx)
    if (cur.state === 'created') return [remove(cur)]
    if (cur.state === 'running') {
      if (isSidecar(ic)) continue
      return []
    }
    if (cur.exitCode === 0 && !isSidecar(ic)) continue
    if (restartPolicy(pod) === 'Never' && !isSidecar(ic)) return []
    return planStart(pod, ic, 'init', cur, sandboxId, cur.hash === specHash(ic), ctx)
  }
  return undefined
}

function planApps(pod: KubeObject, groups: ContainerGroups, sandboxId: string, ctx: PlanContext): PodAction[] {
  const policy = restartPolicy(pod)
  const out: PodAction[] = []
  const sidecars = initContainers(pod).filter(isSidecar).map((spec) => ({ spec, role: 'init' as const }))
  for (const { spec, role } of [...sidecars, ...appContainers(pod).map((spec) => ({ spec, role: 'app' as const }))]) {
    const effective = role === 'init' ? 'Always' : policy
    const list = groups.get(spec.name) ?? []
    const cur = list[0]
    if (!cur || cur.sandboxId !== sandboxId) {
      if (cur && effective === 'Never') continue
      out.push(...planStart(pod, spec, role, cur, sandboxId, false, ctx))
    } else if (cur.state === 'created') {
      out.push(remove(cur))
    } else if (cur.state === 'running') {
      const probe = ctx.probes(cur.id)
      const grace = probe?.kill ? (spec.livenessProbe?.terminationGracePeriodSeconds ?? graceSeconds(pod)) : graceSeconds(pod)
      if (probe?.kill) out.push(kill(cur, probe.kill, grace))
      else if (cur.hash !== specHash(spec)) out.push(kill(cur, 'container spec changed', grace))
    } else if (shouldRestart(effective, cur.exitCode)) {
      out.push(...planStart(pod, spec, role, cur, sandboxId, cur.hash === specHash(spec), ctx))
    }
  }
  return out
}

/**
 * Start a container now, or wait: for an image pull back-off, or, after a
 * crash (`afterCrash`), for CrashLoopBackOff.
 */
function planStart(pod: KubeObject, spec: any, role: 'init' | 'app', prev: ActualContainer | undefined, sandboxId: string, afterCrash: boolean, ctx: PlanContext): PodAction[] {
  const pull = ctx.pulls.get(spec.name)
  if (pull) {
    const until = pull.lastFailureMs + pullBackoffMs(pull.failures, ctx.backoff)
    // The first failure shows ErrImagePull for its whole back-off; later ones ImagePullBackOff.
    const reason = pull.failures <= 1 ? 'ErrImagePull' : 'ImagePullBackOff'
    if (ctx.now < until) return [{ type: 'wait', name: spec.name, reason, message: pull.message, untilMs: until }]
  }
  let backoffStep = 0
  if (afterCrash && prev) {
    const { delayMs, nextStep } = crashBackoff(prev, ctx.backoff)
    const until = (ctx.exitedAt?.(prev) ?? Date.parse(prev.finishedAt ?? prev.createdAt)) + delayMs
    if (ctx.now < until) {
      const message = `back-off ${formatDuration(delayMs)} restarting failed container=${spec.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`
      return [{ type: 'wait', name: spec.name, reason: 'CrashLoopBackOff', message, untilMs: until }]
    }
    backoffStep = nextStep
  }
  return [{ type: 'startContainer', name: spec.name, role, attempt: prev ? prev.attempt + 1 : 0, backoffStep, sandboxId }]
}
