// Stopping containers the way Kubernetes does: the preStop hook (exec or
// httpGet, bounded by the grace period), then SIGTERM through `docker stop`
// with what is left of the grace period, then SIGKILL. Used for graceful pod
// deletion (all app containers at once, the sandbox last) and for single
// restarts (a failed liveness probe, a changed spec).

import type { KubeObject } from '../../controlplane/api/types.ts'
import type { Logger } from '../../lib/log.ts'
import { runHandler } from '../probes.ts'
import type { DockerRuntime } from './runtime.ts'
import type { ActualContainer } from './types.ts'

export interface StopContext {
  runtime: DockerRuntime
  logger: Logger
  podIP?: string
}

/** preStop, then SIGTERM, then SIGKILL once graceSeconds have passed in all. */
export async function stopContainer(pod: KubeObject, c: ActualContainer, graceSeconds: number, ctx: StopContext): Promise<void> {
  // Monotonic: a wall-clock step must neither cut the grace period short nor stretch it.
  const deadline = performance.now() + graceSeconds * 1000
  const spec = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((s) => s.name === c.name)
  const hook = spec?.lifecycle?.preStop
  if (hook && c.role !== 'sandbox' && graceSeconds > 0) {
    const target = { podIP: ctx.podIP ?? '127.0.0.1', containerId: c.id, ports: spec.ports ?? [] }
    const r = await runHandler(hook, target, ctx.runtime, Math.max(1, deadline - performance.now()))
    if (!r.ok) ctx.logger.info({ pod: pod.metadata.name, container: c.name, message: r.message }, 'preStop hook failed')
  }
  const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000))
  await ctx.runtime.stop(c.id, c.role === 'sandbox' ? 0 : left)
}

/** Stop every container of a pod gracefully (apps together, then the sandbox), then remove them all. */
export async function terminateContainers(pod: KubeObject, actual: readonly ActualContainer[], graceSeconds: number, ctx: StopContext): Promise<void> {
  const running = actual.filter((c) => c.state === 'running')
  await Promise.all(running.filter((c) => c.role !== 'sandbox').map((c) => stopContainer(pod, c, graceSeconds, ctx)))
  await Promise.all(running.filter((c) => c.role === 'sandbox').map((c) => ctx.runtime.stop(c.id, 0)))
  for (const c of actual) await ctx.runtime.remove(c.id)
}
