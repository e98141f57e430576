// What Kubernetes' ServiceAccount admission plugin does to a pod at create,
// and what every namespace needs for it (issue 12 point 6):
//  - spec.serviceAccountName defaults to `default` (and the deprecated
//    spec.serviceAccount mirrors it);
//  - unless spec.automountServiceAccountToken or the ServiceAccount's says
//    false (the pod's wins), a projected volume `kube-api-access-xxxxx`
//    (a bound token for 3607 s, the cluster CA from the `kube-root-ca.crt`
//    ConfigMap, the namespace) is mounted read-only at
//    /var/run/secrets/kubernetes.io/serviceaccount in every container that
//    has nothing mounted there.
// The node agent fills the volume (node/pods/projected.ts) and rotates the
// token. Choice: a pod naming a ServiceAccount that does not exist is
// admitted (Kubernetes refuses it); its token request fails on the node and
// the pod waits in ContainerCreating with that reason, so the ordering of a
// namespace, its ServiceAccount and its pods in one manifest never matters.
// Every namespace gets its `default` ServiceAccount and `kube-root-ca.crt`
// from the apiserver itself when it is created (and at start for the ones
// that lack them), not from controllers, so this holds without them.

import { randomBytes } from 'node:crypto'
import { ApiError } from '../api/errors.ts'
import { lookupResource, type ResourceInfo } from '../api/resources.ts'
import type { KubeObject } from '../api/types.ts'

export const serviceAccountMountPath = '/var/run/secrets/kubernetes.io/serviceaccount'
export const rootCAConfigMap = 'kube-root-ca.crt'
export const tokenExpirationSeconds = 3607
const nameChars = 'bcdfghjklmnpqrstvwxz2456789'

function suffix(): string {
  const b = randomBytes(5)
  let s = ''
  for (const x of b) s += nameChars[x % nameChars.length]
  return s
}

/** The projected volume the admission plugin adds (name given for tests). */
export function apiAccessVolume(name = `kube-api-access-${suffix()}`): Record<string, any> {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: tokenExpirationSeconds, path: 'token' } },
        { configMap: { name: rootCAConfigMap, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  }
}

/** Mutate a pod being created as the admission plugin does; `sa` is its ServiceAccount if it exists. Pure but for the random volume name. */
export function admitServiceAccount(pod: KubeObject, sa: KubeObject | undefined): void {
  const spec = (pod.spec ??= {})
  if (!spec.serviceAccountName) spec.serviceAccountName = spec.serviceAccount || 'default'
  spec.serviceAccount = spec.serviceAccountName
  const automount = spec.automountServiceAccountToken ?? sa?.automountServiceAccountToken ?? true
  if (automount === false) return
  const containers: any[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])]
  const needing = containers.filter((c) => !(c.volumeMounts ?? []).some((m: any) => m?.mountPath === serviceAccountMountPath))
  if (needing.length === 0) return
  const volume = apiAccessVolume()
  spec.volumes = [...(spec.volumes ?? []), volume]
  for (const c of needing) c.volumeMounts = [...(c.volumeMounts ?? []), { name: volume.name, readOnly: true, mountPath: serviceAccountMountPath }]
}

/** The registry calls a namespace's defaults in; an error is logged by the caller and retried at the next start. */
export interface NamespaceDefaultsTarget {
  get(info: ResourceInfo, ns: string | undefined, name: string): Promise<KubeObject>
  create(info: ResourceInfo, ns: string | undefined, body: KubeObject): Promise<KubeObject>
  updateFrom(info: ResourceInfo, old: KubeObject, next: KubeObject): Promise<KubeObject>
}

const serviceAccounts = lookupResource('', 'v1', 'serviceaccounts')!
const configMaps = lookupResource('', 'v1', 'configmaps')!

/** The `default` ServiceAccount and `kube-root-ca.crt` (the cluster CA, kept current) of a namespace. */
export async function ensureNamespaceDefaults(r: NamespaceDefaultsTarget, ns: string, caPem: string | undefined): Promise<void> {
  const ignoreExists = (e: unknown) => {
    if (!(e instanceof ApiError && e.reason === 'AlreadyExists')) throw e
  }
  await r.create(serviceAccounts, ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } }).catch(ignoreExists)
  if (!caPem) return
  const desired = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: rootCAConfigMap, namespace: ns, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } },
    data: { 'ca.crt': caPem },
  }
  const current = await r.get(configMaps, ns, rootCAConfigMap).catch(() => undefined)
  if (!current) await r.create(configMaps, ns, desired).catch(ignoreExists)
  else if (current.data?.['ca.crt'] !== caPem) await r.updateFrom(configMaps, current, { ...current, data: { ...(current.data ?? {}), 'ca.crt': caPem } })
}
