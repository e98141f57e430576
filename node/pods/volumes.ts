// Pod volumes on the host, under <stateDir>/pods/<uid>/volumes/<name>:
//  - emptyDir: a directory shared by the pod's containers, removed with the pod;
//  - configMap / secret: files projected from the API object and refreshed in
//    place when it changes, like the kubelet's atomic writer: the files live
//    in a timestamped directory, `..data` is a symlink to it, each top-level
//    name is a symlink through `..data`, and an update writes a new directory
//    and renames a new `..data` over the old one. Containers mount the
//    directory (never a file), so they see the change without a restart;
//  - projected: serviceAccountToken, configMap, secret and downwardAPI
//    sources in one directory, written the same way (projected.ts; the
//    token is rotated);
//  - downwardAPI: the pod's metadata and its containers' resources as files
//    (downward-api.ts), written the same way;
//  - persistentVolumeClaim: the claim's volume directory, resolved by the
//    node's ClaimResolver (../local-volumes.ts); it is never removed with
//    the pod;
//  - hostPath: the host path itself, unless it is, contains or lies under a
//    reserved path (the Docker socket, the agent's state dir).
// Other volume types are refused with a clear message (the pod stays in
// ContainerCreating).

import { randomBytes, createHash } from 'node:crypto'
import { chmod, mkdir, readdir, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { KubeObject } from '../../controlplane/api/types.ts'
import type { VolumePath } from './container-config.ts'
import { projectedFiles, type ProjectedSources } from './projected.ts'
import { downwardApiFiles } from './downward-api.ts'
import { alwaysReservedHostPaths, cleanPath, isUnder } from '../../controlplane/api/storage.ts'
import type { ClaimResolver } from '../local-volumes.ts'

/** The reserved path a hostPath is, contains or lies under, if any (pure; the node's defence behind the apiserver's check). */
export function refusedHostPath(path: unknown, reserved: readonly string[]): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) return '(not an absolute path)'
  return reserved.find((r) => isUnder(path, r) || isUnder(r, path))
}

export class VolumeError extends Error {
  override name = 'VolumeError'
}

export interface ProjectedFile {
  path: string
  data: Buffer
  mode: number
}

/** The files a configMap or secret volume shows (pure). `items` selects and renames keys. */
export function projectFiles(entries: ReadonlyMap<string, Buffer>, vol: { items?: any[]; defaultMode?: number; optional?: boolean }, what: string): ProjectedFile[] {
  const mode = vol.defaultMode ?? 0o644
  if (!vol.items?.length) return [...entries].map(([k, data]) => ({ path: k, data, mode }))
  const out: ProjectedFile[] = []
  for (const it of vol.items) {
    const data = entries.get(it.key)
    if (!data) {
      if (vol.optional) continue
      throw new VolumeError(`${what} references non-existent key: ${it.key}`)
    }
    out.push({ path: it.path, data, mode: it.mode ?? mode })
  }
  return out
}

export function objectEntries(obj: KubeObject, kind: 'configmap' | 'secret'): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  if (kind === 'configmap') {
    for (const [k, v] of Object.entries(obj.data ?? {})) out.set(k, Buffer.from(String(v), 'utf8'))
    for (const [k, v] of Object.entries(obj.binaryData ?? {})) out.set(k, Buffer.from(String(v), 'base64'))
  } else {
    for (const [k, v] of Object.entries(obj.data ?? {})) out.set(k, Buffer.from(String(v), 'base64'))
  }
  return out
}

function filesHash(files: ProjectedFile[]): string {
  const h = createHash('sha256')
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) h.update(`${f.path}\0${f.mode}\0`).update(f.data).update('\0')
  return h.digest('hex')
}

/** Replace the directory's projected files atomically (see the header). */
export async function writeAtomic(dir: string, files: ProjectedFile[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 })
  const fresh = `..${Date.now()}_${randomBytes(4).toString('hex')}`
  for (const f of files) {
    if (f.path.split('/').some((p) => p === '..' || p === '') || f.path.startsWith('..')) throw new VolumeError(`invalid file path ${f.path}`)
    const target = join(dir, fresh, f.path)
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, f.data)
    await chmod(target, f.mode)
  }
  await mkdir(join(dir, fresh), { recursive: true })
  await rm(join(dir, '..data_tmp'), { force: true })
  await symlink(fresh, join(dir, '..data_tmp'))
  await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  const top = new Set(files.map((f) => f.path.split('/')[0]!))
  const present = await readdir(dir)
  for (const name of top) if (!present.includes(name)) await symlink(join('..data', name), join(dir, name))
  for (const name of present) {
    if (name === '..data' || name === fresh) continue
    if (name.startsWith('..') || !top.has(name)) await rm(join(dir, name), { recursive: true, force: true })
  }
}

export class VolumeManager {
  #root: string
  /** dir -> hash of what was last written there, so unchanged content is not rewritten. */
  #written = new Map<string, string>()
  #refreshAt = new Map<string, number>()

  #claims?: ClaimResolver
  #reserved: readonly string[]

  /** `claims` resolves persistentVolumeClaim volumes (../local-volumes.ts); `reserved` host paths no hostPath may name (the agent's state, the Engine socket). */
  constructor(opts: { stateDir: string; claims?: ClaimResolver }) {
    this.#root = join(opts.stateDir, 'pods')
    this.#claims = opts.claims
    this.#reserved = opts.claims?.reserved ?? [...alwaysReservedHostPaths, cleanPath(opts.stateDir)]
  }

  podDir(uid: string): string {
    return join(this.#root, uid)
  }

  /** Create or refresh every volume of the pod; returns host paths by volume name. */
  async setUp(pod: KubeObject, sources: ProjectedSources): Promise<Map<string, VolumePath>> {
    const base = join(this.podDir(pod.metadata.uid!), 'volumes')
    const out = new Map<string, VolumePath>()
    let refreshAtMs = Infinity
    for (const v of pod.spec?.volumes ?? []) {
      const dir = join(base, v.name)
      if (v.projected) {
        const p = await projectedFiles(pod, v, sources)
        refreshAtMs = Math.min(refreshAtMs, p.refreshAtMs)
        await this.#writeIfChanged(dir, p.files)
        out.set(v.name, { path: dir, readOnly: true })
      } else if (v.emptyDir) {
        await mkdir(dir, { recursive: true })
        await chmod(dir, 0o777) // any container user may write, as with the kubelet's emptyDir
        out.set(v.name, { path: dir, readOnly: false })
      } else if (v.configMap || v.secret) {
        const kind = v.configMap ? 'configmap' : 'secret'
        const ref = v.configMap ? { name: v.configMap.name, ...v.configMap } : { name: v.secret.secretName, ...v.secret }
        const obj = (kind === 'configmap' ? sources.configMaps : sources.secrets).get(ref.name)
        if (!obj && !ref.optional) throw new VolumeError(`MountVolume.SetUp failed for volume "${v.name}" : ${kind} "${ref.name}" not found`)
        const files = obj ? projectFiles(objectEntries(obj, kind), ref, `${kind} ${ref.name}`) : []
        await this.#writeIfChanged(dir, files)
        out.set(v.name, { path: dir, readOnly: true })
      } else if (v.hostPath) {
        // The path as written and as the kernel resolves it (a symlink to the socket or the state is refused too).
        const real = await realpath(v.hostPath.path).catch(() => v.hostPath.path)
        const refused = refusedHostPath(v.hostPath.path, this.#reserved) ?? refusedHostPath(real, this.#reserved)
        if (refused) throw new VolumeError(`volume ${v.name}: hostPath ${v.hostPath.path} is refused on this node (it is, contains or lies under ${refused})`)
        if (v.hostPath.type === 'DirectoryOrCreate') await mkdir(v.hostPath.path, { recursive: true })
        out.set(v.name, { path: v.hostPath.path, readOnly: false })
      } else if (v.downwardAPI) {
        const files = downwardApiFiles(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? 0o644, sources.allocatable ?? { cpu: 0, memory: 0 })
        await this.#writeIfChanged(dir, files)
        out.set(v.name, { path: dir, readOnly: true })
      } else if (v.persistentVolumeClaim) {
        // The claim's volume lives outside the pod's directory: it outlives the pod, its containers and the agent.
        if (!this.#claims) throw new VolumeError(`volume ${v.name}: this node cannot mount persistent volume claims`)
        const got = await this.#claims.resolve(pod, v.persistentVolumeClaim.claimName, v.persistentVolumeClaim.readOnly === true)
        out.set(v.name, got)
      } else {
        const type = Object.keys(v).find((k) => k !== 'name') ?? 'unknown'
        throw new VolumeError(`volume ${v.name}: type ${type} is not supported by this node`)
      }
    }
    if (Number.isFinite(refreshAtMs)) this.#refreshAt.set(pod.metadata.uid!, refreshAtMs)
    else this.#refreshAt.delete(pod.metadata.uid!)
    return out
  }

  /** When this pod's volumes want setting up again (a projected token to rotate; monotonic ms), if ever. */
  refreshAt(uid: string): number | undefined {
    return this.#refreshAt.get(uid)
  }

  async #writeIfChanged(dir: string, files: ProjectedFile[]): Promise<void> {
    const hash = filesHash(files)
    if (this.#written.get(dir) === hash) return
    await writeAtomic(dir, files)
    this.#written.set(dir, hash)
  }

  /** Write the pod's resolv.conf; returns its host path. */
  async writeResolvConf(uid: string, content: string): Promise<string> {
    const path = join(this.podDir(uid), 'resolv.conf')
    await mkdir(this.podDir(uid), { recursive: true })
    await writeFile(path, content, { mode: 0o644 })
    return path
  }

  async tearDown(uid: string): Promise<void> {
    const dir = this.podDir(uid)
    for (const k of this.#written.keys()) if (k.startsWith(dir + '/')) this.#written.delete(k)
    this.#refreshAt.delete(uid)
    await rm(dir, { recursive: true, force: true })
  }

  /** UIDs that have a directory here (to remove those of pods that are gone). */
  async knownUids(): Promise<string[]> {
    try {
      return await readdir(this.#root)
    } catch {
      return []
    }
  }
}

/** For tests and debugging: where `..data` points. */
export async function currentDataDir(dir: string): Promise<string> {
  return await readlink(join(dir, '..data'))
}
