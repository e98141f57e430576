// Which Docker container a kubelet request means. The agent labels every
// container it creates (labels below); a pod's container restarts as a new
// Docker container with a higher attempt number, so the current one is the
// highest attempt and `previous` is the one just before it.

import type Dockerode from 'dockerode'

export const labels = {
  node: 'skiff.node',
  namespace: 'skiff.pod.namespace',
  pod: 'skiff.pod.name',
  container: 'skiff.container.name',
  role: 'skiff.container.role',
  attempt: 'skiff.container.attempt',
} as const

export interface ContainerRef {
  namespace: string
  pod: string
  container: string
}

/** What pickContainer needs from a Docker container listing. */
export interface Candidate {
  Id: string
  Created: number
  State: string
  Labels: Record<string, string>
}

export type ContainerPick<T extends Candidate> = { ok: true; container: T } | { ok: false; status: number; message: string }

function attemptOf(c: Candidate): number {
  const n = Number(c.Labels[labels.attempt])
  return Number.isInteger(n) && n >= 0 ? n : -1
}

/**
 * The container a request means among the listed ones (already filtered by
 * node, pod and container name): the highest attempt, or with `previous` the
 * next lower one. Sandboxes are never a target. Pure.
 */
export function pickContainer<T extends Candidate>(ref: ContainerRef, list: T[], opts: { previous?: boolean } = {}): ContainerPick<T> {
  const ordered = list
    .filter((c) => c.Labels[labels.role] !== 'sandbox')
    .sort((a, b) => attemptOf(b) - attemptOf(a) || b.Created - a.Created)
  if (opts.previous) {
    const prev = ordered[1]
    if (prev) return { ok: true, container: prev }
    return { ok: false, status: 400, message: `previous terminated container "${ref.container}" in pod "${ref.pod}" not found` }
  }
  const current = ordered[0]
  if (current) return { ok: true, container: current }
  return { ok: false, status: 400, message: `container "${ref.container}" in pod "${ref.pod}" is waiting to start: no container has been created for it yet` }
}

/** Docker label filters selecting the containers of one pod container on this node. */
export function labelFilters(node: string, ref: ContainerRef): string[] {
  return [
    `${labels.node}=${node}`,
    `${labels.namespace}=${ref.namespace}`,
    `${labels.pod}=${ref.pod}`,
    `${labels.container}=${ref.container}`,
  ]
}

export async function findContainer(docker: Dockerode, node: string, ref: ContainerRef, opts: { previous?: boolean } = {}): Promise<ContainerPick<Dockerode.ContainerInfo>> {
  const list = await docker.listContainers({ all: true, filters: { label: labelFilters(node, ref) } })
  return pickContainer(ref, list, opts)
}

/** `/containerLogs/{ns}/{pod}/{container}`, `/exec/...` or `/attach/...` → the reference, or undefined. */
export function parseContainerPath(pathname: string, prefix: '/containerLogs/' | '/exec/' | '/attach/'): ContainerRef | undefined {
  if (!pathname.startsWith(prefix)) return undefined
  const parts = pathname.slice(prefix.length).split('/')
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined
  try {
    const [namespace, pod, container] = parts.map(decodeURIComponent) as [string, string, string]
    return { namespace, pod, container }
  } catch {
    return undefined
  }
}
