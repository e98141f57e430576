// The data the pod sync plans with. `ActualContainer` is what Docker says
// about one container of a pod (read back from its labels and inspect);
// `PodAction` is one step the apply layer takes. planPodActions (plan.ts)
// maps (desired pod, actual containers, now, runtime facts) to actions;
// computePodStatus (status.ts) maps the same inputs to the pod's status.

import type { ContainerRole } from '../labels.ts'

export interface ActualContainer {
  id: string
  /** skiff.container.name: the spec name, or POD for the sandbox. */
  name: string
  role: ContainerRole
  attempt: number
  hash: string
  backoffStep: number
  podUid: string
  /** The sandbox whose network this container joined (from NetworkMode container:<id>). */
  sandboxId?: string
  state: 'created' | 'running' | 'exited'
  exitCode?: number
  oomKilled?: boolean
  /** ISO timestamps; startedAt is undefined for a container that never started. */
  startedAt?: string
  finishedAt?: string
  createdAt: string
  /** The image reference the container was created from, and its ID (sha256:…). */
  image: string
  imageID: string
  /** The pod IP (sandbox only). */
  ip?: string
  error?: string
}

/** What the probe workers currently say about one running container. */
export interface ProbeView {
  /** The startup probe passed (true without a startup probe). */
  started: boolean
  /** The readiness probe passed (true without a readiness probe once started). */
  ready: boolean
  /** Set when a liveness or startup probe failed for good: the container must be restarted. */
  kill?: string
}

/** An image that could not be pulled: retried with back-off. */
export interface PullFailure {
  failures: number
  /** On the planner's clock (PlanContext.now). */
  lastFailureMs: number
  message: string
}

export interface BackoffConfig {
  /** First CrashLoopBackOff delay (Kubernetes: 10 s), doubled per crash. */
  baseMs: number
  /** Ceiling (Kubernetes: 300 s). */
  maxMs: number
  /** A container that ran this long resets the back-off (Kubernetes: 10 min). */
  resetMs: number
}

export const defaultBackoff: BackoffConfig = { baseMs: 10_000, maxMs: 300_000, resetMs: 600_000 }

export interface PlanContext {
  /** The planner's clock: the agent's monotonic one (waits, back-offs), never compared with Docker's timestamps. */
  now: number
  /** When an exited container was first seen exited, on the clock of `now` (default: Docker's finishedAt). */
  exitedAt?: (c: ActualContainer) => number
  backoff: BackoffConfig
  /** Volumes are in place (configMaps and secrets written); containers are created only then. */
  volumesReady: boolean
  probes: (containerId: string) => ProbeView | undefined
  pulls: ReadonlyMap<string, PullFailure>
}

export type PodAction =
  | { type: 'createSandbox'; attempt: number }
  | { type: 'startContainer'; name: string; role: 'init' | 'app'; attempt: number; backoffStep: number; sandboxId: string }
  | { type: 'killContainer'; id: string; name: string; reason: string; graceSeconds: number }
  | { type: 'removeContainer'; id: string; name: string }
  | { type: 'wait'; name: string; reason: 'CrashLoopBackOff' | 'ImagePullBackOff' | 'ErrImagePull'; message: string; untilMs: number }

/** Why a container is not running, as container status `waiting` shows it. */
export interface Waiting {
  reason: string
  message?: string
}
