// Pod specs, wherever they appear: in a Pod (`spec`) and in the templates of
// workloads (`spec.template.spec`). validate() runs after applyDefaults(), so
// enum fields the defaulter fills are only checked when present.

import { canonical, duplicate, forbidden, invalid, invalidEach, isRecord, items, nonNegative, notSupported, required } from './field.ts'
import type { Causes } from './field.ts'
import { validateContainer } from './container.ts'
import type { ContainerScope } from './container.ts'
import { validateAnnotations, validateLabels } from './meta.ts'
import { isDNS1123Label, isDNS1123Subdomain, isQualifiedName } from './names.ts'
import { validateVolumeHostPath } from './storage.ts'

const restartPolicies = ['Always', 'Never', 'OnFailure']
const dnsPolicies = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']

/** Every volume source Kubernetes knows, to count how many a volume names. */
const volumeSources = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi', 'glusterfs',
  'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc', 'azureFile', 'configMap',
  'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected', 'portworxVolume', 'scaleIO', 'storageos',
  'csi', 'ephemeral', 'image',
]

/** Fields that must be present (non-empty) inside a volume source of that type. */
const volumeRequired: Record<string, string> = { hostPath: 'path', configMap: 'name', secret: 'secretName', persistentVolumeClaim: 'claimName', nfs: 'path' }

export function validatePodSpec(spec: unknown, path: string): Causes {
  if (!isRecord(spec)) return [required(path)]
  const vols = validateVolumes(spec.volumes, `${path}.volumes`)
  const out: Causes = [...vols.causes]
  const scope: ContainerScope = { volumes: vols.names, names: new Set(), init: false }
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) out.push(required(`${path}.containers`))
  items(spec.containers).forEach((c, i) => out.push(...validateContainer(c, `${path}.containers[${i}]`, scope)))
  const initScope = { ...scope, init: true }
  items(spec.initContainers).forEach((c, i) => out.push(...validateContainer(c, `${path}.initContainers[${i}]`, initScope)))
  if (spec.restartPolicy !== undefined && !restartPolicies.includes(spec.restartPolicy))
    out.push(notSupported(`${path}.restartPolicy`, spec.restartPolicy, restartPolicies))
  if (spec.dnsPolicy !== undefined && !dnsPolicies.includes(spec.dnsPolicy)) out.push(notSupported(`${path}.dnsPolicy`, spec.dnsPolicy, dnsPolicies))
  out.push(...nonNegative(`${path}.terminationGracePeriodSeconds`, spec.terminationGracePeriodSeconds))
  const ads = spec.activeDeadlineSeconds
  if (ads !== undefined && ads !== null && !(Number.isInteger(ads) && ads >= 1 && ads <= 2147483647))
    out.push(invalid(`${path}.activeDeadlineSeconds`, ads, 'must be between 1 and 2147483647, inclusive'))
  out.push(...validateLabels(spec.nodeSelector, `${path}.nodeSelector`))
  out.push(...optionalName(spec.serviceAccountName, `${path}.serviceAccountName`, isDNS1123Subdomain))
  out.push(...optionalName(spec.nodeName, `${path}.nodeName`, isDNS1123Subdomain))
  out.push(...optionalName(spec.schedulerName, `${path}.schedulerName`, isDNS1123Subdomain))
  out.push(...optionalName(spec.hostname, `${path}.hostname`, isDNS1123Label))
  out.push(...optionalName(spec.subdomain, `${path}.subdomain`, isDNS1123Label))
  out.push(...validateTolerations(spec.tolerations, `${path}.tolerations`))
  return out
}

function optionalName(v: unknown, path: string, rule: (s: string) => string[]): Causes {
  if (v === undefined || v === null || v === '') return []
  return typeof v === 'string' ? invalidEach(path, v, rule(v)) : [invalid(path, v, 'must be a string')]
}

function validateVolumes(volumes: unknown, path: string): { causes: Causes; names: Set<string> } {
  const causes: Causes = []
  const names = new Set<string>()
  items(volumes).forEach((v, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(v)) return void causes.push(invalid(at, v, 'must be an object'))
    causes.push(...validateVolumeSource(v, at))
    causes.push(...validateVolumeHostPath(v, at))
    if (typeof v.name !== 'string' || v.name === '') causes.push(required(`${at}.name`))
    else causes.push(...invalidEach(`${at}.name`, v.name, isDNS1123Label(v.name)))
    if (typeof v.name === 'string' && names.has(v.name)) causes.push(duplicate(`${at}.name`, v.name))
    if (typeof v.name === 'string') names.add(v.name)
  })
  return { causes, names }
}

function validateVolumeSource(v: Record<string, any>, path: string): Causes {
  const present = volumeSources.filter((s) => v[s] !== undefined && v[s] !== null)
  if (present.length === 0) return [required(path, 'must specify a volume type')]
  const out: Causes = present.slice(1).map((s) => forbidden(`${path}.${s}`, 'may not specify more than 1 volume type'))
  const src = present[0]
  const field = volumeRequired[src]
  if (field && (!isRecord(v[src]) || typeof v[src][field] !== 'string' || v[src][field] === '')) out.push(required(`${path}.${src}.${field}`))
  return out
}

const tolerationOps = ['Equal', 'Exists']
const taintEffects = ['NoExecute', 'NoSchedule', 'PreferNoSchedule']

function validateTolerations(tolerations: unknown, path: string): Causes {
  const out: Causes = []
  items(tolerations).forEach((t, i) => {
    const at = `${path}[${i}]`
    if (!isRecord(t)) return void out.push(invalid(at, t, 'must be an object'))
    if (typeof t.key === 'string' && t.key !== '') out.push(...invalidEach(`${at}.key`, t.key, isQualifiedName(t.key)))
    else if (t.operator !== 'Exists') out.push(invalid(`${at}.operator`, t.operator ?? '', 'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
    if (t.operator !== undefined && t.operator !== '' && !tolerationOps.includes(t.operator)) out.push(notSupported(`${at}.operator`, t.operator, tolerationOps))
    if (t.operator === 'Exists' && typeof t.value === 'string' && t.value !== '') out.push(invalid(`${at}.operator`, t.value, 'value must be empty when `operator` is \'Exists\''))
    if (t.effect !== undefined && t.effect !== '' && !taintEffects.includes(t.effect)) out.push(notSupported(`${at}.effect`, t.effect, taintEffects))
  })
  return out
}

/** A pod template: its labels and annotations, then its pod spec. */
export function validatePodTemplate(template: unknown, path: string): Causes {
  if (!isRecord(template)) return [required(path)]
  const meta = isRecord(template.metadata) ? template.metadata : {}
  return [
    ...validateLabels(meta.labels, `${path}.metadata.labels`),
    ...validateAnnotations(meta.annotations, `${path}.metadata.annotations`),
    ...validatePodSpec(template.spec, `${path}.spec`),
  ]
}

const updatablePodFields = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
]

/**
 * A running pod's spec is fixed except for images and a few fields. Skiff
 * also lets `spec.nodeName` go from unset to set: that is how its scheduler
 * binds a pod (Kubernetes uses the binding subresource for the same step).
 */
export function validatePodUpdate(spec: unknown, oldSpec: unknown): Causes {
  if (!isRecord(spec) || !isRecord(oldSpec)) return []
  const mask = (s: Record<string, any>, old: Record<string, any>) => {
    const m: Record<string, any> = { ...s, activeDeadlineSeconds: undefined, tolerations: undefined, terminationGracePeriodSeconds: undefined }
    for (const list of ['containers', 'initContainers']) m[list] = items(s[list]).map((c) => (isRecord(c) ? { ...c, image: undefined } : c))
    if (!old.nodeName) m.nodeName = undefined
    return m
  }
  if (canonical(mask(spec, oldSpec)) === canonical(mask(oldSpec, oldSpec))) return []
  return [forbidden('spec', `pod updates may not change fields other than ${updatablePodFields.join(',')}`)]
}
