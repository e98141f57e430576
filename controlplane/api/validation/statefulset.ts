// StatefulSets and ControllerRevisions (pkg/apis/apps/validation:
// ValidateStatefulSet, ValidateStatefulSetUpdate, ValidateControllerRevision).
//
// Kubernetes validates only the labels and annotations of a StatefulSet's pod
// template, because its volumeMounts may name volumeClaimTemplates that are not
// volumes of the template. Skiff validates the whole pod template as for the
// other workloads, with each claim template added as a persistentVolumeClaim
// volume, so a mount of a claim is valid and a broken container is caught at
// apply time rather than at pod creation.

import { canonical, forbidden, invalid, invalidEach, isRecord, items, nonNegative, notSupported, required } from './field.ts'
import type { Causes } from './field.ts'
import { intOrPercent, validateWorkloadSpec } from './apps.ts'
import { isDNS1035Label, isDNS1123Subdomain } from './names.ts'
import { clone, type KubeObject } from '../types.ts'

const policies = ['OrderedReady', 'Parallel']
const retention = ['Retain', 'Delete']
/** Fields of spec an update may change (ValidateStatefulSetUpdate). */
const mutableSpec = ['replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds']

/** The template as the pods will have it: claim templates become persistentVolumeClaim volumes (the controller does the same). */
function templateWithClaims(spec: Record<string, any>): unknown {
  const claims = items(spec.volumeClaimTemplates).filter((c) => isRecord(c.metadata) && typeof c.metadata.name === 'string' && c.metadata.name)
  if (!claims.length || !isRecord(spec.template) || !isRecord(spec.template.spec)) return spec.template
  const t = clone(spec.template)
  const names = new Set(claims.map((c) => c.metadata.name))
  const vols = items(t.spec.volumes).filter((v) => !names.has(v?.name))
  t.spec.volumes = [...vols, ...claims.map((c) => ({ name: c.metadata.name, persistentVolumeClaim: { claimName: c.metadata.name } }))]
  return t
}

export function validateStatefulSet(obj: KubeObject, old?: KubeObject): Causes {
  const spec = obj.spec
  if (!isRecord(spec)) return [required('spec')]
  const out: Causes = [...validateWorkloadSpec({ ...spec, template: templateWithClaims(spec) }, 'statefulset')]
  out.push(...nonNegative('spec.replicas', spec.replicas))
  if (isRecord(spec.ordinals)) out.push(...nonNegative('spec.ordinals.start', spec.ordinals.start))
  if (typeof spec.serviceName === 'string' && spec.serviceName) out.push(...invalidEach('spec.serviceName', spec.serviceName, isDNS1035Label(spec.serviceName)))
  const pmp = spec.podManagementPolicy
  if (pmp === undefined || pmp === null || pmp === '') out.push(required('spec.podManagementPolicy'))
  else if (!policies.includes(pmp)) out.push(invalid('spec.podManagementPolicy', pmp, `must be 'OrderedReady' or 'Parallel'`))
  out.push(...validateUpdateStrategy(spec.updateStrategy))
  const rp = spec.persistentVolumeClaimRetentionPolicy
  if (isRecord(rp)) {
    for (const k of ['whenDeleted', 'whenScaled'])
      if (rp[k] !== undefined && !retention.includes(rp[k])) out.push(notSupported(`spec.persistentVolumeClaimRetentionPolicy.${k}`, rp[k], retention))
  }
  const seen = new Set<string>()
  items(spec.volumeClaimTemplates).forEach((c, i) => {
    const at = `spec.volumeClaimTemplates[${i}].metadata.name`
    const name = isRecord(c?.metadata) ? c.metadata.name : undefined
    if (typeof name !== 'string' || !name) return out.push(required(at))
    out.push(...invalidEach(at, name, isDNS1123Subdomain(name)))
    if (seen.has(name)) out.push(invalid(at, name, 'must be unique among volumeClaimTemplates'))
    seen.add(name)
    if (!isRecord(c.spec)) out.push(required(`spec.volumeClaimTemplates[${i}].spec`))
    else if (!items(c.spec.accessModes).length) out.push(required(`spec.volumeClaimTemplates[${i}].spec.accessModes`, 'at least 1 access mode is required'))
  })
  if (old && isRecord(old.spec)) {
    const fixed = (s: Record<string, any>) => canonical(Object.fromEntries(Object.entries(s).filter(([k]) => !mutableSpec.includes(k))))
    if (fixed(spec) !== fixed(old.spec))
      out.push(forbidden('spec', "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
  }
  return out
}

function validateUpdateStrategy(s: unknown): Causes {
  const path = 'spec.updateStrategy'
  if (!isRecord(s) || !s.type) return [required(path)]
  if (s.type === 'OnDelete') return s.rollingUpdate != null ? [invalid(`${path}.rollingUpdate`, s.rollingUpdate, "only allowed for updateStrategy 'RollingUpdate'")] : []
  if (s.type !== 'RollingUpdate') return [invalid(path, s, "must be 'RollingUpdate' or 'OnDelete'")]
  if (!isRecord(s.rollingUpdate)) return []
  const out = nonNegative(`${path}.rollingUpdate.partition`, s.rollingUpdate.partition)
  const mu = s.rollingUpdate.maxUnavailable
  out.push(...intOrPercent(mu, `${path}.rollingUpdate.maxUnavailable`))
  if (mu === 0 || mu === '0%') out.push(invalid(`${path}.rollingUpdate.maxUnavailable`, mu, 'must be greater than 0'))
  return out
}

export function validateControllerRevision(obj: KubeObject, old?: KubeObject): Causes {
  const out: Causes = []
  if ((obj as any).data === undefined || (obj as any).data === null) out.push(required('data'))
  out.push(...nonNegative('revision', (obj as any).revision))
  if (old && canonical((obj as any).data) !== canonical((old as any).data)) out.push(invalid('data', raw((obj as any).data), 'field is immutable'))
  return out
}

function raw(v: unknown): unknown {
  return typeof v === 'object' ? '{...}' : v
}
