// Projected volumes as the kubelet fills them: serviceAccountToken (a bound
// token from the TokenRequest API, rotated), configMap and secret (keys or
// items), downwardAPI (fieldRef items), all in one directory written
// atomically (volumes.ts); downwardAPI items are downward-api.ts's. A token is requested for the pod's
// ServiceAccount, bound to the pod, and requested again when 80% of its
// lifetime has passed or it is older than 24 hours (the kubelet's rule);
// the pod's sync is requeued for that moment.

import type { KubeObject } from '../../controlplane/api/types.ts'
import { monotonicMs } from '../../controlplane/client/lease-observer.ts'
import { downwardApiFiles } from './downward-api.ts'
import { objectEntries, projectFiles, VolumeError, type ProjectedFile } from './volumes.ts'

export interface TokenSource {
  /** A TokenRequest for this pod's ServiceAccount, bound to the pod: the token and its lifetime in seconds. */
  request(pod: KubeObject, audiences: string[] | undefined, expirationSeconds: number): Promise<{ token: string; expirationSeconds: number }>
}

interface Cached {
  token: string
  refreshAtMs: number
}

/** When a token issued now for `seconds` must be requested again (monotonic ms). Pure. */
export function tokenRefreshAt(issuedAtMs: number, seconds: number): number {
  return issuedAtMs + Math.min(seconds * 0.8, 24 * 3600) * 1000
}

export class ProjectedTokens {
  #source: TokenSource
  #cache = new Map<string, Cached>()

  constructor(source: TokenSource) {
    this.#source = source
  }

  async token(pod: KubeObject, volume: string, src: { audience?: string; expirationSeconds?: number }): Promise<Cached> {
    const key = `${pod.metadata.uid}/${volume}/${src.audience ?? ''}/${src.expirationSeconds ?? 3600}`
    const hit = this.#cache.get(key)
    if (hit && monotonicMs() < hit.refreshAtMs) return hit
    const got = await this.#source.request(pod, src.audience ? [src.audience] : undefined, src.expirationSeconds ?? 3600)
    const fresh = { token: got.token, refreshAtMs: tokenRefreshAt(monotonicMs(), got.expirationSeconds) }
    this.#cache.set(key, fresh)
    return fresh
  }

  forget(uid: string): void {
    for (const k of this.#cache.keys()) if (k.startsWith(`${uid}/`)) this.#cache.delete(k)
  }
}

export interface ProjectedSources {
  configMaps: ReadonlyMap<string, KubeObject | null>
  secrets: ReadonlyMap<string, KubeObject | null>
  tokens?: ProjectedTokens
  /** Node allocatable, for downward API resourceFieldRef items of a resource without a limit. */
  allocatable?: { cpu: number; memory: number }
}

/** The files of a projected volume, and when its tokens want refreshing (monotonic ms, Infinity without tokens). */
export async function projectedFiles(pod: KubeObject, vol: { name: string; projected: any }, src: ProjectedSources): Promise<{ files: ProjectedFile[]; refreshAtMs: number }> {
  const mode = vol.projected.defaultMode ?? 0o644
  const files: ProjectedFile[] = []
  let refreshAtMs = Infinity
  for (const s of vol.projected.sources ?? []) {
    if (s.serviceAccountToken) {
      if (!src.tokens) throw new VolumeError(`volume ${vol.name}: this node cannot request service account tokens`)
      const t = await src.tokens.token(pod, vol.name, s.serviceAccountToken)
      files.push({ path: s.serviceAccountToken.path, data: Buffer.from(t.token), mode: s.serviceAccountToken.mode ?? mode })
      refreshAtMs = Math.min(refreshAtMs, t.refreshAtMs)
    } else if (s.configMap || s.secret) {
      const kind = s.configMap ? 'configmap' : 'secret'
      const ref = s.configMap ?? s.secret
      const obj = (kind === 'configmap' ? src.configMaps : src.secrets).get(ref.name)
      if (!obj && !ref.optional) throw new VolumeError(`MountVolume.SetUp failed for volume "${vol.name}" : ${kind} "${ref.name}" not found`)
      if (obj) files.push(...projectFiles(objectEntries(obj, kind), { ...ref, defaultMode: mode }, `${kind} ${ref.name}`))
    } else if (s.downwardAPI) {
      files.push(...downwardApiFiles(pod, s.downwardAPI.items ?? [], mode, src.allocatable ?? { cpu: 0, memory: 0 }))
    } else {
      throw new VolumeError(`volume ${vol.name}: projected source ${Object.keys(s)[0] ?? 'unknown'} is not supported by this node`)
    }
  }
  return { files, refreshAtMs }
}
