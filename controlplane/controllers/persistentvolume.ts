// The PersistentVolume controller (kube-controller-manager's persistentvolume
// binder, pv-protection and pvc-protection controllers) and Skiff's local
// provisioner (`skiff.dev/local`), in one loop. Handlers enqueue
// `claim:<ns>/<name>` or `volume:<name>`; the worker reads the caches, asks
// pv-binder.ts for the next step and writes it with the cached
// resourceVersion (a 409 is retried from a fresher cache). At start it
// creates the default StorageClass `local-path` when no class has that name.
// The data of a local volume is the node agent's (node/local-volumes.ts):
// it removes it, then the `skiff.dev/local-volume-data` finalizer.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { defaultLocalStorageClass, defaultLocalClassName } from '../api/storage.ts'
import { ApiClientError } from '../client/client.ts'
import { keyFor, type Informer } from '../client/informer.ts'
import { WorkQueue } from '../client/workqueue.ts'
import { planClaim, planClaimDeletion, planVolume, podUsesClaim, type Step } from './pv-binder.ts'
import type { Controller, ControllerContext } from './types.ts'

export const pvInfo = lookupResource('', 'v1', 'persistentvolumes')!
export const pvcInfo = lookupResource('', 'v1', 'persistentvolumeclaims')!
export const storageClassInfo = lookupResource('storage.k8s.io', 'v1', 'storageclasses')!
const nodesInfo = lookupResource('', 'v1', 'nodes')!
const podsInfo = lookupResource('', 'v1', 'pods')!

export class PersistentVolumeController implements Controller {
  readonly name = 'persistentvolume'
  #ctx?: ControllerContext
  #queue?: WorkQueue
  #claims?: Informer
  #volumes?: Informer
  #classes?: Informer
  #nodes?: Informer
  #pods?: Informer
  /** The last event message per object, so a claim that waits does not repeat its Event on every sync. */
  #said = new Map<string, string>()

  async start(ctx: ControllerContext): Promise<void> {
    this.#ctx = ctx
    this.#said.clear()
    const queue = (this.#queue = new WorkQueue({ name: this.name, logger: ctx.logger }))
    this.#claims = ctx.informers.for(pvcInfo)
    this.#volumes = ctx.informers.for(pvInfo)
    this.#classes = ctx.informers.for(storageClassInfo)
    this.#nodes = ctx.informers.for(nodesInfo)
    this.#pods = ctx.informers.for(podsInfo)
    const claim = (c: KubeObject) => queue.add(`claim:${keyFor(c)}`)
    const volume = (v: KubeObject) => {
      queue.add(`volume:${v.metadata.name}`)
      const ref = v.spec?.claimRef
      if (ref?.name) queue.add(`claim:${ref.namespace}/${ref.name}`)
    }
    this.#claims.addHandlers({
      onAdd: claim,
      onUpdate: (_, c) => claim(c),
      onDelete: (c) => {
        this.#said.delete(`claim:${keyFor(c)}`)
        if (c.spec?.volumeName) queue.add(`volume:${c.spec.volumeName}`)
        for (const v of this.#volumes!.list()) if (v.spec?.claimRef?.uid === c.metadata.uid) queue.add(`volume:${v.metadata.name}`)
      },
    })
    this.#volumes.addHandlers({ onAdd: volume, onUpdate: (_, v) => volume(v), onDelete: volume })
    // A new or changed class or node may let waiting claims proceed.
    const allPending = () => { for (const c of this.#claims!.list()) if (!c.spec?.volumeName) claim(c) }
    this.#classes.addHandlers({ onAdd: allPending, onUpdate: allPending })
    this.#nodes.addHandlers({ onAdd: allPending, onUpdate: (o, n) => o.metadata.annotations?.['skiff.dev/local-volume-dir'] !== n.metadata.annotations?.['skiff.dev/local-volume-dir'] && allPending() })
    // pvc-protection: a pod that stops using a claim being deleted lets it go.
    const podGone = (p: KubeObject) => {
      for (const v of p.spec?.volumes ?? []) if (v?.persistentVolumeClaim?.claimName) queue.add(`claim:${p.metadata.namespace}/${v.persistentVolumeClaim.claimName}`)
    }
    this.#pods.addHandlers({ onDelete: podGone, onUpdate: (_, p) => (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') && podGone(p) })
    await ctx.informers.start()
    await this.#ensureDefaultClass()
    queue.start((key) => this.#sync(key))
    for (const c of this.#claims.list()) claim(c)
    for (const v of this.#volumes.list()) volume(v)
  }

  async stop(): Promise<void> {
    this.#queue?.stop()
  }

  async #ensureDefaultClass(): Promise<void> {
    if (this.#classes!.get(defaultLocalClassName)) return
    try {
      await this.#ctx!.client.create(storageClassInfo, undefined, defaultLocalStorageClass())
      this.#ctx!.logger.info({ controller: this.name, class: defaultLocalClassName }, 'created the default StorageClass')
    } catch (e) {
      if (!(e instanceof ApiClientError && e.status === 409)) this.#ctx!.logger.warn({ controller: this.name, err: (e as Error).message }, 'default StorageClass not created')
    }
  }

  async #sync(key: string): Promise<void> {
    if (key.startsWith('volume:')) return await this.#syncVolume(key.slice('volume:'.length))
    return await this.#syncClaim(key.slice('claim:'.length))
  }

  async #syncClaim(key: string): Promise<void> {
    const pvc = this.#claims!.get(key)
    if (!pvc) return
    if (pvc.metadata.deletionTimestamp) {
      const pods = this.#pods!.list().filter((p) => podUsesClaim(p, pvc))
      return await this.#apply(`claim:${key}`, pvc, planClaimDeletion(pvc, pods))
    }
    const classes = new Map(this.#classes!.list().map((c) => [c.metadata.name!, c]))
    const nodes = new Map(this.#nodes!.list().map((n) => [n.metadata.name!, n]))
    const volume = pvc.spec?.volumeName ? this.#volumes!.get(pvc.spec.volumeName) : undefined
    const step = planClaim({ claim: pvc, volumes: this.#volumes!.list(), volume, classes, nodes, now: new Date() })
    await this.#apply(`claim:${key}`, pvc, step)
  }

  async #syncVolume(name: string): Promise<void> {
    const pv = this.#volumes!.get(name)
    if (!pv) return
    const ref = pv.spec?.claimRef
    let claim = ref?.name ? this.#claims!.get(`${ref.namespace}/${ref.name}`) : undefined
    if (ref?.uid && (!claim || claim.metadata.uid !== ref.uid) && !pv.metadata.deletionTimestamp) {
      // Before releasing a volume, make sure the claim is really gone (the cache may be behind).
      claim = await this.#ctx!.client.get(pvcInfo, ref.namespace, ref.name).catch((e) => {
        if (e instanceof ApiClientError && e.status === 404) return undefined
        throw e
      })
    }
    await this.#apply(`volume:${name}`, pv, planVolume({ volume: pv, claim, now: new Date() }))
  }

  async #apply(key: string, obj: KubeObject, step: Step): Promise<void> {
    if (step.event && this.#said.get(key) !== step.event.message) {
      this.#said.set(key, step.event.message)
      this.#ctx!.events.event(step.type === 'createVolume' ? obj : 'volume' in step ? step.volume : obj, step.event.type, step.event.reason, step.event.message)
    }
    const client = this.#ctx!.client
    try {
      switch (step.type) {
        case 'none': return
        case 'createVolume': await client.create(pvInfo, undefined, step.volume); break
        case 'updateVolume': await client.update(pvInfo, step.volume); break
        case 'updateVolumeStatus': await client.update(pvInfo, step.volume, 'status'); break
        case 'deleteVolume': await client.delete(pvInfo, undefined, step.volume.metadata.name!); break
        case 'updateClaim': await client.update(pvcInfo, step.claim); break
        case 'updateClaimStatus': await client.update(pvcInfo, step.claim, 'status'); break
      }
      this.#ctx!.logger.debug({ controller: this.name, key, step: step.type }, 'storage step written')
    } catch (e) {
      if (e instanceof ApiClientError && (e.status === 409 || e.status === 404)) {
        // A fresher object is on its way through the informer (409), or it is gone: plan again then.
        if (e.status === 409) this.#queue!.addAfter(key, 200)
        return
      }
      throw e
    }
  }
}
