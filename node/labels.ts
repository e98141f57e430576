// The labels and names every Skiff container carries. Docker is the agent's
// only memory of what it started: after a restart the agent adopts running
// containers by these labels, so they must say everything the pod sync needs
// (which node, pod, container, restart attempt, spec hash, back-off step).

import { createHash } from 'node:crypto'

export const labels = {
  node: 'skiff.node',
  podUid: 'skiff.pod.uid',
  podNamespace: 'skiff.pod.namespace',
  podName: 'skiff.pod.name',
  containerName: 'skiff.container.name',
  role: 'skiff.container.role',
  attempt: 'skiff.container.attempt',
  hash: 'skiff.container.hash',
  /** Consecutive short-lived runs before this container was created (CrashLoopBackOff step). */
  backoff: 'skiff.container.backoff',
} as const

export type ContainerRole = 'sandbox' | 'init' | 'app'

/** The container name the sandbox goes by, as in the kubelet. */
export const sandboxName = 'POD'

/** The Docker network of a node's pods. */
export function networkName(node: string): string {
  return `skiff-${node}`
}

export function containerDockerName(o: { node: string; namespace: string; pod: string; container: string; uid: string; attempt: number }): string {
  return `skiff_${o.node}_${o.namespace}_${o.pod}_${o.container}_${o.uid.replace(/-/g, '').slice(0, 8)}_${o.attempt}`
}

/** JSON with sorted keys, so equal specs hash equal whatever the key order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

/** A short hash of a container spec; a container whose spec hash changed is restarted. */
export function specHash(container: unknown): string {
  return createHash('sha256').update(stableJson(container)).digest('hex').slice(0, 16)
}
