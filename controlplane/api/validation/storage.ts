// PersistentVolume, PersistentVolumeClaim and StorageClass, ported from
// Kubernetes' ValidatePersistentVolume*, ValidatePersistentVolumeClaim* and
// ValidateStorageClass* with their field paths and messages; and the
// hostPath rule Skiff adds (no Docker socket, no agent state).

import { canonical, forbidden, invalid, isRecord, items, notSupported, required } from './field.ts'
import type { Causes } from './field.ts'
import { validateLabelSelector } from './meta.ts'
import { isDNS1123Subdomain, isQualifiedName } from './names.ts'
import { parseQuantity } from './quantity.ts'
import type { KubeObject } from '../types.ts'
import { alwaysReservedHostPaths, cleanPath, isUnder } from '../storage.ts'

const accessModes = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod']
const volumeModes = ['Block', 'Filesystem']
const pvReclaimPolicies = ['Delete', 'Recycle', 'Retain']
const scReclaimPolicies = ['Delete', 'Retain']
const bindingModes = ['Immediate', 'WaitForFirstConsumer']
const pvSources = [
  'gcePersistentDisk', 'awsElasticBlockStore', 'hostPath', 'glusterfs', 'nfs', 'rbd', 'iscsi', 'cinder', 'cephfs', 'fc', 'flocker',
  'flexVolume', 'azureFile', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'portworxVolume', 'scaleIO', 'local', 'storageos', 'csi',
]

function validateAccessModes(modes: unknown, path: string, requiredMsg: string): Causes {
  const list = items(modes)
  if (list.length === 0) return [required(path, requiredMsg)]
  const out: Causes = []
  for (const m of list) if (!accessModes.includes(m)) out.push(notSupported(path, m, accessModes))
  if (list.includes('ReadWriteOncePod') && list.length > 1) out.push(forbidden(path, 'may not use ReadWriteOncePod with other access modes'))
  return out
}

function validateStorageQuantity(v: unknown, path: string): Causes {
  const q = parseQuantity(v)
  if (q === undefined) return [invalid(path, v, 'must be a quantity')]
  if (q <= 0) return [invalid(path, v, 'must be greater than zero')]
  return []
}

function validateClassName(v: unknown, path: string): Causes {
  if (v === undefined || v === null || v === '') return []
  if (typeof v !== 'string') return [invalid(path, v, 'must be a string')]
  return isDNS1123Subdomain(v).map((m) => invalid(path, v, m))
}

/**
 * A host path that is, contains or lies under a reserved path (the Docker
 * Engine's socket, a node agent's state directory) gives the container the
 * node: refused. `reserved` are absolute paths.
 */
export function validateHostPath(path: unknown, field: string, reserved: readonly string[] = alwaysReservedHostPaths): Causes {
  if (typeof path !== 'string' || path === '') return []
  const out: Causes = []
  if (!path.startsWith('/')) return [invalid(field, path, 'must be an absolute path')]
  if (path.split('/').includes('..')) out.push(invalid(field, path, "must not contain '..'"))
  const p = cleanPath(path)
  const hit = reserved.find((r) => isUnder(p, r) || isUnder(r, p))
  if (hit) out.push(forbidden(field, `must not be, contain or lie under ${hit} (the container engine's socket or the node agent's state)`))
  return out
}

/** The hostPath of a pod volume, by its path (`spec.volumes[0]`). */
export function validateVolumeHostPath(v: Record<string, any>, at: string, reserved?: readonly string[]): Causes {
  return isRecord(v.hostPath) ? validateHostPath(v.hostPath.path, `${at}.hostPath.path`, reserved) : []
}

export function validatePersistentVolumeClaimSpec(spec: unknown, path: string): Causes {
  if (!isRecord(spec)) return [required(path)]
  const out: Causes = []
  out.push(...validateAccessModes(spec.accessModes, `${path}.accessModes`, 'at least 1 access mode is required'))
  if (spec.selector !== undefined && spec.selector !== null) out.push(...validateLabelSelector(spec.selector, `${path}.selector`))
  const storage = isRecord(spec.resources) && isRecord(spec.resources.requests) ? spec.resources.requests.storage : undefined
  if (storage === undefined || storage === null) out.push(required(`${path}.resources[storage]`))
  else out.push(...validateStorageQuantity(storage, `${path}.resources[storage]`))
  out.push(...validateClassName(spec.storageClassName, `${path}.storageClassName`))
  if (spec.volumeMode !== undefined && spec.volumeMode !== null && !volumeModes.includes(spec.volumeMode)) out.push(notSupported(`${path}.volumeMode`, spec.volumeMode, volumeModes))
  if (spec.volumeName !== undefined && spec.volumeName !== '' && typeof spec.volumeName !== 'string') out.push(invalid(`${path}.volumeName`, spec.volumeName, 'must be a string'))
  return out
}

export function validatePersistentVolumeClaim(obj: KubeObject, old: KubeObject | undefined): Causes {
  const out = validatePersistentVolumeClaimSpec(obj.spec, 'spec')
  if (old && isRecord(obj.spec) && isRecord(old.spec)) out.push(...validateClaimUpdate(obj, old))
  return out
}

/**
 * The spec is immutable but for a larger storage request of a bound claim,
 * volumeName going from unset to set (the controller binds that way) and
 * storageClassName from unset to set on an unbound claim (the retroactive
 * default class).
 */
function validateClaimUpdate(obj: KubeObject, old: KubeObject): Causes {
  const bound = old.status?.phase === 'Bound'
  const mask = (s: Record<string, any>) => {
    const m: Record<string, any> = { ...s }
    if (!old.spec.volumeName) delete m.volumeName
    // The retroactive default class: an unbound claim without a class may get one, once.
    if (old.spec.storageClassName == null && !old.spec.volumeName) delete m.storageClassName
    if (bound) m.resources = { ...(m.resources ?? {}), requests: { ...(m.resources?.requests ?? {}), storage: undefined } }
    delete m.volumeAttributesClassName
    return m
  }
  if (canonical(mask(obj.spec)) !== canonical(mask(old.spec))) {
    return [forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims')]
  }
  const now = parseQuantity(obj.spec.resources?.requests?.storage)
  const before = parseQuantity(old.spec.resources?.requests?.storage)
  if (bound && now !== undefined && before !== undefined && now < before) {
    return [forbidden('spec.resources.requests.storage', 'field can not be less than previous value')]
  }
  return []
}

export function validatePersistentVolume(obj: KubeObject, old: KubeObject | undefined): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = []
  out.push(...validateAccessModes(spec.accessModes, 'spec.accessModes', 'must specify at least 1 access mode'))
  const capacity = isRecord(spec.capacity) ? spec.capacity : {}
  if (Object.keys(capacity).length === 0) out.push(required('spec.capacity'))
  else if (Object.keys(capacity).some((k) => k !== 'storage')) out.push(notSupported('spec.capacity', Object.keys(capacity).find((k) => k !== 'storage'), ['storage']))
  else out.push(...validateStorageQuantity(capacity.storage, 'spec.capacity[storage]'))
  if (spec.persistentVolumeReclaimPolicy !== undefined && !pvReclaimPolicies.includes(spec.persistentVolumeReclaimPolicy)) {
    out.push(notSupported('spec.persistentVolumeReclaimPolicy', spec.persistentVolumeReclaimPolicy, pvReclaimPolicies))
  }
  out.push(...validateClassName(spec.storageClassName, 'spec.storageClassName'))
  if (spec.volumeMode !== undefined && spec.volumeMode !== null && !volumeModes.includes(spec.volumeMode)) out.push(notSupported('spec.volumeMode', spec.volumeMode, volumeModes))
  const present = pvSources.filter((s) => spec[s] !== undefined && spec[s] !== null)
  if (present.length === 0) out.push(required('spec', 'must specify a volume type'))
  out.push(...present.slice(1).map((s) => forbidden(`spec.${s}`, 'may not specify more than 1 volume type')))
  if (isRecord(spec.hostPath)) {
    if (!spec.hostPath.path) out.push(required('spec.hostPath.path'))
    else out.push(...validateHostPath(spec.hostPath.path, 'spec.hostPath.path'))
  }
  if (present[0] === 'local') {
    if (!isRecord(spec.local) || !spec.local.path) out.push(required('spec.local.path'))
    else if (!String(spec.local.path).startsWith('/')) out.push(invalid('spec.local.path', spec.local.path, 'must be an absolute path'))
    else out.push(...validateHostPath(spec.local.path, 'spec.local.path'))
    if (!isRecord(spec.nodeAffinity)) out.push(required('spec.nodeAffinity', 'Local volume requires node affinity'))
  }
  if (isRecord(spec.nodeAffinity) && !isRecord(spec.nodeAffinity.required)) out.push(required('spec.nodeAffinity.required'))
  if (isRecord(spec.claimRef) && !spec.claimRef.name) out.push(required('spec.claimRef.name'))
  if (old && isRecord(old.spec)) {
    const source = (s: Record<string, any>) => canonical(pvSources.map((k) => s[k] ?? null))
    if (source(spec) !== source(old.spec)) out.push(forbidden('spec.persistentvolumesource', 'spec.persistentvolumesource is immutable after creation'))
    if ((spec.volumeMode ?? 'Filesystem') !== (old.spec.volumeMode ?? 'Filesystem')) out.push(invalid('spec.volumeMode', spec.volumeMode, 'field is immutable'))
    if (old.spec.nodeAffinity && canonical(spec.nodeAffinity) !== canonical(old.spec.nodeAffinity)) out.push(invalid('spec.nodeAffinity', spec.nodeAffinity, 'field is immutable'))
  }
  return out
}

export function validateStorageClass(obj: KubeObject, old: KubeObject | undefined): Causes {
  const sc = obj as Record<string, any>
  const out: Causes = []
  if (typeof sc.provisioner !== 'string' || sc.provisioner === '') out.push(required('provisioner'))
  else if (sc.provisioner.length > 63 + 253 + 1 || isQualifiedName(sc.provisioner.toLowerCase()).length) out.push(invalid('provisioner', sc.provisioner, 'must be a qualified name'))
  if (isRecord(sc.parameters) && Object.keys(sc.parameters).length > 512) out.push(invalid('parameters', '', 'must have at most 512 parameters'))
  if (sc.reclaimPolicy !== undefined && !scReclaimPolicies.includes(sc.reclaimPolicy)) out.push(notSupported('reclaimPolicy', sc.reclaimPolicy, scReclaimPolicies))
  if (sc.volumeBindingMode !== undefined && !bindingModes.includes(sc.volumeBindingMode)) out.push(notSupported('volumeBindingMode', sc.volumeBindingMode, bindingModes))
  if (old) {
    const o = old as Record<string, any>
    if (canonical(sc.parameters ?? {}) !== canonical(o.parameters ?? {})) out.push(forbidden('parameters', 'updates to parameters are forbidden.'))
    if (sc.provisioner !== o.provisioner) out.push(forbidden('provisioner', 'updates to provisioner are forbidden.'))
    if (sc.reclaimPolicy !== o.reclaimPolicy) out.push(forbidden('reclaimPolicy', 'updates to reclaimPolicy are forbidden.'))
    if (sc.volumeBindingMode !== o.volumeBindingMode) out.push(invalid('volumeBindingMode', sc.volumeBindingMode, 'field is immutable'))
  }
  return out
}
