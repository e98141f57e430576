// The Node object this agent registers and keeps current (pure builders):
// labels, capacity and allocatable, nodeInfo, addresses, the kubelet
// endpoint and the conditions a healthy kubelet reports. The agent writes
// the status only when it changed (heartbeat times aside) or once a minute.

import { readFileSync } from 'node:fs'
import { arch, cpus, release, totalmem } from 'node:os'
import type { KubeObject } from '../controlplane/api/types.ts'
import { stableJson } from './labels.ts'

export const kubeletVersion = 'v1.32.0-skiff'

export interface Capacity {
  cpu: string
  memory: string
  pods: string
}

export interface NodeFacts {
  nodeName: string
  capacity: Capacity
  nodeInfo: Record<string, string>
  /** Known once the node network exists. */
  internalIP?: string
  externalIP?: string
  kubeletPort?: number
  /**
   * Set while the agent must not be trusted with pods yet: a node that comes
   * back after it was NotReady reports Ready=False until the containers of
   * pods that were replaced meanwhile are gone.
   */
  notReady?: { reason: string; message: string }
}

export function goArch(a: string = arch()): string {
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a
}

export function nodeLabels(nodeName: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'kubernetes.io/hostname': nodeName,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': goArch(),
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': goArch(),
    ...extra,
  }
}

/** This machine's CPU cores and memory (as Ki), 110 pods; overrides win (tests). */
export function detectCapacity(overrides: Partial<Capacity> = {}): Capacity {
  return {
    cpu: String(cpus().length),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: '110',
    ...overrides,
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

export function detectNodeInfo(dockerVersion: string): Record<string, string> {
  const osRelease = readText('/etc/os-release')
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'Linux'
  return {
    machineID: readText('/etc/machine-id').trim(),
    systemUUID: readText('/sys/class/dmi/id/product_uuid').trim(),
    bootID: readText('/proc/sys/kernel/random/boot_id').trim(),
    kernelVersion: release(),
    osImage: pretty,
    containerRuntimeVersion: `docker://${dockerVersion}`,
    kubeletVersion,
    kubeProxyVersion: kubeletVersion,
    operatingSystem: 'linux',
    architecture: goArch(),
  }
}

const healthy: Array<[string, string, string, string]> = [
  ['MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
  ['DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
  ['PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
  ['Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'],
]

function time(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
}

/** The status the agent wants its Node to have (conditions keep their transition times). */
export function buildNodeStatus(facts: NodeFacts, existing: KubeObject | undefined, now: number): Record<string, any> {
  const old: any[] = existing?.status?.conditions ?? []
  const conditions = healthy.map(([type, s, r, m]) => {
    const [status, reason, message] = type === 'Ready' && facts.notReady ? ['False', facts.notReady.reason, facts.notReady.message] : [s, r, m]
    const prev = old.find((c) => c.type === type)
    return { type, status, reason, message, lastHeartbeatTime: time(now), lastTransitionTime: prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : time(now) }
  })
  const addresses = [
    ...(facts.internalIP ? [{ type: 'InternalIP', address: facts.internalIP }] : []),
    ...(facts.externalIP ? [{ type: 'ExternalIP', address: facts.externalIP }] : []),
    { type: 'Hostname', address: facts.nodeName },
  ]
  return {
    capacity: { ...facts.capacity },
    allocatable: { ...facts.capacity },
    conditions,
    addresses,
    daemonEndpoints: { kubeletEndpoint: { Port: facts.kubeletPort ?? 0 } },
    nodeInfo: facts.nodeInfo,
  }
}

/** True when the status differs in more than heartbeat times, or its heartbeat is older than maxAgeMs. */
export function nodeStatusStale(existing: KubeObject | undefined, desired: Record<string, any>, now: number, maxAgeMs: number): boolean {
  const cur = existing?.status ?? {}
  const strip = (conds: any[] | undefined) => (conds ?? []).map(({ lastHeartbeatTime: _h, ...rest }) => rest).sort((a, b) => String(a.type).localeCompare(String(b.type)))
  for (const k of Object.keys(desired)) {
    const a = k === 'conditions' ? strip(cur[k]) : cur[k]
    const b = k === 'conditions' ? strip(desired[k]) : desired[k]
    if (stableJson(a) !== stableJson(b)) return true
  }
  const beat = (cur.conditions ?? []).find((c: any) => c.type === 'Ready')?.lastHeartbeatTime
  return !beat || now - Date.parse(beat) >= maxAgeMs
}
