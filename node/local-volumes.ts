// The node's side of persistent volumes:
//  - publishes on its Node where the local provisioner puts this node's
//    volumes (`skiff.dev/local-volume-dir`: <stateDir>/local-volumes) and the
//    host paths no hostPath may name (`skiff.dev/reserved-host-paths`: the
//    state dir and the Docker Engine's socket), so the apiserver refuses them
//    at apply time;
//  - resolves a pod's persistentVolumeClaim volume: claim → bound volume →
//    its directory on this node (created for the local provisioner's
//    volumes; a static local volume's directory must exist, as Kubernetes'
//    local volumes), refusing a volume pinned elsewhere or a reserved path;
//  - removes the data of this node's local-provisioner volumes that are
//    being deleted (PVs with the `skiff.dev/local-volume-data` finalizer and
//    a deletionTimestamp), then drops that finalizer, so the PV object is
//    gone only after its data is. Only a directory named after the volume
//    directly inside the local volume dir is ever removed.

import { mkdir, realpath, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { lookupResource } from '../controlplane/api/resources.ts'
import type { KubeObject } from '../controlplane/api/types.ts'
import { alwaysReservedHostPaths, cleanPath, isUnder, localProvisioner, pinnedNode, storageAnnotations, storageFinalizers, volumePath } from '../controlplane/api/storage.ts'
import { ApiClientError, type ApiClient } from '../controlplane/client/client.ts'
import { Informer } from '../controlplane/client/informer.ts'
import { WorkQueue } from '../controlplane/client/workqueue.ts'
import type { Logger } from '../lib/log.ts'
import { VolumeError } from './pods/volumes.ts'

const nodesInfo = lookupResource('', 'v1', 'nodes')!
const pvInfo = lookupResource('', 'v1', 'persistentvolumes')!
const pvcInfo = lookupResource('', 'v1', 'persistentvolumeclaims')!

export interface LocalVolumesOptions {
  nodeName: string
  client: ApiClient
  stateDir: string
  /** The Docker Engine socket the agent uses (reserved too). */
  engineSocket?: string
  logger: Logger
}

/** What a claim resolves to on this node. */
export interface ClaimPath {
  path: string
  readOnly: boolean
}

/** Resolves a pod's claim to a host directory (VolumeManager's persistentVolumeClaim source). */
export interface ClaimResolver {
  resolve(pod: KubeObject, claimName: string, readOnly: boolean): Promise<ClaimPath>
  /** Host paths no hostPath volume may name on this node. */
  readonly reserved: readonly string[]
}

/** The local provisioner's directory for a volume here, or undefined when `pv` is not one of ours on this node. Pure. */
export function ownLocalDir(pv: KubeObject, nodeName: string, root: string): string | undefined {
  if (pv.metadata.annotations?.[storageAnnotations.provisionedBy] !== localProvisioner) return undefined
  if (pinnedNode(pv) !== nodeName) return undefined
  const want = join(root, pv.metadata.name!)
  return pv.spec?.local?.path && cleanPath(pv.spec.local.path) === cleanPath(want) ? want : undefined
}

/**
 * Where a bound claim's volume is on this node, or why it cannot be used
 * here. Pure: `pv` is the claim's volume, `root` the local volume dir.
 */
export function planClaimPath(o: { claim: KubeObject | undefined; claimName: string; pv: KubeObject | undefined; nodeName: string; root: string; reserved: readonly string[] }): { path: string; create: boolean } | { error: string } {
  const { claim, pv } = o
  if (!claim) return { error: `persistentvolumeclaim "${o.claimName}" not found` }
  if (!claim.spec?.volumeName || claim.status?.phase !== 'Bound') return { error: `persistentvolumeclaim "${o.claimName}" is not bound yet` }
  if (!pv) return { error: `persistentvolume "${claim.spec.volumeName}" of claim "${o.claimName}" not found` }
  if (pv.spec?.claimRef?.uid !== claim.metadata.uid) return { error: `persistentvolume "${pv.metadata.name}" is not bound to claim "${o.claimName}"` }
  const path = volumePath(pv)
  if (!path) return { error: `persistentvolume "${pv.metadata.name}": only local and hostPath volumes can be mounted by this node` }
  const pinned = pinnedNode(pv)
  if (pv.spec?.local && pinned !== undefined && pinned !== o.nodeName) return { error: `persistentvolume "${pv.metadata.name}" is on node "${pinned}", not on this node` }
  const own = ownLocalDir(pv, o.nodeName, o.root)
  if (own) return { path: own, create: true }
  const hit = o.reserved.find((r) => isUnder(path, r) || isUnder(r, path))
  if (hit) return { error: `persistentvolume "${pv.metadata.name}": path ${path} is refused on this node (it is, contains or lies under ${hit})` }
  return { path: cleanPath(path), create: pv.spec?.hostPath?.type === 'DirectoryOrCreate' }
}

export class LocalVolumes implements ClaimResolver {
  #o: LocalVolumesOptions
  readonly root: string
  readonly reserved: readonly string[]
  #volumes?: Informer
  #claims?: Informer
  #queue?: WorkQueue

  constructor(o: LocalVolumesOptions) {
    this.#o = o
    this.root = join(o.stateDir, 'local-volumes')
    this.reserved = [...new Set([...alwaysReservedHostPaths, cleanPath(o.stateDir), ...(o.engineSocket ? [cleanPath(o.engineSocket)] : [])])]
  }

  async start(): Promise<void> {
    const o = this.#o
    await mkdir(this.root, { recursive: true, mode: 0o711 })
    await o.client.patch(nodesInfo, undefined, o.nodeName, {
      metadata: { annotations: { 'skiff.dev/local-volume-dir': this.root, 'skiff.dev/reserved-host-paths': this.reserved.join(',') } },
    }, 'application/merge-patch+json')
    const log = o.logger.child({ component: 'local-volumes' })
    this.#volumes = new Informer({ client: o.client, info: pvInfo, logger: log, resyncMs: 60_000 })
    this.#claims = new Informer({ client: o.client, info: pvcInfo, logger: log })
    const queue = (this.#queue = new WorkQueue({ name: 'local-volumes', logger: log }))
    const seen = (pv: KubeObject) => pv.metadata.deletionTimestamp && pv.metadata.finalizers?.includes(storageFinalizers.localData) && queue.add(pv.metadata.name!)
    this.#volumes.addHandlers({ onAdd: seen, onUpdate: (_, pv) => seen(pv) })
    queue.start((name) => this.#reclaim(name))
    // Not awaited: pods must not wait for these caches (resolve() reads through to the API while they fill).
    void Promise.all([this.#volumes.start(), this.#claims.start()]).catch((e) => log.warn({ err: (e as Error).message }, 'volume informers did not start'))
  }

  stop(): void {
    this.#queue?.stop()
    this.#volumes?.stop()
    this.#claims?.stop()
  }

  async resolve(pod: KubeObject, claimName: string, readOnly: boolean): Promise<ClaimPath> {
    const ns = pod.metadata.namespace ?? 'default'
    // Read through: a claim bound a moment ago may not be in the caches yet.
    const get = async (info: typeof pvInfo, n: string | undefined, name: string, cached: Informer | undefined) =>
      cached?.get(n ? `${n}/${name}` : name) ?? (await this.#o.client.get(info, n, name).catch((e) => {
        if (e instanceof ApiClientError && e.status === 404) return undefined
        throw e
      }))
    let claim = await get(pvcInfo, ns, claimName, this.#claims)
    if (claim && claim.status?.phase !== 'Bound') claim = await get(pvcInfo, ns, claimName, undefined)
    const pv = claim?.spec?.volumeName ? await get(pvInfo, undefined, claim.spec.volumeName, this.#volumes) : undefined
    const plan = planClaimPath({ claim, claimName, pv, nodeName: this.#o.nodeName, root: this.root, reserved: this.reserved })
    if ('error' in plan) throw new VolumeError(plan.error)
    if (plan.create) await mkdir(plan.path, { recursive: true, mode: 0o777 })
    else await stat(plan.path).catch(() => { throw new VolumeError(`path ${plan.path} of claim "${claimName}" does not exist on this node`) })
    if (!ownLocalDir(pv!, this.#o.nodeName, this.root)) {
      // A static volume whose path resolves (symlinks) into a reserved path is refused like the path itself.
      const real = await realpath(plan.path)
      const hit = this.reserved.find((r) => isUnder(real, r) || isUnder(r, real))
      if (hit) throw new VolumeError(`persistentvolume "${pv!.metadata.name}": path ${plan.path} resolves to ${real}, which is refused on this node (under or holding ${hit})`)
    }
    return { path: plan.path, readOnly: readOnly || pv?.spec?.csi?.readOnly === true }
  }

  /** Remove the data of a volume of ours being deleted, then its finalizer. */
  async #reclaim(name: string): Promise<void> {
    const pv = this.#volumes!.get(name)
    if (!pv?.metadata.deletionTimestamp || !pv.metadata.finalizers?.includes(storageFinalizers.localData)) return
    const dir = ownLocalDir(pv, this.#o.nodeName, this.root)
    if (!dir) return // another node's volume (or not the provisioner's): not ours to touch
    // Retain keeps the data even when the volume object is deleted (as Kubernetes): only Delete removes it.
    if (pv.spec?.persistentVolumeReclaimPolicy === 'Delete') {
      await rm(dir, { recursive: true, force: true })
      this.#o.logger.info({ volume: name, path: dir }, 'removed the data of a deleted local volume')
    }
    const next = structuredClone(pv)
    next.metadata.finalizers = pv.metadata.finalizers.filter((f: string) => f !== storageFinalizers.localData)
    try {
      await this.#o.client.update(pvInfo, next)
    } catch (e) {
      if (e instanceof ApiClientError && (e.status === 404 || e.status === 409)) return
      throw e
    }
  }
}
