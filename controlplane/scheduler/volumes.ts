// The scheduler's side of volume binding: informers on claims, volumes and
// classes behind a VolumeLookup for the VolumeBinding plugin (parked pods
// are retried when any of them changes), and the write after a cycle that
// records the chosen node on the pod's unbound WaitForFirstConsumer claims
// (`volume.kubernetes.io/selected-node`), which the PV controller's local
// provisioner (or binder) acts on. Unlike kube-scheduler, the pod is bound
// at once rather than after its claims are bound: the node agent waits for
// the claim (FailedMount, retried) before it starts the containers.

import { lookupResource } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'
import { storageAnnotations } from '../api/storage.ts'
import { ApiClientError } from '../client/client.ts'
import type { ControllerContext } from '../controllers/types.ts'
import { claimsToSelect, type VolumeLookup } from './plugins/volume-binding.ts'

const pvcInfo = lookupResource('', 'v1', 'persistentvolumeclaims')!
const pvInfo = lookupResource('', 'v1', 'persistentvolumes')!
const scInfo = lookupResource('storage.k8s.io', 'v1', 'storageclasses')!

export function watchVolumes(ctx: ControllerContext, changed: () => void): VolumeLookup {
  const claims = ctx.informers.for(pvcInfo)
  const volumes = ctx.informers.for(pvInfo)
  const classes = ctx.informers.for(scInfo)
  for (const inf of [claims, volumes, classes]) inf.addHandlers({ onAdd: changed, onUpdate: changed, onDelete: changed })
  return {
    claim: (ns, name) => claims.get(`${ns}/${name}`),
    volume: (name) => volumes.get(name),
    storageClass: (name) => classes.get(name),
    volumes: () => volumes.list(),
  }
}

/** Annotate the pod's unbound delayed claims with the node (a merge patch; a claim gone meanwhile is skipped). */
export async function selectNodeForClaims(ctx: ControllerContext, pod: KubeObject, node: string, lookup: VolumeLookup): Promise<void> {
  for (const c of claimsToSelect(pod, node, lookup)) {
    const patch = { metadata: { resourceVersion: c.metadata.resourceVersion, annotations: { [storageAnnotations.selectedNode]: node } } }
    try {
      await ctx.client.patch(pvcInfo, c.metadata.namespace, c.metadata.name!, patch, 'application/merge-patch+json')
    } catch (e) {
      if (e instanceof ApiClientError && e.status === 404) continue
      throw e
    }
  }
}
