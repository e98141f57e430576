// downwardAPI volume files as the kubelet writes them (pure): fieldRef items
// of the pod's metadata (name, namespace, uid, labels, annotations, one
// label or annotation) and resourceFieldRef items of a container's requests
// and limits (a limit not set is the node's allocatable, as for env). Whole
// label and annotation maps are `key="value"` lines sorted by key, without a
// trailing newline (fieldpath.FormatMap, values quoted like Go's %q).

import type { KubeObject } from '../../controlplane/api/types.ts'
import { fieldValue, resourceValue } from './env.ts'
import { VolumeError, type ProjectedFile } from './volumes.ts'

/** Go's %q for a string, close enough: JSON escapes, but non-ASCII printable runes stay as they are in Go too. */
function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u007f/g, '\\x7f')
}

export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${goQuote(String(m![k]))}`).join('\n')
}

const noSources = { configMaps: new Map(), secrets: new Map(), hostIP: '' }

/** The value of a downward API volume fieldRef: the whole label and annotation maps here, one field as env.ts reads it. */
export function volumeFieldValue(pod: KubeObject, path: string): string {
  if (path === 'metadata.labels') return formatMap(pod.metadata.labels)
  if (path === 'metadata.annotations') return formatMap(pod.metadata.annotations)
  try {
    return fieldValue(pod, path, { ...noSources, allocatable: { cpu: 0, memory: 0 } })
  } catch (e) {
    throw new VolumeError((e as Error).message)
  }
}

export interface DownwardItem {
  path: string
  fieldRef?: { fieldPath: string }
  resourceFieldRef?: { containerName?: string; resource: string; divisor?: string | number }
  mode?: number
}

/** The files of downwardAPI items (a downwardAPI volume, or a projected volume's downwardAPI source). */
export function downwardApiFiles(pod: KubeObject, items: readonly DownwardItem[], defaultMode: number, allocatable: { cpu: number; memory: number }): ProjectedFile[] {
  return items.map((it) => {
    let value: string
    if (it.fieldRef) value = volumeFieldValue(pod, it.fieldRef.fieldPath)
    else if (it.resourceFieldRef) {
      const name = it.resourceFieldRef.containerName
      const container = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((c: any) => c.name === name)
      if (!container) throw new VolumeError(`downward API item ${it.path}: container "${name ?? ''}" not found in the pod`)
      value = resourceValue(container, it.resourceFieldRef, { ...noSources, allocatable })
    } else throw new VolumeError(`downward API item ${it.path}: one of fieldRef or resourceFieldRef is required`)
    return { path: it.path, data: Buffer.from(value), mode: it.mode ?? defaultMode }
  })
}
