// Builders for Node and Pod objects as the scheduler reads them, shared by
// the unit tables, the integration test and the benchmark (like
// kube-scheduler's st.MakePod()/st.MakeNode()). Only the fields the plugins
// look at; everything else is left to the apiserver's defaults.

import type { KubeObject } from '../api/types.ts'

export interface NodeSpecOptions {
  cpu?: string
  memory?: string
  pods?: string
  labels?: Record<string, string>
  taints?: Array<{ key: string; value?: string; effect: string }>
  unschedulable?: boolean
  /** Ready condition status; default 'True'. */
  ready?: 'True' | 'False' | 'Unknown'
  extra?: Record<string, string>
}

export function makeNode(name: string, o: NodeSpecOptions = {}): KubeObject {
  const resources = { cpu: o.cpu ?? '2', memory: o.memory ?? '8Gi', pods: o.pods ?? '110', ...o.extra }
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: o.ready ?? 'True', reason: 'KubeletReady', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  }
}

export interface PodSpecOptions {
  namespace?: string
  cpu?: string
  memory?: string
  /** Extra requests, e.g. {'example.com/gpu': '1'}. */
  requests?: Record<string, string>
  /** A controller ownerReference with this uid (kind ReplicaSet unless ownerKind says otherwise). */
  owner?: string
  ownerKind?: string
  ownerName?: string
  nodeName?: string
  nodeSelector?: Record<string, string>
  /** requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms */
  affinityTerms?: unknown[]
  tolerations?: unknown[]
  hostPorts?: Array<{ port: number; protocol?: string; hostIP?: string }>
  phase?: string
  schedulerName?: string
  terminating?: boolean
}

export function makePod(name: string, o: PodSpecOptions = {}): KubeObject {
  const requests: Record<string, string> = { ...(o.cpu ? { cpu: o.cpu } : {}), ...(o.memory ? { memory: o.memory } : {}), ...o.requests }
  const container: Record<string, unknown> = { name: 'app', image: 'skiff/echo:local' }
  if (Object.keys(requests).length) container.resources = { requests }
  if (o.hostPorts) container.ports = o.hostPorts.map((p) => ({ containerPort: p.port, hostPort: p.port, protocol: p.protocol ?? 'TCP', ...(p.hostIP ? { hostIP: p.hostIP } : {}) }))
  const spec: Record<string, unknown> = { containers: [container] }
  if (o.nodeName) spec.nodeName = o.nodeName
  if (o.nodeSelector) spec.nodeSelector = o.nodeSelector
  if (o.affinityTerms) spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: o.affinityTerms } } }
  if (o.tolerations) spec.tolerations = o.tolerations
  if (o.schedulerName) spec.schedulerName = o.schedulerName
  const metadata: KubeObject['metadata'] = { name, namespace: o.namespace ?? 'default', uid: `uid-${name}` }
  if (o.owner) metadata.ownerReferences = [{ apiVersion: o.ownerKind === 'ConfigMap' ? 'v1' : 'apps/v1', kind: o.ownerKind ?? 'ReplicaSet', name: o.ownerName ?? o.owner, uid: o.owner, controller: true }]
  if (o.terminating) metadata.deletionTimestamp = '2026-01-01T00:00:00Z'
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec, status: { phase: o.phase ?? 'Pending' } }
}
