// Cluster-level and configuration kinds (printNode, printNamespace,
// printConfigMap, printSecret, printServiceAccount, printEvent, printLease).

import type { KubeObject } from '../types.ts'
import { age, arr, rec, since } from './format.ts'
import { ageCol, col, nameCol } from './types.ts'
import type { KindPrinter } from './types.ts'

const rolePrefix = 'node-role.kubernetes.io/'

/** Roles from `node-role.kubernetes.io/<role>` labels and the legacy `kubernetes.io/role`. */
function nodeRoles(node: KubeObject): string {
  const roles = new Set<string>()
  for (const [k, v] of Object.entries(node.metadata?.labels ?? {})) {
    if (k.startsWith(rolePrefix) && k.length > rolePrefix.length) roles.add(k.slice(rolePrefix.length))
    else if (k === 'kubernetes.io/role' && v) roles.add(v)
  }
  return roles.size ? [...roles].sort().join(',') : '<none>'
}

function nodeStatus(node: KubeObject): string {
  const ready = arr(node.status?.conditions).find((c) => c?.type === 'Ready')
  const status = [ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown']
  if (node.spec?.unschedulable) status.push('SchedulingDisabled')
  return status.join(',')
}

function nodeAddress(node: KubeObject, type: string): string {
  return arr(node.status?.addresses).find((a) => a?.type === type)?.address ?? '<none>'
}

export const nodePrinter: KindPrinter = {
  columns: [
    nameCol,
    col('Status', 'The status of the node'),
    col('Roles', 'The roles of the node'),
    ageCol,
    col('Version', 'Kubelet Version reported by the node.'),
    col('Internal-IP', 'List of addresses reachable to the node.', { priority: 1 }),
    col('External-IP', 'List of addresses reachable to the node.', { priority: 1 }),
    col('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', { priority: 1 }),
    col('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", { priority: 1 }),
    col('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).', { priority: 1 }),
  ],
  cells(node, now) {
    const info = rec(node.status?.nodeInfo)
    return [
      node.metadata?.name ?? '', nodeStatus(node), nodeRoles(node), age(node, now), info.kubeletVersion ?? '',
      nodeAddress(node, 'InternalIP'), nodeAddress(node, 'ExternalIP'), info.osImage || '<unknown>', info.kernelVersion || '<unknown>', info.containerRuntimeVersion || '<unknown>',
    ]
  },
}

export const namespacePrinter: KindPrinter = {
  columns: [nameCol, col('Status', 'The status of the namespace'), ageCol],
  cells: (ns, now) => [ns.metadata?.name ?? '', ns.status?.phase ?? '', age(ns, now)],
}

export const configMapPrinter: KindPrinter = {
  columns: [nameCol, col('Data', 'Data contains the configuration data.'), ageCol],
  cells: (cm, now) => [cm.metadata?.name ?? '', Object.keys(rec(cm.data)).length + Object.keys(rec(cm.binaryData)).length, age(cm, now)],
}

export const secretPrinter: KindPrinter = {
  columns: [nameCol, col('Type', 'Used to facilitate programmatic handling of secret data.'), col('Data', 'Data contains the secret data.'), ageCol],
  cells: (s, now) => [s.metadata?.name ?? '', s.type ?? '', Object.keys(rec(s.data)).length, age(s, now)],
}

export const serviceAccountPrinter: KindPrinter = {
  columns: [nameCol, col('Secrets', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.'), ageCol],
  cells: (sa, now) => [sa.metadata?.name ?? '', arr(sa.secrets).length, age(sa, now)],
}

export const leasePrinter: KindPrinter = {
  columns: [nameCol, col('Holder', 'holderIdentity contains the identity of the holder of a current lease.'), ageCol],
  cells: (l, now) => [l.metadata?.name ?? '', l.spec?.holderIdentity ?? '', age(l, now)],
}

/** `kubelet, node-1`: the reporting component, then the host when known. */
function eventSource(ev: KubeObject): string {
  const component = ev.source?.component || ev.reportingComponent || ''
  const host = ev.source?.host || ev.reportingInstance || ''
  return host ? `${component}, ${host}` : component
}

export const eventPrinter: KindPrinter = {
  columns: [
    col('Last Seen', 'The time at which the most recent occurrence of this event was recorded.'),
    col('Type', 'Type of this event (Normal, Warning), new types could be added in the future'),
    col('Reason', "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    col('Object', 'The object that this event is about.'),
    col('Subobject', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.', { priority: 1 }),
    col('Source', 'The component reporting this event. Should be a short machine understandable string.', { priority: 1 }),
    col('Message', 'A human-readable description of the status of this operation.'),
    col('First Seen', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)', { priority: 1 }),
    col('Count', 'The number of times this event has occurred.', { priority: 1 }),
    col('Name', 'Name must be unique within a namespace.', { priority: 1, format: 'name' }),
  ],
  cells(ev, now) {
    const first = ev.firstTimestamp ? since(ev.firstTimestamp, now) : since(ev.eventTime, now)
    let last = ev.lastTimestamp ? since(ev.lastTimestamp, now) : first
    let count = typeof ev.count === 'number' && ev.count > 0 ? ev.count : 1
    if (ev.series) {
      last = since(ev.series.lastObservedTime, now)
      count = ev.series.count ?? count
    }
    const io = rec(ev.involvedObject)
    const kind = String(io.kind ?? '').toLowerCase()
    const target = io.name ? `${kind}/${io.name}` : kind
    return [last, ev.type ?? '', ev.reason ?? '', target, io.fieldPath ?? '', eventSource(ev), String(ev.message ?? '').trim(), first, count, ev.metadata?.name ?? '']
  },
}
